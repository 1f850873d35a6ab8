package httpapi_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

const (
	testIssuer   = "https://idp.example.test"
	testAudience = "oars"
)

// policyDelegation allows small payments unless the delegation chain has
// more than two actors.
const policyDelegation = `
id: payments
version: "1"
default: deny
rules:
  - id: deep-delegation
    when: size(principal.delegation) > 2
    effect: deny
    reason: delegation chain too long
  - id: small
    when: action.tool_id == "payments" && has(input.amount) && input.amount <= 100
    effect: allow
    reason: small payments are allowed
`

// idp is a JWT issuer with a real Ed25519 key, its JWKS served over
// loopback.
type idp struct {
	priv ed25519.PrivateKey
	kid  string
	url  string
}

func newIdP(t *testing.T) *idp {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	p := &idp{priv: priv, kid: "idp-key-1"}
	set, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: pub, KeyID: p.kid, Use: "sig"}}})
	require.NoError(t, err)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(set)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

// authenticator returns a JWT authenticator trusting p.
func (p *idp) authenticator(t *testing.T) identity.Authenticator {
	t.Helper()
	a, err := identity.NewJWTAuthenticator([]identity.Issuer{{Issuer: testIssuer, Audience: testAudience, JWKSURL: p.url}})
	require.NoError(t, err)
	return a
}

// sign returns a JWT of p with valid standard claims for sub, plus extra.
func (p *idp) sign(t *testing.T, sub string, extra map[string]any) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": sub,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(),
	}
	for k, v := range extra {
		claims[k] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: p.priv, KeyID: p.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	require.NoError(t, err)
	return tok
}

// agentToken is the JWT of agent bot-1 of tenant acme.
func (p *idp) agentToken(t *testing.T) string {
	return p.sign(t, boundAgent, map[string]any{"kind": "agent", "roles": []string{"agent"}, "tenants": []string{ownTenant}})
}

// delegationToken is a token of user alice delegated along actors
// (innermost first), each granted scopes[i] (nil: inherited).
func (p *idp) delegationToken(t *testing.T, grant string, actors []string, scopes []any) string {
	t.Helper()
	var act map[string]any
	for i, a := range actors {
		hop := map[string]any{"sub": a, "iss": testIssuer}
		if scopes != nil && scopes[i] != nil {
			hop["scope"] = scopes[i]
		}
		if act != nil {
			hop["act"] = act
		}
		act = hop
	}
	return p.sign(t, "alice", map[string]any{
		"roles": []string{"agent"}, "tenants": []string{ownTenant}, "groups": []string{"finance"},
		"scope": grant, "act": act,
	})
}

// postAs submits body with a raw bearer token.
func (ts *testServer) postAs(bearer, body string) response {
	ts.t.Helper()
	return ts.do(request{method: "POST", path: "/v1/actions", body: body, header: map[string]string{"Authorization": "Bearer " + bearer}})
}

// identityBody is an action body for agent and user.
func identityBody(agent, user, tool, op string) string {
	b, _ := json.Marshal(map[string]any{
		"tenant_id":    ownTenant,
		"agent_id":     agent,
		"user_context": map[string]any{"user_id": user, "roles": []string{"payments-admin"}},
		"resource":     map[string]any{"tool_id": tool, "operation": op},
		"input":        map[string]any{"amount": 5},
	})
	return string(b)
}

// refusalErrorBody is the error envelope of a refusal.
type refusalErrorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details struct {
			ReceiptID string `json:"receipt_id"`
		} `json:"details"`
	} `json:"error"`
}

// refusedReceipt finds the receipt a refusal names in the ledger.
func (ts *testServer) refusedReceipt(t *testing.T, resp response) *receipt.Receipt {
	t.Helper()
	var e refusalErrorBody
	require.NoError(t, json.Unmarshal(resp.body, &e), "body %s", resp.body)
	assert.Equal(t, "forbidden", e.Error.Code)
	require.NotEmpty(t, e.Error.Details.ReceiptID, "details.receipt_id in %s", resp.body)
	n := ts.size()
	for i := n - 1; i >= 0; i-- {
		leaf, err := ts.ledger.Leaf(context.Background(), i)
		require.NoError(t, err)
		r := ts.verify(t, leaf)
		if r.ReceiptID == e.Error.Details.ReceiptID {
			return r
		}
	}
	t.Fatalf("receipt %s not in the ledger", e.Error.Details.ReceiptID)
	return nil
}

// verify checks a signed receipt against the server's keys.
func (ts *testServer) verify(t *testing.T, raw []byte) *receipt.Receipt {
	t.Helper()
	v, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	r, err := v.Verify(raw)
	require.NoError(t, err)
	return r
}

func TestJWTAgentBinding(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t), policy: policyDelegation})
	tok := p.agentToken(t)

	t.Run("own agent", func(t *testing.T) {
		resp := ts.postAs(tok, identityBody(boundAgent, "alice", "payments", "refund"))
		require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)
		assert.Equal(t, "allowed", resp.action(t).Status)
	})
	t.Run("other agent", func(t *testing.T) {
		before := ts.size()
		resp := ts.postAs(tok, identityBody("bot-2", "alice", "payments", "refund"))
		require.Equal(t, http.StatusForbidden, resp.status, "body %s", resp.body)
		r := ts.refusedReceipt(t, resp)
		assert.Equal(t, before+1, ts.size(), "one denied receipt recorded")
		assert.Equal(t, receipt.StatusDenied, r.Status)
		assert.Equal(t, int64(1), r.Seq)
		assert.Equal(t, "bot-2", r.AgentID)
		require.Len(t, r.Reasons, 1)
		assert.Contains(t, r.Reasons[0], "agent_id does not match")
		assert.Nil(t, r.Policy, "no policy was evaluated")
	})
}

func TestJWTUserBinding(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t), policy: policyDelegation})
	userTok := p.sign(t, "alice", map[string]any{"roles": []string{"operator"}, "tenants": []string{ownTenant}, "groups": []string{"payments-admin"}})

	resp := ts.postAs(userTok, identityBody("bot-9", "alice", "payments", "refund"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)

	resp = ts.postAs(userTok, identityBody("bot-9", "mallory", "payments", "refund"))
	require.Equal(t, http.StatusForbidden, resp.status, "body %s", resp.body)
	r := ts.refusedReceipt(t, resp)
	assert.Equal(t, receipt.StatusDenied, r.Status)
	assert.Equal(t, "mallory", r.Principal.UserID)
	require.Len(t, r.Reasons, 1)
	assert.Contains(t, r.Reasons[0], "user_context.user_id does not match")
}

func TestDelegationIntoReceiptsAndPolicies(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t), policy: policyDelegation})

	// alice → planner → researcher → executor: three hops, current
	// actor (executor) first.
	three := p.delegationToken(t, "payments:*", []string{"planner", "researcher", "executor"}, nil)
	resp := ts.postAs(three, identityBody("executor", "alice", "payments", "refund"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)
	res := resp.action(t)
	assert.Equal(t, "denied", res.Status, "a chain of three hops is denied by the policy")
	r := ts.verify(t, res.Receipts[0])
	var subs []string
	for _, h := range r.Principal.Delegation {
		subs = append(subs, h.Subject)
		assert.Equal(t, testIssuer, h.Issuer)
		assert.Equal(t, []string{"payments:*"}, h.Scope)
	}
	assert.Equal(t, []string{"executor", "researcher", "planner"}, subs, "principal.delegation, outermost first")
	require.NotNil(t, r.Policy)
	assert.Contains(t, r.Policy.MatchedRules, "payments/deep-delegation")

	two := p.delegationToken(t, "payments:*", []string{"planner", "executor"}, nil)
	resp = ts.postAs(two, identityBody("executor", "alice", "payments", "refund"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)
	assert.Equal(t, "allowed", resp.action(t).Status, "a chain of two hops is allowed")

	t.Run("delegated user is bound", func(t *testing.T) {
		resp := ts.postAs(two, identityBody("executor", "bob", "payments", "refund"))
		require.Equal(t, http.StatusForbidden, resp.status, "body %s", resp.body)
		r := ts.refusedReceipt(t, resp)
		assert.Len(t, r.Principal.Delegation, 2, "the refusal records the chain too")
	})
}

func TestDelegationWidens(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t), policy: policyDelegation})
	before := ts.size()
	tok := p.delegationToken(t, "payments:refund", []string{"planner", "executor"}, []any{nil, "payments:*"})
	resp := ts.postAs(tok, identityBody("executor", "alice", "payments", "refund"))
	require.Equal(t, http.StatusUnauthorized, resp.status, "body %s", resp.body)
	e := resp.errorBody(t)
	assert.Equal(t, "unauthorized", e.Error.Code)
	assert.Contains(t, e.Error.Message, "delegation chain claims a scope or lifetime wider")
	assert.Equal(t, before, ts.size(), "nothing recorded for unauthenticated requests")
}

func TestScopeRefusal(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t), policy: policyDelegation})
	tok := p.delegationToken(t, "payments:*", []string{"planner", "executor"}, []any{nil, "payments:read"})

	resp := ts.postAs(tok, identityBody("executor", "alice", "payments", "read"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)

	resp = ts.postAs(tok, identityBody("executor", "alice", "payments", "refund"))
	require.Equal(t, http.StatusForbidden, resp.status, "body %s", resp.body)
	r := ts.refusedReceipt(t, resp)
	require.Len(t, r.Reasons, 1)
	assert.Equal(t, "delegated scope does not allow payments:refund", r.Reasons[0])
	assert.Equal(t, receipt.StatusDenied, r.Status)
}

// TestDelegationGroupsAreRoles: the roles policies see for a user named
// by the credential are its groups, never those asserted in the body.
func TestDelegationGroupsAreRoles(t *testing.T) {
	p := newIdP(t)
	ts := newTestServer(t, options{auth: p.authenticator(t)}) // policyV1: payments-admin may do anything
	// The body asserts payments-admin; the token's groups are finance.
	tok := p.delegationToken(t, "*", []string{"executor"}, nil)
	resp := ts.postAs(tok, identityBody("executor", "alice", "crm", "delete"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)
	assert.Equal(t, "denied", resp.action(t).Status, "asserted roles are ignored")

	admin := p.sign(t, "alice", map[string]any{"roles": []string{"agent"}, "tenants": []string{ownTenant}, "groups": []string{"payments-admin"}})
	resp = ts.postAs(admin, identityBody("executor", "alice", "crm", "delete"))
	require.Equal(t, http.StatusCreated, resp.status, "body %s", resp.body)
	assert.Equal(t, "allowed", resp.action(t).Status, "the credential's groups are the user's roles")
}
