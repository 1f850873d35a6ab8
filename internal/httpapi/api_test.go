package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

func decodeHashes(t testing.TB, b64 []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(b64))
	for i, s := range b64 {
		raw, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err)
		require.Len(t, raw, tlog.HashSize)
		copy(out[i][:], raw)
	}
	return out
}

type proofResult struct {
	Index    int64    `json:"index"`
	TreeSize int64    `json:"tree_size"`
	From     int64    `json:"from"`
	To       int64    `json:"to"`
	Hashes   []string `json:"hashes"`
}

type verifyResult struct {
	Valid     bool   `json:"valid"`
	ReceiptID string `json:"receipt_id"`
	Kid       string `json:"kid"`
	Check     string `json:"check"`
	Error     string `json:"error"`
}

func decodeJSON[T any](t testing.TB, r response) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(r.body, &v), "body %s", r.body)
	return v
}

// The quickstart, end to end over HTTP: submit, fetch, verify online and
// offline, then prove inclusion and consistency against signed
// checkpoints.
func TestQuickstart(t *testing.T) {
	ts := newTestServer(t, options{})
	ts.submit("root", otherTenant, "bot-9", 1) // so our leaf is not the only one

	sub := ts.submit("operator", ownTenant, boundAgent, 50)
	require.Equal(t, "allowed", sub.Status)
	require.Len(t, sub.Receipts, 1)
	require.Len(t, sub.LedgerIndexes, 1)
	assert.False(t, sub.Replayed)

	// Fetch it.
	got := ts.do(request{method: "GET", path: "/v1/actions/" + sub.ActionID, token: "auditor"})
	require.Equal(t, http.StatusOK, got.status, "%s", got.body)
	view := got.action(t)
	assert.Equal(t, sub.ActionID, view.ActionID)
	assert.Equal(t, "allowed", view.Status)
	assert.Equal(t, ownTenant, view.TenantID)
	assert.Equal(t, boundAgent, view.AgentID)
	assert.Equal(t, sub.LedgerIndexes, view.LedgerIndexes)
	require.Len(t, view.Receipts, 1)
	assert.True(t, bytes.Equal(sub.Receipts[0], view.Receipts[0]), "GET receipts = %s, want %s", view.Receipts[0], sub.Receipts[0])

	// Offline: a verifier built from the served JWKS.
	jwks := ts.do(request{method: "GET", path: "/.well-known/oap/jwks.json"})
	require.Equal(t, http.StatusOK, jwks.status)
	keys, err := receipt.ParseJWKS(jwks.body)
	require.NoError(t, err)
	verifier, err := receipt.NewVerifier(keys)
	require.NoError(t, err)

	for _, raw := range sub.Receipts {
		rc, err := verifier.Verify(raw)
		require.NoError(t, err, "offline Verify(%s)", raw)
		assert.Equal(t, "order/<42>&x", rc.Resource.Target, "receipt bytes must not be HTML-escaped")

		// Online, by id and by value.
		for _, body := range []string{
			fmt.Sprintf(`{"receipt_id":%q}`, rc.ReceiptID),
			fmt.Sprintf(`{"receipt":%s}`, raw),
		} {
			resp := ts.do(request{method: "POST", path: "/v1/receipts/verify", token: "approver", body: body})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			v := decodeJSON[verifyResult](t, resp)
			assert.Equal(t, verifyResult{Valid: true, ReceiptID: rc.ReceiptID, Kid: "test-receipts"}, v)
		}

		// The receipt by id, byte for byte, with its ledger index.
		one := ts.do(request{method: "GET", path: "/v1/receipts/" + rc.ReceiptID, token: "agent"})
		require.Equal(t, http.StatusOK, one.status, "%s", one.body)
		assert.Equal(t, "application/json", one.header.Get("Content-Type"))
		assert.True(t, bytes.Equal(raw, one.body), "GET /v1/receipts/{id} = %s, want %s", one.body, raw)
		assert.Equal(t, strconv.FormatInt(sub.LedgerIndexes[0], 10), one.header.Get(httpapi.LedgerIndexHeader))
	}

	// A tampered receipt does not verify, and the check is named.
	tampered := bytes.Replace(sub.Receipts[0], []byte(`"allowed"`), []byte(`"denied"`), 1)
	resp := ts.do(request{method: "POST", path: "/v1/receipts/verify", token: "operator", body: `{"receipt":` + string(tampered) + `}`})
	require.Equal(t, http.StatusOK, resp.status)
	v := decodeJSON[verifyResult](t, resp)
	assert.False(t, v.Valid)
	assert.Equal(t, "signature", v.Check)
	assert.NotEmpty(t, v.Error)

	// The checkpoint, verified with the served verifier key.
	vkResp := ts.do(request{method: "GET", path: "/v1/ledger/verifier-key", token: "auditor"})
	require.Equal(t, http.StatusOK, vkResp.status)
	assert.Equal(t, "text/plain; charset=utf-8", vkResp.header.Get("Content-Type"))
	noteVerifier, err := note.NewVerifier(strings.TrimSpace(string(vkResp.body)))
	require.NoError(t, err)
	checkpoint := func() *ledger.Checkpoint {
		t.Helper()
		resp := ts.do(request{method: "GET", path: "/v1/ledger/checkpoint", token: "agent"})
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		assert.Equal(t, "text/plain; charset=utf-8", resp.header.Get("Content-Type"))
		cp, err := ledger.ParseCheckpoint(resp.body, noteVerifier)
		require.NoError(t, err)
		return cp
	}
	cp1 := checkpoint()
	assert.Equal(t, origin, cp1.Origin)
	assert.Equal(t, ts.size(), cp1.Size)

	// Inclusion of our receipt: the leaf from the entries endpoint, the
	// proof from the proofs endpoint, the root from the checkpoint.
	idx := sub.LedgerIndexes[0]
	entry := ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/entries/%d", idx), token: "auditor"})
	require.Equal(t, http.StatusOK, entry.status, "%s", entry.body)
	assert.True(t, bytes.Equal(sub.Receipts[0], entry.body), "entry %d = %s, want the receipt", idx, entry.body)
	incl := ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/proofs/inclusion?index=%d&tree_size=%d", idx, cp1.Size), token: "agent"})
	require.Equal(t, http.StatusOK, incl.status, "%s", incl.body)
	ip := decodeJSON[proofResult](t, incl)
	assert.Equal(t, idx, ip.Index)
	assert.Equal(t, cp1.Size, ip.TreeSize)
	proof := tlog.RecordProof(decodeHashes(t, ip.Hashes))
	require.NoError(t, ledger.CheckInclusion(proof, cp1.Size, cp1.Root, idx, entry.body))
	assert.ErrorIs(t, ledger.CheckInclusion(proof, cp1.Size, cp1.Root, idx, tampered), ledger.ErrInvalidProof)

	// Consistency between two checkpoints.
	ts.submit("operator", ownTenant, boundAgent, 500)
	ts.submit("operator", ownTenant, boundAgent, 5)
	cp2 := checkpoint()
	require.Greater(t, cp2.Size, cp1.Size)
	cons := ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/proofs/consistency?from=%d&to=%d", cp1.Size, cp2.Size), token: "auditor"})
	require.Equal(t, http.StatusOK, cons.status, "%s", cons.body)
	cr := decodeJSON[proofResult](t, cons)
	assert.Equal(t, cp1.Size, cr.From)
	assert.Equal(t, cp2.Size, cr.To)
	require.NoError(t, ledger.CheckConsistency(tlog.TreeProof(decodeHashes(t, cr.Hashes)), cp2.Size, cp2.Root, cp1.Size, cp1.Root))

	// Defaults: tree_size and to are the current size.
	incl = ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/proofs/inclusion?index=%d", idx), token: "agent"})
	require.Equal(t, http.StatusOK, incl.status)
	assert.Equal(t, cp2.Size, decodeJSON[proofResult](t, incl).TreeSize)
	cons = ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/proofs/consistency?from=%d", cp1.Size), token: "agent"})
	require.Equal(t, http.StatusOK, cons.status)
	assert.Equal(t, cp2.Size, decodeJSON[proofResult](t, cons).To)
}

func TestProofAndEntryErrors(t *testing.T) {
	ts := newTestServer(t, options{})
	ts.submit("root", ownTenant, boundAgent, 1)
	ts.submit("root", ownTenant, boundAgent, 2)
	tests := []struct {
		path       string
		wantStatus int
		wantMsg    string
	}{
		{"/v1/ledger/proofs/inclusion", 400, `"index" is required`},
		{"/v1/ledger/proofs/inclusion?index=-1", 400, `"index" must be a non-negative integer`},
		{"/v1/ledger/proofs/inclusion?index=01", 400, `"index" must be a non-negative integer`},
		{"/v1/ledger/proofs/inclusion?index=0&tree_size=x", 400, `"tree_size" must be`},
		{"/v1/ledger/proofs/inclusion?index=1&tree_size=1", 400, "invalid range"},
		{"/v1/ledger/proofs/inclusion?index=0&tree_size=3", 400, "invalid range"},
		{"/v1/ledger/proofs/inclusion?index=2", 404, "entry not found"},
		{"/v1/ledger/proofs/inclusion?index=99999999999999999999", 400, `"index" must be`},
		{"/v1/ledger/proofs/inclusion?index=0&extra=1", 400, `unknown query parameter "extra"`},
		{"/v1/ledger/proofs/inclusion?index=0&index=1", 400, "more than once"},
		{"/v1/ledger/proofs/consistency", 400, `"from" is required`},
		{"/v1/ledger/proofs/consistency?from=0&to=1", 400, "invalid range"},
		{"/v1/ledger/proofs/consistency?from=2&to=1", 400, "invalid range"},
		{"/v1/ledger/proofs/consistency?from=1&to=3", 400, "invalid range"},
		{"/v1/ledger/proofs/consistency?from=%zz", 400, "malformed query string"},
		{"/v1/ledger/entries/2", 404, "entry not found"},
		{"/v1/ledger/entries/-1", 400, "non-negative integer"},
		{"/v1/ledger/entries/abc", 400, "non-negative integer"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp := ts.do(request{method: "GET", path: tt.path, token: "root"})
			require.Equal(t, tt.wantStatus, resp.status, "GET %s = %d %s, want %d", tt.path, resp.status, resp.body, tt.wantStatus)
			assert.Contains(t, resp.errorBody(t).Error.Message, tt.wantMsg)
		})
	}
}

// The auth matrix: every route × every role (and no or a bad token) × own
// and other tenant, generated from one expectation table.
func TestAuthMatrix(t *testing.T) {
	passports, err := identity.NewPassportCache(&identity.MemPassportStore{}, 0, nil)
	require.NoError(t, err)
	ts := newTestServer(t, options{reload: func(ctx context.Context) (*policy.Set, error) { return mustPolicy(t, policyV1), nil }, passports: passports})
	// A passport in each tenant, of an agent that never acts.
	for _, tenant := range []string{ownTenant, otherTenant} {
		require.NoError(t, passports.PutPassport(context.Background(), &identity.Passport{
			AgentID: "matrix-bot", TenantID: tenant, OwnerID: "org", Status: identity.PassportActive, AssuranceLevel: "L0",
		}))
	}
	var newAgents atomic.Int64
	// Fixtures: one action in each tenant, both by the bound agent.
	fixture := map[string]actionResult{
		ownTenant:   ts.submit("root", ownTenant, boundAgent, 10),
		otherTenant: ts.submit("root", otherTenant, boundAgent, 10),
	}
	id := func(tenant string) string { return fixture[tenant].ActionID }
	rid := func(tenant string) string { return receiptID(t, fixture[tenant].Receipts[0]) }
	index := func(tenant string) int64 { return fixture[tenant].LedgerIndexes[0] }
	// An action held for approval in each tenant.
	held := map[string]string{
		ownTenant:   ts.submit("root", ownTenant, boundAgent, 500).ActionID,
		otherTenant: ts.submit("root", otherTenant, boundAgent, 500).ActionID,
	}

	const (
		admin, operator, auditor, agent, approver = "admin", "operator", "auditor", "agent", "approver"
	)
	all := []string{admin, operator, auditor, agent, approver}
	public := []string(nil)
	type row struct {
		pattern string
		allowed []string // nil: public
		ok      int      // status for an allowed caller in its own tenant
		scoped  bool     // another tenant's data answers 404
		req     func(tenant string) request
		// reqAs, if set, replaces req for requests that depend on the
		// caller (its fixture is the caller's own).
		reqAs func(tenant, caller string) request
	}
	get := func(path string) func(string) request {
		return func(string) request { return request{method: "GET", path: path} }
	}
	table := []row{
		{"GET /health", public, 200, false, get("/health"), nil},
		{"GET /ready", public, 200, false, get("/ready"), nil},
		{"GET /.well-known/oap", public, 200, false, get("/.well-known/oap"), nil},
		{"GET /.well-known/oap/{$}", public, 200, false, get("/.well-known/oap/"), nil},
		{"GET /.well-known/oap/jwks.json", public, 200, false, get("/.well-known/oap/jwks.json"), nil},
		{"GET /metrics", []string{admin, operator, auditor}, 200, false, get("/metrics"), nil},
		{"POST /v1/actions", []string{admin, operator, agent}, 201, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/actions", body: actionBody(tenant, boundAgent, 5)}
		}, nil},
		{"POST /v1/hooks/{agent}", []string{admin, operator, agent}, 200, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/hooks/claude-code?tenant_id=" + tenant, body: `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"}}`}
		}, nil},
		// No MCP proxy is configured in this server: allowed callers get 501.
		{"POST /mcp", []string{admin, operator, agent}, 501, false, func(string) request {
			return request{method: "POST", path: "/mcp", body: `{}`}
		}, nil},
		{"GET /mcp", []string{admin, operator, agent}, 501, false, get("/mcp"), nil},
		{"DELETE /mcp", []string{admin, operator, agent}, 501, false, func(string) request {
			return request{method: "DELETE", path: "/mcp"}
		}, nil},
		{"GET /v1/actions/{id}", []string{admin, operator, auditor, agent}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/actions/" + id(tenant)}
		}, nil},
		{"GET /v1/receipts", []string{admin, operator, auditor, agent}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/receipts?tenant_id=" + tenant}
		}, nil},
		{"GET /v1/receipts/{id}", []string{admin, operator, auditor, agent}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/receipts/" + rid(tenant)}
		}, nil},
		{"POST /v1/receipts/verify", all, 200, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/receipts/verify", body: fmt.Sprintf(`{"receipt_id":%q}`, rid(tenant))}
		}, nil},
		{"GET /v1/ledger/checkpoint", all, 200, false, get("/v1/ledger/checkpoint"), nil},
		{"GET /v1/ledger/verifier-key", all, 200, false, get("/v1/ledger/verifier-key"), nil},
		{"GET /v1/ledger/entries/{index}", []string{admin, auditor}, 200, true, func(tenant string) request {
			return request{method: "GET", path: fmt.Sprintf("/v1/ledger/entries/%d", index(tenant))}
		}, nil},
		{"GET /v1/ledger/proofs/inclusion", all, 200, false, get("/v1/ledger/proofs/inclusion?index=0"), nil},
		{"GET /v1/ledger/proofs/consistency", all, 200, false, get("/v1/ledger/proofs/consistency?from=1"), nil},
		{"GET /v1/policies", []string{admin, operator, auditor}, 200, false, get("/v1/policies"), nil},
		{"GET /v1/policies/{name}", []string{admin, operator, auditor}, 200, false, get("/v1/policies/payments"), nil},
		{"POST /v1/policies/reload", []string{admin}, 200, false, func(string) request {
			return request{method: "POST", path: "/v1/policies/reload"}
		}, nil},
		{"GET /v1/approvals", []string{admin, operator, auditor, approver}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/approvals?tenant_id=" + tenant}
		}, nil},
		{"GET /v1/approvals/{id}", []string{admin, operator, auditor, approver}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/approvals/" + held[tenant]}
		}, nil},
		{"POST /v1/approvals/{id}/decision", []string{admin, approver}, 200, true, func(tenant string) request {
			// A fresh action per call: a rejection ends it.
			id := ts.submit("root", tenant, boundAgent, 500).ActionID
			return request{method: "POST", path: "/v1/approvals/" + id + "/decision", body: `{"decision":"reject","reason":"matrix"}`}
		}, nil},
		{"POST /v1/actions/{id}/cancel", []string{admin, operator, agent}, 200, true, nil, func(tenant, caller string) request {
			// The caller's own action (its user is the caller's subject),
			// so that requesters may cancel it.
			b := bodyWith(func(m map[string]any) {
				m["tenant_id"] = tenant
				m["user_context"] = map[string]any{"user_id": caller}
				m["input"] = map[string]any{"amount": 500}
			})
			resp := ts.do(request{method: "POST", path: "/v1/actions", token: "root", body: b})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			return request{method: "POST", path: "/v1/actions/" + resp.action(t).ActionID + "/cancel", body: `{"reason":"matrix"}`}
		}},
		{"POST /v1/actions/{id}/result", []string{admin, operator, agent}, 200, true, func(tenant string) request {
			// A fresh allowed action per call: a report claims it.
			id := ts.submit("root", tenant, boundAgent, 5).ActionID
			b := bodyWith(func(m map[string]any) { m["tenant_id"] = tenant; m["output"] = "ok" })
			return request{method: "POST", path: "/v1/actions/" + id + "/result", body: b}
		}, nil},
		{"POST /v1/actions/{id}/claim", []string{admin, operator, agent}, 200, true, func(tenant string) request {
			id := ts.submit("root", tenant, boundAgent, 5).ActionID
			b := bodyWith(func(m map[string]any) { m["tenant_id"] = tenant })
			return request{method: "POST", path: "/v1/actions/" + id + "/claim", body: b}
		}, nil},
		{"POST /v1/approvers/{user_id}/totp", []string{admin}, 200, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/approvers/dave/totp?tenant_id=" + tenant}
		}, nil},
		{"GET /v1/passports/{agent_id}", []string{admin}, 200, true, func(tenant string) request {
			return request{method: "GET", path: "/v1/passports/matrix-bot?tenant_id=" + tenant}
		}, nil},
		{"PUT /v1/passports/{agent_id}", []string{admin}, 201, true, func(tenant string) request {
			agent := fmt.Sprintf("new-bot-%d", newAgents.Add(1))
			return request{method: "PUT", path: "/v1/passports/" + agent + "?tenant_id=" + tenant,
				body: `{"owner_id":"org","status":"active","assurance_level":"L1","capabilities":[]}`}
		}, nil},
		{"POST /v1/passports/{agent_id}/suspend", []string{admin}, 200, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/passports/matrix-bot/suspend?tenant_id=" + tenant}
		}, nil},
		{"POST /v1/passports/{agent_id}/resume", []string{admin}, 200, true, func(tenant string) request {
			return request{method: "POST", path: "/v1/passports/matrix-bot/resume?tenant_id=" + tenant}
		}, nil},
	}

	var patterns []string
	for _, r := range table {
		patterns = append(patterns, r.pattern)
	}
	assert.ElementsMatch(t, httpapi.RoutePatterns(), patterns, "the expectation table must cover every route")

	callers := append(slices.Clone(all), "none", "bad")
	for _, r := range table {
		for _, caller := range callers {
			for _, tenant := range []string{ownTenant, otherTenant} {
				want := r.ok
				switch {
				case r.allowed == nil:
				case caller == "none" || caller == "bad":
					want = http.StatusUnauthorized
				case !slices.Contains(r.allowed, caller):
					want = http.StatusForbidden
				case tenant == otherTenant && r.scoped:
					want = http.StatusNotFound
				}
				name := fmt.Sprintf("%s/%s/%s", r.pattern, caller, tenant)
				t.Run(name, func(t *testing.T) {
					var req request
					if r.reqAs != nil {
						req = r.reqAs(tenant, caller)
					} else {
						req = r.req(tenant)
					}
					switch caller {
					case "none":
					default:
						req.token = caller
					}
					resp := ts.do(req)
					require.Equal(t, want, resp.status, "%s %s as %s = %d %s, want %d", req.method, req.path, caller, resp.status, resp.body, want)
					if want >= 400 {
						e := resp.errorBody(t)
						wantCode := map[int]string{401: "unauthorized", 403: "forbidden", 404: "not_found", 501: "not_implemented"}[want]
						assert.Equal(t, wantCode, e.Error.Code)
					}
					if want == http.StatusUnauthorized {
						assert.Contains(t, resp.header.Get("WWW-Authenticate"), "Bearer")
					}
				})
			}
		}
	}
}

func TestIdempotency(t *testing.T) {
	ts := newTestServer(t, options{})
	post := func(body string) response {
		return ts.do(request{method: "POST", path: "/v1/actions", token: "operator", body: body,
			header: map[string]string{"Idempotency-Key": "refund-order-42"}})
	}
	first := post(actionBody(ownTenant, boundAgent, 20))
	require.Equal(t, http.StatusCreated, first.status, "%s", first.body)
	a1 := first.action(t)
	assert.False(t, a1.Replayed)
	size := ts.size()

	second := post(actionBody(ownTenant, boundAgent, 20))
	require.Equal(t, http.StatusOK, second.status, "%s", second.body)
	a2 := second.action(t)
	assert.True(t, a2.Replayed)
	assert.Equal(t, a1.ActionID, a2.ActionID)
	assert.Equal(t, a1.Status, a2.Status)
	assert.Equal(t, a1.LedgerIndexes, a2.LedgerIndexes)
	require.Len(t, a2.Receipts, len(a1.Receipts))
	for i := range a1.Receipts {
		assert.True(t, bytes.Equal(a1.Receipts[i], a2.Receipts[i]), "replayed receipt %d differs", i)
	}
	assert.Equal(t, size, ts.size(), "a replay must not append to the ledger")

	conflict := post(actionBody(ownTenant, boundAgent, 21))
	require.Equal(t, http.StatusConflict, conflict.status, "%s", conflict.body)
	assert.Equal(t, "idempotency_conflict", conflict.errorBody(t).Error.Code)
	assert.Equal(t, size, ts.size())

	long := ts.do(request{method: "POST", path: "/v1/actions", token: "operator", body: actionBody(ownTenant, boundAgent, 20),
		header: map[string]string{"Idempotency-Key": strings.Repeat("k", 300)}})
	require.Equal(t, http.StatusBadRequest, long.status, "%s", long.body)
	assert.Contains(t, long.errorBody(t).Error.Message, "idempotency key is longer")
	assert.Equal(t, size, ts.size())
}

// bodyWith returns a valid action body changed by f.
func bodyWith(f func(m map[string]any)) string {
	var m map[string]any
	if err := json.Unmarshal([]byte(actionBody(ownTenant, boundAgent, 5)), &m); err != nil {
		panic(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// unknownLength hides a body's length so it is sent chunked.
type unknownLength struct{ r *strings.Reader }

func (u unknownLength) Read(p []byte) (int, error) { return u.r.Read(p) }

func TestBadInput(t *testing.T) {
	const maxBody = 64 << 10
	ts := newTestServer(t, options{maxBodyBytes: maxBody})
	ts.submit("root", ownTenant, boundAgent, 1)
	size := ts.size()
	valid := actionBody(ownTenant, boundAgent, 5)
	deep := strings.Repeat("[", 70) + strings.Repeat("]", 70)
	big := bodyWith(func(m map[string]any) { m["input"] = map[string]any{"pad": strings.Repeat("x", maxBody)} })

	tests := []struct {
		name        string
		req         request
		wantStatus  int
		wantCode    string
		wantMessage string
	}{
		{"malformed JSON", request{body: `{"tenant_id":`}, 400, "validation_failed", "syntax error"},
		{"empty body", request{body: " ", contentType: "application/json"}, 400, "validation_failed", "empty input"},
		{"duplicate keys", request{body: `{"tenant_id":"acme","tenant_id":"globex"}`}, 400, "validation_failed", "duplicate key at /tenant_id"},
		{"escaped duplicate keys", request{body: `{"tenant_id":"acme","tenant\u005fid":"globex"}`}, 400, "validation_failed", "duplicate key"},
		{"invalid UTF-8", request{body: "{\"tenant_id\":\"\xff\"}"}, 400, "validation_failed", "invalid UTF-8"},
		{"lone surrogate", request{body: `{"tenant_id":"\ud800"}`}, 400, "validation_failed", "invalid UTF-8"},
		{"too deep", request{body: bodyWith(func(m map[string]any) { m["input"] = map[string]any{"x": json.RawMessage(deep)} })}, 400, "validation_failed", "nesting too deep"},
		{"trailing data", request{body: valid + " {}"}, 400, "validation_failed", "trailing data"},
		{"number out of range", request{body: bodyWith(func(m map[string]any) { m["input"] = map[string]any{"x": json.RawMessage("1e400")} })}, 400, "validation_failed", "number out of range"},
		{"unknown field", request{body: bodyWith(func(m map[string]any) { m["foo"] = 1 })}, 400, "validation_failed", `unknown field "foo"`},
		{"unknown nested field", request{body: bodyWith(func(m map[string]any) { m["resource"].(map[string]any)["extra"] = true })}, 400, "validation_failed", `unknown field "resource.extra"`},
		{"case-folded field", request{body: bodyWith(func(m map[string]any) { m["Tenant_ID"] = "x" })}, 400, "validation_failed", `unknown field "Tenant_ID"`},
		{"wrong type", request{body: bodyWith(func(m map[string]any) { m["resource"].(map[string]any)["tool_id"] = 5 })}, 400, "validation_failed", `field "resource.tool_id": want string`},
		{"wrong type roles", request{body: bodyWith(func(m map[string]any) { m["user_context"].(map[string]any)["roles"] = "admin" })}, 400, "validation_failed", `field "user_context.roles": want array`},
		{"wrong type role", request{body: bodyWith(func(m map[string]any) { m["user_context"].(map[string]any)["roles"] = []any{1} })}, 400, "validation_failed", `field "user_context.roles.0": want string`},
		{"wrong type resource", request{body: bodyWith(func(m map[string]any) { m["resource"] = "payments" })}, 400, "validation_failed", `field "resource": want object`},
		{"body not an object", request{body: `[1,2]`}, 400, "validation_failed", "request body must be a JSON object"},
		{"missing tenant", request{body: bodyWith(func(m map[string]any) { delete(m, "tenant_id") })}, 400, "validation_failed", `field "tenant_id" is required`},
		{"missing tool", request{body: bodyWith(func(m map[string]any) { delete(m["resource"].(map[string]any), "tool_id") })}, 400, "validation_failed", `field "resource.tool_id" is required`},
		{"missing user", request{body: bodyWith(func(m map[string]any) { delete(m["user_context"].(map[string]any), "user_id") })}, 400, "validation_failed", `field "user_context.user_id" is required`},
		{"missing user_context", request{body: bodyWith(func(m map[string]any) { delete(m, "user_context") })}, 400, "validation_failed", `field "user_context" is required`},
		{"missing resource", request{body: bodyWith(func(m map[string]any) { delete(m, "resource") })}, 400, "validation_failed", `field "resource" is required`},
		{"null tenant", request{body: bodyWith(func(m map[string]any) { m["tenant_id"] = nil })}, 400, "validation_failed", `field "tenant_id" is required`},
		{"missing input", request{body: bodyWith(func(m map[string]any) { delete(m, "input") })}, 400, "validation_failed", `field "input" is required`},
		{"input an array", request{body: bodyWith(func(m map[string]any) { m["input"] = []any{1} })}, 400, "validation_failed", `field "input": want object`},
		{"input null", request{body: bodyWith(func(m map[string]any) { m["input"] = nil })}, 400, "validation_failed", `field "input": want object`},
		{"control character", request{body: bodyWith(func(m map[string]any) { m["agent_id"] = "a\tb" })}, 400, "validation_failed", `field "agent_id" contains a control character`},
		{"tenant too long", request{body: bodyWith(func(m map[string]any) { m["tenant_id"] = strings.Repeat("t", 300) })}, 400, "validation_failed", `field "tenant_id" is longer than 256 bytes`},
		{"too large", request{body: big}, 413, "payload_too_large", "larger than 65536 bytes"},
		{"too large chunked", request{bodyReader: unknownLength{strings.NewReader(big)}}, 413, "payload_too_large", "larger than"},
		{"wrong content type", request{body: valid, contentType: "text/plain"}, 415, "unsupported_media_type", "application/json"},
		{"no content type", request{body: valid, contentType: "none"}, 415, "unsupported_media_type", "application/json"},
		{"latin1 charset", request{body: valid, contentType: "application/json; charset=latin1"}, 415, "unsupported_media_type", "application/json"},
		{"unknown route", request{method: "GET", path: "/v1/nope"}, 404, "not_found", "no such route"},
		{"unknown route unauthenticated", request{method: "GET", path: "/admin", token: "none"}, 404, "not_found", "no such route"},
		{"not discovery", request{method: "GET", path: "/.well-known/oap/other"}, 404, "not_found", "no such route"},
		{"path needing cleaning", request{method: "GET", path: "/v1//policies"}, 404, "not_found", "no such route"},
		{"wrong method", request{method: "DELETE", path: "/v1/actions"}, 405, "method_not_allowed", "method not allowed"},
		{"GET on POST route", request{method: "GET", path: "/v1/actions"}, 405, "method_not_allowed", "method not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			if req.method == "" {
				req.method, req.path = "POST", "/v1/actions"
			}
			switch req.token {
			case "":
				req.token = "root"
			case "none":
				req.token = ""
			}
			resp := ts.do(req)
			require.Equal(t, tt.wantStatus, resp.status, "%s %s = %d %s, want %d", req.method, req.path, resp.status, resp.body, tt.wantStatus)
			assert.Equal(t, "application/json", resp.header.Get("Content-Type"))
			e := resp.errorBody(t)
			assert.Equal(t, tt.wantCode, e.Error.Code)
			assert.Contains(t, e.Error.Message, tt.wantMessage)
			assert.Equal(t, resp.header.Get("X-Request-Id"), e.Error.Details.RequestID)
			assert.NotEmpty(t, e.Timestamp)
			assert.NotContains(t, string(resp.body), "\xff")
			if tt.wantStatus == http.StatusMethodNotAllowed {
				assert.Equal(t, "POST", resp.header.Get("Allow"))
			}
			assert.Equal(t, size, ts.size(), "a refused request must not touch the ledger")
		})
	}

	// charset=utf-8 is fine.
	ok := ts.do(request{method: "POST", path: "/v1/actions", token: "root", body: valid, contentType: "application/json; charset=UTF-8"})
	assert.Equal(t, http.StatusCreated, ok.status, "%s", ok.body)
}

func TestRateLimit(t *testing.T) {
	ts := newTestServer(t, options{rateLimit: 0.001, rateBurst: 2})
	for i := range 2 {
		resp := ts.do(request{method: "GET", path: "/v1/ledger/checkpoint", token: "operator"})
		require.Equal(t, http.StatusOK, resp.status, "request %d", i)
	}
	resp := ts.do(request{method: "GET", path: "/v1/ledger/checkpoint", token: "operator"})
	require.Equal(t, http.StatusTooManyRequests, resp.status, "%s", resp.body)
	assert.Equal(t, "rate_limit_exceeded", resp.errorBody(t).Error.Code)
	secs, err := strconv.Atoi(resp.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After = %q", resp.header.Get("Retry-After"))
	assert.GreaterOrEqual(t, secs, 1)

	// Limits are per principal.
	other := ts.do(request{method: "GET", path: "/v1/ledger/checkpoint", token: "auditor"})
	assert.Equal(t, http.StatusOK, other.status)
	// Public routes are not limited per token.
	assert.Equal(t, http.StatusOK, ts.do(request{method: "GET", path: "/health"}).status)
}

func TestAgentBinding(t *testing.T) {
	ts := newTestServer(t, options{})
	other := ts.submit("root", ownTenant, "bot-2", 10)
	size := ts.size()

	resp := ts.do(request{method: "POST", path: "/v1/actions", token: "agent", body: actionBody(ownTenant, "bot-2", 1)})
	require.Equal(t, http.StatusForbidden, resp.status, "%s", resp.body)
	assert.Equal(t, "forbidden", resp.errorBody(t).Error.Code)
	assert.Equal(t, size+1, ts.size(), "the refusal is recorded as a denied receipt")

	for _, path := range []string{
		"/v1/actions/" + other.ActionID,
		"/v1/receipts/" + receiptID(t, other.Receipts[0]),
	} {
		resp := ts.do(request{method: "GET", path: path, token: "agent"})
		assert.Equal(t, http.StatusNotFound, resp.status, "GET %s as a bot-1 agent", path)
		// The same resource is visible to an unbound reader.
		assert.Equal(t, http.StatusOK, ts.do(request{method: "GET", path: path, token: "operator"}).status)
	}
	mine := ts.submit("agent", ownTenant, boundAgent, 1)
	assert.Equal(t, http.StatusOK, ts.do(request{method: "GET", path: "/v1/actions/" + mine.ActionID, token: "agent"}).status)

	// Unknown actions and receipts are 404 like foreign ones.
	assert.Equal(t, http.StatusNotFound, ts.do(request{method: "GET", path: "/v1/actions/nope", token: "root"}).status)
	assert.Equal(t, http.StatusNotFound, ts.do(request{method: "GET", path: "/v1/receipts/nope", token: "root"}).status)
}

func TestUserRolesOnlyFromOperators(t *testing.T) {
	ts := newTestServer(t, options{})
	body := bodyWith(func(m map[string]any) {
		m["user_context"].(map[string]any)["roles"] = []string{"payments-admin"}
		m["resource"].(map[string]any)["tool_id"] = "refund-tool"
	})
	tests := []struct {
		token, wantStatus string
	}{
		{"operator", "allowed"}, // the payments-admin rule applies
		{"agent", "denied"},     // roles ignored: the default applies
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			resp := ts.do(request{method: "POST", path: "/v1/actions", token: tt.token, body: body})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			assert.Equal(t, tt.wantStatus, resp.action(t).Status)
		})
	}
}

func TestDeniedIsStillCreated(t *testing.T) {
	ts := newTestServer(t, options{})
	body := bodyWith(func(m map[string]any) { m["resource"].(map[string]any)["tool_id"] = "shell" })
	resp := ts.do(request{method: "POST", path: "/v1/actions", token: "operator", body: body})
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	a := resp.action(t)
	assert.Equal(t, "denied", a.Status)
	require.Len(t, a.Receipts, 1)
}

func TestReceiptsList(t *testing.T) {
	ts := newTestServer(t, options{})
	ts.submit("root", ownTenant, boundAgent, 1)
	ts.submit("root", ownTenant, boundAgent, 500)
	b2 := ts.submit("root", ownTenant, "bot-2", 2)
	ts.submit("root", otherTenant, boundAgent, 3)

	type listResult struct {
		Receipts      []json.RawMessage `json:"receipts"`
		LedgerIndexes []int64           `json:"ledger_indexes"`
		NextCursor    string            `json:"next_cursor"`
	}
	list := func(token, query string) (int, listResult, response) {
		t.Helper()
		resp := ts.do(request{method: "GET", path: "/v1/receipts?" + query, token: token})
		var l listResult
		if resp.status == http.StatusOK {
			l = decodeJSON[listResult](t, resp)
		}
		return resp.status, l, resp
	}
	headers := func(l listResult) []ledger.Header {
		var hs []ledger.Header
		for _, raw := range l.Receipts {
			h, ok := ledger.ParseHeader(raw)
			require.True(t, ok)
			hs = append(hs, h)
		}
		return hs
	}

	tests := []struct {
		name, token, query string
		wantN              int
		check              func(t *testing.T, hs []ledger.Header)
	}{
		{"single tenant defaults to it", "operator", "", 3, func(t *testing.T, hs []ledger.Header) {
			for _, h := range hs {
				assert.Equal(t, ownTenant, h.TenantID)
			}
		}},
		{"all tenants", "root", "", 4, nil},
		{"other tenant for root", "root", "tenant_id=" + otherTenant, 1, nil},
		{"several tenants with tenant_id", "ops2", "tenant_id=" + ownTenant, 3, nil},
		{"by agent", "auditor", "agent_id=bot-2", 1, nil},
		{"by action", "auditor", "action_id=" + b2.ActionID, 1, nil},
		{"by status", "auditor", "status=pending_approval", 1, func(t *testing.T, hs []ledger.Header) {
			assert.Equal(t, "pending_approval", hs[0].Status)
		}},
		{"since the future", "auditor", "since=2999-01-01T00:00:00Z", 0, nil},
		{"until the past", "auditor", "until=2000-01-01T00:00:00Z", 0, nil},
		{"agent sees its agent only", "agent", "", 2, func(t *testing.T, hs []ledger.Header) {
			for _, h := range hs {
				assert.Equal(t, boundAgent, h.AgentID)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, l, resp := list(tt.token, tt.query)
			require.Equal(t, http.StatusOK, status, "%s", resp.body)
			assert.Len(t, l.Receipts, tt.wantN)
			assert.Len(t, l.LedgerIndexes, tt.wantN)
			assert.Empty(t, l.NextCursor)
			if tt.check != nil && tt.wantN > 0 {
				tt.check(t, headers(l))
			}
		})
	}

	t.Run("pagination", func(t *testing.T) {
		_, page1, _ := list("auditor", "limit=2")
		require.Len(t, page1.Receipts, 2)
		require.NotEmpty(t, page1.NextCursor)
		_, page2, _ := list("auditor", "limit=2&cursor="+url.QueryEscape(page1.NextCursor))
		require.Len(t, page2.Receipts, 1)
		assert.Empty(t, page2.NextCursor)
		assert.NotEqual(t, receiptID(t, page1.Receipts[0]), receiptID(t, page2.Receipts[0]))
	})

	errTests := []struct {
		name, token, query string
		wantStatus         int
		wantMsg            string
	}{
		{"unknown param", "auditor", "tenant=acme", 400, `unknown query parameter "tenant"`},
		{"repeated param", "auditor", "status=allowed&status=denied", 400, `"status" given more than once`},
		{"bad status", "auditor", "status=bogus", 400, `"status" is not a receipt status`},
		{"bad since", "auditor", "since=yesterday", 400, `"since" must be an RFC 3339 time`},
		{"bad until", "auditor", "until=2024-01-01", 400, `"until" must be an RFC 3339 time`},
		{"limit zero", "auditor", "limit=0", 400, `"limit" must be between 1 and 1000`},
		{"limit too big", "auditor", "limit=1001", 400, `"limit" must be between`},
		{"limit not a number", "auditor", "limit=ten", 400, `"limit" must be a non-negative integer`},
		{"bad cursor", "auditor", "cursor=garbage", 400, `"cursor" is not valid`},
		{"tenant required", "ops2", "", 400, `"tenant_id" is required`},
		{"foreign tenant", "auditor", "tenant_id=" + otherTenant, 404, "tenant not found"},
		{"agent asks for another agent", "agent", "agent_id=bot-2", 403, "may not read"},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			status, _, resp := list(tt.token, tt.query)
			require.Equal(t, tt.wantStatus, status, "%s", resp.body)
			assert.Contains(t, resp.errorBody(t).Error.Message, tt.wantMsg)
		})
	}
}

func TestVerifyBadRequests(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("root", ownTenant, boundAgent, 1)
	tests := []struct {
		name, body string
		wantStatus int
		wantMsg    string
	}{
		{"neither", `{}`, 400, "exactly one"},
		{"both", fmt.Sprintf(`{"receipt_id":%q,"receipt":%s}`, receiptID(t, a.Receipts[0]), a.Receipts[0]), 400, "exactly one"},
		{"receipt not an object", `{"receipt":"x"}`, 400, `"receipt": want object`},
		{"unknown receipt", `{"receipt_id":"nope"}`, 404, "receipt not found"},
		{"unknown field", `{"receipt_id":"x","kid":"y"}`, 400, `unknown field "kid"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(request{method: "POST", path: "/v1/receipts/verify", token: "auditor", body: tt.body})
			require.Equal(t, tt.wantStatus, resp.status, "%s", resp.body)
			assert.Contains(t, resp.errorBody(t).Error.Message, tt.wantMsg)
		})
	}
	// A receipt signed by a key the server does not trust.
	stranger, err := receipt.GenerateSigner()
	require.NoError(t, err)
	rc, err := ledgerReceipt(a.Receipts[0])
	require.NoError(t, err)
	signed, err := receipt.Sign(context.Background(), stranger, rc)
	require.NoError(t, err)
	resp := ts.do(request{method: "POST", path: "/v1/receipts/verify", token: "auditor", body: `{"receipt":` + string(signed) + `}`})
	require.Equal(t, http.StatusOK, resp.status)
	v := decodeJSON[verifyResult](t, resp)
	assert.False(t, v.Valid)
	assert.Equal(t, "unknown key", v.Check)
}

func ledgerReceipt(raw []byte) (*receipt.Receipt, error) {
	r := new(receipt.Receipt)
	err := json.Unmarshal(raw, r)
	return r, err
}
