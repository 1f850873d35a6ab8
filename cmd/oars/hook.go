package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/hook"
	"github.com/oarsdev/oars/internal/fsutil"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

const hookUsageText = `usage: oars hook AGENT [--policy FILE|DIR] [--data-dir DIR] [flags] < event.json
       oars hook AGENT --server URL [--token T] [flags] < event.json
       oars hook install claude-code|cursor [--settings FILE] [--print] [--command CMD] [-- HOOK FLAGS]

oars hook is the command a coding agent runs for each tool call: it reads
the agent's hook event (JSON) on stdin, decides the call with OARS policies,
records a signed receipt, and answers in the agent's protocol on stdout and
with its exit code. AGENT is claude-code, cursor, codex or gemini.

Each tool call becomes an action: tenant --tenant, agent_id --agent-id (the
agent's name by default), user --user ($USER by default), tool_id
"AGENT:TOOL" (or "mcp:SERVER" for an MCP tool mcp__SERVER__TOOL), operation
shell, read, write, fetch or call (an MCP tool's own name), target the
program a shell command runs or the file path, and input the tool's input.
An allowed call is answered allow, a denied one deny (with the rules'
reasons and the receipt id), one held for approval ask where the agent can
ask its user (Claude Code, Cursor's shell and MCP hooks) and deny elsewhere.
Claude Code's and Codex's PostToolUse (and PostToolUseFailure) events record
the executed (or failed) receipt of the decided call.

Locally, the policies are --policy (a YAML file or a directory of them,
default DIR/policies) and the ledger is the SQLite file DIR/oars.db, signed
with DIR/signing.key, generated on first use (its public key goes to
DIR/jwks.json: "oars ledger verify --data-dir DIR" checks the receipts).
With --server, oarsd decides instead (POST /v1/hooks/AGENT, as the token's
principal).

The hook fails closed: any error (malformed event, missing policy, ledger
failure, no answer within --timeout) denies the call with exit code 2 and
the reason on stderr, because the agents let a call through when a hook
fails otherwise. Flags may also be set in the environment: OARS_HOOK_POLICY,
OARS_HOOK_DATA_DIR, OARS_HOOK_TENANT, OARS_HOOK_AGENT_ID, OARS_HOOK_USER,
OARS_HOOK_SERVER and OARS_TOKEN.

oars hook install adds the hook to the agent's settings: Claude Code's
.claude/settings.json (PreToolUse, PostToolUse and PostToolUseFailure, all
tools) or Cursor's .cursor/hooks.json (beforeShellExecution,
beforeMCPExecution, beforeReadFile), or --settings FILE. It keeps every
other setting, saves the previous file as FILE.bak, and replaces an earlier
oars hook instead of adding a second one. The command is this executable's
absolute path, "hook AGENT" and the flags after --, or --command CMD.
--print prints the settings to add instead of editing anything.
`

// Defaults of oars hook.
const (
	hookDefaultTimeout = 5 * time.Second
	// hookGrace is how long after --timeout the watchdog answers if the
	// decision has not come back (a store call not honouring ctx).
	hookGrace = 250 * time.Millisecond
	// hookConflictRetries bounds the retries of a ledger append that lost
	// the race to another hook process appending to the same file.
	hookConflictRetries = 100
	// hookMaxAnswer bounds oarsd's answer.
	hookMaxAnswer = 1 << 20
)

// hookConfig is the configuration of one oars hook run.
type hookConfig struct {
	policy, dataDir string
	server, token   string
	tenant, agentID string
	user            string
	timeout         time.Duration
}

// cmdHook runs `oars hook`. For an agent it returns the exit code of the
// answer (0, 1 after a failed recording, 2 to block); for install 0, 1
// when the settings cannot be changed, 2 on a usage error.
func cmdHook(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, hookUsageText)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, hookUsageText)
		return 0
	case "install":
		return cmdHookInstall(args[1:], stdout, stderr)
	}
	agent, err := hook.ParseAgent(args[0])
	if err != nil {
		// No protocol to answer in: exit 2 blocks in all of them.
		fmt.Fprintf(stderr, "oars hook: %v\n", err)
		return 2
	}
	cfg, cfgErr := parseHookFlags(args[1:])
	if errors.Is(cfgErr, flag.ErrHelp) {
		fmt.Fprint(stdout, hookUsageText)
		return 0
	}
	timeout := cfg.timeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var event atomic.Pointer[[]byte]
	done := make(chan hookResult, 1)
	go func() { done <- runHook(ctx, agent, cfg, cfgErr, stdin, &event) }()
	watchdog := time.NewTimer(timeout + hookGrace)
	defer watchdog.Stop()
	select {
	case res := <-done:
		code := res.answer.Write(stdout, stderr)
		if res.close != nil {
			// Closing SQLite checkpoints its WAL, which the answer need
			// not wait for: the process may exit first, and the next
			// open recovers the committed WAL.
			go res.close()
		}
		return code
	case <-watchdog.C:
		var data []byte
		if p := event.Load(); p != nil {
			data = *p
		}
		return hook.Fail(agent, data, fmt.Sprintf("no decision within %v", timeout)).Write(stdout, stderr)
	}
}

// parseHookFlags parses the flags of `oars hook AGENT`, defaulting from
// the environment. On error it returns the configuration so far (with a
// valid timeout) and the error.
func parseHookFlags(args []string) (hookConfig, error) {
	cfg := hookConfig{timeout: hookDefaultTimeout}
	flags := flag.NewFlagSet("oars hook", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	flags.StringVar(&cfg.policy, "policy", os.Getenv("OARS_HOOK_POLICY"), "the policy `FILE` or directory (default DIR/policies)")
	flags.StringVar(&cfg.dataDir, "data-dir", os.Getenv("OARS_HOOK_DATA_DIR"), "the data `DIR` of the ledger and key (default $HOME/.oars/hooks)")
	flags.StringVar(&cfg.server, "server", os.Getenv("OARS_HOOK_SERVER"), "decide with the oarsd at `URL` instead")
	flags.StringVar(&cfg.token, "token", "", "the API `token` for --server (default $OARS_TOKEN)")
	flags.StringVar(&cfg.tenant, "tenant", os.Getenv("OARS_HOOK_TENANT"), "the `tenant` of the actions (default local)")
	flags.StringVar(&cfg.agentID, "agent-id", os.Getenv("OARS_HOOK_AGENT_ID"), "the agent_id of the actions (default the agent's name)")
	flags.StringVar(&cfg.user, "user", os.Getenv("OARS_HOOK_USER"), "the user the agent works for (default $USER)")
	flags.DurationVar(&cfg.timeout, "timeout", hookDefaultTimeout, "deny when no decision comes within this `duration`")
	err := flags.Parse(args)
	if cfg.timeout <= 0 {
		cfg.timeout = hookDefaultTimeout
		if err == nil {
			err = errors.New("--timeout must be positive")
		}
	}
	if err != nil {
		return cfg, fmt.Errorf("oars hook: %w", err)
	}
	if flags.NArg() > 0 {
		return cfg, errors.New("oars hook: unexpected arguments")
	}
	policySet := false
	flags.Visit(func(f *flag.Flag) { policySet = policySet || f.Name == "policy" })
	if cfg.user == "" {
		cfg.user = os.Getenv("USER")
	}
	if cfg.server != "" {
		if policySet {
			return cfg, errors.New("oars hook: give --policy or --server, not both")
		}
		return cfg, nil
	}
	cfg.setLocalDefaults()
	return cfg, nil
}

// setLocalDefaults defaults the data directory of a local run to
// $HOME/.oars/hooks (.oars without a home directory) and the policy to
// DIR/policies.
func (cfg *hookConfig) setLocalDefaults() {
	if cfg.dataDir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			cfg.dataDir = ".oars"
		} else {
			cfg.dataDir = filepath.Join(home, ".oars", "hooks")
		}
	}
	if cfg.policy == "" {
		cfg.policy = filepath.Join(cfg.dataDir, "policies")
	}
}

// hookResult is the answer of runHook and, if not nil, the function
// closing the ledger it opened.
type hookResult struct {
	answer hook.Answer
	close  func()
}

// runHook reads the event from stdin and answers it; it stores the event
// in event as soon as it is read, for the watchdog.
func runHook(ctx context.Context, agent hook.Agent, cfg hookConfig, cfgErr error, stdin io.Reader, event *atomic.Pointer[[]byte]) hookResult {
	fail := func(data []byte, reason string) hookResult {
		return hookResult{answer: hook.Fail(agent, data, reason)}
	}
	data, err := io.ReadAll(io.LimitReader(stdin, hook.MaxEventBytes+1))
	switch {
	case err != nil:
		return fail(data, "reading the event: "+err.Error())
	case len(data) > hook.MaxEventBytes:
		return fail(nil, fmt.Sprintf("the event is larger than %d bytes", hook.MaxEventBytes))
	}
	event.Store(&data)
	if cfgErr != nil {
		return fail(data, cfgErr.Error())
	}
	if cfg.server != "" {
		return hookResult{answer: remoteHook(ctx, agent, cfg, data)}
	}
	ev, err := hook.Parse(agent, data)
	if err != nil {
		return fail(data, err.Error())
	}
	opts := hook.Options{TenantID: cfg.tenant, AgentID: cfg.agentID, Principal: oars.Principal{UserID: cfg.user}}
	if ev.Phase == hook.Other {
		// Nothing to decide: answer without opening the ledger.
		ans, _ := hook.HandleEvent(ctx, nil, ev, opts)
		return hookResult{answer: ans}
	}
	g, closeGuard, err := openHookGuard(ctx, cfg)
	if err != nil {
		return hookResult{answer: hook.FailEvent(ev, err.Error())}
	}
	ans, err := hook.HandleEvent(ctx, g, ev, opts)
	if err != nil {
		ans = hook.FailEvent(ev, err.Error())
	}
	return hookResult{answer: ans, close: closeGuard}
}

// openHookGuard opens the local Guard of cfg: the policies, the signing
// key of the data directory (generated on first use) and its SQLite
// ledger. The three are opened concurrently: compiling the policies is
// most of a hook's work, and the hook runs once per tool call.
func openHookGuard(ctx context.Context, cfg hookConfig) (*oars.Guard, func(), error) {
	if err := os.MkdirAll(cfg.dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	var (
		wg             sync.WaitGroup
		set            *policy.Set
		signer         receipt.Signer
		setErr, keyErr error
	)
	wg.Go(func() { set, setErr = loadHookPolicies(cfg.policy) })
	wg.Go(func() { signer, keyErr = hookSigner(cfg.dataDir) })
	store, err := sqlite.Open(ctx, filepath.Join(cfg.dataDir, ledgerDBFile),
		sqlite.WithBusyTimeout(cfg.timeout), sqlite.WithMaxReaders(1))
	wg.Wait()
	if err != nil {
		return nil, nil, fmt.Errorf("ledger: %w", err)
	}
	closeStore := func() { store.Close() }
	fail := func(err error) (*oars.Guard, func(), error) {
		closeStore()
		return nil, nil, err
	}
	switch {
	case setErr != nil:
		return fail(setErr)
	case keyErr != nil:
		return fail(keyErr)
	}
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		return fail(err)
	}
	l, err := ledger.New(ctx, store, ledger.WithConflictRetries(hookConflictRetries))
	if err != nil {
		return fail(fmt.Errorf("ledger: %w", err))
	}
	g, err := oars.New(set, keys, l, oars.WithMaxInputBytes(hook.MaxEventBytes))
	if err != nil {
		return fail(err)
	}
	return g, closeStore, nil
}

// loadHookPolicies loads the policy file, or every policy of the
// directory, at path.
func loadHookPolicies(path string) (*policy.Set, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no policy at %s: give --policy FILE|DIR", path)
	}
	return policy.Load(path)
}

// hookSigner loads the signing key of the data directory, generating it
// (and writing its JWKS beside it) on first use. Of two hooks generating
// it at once, the second loads the first's.
func hookSigner(dir string) (receipt.Signer, error) {
	path := filepath.Join(dir, hookKeyFile)
	signer, err := receipt.LoadSignerFile(path)
	switch {
	case err == nil:
		// A hook that died between writing the key and its JWKS left
		// no JWKS: write it now.
		if _, err := os.Stat(filepath.Join(dir, ledgerJWKSFile)); errors.Is(err, fs.ErrNotExist) {
			if err := writeHookJWKS(dir, signer); err != nil {
				return nil, err
			}
		}
		return signer, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	generated, key, err := receipt.GenerateKey("")
	if err != nil {
		return nil, err
	}
	if err := receipt.WritePrivateKeyFile(path, generated.KeyID(), key); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return receipt.LoadSignerFile(path)
		}
		return nil, err
	}
	if err := writeHookJWKS(dir, generated); err != nil {
		return nil, err
	}
	return generated, nil
}

// writeHookJWKS writes the public key of signer to DIR/jwks.json, where
// oars ledger verify --data-dir DIR finds it.
func writeHookJWKS(dir string, signer receipt.Signer) error {
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		return err
	}
	jwks, err := keys.MarshalJWKS()
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(dir, ledgerJWKSFile), jwks, 0o644); err != nil {
		return fmt.Errorf("write JWKS: %w", err)
	}
	return nil
}

// hookKeyFile is the signing key in the data directory (as oarsd names
// it).
const hookKeyFile = "signing.key"

// remoteHook asks the oarsd of cfg to answer the event: POST
// /v1/hooks/AGENT with the event as body. Any failure is answered by
// hook.Fail.
func remoteHook(ctx context.Context, agent hook.Agent, cfg hookConfig, data []byte) hook.Answer {
	ans, err := askServer(ctx, agent, cfg, data)
	if err != nil {
		return hook.Fail(agent, data, "oarsd: "+err.Error())
	}
	return ans
}

func askServer(ctx context.Context, agent hook.Agent, cfg hookConfig, data []byte) (hook.Answer, error) {
	base, err := parseServerURL("--server", cfg.server)
	if err != nil {
		return hook.Answer{}, err
	}
	token, err := resolveToken(cfg.token)
	if err != nil {
		return hook.Answer{}, err
	}
	c := &apiClient{http: newHTTPClient(1, cfg.timeout), base: base, token: token}
	q := url.Values{}
	if cfg.tenant != "" {
		q.Set("tenant_id", cfg.tenant)
	}
	if cfg.agentID != "" {
		q.Set("agent_id", cfg.agentID)
	}
	body, err := send(ctx, c.http, http.MethodPost, c.endpoint("/v1/hooks/"+url.PathEscape(string(agent)), q), c.token, data, hookMaxAnswer)
	if err != nil {
		return hook.Answer{}, err
	}
	var ans hook.Answer
	if err := json.Unmarshal(body, &ans); err != nil {
		return hook.Answer{}, errors.New("the answer is not a hook answer")
	}
	if ans.ExitCode < 0 || ans.ExitCode > 2 {
		return hook.Answer{}, fmt.Errorf("the answer has exit code %d", ans.ExitCode)
	}
	return ans, nil
}

// cmdHookInstall runs `oars hook install`.
func cmdHookInstall(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("oars hook install", flag.ContinueOnError)
	flags.SetOutput(stderr)
	settings := flags.String("settings", "", "the settings `FILE` to edit (default .claude/settings.json or .cursor/hooks.json)")
	printOnly := flags.Bool("print", false, "print the settings to add; edit nothing")
	command := flags.String("command", "", "the hook `command` (default: this executable, hook AGENT and the flags after --)")
	flags.Usage = func() { fmt.Fprint(stderr, hookUsageText) }
	if len(args) == 0 {
		fmt.Fprintln(stderr, "oars hook install: name the agent: claude-code or cursor")
		return 2
	}
	agent, err := hook.ParseAgent(args[0])
	if err != nil {
		fmt.Fprintf(stderr, "oars hook install: %v\n", err)
		return 2
	}
	if hook.SettingsPath(agent) == "" {
		fmt.Fprintf(stderr, "oars hook install: %s is not supported; add `oars hook %s` to its hook settings by hand\n", agent, agent)
		return 2
	}
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	cmd := *command
	if cmd == "" {
		exe, err := os.Executable()
		if err == nil {
			exe, err = filepath.EvalSymlinks(exe)
		}
		if err != nil {
			fmt.Fprintf(stderr, "oars hook install: cannot tell this executable's path (%v); give --command\n", err)
			return 1
		}
		words := append([]string{exe, "hook", string(agent)}, flags.Args()...)
		for i, w := range words {
			words[i] = shellQuote(w)
		}
		cmd = strings.Join(words, " ")
	} else if flags.NArg() > 0 {
		fmt.Fprintln(stderr, "oars hook install: give hook flags after -- or --command, not both")
		return 2
	}
	if *printOnly {
		out, _, err := hook.Merge(agent, []byte("{}"), cmd)
		if err != nil {
			fmt.Fprintf(stderr, "oars hook install: %v\n", err)
			return 1
		}
		stdout.Write(out)
		return 0
	}
	path := *settings
	if path == "" {
		path = hook.SettingsPath(agent)
	}
	_, statErr := os.Stat(path)
	changed, err := hook.InstallFile(path, agent, cmd)
	if err != nil {
		fmt.Fprintf(stderr, "oars hook install: %v\n", err)
		return 1
	}
	switch {
	case changed && statErr == nil:
		fmt.Fprintf(stdout, "installed the OARS hook for %s in %s (the previous file is %s.bak)\n", agent, path, path)
	case changed:
		fmt.Fprintf(stdout, "installed the OARS hook for %s in %s\n", agent, path)
	default:
		fmt.Fprintf(stdout, "the OARS hook for %s is already installed in %s\n", agent, path)
	}
	fmt.Fprintf(stdout, "command: %s\n", cmd)
	return 0
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// characters that need no quoting.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
