package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
    when: action.tool_id == "files" && action.operation == "read_file" && action.target.startsWith("/work/")
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

	clientToWrap, wrapIn := io.Pipe()
	wrapOut, wrapToClient := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var stderr syncBuffer
	go func() {
		code := cmdMCP(ctx, []string{"wrap", "--policy", policyFile, "--data-dir", filepath.Join(dir, "data"),
			"--name", "files", "--target-arg", "path", "--", exe}, clientToWrap, wrapToClient, &stderr)
		wrapToClient.Close()
		done <- code
	}()

	c := sdk.NewClient(&sdk.Implementation{Name: "ide", Version: "v0"}, nil)
	cs, err := c.Connect(ctx, &sdk.IOTransport{Reader: wrapOut, Writer: wrapIn}, nil)
	require.NoError(t, err, stderr.String())
	var names []string
	for tool, err := range cs.Tools(ctx, nil) {
		require.NoError(t, err)
		names = append(names, tool.Name)
	}
	assert.Equal(t, []string{"read_file"}, names, "delete_file can never be allowed: hidden")

	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/work/main.go"}})
	require.NoError(t, err)
	assert.False(t, res.IsError)
	assert.Equal(t, "read /work/main.go", res.Content[0].(*sdk.TextContent).Text)
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/etc/passwd"}})
	require.NoError(t, err)
	assert.True(t, res.IsError, "denied by target")
	require.NoError(t, cs.Close())
	wrapIn.Close()
	cancel()
	assert.Equal(t, 0, <-done, stderr.String())

	// The receipts are in the local ledger and verify.
	var out, errOut syncBuffer
	code := run(context.Background(), []string{"ledger", "verify", "--data-dir", filepath.Join(dir, "data"), "--jwks", filepath.Join(dir, "data", ledgerJWKSFile)}, nil, &out, &errOut)
	assert.Equal(t, 0, code, errOut.String())
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
