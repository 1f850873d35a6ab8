package identity_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

// testCA is a certificate authority for client certificates.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

var serial atomic.Int64

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testCA{cert: cert, key: key}
}

// issue returns a client certificate for subject with URI SANs uris.
func (ca *testCA) issue(t *testing.T, subject pkix.Name, uris ...string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      subject,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	for _, u := range uris {
		parsed, err := url.Parse(u)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, parsed)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func testCertIdentities() []identity.CertIdentity {
	return []identity.CertIdentity{
		{SPIFFEID: "spiffe://example.org/ns/payments/sa/billing", Name: "billing", Roles: []identity.Role{identity.RoleOperator}, Tenants: []string{"acme"}},
		{Subject: "CN=reporter,OU=analytics,O=Acme", Name: "reporter", Roles: []identity.Role{identity.RoleAuditor}, Tenants: []string{"*"}},
		{SPIFFEID: "spiffe://example.org/agents/bot-1", Name: "bot-1", Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{"acme"}, AgentID: "bot-1", Kind: identity.KindAgent},
	}
}

func TestCertAuthenticatorTLS(t *testing.T) {
	trusted := newTestCA(t, "trusted client CA")
	untrusted := newTestCA(t, "untrusted CA")
	auth, err := identity.NewCertAuthenticator(testCertIdentities())
	require.NoError(t, err)

	var handled atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled.Add(1)
		p, err := auth.Authenticate(r.Context(), r)
		switch {
		case errors.Is(err, identity.ErrNoCredentials):
			http.Error(w, "no credentials", http.StatusUnauthorized)
		case errors.Is(err, identity.ErrInvalidCredentials):
			http.Error(w, "invalid credentials", http.StatusUnauthorized)
		case err != nil:
			http.Error(w, "error", http.StatusInternalServerError)
		default:
			_, _ = io.WriteString(w, string(p.Kind)+" "+p.Subject+" "+strings.Join(p.Tenants, ","))
		}
	}))
	pool := x509.NewCertPool()
	pool.AddCert(trusted.cert)
	srv.TLS = &tls.Config{ClientCAs: pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	t.Cleanup(srv.Close)

	client := func(cert *tls.Certificate) *http.Client {
		tr := srv.Client().Transport.(*http.Transport).Clone()
		if cert != nil {
			// Send the certificate even if its CA is not one the
			// server asks for.
			tr.TLSClientConfig.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				return cert, nil
			}
		}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	cert := func(c tls.Certificate) *tls.Certificate { return &c }

	tests := []struct {
		name       string
		cert       *tls.Certificate
		wantStatus int // 0: the TLS handshake fails
		wantBody   string
	}{
		{"spiffe id", cert(trusted.issue(t, pkix.Name{CommonName: "billing"}, "spiffe://example.org/ns/payments/sa/billing")), 200, "service billing acme"},
		{"agent spiffe id", cert(trusted.issue(t, pkix.Name{}, "spiffe://example.org/agents/bot-1")), 200, "agent bot-1 acme"},
		{"subject", cert(trusted.issue(t, pkix.Name{CommonName: "reporter", OrganizationalUnit: []string{"analytics"}, Organization: []string{"Acme"}})), 200, "service reporter *"},
		{"unknown spiffe id", cert(trusted.issue(t, pkix.Name{CommonName: "billing"}, "spiffe://example.org/ns/payments/sa/other")), 401, "invalid credentials"},
		{"unknown subject", cert(trusted.issue(t, pkix.Name{CommonName: "reporter"})), 401, "invalid credentials"},
		{"two spiffe ids", cert(trusted.issue(t, pkix.Name{}, "spiffe://example.org/agents/bot-1", "spiffe://example.org/ns/payments/sa/billing")), 401, "invalid credentials"},
		{"no certificate", nil, 401, "no credentials"},
		{"untrusted CA", cert(untrusted.issue(t, pkix.Name{CommonName: "billing"}, "spiffe://example.org/ns/payments/sa/billing")), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := handled.Load()
			resp, err := client(tt.cert).Get(srv.URL)
			if tt.wantStatus == 0 {
				if err == nil {
					resp.Body.Close()
				}
				require.Error(t, err, "Get() with a certificate of an untrusted CA succeeded")
				assert.ErrorContains(t, err, "tls: unknown certificate authority")
				assert.Equal(t, before, handled.Load(), "the handler ran")
				return
			}
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			assert.Equal(t, tt.wantBody, strings.TrimSpace(string(body)))
		})
	}
}

func TestCertAuthenticatorUnverified(t *testing.T) {
	ca := newTestCA(t, "ca")
	auth, err := identity.NewCertAuthenticator(testCertIdentities())
	require.NoError(t, err)
	leaf := ca.issue(t, pkix.Name{}, "spiffe://example.org/ns/payments/sa/billing").Leaf

	tests := []struct {
		name    string
		state   *tls.ConnectionState
		wantErr error
	}{
		{"plain http", nil, identity.ErrNoCredentials},
		{"tls without certificate", &tls.ConnectionState{}, identity.ErrNoCredentials},
		{"peer certificate without verified chain", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}, identity.ErrInvalidCredentials},
		{"verified", &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}, VerifiedChains: [][]*x509.Certificate{{leaf, ca.cert}}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.TLS = tt.state
			p, err := auth.Authenticate(context.Background(), r)
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "billing", p.Subject)
		})
	}
}

func TestNewCertAuthenticatorValidation(t *testing.T) {
	mod := func(f func(*identity.CertIdentity)) []identity.CertIdentity {
		ids := testCertIdentities()
		f(&ids[0])
		return ids
	}
	tests := []struct {
		name    string
		ids     []identity.CertIdentity
		wantErr string
	}{
		{"valid", testCertIdentities(), ""},
		{"none", nil, ""},
		{"user kind", mod(func(c *identity.CertIdentity) { c.Kind = identity.KindUser }), ""},
		{"trust domain only", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://example.org" }), ""},
		{"neither", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "" }), "exactly one"},
		{"both", mod(func(c *identity.CertIdentity) { c.Subject = "CN=x" }), "exactly one"},
		{"not spiffe", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "https://example.org/x" }), `"spiffe://"`},
		{"uppercase trust domain", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://Example.org/x" }), "trust domain"},
		{"empty trust domain", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe:///x" }), "no trust domain"},
		{"dot segment", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://example.org/a/../b" }), "segment"},
		{"trailing slash", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://example.org/a/" }), "segment"},
		{"query", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://example.org/a?b" }), "path must be"},
		{"repeated spiffe id", mod(func(c *identity.CertIdentity) { c.SPIFFEID = "spiffe://example.org/agents/bot-1" }), "spiffe_id repeated"},
		{"repeated name", mod(func(c *identity.CertIdentity) { c.Name = "reporter" }), "duplicate name"},
		{"bad name", mod(func(c *identity.CertIdentity) { c.Name = "a b" }), "name must be"},
		{"no roles", mod(func(c *identity.CertIdentity) { c.Roles = nil }), "roles"},
		{"no tenants", mod(func(c *identity.CertIdentity) { c.Tenants = nil }), "tenants"},
		{"agent without role", mod(func(c *identity.CertIdentity) { c.AgentID = "x" }), "needs role"},
		{"bad kind", mod(func(c *identity.CertIdentity) { c.Kind = "robot" }), "kind"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := identity.NewCertAuthenticator(tt.ids)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, a)
				return
			}
			require.Error(t, err, "NewCertAuthenticator(%s) = nil error, want %q", tt.name, tt.wantErr)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}
