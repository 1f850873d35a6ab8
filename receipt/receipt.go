package receipt

import (
	"encoding/json"
	"time"
)

// Spec is the value of the spec field of every v1 receipt.
const Spec = "oars.receipt.v1"

// Status is the state an action reaches with a receipt. Every transition of an
// action is one receipt; the set of values is fixed by the receipt format.
type Status string

// The receipt statuses of format v1.
const (
	StatusAllowed         Status = "allowed"
	StatusDenied          Status = "denied"
	StatusPendingApproval Status = "pending_approval"
	StatusVote            Status = "vote"
	StatusApproved        Status = "approved"
	StatusRejected        Status = "rejected"
	StatusExpired         Status = "expired"
	StatusCancelled       Status = "cancelled"
	StatusExecuting       Status = "executing"
	StatusExecuted        Status = "executed"
	StatusFailed          Status = "failed"
	StatusDeadLettered    Status = "dead_lettered"
)

// Valid reports whether s is one of the statuses of format v1.
func (s Status) Valid() bool {
	switch s {
	case StatusAllowed, StatusDenied, StatusPendingApproval, StatusVote,
		StatusApproved, StatusRejected, StatusExpired, StatusCancelled,
		StatusExecuting, StatusExecuted, StatusFailed, StatusDeadLettered:
		return true
	}
	return false
}

// Mode says whether the decision recorded by a receipt was enforced.
type Mode string

// The receipt modes.
const (
	// ModeEnforce: the decision was enforced.
	ModeEnforce Mode = "enforce"
	// ModeShadow: the decision was recorded but never blocked the action.
	ModeShadow Mode = "shadow"
)

// Receipt is one signed transition of one action (format v1). Field order
// here follows the RFC 8785 order of the JSON names, which the fast encoder
// relies on.
//
// Required members (those without omitempty) are always encoded; optional
// ones are omitted when empty. [Sign] states which values are valid.
type Receipt struct {
	// ActionID identifies the action; every receipt of the action repeats it.
	ActionID string `json:"action_id"`
	// AgentID is the agent that asked for the action.
	AgentID string `json:"agent_id"`
	// Approval holds the approval details of the receipts of an approval
	// workflow (pending_approval, vote, approved, rejected, expired,
	// cancelled); nil on every other receipt. [Sign] states which members
	// each status may carry.
	Approval *Approval `json:"approval,omitempty"`
	// ErrorClass classifies why execution failed (never the error text).
	ErrorClass string `json:"error_class,omitempty"`
	// InputDigest is the [Digest] of the canonical action input.
	InputDigest string `json:"input_digest"`
	// IssuedAt is when the receipt was issued; encoded as RFC 3339 in UTC.
	IssuedAt time.Time `json:"issued_at"`
	// Mode says whether the decision was enforced.
	Mode Mode `json:"mode"`
	// OutputDigest is the [Digest] of the canonical output of an executed
	// action.
	OutputDigest string `json:"output_digest,omitempty"`
	// OutputSummary is an optional redacted extract of the output of an
	// executed action (the created ticket's id, say), chosen by the tool's
	// configuration: a JSON object of at most [MaxSummaryBytes] canonical
	// bytes. Never raw output unless the tool's configuration allows it.
	OutputSummary json.RawMessage `json:"output_summary,omitempty"`
	// Policy names the policy set that decided the action.
	Policy *PolicyRef `json:"policy,omitempty"`
	// PrevReceiptDigest is the [Digest] of the canonical bytes of the
	// previous signed receipt of the action; empty when Seq is 1.
	PrevReceiptDigest string `json:"prev_receipt_digest,omitempty"`
	// Principal is who the action is for.
	Principal Principal `json:"principal"`
	// Reasons are human-readable reasons for the decision.
	Reasons []string `json:"reasons,omitempty"`
	// ReceiptID identifies this receipt.
	ReceiptID string `json:"receipt_id"`
	// Resource is what the action touches.
	Resource Resource `json:"resource"`
	// Seq is the 1-based number of this transition within the action.
	Seq int64 `json:"seq"`
	// Signature is set by [Sign]; it covers every other member.
	Signature *Signature `json:"signature,omitempty"`
	// Spec is always [Spec].
	Spec string `json:"spec"`
	// Status is the state the action reached with this receipt.
	Status Status `json:"status"`
	// TenantID is the tenant the action belongs to.
	TenantID string `json:"tenant_id"`
	// UpstreamStatus is the status code the upstream system answered
	// (the HTTP status for an HTTP connector) on executed, failed and
	// dead_lettered receipts; 0 (omitted) when there is none.
	UpstreamStatus int64 `json:"upstream_status,omitempty"`
}

// MaxSummaryBytes bounds the canonical size of [Receipt.OutputSummary].
const MaxSummaryBytes = 4096

// Principal is who an action is for: the user, and the chain of actors that
// act on the user's behalf (outermost first).
type Principal struct {
	Delegation []DelegationHop `json:"delegation,omitempty"`
	UserID     string          `json:"user_id"`
}

// DelegationHop is one actor in a delegation chain.
type DelegationHop struct {
	Issuer  string   `json:"iss,omitempty"`
	Scope   []string `json:"scope,omitempty"`
	Subject string   `json:"sub"`
}

// Resource is what an action touches.
type Resource struct {
	Operation string `json:"operation"`
	Target    string `json:"target,omitempty"`
	ToolID    string `json:"tool_id"`
}

// PolicyRef names the policy set that decided an action and what matched.
type PolicyRef struct {
	Digest       string         `json:"digest"`
	ID           string         `json:"id"`
	MatchedRules []string       `json:"matched_rules,omitempty"`
	Shadow       []ShadowResult `json:"shadow,omitempty"`
	Version      string         `json:"version"`
}

// ShadowResult is the would-be decision of a policy in shadow mode, recorded
// beside the enforced decision without influencing it.
type ShadowResult struct {
	Digest       string   `json:"digest"`
	Effect       string   `json:"effect"`
	ID           string   `json:"id"`
	MatchedRules []string `json:"matched_rules,omitempty"`
	Version      string   `json:"version"`
}

// Vote decisions recorded in [Approval.Decision].
const (
	DecisionApprove = "approve"
	DecisionReject  = "reject"
)

// Approval is the approval member of a receipt. Which members are set
// depends on the receipt's status:
//
//   - pending_approval: the requirement: ExpiresAt, Quorum (at least 1),
//     Roles and/or Users, StepUp.
//   - vote: Approver and Decision, with an optional Reason and the
//     StepUpMethod the approver used.
//   - approved, rejected: Votes, the receipt ids of the votes that decided;
//     optionally a Reason.
//   - expired: optionally a Reason.
//   - cancelled: Approver (who cancelled) and optionally a Reason.
//
// Field order follows the RFC 8785 order of the JSON names.
type Approval struct {
	// Approver is who voted (vote) or cancelled (cancelled).
	Approver *Approver `json:"approver,omitempty"`
	// Decision is the vote: [DecisionApprove] or [DecisionReject].
	Decision string `json:"decision,omitempty"`
	// ExpiresAt is when the approval request expires; encoded as RFC 3339
	// in UTC.
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Quorum is the number of distinct approvers needed.
	Quorum int `json:"quorum,omitempty"`
	// Reason is the approver's, canceller's or system's reason.
	Reason string `json:"reason,omitempty"`
	// Roles are the approver roles; holding any one of them qualifies.
	Roles []string `json:"roles,omitempty"`
	// StepUp reports whether approvers must present a second factor.
	StepUp bool `json:"step_up,omitempty"`
	// StepUpMethod is the second factor the approver presented ("totp").
	StepUpMethod string `json:"step_up_method,omitempty"`
	// Users are approvers named by user id.
	Users []string `json:"users,omitempty"`
	// Votes are the receipt ids of the votes that decided the action.
	Votes []string `json:"votes,omitempty"`
}

// Approver is a person who voted on or cancelled an action, with the roles
// they held when they did.
type Approver struct {
	Roles  []string `json:"roles,omitempty"`
	UserID string   `json:"user_id"`
}

// Signature is the detached Ed25519 signature over the canonical form of the
// receipt without its signature member.
type Signature struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	Sig string `json:"sig"`
}
