package mcp_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/mcp"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const stdioEnv = "OARS_TEST_MCP_STDIO_UPSTREAM"

// TestMain runs the stdio upstream when the test binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv(stdioEnv) != "" {
		s := sdk.NewServer(&sdk.Implementation{Name: "files", Version: "v0"}, nil)
		sdk.AddTool(s, &sdk.Tool{Name: "read_file", Description: "Read a file"}, func(_ context.Context, _ *sdk.CallToolRequest, in struct {
			Path string `json:"path"`
		}) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "contents of " + in.Path}}}, nil, nil
		})
		if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const proxyPolicy = `
id: mcp
version: "1"
default: deny
rules:
  - id: echo
    when: action.tool_id == "web" && action.operation == "echo"
    effect: allow
    reason: echo is harmless
  - id: slow
    when: action.tool_id == "web" && action.operation in ["slow", "progress"]
    effect: allow
    reason: slow is harmless
  - id: dynamic
    when: action.tool_id == "web" && action.operation == "added_later"
    effect: allow
    reason: added later
  - id: pay-small
    when: action.tool_id == "web" && action.operation == "pay" && input.amount <= 10
    effect: allow
    reason: small payments
  - id: pay-big
    when: action.tool_id == "web" && action.operation == "pay" && input.amount > 10
    effect: require_approval
    reason: payments over 10 need finance
    approval:
      roles: [finance]
      quorum: 1
      expiry: 1h
  - id: files
    when: action.tool_id == "files" && action.target.startsWith("/srv/")
    effect: allow
    reason: files under /srv
  - id: no-delete
    when: action.tool_id == "web" && action.operation == "delete_repo"
    effect: deny
    reason: nobody deletes repositories through agents
`

// upstream is the Streamable HTTP upstream of the tests.
type upstream struct {
	server    *sdk.Server
	url       string
	mu        sync.Mutex
	calls     []string
	started   chan struct{} // a slow call started
	cancelled chan struct{} // a slow call saw its cancellation
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{started: make(chan struct{}, 1), cancelled: make(chan struct{}, 1)}
	s := sdk.NewServer(&sdk.Implementation{Name: "web-upstream", Version: "v0"}, nil)
	type echoIn struct {
		Text string `json:"text"`
	}
	sdk.AddTool(s, &sdk.Tool{Name: "echo", Annotations: &sdk.ToolAnnotations{ReadOnlyHint: true}}, func(_ context.Context, req *sdk.CallToolRequest, in echoIn) (*sdk.CallToolResult, any, error) {
		u.record("echo")
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "echo: " + in.Text}}}, map[string]any{"echoed": in.Text}, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "delete_repo"}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
		u.record("delete_repo")
		return &sdk.CallToolResult{}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "pay"}, func(_ context.Context, _ *sdk.CallToolRequest, in struct {
		Amount int `json:"amount"`
	}) (*sdk.CallToolResult, any, error) {
		u.record(fmt.Sprintf("pay %d", in.Amount))
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "paid"}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "progress"}, func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		u.record("progress")
		if tok := req.Params.GetProgressToken(); tok != nil {
			for i := 1; i <= 3; i++ {
				if err := req.Session.NotifyProgress(ctx, &sdk.ProgressNotificationParams{ProgressToken: tok, Progress: float64(i), Total: 3}); err != nil {
					return nil, nil, err
				}
			}
		}
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "done"}}}, nil, nil
	})
	sdk.AddTool(s, &sdk.Tool{Name: "slow"}, func(ctx context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
		u.record("slow")
		u.started <- struct{}{}
		<-ctx.Done()
		u.cancelled <- struct{}{}
		return nil, nil, ctx.Err()
	})
	s.AddTool(&sdk.Tool{Name: "weird", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		return &sdk.CallToolResult{}, nil
	})
	// The upstream lists "weird" with an array schema, which the SDK
	// refuses to serve downstream.
	s.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			res, err := next(ctx, method, req)
			if l, ok := res.(*sdk.ListToolsResult); ok && err == nil {
				for _, t := range l.Tools {
					if t.Name == "weird" {
						t.InputSchema = json.RawMessage(`{"type":"array"}`)
					}
				}
			}
			return res, err
		}
	})
	u.server = s
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	t.Cleanup(srv.Close)
	u.url = srv.URL
	return u
}

func (u *upstream) record(c string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls = append(u.calls, c)
}

func (u *upstream) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.calls...)
}

// guardEnv is a Guard deciding with a policy, over an in-memory ledger.
type guardEnv struct {
	guard *oars.Guard
	store *ledger.MemStore
	keys  *receipt.KeySet
}

func newGuardEnv(tb testing.TB, policyYAML string) guardEnv {
	tb.Helper()
	p, err := policy.Parse("mcp.yaml", []byte(policyYAML))
	require.NoError(tb, err)
	set, err := policy.NewSet(p)
	require.NoError(tb, err)
	signer, err := receipt.NewEd25519Signer("k", ed25519.NewKeyFromSeed(make([]byte, 32)))
	require.NoError(tb, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(tb, err)
	store := ledger.NewMemStore()
	l, err := ledger.New(context.Background(), store)
	require.NoError(tb, err)
	g, err := oars.New(set, keys, l)
	require.NoError(tb, err)
	return guardEnv{guard: g, store: store, keys: keys}
}

// verify checks the whole ledger offline.
func (g guardEnv) verify(t *testing.T) {
	t.Helper()
	v, err := receipt.NewVerifier(g.keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), g.store, receipt.NewLogChecker(v))
	require.NoError(t, err)
}

func (g guardEnv) statuses(t *testing.T, actionID string) []receipt.Status {
	t.Helper()
	entries, err := g.guard.Receipts(context.Background(), actionID)
	require.NoError(t, err)
	var out []receipt.Status
	for _, en := range entries {
		out = append(out, en.Receipt.Status)
	}
	return out
}

// env is a proxy over a Streamable HTTP upstream and a stdio upstream,
// with its Guard and ledger.
type env struct {
	guardEnv
	up    *upstream
	proxy *mcp.Proxy
}

var caller = &mcp.Caller{TenantID: "acme", AgentID: "coder", UserID: "alice", Roles: []string{"dev"}}

// testConfig is the proxy configuration of the tests: up as upstream
// "web", and the test binary as stdio upstream "files".
func testConfig(t *testing.T, up *upstream) *mcp.Config {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	return &mcp.Config{Upstreams: []mcp.Upstream{
		{Name: "web", URL: up.url, AllowPrivate: []string{"127.0.0.1/32"}},
		{Name: "files", Command: exe, Env: []string{stdioEnv + "=1"}, TargetArgument: "path"},
	}}
}

func newEnv(t *testing.T, wait time.Duration) *env {
	t.Helper()
	e := &env{guardEnv: newGuardEnv(t, proxyPolicy), up: newUpstream(t)}
	px, err := mcp.New(context.Background(), testConfig(t, e.up), mcp.Options{
		Guard:        e.guard,
		Caller:       func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil },
		StateKey:     []byte(strings.Repeat("k", 32)),
		ApprovalURL:  func(id string) string { return "https://oars.example/approvals/" + id },
		ApprovalWait: wait,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Close() })
	e.proxy = px
	return e
}

// connect connects a downstream client to the proxy over in-memory
// transports, speaking protocol version (empty: the latest).
func (e *env) connect(t *testing.T, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	return connectTo(t, e.proxy, version, opts)
}

// connectTo connects a downstream client to px over in-memory transports,
// speaking protocol version (empty: the latest).
func connectTo(t *testing.T, px *mcp.Proxy, version string, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := px.Server().Connect(context.Background(), st, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = ss.Close() })
	c := sdk.NewClient(&sdk.Implementation{Name: "test-client", Version: "v0"}, opts)
	cs, err := c.Connect(context.Background(), ct, &sdk.ClientSessionOptions{ProtocolVersion: version})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

func toolNames(t *testing.T, cs *sdk.ClientSession) []string {
	t.Helper()
	var names []string
	for tool, err := range cs.Tools(context.Background(), nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	return names
}

func text(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// actionOf finds the id of the only action of a tool in the ledger.
func (e *env) actionOf(t *testing.T, op string) string {
	t.Helper()
	ids := actionsOf(t, e.store)[op]
	require.Len(t, ids, 1, "actions of %s", op)
	return ids[0]
}

// actionsOf returns the action ids in the ledger by operation.
func actionsOf(t *testing.T, store *ledger.MemStore) map[string][]string {
	t.Helper()
	n, err := store.Size(context.Background())
	require.NoError(t, err)
	leaves, err := store.ReadLeaves(context.Background(), 0, int(n))
	require.NoError(t, err)
	ids := map[string][]string{}
	seen := map[string]bool{}
	for _, leaf := range leaves {
		var r struct {
			ActionID string `json:"action_id"`
			Resource struct {
				Operation string `json:"operation"`
			} `json:"resource"`
		}
		if json.Unmarshal(leaf, &r) == nil && r.ActionID != "" && !seen[r.ActionID] {
			seen[r.ActionID] = true
			ids[r.Resource.Operation] = append(ids[r.Resource.Operation], r.ActionID)
		}
	}
	return ids
}

func TestListingAndCalls(t *testing.T) {
	e := newEnv(t, time.Second)
	cs := e.connect(t, "", nil)
	names := toolNames(t, cs)
	assert.ElementsMatch(t, []string{"echo", "pay", "slow", "progress", "read_file"}, names,
		"delete_repo is hidden (denied whatever the input) and weird skipped (array schema)")

	// Allowed: forwarded, with its receipts.
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
	assert.Equal(t, "echo: hi", text(res))
	info, ok := res.Meta[sdk.MetaKeyServerInfo].(map[string]any)
	require.True(t, ok, "the result carries server info: %v", res.Meta)
	assert.Equal(t, "oars-mcp-proxy", info["name"], "the upstream's server info is replaced by the proxy's")
	assert.Equal(t, map[string]any{"echoed": "hi"}, res.StructuredContent, "structured content passes through")
	id := e.actionOf(t, "echo")
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, e.statuses(t, id))

	// The stdio upstream, with its target from the path argument.
	res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/srv/a.txt"}})
	require.NoError(t, err)
	assert.Equal(t, "contents of /srv/a.txt", text(res))
	res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/etc/shadow"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "denied by target")
	assert.Contains(t, text(res), "OARS denied this call")
	assert.Contains(t, text(res), "(receipt ")

	// Denied at call time even when a client calls a hidden tool.
	res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "delete_repo", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(res), "nobody deletes repositories through agents")
	assert.NotContains(t, e.up.got(), "delete_repo")

	// Unknown tools and malformed arguments are protocol errors.
	_, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "nope"})
	require.Error(t, err)
	_, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: []int{1}})
	require.Error(t, err)
	e.verify(t)
}

// TestLongTargetIsCut: a target argument longer than
// oars.MaxTargetLength is cut at a rune boundary, and the call decided.
func TestLongTargetIsCut(t *testing.T) {
	e := newEnv(t, time.Second)
	cs := e.connect(t, "", nil)
	path := "/srv/" + strings.Repeat("é", oars.MaxTargetLength/2) // the limit falls inside an é
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": path}})
	require.NoError(t, err)
	assert.False(t, res.IsError, text(res))
	entries, err := e.guard.Receipts(context.Background(), e.actionOf(t, "read_file"))
	require.NoError(t, err)
	target := entries[0].Receipt.Resource.Target
	assert.Equal(t, path[:oars.MaxTargetLength-1], target)
	assert.True(t, utf8.ValidString(target))
}

func TestCancellationReachesUpstream(t *testing.T) {
	e := newEnv(t, time.Second)
	cs := e.connect(t, "", nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "slow", Arguments: map[string]any{}})
		done <- err
	}()
	<-e.up.started
	cancel()
	<-e.up.cancelled
	require.Error(t, <-done)
}

func TestListChangedPropagates(t *testing.T) {
	e := newEnv(t, time.Second)
	changed := make(chan struct{}, 8)
	cs := e.connect(t, "", &sdk.ClientOptions{ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) {
		changed <- struct{}{}
	}})
	sdk.AddTool(e.up.server, &sdk.Tool{Name: "added_later"}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "new"}}}, nil, nil
	})
	for {
		<-changed
		if slices.Contains(toolNames(t, cs), "added_later") {
			break
		}
	}
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "added_later", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.Equal(t, "new", text(res))
}

// TestApprovalFlow runs the approval of a big payment on the current
// protocol (multi-round-trip: input_required, the client retries) and on
// 2025-06-18 (the SDK elicits and re-runs the handler): approve, reject,
// and no decision in time.
func TestApprovalFlow(t *testing.T) {
	finance := approval.Approver{UserID: "fin", Roles: []string{"finance"}, TenantIDs: []string{"acme"}}
	for _, version := range []string{"", "2025-06-18"} {
		for _, tt := range []struct {
			name     string
			decision approval.Decision // "" for none
			wantErr  bool
			want     []receipt.Status
		}{
			{"approve", approval.Approve, false, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted}},
			{"reject", approval.Reject, true, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusRejected}},
			{"timeout", "", true, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusCancelled}},
		} {
			t.Run(version+"/"+tt.name, func(t *testing.T) {
				e := newEnv(t, 300*time.Millisecond)
				var elicited sync.Map
				cs := e.connect(t, version, &sdk.ClientOptions{
					ElicitationHandler: func(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
						p := req.Params
						assert.Equal(t, "url", p.Mode)
						assert.Equal(t, "https://oars.example/approvals/"+p.ElicitationID, p.URL)
						elicited.Store(p.ElicitationID, true)
						if tt.decision != "" {
							_, err := e.guard.Vote(ctx, p.ElicitationID, approval.Vote{Approver: finance, Decision: tt.decision, Reason: "checked"})
							require.NoError(t, err)
						}
						return &sdk.ElicitResult{Action: "accept"}, nil // opening the link approves nothing
					},
					Capabilities: &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}},
				})
				res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}})
				require.NoError(t, err)
				id := e.actionOf(t, "pay")
				_, ok := elicited.Load(id)
				assert.True(t, ok, "the client was asked with a URL elicitation")
				assert.Equal(t, tt.wantErr, res.IsError, text(res))
				assert.Equal(t, tt.want, e.statuses(t, id))
				if tt.wantErr {
					assert.NotContains(t, e.up.got(), "pay 500")
				} else {
					assert.Equal(t, []string{"pay 500"}, e.up.got())
				}
				e.verify(t)
			})
		}
	}
}

// TestApprovalStateIsBound: a request state is refused for another input
// and when used twice.
func TestApprovalStateIsBound(t *testing.T) {
	e := newEnv(t, 200*time.Millisecond)
	cs := e.connect(t, "", &sdk.ClientOptions{MultiRoundTrip: &sdk.MultiRoundTripOptions{Disabled: true}})
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}})
	require.NoError(t, err)
	require.NotEmpty(t, res.RequestState)
	require.Contains(t, res.InputRequests, "oars_approval")
	state := res.RequestState
	accept := sdk.InputResponseMap{"oars_approval": &sdk.ElicitResult{Action: "accept"}}

	other, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 9000}, RequestState: state, InputResponses: accept})
	require.NoError(t, err)
	assert.True(t, other.IsError)
	assert.Contains(t, text(other), "request state is invalid")

	tampered := state[:len(state)-2] + "xx"
	bad, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}, RequestState: tampered, InputResponses: accept})
	require.NoError(t, err)
	assert.True(t, bad.IsError)

	first, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}, RequestState: state, InputResponses: accept})
	require.NoError(t, err)
	assert.True(t, first.IsError, "no approval in time")
	again, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}, RequestState: state, InputResponses: accept})
	require.NoError(t, err)
	assert.True(t, again.IsError)
	assert.Contains(t, text(again), "already used")
	assert.Empty(t, e.up.got())
}

func TestProgressPassesThrough(t *testing.T) {
	e := newEnv(t, time.Second)
	got := make(chan float64, 8)
	cs := e.connect(t, "", &sdk.ClientOptions{ProgressNotificationHandler: func(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
		if req.Params.ProgressToken == "tok-1" {
			got <- req.Params.Progress
		}
	}})
	params := &sdk.CallToolParams{Name: "progress", Arguments: map[string]any{}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(context.Background(), params)
	require.NoError(t, err)
	assert.Equal(t, "done", text(res))
	for want := 1.0; want <= 3; want++ {
		assert.Equal(t, want, <-got, "progress arrives with the caller's own token")
	}
}

// TestNameCollisions: a tool name two upstreams offer is exposed once per
// upstream as <upstream>__<name>; unique names stay as they are.
func TestNameCollisions(t *testing.T) {
	ctx := context.Background()
	mk := func(tools ...string) string {
		s := sdk.NewServer(&sdk.Implementation{Name: "u", Version: "v0"}, nil)
		for _, name := range tools {
			sdk.AddTool(s, &sdk.Tool{Name: name}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
				return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: name}}}, nil, nil
			})
		}
		srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
		t.Cleanup(srv.Close)
		return srv.URL
	}
	e := newEnv(t, time.Second)
	px, err := mcp.New(ctx, &mcp.Config{Upstreams: []mcp.Upstream{
		{Name: "alpha", URL: mk("search", "only_alpha"), AllowPrivate: []string{"127.0.0.1/32"}},
		{Name: "beta", URL: mk("search"), AllowPrivate: []string{"127.0.0.1/32"}},
	}}, mcp.Options{Guard: e.guard, Caller: func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil }})
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Close() })
	cs := connectTo(t, px, "", nil)
	// Every tool of alpha and beta is denied by the policy, so none is
	// listed; the routing is checked on the server's tool set instead.
	names := toolNames(t, cs)
	assert.Empty(t, names)
	for _, name := range []string{"alpha__search", "beta__search", "only_alpha"} {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: map[string]any{}})
		require.NoError(t, err, name)
		assert.True(t, res.IsError, "denied by policy, but routed: %s", name)
	}
	_, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "search", Arguments: map[string]any{}})
	require.Error(t, err, "the bare colliding name routes nowhere")
}
