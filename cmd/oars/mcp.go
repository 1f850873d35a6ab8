package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oarsdev/oars/mcp"
)

const mcpUsageText = `usage: oars mcp wrap [--policy FILE|DIR] [--data-dir DIR] [--name NAME] [--target-arg ARG]
                     [--tenant T] [--agent-id A] [--user U] -- COMMAND [ARGS...]

wrap runs the local stdio MCP server COMMAND behind OARS and speaks MCP on
its own stdin and stdout, so that an MCP client (Claude Code, Cursor, ...)
can put OARS in front of any stdio server with one line of configuration:

  {"mcpServers": {"files": {"command": "oars",
    "args": ["mcp", "wrap", "--name", "files", "--", "npx", "-y", "@modelcontextprotocol/server-filesystem", "/srv"]}}}

Every tools/call is an action (tool_id NAME, operation the tool's name,
target the value of --target-arg) decided by the policies; the signed
receipts go to the SQLite ledger of the data directory (its signing key is
generated on first use). Tools the policies deny whatever their input are
not listed. Calls that need an approval are denied: the local wrapper has
no approval service (use oarsd's /mcp for approvals).
`

// cmdMCP runs `oars mcp`.
func cmdMCP(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "wrap" {
		fmt.Fprint(stderr, mcpUsageText)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			return 0
		}
		return 2
	}
	flags := flag.NewFlagSet("oars mcp wrap", flag.ContinueOnError)
	flags.SetOutput(stderr)
	policyPath := flags.String("policy", os.Getenv("OARS_HOOK_POLICY"), "the policy `FILE` or directory (default DIR/policies)")
	dataDir := flags.String("data-dir", os.Getenv("OARS_HOOK_DATA_DIR"), "the data `DIR` of the ledger and key (default $HOME/.oars/hooks)")
	name := flags.String("name", "local", "the upstream's `name`: the tool_id of its actions")
	targetArg := flags.String("target-arg", "", "the tool `argument` whose value is the action's target")
	tenant := flags.String("tenant", "local", "the `tenant` of the actions")
	agent := flags.String("agent-id", "mcp-client", "the agent_id of the actions")
	user := flags.String("user", os.Getenv("USER"), "the `user` the agent works for")
	flags.Usage = func() { fmt.Fprint(stderr, mcpUsageText, "\nflags:\n"); flags.PrintDefaults() }
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	command := flags.Args()
	if len(command) == 0 {
		fmt.Fprintln(stderr, "oars mcp wrap: give the server's command after --")
		return 2
	}
	if *user == "" {
		*user = "local-user"
	}
	if *dataDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			*dataDir = ".oars"
		} else {
			*dataDir = filepath.Join(home, ".oars", "hooks")
		}
	}
	if *policyPath == "" {
		*policyPath = filepath.Join(*dataDir, "policies")
	}
	g, closeGuard, err := openHookGuard(ctx, hookConfig{policy: *policyPath, dataDir: *dataDir, timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "oars mcp wrap: %v\n", err)
		return 1
	}
	defer closeGuard()
	cfg := &mcp.Config{Upstreams: []mcp.Upstream{{
		Name: *name, Command: command[0], Args: command[1:], Env: os.Environ(), TargetArgument: *targetArg,
	}}}
	caller := &mcp.Caller{TenantID: *tenant, AgentID: *agent, UserID: *user}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	px, err := mcp.New(ctx, cfg, mcp.Options{
		Guard:  g,
		Caller: func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil },
		Logger: log,
	})
	if err != nil {
		fmt.Fprintf(stderr, "oars mcp wrap: %v\n", err)
		return 1
	}
	defer px.Close()
	transport := &sdk.IOTransport{Reader: io.NopCloser(stdin), Writer: nopWriteCloser{stdout}}
	if err := px.Server().Run(ctx, transport); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, io.EOF) {
		fmt.Fprintf(stderr, "oars mcp wrap: %v\n", err)
		return 1
	}
	return 0
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
