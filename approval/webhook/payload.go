package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/receipt"
)

// EventApprovalRequested is the type of the notification that an action
// waits for approval.
const EventApprovalRequested = "approval.requested"

// Payload is the JSON body of a notification.
type Payload struct {
	Type        string           `json:"type"`
	ActionID    string           `json:"action_id"`
	TenantID    string           `json:"tenant_id"`
	AgentID     string           `json:"agent_id"`
	Requester   string           `json:"requester"`
	Resource    receipt.Resource `json:"resource"`
	Requirement Requirement      `json:"requirement"`
	Reasons     []string         `json:"reasons"`
	Links       Links            `json:"links"`
}

// Requirement is what it takes to decide the action: the roles or users
// that may vote, how many approvals, until when, and whether each vote
// needs a second factor. ExpiresAt is absent when the request never
// expires.
type Requirement struct {
	Roles     []string   `json:"roles"`
	Users     []string   `json:"users"`
	Quorum    int        `json:"quorum"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	StepUp    bool       `json:"step_up"`
}

// Links point into the OARS HTTP API: the approval request, and where to
// POST the decision.
type Links struct {
	Approval string `json:"approval"`
	Decision string `json:"decision"`
}

// NewPayload returns the payload announcing r, with links under apiBase
// (an absolute URL without a trailing slash, such as
// "https://oars.example.com"). It fails if r has no ActionID.
func NewPayload(r approval.Request, apiBase string) (Payload, error) {
	if r.ActionID == "" {
		return Payload{}, errors.New("webhook: payload: empty action id")
	}
	approvalURL := apiBase + "/v1/approvals/" + url.PathEscape(r.ActionID)
	p := Payload{
		Type:      EventApprovalRequested,
		ActionID:  r.ActionID,
		TenantID:  r.TenantID,
		AgentID:   r.AgentID,
		Requester: r.RequesterUserID,
		Resource:  r.Resource,
		Requirement: Requirement{
			Roles:  nonNil(r.Requirement.Roles),
			Users:  nonNil(r.Requirement.Users),
			Quorum: r.Requirement.Quorum,
			StepUp: r.Requirement.StepUp,
		},
		Reasons: nonNil(r.Reasons),
		Links: Links{
			Approval: approvalURL,
			Decision: approvalURL + "/decision",
		},
	}
	if !r.Requirement.ExpiresAt.IsZero() {
		t := r.Requirement.ExpiresAt.UTC()
		p.Requirement.ExpiresAt = &t
	}
	return p, nil
}

// marshal returns the body bytes of p.
func (p Payload) marshal() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("webhook: payload: %w", err)
	}
	return b, nil
}

// nonNil returns s, or an empty slice for nil, so that it encodes as [].
func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
