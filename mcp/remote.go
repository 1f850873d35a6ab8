package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/internal/netutil"
	"github.com/oarsdev/oars/receipt"
)

// Defaults of [Remote].
const (
	// DefaultRemotePollInterval is how often [Remote.Wait] reads the
	// action again.
	DefaultRemotePollInterval = 500 * time.Millisecond
	// remoteTimeout bounds one request of the default HTTP client.
	remoteTimeout = 30 * time.Second
	// remoteMaxBody bounds an answer of the server.
	remoteMaxBody = 8 << 20
	// remoteAttempts is how often Decide sends an action whose request
	// failed in transit (same Idempotency-Key, so it is decided once).
	remoteAttempts = 2
)

// Remote is a [Decider] that decides and records at an oarsd, through its
// HTTP API with an API token (roles admin, operator or agent), instead of
// an in-process [oars.Guard]:
//
//   - Decide posts the action (POST /v1/actions, with a fresh
//     Idempotency-Key so that a request lost in transit is sent again and
//     decided once) and returns the server's signed receipts.
//   - Execute claims the action (POST /v1/actions/{id}/claim: the server
//     records executing if it is allowed, or approved, and the same call,
//     and refuses otherwise), runs exec, and reports the output or the
//     error class (POST /v1/actions/{id}/result): the server records
//     executed or failed. If the report fails, the call has run all the
//     same and Execute returns the error; the server marks the claimed
//     action failed once its execution lease has passed.
//   - Wait polls GET /v1/actions/{id} until the action is no longer
//     pending approval or executing.
//   - Cancel posts POST /v1/actions/{id}/cancel; the server cancels on
//     behalf of the token's principal, not of by, so only a token of the
//     requesting user or an admin may cancel.
//   - Refuse records nothing: the API records only what the server
//     decides. It returns a denied Outcome without receipts.
//
// Remote has no policies (it is no [PolicySource]): a [Proxy] over it
// lists every tool, and the server's policies decide each call. The
// server sees neither Action.Request (the MCP annotation hints: its
// policies see its own request metadata as context.request) nor
// Principal.Delegation (it takes the delegation from the token), and
// takes Principal.Roles only from admin and operator tokens. Receipts
// are taken as the server sends them (over TLS), not verified.
//
// The token is sent only as the Authorization header, never logged or
// put in errors. Remote is safe for concurrent use.
type Remote struct {
	base   string // without a trailing slash
	token  string
	client *http.Client
	poll   time.Duration
}

var _ Decider = (*Remote)(nil)

// RemoteOption configures a [Remote].
type RemoteOption func(*Remote) error

// WithPollInterval sets how often [Remote.Wait] reads the action again
// (default [DefaultRemotePollInterval]); it must be positive.
func WithPollInterval(d time.Duration) RemoteOption {
	return func(r *Remote) error {
		if d <= 0 {
			return errors.New("poll interval must be positive")
		}
		r.poll = d
		return nil
	}
}

// NewRemote returns a [Remote] for the oarsd at baseURL (such as
// "https://oars.example.com"), authenticated with token. baseURL must be
// https, or http to a loopback host (localhost, 127.0.0.0/8, ::1), without
// user information, query or fragment. client sends the requests; nil
// means a client with a 30s timeout that follows no redirects. A client
// given should bound its requests and refuse redirects to plain http.
func NewRemote(baseURL, token string, client *http.Client, opts ...RemoteOption) (*Remote, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, errors.New("mcp: remote: the server URL is not a valid URL")
	}
	switch {
	case u.User != nil:
		return nil, errors.New("mcp: remote: the server URL must not contain user information")
	case u.Hostname() == "":
		return nil, errors.New("mcp: remote: the server URL has no host")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("mcp: remote: the server URL %s must not have a query or fragment", u.Redacted())
	case u.Scheme == "https":
	case u.Scheme == "http" && netutil.IsLoopbackHost(u.Hostname()):
	case u.Scheme == "http":
		return nil, fmt.Errorf("mcp: remote: server URL %s: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https", u.Redacted())
	default:
		return nil, fmt.Errorf("mcp: remote: server URL: unsupported scheme %q; want https (or http for a loopback host)", u.Scheme)
	}
	if token == "" || strings.ContainsFunc(token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, errors.New("mcp: remote: the API token is empty or contains white space or control characters")
	}
	if client == nil {
		client = &http.Client{
			Timeout:       remoteTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	r := &Remote{base: strings.TrimSuffix(u.String(), "/"), token: token, client: client, poll: DefaultRemotePollInterval}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			return nil, fmt.Errorf("mcp: remote: %w", err)
		}
	}
	return r, nil
}

// String names the server, never the token.
func (r *Remote) String() string { return "mcp.Remote(" + r.base + ")" }

// RemoteError is an error answer of the oarsd: its HTTP status and the
// code and message of its error envelope. It wraps the sentinel its code
// stands for, so that callers test it as they test the Guard's errors:
// already_claimed is oars.ErrAlreadyClaimed, not_approved
// oars.ErrNotApproved, call_mismatch oars.ErrApprovalMismatch, not_found
// oars.ErrNotFound, validation_failed oars.ErrInvalidAction,
// idempotency_conflict oars.ErrIdempotencyConflict, not_pending
// approval.ErrNotPending, expired approval.ErrExpired, not_requester
// approval.ErrNotRequester.
type RemoteError struct {
	StatusCode    int
	Code, Message string
	// ReceiptID is the receipt recording a refusal (details.receipt_id),
	// or "".
	ReceiptID string
}

func (e *RemoteError) Error() string {
	s := "HTTP " + strconv.Itoa(e.StatusCode)
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Unwrap returns the sentinel of the error's code, or nil.
func (e *RemoteError) Unwrap() error {
	switch e.Code {
	case "already_claimed":
		return oars.ErrAlreadyClaimed
	case "not_approved":
		return oars.ErrNotApproved
	case "call_mismatch":
		return oars.ErrApprovalMismatch
	case "not_found":
		return oars.ErrNotFound
	case "validation_failed":
		return oars.ErrInvalidAction
	case "idempotency_conflict":
		return oars.ErrIdempotencyConflict
	case "not_pending":
		return approval.ErrNotPending
	case "expired":
		return approval.ErrExpired
	case "not_requester":
		return approval.ErrNotRequester
	}
	return nil
}

// remoteAction is an action as POST /v1/actions takes it.
type remoteAction struct {
	TenantID    string          `json:"tenant_id"`
	AgentID     string          `json:"agent_id"`
	UserContext remoteUser      `json:"user_context"`
	Resource    oars.Resource   `json:"resource"`
	Input       json.RawMessage `json:"input"`
}

type remoteUser struct {
	UserID string   `json:"user_id"`
	Roles  []string `json:"roles,omitempty"`
}

func newRemoteAction(a *oars.Action) remoteAction {
	input := a.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	return remoteAction{
		TenantID: a.TenantID, AgentID: a.AgentID,
		UserContext: remoteUser{UserID: a.Principal.UserID, Roles: a.Principal.Roles},
		Resource:    a.Resource, Input: input,
	}
}

// remoteResult is the body of POST /v1/actions/{id}/result.
type remoteResult struct {
	remoteAction
	Output     json.RawMessage `json:"output,omitempty"`
	ErrorClass string          `json:"error_class,omitempty"`
}

// remoteOutcome is what the API answers about an action: POST
// /v1/actions, GET /v1/actions/{id}, POST /v1/actions/{id}/result and
// …/cancel all carry these members.
type remoteOutcome struct {
	ActionID      string            `json:"action_id"`
	Status        receipt.Status    `json:"status"`
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
	Replayed      bool              `json:"replayed"`
	Queued        bool              `json:"queued"`
}

// outcome parses the answer into an Outcome: the receipts as the server
// sent them, byte for byte.
func (ro *remoteOutcome) outcome() (*oars.Outcome, error) {
	if len(ro.Receipts) == 0 || len(ro.Receipts) != len(ro.LedgerIndexes) {
		return nil, errors.New("the server's answer has no receipts or no ledger index for each")
	}
	out := &oars.Outcome{ActionID: ro.ActionID, Status: ro.Status, Replayed: ro.Replayed}
	for i, raw := range ro.Receipts {
		var r receipt.Receipt
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("the server sent a receipt that is not one: %w", err)
		}
		if r.ActionID != ro.ActionID {
			return nil, errors.New("the server sent a receipt of another action")
		}
		out.Receipts = append(out.Receipts, oars.Entry{Receipt: &r, Bytes: []byte(raw), Index: ro.LedgerIndexes[i]})
	}
	if last := out.Receipts[len(out.Receipts)-1].Receipt.Status; last != ro.Status {
		return nil, errors.New("the server's status is not that of its last receipt")
	}
	return out, nil
}

// call sends one request (body as JSON if not nil, idempotencyKey if not
// empty) and decodes a 2xx answer into v. Another answer is a
// *RemoteError.
func (r *Remote) call(ctx context.Context, method, path string, body any, idempotencyKey string, v any) error {
	_, err := r.callHeader(ctx, method, path, body, idempotencyKey, v)
	return err
}

// callHeader is call, returning the answer's header too.
func (r *Remote) callHeader(ctx context.Context, method, path string, body any, idempotencyKey string, v any) (http.Header, error) {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, remoteMaxBody+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read the answer: %w", err)
	case len(data) > remoteMaxBody:
		return nil, fmt.Errorf("the answer is larger than %d bytes", remoteMaxBody)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newRemoteError(resp.StatusCode, data)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("the answer is not the JSON expected: %w", err)
	}
	return resp.Header, nil
}

// newRemoteError reads the server's error envelope, if body is one. Code
// and message are shortened and stripped of control characters.
func newRemoteError(status int, body []byte) *RemoteError {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Details struct {
				ReceiptID string `json:"receipt_id"`
			} `json:"details"`
		} `json:"error"`
	}
	e := &RemoteError{StatusCode: status}
	if json.Unmarshal(body, &env) == nil {
		e.Code, e.Message, e.ReceiptID = clean(env.Error.Code), clean(env.Error.Message), clean(env.Error.Details.ReceiptID)
	}
	return e
}

// clean shortens s to 300 bytes and drops its control characters.
func clean(s string) string {
	if len(s) > 300 {
		s = strings.ToValidUTF8(s[:300], "") + "…"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// transient reports whether err is a failure in transit (no answer), not
// an answer of the server or the end of ctx.
func transient(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	_, answered := errors.AsType[*RemoteError](err)
	return !answered
}

// Decide posts a to the server (POST /v1/actions) and returns its
// decision: the Outcome carries the server's receipts byte for byte and
// no policy Decision. a.ID must be empty (the server names actions);
// a.IdempotencyKey, if set, is sent, else a fresh UUID. A request lost in
// transit is sent once more with the same key. A call the server refuses
// for the token (403 with a recorded refusal) is a denied Outcome with
// that receipt. Answers of the server are *RemoteError. An action of a
// tool the server executes itself (its executors or connectors) is an
// error: it must not run here too.
func (r *Remote) Decide(ctx context.Context, a *oars.Action) (*oars.Outcome, error) {
	if a == nil {
		return nil, fmt.Errorf("mcp: remote: decide: %w: nil action", oars.ErrInvalidAction)
	}
	if a.ID != "" {
		return nil, fmt.Errorf("mcp: remote: decide: %w: the server names actions; leave the id empty", oars.ErrInvalidAction)
	}
	key := a.IdempotencyKey
	if key == "" {
		key = uuid.NewString()
	}
	var ro remoteOutcome
	var err error
	for range remoteAttempts {
		ro = remoteOutcome{}
		err = r.call(ctx, http.MethodPost, "/v1/actions", newRemoteAction(a), key, &ro)
		if err == nil || !transient(ctx, err) {
			break
		}
	}
	if re, ok := errors.AsType[*RemoteError](err); ok && re.StatusCode == http.StatusForbidden && re.ReceiptID != "" {
		return r.refusal(ctx, re)
	}
	if err != nil {
		return nil, fmt.Errorf("mcp: remote: decide: %w", err)
	}
	out, err := ro.outcome()
	if err != nil {
		return nil, fmt.Errorf("mcp: remote: decide: %w", err)
	}
	if ro.Queued || len(out.Receipts) > 1 && !ro.Replayed {
		return nil, fmt.Errorf("mcp: remote: decide: the server executes the actions of tool %q itself (action %s); name the upstream differently", a.Resource.ToolID, ro.ActionID)
	}
	return out, nil
}

// refusal returns the denied Outcome of a call the server refused for
// the token, with the receipt recording it (GET /v1/receipts/{id}).
func (r *Remote) refusal(ctx context.Context, re *RemoteError) (*oars.Outcome, error) {
	var raw json.RawMessage
	h, err := r.callHeader(ctx, http.MethodGet, "/v1/receipts/"+url.PathEscape(re.ReceiptID), nil, "", &raw)
	if err != nil {
		return nil, fmt.Errorf("mcp: remote: decide: %w (its receipt could not be read: %w)", re, err)
	}
	var rec receipt.Receipt
	index, ierr := strconv.ParseInt(h.Get("Oars-Ledger-Index"), 10, 64)
	if err := json.Unmarshal(raw, &rec); err != nil || ierr != nil || rec.ReceiptID != re.ReceiptID || rec.Status != receipt.StatusDenied {
		return nil, fmt.Errorf("mcp: remote: decide: %w (the server sent another receipt)", re)
	}
	return &oars.Outcome{ActionID: rec.ActionID, Status: receipt.StatusDenied, Receipts: []oars.Entry{{Receipt: &rec, Bytes: raw, Index: index}}}, nil
}

// get reads action id (GET /v1/actions/{id}).
func (r *Remote) get(ctx context.Context, id string) (*oars.Outcome, error) {
	var ro remoteOutcome
	if err := r.call(ctx, http.MethodGet, "/v1/actions/"+url.PathEscape(id), nil, "", &ro); err != nil {
		return nil, err
	}
	if ro.ActionID != id {
		return nil, errors.New("the server sent another action")
	}
	return ro.outcome()
}

// Execute claims action id at the server (POST /v1/actions/{id}/claim:
// the executing receipt is recorded before anything runs, so the action
// runs once however many clients try), runs exec, and reports its result
// (POST /v1/actions/{id}/result): executed (with the output's digest; the
// output itself is sent) or failed (with oars.ErrorClass of exec's error,
// never its text). a must be the decided call; a.ID must be id or empty
// (it is set).
//
// A claim the server refuses is an error wrapping oars.ErrNotApproved
// (not allowed or approved), oars.ErrAlreadyClaimed or
// oars.ErrApprovalMismatch (another call), and exec is not run. The
// report is sent even if ctx ends meanwhile (exec has run). If the report
// fails, the error says why; the server marks the claimed action failed
// (interrupted) once its execution lease has passed.
func (r *Remote) Execute(ctx context.Context, id string, a *oars.Action, exec oars.ExecFunc) (*oars.Outcome, error) {
	out := &oars.Outcome{ActionID: id}
	switch {
	case exec == nil:
		return out, fmt.Errorf("mcp: remote: execute: %w: nil exec function", oars.ErrInvalidAction)
	case a == nil:
		return out, fmt.Errorf("mcp: remote: execute: %w: nil action", oars.ErrInvalidAction)
	}
	if a.ID == "" {
		a.ID = id
	}
	if a.ID != id {
		return out, fmt.Errorf("mcp: remote: execute: %w: action id differs", oars.ErrApprovalMismatch)
	}
	// Claim first, so that the action runs once however many clients try.
	var claimed remoteOutcome
	if err := r.call(ctx, http.MethodPost, "/v1/actions/"+url.PathEscape(id)+"/claim", newRemoteAction(a), "", &claimed); err != nil {
		return out, fmt.Errorf("mcp: remote: claim action %s: %w", id, err)
	}
	if c, err := claimed.outcome(); err == nil {
		out.Status, out.Receipts = c.Status, c.Receipts
	}

	output, execErr := exec(ctx, a)
	body := remoteResult{remoteAction: newRemoteAction(a)}
	if execErr == nil {
		if len(output) == 0 {
			output = json.RawMessage("null")
		}
		if _, err := receipt.Canonicalize(output); err != nil {
			execErr = fmt.Errorf("%w: %w", oars.ErrInvalidOutput, err)
		}
	}
	if execErr != nil {
		body.ErrorClass = oars.ErrorClass(execErr)
	} else {
		body.Output = output
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), remoteTimeout)
	defer cancel()
	var ro remoteOutcome
	if err := r.call(rctx, http.MethodPost, "/v1/actions/"+url.PathEscape(id)+"/result", body, "", &ro); err != nil {
		return out, fmt.Errorf("mcp: remote: report the result of action %s: %w", id, err)
	}
	res, err := ro.outcome()
	if err != nil {
		return out, fmt.Errorf("mcp: remote: report the result of action %s: %w", id, err)
	}
	out.Status, out.Receipts = res.Status, append(out.Receipts, res.Receipts...)
	if execErr != nil {
		return out, fmt.Errorf("mcp: remote: exec: %w", execErr)
	}
	out.Output = output
	return out, nil
}

// waitable reports whether an action with status s may still change
// without anyone executing it.
func waitable(s receipt.Status) bool {
	return s == receipt.StatusPendingApproval || s == receipt.StatusVote || s == receipt.StatusExecuting
}

// Wait reads action id (GET /v1/actions/{id}) every poll interval until it
// is no longer pending approval or executing, and returns all its
// receipts. Failures in transit and 5xx answers are retried at the next
// poll. When ctx ends first it returns an error wrapping
// oars.ErrPendingApproval and ctx.Err(); an unknown action (or one the
// token may not see) is an error wrapping oars.ErrNotFound.
func (r *Remote) Wait(ctx context.Context, id string) (*oars.Outcome, error) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return &oars.Outcome{ActionID: id, Status: receipt.StatusPendingApproval},
				fmt.Errorf("mcp: remote: wait: %w: %w", oars.ErrPendingApproval, ctx.Err())
		case <-timer.C:
		}
		out, err := r.get(ctx, id)
		re, answered := errors.AsType[*RemoteError](err)
		switch {
		case err == nil && !waitable(out.Status):
			return out, nil
		case err == nil, ctx.Err() != nil:
		case !answered || re.StatusCode >= 500:
			// The server is unreachable or failing: try again.
		default:
			return nil, fmt.Errorf("mcp: remote: wait: %w", err)
		}
		timer.Reset(r.poll)
	}
}

// Cancel cancels action id, pending approval, with reason (POST
// /v1/actions/{id}/cancel) on behalf of the token's principal: by is not
// sent (see [Remote]). The Outcome holds the cancelled receipt. Refusals
// are *RemoteError wrapping approval.ErrNotPending, approval.ErrExpired,
// approval.ErrNotRequester or oars.ErrNotFound.
func (r *Remote) Cancel(ctx context.Context, id string, _ approval.Approver, reason string) (*oars.Outcome, error) {
	var ro remoteOutcome
	body := struct {
		Reason string `json:"reason"`
	}{reason}
	if err := r.call(ctx, http.MethodPost, "/v1/actions/"+url.PathEscape(id)+"/cancel", body, "", &ro); err != nil {
		return &oars.Outcome{ActionID: id}, fmt.Errorf("mcp: remote: cancel: %w", err)
	}
	all, err := ro.outcome()
	if err != nil {
		return &oars.Outcome{ActionID: id}, fmt.Errorf("mcp: remote: cancel: %w", err)
	}
	last := all.Receipts[len(all.Receipts)-1]
	return &oars.Outcome{ActionID: id, Status: last.Receipt.Status, Receipts: []oars.Entry{last}}, nil
}

// Refuse denies a without asking the server and records nothing: the API
// records only the server's own decisions and refusals. It returns a
// denied Outcome without receipts.
func (r *Remote) Refuse(ctx context.Context, a *oars.Action, _ string) (*oars.Outcome, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mcp: remote: refuse: %w", err)
	}
	if a == nil {
		return nil, fmt.Errorf("mcp: remote: refuse: %w: nil action", oars.ErrInvalidAction)
	}
	return &oars.Outcome{ActionID: a.ID, Status: receipt.StatusDenied}, nil
}
