package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const mcpPolicyYAML = `
id: mcp
version: "1"
default: deny
rules:
  - id: search
    when: action.tool_id == "docs" && action.operation == "search"
    effect: allow
    reason: searching docs is fine
`

// bearer adds a token to every request of an MCP client.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// TestMCPThroughOarsd: the SDK's own client against oarsd's /mcp with a
// real Streamable HTTP upstream on loopback.
func TestMCPThroughOarsd(t *testing.T) {
	up := sdk.NewServer(&sdk.Implementation{Name: "docs", Version: "v0"}, nil)
	var calls []string
	sdk.AddTool(up, &sdk.Tool{Name: "search"}, func(_ context.Context, _ *sdk.CallToolRequest, in struct {
		Q string `json:"q"`
	}) (*sdk.CallToolResult, any, error) {
		calls = append(calls, "search "+in.Q)
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "found " + in.Q}}}, nil, nil
	})
	sdk.AddTool(up, &sdk.Tool{Name: "drop_index"}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
		calls = append(calls, "drop_index")
		return &sdk.CallToolResult{}, nil, nil
	})
	ups := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return up }, nil))
	defer ups.Close()

	dir := t.TempDir()
	cfg := approvalConfig(t, dir)
	cfg.Policy = filepath.Join(dir, "mcp-policy.yaml")
	require.NoError(t, os.WriteFile(cfg.Policy, []byte(mcpPolicyYAML), 0o600))
	cfg.MCPConfig = filepath.Join(dir, "mcp.yaml")
	require.NoError(t, os.WriteFile(cfg.MCPConfig, []byte("upstreams:\n  - name: docs\n    url: "+ups.URL+"\n    allow_private: [127.0.0.1/32]\n"), 0o600))
	cfg.MCPAllowedOrigins = []string{"https://ide.example"}
	require.NoError(t, cfg.Validate())
	s := startWith(t, cfg)

	c := sdk.NewClient(&sdk.Implementation{Name: "agent", Version: "v0"}, nil)
	cs, err := c.Connect(t.Context(), &sdk.StreamableClientTransport{
		Endpoint:   s.url + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{token: secretOf("alice"), base: http.DefaultTransport}},
	}, nil)
	require.NoError(t, err)
	defer cs.Close()

	var names []string
	for tool, err := range cs.Tools(t.Context(), nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"search"}, names, "drop_index can never be allowed: hidden")

	res, err := cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "search", Arguments: map[string]any{"q": "oars"}})
	require.NoError(t, err)
	require.False(t, res.IsError)
	assert.Equal(t, "found oars", res.Content[0].(*sdk.TextContent).Text)

	res, err = cs.CallTool(t.Context(), &sdk.CallToolParams{Name: "drop_index", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, res.Content[0].(*sdk.TextContent).Text, "receipt")
	assert.Equal(t, []string{"search oars"}, calls)

	// Refused at the door: no credentials, a foreign Origin.
	init := `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`
	for _, tt := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", map[string]string{}, http.StatusUnauthorized},
		{"foreign origin", map[string]string{"Authorization": "Bearer " + secretOf("alice"), "Origin": "https://evil.example"}, http.StatusForbidden},
		{"approver may not submit", map[string]string{"Authorization": "Bearer " + secretOf("bob")}, http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequest("POST", s.url+"/mcp", strings.NewReader(init))
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
		})
	}
	s.stop()
	verifyLedgerFile(t, dir)
}
