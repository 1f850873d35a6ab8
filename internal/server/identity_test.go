package server_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/internal/config"
)

// issueSPIFFE returns a client certificate and key signed by ca whose
// only URI SAN is the SPIFFE ID id.
func (ca *testCA) issueSPIFFE(t *testing.T, id string) tls.Certificate {
	t.Helper()
	u, err := url.Parse(id)
	require.NoError(t, err)
	pair, err := tls.X509KeyPair(ca.issue(t, "workload", x509.ExtKeyUsageClientAuth, u))
	require.NoError(t, err)
	return pair
}

// TestMTLSWorkloadIdentity: a client certificate with a configured SPIFFE
// ID authenticates as its workload identity and acts as its bound agent
// only; an unknown SPIFFE ID from the trusted CA is 401.
func TestMTLSWorkloadIdentity(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA := newCA(t, "server ca"), newCA(t, "client ca")
	certPEM, keyPEM := serverCA.issue(t, "oarsd", x509.ExtKeyUsageServerAuth)
	cfg := devConfig(t, filepath.Join(dir, "data"))
	cfg.TLSCert = writePEM(t, dir, "server.pem", certPEM)
	cfg.TLSKey = writePEM(t, dir, "server.key", keyPEM)
	cfg.ClientCA = writePEM(t, dir, "clients.pem", clientCA.pem)
	cfg.ClientIdentities = []config.ClientIdentity{{
		SPIFFEID: "spiffe://example.org/ns/billing", Name: "billing",
		Roles: []string{"agent"}, Tenants: []string{"acme"}, AgentID: "billing-bot",
	}}
	require.NoError(t, cfg.Validate())
	srv := start(t, cfg)
	base := strings.Replace(srv.url, "http://", "https://", 1)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA.pem)
	client := func(spiffeID string) *http.Client {
		pair := clientCA.issueSPIFFE(t, spiffeID)
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12,
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}
	post := func(c *http.Client, agent string) (int, []byte) {
		t.Helper()
		body, err := json.Marshal(map[string]any{
			"tenant_id": "acme", "agent_id": agent,
			"user_context": map[string]any{"user_id": "alice"},
			"resource":     map[string]any{"tool_id": "payments", "operation": "refund"},
			"input":        map[string]any{"amount": 5, "currency": "EUR"},
		})
		require.NoError(t, err)
		req, err := http.NewRequest("POST", base+"/v1/actions", bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := c.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, data
	}

	billing := client("spiffe://example.org/ns/billing")
	code, body := post(billing, "billing-bot")
	require.Equal(t, http.StatusCreated, code, "%s", body)
	var out actionResponse
	require.NoError(t, json.Unmarshal(body, &out))
	require.NotEmpty(t, out.Receipts)
	var rec struct {
		AgentID string `json:"agent_id"`
	}
	require.NoError(t, json.Unmarshal(out.Receipts[0], &rec))
	assert.Equal(t, "billing-bot", rec.AgentID)

	code, body = post(billing, "support-bot")
	assert.Equal(t, http.StatusForbidden, code, "another agent: %s", body)
	assert.Contains(t, string(body), `"receipt_id"`)

	code, body = post(client("spiffe://example.org/ns/unknown"), "billing-bot")
	assert.Equal(t, http.StatusUnauthorized, code, "unknown SPIFFE ID: %s", body)
}
