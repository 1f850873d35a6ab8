package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/textcheck"
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
	// Queued reports that the action's execution was queued
	// (Config.Enqueue): poll GET /v1/actions/{id} for its receipts.
	Queued bool `json:"queued,omitempty"`
	// Output is the tool's output when the server executed the action
	// (Config.Executors); it is not recorded, only its digest.
	Output json.RawMessage `json:"output,omitempty"`
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
	return textcheck.Problem(v, required, max)
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
	a := req.action(r, p)
	a.IdempotencyKey = r.Header.Get("Idempotency-Key")
	switch {
	case p.UserID != "":
		// The credential names the user (a user's JWT, a delegation
		// token): its groups are the user's roles.
		a.Principal.Roles = slices.Clone(p.Groups)
	case p.HasAnyRole(identity.RoleAdmin, identity.RoleOperator):
		// Caller-asserted user roles are trusted only from operators;
		// agents could otherwise grant their users any role.
		a.Principal.Roles = req.UserContext.Roles
	}
	if reason := bindingRefusal(p, &req); reason != "" {
		return s.refuse(r, a, reason)
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
	queued, err := s.afterDecision(r, a, out)
	if err != nil {
		return err
	}
	resp := actionResponse{ActionID: out.ActionID, Status: out.Status, Replayed: out.Replayed, Output: out.Output, Queued: queued}
	resp.Receipts, resp.LedgerIndexes = signedReceipts(out.Receipts)
	status := http.StatusCreated
	switch {
	case queued:
		status = http.StatusAccepted
	case out.Replayed:
		status = http.StatusOK
	}
	writeJSON(w, status, resp)
	return nil
}

// action returns the call of req by p as the Guard takes it: the
// principal's roles and the idempotency key are left to the caller.
func (req *actionRequest) action(r *http.Request, p *identity.Principal) *oars.Action {
	return &oars.Action{
		TenantID:  req.TenantID,
		AgentID:   req.AgentID,
		Principal: oars.Principal{UserID: req.UserContext.UserID, Delegation: delegationHops(p.Delegation)},
		Resource:  oars.Resource{ToolID: req.Resource.ToolID, Operation: req.Resource.Operation, Target: req.Resource.Target},
		Input:     json.RawMessage(req.Input),
		Request:   requestMetadata(r, p),
	}
}

// signedReceipts returns the signed receipts of entries and their ledger
// indexes, in order, as the API answers them (nil for none).
func signedReceipts(entries []oars.Entry) (raws []json.RawMessage, indexes []int64) {
	for _, e := range entries {
		raws = append(raws, e.Bytes)
		indexes = append(indexes, e.Index)
	}
	return raws, indexes
}

// bindingRefusal returns why the principal p may not submit req, or ""
// if it may: the request must name p's agent when p is bound to one, p's
// user when the credential names one, and a tool call p's scopes allow.
// The request's tenant is checked before (an unknown tenant is 404).
func bindingRefusal(p *identity.Principal, req *actionRequest) string {
	switch {
	case !p.MaySeeAgent(req.AgentID):
		return fmt.Sprintf("agent_id does not match the agent the credential is bound to (%q)", p.AgentID)
	case p.UserID != "" && req.UserContext.UserID != p.UserID:
		return fmt.Sprintf("user_context.user_id does not match the user the credential acts for (%q)", p.UserID)
	}
	return scopeRefusal(p, req.Resource.ToolID, req.Resource.Operation)
}

// scopeRefusal returns why p's scopes (or its delegated scopes) do not
// allow operation op of tool, or "" if they do.
func scopeRefusal(p *identity.Principal, tool, op string) string {
	if p.Allows(tool, op) {
		return ""
	}
	kind := "scope"
	if len(p.Delegation) > 0 {
		kind = "delegated scope"
	}
	return fmt.Sprintf("%s does not allow %s:%s", kind, tool, op)
}

// refuse records a denied receipt for a naming reason, with no policy
// evaluation, and answers 403 with the receipt's id in the error
// details. If the refusal cannot be recorded the answer is 503 (fail
// closed: the action is refused either way).
func (s *server) refuse(r *http.Request, a *oars.Action, reason string) error {
	out, err := s.guard.Refuse(r.Context(), a, reason)
	switch {
	case err == nil:
	case errors.Is(err, oars.ErrInvalidAction):
		return badRequest(strings.TrimPrefix(err.Error(), "oars: "))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request was cancelled", err)
	default:
		return unavailable("the ledger is unavailable; the action was refused", err)
	}
	s.log.InfoContext(r.Context(), "action refused: the credential does not allow it",
		slog.String("request_id", stateOf(r).id), slog.String("action_id", out.ActionID))
	e := errorf(http.StatusForbidden, codeForbidden, reason)
	e.receiptID = out.Receipts[0].Receipt.ReceiptID
	return e
}

// delegationHops converts an authenticated delegation chain (outermost
// actor first) to the receipt's principal.delegation, in the same order;
// nil for none.
func delegationHops(hops []identity.Hop) []receipt.DelegationHop {
	if len(hops) == 0 {
		return nil
	}
	out := make([]receipt.DelegationHop, len(hops))
	for i, h := range hops {
		out[i] = receipt.DelegationHop{Subject: h.Subject, Issuer: h.Issuer, Scope: slices.Clone(h.Scope)}
	}
	return out
}

// afterDecision does what the server does with a recorded decision
// before answering: it keeps the input of an action held for approval
// (Config.Inputs), so that the action can be executed once approved, and
// executes an allowed action whose tool has an executor
// (Config.Executors) or a connector of the Guard, adding the receipts and
// the output to out, or queues it (Config.Enqueue; queued reports it). For an
// idempotent replay it does the same for what is still due: a pending
// action's input is stored again (idempotently) and an allowed action
// that was never executed is executed now; the claim keeps that to once.
func (s *server) afterDecision(r *http.Request, a *oars.Action, out *oars.Outcome) (queued bool, err error) {
	if len(out.Receipts) == 0 {
		return false, nil
	}
	first, last := out.Receipts[0].Receipt, out.Receipts[len(out.Receipts)-1].Receipt
	switch {
	case last.Status == receipt.StatusPendingApproval && first.Mode == receipt.ModeEnforce && s.cfg.Inputs != nil:
		return false, s.keepInput(r, a, out)
	case len(out.Receipts) == 1 && out.Allowed():
		exec := s.cfg.Executors[a.Resource.ToolID]
		switch {
		case exec == nil && !s.guard.Connectors().Serves(a.Resource.ToolID):
			return false, nil
		case exec == nil && s.cfg.Enqueue != nil:
			return true, s.enqueue(r, a, out)
		}
		return false, s.execute(r, a, out, exec) // a nil exec runs the connector
	}
	return false, nil
}

// enqueue queues the execution of an allowed action (Config.Enqueue).
// If the job cannot be stored the answer is 503 and the action stays
// allowed and unexecuted; a replay of the request with the same
// Idempotency-Key queues it again.
func (s *server) enqueue(r *http.Request, a *oars.Action, out *oars.Outcome) error {
	canonical, err := canonicalInput(a)
	if err != nil {
		return internal(err) // the Guard accepted it: cannot happen
	}
	if err := s.cfg.Enqueue(context.WithoutCancel(r.Context()), out.ActionID, a.TenantID, canonical); err != nil {
		return unavailable("the action could not be queued for execution; retry with the same Idempotency-Key", err)
	}
	return nil
}

// canonicalInput returns a's input in canonical form, {} for none, as
// the Guard digests it.
func canonicalInput(a *oars.Action) ([]byte, error) {
	input := a.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	return receipt.Canonicalize(input)
}

// keepInput stores the canonical input of an action held for approval.
// If it cannot, the action is cancelled (an approval that could never be
// executed is worse than none) and the answer is 503.
func (s *server) keepInput(r *http.Request, a *oars.Action, out *oars.Outcome) error {
	canonical, err := canonicalInput(a)
	if err != nil {
		return internal(err) // the Guard accepted it: cannot happen
	}
	perr := s.cfg.Inputs.PutInput(r.Context(), out.ActionID, a.TenantID, canonical)
	if perr == nil {
		return nil
	}
	by := approval.Approver{UserID: "oarsd", Roles: []string{approval.AdminRole}, TenantIDs: []string{a.TenantID}}
	ctx := context.WithoutCancel(r.Context())
	if _, err := s.guard.Cancel(ctx, out.ActionID, by, "the action's input could not be stored"); err != nil {
		s.log.ErrorContext(ctx, "cancelling an action whose input could not be stored failed",
			slog.String("request_id", stateOf(r).id), slog.String("action_id", out.ActionID), slog.Any("error", err))
	}
	return unavailable("the action's input could not be stored; the action was cancelled", perr)
}

// execute runs an allowed action with its tool's executor, claiming it
// first, bounded by the execution timeout and not cancelled by the client
// going away (a half-run side effect is worse than a late answer). A
// failed execution is a recorded outcome, answered like any other; an
// execution already claimed by a concurrent request answers the receipts
// recorded so far.
func (s *server) execute(r *http.Request, a *oars.Action, out *oars.Outcome, exec oars.ExecFunc) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.execTimeout)
	defer cancel()
	res, err := s.guard.Execute(ctx, out.ActionID, a, exec)
	if res != nil && len(res.Receipts) > 0 {
		out.Receipts = append(out.Receipts, res.Receipts...)
		out.Status = res.Status
		out.Output = res.Output
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, oars.ErrAlreadyClaimed):
		entries, rerr := s.guard.Receipts(r.Context(), out.ActionID)
		if rerr != nil {
			return unavailable("the ledger is unavailable", rerr)
		}
		out.Receipts, out.Status = entries, entries[len(entries)-1].Receipt.Status
		return nil
	case res != nil && res.Status == receipt.StatusFailed:
		s.log.WarnContext(r.Context(), "action execution failed",
			slog.String("request_id", stateOf(r).id), slog.String("action_id", out.ActionID),
			slog.String("error_class", oars.ErrorClass(err)))
		return nil
	case errors.Is(err, oars.ErrLedger), errors.Is(err, oars.ErrSigning):
		return unavailable("the ledger is unavailable", err)
	}
	return internal(err)
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
	entries, err := s.visibleReceipts(r, p)
	if err != nil {
		return err
	}
	first, last := entries[0].Receipt, entries[len(entries)-1].Receipt
	view := actionView{
		ActionID: first.ActionID,
		Status:   last.Status,
		TenantID: first.TenantID,
		AgentID:  first.AgentID,
		Resource: first.Resource,
	}
	view.Receipts, view.LedgerIndexes = signedReceipts(entries)
	writeJSON(w, http.StatusOK, view)
	return nil
}

// visibleReceipts returns the receipts of the action of the path's id.
// Unknown actions and those of tenants or agents p may not see are 404
// alike.
func (s *server) visibleReceipts(r *http.Request, p *identity.Principal) ([]oars.Entry, error) {
	id := r.PathValue("id")
	if checkString(id, true, oars.MaxIDLength) != "" {
		return nil, notFound("action not found")
	}
	entries, err := s.guard.Receipts(r.Context(), id)
	switch {
	case errors.Is(err, oars.ErrNotFound):
		return nil, notFound("action not found")
	case err != nil:
		return nil, unavailable("the ledger is unavailable", err)
	}
	first := entries[0].Receipt
	if !p.InTenant(first.TenantID) || !p.MaySeeAgent(first.AgentID) {
		return nil, notFound("action not found")
	}
	return entries, nil
}
