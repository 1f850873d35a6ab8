// Command oars is the OARS command-line tool: it canonicalizes JSON,
// generates signing keys, verifies receipts and ledgers, lints and tests
// policies, answers coding agents' hooks, wraps stdio MCP servers, reads receipts from an oarsd
// server and load-tests one.
//
// Usage:
//
//	oars jcs < in.json > canonical.json
//	oars keygen --out signing.key
//	oars verify receipt FILE --jwks FILE|URL
//	oars policy lint FILE...
//	oars policy test DIR
//	oars ledger verify --data-dir DIR [--jwks FILE]
//	oars ledger verify --postgres URL [--schema S] [--jwks FILE]
//	oars hook claude-code|cursor|codex|gemini [--policy FILE|DIR] [--data-dir DIR] [--server URL] < event.json
//	oars hook install claude-code|cursor [--settings FILE] [--print] [-- HOOK FLAGS]
//	oars mcp wrap [--policy FILE|DIR] [--data-dir DIR] [--name NAME] -- COMMAND ARGS...
//	oars vault keygen [--id ID] | put NAME | list | delete NAME | rotate (--data-dir DIR | --postgres URL)
//	oars receipts get ID --server URL [--token T]
//	oars receipts list --server URL [--token T] [--tenant T] [--all] ...
//	oars bench --server URL [--token T] --concurrency C --requests N
//	oars version
//
// Commands that call a server take the API token from --token or the
// OARS_TOKEN environment variable, and talk https, or plain http to a
// loopback host only.
//
// Exit status: 0 on success, 1 when a check fails, 2 on a usage error.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// command runs one subcommand and returns its exit status.
type command func(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int

var commands = map[string]struct {
	run     command
	summary string
}{
	"jcs":      {cmdJCS, "canonicalize JSON from stdin (RFC 8785) to stdout"},
	"keygen":   {cmdKeygen, "generate an Ed25519 signing key"},
	"verify":   {cmdVerify, "verify receipts: verify receipt FILE --jwks FILE|URL"},
	"policy":   {cmdPolicy, "lint or test policies: policy lint FILE... | policy test DIR"},
	"ledger":   {cmdLedger, "verify a ledger: ledger verify --data-dir DIR | --postgres URL [--jwks FILE]"},
	"hook":     {cmdHook, "answer coding-agent hooks with OARS policy: hook claude-code|cursor|codex|gemini | hook install AGENT"},
	"mcp":      {cmdMCP, "put OARS in front of a stdio MCP server: mcp wrap [flags] -- COMMAND ARGS..."},
	"vault":    {cmdVault, "manage connector secrets: vault keygen | put NAME | list | delete NAME | rotate"},
	"receipts": {cmdReceipts, "read receipts from a server: receipts get ID | receipts list [filters]"},
	"bench":    {cmdBench, "load-test a server and check its ledger: bench --server URL"},
	"version":  {cmdVersion, "print the version of oars"},
}

var commandOrder = []string{"jcs", "keygen", "verify", "policy", "ledger", "hook", "mcp", "vault", "receipts", "bench", "version"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "oars: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	return c.run(ctx, args[1:], stdin, stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: oars <command> [arguments]")
	fmt.Fprintln(w, "\ncommands:")
	for _, name := range commandOrder {
		fmt.Fprintf(w, "  %-8s %s\n", name, commands[name].summary)
	}
}
