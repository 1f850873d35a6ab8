package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oarsdev/oars/mcp"
)

const mcpUsageText = `usage: oars mcp wrap [--policy FILE|DIR] [--data-dir DIR] [--name NAME] [--target-arg ARG]
                     [--tenant T] [--agent-id A] [--user U] -- COMMAND [ARGS...]
       oars mcp wrap --server URL [--token T] [--name NAME] [--target-arg ARG]
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
no approval service (use --server, or oarsd's /mcp, for approvals).

With --server, the oarsd at URL decides instead and keeps the receipts:
each call is posted to POST /v1/actions with the API token (--token or
$OARS_TOKEN; roles admin, operator or agent, for the --tenant, and bound
to the --agent-id if the token is), and the result of an allowed call is
reported to POST /v1/actions/{id}/result, where the server records
executing and executed or failed. Every tool is listed (the server's
policies are not read here). A call that needs an approval answers with
a link to the server's approval (URL/v1/approvals/ID) and continues on
the client's retry once an approver decides, within 30s; otherwise it is
denied and cancelled (when the token may cancel it: the requester's or an
admin's). URL must be https, or http to a loopback host. --server cannot
be combined with --policy or --data-dir.
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
	server := flags.String("server", "", "decide at the oarsd at `URL` instead of a local ledger")
	token := flags.String("token", "", "the API `token` for --server (default $"+tokenEnv+")")
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
	cfg := &mcp.Config{Upstreams: []mcp.Upstream{{
		Name: *name, Command: command[0], Args: command[1:], Env: os.Environ(), TargetArgument: *targetArg,
	}}}
	caller := &mcp.Caller{TenantID: *tenant, AgentID: *agent, UserID: *user}
	opts := mcp.Options{
		Caller: func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil },
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if *server != "" {
		local := ""
		flags.Visit(func(f *flag.Flag) {
			if f.Name == "policy" || f.Name == "data-dir" {
				local = f.Name
			}
		})
		if local != "" {
			fmt.Fprintf(stderr, "oars mcp wrap: give --%s or --server, not both\n", local)
			return 2
		}
		if err := remoteOptions(&opts, *server, *token); err != nil {
			fmt.Fprintf(stderr, "oars mcp wrap: %v\n", err)
			return 2
		}
		return serveMCP(ctx, cfg, opts, stdin, stdout, stderr)
	}
	local := hookConfig{policy: *policyPath, dataDir: *dataDir, timeout: 10 * time.Second}
	local.setLocalDefaults()
	g, closeGuard, err := openHookGuard(ctx, local)
	if err != nil {
		fmt.Fprintf(stderr, "oars mcp wrap: %v\n", err)
		return 1
	}
	defer closeGuard()
	opts.Guard = g
	return serveMCP(ctx, cfg, opts, stdin, stdout, stderr)
}

// remoteOptions sets opts up to decide at the oarsd at server with the
// token of the flag or $OARS_TOKEN: the remote decider, and approvals
// through the server's approval pages, authenticated by a random
// per-process state key.
func remoteOptions(opts *mcp.Options, server, tokenFlag string) error {
	base, err := parseServerURL("--server", server)
	if err != nil {
		return err
	}
	token, err := resolveToken(tokenFlag)
	if err != nil {
		return err
	}
	remote, err := mcp.NewRemote(base.String(), token, newHTTPClient(4, httpTimeout))
	if err != nil {
		return err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return fmt.Errorf("approval state key: %w", err)
	}
	root := strings.TrimSuffix(base.String(), "/")
	opts.Decider = remote
	opts.StateKey = key
	opts.ApprovalURL = func(id string) string { return root + "/v1/approvals/" + url.PathEscape(id) }
	return nil
}

// serveMCP runs the proxy of cfg and opts over stdin and stdout until the
// client goes away or ctx ends.
func serveMCP(ctx context.Context, cfg *mcp.Config, opts mcp.Options, stdin io.Reader, stdout, stderr io.Writer) int {
	px, err := mcp.New(ctx, cfg, opts)
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
