package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// resultBody returns the POST /v1/actions/{id}/result body of an
// actionBody(tenant, boundAgent, amount) call with the extra members of
// result (output or error_class).
func resultBody(tenant string, amount int, result map[string]any) string {
	return bodyWith(func(m map[string]any) {
		m["tenant_id"] = tenant
		m["input"] = map[string]any{"amount": amount, "note": "<b>&</b>"}
		for k, v := range result {
			m[k] = v
		}
	})
}

func (ts *testServer) report(token, id, body string) response {
	ts.t.Helper()
	return ts.do(request{method: "POST", path: "/v1/actions/" + id + "/result", token: token, body: body})
}

// statuses verifies raw receipts against the server's keys and returns
// their statuses.
func (ts *testServer) statuses(t *testing.T, raws []json.RawMessage) []receipt.Status {
	t.Helper()
	var out []receipt.Status
	for _, raw := range raws {
		out = append(out, ts.verify(t, raw).Status)
	}
	return out
}

func TestResultExecuted(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("agent", ownTenant, boundAgent, 5)
	require.Equal(t, "allowed", a.Status)

	resp := ts.report("agent", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": map[string]any{"refunded": true, "id": 7}}))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.action(t)
	assert.Equal(t, a.ActionID, got.ActionID)
	assert.Equal(t, "executed", got.Status)
	assert.Equal(t, []receipt.Status{receipt.StatusExecuting, receipt.StatusExecuted}, ts.statuses(t, got.Receipts))
	require.Len(t, got.LedgerIndexes, 2)
	for i, raw := range got.Receipts {
		leaf, err := ts.ledger.Leaf(context.Background(), got.LedgerIndexes[i])
		require.NoError(t, err)
		assert.Equal(t, []byte(raw), leaf, "receipt %d is the ledger leaf at its index", i)
	}
	executed := ts.verify(t, got.Receipts[1])
	want, err := receipt.DigestJSON(json.RawMessage(`{"id":7,"refunded":true}`))
	require.NoError(t, err)
	assert.Equal(t, want, executed.OutputDigest, "the output's digest is recorded")
	assert.Equal(t, int64(3), executed.Seq)

	// The whole action, as GET /v1/actions/{id} shows it, and the ledger
	// verify.
	view := ts.do(request{method: "GET", path: "/v1/actions/" + a.ActionID, token: "auditor"})
	require.Equal(t, http.StatusOK, view.status)
	assert.Equal(t, "executed", view.action(t).Status)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, ts.statuses(t, view.action(t).Receipts))
	v, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), ts.ledger.Store(), receipt.NewLogChecker(v))
	require.NoError(t, err)

	// A second report is refused and records nothing.
	size := ts.size()
	again := ts.report("agent", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": nil}))
	require.Equal(t, http.StatusConflict, again.status, "%s", again.body)
	assert.Equal(t, "already_claimed", again.errorBody(t).Error.Code)
	assert.Equal(t, size, ts.size())
}

func TestResultNullOutput(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("operator", ownTenant, boundAgent, 5)
	resp := ts.report("operator", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": nil}))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.action(t)
	want, err := receipt.DigestJSON(json.RawMessage(`null`))
	require.NoError(t, err)
	assert.Equal(t, want, ts.verify(t, got.Receipts[1]).OutputDigest, "output null is an output")
}

func TestResultFailed(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("operator", ownTenant, boundAgent, 5)
	resp := ts.report("operator", a.ActionID, resultBody(ownTenant, 5, map[string]any{"error_class": "upstream.timeout-2"}))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.action(t)
	assert.Equal(t, "failed", got.Status)
	assert.Equal(t, []receipt.Status{receipt.StatusExecuting, receipt.StatusFailed}, ts.statuses(t, got.Receipts))
	failed := ts.verify(t, got.Receipts[1])
	assert.Equal(t, "upstream.timeout-2", failed.ErrorClass)
	assert.Empty(t, failed.OutputDigest)
}

func TestResultApproved(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("operator", ownTenant, boundAgent, 500)
	require.Equal(t, "pending_approval", a.Status)

	pending := ts.report("operator", a.ActionID, resultBody(ownTenant, 500, map[string]any{"output": "paid"}))
	require.Equal(t, http.StatusConflict, pending.status, "%s", pending.body)
	assert.Equal(t, "not_approved", pending.errorBody(t).Error.Code)
	assert.Contains(t, pending.errorBody(t).Error.Message, "pending_approval")

	require.Equal(t, http.StatusOK, ts.decide("approver", a.ActionID, `{"decision":"approve","reason":"ok"}`).status)
	resp := ts.report("operator", a.ActionID, resultBody(ownTenant, 500, map[string]any{"output": "paid"}))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	got := resp.action(t)
	assert.Equal(t, "executed", got.Status)
	assert.Equal(t, []receipt.Status{receipt.StatusExecuting, receipt.StatusExecuted}, ts.statuses(t, got.Receipts))
}

func TestResultRefusals(t *testing.T) {
	ts := newTestServer(t, options{})
	allowed := ts.submit("operator", ownTenant, boundAgent, 5).ActionID
	denyBody := bodyWith(func(m map[string]any) { m["input"] = map[string]any{"note": "no amount"} })
	deniedResp := ts.do(request{method: "POST", path: "/v1/actions", token: "operator", body: denyBody})
	require.Equal(t, http.StatusCreated, deniedResp.status)
	denied := deniedResp.action(t)
	require.Equal(t, "denied", denied.Status)
	foreign := ts.submit("root", otherTenant, boundAgent, 5).ActionID
	rejected := ts.submit("operator", ownTenant, boundAgent, 500).ActionID
	require.Equal(t, http.StatusOK, ts.decide("approver", rejected, `{"decision":"reject","reason":"no"}`).status)
	ok := map[string]any{"output": "done"}

	tests := []struct {
		name     string
		token    string
		id       string
		body     string
		status   int
		code     string
		contains string
	}{
		{"denied action", "operator", denied.ActionID,
			bodyWith(func(m map[string]any) { m["input"] = map[string]any{"note": "no amount"}; m["output"] = "x" }),
			409, "not_approved", "denied"},
		{"rejected action", "operator", rejected, resultBody(ownTenant, 500, ok), 409, "not_approved", "rejected"},
		{"different input", "operator", allowed, resultBody(ownTenant, 6, ok), 409, "call_mismatch", "input"},
		{"different resource", "operator", allowed,
			bodyWith(func(m map[string]any) {
				m["input"] = map[string]any{"amount": 5, "note": "<b>&</b>"}
				m["resource"] = map[string]any{"tool_id": "payments", "operation": "charge", "target": "order/<42>&x"}
				m["output"] = "x"
			}), 409, "call_mismatch", "resource"},
		{"different user", "operator", allowed,
			bodyWith(func(m map[string]any) {
				m["input"] = map[string]any{"amount": 5, "note": "<b>&</b>"}
				m["user_context"] = map[string]any{"user_id": "mallory"}
				m["output"] = "x"
			}), 409, "call_mismatch", "user"},
		{"another tenant's action", "operator", foreign, resultBody(ownTenant, 5, ok), 404, "not_found", "action not found"},
		{"another tenant", "operator", foreign, resultBody(otherTenant, 5, ok), 404, "not_found", "tenant not found"},
		{"unknown action", "operator", "no-such-action", resultBody(ownTenant, 5, ok), 404, "not_found", "action not found"},
		{"agent bound to another agent", "agent", allowed,
			bodyWith(func(m map[string]any) {
				m["agent_id"] = "bot-2"
				m["input"] = map[string]any{"amount": 5, "note": "<b>&</b>"}
				m["output"] = "x"
			}), 403, "forbidden", "agent_id"},
		{"output and error_class", "operator", allowed,
			resultBody(ownTenant, 5, map[string]any{"output": 1, "error_class": "x"}), 400, "validation_failed", "only one"},
		{"neither output nor error_class", "operator", allowed, resultBody(ownTenant, 5, nil), 400, "validation_failed", "is required"},
		{"bad error class", "operator", allowed,
			resultBody(ownTenant, 5, map[string]any{"error_class": "Upstream Error"}), 400, "validation_failed", "error_class"},
		{"long error class", "operator", allowed,
			resultBody(ownTenant, 5, map[string]any{"error_class": string(make([]byte, 65))}), 400, "validation_failed", "error_class"},
		{"unknown field", "operator", allowed,
			resultBody(ownTenant, 5, map[string]any{"output": 1, "output_digest": "sha256:00"}), 400, "validation_failed", `unknown field "output_digest"`},
		{"error_class not a string", "operator", allowed,
			resultBody(ownTenant, 5, map[string]any{"error_class": 3}), 400, "validation_failed", `"error_class"`},
		{"missing resource", "operator", allowed,
			bodyWith(func(m map[string]any) { delete(m, "resource"); m["output"] = 1 }), 400, "validation_failed", "resource"},
		{"duplicate key", "operator", allowed, `{"output":1,"output":2}`, 400, "validation_failed", "duplicate"},
		{"not JSON", "operator", allowed, `{"output":`, 400, "validation_failed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := ts.size()
			resp := ts.report(tt.token, tt.id, tt.body)
			require.Equal(t, tt.status, resp.status, "POST result = %d %s, want %d", resp.status, resp.body, tt.status)
			e := resp.errorBody(t)
			assert.Equal(t, tt.code, e.Error.Code)
			assert.Contains(t, e.Error.Message, tt.contains)
			assert.Equal(t, size, ts.size(), "a refusal records nothing")
		})
	}

	// After all these refusals the allowed action can still be reported.
	resp := ts.report("operator", allowed, resultBody(ownTenant, 5, ok))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "executed", resp.action(t).Status)

	// Content type and size limits apply.
	wrongType := ts.do(request{method: "POST", path: "/v1/actions/" + allowed + "/result", token: "operator", body: `{}`, contentType: "text/plain"})
	assert.Equal(t, http.StatusUnsupportedMediaType, wrongType.status)
}

func TestResultTooLarge(t *testing.T) {
	ts := newTestServer(t, options{maxBodyBytes: 512})
	a := ts.submit("operator", ownTenant, boundAgent, 5)
	big := make([]byte, 1024)
	for i := range big {
		big[i] = 'x'
	}
	resp := ts.report("operator", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": string(big)}))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.status, "%s", resp.body)
}

// TestResultServerExecutedTool: the actions of a tool the server executes
// itself cannot be reported by a client.
func TestResultServerExecutedTool(t *testing.T) {
	ran := 0
	ts := newTestServer(t, options{executors: map[string]oars.ExecFunc{
		"payments": func(context.Context, *oars.Action) (json.RawMessage, error) {
			ran++
			return json.RawMessage(`"ok"`), nil
		},
	}})
	a := ts.submit("operator", ownTenant, boundAgent, 5)
	require.Equal(t, "executed", a.Status)
	resp := ts.report("operator", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": "mine"}))
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "conflict", resp.errorBody(t).Error.Code)
	assert.Equal(t, 1, ran)
}

// TestClaimThenResult: a client claims before it runs the action, so
// that a second client cannot run it, and reports after.
func TestClaimThenResult(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("agent", ownTenant, boundAgent, 5)
	claimBody := bodyWith(func(m map[string]any) {
		m["tenant_id"] = ownTenant
		m["input"] = map[string]any{"amount": 5, "note": "<b>&</b>"}
	})
	claim := ts.do(request{method: "POST", path: "/v1/actions/" + a.ActionID + "/claim", token: "agent", body: claimBody})
	require.Equal(t, http.StatusOK, claim.status, "%s", claim.body)
	assert.Equal(t, "executing", claim.action(t).Status)

	again := ts.do(request{method: "POST", path: "/v1/actions/" + a.ActionID + "/claim", token: "agent", body: claimBody})
	require.Equal(t, http.StatusConflict, again.status, "%s", again.body)
	assert.Equal(t, "already_claimed", again.errorBody(t).Error.Code)

	other := ts.do(request{method: "POST", path: "/v1/actions/" + a.ActionID + "/result", token: "agent",
		body: resultBody(ownTenant, 6, map[string]any{"output": 1})})
	require.Equal(t, http.StatusConflict, other.status, "%s", other.body)
	assert.Equal(t, "call_mismatch", other.errorBody(t).Error.Code)

	resp := ts.report("agent", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": map[string]any{"ok": true}}))
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "executed", resp.action(t).Status)
	view := ts.do(request{method: "GET", path: "/v1/actions/" + a.ActionID, token: "auditor"})
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, ts.statuses(t, view.action(t).Receipts))

	late := ts.report("agent", a.ActionID, resultBody(ownTenant, 5, map[string]any{"output": 2}))
	require.Equal(t, http.StatusConflict, late.status)
	assert.Equal(t, "already_claimed", late.errorBody(t).Error.Code)
}
