package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strings"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

// Error codes of POST /v1/actions/{id}/result (all 409).
const (
	// codeNotApproved: the action is neither allowed nor approved
	// (denied, pending, rejected, expired or cancelled).
	codeNotApproved = "not_approved"
	// codeAlreadyClaimed: the action's execution was already claimed or
	// reported.
	codeAlreadyClaimed = "already_claimed"
	// codeCallMismatch: the reported call is not the decided one.
	codeCallMismatch = "call_mismatch"
)

// errorClassPattern is what an error class reported by a client must
// look like: the Guard records only such classes.
var errorClassPattern = regexp.MustCompile(`^[a-z0-9_.-]{1,64}$`)

// resultRequest is the body of POST /v1/actions/{id}/result: the call as
// POST /v1/actions took it, and exactly one of output and error_class.
type resultRequest struct {
	actionRequest
	// Output is the tool's output, any JSON value (null included); only
	// its digest is recorded.
	Output jsontext.Value `json:"output"`
	// ErrorClass names why the execution failed.
	ErrorClass *string `json:"error_class"`
}

// validate checks the call as POST /v1/actions does, and the result.
func (req *resultRequest) validate() error {
	if err := req.actionRequest.validate(); err != nil {
		return err
	}
	switch {
	case len(req.Output) > 0 && req.ErrorClass != nil:
		return badRequest(`give only one of the fields "output" and "error_class"`)
	case len(req.Output) == 0 && req.ErrorClass == nil:
		return badRequest(`one of the fields "output" and "error_class" is required`)
	case req.ErrorClass != nil && !errorClassPattern.MatchString(*req.ErrorClass):
		return badRequest(`field "error_class": want 1 to 64 lower-case letters, digits, '_', '.' or '-'`)
	}
	return nil
}

// reportedError is the execution error a client reported: its class is
// what the Guard records.
type reportedError struct{ class string }

func (e reportedError) Error() string      { return "the client reported a failed execution" }
func (e reportedError) ErrorClass() string { return e.class }

// postResult records the result of an allowed or approved action that the
// client executed itself: the Guard claims the action (executing) and
// records executed, with the output's digest, or failed, with the error
// class ([oars.Guard.Execute]). The call must be the decided one and the
// credential bound to it as for POST /v1/actions; actions the caller may
// not see are 404, as for GET /v1/actions/{id}. An action whose tool the
// server executes itself (Config.Executors, connectors) is 409 conflict;
// one neither allowed nor approved 409 not_approved; one already claimed
// or reported 409 already_claimed; a call that differs from the decided
// one 409 call_mismatch. Refusals record nothing. It answers 200 with the
// receipts recorded, as POST /v1/actions does.
func (s *server) postResult(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req resultRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	last, a, err := s.clientCall(r, p, &req.actionRequest)
	if err != nil {
		return err
	}
	var execErr error
	var output json.RawMessage
	if req.ErrorClass != nil {
		execErr = reportedError{class: *req.ErrorClass}
	} else {
		output = json.RawMessage(req.Output)
	}
	// Once claimed, the result is recorded even if the client goes away.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.execTimeout)
	defer cancel()
	var out *oars.Outcome
	if last.Status == receipt.StatusExecuting {
		// Claimed first (POST /v1/actions/{id}/claim): complete it.
		out, err = s.guard.Complete(ctx, a.ID, a, output, execErr)
		if errors.Is(err, oars.ErrNotClaimed) {
			err = fmt.Errorf("%w: %w", oars.ErrAlreadyClaimed, err)
		}
	} else {
		out, err = s.guard.Execute(ctx, a.ID, a, func(context.Context, *oars.Action) (json.RawMessage, error) {
			return output, execErr
		})
	}
	switch {
	case err == nil:
	case out != nil && out.Status == receipt.StatusFailed && len(out.Receipts) > 0:
		// The reported failure (or an output the Guard refused as
		// invalid_output) is recorded: an outcome like any other.
	default:
		return clientExecError(err, last.Status)
	}
	if out.Status == receipt.StatusFailed {
		s.log.InfoContext(r.Context(), "client reported a failed execution",
			slog.String("request_id", stateOf(r).id), slog.String("action_id", a.ID),
			slog.String("error_class", out.Receipts[len(out.Receipts)-1].Receipt.ErrorClass))
	}
	resp := actionResponse{ActionID: a.ID, Status: out.Status}
	resp.Receipts, resp.LedgerIndexes = signedReceipts(out.Receipts)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// clientExecError maps an error of the Guard's Claim, Execute or
// Complete for an action reported by a client (whose status was status)
// to the answer of postClaim and postResult.
func clientExecError(err error, status receipt.Status) error {
	switch {
	case errors.Is(err, oars.ErrAlreadyClaimed):
		return errorf(http.StatusConflict, codeAlreadyClaimed,
			fmt.Sprintf("the action is %s: its execution was already claimed or reported", status))
	case errors.Is(err, oars.ErrNotApproved):
		return errorf(http.StatusConflict, codeNotApproved,
			fmt.Sprintf("the action is %s: only an allowed or approved action may be executed", status))
	case errors.Is(err, oars.ErrApprovalMismatch):
		return errorf(http.StatusConflict, codeCallMismatch, "the call "+mismatchWhat(err)+"differs from the decided one")
	case errors.Is(err, oars.ErrNotFound):
		return notFound("action not found")
	case errors.Is(err, oars.ErrInvalidAction):
		return badRequest(strings.TrimPrefix(err.Error(), "oars: "))
	case errors.Is(err, oars.ErrLedger), errors.Is(err, oars.ErrSigning):
		return unavailable("the ledger is unavailable", err)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return unavailable("the request was cancelled", err)
	}
	return internal(err)
}

// mismatchWhat names the part of the call that differs, from the Guard's
// ErrApprovalMismatch ("… tenant differs: …"), followed by a space; "" if
// the error does not say.
func mismatchWhat(err error) string {
	for _, what := range []string{"tenant", "agent", "user", "delegation", "resource", "input"} {
		if strings.Contains(err.Error(), " "+what+" differs") {
			return "(" + what + ") "
		}
	}
	return ""
}

// postClaim claims the execution of an allowed or approved action that
// the client will run itself ([oars.Guard.Claim]): the executing receipt
// is recorded before the client acts, so that two clients never both
// run it; the client then reports with POST /v1/actions/{id}/result. The
// body is the call as for POST /v1/actions; refusals are those of
// postResult. It answers 200 with the receipts recorded.
func (s *server) postClaim(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	var req actionRequest
	if err := s.readJSON(w, r, &req); err != nil {
		return err
	}
	if err := req.validate(); err != nil {
		return err
	}
	last, a, err := s.clientCall(r, p, &req)
	if err != nil {
		return err
	}
	out, err := s.guard.Claim(context.WithoutCancel(r.Context()), a.ID, a)
	if err != nil {
		return clientExecError(err, last.Status)
	}
	resp := actionResponse{ActionID: a.ID, Status: out.Status}
	resp.Receipts, resp.LedgerIndexes = signedReceipts(out.Receipts)
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// clientCall checks the call of a client that runs an action itself
// (claim and result): the tenant, the credential's binding, the action's
// visibility and that the server does not execute the tool itself. It
// returns the action's last receipt and the call as an action (with the
// action's id).
func (s *server) clientCall(r *http.Request, p *identity.Principal, req *actionRequest) (*receipt.Receipt, *oars.Action, error) {
	if !p.InTenant(req.TenantID) {
		return nil, nil, notFound("tenant not found")
	}
	if reason := bindingRefusal(p, req); reason != "" {
		// Nothing is recorded: the credential may not make this call.
		return nil, nil, errorf(http.StatusForbidden, codeForbidden, reason)
	}
	entries, err := s.visibleReceipts(r, p)
	if err != nil {
		return nil, nil, err
	}
	first, last := entries[0].Receipt, entries[len(entries)-1].Receipt
	if s.cfg.Executors[first.Resource.ToolID] != nil || s.guard.Connectors().Serves(first.Resource.ToolID) {
		return nil, nil, errorf(http.StatusConflict, codeConflict, "the server executes the actions of this tool itself")
	}
	a := req.action(r, p)
	a.ID = r.PathValue("id")
	return last, a, nil
}
