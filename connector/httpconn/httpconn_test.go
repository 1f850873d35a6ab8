package httpconn_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/egress"
	"github.com/oarsdev/oars/connector/httpconn"
	"github.com/oarsdev/oars/connector/vault"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}

// seen is what a fake upstream received.
type seen struct {
	Method, Target string
	Header         http.Header
	Body           []byte
}

// upstream is a fake server on 127.0.0.1 that records every request and
// answers with respond.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	requests []seen
}

func newUpstream(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, n int)) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.requests = append(u.requests, seen{r.Method, r.RequestURI, r.Header.Clone(), body})
		n := len(u.requests)
		u.mu.Unlock()
		respond(w, r, n)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) calls() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seen(nil), u.requests...)
}

func reply(status int, body string) func(http.ResponseWriter, *http.Request, int) {
	return func(w http.ResponseWriter, _ *http.Request, _ int) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// parseTool parses one tool from YAML in which BASE stands for baseURL,
// and allows loopback.
func parseTool(t *testing.T, doc, baseURL string) httpconn.ToolConfig {
	t.Helper()
	cfg, err := httpconn.Parse([]byte(strings.ReplaceAll(doc, "BASE", baseURL)), "test.yaml")
	require.NoError(t, err)
	require.Len(t, cfg.Tools, 1)
	tc := cfg.Tools[0]
	tc.AllowPrivate = loopback
	return tc
}

// sleeper records the waits between attempts instead of waiting.
type sleeper struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (s *sleeper) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return ctx.Err()
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func execute(t *testing.T, c *httpconn.Connector, op, input string) (*connector.Result, error) {
	t.Helper()
	return c.Execute(context.Background(), &connector.Request{
		ActionID: "act-1", IdempotencyKey: "idem-1", ToolID: c.ID(), Operation: op, Input: json.RawMessage(input), Attempt: 1,
	})
}

func classOf(t *testing.T, err error) *connector.Error {
	t.Helper()
	var ce *connector.Error
	require.ErrorAs(t, err, &ce)
	return ce
}

const templateTool = `
tools:
  - id: tracker
    base_url: BASE/api/v1/
    operations:
      op:
        method: POST
        path: /projects/{project}/issues/{n}
        query: {label: "{label}", state: open, gone: "{missing}", n: "{n}", flag: "{flag}"}
        body:
          title: "{title}"
          count: "{n}"
          tags: "{tags}"
          nested: {x: "{obj.x}", lit: 7}
          literal: "literal {title} text"
          optional: "{missing}"
          list: ["{title}", 1, true]
      whole:
        method: PUT
        path: /things/{obj.x}
        body: $input
      get:
        method: GET
        path: /items
        query: {q: "{q}"}
`

func TestTemplates(t *testing.T) {
	up := newUpstream(t, reply(200, `{}`))
	c, err := httpconn.New(parseTool(t, templateTool, up.URL), nil)
	require.NoError(t, err)

	tests := []struct {
		name, op, input string
		target          string
		body            string // "" for none
	}{
		{
			name:   "path escaping, typed body, query",
			op:     "op",
			input:  `{"project":"a/b c?","n":42,"label":"bug & feature","flag":true,"title":"Crash <on> start","tags":["x","y"],"obj":{"x":1.5}}`,
			target: "/api/v1/projects/a%2Fb%20c%3F/issues/42?flag=true&label=bug+%26+feature&n=42&state=open",
			body:   `{"count":42,"list":["Crash <on> start",1,true],"literal":"literal {title} text","nested":{"lit":7,"x":1.5},"tags":["x","y"],"title":"Crash <on> start"}`,
		},
		{
			name:   "null query field left out, absent body field left out",
			op:     "op",
			input:  `{"project":"p","n":"7","label":null,"title":"t"}`,
			target: "/api/v1/projects/p/issues/7?n=7&state=open",
			body:   `{"count":"7","list":["t",1,true],"literal":"literal {title} text","nested":{"lit":7},"title":"t"}`,
		},
		{
			name:   "whole input",
			op:     "whole",
			input:  `{"obj":{"x":"é"},"big":12345678901234567890}`,
			target: "/api/v1/things/%C3%A9",
			body:   `{"big":12345678901234567890,"obj":{"x":"é"}}`,
		},
		{
			name:   "get without body",
			op:     "get",
			input:  `{"q":"a b"}`,
			target: "/api/v1/items?q=a+b",
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := execute(t, c, tt.op, tt.input)
			require.NoError(t, err)
			assert.Equal(t, 200, res.UpstreamStatus)
			calls := up.calls()
			require.Len(t, calls, i+1)
			got := calls[i]
			assert.Equal(t, tt.target, got.Target)
			assert.Equal(t, "idem-1", got.Header.Get("Idempotency-Key"))
			if tt.body == "" {
				assert.Empty(t, got.Body)
				assert.Empty(t, got.Header.Get("Content-Type"))
				return
			}
			assert.JSONEq(t, tt.body, string(got.Body))
			assert.Equal(t, "application/json", got.Header.Get("Content-Type"))
		})
	}
}

func TestInvalidInput(t *testing.T) {
	up := newUpstream(t, reply(200, `{}`))
	c, err := httpconn.New(parseTool(t, templateTool+`
      arr:
        method: POST
        path: /a
        body: ["{missing}"]
      top:
        method: POST
        path: /a
        body: "{missing}"
`, up.URL), nil)
	require.NoError(t, err)
	tests := []struct{ name, op, input string }{
		{"missing path field", "op", `{"n":1}`},
		{"boolean path field", "op", `{"project":true,"n":1}`},
		{"object path field", "op", `{"project":{},"n":1}`},
		{"empty path field", "op", `{"project":"","n":1}`},
		{"dot-dot path field", "op", `{"project":"..","n":1}`},
		{"array query field", "op", `{"project":"p","n":1,"label":["a"]}`},
		{"missing array element", "arr", `{}`},
		{"missing whole body", "top", `{}`},
		{"input not an object", "op", `[1]`},
		{"input not JSON", "op", `{`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := execute(t, c, tt.op, tt.input)
			ce := classOf(t, err)
			assert.Equal(t, "invalid_input", ce.Class)
			assert.False(t, ce.Retryable)
			assert.ErrorIs(t, err, connector.ErrInvalidInput)
		})
	}
	assert.Empty(t, up.calls(), "no request may be sent for invalid input")

	_, err = execute(t, c, "nope", `{}`)
	assert.ErrorIs(t, err, connector.ErrUnknownOperation)
}

func TestAuth(t *testing.T) {
	secrets := vault.Map{"key": []byte("s3cret-value")}
	tests := []struct {
		name  string
		auth  string
		check func(t *testing.T, s seen)
	}{
		{"none", ``, func(t *testing.T, s seen) {
			assert.Empty(t, s.Header.Get("Authorization"))
		}},
		{"bearer", `{type: bearer, secret: key}`, func(t *testing.T, s seen) {
			assert.Equal(t, "Bearer s3cret-value", s.Header.Get("Authorization"))
		}},
		{"basic", `{type: basic, secret: key, username: bot}`, func(t *testing.T, s seen) {
			r := &http.Request{Header: s.Header}
			user, pass, ok := r.BasicAuth()
			assert.True(t, ok)
			assert.Equal(t, "bot", user)
			assert.Equal(t, "s3cret-value", pass)
		}},
		{"header", `{type: header, secret: key, header: x-api-key}`, func(t *testing.T, s seen) {
			assert.Equal(t, "s3cret-value", s.Header.Get("X-Api-Key"))
			assert.Empty(t, s.Header.Get("Authorization"))
		}},
		{"hmac", `{type: hmac, secret: key}`, func(t *testing.T, s seen) {
			v := s.Header.Get("X-OARS-Signature")
			ts, _, ok := strings.Cut(strings.TrimPrefix(v, "t="), ",")
			require.True(t, ok, "signature header %q", v)
			sec, err := strconv.ParseInt(ts, 10, 64)
			require.NoError(t, err)
			assert.InDelta(t, time.Now().Unix(), sec, 300)
			want := httpconn.Sign([]byte("s3cret-value"), time.Unix(sec, 0), s.Method, s.Target, s.Body)
			assert.True(t, hmac.Equal([]byte(want), []byte(v)), "signature %q, want %q", v, want)
			assert.Contains(t, s.Target, "?q=a%2Fb", "the signed target includes the query")
		}},
		{"hmac custom header", `{type: hmac, secret: key, header: X-Sig}`, func(t *testing.T, s seen) {
			assert.NotEmpty(t, s.Header.Get("X-Sig"))
			assert.Empty(t, s.Header.Get("X-OARS-Signature"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, reply(201, `{"id":1}`))
			authLine := ""
			if tt.auth != "" {
				authLine = "    auth: " + tt.auth + "\n"
			}
			doc := `
tools:
  - id: tool
    base_url: BASE
` + authLine + `    operations:
      create:
        method: POST
        path: /p/{p}
        query: {q: "{q}"}
        body: {a: "{a}"}
`
			c, err := httpconn.New(parseTool(t, doc, up.URL), secrets)
			require.NoError(t, err)
			_, err = execute(t, c, "create", `{"p":"x y","q":"a/b","a":[1,2]}`)
			require.NoError(t, err)
			calls := up.calls()
			require.Len(t, calls, 1)
			tt.check(t, calls[0])
		})
	}
}

func TestIdempotencyHeader(t *testing.T) {
	up := newUpstream(t, reply(200, `{}`))
	tests := []struct {
		name, line, header, want string
	}{
		{"default", "", "Idempotency-Key", "idem-1"},
		{"custom", "    idempotency_header: X-Request-Id\n", "X-Request-Id", "idem-1"},
		{"disabled", "    idempotency_header: \"\"\n", "Idempotency-Key", ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := httpconn.New(parseTool(t, "tools:\n  - id: t\n    base_url: BASE\n"+tt.line+"    operations: {get: {method: GET, path: /}}\n", up.URL), nil)
			require.NoError(t, err)
			_, err = execute(t, c, "get", `{}`)
			require.NoError(t, err)
			assert.Equal(t, tt.want, up.calls()[i].Header.Get(tt.header))
		})
	}
}

func TestResults(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		wantOutput  string // "" for nil
		wantSummary string // "" for nil
		wantClass   string
	}{
		{
			name: "json with summary", status: 201, contentType: "application/json",
			body:        `{"id":17,"html_url":"https://t/17","a/b":{"c~d":[true]},"extra":"x"}`,
			wantOutput:  `{"id":17,"html_url":"https://t/17","a/b":{"c~d":[true]},"extra":"x"}`,
			wantSummary: `{"flag":true,"issue_id":17,"url":"https://t/17"}`,
		},
		{
			name: "json without summary fields", status: 201, contentType: "application/json",
			body: `[1,2]`, wantOutput: `[1,2]`,
		},
		{
			name: "not json", status: 201, contentType: "text/plain",
			body:       "created <ok>",
			wantOutput: `{"body_base64":"Y3JlYXRlZCA8b2s+","content_type":"text/plain"}`,
		},
		{
			name: "duplicate keys are not strict json", status: 201, contentType: "application/json",
			body:       `{"id":1,"id":2}`,
			wantOutput: `{"body_base64":"eyJpZCI6MSwiaWQiOjJ9","content_type":"application/json"}`,
		},
		{name: "empty", status: 201},
		{name: "2xx outside success list", status: 200, body: `{}`, wantClass: "upstream_status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, func(w http.ResponseWriter, _ *http.Request, _ int) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			c, err := httpconn.New(parseTool(t, `
tools:
  - id: t
    base_url: BASE
    operations:
      create:
        method: POST
        path: /
        success: [201]
        summary: {issue_id: /id, url: /html_url, flag: /a~1b/c~0d/0, missing: /nope, bad_index: /a~1b/c~0d/01}
`, up.URL), nil)
			require.NoError(t, err)
			res, err := execute(t, c, "create", `{}`)
			if tt.wantClass != "" {
				ce := classOf(t, err)
				assert.Equal(t, tt.wantClass, ce.Class)
				assert.Equal(t, tt.status, ce.UpstreamStatus)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.status, res.UpstreamStatus)
			if tt.wantOutput == "" {
				assert.Nil(t, res.Output)
			} else {
				assert.JSONEq(t, tt.wantOutput, string(res.Output))
			}
			if tt.wantSummary == "" {
				assert.Nil(t, res.Summary)
			} else {
				assert.JSONEq(t, tt.wantSummary, string(res.Summary))
			}
		})
	}
}

const retryTool = `
tools:
  - id: t
    base_url: BASE
    retry: {max_attempts: 3, initial_backoff: 100ms, max_backoff: 1s}
    operations:
      put: {method: PUT, path: /x}
      post: {method: POST, path: /x}
      patch: {method: PATCH, path: /x, idempotent: true}
`

func TestRetries(t *testing.T) {
	tests := []struct {
		name      string
		op        string
		respond   func(w http.ResponseWriter, r *http.Request, n int)
		wantCalls int
		wantWaits []time.Duration
		wantClass string // "" for success
		retryable bool
		status    int
	}{
		{
			name: "4xx is not retried", op: "put", respond: reply(404, `{}`),
			wantCalls: 1, wantClass: "upstream_4xx", status: 404,
		},
		{
			name: "5xx retried for an idempotent operation", op: "put", respond: reply(502, `{}`),
			wantCalls: 3, wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			wantClass: "upstream_5xx", retryable: true, status: 502,
		},
		{
			name: "5xx not retried for POST", op: "post", respond: reply(500, `{}`),
			wantCalls: 1, wantClass: "upstream_5xx", retryable: true, status: 500,
		},
		{
			name: "PATCH marked idempotent is retried", op: "patch", respond: reply(503, `{}`),
			wantCalls: 3, wantWaits: []time.Duration{100 * time.Millisecond, 200 * time.Millisecond},
			wantClass: "upstream_5xx", retryable: true, status: 503,
		},
		{
			name: "retry then success", op: "put",
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.WriteHeader(503)
					return
				}
				reply(200, `{"ok":true}`)(w, r, n)
			},
			wantCalls: 2, wantWaits: []time.Duration{100 * time.Millisecond}, status: 200,
		},
		{
			name: "Retry-After seconds", op: "put",
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Retry-After", []string{"0", "1", "30"}[n-1])
				w.WriteHeader(429)
			},
			// 0s as given, 1s as given, (no third wait); 30s would be capped.
			wantCalls: 3, wantWaits: []time.Duration{0, time.Second},
			wantClass: "upstream_429", retryable: true, status: 429,
		},
		{
			name: "Retry-After capped at max_backoff", op: "put",
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(503)
			},
			wantCalls: 3, wantWaits: []time.Duration{time.Second, time.Second},
			wantClass: "upstream_5xx", retryable: true, status: 503,
		},
		{
			name: "redirect to another origin is not followed", op: "put",
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				http.Redirect(w, r, "http://localhost:1/elsewhere", http.StatusFound)
			},
			wantCalls: 1, wantClass: "upstream_status", status: 302,
		},
		{
			name: "redirect within the origin is followed", op: "put",
			respond: func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					http.Redirect(w, r, "/moved", http.StatusTemporaryRedirect)
					return
				}
				reply(200, `{}`)(w, r, n)
			},
			wantCalls: 2, status: 200,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t, tt.respond)
			var s sleeper
			c, err := httpconn.New(parseTool(t, retryTool, up.URL), nil, httpconn.WithSleep(s.sleep))
			require.NoError(t, err)
			res, err := execute(t, c, tt.op, `{}`)
			assert.Len(t, up.calls(), tt.wantCalls)
			assert.Equal(t, tt.wantWaits, s.got())
			if tt.wantClass == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.status, res.UpstreamStatus)
				return
			}
			ce := classOf(t, err)
			assert.Equal(t, tt.wantClass, ce.Class)
			assert.Equal(t, tt.retryable, ce.Retryable)
			assert.Equal(t, tt.status, ce.UpstreamStatus)
			assert.Equal(t, tt.status, connector.UpstreamStatusOf(err))
			for _, c := range up.calls() {
				assert.Equal(t, "idem-1", c.Header.Get("Idempotency-Key"), "every attempt carries the same key")
			}
		})
	}
}

func TestRetryStopsWhenContextEnds(t *testing.T) {
	up := newUpstream(t, reply(503, `{}`))
	ctx, cancel := context.WithCancel(context.Background())
	sleep := func(ctx context.Context, d time.Duration) error {
		cancel()
		return ctx.Err()
	}
	c, err := httpconn.New(parseTool(t, retryTool, up.URL), nil, httpconn.WithSleep(sleep))
	require.NoError(t, err)
	_, err = c.Execute(ctx, &connector.Request{Operation: "put", Input: json.RawMessage(`{}`)})
	assert.Equal(t, "upstream_5xx", classOf(t, err).Class)
	assert.Len(t, up.calls(), 1)
}

func TestTransportFailures(t *testing.T) {
	secrets := vault.Map{"key": []byte("tok")}
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	block := make(chan struct{})
	t.Cleanup(func() { close(block) })
	slow := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		select {
		case <-r.Context().Done():
		case <-block:
		}
	})
	big := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.URL.Query().Get("stream") != "" {
			w.WriteHeader(200)
			io.WriteString(w, "12345")
			w.(http.Flusher).Flush()
			io.WriteString(w, "678901")
			return
		}
		io.WriteString(w, r.URL.Query().Get("body"))
	})
	fine := newUpstream(t, reply(200, `{}`))

	tests := []struct {
		name      string
		url       string
		allow     []netip.Prefix
		auth      string
		input     string
		wantClass string
		retryable bool
		wantIs    error
		calls     func() int
	}{
		{name: "timeout", url: slow.URL, allow: loopback, wantClass: "timeout", retryable: true, wantIs: context.DeadlineExceeded},
		{name: "connection refused", url: closedURL, allow: loopback, wantClass: "connect", retryable: true},
		{name: "response too large", url: big.URL, allow: loopback, input: `{"body":"abcdefghijk"}`, wantClass: "response_too_large"},
		{name: "response too large, streamed", url: big.URL, allow: loopback, input: `{"stream":"1"}`, wantClass: "response_too_large"},
		{name: "response at the limit", url: big.URL, allow: loopback, input: `{"body":"abcdefghij"}`},
		{
			name: "loopback without allow_private", url: fine.URL, wantClass: "egress_refused", wantIs: egress.ErrRefused,
			calls: func() int { return len(fine.calls()) },
		},
		{
			name: "missing secret", url: fine.URL, allow: loopback, auth: "{type: bearer, secret: nope}",
			wantClass: "secret_unavailable", wantIs: vault.ErrNotFound,
			calls: func() int { return len(fine.calls()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := "tools:\n  - id: t\n    base_url: BASE\n    timeout: 100ms\n    max_response_bytes: 10\n    retry: {max_attempts: 2}\n"
			if tt.auth != "" {
				doc += "    auth: " + tt.auth + "\n"
			}
			doc += "    operations: {get: {method: GET, path: /, query: {body: \"{body}\", stream: \"{stream}\"}}}\n"
			tc := parseTool(t, doc, tt.url)
			tc.AllowPrivate = tt.allow
			var s sleeper
			c, err := httpconn.New(tc, secrets, httpconn.WithSleep(s.sleep))
			require.NoError(t, err)
			input := tt.input
			if input == "" {
				input = `{}`
			}
			res, err := execute(t, c, "get", input)
			if tt.wantClass == "" {
				require.NoError(t, err)
				assert.Equal(t, "abcdefghij", gotBody(t, res.Output))
				return
			}
			ce := classOf(t, err)
			assert.Equal(t, tt.wantClass, ce.Class)
			assert.Equal(t, tt.retryable, ce.Retryable)
			assert.Equal(t, tt.retryable, connector.IsRetryable(err))
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			if tt.retryable {
				assert.Len(t, s.got(), 1, "a retryable failure of a GET is retried")
			} else {
				assert.Empty(t, s.got())
			}
			if tt.calls != nil {
				assert.Zero(t, tt.calls(), "no request may reach the server")
			}
		})
	}
}

// gotBody decodes the non-JSON output envelope.
func gotBody(t *testing.T, out json.RawMessage) string {
	t.Helper()
	var env struct {
		Body []byte `json:"body_base64"`
	}
	require.NoError(t, json.Unmarshal(out, &env))
	return string(env.Body)
}

// TestNoSecretsInErrorsOrLogs plants a secret and a query value and checks
// that neither appears in any error text or log line, whatever fails.
func TestNoSecretsInErrorsOrLogs(t *testing.T) {
	const secret = "PLANTED-secret-4f9a"
	const queryValue = "PLANTED-query-77c1"
	secrets := vault.Map{"key": []byte(secret)}

	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()
	echo := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		// A hostile upstream echoing what it got, in headers and body.
		status, _ := strconv.Atoi(r.URL.Query().Get("status"))
		w.Header().Set("X-Echo", r.Header.Get("Authorization")+r.Header.Get("X-Api-Key")+r.URL.RawQuery)
		w.WriteHeader(status)
		fmt.Fprintf(w, "%s %s %v", r.RequestURI, r.Header, r.URL.Query())
	})

	for _, auth := range []string{
		"{type: bearer, secret: key}",
		"{type: basic, secret: key, username: bot}",
		"{type: header, secret: key, header: X-Api-Key}",
		"{type: hmac, secret: key}",
	} {
		for _, tt := range []struct {
			name, url string
			allow     []netip.Prefix
			status    int
		}{
			{"4xx", echo.URL, loopback, 403},
			{"5xx", echo.URL, loopback, 500},
			{"other status", echo.URL, loopback, 399},
			{"too large", echo.URL, loopback, 200},
			{"refused", echo.URL, nil, 200},
			{"connect", closedURL, loopback, 200},
		} {
			t.Run(auth+"/"+tt.name, func(t *testing.T) {
				var logs bytes.Buffer
				log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				doc := "tools:\n  - id: t\n    base_url: BASE\n    max_response_bytes: 16\n    auth: " + auth + `
    retry: {max_attempts: 2}
    operations:
      get: {method: GET, path: "/s/{v}", query: {v: "{v}", status: "{status}"}}
`
				tc := parseTool(t, doc, tt.url)
				tc.AllowPrivate = tt.allow
				var s sleeper
				c, err := httpconn.New(tc, secrets, httpconn.WithLogger(log), httpconn.WithSleep(s.sleep))
				require.NoError(t, err)
				_, err = execute(t, c, "get", fmt.Sprintf(`{"v":%q,"status":%d}`, queryValue, tt.status))
				require.Error(t, err)
				for _, text := range []string{err.Error(), fmt.Sprintf("%+v", err), logs.String()} {
					assert.NotContains(t, text, secret)
					assert.NotContains(t, text, queryValue)
				}
				assert.Contains(t, logs.String(), `"tool":"t"`)
				assert.Contains(t, logs.String(), `"operation":"get"`)
			})
		}
	}
}

func TestOperationsAndRegister(t *testing.T) {
	cfg, err := httpconn.Parse([]byte(`
tools:
  - id: a
    base_url: https://a.example
    operations:
      create:
        description: Create one
        method: POST
        path: /x
        input_schema: {type: object, required: [name], properties: {name: {type: string}}, additionalProperties: false}
      read: {method: GET, path: /x}
      touch: {method: POST, path: /t, idempotent: true}
  - id: b
    base_url: http://b.example:8080/base
    operations:
      del: {method: DELETE, path: /x}
`), "tools.yaml")
	require.NoError(t, err)
	reg := connector.NewRegistry()
	require.NoError(t, httpconn.Register(reg, cfg, nil))
	assert.Equal(t, []string{"a", "b"}, reg.Tools())

	tool, err := reg.Tool("a")
	require.NoError(t, err)
	ops := tool.Operations()
	require.Len(t, ops, 3)
	assert.Equal(t, "create", ops[0].Name)
	assert.Equal(t, "Create one", ops[0].Description)
	assert.JSONEq(t, `{"type":"object","required":["name"],"properties":{"name":{"type":"string"}},"additionalProperties":false}`, string(ops[0].InputSchema))
	assert.False(t, ops[0].Idempotent)
	assert.True(t, ops[1].Idempotent)
	assert.True(t, ops[2].Idempotent)
	assert.True(t, reg.Idempotent("b", "del"))

	assert.ErrorIs(t, reg.Check("a", "create", json.RawMessage(`{"name":1}`)), connector.ErrInvalidInput)
	require.NoError(t, reg.Check("a", "create", json.RawMessage(`{"name":"x"}`)))

	// Registering the same tools again fails.
	assert.ErrorIs(t, httpconn.Register(reg, cfg, nil), connector.ErrInvalidConnector)
}

func TestNewErrors(t *testing.T) {
	base := httpconn.ToolConfig{
		ID:         "t",
		BaseURL:    "https://t.example",
		Operations: []httpconn.OperationConfig{{Name: "get", Method: "GET", Path: "/"}},
	}
	_, err := httpconn.New(base, nil)
	require.NoError(t, err, "the zero values of a Go-built config take defaults")

	withAuth := base
	withAuth.Auth = httpconn.Auth{Type: httpconn.AuthBearer, Secret: "tok"}
	dupOps := base
	dupOps.Operations = append(dupOps.Operations, dupOps.Operations[0])
	noOps := base
	noOps.Operations = nil
	tests := []struct {
		name string
		tool httpconn.ToolConfig
		opts []httpconn.Option
		want string
	}{
		{"auth without secret source", withAuth, nil, "secret source"},
		{"nil sleep", base, []httpconn.Option{httpconn.WithSleep(nil)}, "WithSleep"},
		{"nil logger", base, []httpconn.Option{httpconn.WithLogger(nil)}, "WithLogger"},
		{"nil resolver", base, []httpconn.Option{httpconn.WithResolver(nil)}, "WithResolver"},
		{"duplicate operation", dupOps, nil, "listed twice"},
		{"no operations", noOps, nil, "at least one operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := httpconn.New(tt.tool, nil, tt.opts...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestConcurrentExecute runs one connector from many goroutines (for the
// race detector).
func TestConcurrentExecute(t *testing.T) {
	var n atomic.Int64
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		n.Add(1)
		reply(200, `{"id":1}`)(w, r, 0)
	})
	c, err := httpconn.New(parseTool(t, retryTool, up.URL), nil)
	require.NoError(t, err)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := execute(t, c, "put", `{}`)
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.EqualValues(t, 8, n.Load())
}

func TestSecretAndKeyValues(t *testing.T) {
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		w.Header().Set("Content-Length", "100000")
		if r.Method != http.MethodHead {
			io.WriteString(w, strings.Repeat("x", 100000))
		}
	})
	secrets := vault.Map{
		"newline": []byte("tok\n"),
		"empty":   {},
		"binary":  {0, 1, 2, '\n', 0xff},
	}
	tests := []struct {
		name, auth, key string
		wantClass       string
	}{
		{"secret with newline", "{type: bearer, secret: newline}", "k", "secret_unavailable"},
		{"empty secret", "{type: header, secret: empty, header: X-Key}", "k", "secret_unavailable"},
		{"binary hmac key", "{type: hmac, secret: binary}", "k", ""},
		{"idempotency key with newline", "{type: hmac, secret: binary}", "k\r\nX-Evil: 1", "invalid_input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := httpconn.New(parseTool(t, "tools:\n  - id: t\n    base_url: BASE\n    max_response_bytes: 10\n    auth: "+tt.auth+"\n    operations: {head: {method: HEAD, path: /}}\n", up.URL), secrets)
			require.NoError(t, err)
			res, err := c.Execute(context.Background(), &connector.Request{Operation: "head", IdempotencyKey: tt.key, Input: json.RawMessage(`{}`)})
			if tt.wantClass == "" {
				require.NoError(t, err, "a HEAD response's Content-Length is not a body")
				assert.Equal(t, 200, res.UpstreamStatus)
				assert.Nil(t, res.Output)
				return
			}
			assert.Equal(t, tt.wantClass, classOf(t, err).Class)
			assert.False(t, connector.IsRetryable(err))
		})
	}
}
