package httpconn_test

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/httpconn"
)

func TestParseDefaults(t *testing.T) {
	cfg, err := httpconn.Parse([]byte(`
tools:
  - id: t
    base_url: https://t.example/api
    operations:
      get: {method: GET, path: /x}
      head: {method: HEAD, path: /x}
      put: {method: PUT, path: /x}
      delete: {method: DELETE, path: /x}
      post: {method: POST, path: /x}
      patch: {method: PATCH, path: /x}
      post_idem: {method: POST, path: /x, idempotent: true}
      get_not: {method: GET, path: /x, idempotent: false}
  - id: u
    base_url: http://127.0.0.1:8080
    allow_private: [127.0.0.1/32, "::1", 10.0.0.0/8]
    auth: {type: hmac, secret: u/key}
    retry: {max_attempts: 5}
    operations:
      get: {method: GET, path: /}
`), "tools.yaml")
	require.NoError(t, err)
	require.Len(t, cfg.Tools, 2)

	tt := cfg.Tools[0]
	assert.Equal(t, "t", tt.ID)
	assert.Equal(t, httpconn.DefaultTimeout, tt.Timeout)
	assert.EqualValues(t, httpconn.DefaultMaxResponseBytes, tt.MaxResponseBytes)
	assert.Equal(t, httpconn.DefaultIdempotencyHeader, tt.IdempotencyHeader)
	assert.Equal(t, httpconn.Retry{}, tt.Retry, "no retry block: one attempt")
	assert.Equal(t, httpconn.AuthNone, tt.Auth.Type)
	idem := map[string]bool{}
	for _, op := range tt.Operations {
		idem[op.Name] = op.Idempotent
	}
	assert.Equal(t, map[string]bool{
		"get": true, "head": true, "put": true, "delete": true,
		"post": false, "patch": false, "post_idem": true, "get_not": false,
	}, idem)
	assert.Equal(t, "get", tt.Operations[0].Name, "operations keep file order")

	u := cfg.Tools[1]
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128"), netip.MustParsePrefix("10.0.0.0/8"),
	}, u.AllowPrivate)
	assert.Equal(t, httpconn.Auth{Type: httpconn.AuthHMAC, Secret: "u/key", Header: httpconn.DefaultSignatureHeader}, u.Auth)
	assert.Equal(t, httpconn.Retry{MaxAttempts: 5, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 2 * time.Second}, u.Retry)
}

func TestParseErrors(t *testing.T) {
	const head = "tools:\n  - id: t\n    base_url: https://t.example\n"
	const ops = "    operations:\n      get: {method: GET, path: /}\n"
	tests := []struct {
		name string
		doc  string
		line int
		want string
	}{
		{"empty", "", 0, "empty document"},
		{"two documents", "tools: []\n---\ntools: []\n", 0, "multiple YAML documents"},
		{"not yaml", "tools: [", 0, "yaml"},
		{"missing tools", "other: 1\n", 1, `unknown key "other"`},
		{"no tools", "tools: []\n", 1, "at least one tool"},
		{"unknown top-level key", "tools: []\nextra: 1\n", 2, `unknown key "extra"`},
		{"unknown tool key", head + "    bogus: 1\n" + ops, 4, `tool "t": unknown key "bogus"`},
		{"unknown operation key", head + "    operations:\n      get: {method: GET, path: /, verb: GET}\n", 5, `operations.get: unknown key "verb"`},
		{"unknown auth key", head + "    auth: {type: bearer, secret: s, token: x}\n" + ops, 4, `auth: unknown key "token"`},
		{"unknown retry key", head + "    retry: {attempts: 2}\n" + ops, 4, `retry: unknown key "attempts"`},
		{"duplicate key", head + "    timeout: 1s\n    timeout: 2s\n" + ops, 5, "timeout: duplicate key (first at line 4)"},
		{"duplicate tool", head + ops + "  - id: t\n    base_url: https://u.example\n" + ops, 6, `tool "t": id: duplicate tool id`},
		{"alias", "tools:\n  - &a {id: t, base_url: https://t.example, operations: {get: {method: GET, path: /}}}\n  - *a\n", 3, "must be a mapping, got alias"},
		{"missing id", "tools:\n  - base_url: https://t.example\n" + ops, 2, `tool "tools[0]": id: required key is missing`},
		{"missing base_url", "tools:\n  - id: t\n" + ops, 2, "base_url: required key is missing"},
		{"missing operations", head, 2, "operations: required key is missing"},
		{"no operations", head + "    operations: {}\n", 4, "at least one operation"},
		{"bad url scheme", "tools:\n  - id: t\n    base_url: ftp://t.example\n" + ops, 3, "base_url: must be an absolute http or https URL"},
		{"relative url", "tools:\n  - id: t\n    base_url: /api\n" + ops, 3, "base_url: must be an absolute http or https URL"},
		{"url with userinfo", "tools:\n  - id: t\n    base_url: https://u:p@t.example\n" + ops, 3, "base_url: must not hold user info"},
		{"url with query", "tools:\n  - id: t\n    base_url: https://t.example/?k=v\n" + ops, 3, "base_url: must not hold a query"},
		{"url not a string", "tools:\n  - id: t\n    base_url: 12\n" + ops, 3, "base_url: must be a string, got integer (quote it)"},
		{"bad duration", head + "    timeout: 10\n" + ops, 4, "timeout: must be a string, got integer"},
		{"bad duration text", head + "    timeout: ten seconds\n" + ops, 4, "timeout: must be a positive duration"},
		{"negative duration", head + "    timeout: -1s\n" + ops, 4, "timeout: must be a positive duration"},
		{"huge timeout", head + "    timeout: 24h\n" + ops, 4, "timeout: must be positive and at most"},
		{"bad backoff", head + "    retry: {initial_backoff: 1}\n" + ops, 4, "retry.initial_backoff: must be a string"},
		{"max below initial", head + "    retry: {initial_backoff: 2s, max_backoff: 1s}\n" + ops, 4, "retry.max_backoff: must be at least initial_backoff"},
		{"zero attempts", head + "    retry: {max_attempts: 0}\n" + ops, 4, "retry.max_attempts: must be at least 1"},
		{"too many attempts", head + "    retry: {max_attempts: 11}\n" + ops, 4, "retry.max_attempts: must be between 1 and 10"},
		{"zero max response", head + "    max_response_bytes: 0\n" + ops, 4, "max_response_bytes: must be at least 1"},
		{"bad allow_private", head + "    allow_private: [10.0.0.1/8]\n" + ops, 4, "allow_private[0]: must be an address or a prefix"},
		{"operation without method", head + "    operations:\n      get: {path: /}\n", 5, "operations.get.method: required key is missing"},
		{"operation without path", head + "    operations:\n      get: {method: GET}\n", 5, "operations.get.path: required key is missing"},
		{"bad method", head + "    operations:\n      get:\n        method: get\n        path: /\n", 6, "operations.get.method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE"},
		{"unknown method", head + "    operations:\n      get: {method: TRACE, path: /}\n", 5, "must be one of GET"},
		{"path without slash", head + "    operations:\n      get: {method: GET, path: x}\n", 5, `operations.get.path: must start with "/"`},
		{"path with open brace", head + "    operations:\n      get: {method: GET, path: /{x}", 0, "yaml"},
		{"unclosed placeholder", head + "    operations:\n      get: {method: GET, path: \"/{x\"}\n", 5, `has a "{" without "}"`},
		{"bad placeholder", head + "    operations:\n      get: {method: GET, path: \"/{a b}\"}\n", 5, "placeholder"},
		{"path with query", head + "    operations:\n      get: {method: GET, path: \"/a?b=c\"}\n", 5, "must not hold a query"},
		{"path with space", head + "    operations:\n      get: {method: GET, path: \"/a b\"}\n", 5, "must be escaped"},
		{"body with GET", head + "    operations:\n      get: {method: GET, path: /, body: {a: 1}}\n", 5, "operations.get.body: is not allowed with GET"},
		{"schema not an object", head + "    operations:\n      get: {method: GET, path: /, input_schema: {type: array}}\n", 5, "operations.get.input_schema:"},
		{"bad success", head + "    operations:\n      get: {method: GET, path: /, success: [700]}\n", 5, "success[0]: must be an HTTP status"},
		{"success not a list", head + "    operations:\n      get: {method: GET, path: /, success: 200}\n", 5, "success: must be a list"},
		{"bad pointer", head + "    operations:\n      get: {method: GET, path: /, summary: {id: id}}\n", 5, "summary.id: must be a JSON Pointer"},
		{"bad pointer escape", head + "    operations:\n      get: {method: GET, path: /, summary: {id: /a~2}}\n", 5, "summary.id: must be a JSON Pointer"},
		{"idempotent not bool", head + "    operations:\n      get: {method: GET, path: /, idempotent: yes}\n", 5, "idempotent: must be true or false, got string"},
		{"bad auth type", head + "    auth: {type: oauth, secret: s}\n" + ops, 4, "auth.type: must be bearer, basic, header or hmac"},
		{"auth without type", head + "    auth: {secret: s}\n" + ops, 4, "auth.type: required key is missing"},
		{"auth without secret", head + "    auth: {type: bearer}\n" + ops, 4, "auth.secret: is required"},
		{"basic without username", head + "    auth: {type: basic, secret: s}\n" + ops, 4, "auth.username: must be non-empty"},
		{"username for bearer", head + "    auth: {type: bearer, secret: s, username: u}\n" + ops, 4, "auth.username: is only for basic auth"},
		{"header auth without header", head + "    auth: {type: header, secret: s}\n" + ops, 4, "auth.header: is required for header auth"},
		{"bad header name", head + "    auth: {type: header, secret: s, header: \"X Key\"}\n" + ops, 4, "auth.header: header name"},
		{"static authorization", head + "    headers: {authorization: Bearer abc}\n" + ops, 4, "headers.authorization: may not be a static header"},
		{"static auth header", head + "    auth: {type: header, secret: s, header: X-Key}\n    headers: {x-key: v}\n" + ops, 5, "is set by the connector"},
		{"duplicate header", head + "    headers: {Accept: a, accept: b}\n" + ops, 4, "is given twice"},
		{"header value with newline", head + "    headers: {X-A: \"a\\nb\"}\n" + ops, 4, "control character"},
		{"idempotency header is auth header", head + "    auth: {type: hmac, secret: s}\n    idempotency_header: x-oars-signature\n" + ops, 5, "idempotency_header: is the auth header"},
		{"body not JSON", head + "    operations:\n      p: {method: POST, path: /, body: {a: .nan}}\n", 5, "must be a finite number"},
		{"body huge integer", head + "    operations:\n      p: {method: POST, path: /, body: {a: 18014398509481985}}\n", 5, "out of the exact range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := httpconn.Parse([]byte(tt.doc), "tools.yaml")
			require.Error(t, err)
			assert.Nil(t, cfg)
			var pe *httpconn.ParseError
			require.True(t, errors.As(err, &pe), "error %v is not a *ParseError", err)
			assert.Equal(t, "tools.yaml", pe.File)
			assert.Contains(t, err.Error(), tt.want)
			if tt.line != 0 {
				assert.Equal(t, tt.line, pe.Line, "line of %v", err)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "httpconn: tools.yaml"), "message %q", err)
		})
	}
}

func TestParseSize(t *testing.T) {
	doc := "tools: []\n" + strings.Repeat("#", httpconn.MaxConfigSize)
	_, err := httpconn.Parse([]byte(doc), "big.yaml")
	assert.ErrorContains(t, err, "larger than")
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tools.yaml")
	require.NoError(t, os.WriteFile(path, []byte("tools:\n  - id: t\n    base_url: https://t.example\n    operations: {get: {method: GET, path: /}}\n"), 0o600))
	cfg, err := httpconn.Load(path)
	require.NoError(t, err)
	assert.Equal(t, "t", cfg.Tools[0].ID)

	require.NoError(t, os.WriteFile(path, []byte("tools: {}\n"), 0o600))
	_, err = httpconn.Load(path)
	assert.ErrorContains(t, err, path+":1: tools: must be a list of tools")

	_, err = httpconn.Load(filepath.Join(dir, "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

// FuzzParse checks that Parse never panics and that every tool it accepts
// New accepts too.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		templateTool,
		retryTool,
		"tools:\n  - id: t\n    base_url: https://t.example\n    auth: {type: basic, secret: s, username: u}\n    operations: {get: {method: GET, path: \"/a/{b.c}\", summary: {x: /a~1b}}}\n",
		"tools: [{id: t, base_url: 'http://[::1]:80', allow_private: ['::1'], operations: {p: {method: POST, path: /, body: [1, '{x}', $input]}}}]",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := httpconn.Parse(data, "fuzz.yaml")
		if err != nil {
			return
		}
		for _, tc := range cfg.Tools {
			if _, err := httpconn.New(tc, nil); err != nil && tc.Auth.Type == httpconn.AuthNone {
				t.Fatalf("Parse accepted tool %q but New refused it: %v", tc.ID, err)
			}
		}
	})
}
