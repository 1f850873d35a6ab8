package mcp_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/mcp"
)

// benchUpstream serves one echo tool over Streamable HTTP on loopback.
func benchUpstream(b *testing.B) string {
	s := sdk.NewServer(&sdk.Implementation{Name: "bench", Version: "v0"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "echo"}, func(_ context.Context, _ *sdk.CallToolRequest, in struct {
		Text string `json:"text"`
	}) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: in.Text}}}, nil, nil
	})
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, nil))
	b.Cleanup(srv.Close)
	return srv.URL
}

func benchCall(b *testing.B, url string) {
	ctx := context.Background()
	c := sdk.NewClient(&sdk.Implementation{Name: "bench-client", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: url}, nil)
	require.NoError(b, err)
	defer cs.Close()
	params := &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatalf("call: %v %v", err, res)
		}
	}
}

// BenchmarkMCPDirect is the baseline: the SDK's client calling the
// upstream directly over loopback.
func BenchmarkMCPDirect(b *testing.B) {
	benchCall(b, benchUpstream(b))
}

// BenchmarkMCPProxied: the same call through the proxy (also over
// loopback), which decides it and records three signed receipts
// (allowed, executing, executed) in an in-memory ledger.
func BenchmarkMCPProxied(b *testing.B) {
	ctx := context.Background()
	g := newGuardEnv(b, `
id: bench
version: "1"
default: deny
rules:
  - id: echo
    when: action.tool_id == "bench" && action.operation == "echo"
    effect: allow
    reason: echo
`).guard
	px, err := mcp.New(ctx, &mcp.Config{Upstreams: []mcp.Upstream{{Name: "bench", URL: benchUpstream(b), AllowPrivate: []string{"127.0.0.1/32"}}}}, mcp.Options{
		Guard:  g,
		Caller: func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil },
	})
	require.NoError(b, err)
	b.Cleanup(func() { _ = px.Close() })
	srv := httptest.NewServer(px.Handler(mcp.HandlerOptions{}))
	b.Cleanup(srv.Close)
	benchCall(b, srv.URL)
}
