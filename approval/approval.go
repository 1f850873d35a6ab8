package approval

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// Errors of [State.Check] and [State.CheckCancel], also returned (wrapped)
// by the Guard's approval methods. Test for them with errors.Is; messages
// never echo the vote's values.
var (
	// ErrNotPending: the action is no longer pending approval (approved,
	// rejected, expired, cancelled, executing or done), or its votes have
	// already decided it.
	ErrNotPending = errors.New("approval: action is not pending approval")
	// ErrExpired: the approval request expired.
	ErrExpired = errors.New("approval: request expired")
	// ErrSelfApproval: the approver is the user who requested the action,
	// the agent acting, or an actor of its delegation chain.
	ErrSelfApproval = errors.New("approval: the requester and the acting agent cannot approve their own action")
	// ErrNotApprover: the approver holds none of the required roles and is
	// not one of the named approvers.
	ErrNotApprover = errors.New("approval: not an approver of this action")
	// ErrWrongTenant: the approver may not act in the action's tenant.
	ErrWrongTenant = errors.New("approval: approver is not in the action's tenant")
	// ErrAlreadyVoted: the approver has voted on the action before; each
	// approver counts once.
	ErrAlreadyVoted = errors.New("approval: approver has already voted")
	// ErrStepUpRequired: the action needs a second factor and the vote
	// carries no step-up method.
	ErrStepUpRequired = errors.New("approval: step-up authentication required")
	// ErrNotRequester: only the user who requested the action or an admin
	// may cancel it.
	ErrNotRequester = errors.New("approval: only the requester or an admin may cancel")
	// ErrInvalidVote: the vote is malformed (no approver, unknown
	// decision, oversized or non-UTF-8 fields).
	ErrInvalidVote = errors.New("approval: invalid vote")
	// ErrNotApproval: the action was not held for approval (it was
	// allowed or denied, or decided in shadow mode).
	ErrNotApproval = errors.New("approval: action was not held for approval")
	// ErrInvalidHistory: the action's receipts do not form a valid
	// approval history (a gap in seq, a broken chain, a transition the
	// workflow never makes, a vote without its approver).
	ErrInvalidHistory = errors.New("approval: receipts do not form an approval history")
)

// Names the workflow gives meaning to.
const (
	// DefaultApproverRole is the role that may approve an action whose
	// policy names neither roles nor users.
	DefaultApproverRole = "approver"
	// AdminRole may cancel any action of its tenants.
	AdminRole = "admin"
	// AllTenants in Approver.TenantIDs means every tenant.
	AllTenants = "*"
	// StepUpTOTP is the step-up method of a time-based one-time password.
	StepUpTOTP = "totp"
)

// Limits on vote fields; longer values are refused with [ErrInvalidVote].
const (
	MaxIDLength     = 256
	MaxReasonLength = 1024
)

// Decision is an approver's vote.
type Decision string

// The decisions.
const (
	Approve Decision = receipt.DecisionApprove
	Reject  Decision = receipt.DecisionReject
)

// Valid reports whether d is [Approve] or [Reject].
func (d Decision) Valid() bool { return d == Approve || d == Reject }

// Requirement is what an action held for approval needs: who may approve
// (any of Roles, or a user of Users), how many distinct approvers (Quorum),
// until when (ExpiresAt), and whether approvers need a second factor.
type Requirement struct {
	Roles     []string
	Users     []string
	Quorum    int
	ExpiresAt time.Time
	StepUp    bool
}

// RequirementFrom returns the requirement of a policy decision's approval
// block decided at now: quorum at least 1 (default 1), expiry now +
// a.Expiry (default [policy.DefaultApprovalExpiry]), and, when the policy
// names neither roles nor users, the role [DefaultApproverRole].
func RequirementFrom(a policy.Approval, now time.Time) Requirement {
	r := Requirement{
		Roles:  slices.Clone(a.Roles),
		Users:  slices.Clone(a.Users),
		Quorum: max(a.Quorum, 1),
		StepUp: a.StepUp,
	}
	expiry := a.Expiry
	if expiry <= 0 {
		expiry = policy.DefaultApprovalExpiry
	}
	r.ExpiresAt = now.Add(expiry).UTC()
	if len(r.Roles) == 0 && len(r.Users) == 0 {
		r.Roles = []string{DefaultApproverRole}
	}
	return r
}

// Receipt returns the approval member of the pending_approval receipt that
// records r.
func (r Requirement) Receipt() *receipt.Approval {
	expires := r.ExpiresAt.UTC()
	return &receipt.Approval{
		ExpiresAt: &expires,
		Quorum:    r.Quorum,
		Roles:     slices.Clone(r.Roles),
		StepUp:    r.StepUp,
		Users:     slices.Clone(r.Users),
	}
}

// Approver is a person deciding on an action, as the caller authenticated
// them: their user id, their roles and the tenants they may act in
// ([AllTenants] for all).
type Approver struct {
	UserID    string
	Roles     []string
	TenantIDs []string
}

// inTenant reports whether a may act in tenant.
func (a Approver) inTenant(tenant string) bool {
	return slices.Contains(a.TenantIDs, AllTenants) || slices.Contains(a.TenantIDs, tenant)
}

// receipt returns the approver as receipts record them.
func (a Approver) receipt() *receipt.Approver {
	return &receipt.Approver{UserID: a.UserID, Roles: slices.Clone(a.Roles)}
}

// validate checks the approver's fields.
func (a Approver) validate() error {
	if err := checkID(a.UserID); err != nil {
		return fmt.Errorf("%w: approver user id %s", ErrInvalidVote, err)
	}
	for _, r := range a.Roles {
		if err := checkID(r); err != nil {
			return fmt.Errorf("%w: approver role %s", ErrInvalidVote, err)
		}
	}
	return nil
}

// Vote is one approver's decision on an action. StepUpMethod names the
// second factor the caller verified before voting ([StepUpTOTP]); empty
// when none was presented.
type Vote struct {
	Approver     Approver
	Decision     Decision
	Reason       string
	StepUpMethod string
}

// validate checks the vote's fields.
func (v Vote) validate() error {
	if err := v.Approver.validate(); err != nil {
		return err
	}
	if !v.Decision.Valid() {
		return fmt.Errorf("%w: decision is not approve or reject", ErrInvalidVote)
	}
	if err := checkText(v.Reason, MaxReasonLength); err != nil {
		return fmt.Errorf("%w: reason %s", ErrInvalidVote, err)
	}
	if v.StepUpMethod != "" {
		if err := checkID(v.StepUpMethod); err != nil {
			return fmt.Errorf("%w: step-up method %s", ErrInvalidVote, err)
		}
	}
	return nil
}

// Receipt returns the approval member of the vote receipt that records v.
func (v Vote) Receipt() *receipt.Approval {
	return &receipt.Approval{
		Approver:     v.Approver.receipt(),
		Decision:     string(v.Decision),
		Reason:       v.Reason,
		StepUpMethod: v.StepUpMethod,
	}
}

// checkID checks an identifier: non-empty, bounded, UTF-8 without control
// characters.
func checkID(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	return checkText(s, MaxIDLength)
}

// checkText checks free text: bounded, UTF-8, no control characters but
// newline and tab.
func checkText(s string, limit int) error {
	if len(s) > limit {
		return fmt.Errorf("is longer than %d bytes", limit)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if (r < 0x20 && r != '\n' && r != '\t') || r == 0x7f {
			return errors.New("contains a control character")
		}
	}
	return nil
}

// RecordedVote is a vote as its receipt recorded it.
type RecordedVote struct {
	// ReceiptID and Seq identify the vote receipt.
	ReceiptID string
	Seq       int64
	// UserID and Roles are the approver's.
	UserID       string
	Roles        []string
	Decision     Decision
	Reason       string
	StepUpMethod string
	// At is when the vote was recorded.
	At time.Time
}

// Entry is one recorded receipt of an action: the parsed receipt and its
// exact signed canonical bytes (the ledger leaf).
type Entry struct {
	Receipt *receipt.Receipt
	Bytes   []byte
}

// State is the approval state of one action, derived from its receipts by
// [Derive]. It is a value: deriving again after new receipts gives a new
// State.
type State struct {
	ActionID        string
	TenantID        string
	AgentID         string
	RequesterUserID string
	// Delegation is the principal's delegation chain; its actors may not
	// approve either.
	Delegation  []receipt.DelegationHop
	Resource    receipt.Resource
	InputDigest string
	// Reasons are why approval is required (the pending receipt's
	// reasons).
	Reasons []string
	// Status is the action's status: the status of its last receipt other
	// than a vote (a vote leaves the action pending_approval).
	Status      receipt.Status
	Requirement Requirement
	// Votes are the recorded votes in seq order.
	Votes []RecordedVote
	// RequestedAt is when the action was held; UpdatedAt when its last
	// receipt was issued.
	RequestedAt time.Time
	UpdatedAt   time.Time
	// LastSeq and LastDigest are the seq and the digest of the canonical
	// bytes of the action's last receipt: what the next receipt chains to.
	LastSeq    int64
	LastDigest string
	// Last is the action's last receipt.
	Last *receipt.Receipt
}

// Derive returns the approval state of an action from its receipts in seq
// order. It fails with an error wrapping [ErrNotApproval] if the first
// receipt is not an enforced pending_approval receipt, and with one
// wrapping [ErrInvalidHistory] if the receipts do not chain (seq 1, 2, …,
// one action and tenant, each prev_receipt_digest the digest of the bytes
// before it) or make a transition the workflow never makes: after
// pending_approval come votes and then approved, rejected, expired or
// cancelled; after approved, executing; after executing, executed, failed
// or dead_lettered. Derive verifies no signatures: verify receipts read
// from an untrusted store first.
func Derive(entries []Entry) (*State, error) {
	if len(entries) == 0 || entries[0].Receipt == nil {
		return nil, fmt.Errorf("approval: derive: no receipts: %w", ErrInvalidHistory)
	}
	first := entries[0].Receipt
	if first.Status != receipt.StatusPendingApproval || first.Mode != receipt.ModeEnforce {
		return nil, fmt.Errorf("approval: derive: first receipt is %s (%s): %w", first.Status, first.Mode, ErrNotApproval)
	}
	if first.Approval == nil || first.Approval.ExpiresAt == nil || first.Approval.Quorum < 1 {
		return nil, fmt.Errorf("approval: derive: pending_approval receipt has no requirement: %w", ErrInvalidHistory)
	}
	a := first.Approval
	s := &State{
		ActionID:        first.ActionID,
		TenantID:        first.TenantID,
		AgentID:         first.AgentID,
		RequesterUserID: first.Principal.UserID,
		Delegation:      first.Principal.Delegation,
		Resource:        first.Resource,
		InputDigest:     first.InputDigest,
		Reasons:         first.Reasons,
		Status:          receipt.StatusPendingApproval,
		Requirement: Requirement{
			Roles: a.Roles, Users: a.Users, Quorum: a.Quorum, ExpiresAt: a.ExpiresAt.UTC(), StepUp: a.StepUp,
		},
		RequestedAt: first.IssuedAt,
	}
	for i, e := range entries {
		r := e.Receipt
		switch {
		case r == nil:
			return nil, fmt.Errorf("approval: derive: receipt %d is missing: %w", i+1, ErrInvalidHistory)
		case r.Seq != int64(i+1):
			return nil, fmt.Errorf("approval: derive: receipt %d has seq %d: %w", i+1, r.Seq, ErrInvalidHistory)
		case r.ActionID != s.ActionID || r.TenantID != s.TenantID:
			return nil, fmt.Errorf("approval: derive: receipt %d belongs to another action or tenant: %w", i+1, ErrInvalidHistory)
		case i > 0 && r.PrevReceiptDigest != receipt.Digest(entries[i-1].Bytes):
			return nil, fmt.Errorf("approval: derive: receipt %d does not chain to the one before: %w", i+1, ErrInvalidHistory)
		}
		if i > 0 {
			if err := s.apply(r); err != nil {
				return nil, fmt.Errorf("approval: derive: receipt %d: %w", i+1, err)
			}
		}
		s.UpdatedAt = r.IssuedAt
	}
	last := entries[len(entries)-1]
	s.LastSeq = last.Receipt.Seq
	s.LastDigest = receipt.Digest(last.Bytes)
	s.Last = last.Receipt
	return s, nil
}

// apply advances s by the receipt r that follows it.
func (s *State) apply(r *receipt.Receipt) error {
	bad := func() error {
		return fmt.Errorf("%s after %s: %w", r.Status, s.Status, ErrInvalidHistory)
	}
	switch r.Status {
	case receipt.StatusVote:
		if s.Status != receipt.StatusPendingApproval {
			return bad()
		}
		a := r.Approval
		if a == nil || a.Approver == nil || !Decision(a.Decision).Valid() {
			return fmt.Errorf("vote without approver or decision: %w", ErrInvalidHistory)
		}
		s.Votes = append(s.Votes, RecordedVote{
			ReceiptID: r.ReceiptID, Seq: r.Seq, UserID: a.Approver.UserID, Roles: a.Approver.Roles,
			Decision: Decision(a.Decision), Reason: a.Reason, StepUpMethod: a.StepUpMethod, At: r.IssuedAt,
		})
		return nil
	case receipt.StatusApproved, receipt.StatusRejected, receipt.StatusExpired, receipt.StatusCancelled:
		if s.Status != receipt.StatusPendingApproval {
			return bad()
		}
	case receipt.StatusExecuting:
		// After executing: a queue claims again an attempt whose
		// executor died (at-least-once delivery).
		if s.Status != receipt.StatusApproved && s.Status != receipt.StatusExecuting {
			return bad()
		}
	case receipt.StatusExecuted, receipt.StatusFailed, receipt.StatusDeadLettered:
		if s.Status != receipt.StatusExecuting {
			return bad()
		}
	default:
		return bad()
	}
	s.Status = r.Status
	return nil
}

// Pending reports whether the action is still waiting for votes: its
// status is pending_approval and its votes have not decided it.
func (s *State) Pending() bool {
	status, _ := s.Outcome()
	return s.Status == receipt.StatusPendingApproval && status == ""
}

// ExpiredAt reports whether a pending action has expired at now.
func (s *State) ExpiredAt(now time.Time) bool {
	return s.Status == receipt.StatusPendingApproval && !now.Before(s.Requirement.ExpiresAt)
}

// Outcome returns what the recorded votes decide: [receipt.StatusRejected]
// and the id of the first reject vote if any approver rejected,
// [receipt.StatusApproved] and the ids of the approving votes if
// [State.QuorumReached], and "" while neither holds. It looks at the votes
// only: an action whose outcome is recorded has the same Outcome.
func (s *State) Outcome() (receipt.Status, []string) {
	for _, v := range s.Votes {
		if v.Decision == Reject {
			return receipt.StatusRejected, []string{v.ReceiptID}
		}
	}
	ids := s.approvals()
	if len(ids) >= s.Requirement.Quorum {
		return receipt.StatusApproved, ids
	}
	return "", nil
}

// QuorumReached reports whether the number of distinct approvers who
// approved is at least the quorum.
func (s *State) QuorumReached() bool {
	return len(s.approvals()) >= s.Requirement.Quorum
}

// approvals returns the ids of the approving votes, one per approver.
func (s *State) approvals() []string {
	var ids, users []string
	for _, v := range s.Votes {
		if v.Decision == Approve && !slices.Contains(users, v.UserID) {
			users = append(users, v.UserID)
			ids = append(ids, v.ReceiptID)
		}
	}
	return ids
}

// Check reports whether v may be recorded as a vote at now. It returns
// nil, or an error wrapping, in this order of checks: [ErrNotPending] if
// the action is not pending (see [State.Pending]; also [ErrExpired] if it
// is expired); [ErrInvalidVote] if v is
// malformed; [ErrExpired] if now is at or after the expiry;
// [ErrWrongTenant] if the approver may not act in the action's tenant;
// [ErrSelfApproval] if the approver is the requesting user, the acting
// agent or an actor of the delegation chain; [ErrNotApprover] if the
// approver holds none of the required roles and is not a named approver;
// [ErrAlreadyVoted] if the approver voted before; and
// [ErrStepUpRequired] if the requirement asks for step-up, v approves and
// has no step-up method. Rejecting needs no second factor: it can only
// stop an action.
func (s *State) Check(v Vote, now time.Time) error {
	if err := s.notPending("vote"); err != nil {
		return err
	}
	if err := v.validate(); err != nil {
		return fmt.Errorf("approval: vote: %w", err)
	}
	if s.ExpiredAt(now) {
		return fmt.Errorf("approval: vote: %w", ErrExpired)
	}
	if !v.Approver.inTenant(s.TenantID) {
		return fmt.Errorf("approval: vote: %w", ErrWrongTenant)
	}
	if s.self(v.Approver.UserID) {
		return fmt.Errorf("approval: vote: %w", ErrSelfApproval)
	}
	if !s.qualified(v.Approver) {
		return fmt.Errorf("approval: vote: %w", ErrNotApprover)
	}
	if slices.ContainsFunc(s.Votes, func(r RecordedVote) bool { return r.UserID == v.Approver.UserID }) {
		return fmt.Errorf("approval: vote: %w", ErrAlreadyVoted)
	}
	if s.Requirement.StepUp && v.Decision == Approve && v.StepUpMethod == "" {
		return fmt.Errorf("approval: vote: %w", ErrStepUpRequired)
	}
	return nil
}

// notPending returns an error wrapping ErrNotPending (and ErrExpired for an
// expired action) unless the action is pending.
func (s *State) notPending(op string) error {
	switch {
	case s.Pending():
		return nil
	case s.Status == receipt.StatusExpired:
		return fmt.Errorf("approval: %s: action is expired: %w: %w", op, ErrNotPending, ErrExpired)
	}
	return fmt.Errorf("approval: %s: action is %s: %w", op, s.Status, ErrNotPending)
}

// self reports whether user is the action's requester, its agent or an
// actor of its delegation chain.
func (s *State) self(user string) bool {
	if user == s.AgentID || (s.RequesterUserID != "" && user == s.RequesterUserID) {
		return true
	}
	return slices.ContainsFunc(s.Delegation, func(h receipt.DelegationHop) bool { return h.Subject == user })
}

// qualified reports whether a holds a required role or is a named
// approver.
func (s *State) qualified(a Approver) bool {
	if slices.Contains(s.Requirement.Users, a.UserID) {
		return true
	}
	return slices.ContainsFunc(a.Roles, func(r string) bool { return slices.Contains(s.Requirement.Roles, r) })
}

// CheckCancel reports whether by may cancel the action at now. It returns
// nil, or an error wrapping [ErrNotPending] if the action is not pending,
// [ErrInvalidVote] if by is malformed, [ErrExpired] if the request
// expired, [ErrWrongTenant] if by may not act in the action's tenant, or
// [ErrNotRequester] unless by is the requesting user or holds
// [AdminRole].
func (s *State) CheckCancel(by Approver, now time.Time) error {
	if err := s.notPending("cancel"); err != nil {
		return err
	}
	if err := by.validate(); err != nil {
		return fmt.Errorf("approval: cancel: %w", err)
	}
	if s.ExpiredAt(now) {
		return fmt.Errorf("approval: cancel: %w", ErrExpired)
	}
	if !by.inTenant(s.TenantID) {
		return fmt.Errorf("approval: cancel: %w", ErrWrongTenant)
	}
	if (s.RequesterUserID == "" || by.UserID != s.RequesterUserID) && !slices.Contains(by.Roles, AdminRole) {
		return fmt.Errorf("approval: cancel: %w", ErrNotRequester)
	}
	return nil
}

// CancelReceipt returns the approval member of the cancelled receipt that
// records a cancellation by by.
func CancelReceipt(by Approver, reason string) *receipt.Approval {
	return &receipt.Approval{Approver: by.receipt(), Reason: reason}
}

// CheckReason checks a cancellation reason as [State.Check] checks a
// vote's: bounded UTF-8 without control characters. It returns an error
// wrapping [ErrInvalidVote].
func CheckReason(reason string) error {
	if err := checkText(reason, MaxReasonLength); err != nil {
		return fmt.Errorf("%w: reason %s", ErrInvalidVote, err)
	}
	return nil
}

// Request describes an action that waits for approval, for notifying
// approvers.
type Request struct {
	ActionID        string
	TenantID        string
	AgentID         string
	RequesterUserID string
	Resource        receipt.Resource
	Requirement     Requirement
	// Reasons are why the policies require approval.
	Reasons []string
}

// Request returns the notification for s.
func (s *State) Request() Request {
	return Request{
		ActionID: s.ActionID, TenantID: s.TenantID, AgentID: s.AgentID, RequesterUserID: s.RequesterUserID,
		Resource: s.Resource, Requirement: s.Requirement, Reasons: s.Reasons,
	}
}

// Notifier tells approvers that an action waits for them (by webhook,
// chat, e-mail…). Notify must honour ctx and be safe for concurrent use;
// its error is logged, never fails the action: approvers can always list
// pending approvals.
type Notifier interface {
	Notify(ctx context.Context, r Request) error
}

// NotifierFunc adapts a function to [Notifier].
type NotifierFunc func(ctx context.Context, r Request) error

// Notify returns f(ctx, r).
func (f NotifierFunc) Notify(ctx context.Context, r Request) error { return f(ctx, r) }
