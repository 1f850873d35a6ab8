package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

// actionRequest is the body of POST /v1/actions.
type actionRequest struct {
	TenantID    string          `json:"tenant_id"`
	AgentID     string          `json:"agent_id"`
	UserContext *userContext    `json:"user_context"`
	Resource    *resourceFields `json:"resource"`
	Input       jsontext.Value  `json:"input"`
}

type userContext struct {
	UserID string   `json:"user_id"`
	Roles  []string `json:"roles"`
}

type resourceFields struct {
	ToolID    string `json:"tool_id"`
	Operation string `json:"operation"`
	Target    string `json:"target"`
}

// actionResponse is the answer of POST /v1/actions.
type actionResponse struct {
	ActionID string            `json:"action_id"`
	Status   receipt.Status    `json:"status"`
	Receipts []json.RawMessage `json:"receipts"`
	// LedgerIndexes are the ledger indexes of Receipts, in order.
	LedgerIndexes []int64 `json:"ledger_indexes"`
	Replayed      bool    `json:"replayed"`
}

// validate checks the request's fields as the Guard will, naming them as
// the API does.
func (a *actionRequest) validate() error {
	if a.UserContext == nil {
		return badRequest(`field "user_context" is required`)
	}
	if a.Resource == nil {
		return badRequest(`field "resource" is required`)
	}
	fields := []struct {
		name, value string
		required    bool
		max         int
	}{
		{"tenant_id", a.TenantID, true, oars.MaxIDLength},
		{"agent_id", a.AgentID, true, oars.MaxIDLength},
		{"user_context.user_id", a.UserContext.UserID, true, oars.MaxIDLength},
		{"resource.tool_id", a.Resource.ToolID, true, oars.MaxIDLength},
		{"resource.operation", a.Resource.Operation, true, oars.MaxIDLength},
		{"resource.target", a.Resource.Target, false, oars.MaxTargetLength},
	}
	for _, f := range fields {
		if msg := checkString(f.value, f.required, f.max); msg != "" {
			return badRequest(fmt.Sprintf("field %q %s", f.name, msg))
		}
	}
	for i, role := range a.UserContext.Roles {
		if msg := checkString(role, true, oars.MaxIDLength); msg != "" {
			return badRequest(fmt.Sprintf("field \"user_context.roles.%d\" %s", i, msg))
		}
	}
	switch {
	case len(a.Input) == 0:
		return badRequest(`field "input" is required`)
	case a.Input.Kind() != '{':
		return badRequest(`field "input": want object`)
	}
	return nil
}

// checkString applies the Guard's rules for identifiers and returns what
// is wrong, or "".
func checkString(v string, required bool, max int) string {
	switch {
	case v == "" && required:
		return "is required"
	case len(v) > max:
		return fmt.Sprintf("is longer than %d bytes", max)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}

// postAction decides an action with the Guard: 201 with the decision
// receipts (a denial too: it is a recorded decision), 200 for an
// idempotent replay.
func (s *server) postAction(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req actionRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	if !p.InTenant(req.TenantID) {
		return notFound("tenant not found")
	}
	if !p.MaySeeAgent(req.AgentID) {
		return errorf(http.StatusForbidden, codeForbidden, "the caller may not act for this agent")
	}
	a := &oars.Action{
		TenantID:       req.TenantID,
		AgentID:        req.AgentID,
		Principal:      oars.Principal{UserID: req.UserContext.UserID},
		Resource:       oars.Resource{ToolID: req.Resource.ToolID, Operation: req.Resource.Operation, Target: req.Resource.Target},
		Input:          json.RawMessage(req.Input),
		IdempotencyKey: r.Header.Get("Idempotency-Key"),
		Request:        requestMetadata(r, p),
	}
	// Caller-asserted user roles are trusted only from operators; agents
	// could otherwise grant their users any role. Binding users properly
	// is the identity layer's job.
	if p.HasAnyRole(identity.RoleAdmin, identity.RoleOperator) {
		a.Principal.Roles = req.UserContext.Roles
	}
	out, err := s.guard.Decide(r.Context(), a)
	switch {
	case err == nil:
	case errors.Is(err, oars.ErrIdempotencyConflict):
		return errorf(http.StatusConflict, codeIdempotency, "the Idempotency-Key was used before for a different action")
	case errors.Is(err, oars.ErrInvalidAction):
		return badRequest(strings.TrimPrefix(err.Error(), "oars: "))
	case errors.Is(err, oars.ErrIdentity):
		return errorf(http.StatusForbidden, codeForbidden, "the identity check refused the action")
	case errors.Is(err, oars.ErrPolicy) && out != nil && len(out.Receipts) > 0:
		// Fail closed: the Guard recorded a denial; report it like any
		// other decision.
		s.log.WarnContext(r.Context(), "policy evaluation failed; action denied",
			slog.String("request_id", stateOf(r).id), slog.String("action_id", out.ActionID), slog.Any("error", err))
	case errors.Is(err, oars.ErrLedger):
		return unavailable("the ledger is unavailable", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request was cancelled", err)
	default:
		return internal(err)
	}
	resp := actionResponse{ActionID: out.ActionID, Status: out.Status, Replayed: out.Replayed}
	for _, e := range out.Receipts {
		resp.Receipts = append(resp.Receipts, e.Bytes)
		resp.LedgerIndexes = append(resp.LedgerIndexes, e.Index)
	}
	status := http.StatusCreated
	if out.Replayed {
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
	return nil
}

// requestMetadata is what policies see as context.request: the request
// id, the client address and the authenticated subject. It is not
// recorded in receipts.
func requestMetadata(r *http.Request, p *identity.Principal) map[string]string {
	md := map[string]string{"request_id": stateOf(r).id, "subject": p.Subject}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		md["remote_addr"] = host
	}
	return md
}

// actionView is the answer of GET /v1/actions/{id}.
type actionView struct {
	ActionID string            `json:"action_id"`
	Status   receipt.Status    `json:"status"`
	TenantID string            `json:"tenant_id"`
	AgentID  string            `json:"agent_id"`
	Resource receipt.Resource  `json:"resource"`
	Receipts []json.RawMessage `json:"receipts"`
	// LedgerIndexes are the ledger indexes of Receipts, in order.
	LedgerIndexes []int64 `json:"ledger_indexes"`
}

// getAction returns an action's receipts and its status (that of its last
// receipt). Unknown actions and those of tenants or agents the caller may
// not see are 404 alike.
func (s *server) getAction(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	id := r.PathValue("id")
	if checkString(id, true, oars.MaxIDLength) != "" {
		return notFound("action not found")
	}
	entries, err := s.guard.Receipts(r.Context(), id)
	switch {
	case errors.Is(err, oars.ErrNotFound):
		return notFound("action not found")
	case err != nil:
		return unavailable("the ledger is unavailable", err)
	}
	first, last := entries[0].Receipt, entries[len(entries)-1].Receipt
	if !p.InTenant(first.TenantID) || !p.MaySeeAgent(first.AgentID) {
		return notFound("action not found")
	}
	view := actionView{
		ActionID: first.ActionID,
		Status:   last.Status,
		TenantID: first.TenantID,
		AgentID:  first.AgentID,
		Resource: first.Resource,
	}
	for _, e := range entries {
		view.Receipts = append(view.Receipts, e.Bytes)
		view.LedgerIndexes = append(view.LedgerIndexes, e.Index)
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}
