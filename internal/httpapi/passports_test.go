package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/receipt"
)

const passportJSON = `{"owner_id":"org_acme","status":"active","assurance_level":"L2",
"capabilities":[{"id":"finance.payment.refund","limits":{"currency_limits":{"USD":{"max_per_tx":5000}}}}],"version":0}`

func newPassportServer(t *testing.T) (*testServer, *identity.PassportCache) {
	t.Helper()
	cache, err := identity.NewPassportCache(&identity.MemPassportStore{}, 0, nil)
	require.NoError(t, err)
	return newTestServer(t, options{passports: cache}), cache
}

// events returns the event names recorded in the ledger.
func events(t *testing.T, ts *testServer) []string {
	t.Helper()
	var names []string
	n := ts.size()
	for i := range n {
		leaf, err := ts.ledger.Store().ReadLeaves(context.Background(), i, 1)
		require.NoError(t, err)
		var e struct {
			Spec  string `json:"spec"`
			Event string `json:"event"`
		}
		require.NoError(t, json.Unmarshal(leaf[0], &e))
		if e.Spec == receipt.EventSpec {
			names = append(names, e.Event)
		}
	}
	return names
}

func TestPassportKillSwitchHTTP(t *testing.T) {
	ts, _ := newPassportServer(t)
	path := "/v1/passports/" + boundAgent + "?tenant_id=" + ownTenant

	resp := ts.do(request{method: "GET", path: path, token: "admin"})
	require.Equal(t, http.StatusNotFound, resp.status, "%s", resp.body)
	assert.Equal(t, "passport_not_found", resp.errorBody(t).Error.Code)

	resp = ts.do(request{method: "PUT", path: path, token: "admin", body: passportJSON})
	require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
	p, err := identity.ParsePassport(resp.body)
	require.NoError(t, err, "PUT answer %s", resp.body)
	assert.Equal(t, int64(1), p.Version)
	assert.Equal(t, ownTenant, p.TenantID)

	// The agent acts while active.
	act := ts.submit("agent", ownTenant, boundAgent, 50)
	assert.Equal(t, "allowed", act.Status)

	// The kill switch.
	resp = ts.do(request{method: "POST", path: "/v1/passports/" + boundAgent + "/suspend?tenant_id=" + ownTenant, token: "admin", body: `{"reason":"incident 42"}`})
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	p, err = identity.ParsePassport(resp.body)
	require.NoError(t, err)
	assert.Equal(t, identity.PassportSuspended, p.Status)
	act = ts.submit("agent", ownTenant, boundAgent, 50)
	assert.Equal(t, "denied", act.Status, "the suspended agent's next action")
	assert.Contains(t, string(act.Receipts[0]), "oap.passport_suspended")

	resp = ts.do(request{method: "POST", path: "/v1/passports/" + boundAgent + "/resume?tenant_id=" + ownTenant, token: "admin"})
	require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
	act = ts.submit("agent", ownTenant, boundAgent, 50)
	assert.Equal(t, "allowed", act.Status, "the resumed agent's next action")

	got := events(t, ts)
	assert.Equal(t, []string{"passport.updated", "passport.suspended", "passport.resumed"}, got[len(got)-3:], "passport events in the ledger")
}

func TestPassportRoutesErrors(t *testing.T) {
	ts, _ := newPassportServer(t)
	path := "/v1/passports/bot?tenant_id=" + ownTenant
	require.Equal(t, http.StatusCreated, ts.do(request{method: "PUT", path: path, token: "admin", body: passportJSON}).status)

	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantCode   string
	}{
		{"operator may not read", request{method: "GET", path: path, token: "operator"}, http.StatusForbidden, "forbidden"},
		{"agent may not suspend", request{method: "POST", path: "/v1/passports/bot/suspend?tenant_id=" + ownTenant, token: "agent"}, http.StatusForbidden, "forbidden"},
		{"foreign tenant", request{method: "GET", path: "/v1/passports/bot?tenant_id=" + otherTenant, token: "admin"}, http.StatusNotFound, "not_found"},
		{"stale version", request{method: "PUT", path: path, token: "admin", body: passportJSON}, http.StatusConflict, "conflict"},
		{"unknown member", request{method: "PUT", path: path, token: "admin", body: strings.Replace(passportJSON, `"version":0`, `"version":1,"did":"x"`, 1)}, http.StatusBadRequest, "validation_failed"},
		{"bad capability", request{method: "PUT", path: path, token: "admin", body: strings.Replace(strings.Replace(passportJSON, `"version":0`, `"version":1`, 1), "finance.payment.refund", "Finance!", 1)}, http.StatusBadRequest, "invalid_passport"},
		{"agent mismatch", request{method: "PUT", path: path, token: "admin", body: strings.Replace(passportJSON, `{`, `{"agent_id":"other",`, 1)}, http.StatusBadRequest, "validation_failed"},
		{"absent agent", request{method: "POST", path: "/v1/passports/ghost/suspend?tenant_id=" + ownTenant, token: "admin"}, http.StatusNotFound, "passport_not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.req)
			require.Equal(t, tt.wantStatus, resp.status, "%s %s: %s", tt.req.method, tt.req.path, resp.body)
			assert.Equal(t, tt.wantCode, resp.errorBody(t).Error.Code)
			assert.NotContains(t, string(resp.body), "Finance!", "error echoes input")
		})
	}

	// Revoked is final.
	revoke := strings.Replace(strings.Replace(passportJSON, `"version":0`, `"version":1`, 1), `"active"`, `"revoked"`, 1)
	require.Equal(t, http.StatusOK, ts.do(request{method: "PUT", path: path, token: "admin", body: revoke}).status)
	resp := ts.do(request{method: "POST", path: "/v1/passports/bot/resume?tenant_id=" + ownTenant, token: "admin"})
	require.Equal(t, http.StatusConflict, resp.status, "%s", resp.body)
}

func TestPassportRoutesNotConfigured(t *testing.T) {
	ts := newTestServer(t, options{})
	resp := ts.do(request{method: "GET", path: "/v1/passports/bot?tenant_id=" + ownTenant, token: "admin"})
	assert.Equal(t, http.StatusNotImplemented, resp.status, "%s", resp.body)
}
