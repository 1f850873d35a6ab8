package main

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/internal/netutil"
)

func TestParseServerURL(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string // "" for accepted
	}{
		{"https://oars.example.com", ""},
		{"https://oars.example.com:8443/api/", ""},
		{"http://127.0.0.1:8080", ""},
		{"http://127.1.2.3", ""},
		{"http://[::1]:8080", ""},
		{"http://localhost:8080", ""},
		{"http://LOCALHOST.", ""},
		{"http://[::ffff:127.0.0.1]:80", ""},
		{"http://example.com", "plain http is allowed only for loopback hosts"},
		{"http://10.0.0.1", "plain http is allowed only for loopback hosts"},
		{"http://[::2]", "plain http is allowed only for loopback hosts"},
		{"http://localhost.example.com", "plain http is allowed only for loopback hosts"},
		{"http://127.0.0.1.example.com", "plain http is allowed only for loopback hosts"},
		{"ftp://example.com", `unsupported URL scheme "ftp"`},
		{"oars.example.com", `unsupported URL scheme ""`},
		{"https://", "no host"},
		{"https://u:pw@example.com", "must not contain user information"},
		{"https://example.com/?x=1", "must not have a query or fragment"},
		{"https://example.com/#x", "must not have a query or fragment"},
		{"https://exa mple.com", "not a valid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			u, err := parseServerURL("--server", tt.in)
			if tt.wantErr == "" {
				require.NoError(t, err, "parseServerURL(%q)", tt.in)
				assert.Equal(t, tt.in, u.String(), "parseServerURL(%q)", tt.in)
				return
			}
			require.Error(t, err, "parseServerURL(%q)", tt.in)
			assert.Contains(t, err.Error(), tt.wantErr, "parseServerURL(%q) error", tt.in)
			assert.NotContains(t, err.Error(), "pw", "parseServerURL(%q) error shows the password", tt.in)
		})
	}
	_, err := parseServerURL("--server", "http://example.com")
	assert.True(t, errors.Is(err, errInsecureURL), "parseServerURL(remote http) error = %v, want errInsecureURL", err)
}

func TestAPIClientEndpoint(t *testing.T) {
	tests := []struct {
		base, path string
		q          url.Values
		want       string
	}{
		{"https://h", "/v1/receipts", nil, "https://h/v1/receipts"},
		{"https://h/", "/v1/receipts", url.Values{"limit": {"2"}}, "https://h/v1/receipts?limit=2"},
		{"https://h/oars/", "/v1/receipts/" + url.PathEscape("a/b c"), nil, "https://h/oars/v1/receipts/a%2Fb%20c"},
	}
	for _, tt := range tests {
		base, err := url.Parse(tt.base)
		require.NoError(t, err)
		c := &apiClient{base: base}
		assert.Equal(t, tt.want, c.endpoint(tt.path, tt.q), "endpoint(%q, %q) under %s", tt.path, tt.q, tt.base)
	}
}

func TestHTTPStatusError(t *testing.T) {
	tests := []struct {
		status int
		body   string
		want   string
	}{
		{404, `{"error":{"code":"not_found","message":"receipt not found"}}`, "HTTP 404 Not Found: not_found: receipt not found"},
		{502, `<html>bad gateway</html>`, "HTTP 502 Bad Gateway"},
		{400, `{"error":{"message":"bad\u001b[31m"}}`, `HTTP 400 Bad Request: "bad\x1b[31m"`},
		{599, `{}`, "HTTP 599"},
	}
	for _, tt := range tests {
		got := newStatusError(tt.status, []byte(tt.body)).Error()
		assert.Equal(t, tt.want, got, "newStatusError(%d, %q)", tt.status, tt.body)
	}
	long := newStatusError(400, []byte(`{"error":{"message":"`+strings.Repeat("x", 500)+`"}}`)).Error()
	assert.Less(t, len(long), 300, "a long server message is shortened")
}

func TestResolveToken(t *testing.T) {
	t.Setenv(tokenEnv, "env_token")
	got, err := resolveToken("flag_token")
	require.NoError(t, err)
	assert.Equal(t, "flag_token", got, "resolveToken(flag) prefers the flag")
	got, err = resolveToken("")
	require.NoError(t, err)
	assert.Equal(t, "env_token", got, "resolveToken(\"\") uses %s", tokenEnv)
	_, err = resolveToken("two words")
	assert.Error(t, err, "resolveToken(with a space)")
	t.Setenv(tokenEnv, "")
	_, err = resolveToken("")
	assert.ErrorContains(t, err, "an API token is required")
}

// FuzzParseServerURL checks that parseServerURL never panics and accepts
// only https URLs and http URLs of loopback hosts, without credentials.
func FuzzParseServerURL(f *testing.F) {
	for _, s := range []string{
		"https://oars.example.com", "http://127.0.0.1:8080", "http://[::1]", "http://localhost",
		"http://example.com", "https://u:p@h", "ftp://x", "", "://", "http://%31%32%37.0.0.1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := parseServerURL("--server", s)
		if err != nil {
			return
		}
		if u.User != nil || u.Hostname() == "" {
			t.Fatalf("parseServerURL(%q) accepted a URL with user information or no host", s)
		}
		if u.Scheme != "https" && !(u.Scheme == "http" && netutil.IsLoopbackHost(u.Hostname())) {
			t.Fatalf("parseServerURL(%q) accepted scheme %q for host %q", s, u.Scheme, u.Hostname())
		}
	})
}
