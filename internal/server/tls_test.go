package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
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
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key signed by the CA, with the
// URI SANs uris.
func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage, uris ...*url.URL) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		URIs:         uris,
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writePEM(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, data, 0o600))
	return path
}

// TestTLSAndClientCertificates serves over TLS with client certificate
// verification: a certificate from the configured CA is accepted, one from
// another CA is refused during the handshake, and a client without a
// certificate may still authenticate with a token.
func TestTLSAndClientCertificates(t *testing.T) {
	dir := t.TempDir()
	serverCA, clientCA, rogueCA := newCA(t, "server ca"), newCA(t, "client ca"), newCA(t, "rogue ca")
	certPEM, keyPEM := serverCA.issue(t, "oarsd", x509.ExtKeyUsageServerAuth)
	cfg := devConfig(t, filepath.Join(dir, "data"))
	cfg.TLSCert = writePEM(t, dir, "server.pem", certPEM)
	cfg.TLSKey = writePEM(t, dir, "server.key", keyPEM)
	cfg.ClientCA = writePEM(t, dir, "clients.pem", clientCA.pem)
	require.NoError(t, cfg.Validate())
	srv := start(t, cfg)
	url := strings.Replace(srv.url, "http://", "https://", 1)

	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA.pem)
	client := func(ca *testCA) *http.Client {
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if ca != nil {
			c, k := ca.issue(t, "workload", x509.ExtKeyUsageClientAuth)
			pair, err := tls.X509KeyPair(c, k)
			require.NoError(t, err)
			// Always present the certificate, even when its issuer is not
			// among the CAs the server asks for (Go's client would otherwise
			// send none).
			tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
		}
		return &http.Client{Transport: &http.Transport{TLSClientConfig: tc}, Timeout: 10 * time.Second}
	}

	for _, tt := range []struct {
		name   string
		ca     *testCA
		wantOK bool
	}{{"trusted client certificate", clientCA, true}, {"no client certificate", nil, true}, {"untrusted client certificate", rogueCA, false}} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("GET", url+"/v1/policies", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer dev_auditor_token")
			resp, err := client(tt.ca).Do(req)
			if !tt.wantOK {
				require.Error(t, err, "the TLS layer refuses the certificate")
				return
			}
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.NotNil(t, resp.TLS)
		})
	}

	// Plain HTTP on the TLS port is not served.
	resp, err := http.Get(srv.url + "/health")
	if err == nil {
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	}
}
