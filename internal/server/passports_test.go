package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPassportKillSwitchSurvivesRestart suspends an agent through the API
// of a SQLite oarsd, restarts it, and checks the agent stays stopped.
func TestPassportKillSwitchSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	srv := start(t, devConfig(t, dir))
	base := srv.url + "/v1/passports/support-bot?tenant_id=acme"
	code, body := call(t, "PUT", base, "dev_admin_token", map[string]any{
		"owner_id": "org_acme", "status": "active", "assurance_level": "L2",
		"capabilities": []any{map[string]any{"id": "finance.payment.refund"}},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	assert.Equal(t, "allowed", submit(t, srv.url, 50).Status)

	code, body = call(t, "POST", srv.url+"/v1/passports/support-bot/suspend?tenant_id=acme", "dev_admin_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, "denied", submit(t, srv.url, 51).Status, "action after suspension")
	code, body = call(t, "GET", base, "dev_operator_token", nil)
	assert.Equal(t, http.StatusForbidden, code, "operator reads a passport: %s", body)

	srv.stop()
	srv = start(t, devConfig(t, dir))
	assert.Equal(t, "denied", submit(t, srv.url, 52).Status, "action after restart")
	code, body = call(t, "POST", srv.url+"/v1/passports/support-bot/resume?tenant_id=acme", "dev_admin_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, "allowed", submit(t, srv.url, 53).Status, "action after resumption")
}

// TestDailyCapInOarsd meters a capability's daily cap in the server's
// SQLite store: the cap is reached and never exceeded.
func TestDailyCapInOarsd(t *testing.T) {
	srv := start(t, devConfig(t, t.TempDir()))
	code, body := call(t, "PUT", srv.url+"/v1/passports/support-bot?tenant_id=acme", "dev_admin_token", map[string]any{
		"owner_id": "org_acme", "status": "active", "assurance_level": "L2",
		"capabilities": []any{map[string]any{"id": "payments.refund", "limits": map[string]any{"daily_cap": 100, "max_per_action": 60}}},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	assert.Equal(t, "allowed", submit(t, srv.url, 50).Status)
	assert.Equal(t, "denied", submit(t, srv.url, 61).Status, "over max_per_action")
	assert.Equal(t, "allowed", submit(t, srv.url, 50).Status, "reaches the cap exactly")
	out := submit(t, srv.url, 1)
	assert.Equal(t, "denied", out.Status, "over the daily cap")
	assert.Contains(t, string(out.Receipts[0]), "oap.limit_exceeded")
}
