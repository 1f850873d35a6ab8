package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

// approvalPolicy allows small payments, needs two finance approvers for
// big ones and one with step-up for huge ones.
const approvalPolicy = `
id: payments
version: "1"
default: deny
rules:
  - id: small
    when: action.tool_id == "payments" && input.amount <= 100
    effect: allow
    reason: small payments are allowed
  - id: big
    when: action.tool_id == "payments" && input.amount > 100 && input.amount <= 10000
    effect: require_approval
    reason: big payments need two approvals
    approval:
      roles: [finance]
      quorum: 2
      expiry: 1h
  - id: huge
    when: action.tool_id == "payments" && input.amount > 10000
    effect: require_approval
    reason: huge payments need a second factor
    approval:
      roles: [finance]
      quorum: 1
      expiry: 1h
      step_up: true
`

// approverTokens are the people of the approval tests: alice requests
// (and holds the finance group too), bob and carol approve, eve is an
// approver without the group, gina approves in another tenant.
func approverTokens() []identity.Token {
	tok := func(name string, roles []identity.Role, tenants []string, groups ...string) identity.Token {
		return identity.Token{Name: name, Hash: identity.HashToken(secrets[name]), Roles: roles, Tenants: tenants, Groups: groups}
	}
	own := []string{ownTenant}
	approver := []identity.Role{identity.RoleApprover}
	return []identity.Token{
		tok("alice", []identity.Role{identity.RoleOperator, identity.RoleApprover}, own, "finance"),
		tok("bob", approver, own, "finance"),
		tok("carol", approver, own, "finance"),
		tok("eve", approver, own, "support"),
		tok("gina", approver, []string{otherTenant}, "finance"),
	}
}

// testClock is a clock tests move by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock {
	return &testClock{now: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// approvalView is the body of the approval routes.
type approvalView struct {
	ActionID    string `json:"action_id"`
	TenantID    string `json:"tenant_id"`
	AgentID     string `json:"agent_id"`
	Requester   string `json:"requester"`
	InputDigest string `json:"input_digest"`
	Status      string `json:"status"`
	Requirement struct {
		Roles     []string  `json:"roles"`
		Users     []string  `json:"users"`
		Quorum    int       `json:"quorum"`
		ExpiresAt time.Time `json:"expires_at"`
		StepUp    bool      `json:"step_up"`
	} `json:"requirement"`
	Votes []struct {
		Approver     string   `json:"approver"`
		Roles        []string `json:"roles"`
		Decision     string   `json:"decision"`
		Reason       string   `json:"reason"`
		StepUpMethod string   `json:"step_up_method"`
		ReceiptID    string   `json:"receipt_id"`
	} `json:"votes"`
	Reasons       []string          `json:"reasons"`
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
}

func (r response) approval(t testing.TB) approvalView {
	t.Helper()
	var v approvalView
	require.NoError(t, json.Unmarshal(r.body, &v), "approval body %s", r.body)
	return v
}

// payment posts a payment of amount by alice (through the operator
// token) and returns the answer.
func (ts *testServer) payment(tenant string, amount int) actionResult {
	ts.t.Helper()
	b := bodyWith(func(m map[string]any) {
		m["tenant_id"] = tenant
		m["input"] = map[string]any{"amount": amount, "currency": "EUR"}
	})
	resp := ts.do(request{method: "POST", path: "/v1/actions", token: "root", body: b})
	require.Equal(ts.t, http.StatusCreated, resp.status, "POST /v1/actions: %s", resp.body)
	return resp.action(ts.t)
}

func (ts *testServer) decide(token, id, body string) response {
	ts.t.Helper()
	return ts.do(request{method: "POST", path: "/v1/approvals/" + id + "/decision", token: token, body: body})
}

func newApprovalServer(t *testing.T, opts options) *testServer {
	t.Helper()
	opts.policy = approvalPolicy
	opts.extraTokens = approverTokens()
	return newTestServer(t, opts)
}

func TestDecisionQuorum(t *testing.T) {
	var approved []string
	var mu sync.Mutex
	ts := newApprovalServer(t, options{approved: func(id string) {
		mu.Lock()
		defer mu.Unlock()
		approved = append(approved, id)
	}})
	// Input not in canonical form: the stored input is.
	raw := `{"tenant_id":"acme","agent_id":"bot-1","user_context":{"user_id":"alice"},` +
		`"resource":{"tool_id":"payments","operation":"refund"},"input":{ "currency" : "EUR", "amount" : 5.0e2 }}`
	created := ts.do(request{method: "POST", path: "/v1/actions", token: "root", body: raw})
	require.Equal(t, http.StatusCreated, created.status, "%s", created.body)
	a := created.action(t)
	require.Equal(t, "pending_approval", a.Status)
	id := a.ActionID
	stored, ok := ts.inputs.get(id)
	require.True(t, ok, "the input of a held action is stored")
	assert.Equal(t, `{"amount":500,"currency":"EUR"}`, string(stored), "stored input is canonical")

	refusals := []struct {
		name, token, body string
		status            int
		code              string
	}{
		{"requester", "alice", `{"decision":"approve"}`, 403, "self_approval"},
		{"without the group", "eve", `{"decision":"approve"}`, 403, "not_approver"},
		{"other tenant", "gina", `{"decision":"approve"}`, 404, "not_found"},
		{"operator role", "operator", `{"decision":"approve"}`, 403, "forbidden"},
		{"unknown decision", "bob", `{"decision":"maybe"}`, 400, "validation_failed"},
		{"unknown field", "bob", `{"decision":"approve","extra":1}`, 400, "validation_failed"},
		{"reason with control character", "bob", `{"decision":"approve","reason":"a\u0001"}`, 400, "validation_failed"},
		{"reason too long", "bob", `{"decision":"approve","reason":"` + strings.Repeat("r", 1025) + `"}`, 400, "validation_failed"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.size()
			resp := ts.decide(tt.token, id, tt.body)
			require.Equal(t, tt.status, resp.status, "decision by %s = %d %s", tt.token, resp.status, resp.body)
			assert.Equal(t, tt.code, resp.errorBody(t).Error.Code)
			assert.Equal(t, before, ts.size(), "a refused vote records nothing")
		})
	}

	resp := ts.decide("bob", id, `{"decision":"approve","reason":"checked"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	v := resp.approval(t)
	assert.Equal(t, "pending_approval", v.Status)
	require.Len(t, v.Votes, 1)
	assert.Equal(t, "bob", v.Votes[0].Approver)
	assert.ElementsMatch(t, []string{"finance", "approver"}, v.Votes[0].Roles)
	assert.Equal(t, "checked", v.Votes[0].Reason)

	resp = ts.decide("bob", id, `{"decision":"approve"}`)
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "already_voted", resp.errorBody(t).Error.Code)
	mu.Lock()
	assert.Empty(t, approved, "not approved yet")
	mu.Unlock()

	resp = ts.decide("carol", id, `{"decision":"approve"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	v = resp.approval(t)
	assert.Equal(t, "approved", v.Status)
	assert.Equal(t, 2, v.Requirement.Quorum)
	assert.Equal(t, []string{"finance"}, v.Requirement.Roles)
	assert.Equal(t, "alice", v.Requester)
	assert.Equal(t, []string{"big payments need two approvals"}, v.Reasons)
	require.Len(t, v.Receipts, 4, "pending, vote, vote, approved")
	verifier, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	raws := make([][]byte, len(v.Receipts))
	for i, r := range v.Receipts {
		raws[i] = r
	}
	_, err = verifier.VerifyChain(raws)
	require.NoError(t, err, "the receipts chain")
	mu.Lock()
	assert.Equal(t, []string{id}, approved, "Config.Approved is told once")
	mu.Unlock()

	resp = ts.decide("admin", id, `{"decision":"approve"}`)
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "not_pending", resp.errorBody(t).Error.Code)

	// Not an approval at all.
	allowed := ts.payment(ownTenant, 5)
	resp = ts.decide("bob", allowed.ActionID, `{"decision":"approve"}`)
	assert.Equal(t, http.StatusNotFound, resp.status, "%s", resp.body)
	resp = ts.do(request{method: "GET", path: "/v1/approvals/" + allowed.ActionID, token: "bob"})
	assert.Equal(t, http.StatusNotFound, resp.status, "%s", resp.body)
	_, kept := ts.inputs.get(allowed.ActionID)
	assert.False(t, kept, "inputs of allowed actions are not kept")
}

func TestDecisionReject(t *testing.T) {
	ts := newApprovalServer(t, options{approved: func(string) { t.Error("a rejected action must not be executed") }})
	id := ts.payment(ownTenant, 500).ActionID
	resp := ts.decide("bob", id, `{"decision":"reject","reason":"wrong account"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "rejected", resp.approval(t).Status)
}

func TestDecisionExpired(t *testing.T) {
	clock := newTestClock()
	ts := newApprovalServer(t, options{clock: clock.Now})
	id := ts.payment(ownTenant, 500).ActionID
	clock.add(2 * time.Hour)
	before := ts.size()
	resp := ts.decide("bob", id, `{"decision":"approve"}`)
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "expired", resp.errorBody(t).Error.Code)
	assert.Equal(t, before+1, ts.size(), "the expiry is recorded, the vote is not")
	resp = ts.do(request{method: "GET", path: "/v1/approvals/" + id, token: "auditor"})
	require.Equal(t, http.StatusOK, resp.status)
	assert.Equal(t, "expired", resp.approval(t).Status)
}

func TestDecisionStepUp(t *testing.T) {
	clock := newTestClock()
	ts := newApprovalServer(t, options{clock: clock.Now})
	enroll := func(user string) string {
		resp := ts.do(request{method: "POST", path: "/v1/approvers/" + user + "/totp?tenant_id=" + ownTenant, token: "admin"})
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		assert.Equal(t, "no-store", resp.header.Get("Cache-Control"))
		var e struct {
			Secret     string `json:"secret"`
			OTPAuthURL string `json:"otpauth_url"`
		}
		require.NoError(t, json.Unmarshal(resp.body, &e))
		assert.True(t, strings.HasPrefix(e.OTPAuthURL, "otpauth://totp/"), "otpauth_url %q", e.OTPAuthURL)
		assert.NotContains(t, ts.logs.String(), e.Secret, "the secret is never logged")
		return e.Secret
	}
	secret := enroll("bob")
	code := func() string {
		c, err := totp.GenerateCode(secret, clock.Now())
		require.NoError(t, err)
		return c
	}
	wrong := func() string {
		c := []byte(code())
		c[0] = '0' + (c[0]-'0'+1)%10
		return string(c)
	}

	first := ts.payment(ownTenant, 50000).ActionID
	tests := []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"no code", `{"decision":"approve"}`, 403, "step_up_required"},
		{"empty code", `{"decision":"approve","totp":""}`, 403, "step_up_required"},
		{"wrong code", `{"decision":"approve","totp":"` + wrong() + `"}`, 403, "invalid_code"},
		{"malformed code", `{"decision":"approve","totp":"12ab56"}`, 403, "invalid_code"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := ts.size()
			resp := ts.decide("bob", first, tt.body)
			require.Equal(t, tt.status, resp.status, "%s", resp.body)
			assert.Equal(t, tt.code, resp.errorBody(t).Error.Code)
			assert.Equal(t, before, ts.size(), "a refused step-up records nothing")
		})
	}
	// Not enrolled.
	resp := ts.decide("carol", first, `{"decision":"approve","totp":"123456"}`)
	require.Equal(t, http.StatusForbidden, resp.status, "%s", resp.body)
	assert.Equal(t, "step_up_not_enrolled", resp.errorBody(t).Error.Code)
	// A self-approval is refused before the code is spent.
	enroll("alice")
	resp = ts.decide("alice", first, `{"decision":"approve","totp":"`+code()+`"}`)
	require.Equal(t, http.StatusForbidden, resp.status, "%s", resp.body)
	assert.Equal(t, "self_approval", resp.errorBody(t).Error.Code)

	good := code()
	resp = ts.decide("bob", first, `{"decision":"approve","totp":"`+good+`"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	v := resp.approval(t)
	assert.Equal(t, "approved", v.Status)
	require.Len(t, v.Votes, 1)
	assert.Equal(t, "totp", v.Votes[0].StepUpMethod)

	// The same code again, by the same approver, on another action.
	second := ts.payment(ownTenant, 60000).ActionID
	before := ts.size()
	resp = ts.decide("bob", second, `{"decision":"approve","totp":"`+good+`"}`)
	require.Equal(t, http.StatusForbidden, resp.status, "%s", resp.body)
	assert.Equal(t, "code_replayed", resp.errorBody(t).Error.Code)
	assert.Equal(t, before, ts.size())
	// Rejecting needs no second factor.
	resp = ts.decide("bob", second, `{"decision":"reject"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "rejected", resp.approval(t).Status)

	// Too many failures: refused without looking at the code.
	third := ts.payment(ownTenant, 70000).ActionID
	var last response
	for range 6 {
		last = ts.decide("bob", third, `{"decision":"approve","totp":"`+wrong()+`"}`)
	}
	require.Equal(t, http.StatusTooManyRequests, last.status, "%s", last.body)
	clock.add(time.Minute) // a fresh time step
	resp = ts.decide("bob", third, `{"decision":"approve","totp":"`+code()+`"}`)
	assert.Equal(t, http.StatusTooManyRequests, resp.status, "a right code while rate limited: %s", resp.body)
}

func TestEnrollTOTP(t *testing.T) {
	ts := newApprovalServer(t, options{})
	tests := []struct {
		name, token, path string
		status            int
	}{
		{"own tenant by default", "admin", "/v1/approvers/bob/totp", 200},
		{"all-tenant admin must name one", "root", "/v1/approvers/bob/totp", 400},
		{"all-tenant admin names one", "root", "/v1/approvers/bob/totp?tenant_id=" + otherTenant, 200},
		{"other tenant", "admin", "/v1/approvers/bob/totp?tenant_id=" + otherTenant, 404},
		{"unknown parameter", "admin", "/v1/approvers/bob/totp?user=x", 400},
		{"not an admin", "approver", "/v1/approvers/bob/totp", 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(request{method: "POST", path: tt.path, token: tt.token})
			require.Equal(t, tt.status, resp.status, "POST %s = %d %s", tt.path, resp.status, resp.body)
		})
	}
	// The enrollment is an event in the ledger.
	resp := ts.do(request{method: "GET", path: fmt.Sprintf("/v1/ledger/entries/%d", ts.size()-1), token: "root"})
	require.Equal(t, http.StatusOK, resp.status)
	var e receipt.Event
	require.NoError(t, json.Unmarshal(resp.body, &e))
	assert.Equal(t, "approver.totp_enrolled", e.Event)
	assert.Equal(t, "root", e.Actor)
	assert.Equal(t, otherTenant, e.TenantID)
	assert.JSONEq(t, `{"method":"totp","user_id":"bob"}`, string(e.Details))
}

func TestCancel(t *testing.T) {
	ts := newApprovalServer(t, options{})
	// alice's actions: alice is an operator whose user is "alice".
	post := func(amount int) string {
		resp := ts.do(request{method: "POST", path: "/v1/actions", token: "alice", body: actionBody(ownTenant, boundAgent, amount)})
		require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
		return resp.action(t).ActionID
	}
	cancel := func(token, id, body string) response {
		return ts.do(request{method: "POST", path: "/v1/actions/" + id + "/cancel", token: token, body: body})
	}

	byRequester := post(500)
	resp := cancel("operator", byRequester, `{"reason":"not mine"}`)
	require.Equal(t, http.StatusForbidden, resp.status, "%s", resp.body)
	assert.Equal(t, "not_requester", resp.errorBody(t).Error.Code)
	resp = cancel("alice", byRequester, `{"reason":"customer withdrew"}`)
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "cancelled", resp.approval(t).Status)
	resp = cancel("alice", byRequester, "")
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "not_pending", resp.errorBody(t).Error.Code)

	byAdmin := post(600)
	resp = cancel("admin", byAdmin, "") // no body
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	assert.Equal(t, "cancelled", resp.approval(t).Status)

	allowed := post(5)
	resp = cancel("alice", allowed, "")
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
	assert.Equal(t, "not_pending", resp.errorBody(t).Error.Code)

	resp = cancel("alice", post(700), `{"reason":"x","why":1}`)
	assert.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
	resp = cancel("alice", "no-such-action", "")
	assert.Equal(t, http.StatusNotFound, resp.status, "%s", resp.body)
	other := ts.payment(otherTenant, 500).ActionID
	resp = cancel("admin", other, "")
	assert.Equal(t, http.StatusNotFound, resp.status, "%s", resp.body)
}

func TestListApprovals(t *testing.T) {
	clock := newTestClock()
	ts := newApprovalServer(t, options{clock: clock.Now})
	var pending []string
	for i := range 5 {
		pending = append(pending, ts.payment(ownTenant, 200+i).ActionID)
		clock.add(time.Second)
	}
	otherID := ts.payment(otherTenant, 500).ActionID
	// Decide some: one rejected, one cancelled, one approved.
	require.Equal(t, http.StatusOK, ts.decide("bob", pending[0], `{"decision":"reject"}`).status)
	require.Equal(t, http.StatusOK, ts.do(request{method: "POST", path: "/v1/actions/" + pending[1] + "/cancel", token: "admin"}).status)
	require.Equal(t, http.StatusOK, ts.decide("bob", pending[2], `{"decision":"approve"}`).status)
	require.Equal(t, http.StatusOK, ts.decide("carol", pending[2], `{"decision":"approve"}`).status)
	stillPending := pending[3:]

	type list struct {
		Approvals  []approvalView `json:"approvals"`
		NextCursor string         `json:"next_cursor"`
	}
	get := func(token, query string) (list, response) {
		resp := ts.do(request{method: "GET", path: "/v1/approvals" + query, token: token})
		var l list
		if resp.status == http.StatusOK {
			require.NoError(t, json.Unmarshal(resp.body, &l))
		}
		return l, resp
	}
	ids := func(l list) []string {
		var out []string
		for _, a := range l.Approvals {
			out = append(out, a.ActionID)
		}
		return out
	}

	t.Run("pending pages", func(t *testing.T) {
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			require.Less(t, page, 5, "too many pages")
			q := "?limit=1"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			l, resp := get("bob", q)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			seen = append(seen, ids(l)...)
			if l.NextCursor == "" {
				break
			}
			cursor = l.NextCursor
		}
		assert.Equal(t, stillPending, seen, "pending approvals, oldest first, each once")
	})
	t.Run("a page survives decisions", func(t *testing.T) {
		l, resp := get("bob", "?limit=1")
		require.Equal(t, http.StatusOK, resp.status)
		require.Equal(t, []string{stillPending[0]}, ids(l))
		// The approval the cursor points at is decided meanwhile.
		extra := ts.payment(ownTenant, 300).ActionID
		require.Equal(t, http.StatusOK, ts.decide("bob", stillPending[0], `{"decision":"reject"}`).status)
		l, resp = get("bob", "?limit=10&cursor="+l.NextCursor)
		require.Equal(t, http.StatusOK, resp.status)
		assert.Equal(t, []string{stillPending[1], extra}, ids(l))
	})
	for _, tt := range []struct {
		status string
		want   []string
	}{
		{"rejected", []string{pending[0], stillPending[0]}},
		{"cancelled", []string{pending[1]}},
		{"approved", []string{pending[2]}},
		{"expired", nil},
	} {
		t.Run(tt.status, func(t *testing.T) {
			l, resp := get("auditor", "?status="+tt.status+"&limit=1")
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			got := ids(l)
			for l.NextCursor != "" {
				l, resp = get("auditor", "?status="+tt.status+"&limit=1&cursor="+l.NextCursor)
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
				got = append(got, ids(l)...)
			}
			assert.Equal(t, tt.want, got, "GET /v1/approvals?status=%s", tt.status)
			for _, a := range l.Approvals {
				assert.Equal(t, ownTenant, a.TenantID)
			}
		})
	}
	t.Run("tenants", func(t *testing.T) {
		l, resp := get("gina", "")
		require.Equal(t, http.StatusOK, resp.status)
		assert.Equal(t, []string{otherID}, ids(l), "gina sees her only tenant")
		l, resp = get("root", "?tenant_id="+otherTenant)
		require.Equal(t, http.StatusOK, resp.status)
		assert.Equal(t, []string{otherID}, ids(l))
		l, resp = get("root", "?limit=100")
		require.Equal(t, http.StatusOK, resp.status)
		assert.Len(t, l.Approvals, 3, "an all-tenant caller sees every tenant (two in acme, one in globex)")
	})
	l, _ := get("bob", "?limit=1")
	for _, tt := range []struct {
		name, token, query string
		status             int
	}{
		{"other tenant", "bob", "?tenant_id=" + otherTenant, 404},
		{"several tenants", "ops2", "", 400},
		{"bad status", "bob", "?status=allowed", 400},
		{"bad limit", "bob", "?limit=0", 400},
		{"limit too big", "bob", "?limit=101", 400},
		{"bad cursor", "bob", "?cursor=%21%21", 400},
		{"cursor of another status", "bob", "?status=rejected&cursor=" + l.NextCursor, 400},
		{"unknown parameter", "bob", "?agent_id=x", 400},
		{"agent role", "agent", "", 403},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, resp := get(tt.token, tt.query)
			assert.Equal(t, tt.status, resp.status, "GET /v1/approvals%s as %s = %d %s", tt.query, tt.token, resp.status, resp.body)
		})
	}
}

// TestExecutorOnAllowedAction: an allowed action of a tool with an
// executor is executed before POST /v1/actions answers, once.
func TestExecutorOnAllowedAction(t *testing.T) {
	var calls atomic.Int32
	ts := newApprovalServer(t, options{executors: map[string]oars.ExecFunc{
		"payments": func(ctx context.Context, a *oars.Action) (json.RawMessage, error) {
			calls.Add(1)
			var in struct {
				Amount int `json:"amount"`
			}
			if err := json.Unmarshal(a.Input, &in); err != nil {
				return nil, err
			}
			if in.Amount == 13 {
				return nil, errors.New("unlucky: secret detail")
			}
			return json.RawMessage(fmt.Sprintf(`{"paid":%d}`, in.Amount)), nil
		},
	}})
	post := func(amount int, key string) response {
		req := request{method: "POST", path: "/v1/actions", token: "operator", body: actionBody(ownTenant, boundAgent, amount)}
		if key != "" {
			req.header = map[string]string{"Idempotency-Key": key}
		}
		return ts.do(req)
	}
	statuses := func(a actionResult) []string {
		var out []string
		for _, r := range a.Receipts {
			var h struct {
				Status string `json:"status"`
			}
			require.NoError(t, json.Unmarshal(r, &h))
			out = append(out, h.Status)
		}
		return out
	}

	resp := post(40, "k1")
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	a := resp.action(t)
	assert.Equal(t, "executed", a.Status)
	assert.Equal(t, []string{"allowed", "executing", "executed"}, statuses(a))
	var out struct {
		Output json.RawMessage `json:"output"`
	}
	require.NoError(t, json.Unmarshal(resp.body, &out))
	assert.JSONEq(t, `{"paid":40}`, string(out.Output))
	assert.Equal(t, int32(1), calls.Load())

	replay := post(40, "k1")
	require.Equal(t, http.StatusOK, replay.status, "%s", replay.body)
	assert.Equal(t, "executed", replay.action(t).Status)
	assert.Equal(t, int32(1), calls.Load(), "a replay does not execute again")

	failed := post(13, "")
	require.Equal(t, http.StatusCreated, failed.status, "%s", failed.body)
	fa := failed.action(t)
	assert.Equal(t, "failed", fa.Status)
	assert.Equal(t, []string{"allowed", "executing", "failed"}, statuses(fa))
	assert.NotContains(t, string(failed.body), "secret detail")

	held := post(500, "")
	require.Equal(t, http.StatusCreated, held.status)
	assert.Equal(t, "pending_approval", held.action(t).Status, "held actions are not executed on submit")
	assert.Equal(t, int32(2), calls.Load())
}

// TestInputNotStoredCancels: an action held for approval whose input
// cannot be stored is cancelled, and the client gets 503.
func TestInputNotStoredCancels(t *testing.T) {
	ts := newApprovalServer(t, options{})
	ts.inputs.setFail(errors.New("disk full"))
	resp := ts.do(request{method: "POST", path: "/v1/actions", token: "operator", body: actionBody(ownTenant, boundAgent, 500),
		header: map[string]string{"Idempotency-Key": "held-1"}})
	require.Equal(t, http.StatusServiceUnavailable, resp.status, "%s", resp.body)
	assert.NotContains(t, string(resp.body), "disk full")
	id := oars.IdempotentActionID(ownTenant, "held-1")
	got := ts.do(request{method: "GET", path: "/v1/actions/" + id, token: "operator"})
	require.Equal(t, http.StatusOK, got.status, "%s", got.body)
	assert.Equal(t, "cancelled", got.action(t).Status)
}
