package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/server"
	"github.com/oarsdev/oars/internal/testutil"
	"github.com/oarsdev/oars/receipt"
)

const wrapUpstreamEnv = "OARS_TEST_WRAP_UPSTREAM"

// TestMain runs the stdio MCP server that TestMCPWrap wraps when the test
// binary is started as one.
func TestMain(m *testing.M) {
	if os.Getenv(wrapUpstreamEnv) != "" {
		s := sdk.NewServer(&sdk.Implementation{Name: "files", Version: "v0"}, nil)
		type in struct {
			Path string `json:"path"`
		}
		sdk.AddTool(s, &sdk.Tool{Name: "read_file"}, func(_ context.Context, _ *sdk.CallToolRequest, a in) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "read " + a.Path}}}, nil, nil
		})
		sdk.AddTool(s, &sdk.Tool{Name: "delete_file"}, func(_ context.Context, _ *sdk.CallToolRequest, a in) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "deleted " + a.Path}}}, nil, nil
		})
		if err := s.Run(context.Background(), &sdk.StdioTransport{}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const wrapPolicy = `
id: local
version: "1"
default: deny
rules:
  - id: read-project
    when: action.tool_id == "files" && action.operation == "read_file" && action.target.startsWith("/srv/project/")
    effect: allow
    reason: reading the project is fine
`

// TestMCPWrap drives `oars mcp wrap` with the SDK's client over pipes, in
// front of a real stdio server (this test binary).
func TestMCPWrap(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(wrapPolicy), 0o600))
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(wrapUpstreamEnv, "1") // inherited by the wrapped server only: the wrapper's own code ignores it

	w := startWrap(t, "--policy", policyFile, "--data-dir", filepath.Join(dir, "data"),
		"--name", "files", "--target-arg", "path", "--", exe)
	ctx, cs, stderr := w.ctx, w.cs, w.stderr
	assert.Equal(t, []string{"read_file"}, w.tools(t), "delete_file can never be allowed: hidden")

	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/srv/project/main.go"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
	assert.Equal(t, "read /srv/project/main.go", res.Content[0].(*sdk.TextContent).Text)
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/etc/passwd"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "denied by target")
	assert.Equal(t, 0, w.stop(t), stderr.String())

	// The receipts are in the local ledger and verify.
	var out, errOut testutil.SyncBuffer
	code := run(context.Background(), []string{"ledger", "verify", "--data-dir", filepath.Join(dir, "data"), "--jwks", filepath.Join(dir, "data", ledgerJWKSFile)}, nil, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())
}

// wrapSession is an `oars mcp wrap` running in the test, with the SDK's
// client connected to it over pipes.
type wrapSession struct {
	ctx    context.Context // the wrapper's, cancelled by stop
	cs     *sdk.ClientSession
	stderr *testutil.SyncBuffer // the wrapper's
	cancel context.CancelFunc
	in     io.Closer // the wrapper's stdin
	done   chan int  // the wrapper's exit code
}

// startWrap runs `oars mcp wrap ARGS` and connects a client to it.
func startWrap(t *testing.T, args ...string) *wrapSession {
	t.Helper()
	clientToWrap, wrapIn := io.Pipe()
	wrapOut, wrapToClient := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel) // stops the wrapper of a test that failed before stop
	w := &wrapSession{ctx: ctx, stderr: &testutil.SyncBuffer{}, cancel: cancel, in: wrapIn, done: make(chan int, 1)}
	go func() {
		code := cmdMCP(ctx, append([]string{"wrap"}, args...), clientToWrap, wrapToClient, w.stderr)
		wrapToClient.Close()
		w.done <- code
	}()
	c := sdk.NewClient(&sdk.Implementation{Name: "ide", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &sdk.IOTransport{Reader: wrapOut, Writer: wrapIn}, nil)
	require.NoError(t, err, w.stderr.String())
	w.cs = cs
	return w
}

// tools returns the names of the tools the wrapper lists.
func (w *wrapSession) tools(t *testing.T) []string {
	t.Helper()
	var names []string
	for tool, err := range w.cs.Tools(w.ctx, nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	return names
}

// stop closes the client's session and the wrapper's stdin, cancels the
// wrapper and returns its exit code.
func (w *wrapSession) stop(t *testing.T) int {
	t.Helper()
	require.NoError(t, w.cs.Close())
	w.in.Close()
	w.cancel()
	return <-w.done
}

// startPolicyServer runs a development oarsd in-process on a loopback
// port with a fresh data directory and the policy file policyFile (the
// demo policy if empty), and stops it when the test ends.
func startPolicyServer(t *testing.T, policyFile string) (*server.Server, *url.URL) {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Policy = policyFile
	require.NoError(t, cfg.Validate())
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, &cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		cancel()
		require.NoError(t, err, "server.New")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		cancel()
		require.NoError(t, srv.Close())
		require.NoError(t, err, "net.Listen")
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	u, err := url.Parse("http://" + ln.Addr().String())
	require.NoError(t, err)
	return srv, u
}

// serverActions returns the receipts of the server's ledger by action
// id, and the action ids in order of their first receipt.
func serverActions(t *testing.T, srv *server.Server) (map[string][]*receipt.Receipt, []string) {
	t.Helper()
	ctx := context.Background()
	v, err := receipt.NewVerifier(srv.Keys())
	require.NoError(t, err)
	n, err := srv.Ledger().Size(ctx)
	require.NoError(t, err)
	byAction := map[string][]*receipt.Receipt{}
	var order []string
	for i := int64(0); i < n; i++ {
		leaf, err := srv.Ledger().Leaf(ctx, i)
		require.NoError(t, err)
		var probe struct {
			Spec string `json:"spec"`
		}
		require.NoError(t, json.Unmarshal(leaf, &probe))
		if probe.Spec != receipt.Spec {
			continue // an event (policy loaded)
		}
		r, err := v.Verify(leaf)
		require.NoError(t, err, "receipt at %d verifies", i)
		if _, ok := byAction[r.ActionID]; !ok {
			order = append(order, r.ActionID)
		}
		byAction[r.ActionID] = append(byAction[r.ActionID], r)
	}
	return byAction, order
}

// TestMCPWrapRemote drives `oars mcp wrap --server` in front of a real
// stdio server (this test binary), deciding at a real oarsd.
func TestMCPWrapRemote(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policyFile, []byte(wrapPolicy), 0o600))
	srv, base := startPolicyServer(t, policyFile)
	exe, err := os.Executable()
	require.NoError(t, err)
	t.Setenv(wrapUpstreamEnv, "1")
	t.Setenv(tokenEnv, devToken) // the token comes from the environment

	w := startWrap(t, "--server", base.String(), "--tenant", "acme", "--user", "alice",
		"--name", "files", "--target-arg", "path", "--", exe)
	ctx, cs, stderr := w.ctx, w.cs, w.stderr
	assert.ElementsMatch(t, []string{"read_file", "delete_file"}, w.tools(t), "the server's policies are not read here: every tool is listed")

	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/srv/project/main.go"}})
	require.NoError(t, err)
	assert.False(t, res.IsError, stderr.String())
	assert.Equal(t, "read /srv/project/main.go", res.Content[0].(*sdk.TextContent).Text)
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/etc/passwd"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "denied by target")
	assert.Contains(t, res.Content[0].(*sdk.TextContent).Text, "OARS denied this call")
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "delete_file", Arguments: map[string]any{"path": "/srv/project/main.go"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "denied by the default")
	assert.Equal(t, 0, w.stop(t), stderr.String())
	assert.NotContains(t, stderr.String(), devToken)

	// The receipts are at the server, and verify with its keys.
	byAction, order := serverActions(t, srv)
	require.Len(t, order, 3, "one action per call")
	statuses := func(id string) []receipt.Status {
		var out []receipt.Status
		for _, r := range byAction[id] {
			out = append(out, r.Status)
		}
		return out
	}
	read, passwd, del := byAction[order[0]][0], byAction[order[1]][0], byAction[order[2]][0]
	assert.Equal(t, receipt.Resource{ToolID: "files", Operation: "read_file", Target: "/srv/project/main.go"}, read.Resource)
	assert.Equal(t, "acme", read.TenantID)
	assert.Equal(t, "mcp-client", read.AgentID)
	assert.Equal(t, "alice", read.Principal.UserID)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, statuses(order[0]))
	assert.NotEmpty(t, byAction[order[0]][2].OutputDigest)
	assert.Equal(t, "/etc/passwd", passwd.Resource.Target)
	assert.Equal(t, []receipt.Status{receipt.StatusDenied}, statuses(order[1]))
	assert.Equal(t, "delete_file", del.Resource.Operation)
	assert.Equal(t, []receipt.Status{receipt.StatusDenied}, statuses(order[2]))

	// GET /v1/actions/{id} shows the same.
	body, err := get(context.Background(), newHTTPClient(1, httpTimeout), base.String()+"/v1/actions/"+order[0], devToken, httpMaxBody)
	require.NoError(t, err)
	var view struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal(body, &view))
	assert.Equal(t, "executed", view.Status)
}

func TestMCPWrapRemoteFlags(t *testing.T) {
	t.Setenv(tokenEnv, "")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"policy and server", []string{"--server", "https://oars.example.com", "--token", "t", "--policy", "p.yaml"}, "give --policy or --server, not both"},
		{"data dir and server", []string{"--server", "https://oars.example.com", "--token", "t", "--data-dir", "d"}, "give --data-dir or --server, not both"},
		{"plain http", []string{"--server", "http://oars.example.com", "--token", "t"}, "plain http is allowed only for loopback hosts"},
		{"no token", []string{"--server", "https://oars.example.com"}, "an API token is required"},
		{"credentials in the URL", []string{"--server", "https://u:secretpw@oars.example.com", "--token", "t"}, "must not contain user information"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr testutil.SyncBuffer
			args := append(append([]string{"wrap"}, tt.args...), "--", "true")
			code := cmdMCP(context.Background(), args, strings.NewReader(""), &stdout, &stderr)
			assert.Equal(t, 2, code, "cmdMCP(%v) exit code", tt.args)
			assert.Contains(t, stderr.String(), tt.want)
			assert.NotContains(t, stderr.String(), "secretpw")
		})
	}
}
