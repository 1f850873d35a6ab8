package httpconn_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/egress"
	"github.com/oarsdev/oars/connector/httpconn"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/receipt"
)

// TestSSRFRefused: the attempts an agent (or a compromised upstream)
// could make to reach internal addresses through a connector are refused
// before any connection, with class egress_refused.
func TestSSRFRefused(t *testing.T) {
	// An internal service on 127.0.0.2, which no tool is allowed to reach.
	internalHits := 0
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	require.NoError(t, err)
	internal := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		internalHits++
		_, _ = w.Write([]byte(`{"secret":"internal"}`))
	}))
	internal.Listener = ln
	internal.Start()
	defer internal.Close()
	// An allowed upstream on 127.0.0.1 that redirects within its own
	// origin, to a host name that resolves to the internal service.
	resolver := egress.ResolverFunc(func(_ context.Context, _, host string) ([]netip.Addr, error) {
		switch host {
		case "metadata.test":
			return []netip.Addr{netip.MustParseAddr("169.254.169.254")}, nil
		case "intranet.test":
			return []netip.Addr{netip.MustParseAddr("10.1.2.3")}, nil
		case "rebind.test":
			return []netip.Addr{netip.MustParseAddr("127.0.0.2")}, nil
		}
		return nil, fmt.Errorf("no such host %q", host)
	})
	tests := []struct {
		name, baseURL string
	}{
		{"private address", "http://10.0.0.8/api"},
		{"metadata address", "http://169.254.169.254/latest/meta-data"},
		{"name resolving to metadata", "http://metadata.test/latest"},
		{"name resolving to a private address", "http://intranet.test/"},
		{"name resolving to loopback outside the allowance", "http://rebind.test:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) + "/"},
		{"IPv4-mapped loopback", "http://[::ffff:127.0.0.2]:" + fmt.Sprint(ln.Addr().(*net.TCPAddr).Port) + "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "tools:\n  - id: t\n    base_url: " + tt.baseURL + "\n    operations: {get: {method: GET, path: /}}\n"
			cfg, err := httpconn.Parse([]byte(doc), "ssrf.yaml")
			require.NoError(t, err)
			tc := cfg.Tools[0]
			tc.AllowPrivate = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
			c, err := httpconn.New(tc, vault.Map{}, httpconn.WithResolver(resolver))
			require.NoError(t, err)
			_, err = execute(t, c, "get", `{}`)
			require.ErrorIs(t, err, egress.ErrRefused)
			assert.Equal(t, "egress_refused", classOf(t, err).Class)
			assert.False(t, classOf(t, err).Retryable)
		})
	}

	// A redirect from the allowed upstream to the internal service is
	// not followed (another origin) and reaches nothing.
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, internal.URL+"/admin", http.StatusFound)
	}))
	defer redirector.Close()
	doc := "tools:\n  - id: t\n    base_url: " + redirector.URL + "\n    operations: {get: {method: GET, path: /}}\n"
	cfg, err := httpconn.Parse([]byte(doc), "ssrf.yaml")
	require.NoError(t, err)
	tc := cfg.Tools[0]
	tc.AllowPrivate = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	c, err := httpconn.New(tc, vault.Map{})
	require.NoError(t, err)
	_, err = execute(t, c, "get", `{}`)
	require.Error(t, err)
	assert.Equal(t, http.StatusFound, classOf(t, err).UpstreamStatus)
	assert.Zero(t, internalHits, "the internal service was reached")
}

// TestRecordOutput: only an operation with record_output puts the whole
// response in the summary; a response too big for a receipt falls back
// to the summary pointers.
func TestRecordOutput(t *testing.T) {
	big := `{"id":1,"pad":"` + strings.Repeat("x", receipt.MaxSummaryBytes) + `"}`
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/big" {
			_, _ = w.Write([]byte(big))
			return
		}
		_, _ = w.Write([]byte(`{"id":1,"name":"n"}`))
	})
	tc := parseTool(t, `
tools:
  - id: t
    base_url: BASE
    operations:
      plain: {method: GET, path: /small, summary: {id: /id}}
      recorded: {method: GET, path: /small, summary: {id: /id}, record_output: true}
      recorded_big: {method: GET, path: /big, summary: {id: /id}, record_output: true}
`, up.URL)
	c, err := httpconn.New(tc, vault.Map{})
	require.NoError(t, err)
	for op, want := range map[string]string{"plain": `{"id":1}`, "recorded": `{"id":1,"name":"n"}`, "recorded_big": `{"id":1}`} {
		res, err := execute(t, c, op, `{}`)
		require.NoError(t, err, op)
		assert.JSONEq(t, want, string(res.Summary), op)
	}
}
