package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/internal/testutil"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

func TestPolicyReload(t *testing.T) {
	var mu sync.Mutex
	src := ""
	reload := func(ctx context.Context) (*policy.Set, error) {
		mu.Lock()
		defer mu.Unlock()
		p, err := policy.Parse("payments.yaml", []byte(src))
		if err != nil {
			return nil, err
		}
		return policy.NewSet(p)
	}
	setSource := func(s string) {
		mu.Lock()
		src = s
		mu.Unlock()
	}
	ts := newTestServer(t, options{reload: reload})
	oldDigest := mustPolicy(t, policyV1).Digest()
	newDigest := mustPolicy(t, policyV2).Digest()
	policyDigest := func(raw []byte) string {
		rc, err := ledgerReceipt(raw)
		require.NoError(t, err)
		return rc.Policy.Digest
	}

	// A broken policy: 422 naming file and rule, and the old set decides.
	setSource(`
id: payments
version: "3"
default: deny
rules:
  - id: broken
    when: action.tool_id ==
    effect: allow
    reason: oops
`)
	size := ts.size()
	resp := ts.do(request{method: "POST", path: "/v1/policies/reload", token: "admin"})
	require.Equal(t, http.StatusUnprocessableEntity, resp.status, "%s", resp.body)
	e := resp.errorBody(t)
	assert.Equal(t, "invalid_policy", e.Error.Code)
	assert.Contains(t, e.Error.Message, "payments.yaml")
	assert.Contains(t, e.Error.Message, `rule "broken"`)
	assert.Equal(t, size, ts.size(), "a refused reload records nothing")
	a := ts.submit("operator", ownTenant, boundAgent, 50)
	assert.Equal(t, "allowed", a.Status)
	assert.Equal(t, oldDigest, policyDigest(a.Receipts[0]))

	// A good policy: 200 with the new digest, which then decides.
	setSource(policyV2)
	resp = ts.do(request{method: "POST", path: "/v1/policies/reload", token: "admin", body: "{}"})
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	var reloaded struct {
		PreviousDigest string `json:"previous_digest"`
		Digest         string `json:"digest"`
		Version        string `json:"version"`
	}
	require.NoError(t, json.Unmarshal(resp.body, &reloaded))
	assert.Equal(t, oldDigest, reloaded.PreviousDigest)
	assert.Equal(t, newDigest, reloaded.Digest)
	assert.Equal(t, "2", reloaded.Version)

	a = ts.submit("operator", ownTenant, boundAgent, 50)
	assert.Equal(t, "denied", a.Status)
	assert.Equal(t, newDigest, policyDigest(a.Receipts[0]))

	// GET /v1/policies shows the set in force.
	pol := ts.do(request{method: "GET", path: "/v1/policies", token: "auditor"})
	require.Equal(t, http.StatusOK, pol.status)
	var view struct {
		ID       string `json:"id"`
		Version  string `json:"version"`
		Digest   string `json:"digest"`
		Policies []struct {
			ID      string   `json:"id"`
			Mode    string   `json:"mode"`
			Tenants []string `json:"tenants"`
			Rules   []struct {
				ID, Effect, Reason string
			} `json:"rules"`
		} `json:"policies"`
	}
	require.NoError(t, json.Unmarshal(pol.body, &view))
	assert.Equal(t, newDigest, view.Digest)
	require.Len(t, view.Policies, 1)
	assert.Equal(t, "enforce", view.Policies[0].Mode)
	assert.Equal(t, []string{}, view.Policies[0].Tenants)
	require.Len(t, view.Policies[0].Rules, 1)
	assert.Equal(t, "frozen", view.Policies[0].Rules[0].ID)
	assert.Equal(t, "deny", view.Policies[0].Rules[0].Effect)

	// The reload is a signed policy.reloaded event in the ledger, naming
	// the caller.
	leaves, err := ts.ledger.Leaves(context.Background(), 0, int(ts.size()))
	require.NoError(t, err)
	verifier, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	var events []*receipt.Event
	for _, leaf := range leaves {
		if h, ok := ledger.ParseHeader(leaf); ok && h.Spec == ledger.SpecEvent {
			ev, err := verifier.VerifyEvent(leaf)
			require.NoError(t, err)
			events = append(events, ev)
		}
	}
	require.Len(t, events, 1)
	assert.Equal(t, "policy.reloaded", events[0].Event)
	assert.Equal(t, "admin", events[0].Actor)
	assert.Contains(t, string(events[0].Details), newDigest)

	// A non-empty body must be {}.
	resp = ts.do(request{method: "POST", path: "/v1/policies/reload", token: "admin", body: `{"force":true}`})
	assert.Equal(t, http.StatusBadRequest, resp.status)
}

func TestPolicyReloadNotConfigured(t *testing.T) {
	ts := newTestServer(t, options{})
	resp := ts.do(request{method: "POST", path: "/v1/policies/reload", token: "admin"})
	require.Equal(t, http.StatusNotImplemented, resp.status, "%s", resp.body)
	assert.Equal(t, "not_implemented", resp.errorBody(t).Error.Code)
}

// No response and no log line ever contains a token secret, whatever the
// request.
func TestNoSecretsInResponsesOrLogs(t *testing.T) {
	ts := newTestServer(t, options{rateLimit: 1000, rateBurst: 1000, ready: func(ctx context.Context) error {
		return errors.New("database down")
	}})
	a := ts.submit("root", ownTenant, boundAgent, 5)
	reqs := []request{
		{method: "GET", path: "/v1/actions/" + a.ActionID, token: "bad"},
		{method: "GET", path: "/v1/actions/" + a.ActionID, header: map[string]string{"Authorization": "Basic " + secrets["admin"]}},
		{method: "GET", path: "/v1/actions/" + a.ActionID, header: map[string]string{"Authorization": "Bearer " + secrets["admin"] + "!"}},
		{method: "GET", path: "/v1/actions/" + a.ActionID, header: map[string]string{"Authorization": "Bearer  " + badSecret + " x"}},
		{method: "POST", path: "/v1/actions", token: "agent", body: actionBody(secrets["agent"], boundAgent, 1)},
		{method: "POST", path: "/v1/actions", token: "agent", body: actionBody(ownTenant, secrets["agent"], 1)},
		{method: "POST", path: "/v1/actions", token: "operator", body: `{"tenant_id":"` + secrets["operator"] + `",`},
		{method: "POST", path: "/v1/actions", token: "operator", body: `{"tenant_id":"` + secrets["operator"] + `","tenant_id":"x"}`},
		{method: "POST", path: "/v1/actions", token: "operator", body: `{"tenant_id":5,"x":"` + secrets["operator"] + `"}`},
		{method: "POST", path: "/v1/actions", token: "operator", body: bodyWith(func(m map[string]any) { m["input"] = secrets["operator"] })},
		{method: "GET", path: "/v1/receipts?tenant_id=" + secrets["auditor"], token: "auditor"},
		{method: "GET", path: "/v1/receipts?cursor=" + secrets["auditor"], token: "auditor"},
		{method: "GET", path: "/v1/receipts?since=" + secrets["auditor"], token: "auditor"},
		{method: "GET", path: "/v1/receipts/" + secrets["auditor"], token: "auditor"},
		{method: "GET", path: "/v1/ledger/entries/" + secrets["auditor"], token: "auditor"},
		{method: "GET", path: "/v1/ledger/proofs/inclusion?index=" + secrets["auditor"], token: "auditor"},
		{method: "POST", path: "/v1/receipts/verify", token: "approver", body: `{"receipt_id":"` + secrets["approver"] + `"}`},
		{method: "POST", path: "/v1/receipts/verify", token: "approver", body: `{"receipt":{"receipt_id":"` + secrets["approver"] + `"}}`},
		{method: "GET", path: "/" + secrets["root"], token: "root"},
		{method: "GET", path: "/v1/policies", token: "agent"},
		{method: "GET", path: "/metrics", token: "admin"},
		{method: "GET", path: "/ready"},
		{method: "POST", path: "/v1/policies/reload", token: "admin"},
		{method: "GET", path: "/v1/approvals?cursor=" + secrets["approver"], token: "approver"},
		{method: "GET", path: "/v1/approvals/" + secrets["approver"], token: "approver"},
		{method: "POST", path: "/v1/approvals/" + secrets["approver"] + "/decision", token: "approver",
			body: `{"decision":"approve","totp":"` + secrets["approver"] + `"}`},
		{method: "POST", path: "/v1/actions/" + secrets["operator"] + "/cancel", token: "operator", body: `{"reason":"x"}`},
	}
	for _, req := range reqs {
		ts.do(req)
	}
	var all [][]byte
	ts.mu.Lock()
	all = append(all, ts.responses...)
	ts.mu.Unlock()
	all = append(all, []byte(ts.logs.String()))
	require.NotEmpty(t, ts.logs.String())
	planted := []string{badSecret}
	for _, s := range secrets {
		planted = append(planted, s)
	}
	for _, s := range planted {
		for _, b := range all {
			require.False(t, bytes.Contains(b, []byte(s)), "a response or log holds a token secret: %q", truncate(b))
			// Part of it, too (the marker is unique to the secrets).
			require.False(t, bytes.Contains(b, []byte("PLANTED")), "a response or log holds part of a secret: %q", truncate(b))
		}
	}
}

func truncate(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

func TestOAPDiscovery(t *testing.T) {
	required := []string{"oap_version", "authorization_endpoint", "passport_endpoint", "policy_endpoint"}
	allowed := append([]string{"decision_endpoint", "jwks_uri", "supported_capabilities", "supported_assurance_levels",
		"agent_manifest_endpoint", "spec_uri", "contact"}, required...)
	tests := []struct {
		name, baseURL, wantBase string
	}{
		{"configured base", "https://oars.example.com/", "https://oars.example.com"},
		{"configured base with path", "https://example.com/oars", "https://example.com/oars"},
		{"derived from Host", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, options{publicBaseURL: tt.baseURL})
			wantBase := tt.wantBase
			if wantBase == "" {
				u, err := url.Parse(ts.srv.URL)
				require.NoError(t, err)
				wantBase = "https://" + u.Host
			}
			for _, path := range []string{"/.well-known/oap", "/.well-known/oap/"} {
				resp := ts.do(request{method: "GET", path: path})
				require.Equal(t, http.StatusOK, resp.status, "GET %s", path)
				assert.Equal(t, "application/json", resp.header.Get("Content-Type"))
				assert.Equal(t, "public, max-age=300", resp.header.Get("Cache-Control"))
				var doc map[string]any
				require.NoError(t, json.Unmarshal(resp.body, &doc))
				for _, f := range required {
					assert.Contains(t, doc, f)
				}
				for f := range doc {
					assert.Contains(t, allowed, f, "field %q is not in the OAP discovery schema", f)
				}
				assert.Equal(t, "1.0", doc["oap_version"])
				assert.Equal(t, wantBase+"/.well-known/oap/jwks.json", doc["jwks_uri"])
				for _, f := range []string{"authorization_endpoint", "passport_endpoint", "policy_endpoint", "decision_endpoint"} {
					assert.True(t, strings.HasPrefix(doc[f].(string), wantBase+"/"), "%s = %v, want under %s", f, doc[f], wantBase)
				}
				assert.Contains(t, doc["authorization_endpoint"], "{agent_id}")
				assert.Contains(t, doc["passport_endpoint"], "{agent_id}")
				assert.Contains(t, doc["policy_endpoint"], "{policy_name}")
				assert.Contains(t, doc["decision_endpoint"], "{decision_id}")
				assert.Equal(t, []any{"L0", "L1", "L2", "L3", "L4KYC", "L4FIN"}, doc["supported_assurance_levels"])
			}
		})
	}

	t.Run("bad Host", func(t *testing.T) {
		ts := newTestServer(t, options{})
		r, err := http.NewRequest("GET", ts.srv.URL+"/.well-known/oap", nil)
		require.NoError(t, err)
		r.Host = "evil.com/\"><script>"
		resp, err := ts.srv.Client().Do(r)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	})

	t.Run("JWKS with a retired key", func(t *testing.T) {
		ts := newTestServer(t, options{})
		old := ts.keys.Active().KeyID()
		next, err := receipt.GenerateSigner()
		require.NoError(t, err)
		require.NoError(t, ts.keys.Rotate(next))
		resp := ts.do(request{method: "GET", path: "/.well-known/oap/jwks.json"})
		require.Equal(t, http.StatusOK, resp.status)
		assert.Equal(t, "application/json", resp.header.Get("Content-Type"))
		set, err := receipt.ParseJWKS(resp.body)
		require.NoError(t, err)
		assert.Equal(t, 2, set.Len())
		for _, kid := range []string{old, next.KeyID()} {
			_, ok := set.Lookup(kid)
			assert.True(t, ok, "JWKS lacks key %s", kid)
		}
		assert.NotContains(t, string(resp.body), `"d"`)
	})
}

func TestSecurityHeaders(t *testing.T) {
	ts := newTestServer(t, options{})
	for _, req := range []request{
		{method: "GET", path: "/health"},
		{method: "GET", path: "/nope"},
		{method: "GET", path: "/v1/policies"},
		{method: "GET", path: "/v1/policies", token: "operator"},
		{method: "POST", path: "/v1/actions", token: "operator", body: actionBody(ownTenant, boundAgent, 1)},
		{method: "GET", path: "/.well-known/oap"},
	} {
		t.Run(req.method+" "+req.path+" "+req.token, func(t *testing.T) {
			resp := ts.do(req)
			h := resp.header
			assert.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
			assert.Equal(t, "DENY", h.Get("X-Frame-Options"))
			assert.Contains(t, h.Get("Content-Security-Policy"), "default-src 'none'")
			assert.Equal(t, "no-referrer", h.Get("Referrer-Policy"))
			assert.NotEmpty(t, h.Get("X-Request-Id"))
			assert.NotEmpty(t, h.Get("Cache-Control"))
			if !strings.HasPrefix(req.path, "/.well-known/") {
				assert.Equal(t, "no-store", h.Get("Cache-Control"))
			}
			assert.Empty(t, h.Get("Access-Control-Allow-Origin"), "no CORS unless configured")
		})
	}
}

func TestRequestID(t *testing.T) {
	ts := newTestServer(t, options{})
	tests := []struct {
		given    string
		wantEcho bool
	}{
		{"req-123.abc:1_x", true},
		{"has spaces", false},
		{strings.Repeat("a", 129), false},
		{"<script>", false},
		{"", false},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.given, func(t *testing.T) {
			resp := ts.do(request{method: "GET", path: "/v1/nope", header: map[string]string{"X-Request-Id": tt.given}})
			id := resp.header.Get("X-Request-Id")
			require.NotEmpty(t, id)
			assert.Equal(t, id, resp.errorBody(t).Error.Details.RequestID)
			if tt.wantEcho {
				assert.Equal(t, tt.given, id)
			} else {
				assert.NotEqual(t, tt.given, id)
				assert.False(t, seen[id], "generated request id repeated")
				seen[id] = true
			}
			assert.Contains(t, ts.logs.String(), `"request_id":"`+id+`"`)
		})
	}
}

func TestCORS(t *testing.T) {
	const allowed = "https://console.example.com"
	ts := newTestServer(t, options{cors: []string{allowed}})
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantACAO   string
	}{
		{"allowed origin", request{method: "GET", path: "/health", header: map[string]string{"Origin": allowed}}, 200, allowed},
		{"other origin", request{method: "GET", path: "/health", header: map[string]string{"Origin": "https://evil.example.com"}}, 200, ""},
		{"origin prefix", request{method: "GET", path: "/health", header: map[string]string{"Origin": allowed + ".evil.com"}}, 200, ""},
		{"preflight", request{method: "OPTIONS", path: "/v1/actions", header: map[string]string{
			"Origin": allowed, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,content-type"}}, 204, allowed},
		{"preflight from other origin", request{method: "OPTIONS", path: "/v1/actions", header: map[string]string{
			"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"}}, 405, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.req)
			require.Equal(t, tt.wantStatus, resp.status, "%s", resp.body)
			assert.Equal(t, tt.wantACAO, resp.header.Get("Access-Control-Allow-Origin"))
			assert.Contains(t, resp.header.Values("Vary"), "Origin")
			assert.Empty(t, resp.header.Get("Access-Control-Allow-Credentials"))
			if tt.wantStatus == http.StatusNoContent {
				assert.Contains(t, resp.header.Get("Access-Control-Allow-Methods"), "POST")
				assert.Contains(t, resp.header.Get("Access-Control-Allow-Headers"), "Authorization")
				assert.Contains(t, resp.header.Get("Access-Control-Allow-Headers"), "Idempotency-Key")
			}
		})
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name       string
		probe      func(ctx context.Context) error
		wantStatus int
		wantMsg    string
	}{
		{"no probe", nil, 200, ""},
		{"ready", func(ctx context.Context) error { return nil }, 200, ""},
		{"failing", func(ctx context.Context) error { return errors.New("dial tcp: password=hunter2") }, 503, "not ready: error"},
		{"timing out", func(ctx context.Context) error { return fmt.Errorf("ping: %w", context.DeadlineExceeded) }, 503, "not ready: timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTestServer(t, options{ready: tt.probe})
			resp := ts.do(request{method: "GET", path: "/ready"})
			require.Equal(t, tt.wantStatus, resp.status, "%s", resp.body)
			if tt.wantStatus == http.StatusOK {
				assert.JSONEq(t, `{"status":"ready"}`, string(resp.body))
				return
			}
			e := resp.errorBody(t)
			assert.Equal(t, "service_unavailable", e.Error.Code)
			assert.Equal(t, tt.wantMsg, e.Error.Message)
			assert.NotContains(t, string(resp.body), "hunter2")
			assert.Contains(t, ts.logs.String(), e.Error.Details.RequestID, "the cause is logged with the request id")
		})
	}
	ts := newTestServer(t, options{ready: func(ctx context.Context) error { return errors.New("down") }})
	resp := ts.do(request{method: "GET", path: "/health"})
	assert.Equal(t, http.StatusOK, resp.status, "health does not depend on readiness")
	assert.JSONEq(t, `{"status":"ok"}`, string(resp.body))
}

func TestPanicRecovered(t *testing.T) {
	ts := newTestServer(t, options{ready: func(ctx context.Context) error { panic("boom: secret detail") }})
	resp := ts.do(request{method: "GET", path: "/ready"})
	require.Equal(t, http.StatusInternalServerError, resp.status)
	e := resp.errorBody(t)
	assert.Equal(t, "internal_server_error", e.Error.Code)
	assert.Equal(t, "internal server error", e.Error.Message)
	assert.NotContains(t, string(resp.body), "boom")
	assert.NotContains(t, string(resp.body), "goroutine")
	assert.Contains(t, ts.logs.String(), "panic serving request")
	// The server keeps serving.
	assert.Equal(t, http.StatusOK, ts.do(request{method: "GET", path: "/health"}).status)
}

func TestMetrics(t *testing.T) {
	ts := newTestServer(t, options{})
	a := ts.submit("operator", ownTenant, boundAgent, 1)
	ts.do(request{method: "GET", path: "/health"})
	ts.do(request{method: "GET", path: "/v1/actions/" + a.ActionID, token: "auditor"})
	ts.do(request{method: "GET", path: "/v1/no/such/route/" + a.ActionID})

	resp := ts.do(request{method: "GET", path: "/metrics", token: "auditor"})
	require.Equal(t, http.StatusOK, resp.status)
	body := string(resp.body)
	for _, want := range []string{
		`oars_http_requests_total{code="200",route="GET /health"} 1`,
		`oars_http_requests_total{code="201",route="POST /v1/actions"} 1`,
		`oars_http_requests_total{code="200",route="GET /v1/actions/{id}"} 1`,
		`oars_http_requests_total{code="404",route="unmatched"} 1`,
		`oars_http_request_duration_seconds_count{route="GET /health"} 1`,
		"oars_ledger_size 1",
		`oars_build_info{version="test"} 1`,
	} {
		assert.Contains(t, body, want)
	}
	assert.NotContains(t, body, a.ActionID, "metric labels must never hold raw paths")

	t.Run("forbidden to agents", func(t *testing.T) {
		assert.Equal(t, http.StatusForbidden, ts.do(request{method: "GET", path: "/metrics", token: "agent"}).status)
	})
	t.Run("no registry", func(t *testing.T) {
		ts := newTestServer(t, options{noRegistry: true})
		resp := ts.do(request{method: "GET", path: "/metrics", token: "admin"})
		assert.Equal(t, http.StatusNotFound, resp.status)
	})
}

func TestAccessLog(t *testing.T) {
	ts := newTestServer(t, options{})
	ts.do(request{method: "GET", path: "/v1/receipts?tenant_id=acme&limit=5", token: "auditor"})
	var line map[string]any
	for _, l := range strings.Split(strings.TrimSpace(ts.logs.String()), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m))
		if m["msg"] == "http request" && m["route"] == "GET /v1/receipts" {
			line = m
		}
	}
	require.NotNil(t, line, "no access log line in %s", ts.logs.String())
	assert.Equal(t, "INFO", line["level"])
	assert.Equal(t, "GET", line["method"])
	assert.Equal(t, float64(200), line["status"])
	assert.Equal(t, "auditor", line["subject"])
	assert.NotEmpty(t, line["request_id"])
	assert.Contains(t, line, "duration")
	assert.NotContains(t, ts.logs.String(), "limit=5", "query strings are not logged")
}

// testDeps builds the required dependencies of New.
func testDeps(t *testing.T) (*oars.Guard, *receipt.KeySet, identity.Authenticator) {
	t.Helper()
	signer, err := receipt.GenerateSigner()
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	l, err := ledger.New(context.Background(), newStore(t))
	require.NoError(t, err)
	g, err := oars.New(mustPolicy(t, policyV1), keys, l)
	require.NoError(t, err)
	auth, err := identity.NewTokenSet(tokens())
	require.NoError(t, err)
	return g, keys, auth
}

func TestNewConfig(t *testing.T) {
	g, keys, auth := testDeps(t)
	pub, _, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	vkey, err := ledger.VerifierKey("example.com/log", pub)
	require.NoError(t, err)
	verifyOnly, err := receipt.NewKeySet(nil)
	require.NoError(t, err)
	base := func() httpapi.Config { return httpapi.Config{Guard: g, Keys: keys, Auth: auth} }
	tests := []struct {
		name    string
		mod     func(c *httpapi.Config)
		wantErr string
	}{
		{"minimal", func(c *httpapi.Config) {}, ""},
		{"full", func(c *httpapi.Config) {
			c.VerifierKey, c.Origin = vkey, "example.com/log"
			c.PublicBaseURL, c.CORSOrigins = "https://oars.example.com", []string{"https://a.example.com", "http://localhost:3000"}
			c.Registry = prometheus.NewRegistry()
		}, ""},
		{"http loopback base", func(c *httpapi.Config) { c.PublicBaseURL = "http://127.0.0.1:8080" }, ""},
		{"nil guard", func(c *httpapi.Config) { c.Guard = nil }, "nil Guard"},
		{"nil keys", func(c *httpapi.Config) { c.Keys = nil }, "no receipt keys"},
		{"empty keys", func(c *httpapi.Config) { c.Keys = verifyOnly }, "no receipt keys"},
		{"nil auth", func(c *httpapi.Config) { c.Auth = nil }, "nil Authenticator"},
		{"negative body", func(c *httpapi.Config) { c.MaxBodyBytes = -1 }, "negative MaxBodyBytes"},
		{"negative rate", func(c *httpapi.Config) { c.RateLimit = -1 }, "negative rate"},
		{"negative burst", func(c *httpapi.Config) { c.RateBurst = -1 }, "negative rate"},
		{"bad verifier key", func(c *httpapi.Config) { c.VerifierKey = "nope" }, "verifier key"},
		{"origin mismatch", func(c *httpapi.Config) { c.VerifierKey, c.Origin = vkey, "other" }, "does not name the origin"},
		{"http base", func(c *httpapi.Config) { c.PublicBaseURL = "http://oars.example.com" }, "must be https"},
		{"relative base", func(c *httpapi.Config) { c.PublicBaseURL = "/oars" }, "absolute URL"},
		{"base with query", func(c *httpapi.Config) { c.PublicBaseURL = "https://oars.example.com/?x=1" }, "absolute URL"},
		{"wildcard CORS", func(c *httpapi.Config) { c.CORSOrigins = []string{"*"} }, "bare origin"},
		{"CORS with path", func(c *httpapi.Config) { c.CORSOrigins = []string{"https://a.example.com/app"} }, "bare origin"},
		{"CORS trailing slash", func(c *httpapi.Config) { c.CORSOrigins = []string{"https://a.example.com/"} }, "bare origin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.mod(&c)
			h, err := httpapi.New(c)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, h)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
	t.Run("registry used twice", func(t *testing.T) {
		c := base()
		c.Registry = prometheus.NewRegistry()
		_, err := httpapi.New(c)
		require.NoError(t, err)
		_, err = httpapi.New(c)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "metrics")
	})
}

// An authenticator that cannot decide makes the API answer 503, and the
// cause goes to the log only.
func TestAuthenticatorUnavailable(t *testing.T) {
	g, keys, _ := testDeps(t)
	logs := &testutil.SyncBuffer{}
	h, err := httpapi.New(httpapi.Config{Guard: g, Keys: keys,
		Auth: identity.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (*identity.Principal, error) {
			return nil, errors.New("jwks endpoint unreachable")
		}),
		Logger: newJSONLogger(logs),
	})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/policies", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code)
	assert.NotContains(t, rec.Body.String(), "jwks endpoint")
	assert.Contains(t, logs.String(), "jwks endpoint unreachable")
}

// TestDiscoveryEndpointsAreServed follows the discovery document: the
// capabilities the policies test are published, and the policy and decision
// endpoints it names answer.
func TestDiscoveryEndpointsAreServed(t *testing.T) {
	pol := `
id: caps
version: "1"
default: deny
rules:
  - id: refunds
    when: '"finance.payment.refund" in agent.capabilities && action.tool_id == "payments"'
    effect: allow
    reason: refund-capable agents may refund
  - id: exports
    when: '"data.export" in agent.capabilities && action.tool_id == "crm"'
    effect: allow
    reason: export-capable agents may export
`
	ts := newTestServer(t, options{policy: pol})
	resp := ts.do(request{method: "GET", path: "/.well-known/oap"})
	require.Equal(t, http.StatusOK, resp.status)
	var doc struct {
		Caps     []string `json:"supported_capabilities"`
		Policy   string   `json:"policy_endpoint"`
		Decision string   `json:"decision_endpoint"`
	}
	require.NoError(t, json.Unmarshal(resp.body, &doc))
	assert.Equal(t, []string{"data.export", "finance.payment.refund"}, doc.Caps)

	u, err := url.Parse(strings.Replace(doc.Policy, "{policy_name}", "caps", 1))
	require.NoError(t, err)
	got := ts.do(request{method: "GET", path: u.Path, token: "admin"})
	require.Equal(t, http.StatusOK, got.status, string(got.body))
	assert.Contains(t, string(got.body), `"id":"caps"`)
	missing := ts.do(request{method: "GET", path: "/v1/policies/nope", token: "admin"})
	assert.Equal(t, http.StatusNotFound, missing.status)

	assert.True(t, strings.HasSuffix(doc.Decision, "/v1/receipts/{decision_id}"), "decision_endpoint = %s", doc.Decision)
}
