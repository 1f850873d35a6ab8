package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/hook")

var hookPolicy = filepath.Join("testdata", "hook", "policy.yaml")

// clearHookEnv keeps the developer's OARS_HOOK_* settings out of a test.
func clearHookEnv(t *testing.T) {
	t.Helper()
	for _, k := range []string{"OARS_HOOK_POLICY", "OARS_HOOK_DATA_DIR", "OARS_HOOK_TENANT", "OARS_HOOK_AGENT_ID", "OARS_HOOK_USER", "OARS_HOOK_SERVER", "OARS_TOKEN"} {
		t.Setenv(k, "")
	}
}

// runCLI runs oars with args and stdin and returns the exit code, stdout
// and stderr.
func runCLI(t *testing.T, stdin io.Reader, args ...string) (int, string, string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, stdin, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// TestHookGolden feeds each testdata/hook/AGENT/CASE.json event to `oars
// hook AGENT` and compares the exit code, stdout and stderr with
// CASE.golden (receipt ids and the data directory replaced). A case named
// internal-error runs with a data directory that cannot be created.
// Refresh the golden files with -update.
func TestHookGolden(t *testing.T) {
	clearHookEnv(t)
	inputs, err := filepath.Glob(filepath.Join("testdata", "hook", "*", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		agent := filepath.Base(filepath.Dir(in))
		name := strings.TrimSuffix(filepath.Base(in), ".json")
		t.Run(agent+"/"+name, func(t *testing.T) {
			event, err := os.ReadFile(in)
			require.NoError(t, err)
			dataDir := t.TempDir()
			args := []string{"hook", agent, "--policy", hookPolicy, "--data-dir", dataDir, "--user", "alice"}
			if name == "internal-error" {
				notADir := filepath.Join(dataDir, "file")
				require.NoError(t, os.WriteFile(notADir, nil, 0o600))
				args[5] = notADir
			}
			code, stdout, stderr := runCLI(t, bytes.NewReader(event), args...)
			got := fmt.Sprintf("exit %d\n-- stdout --\n%s-- stderr --\n%s", code, stdout, stderr)
			got = uuidPattern.ReplaceAllString(strings.ReplaceAll(got, dataDir, "$DATA"), "RECEIPT")
			golden := strings.TrimSuffix(in, ".json") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(got), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "golden file (run with -update to create it)")
			assert.Equal(t, string(want), got, "oars %s < %s", strings.Join(args, " "), in)
			if stdout != "" {
				assert.True(t, json.Valid([]byte(stdout)), "stdout is not JSON")
			}
			if name == "internal-error" || name == "malformed" {
				assert.Equal(t, 2, code, "failures block")
			}
		})
	}
}

func TestHookRecordsExecution(t *testing.T) {
	clearHookEnv(t)
	dataDir := t.TempDir()
	args := []string{"hook", "claude-code", "--policy", hookPolicy, "--data-dir", dataDir, "--user", "alice"}
	pre := `{"session_id":"s-1","cwd":"/w","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"go vet ./..."},"tool_use_id":"toolu_7"}`
	post := `{"session_id":"s-1","cwd":"/w","hook_event_name":"PostToolUse","tool_name":"Bash","tool_input":{"command":"go vet ./..."},"tool_use_id":"toolu_7","tool_response":{"stdout":"","stderr":"","interrupted":false}}`
	failedPre := strings.ReplaceAll(pre, "toolu_7", "toolu_8")
	failed := `{"session_id":"s-1","cwd":"/w","hook_event_name":"PostToolUseFailure","tool_name":"Bash","tool_input":{"command":"go vet ./..."},"tool_use_id":"toolu_8","error":"exit status 1"}`

	for _, step := range []struct {
		event    string
		wantCode int
		wantOut  string
	}{
		{pre, 0, `"permissionDecision":"allow"`},
		{post, 0, ""},
		{post, 0, ""}, // the hook run twice records once
		{failedPre, 0, `"permissionDecision":"allow"`},
		{failed, 0, ""},
	} {
		code, stdout, stderr := runCLI(t, strings.NewReader(step.event), args...)
		require.Equal(t, step.wantCode, code, "stderr: %s", stderr)
		if step.wantOut == "" {
			assert.Empty(t, stdout)
		} else {
			assert.Contains(t, stdout, step.wantOut)
		}
	}

	// A PostToolUse of a call no hook decided cannot be recorded: exit 1,
	// which blocks nothing.
	orphan := strings.ReplaceAll(post, "toolu_7", "toolu_99")
	code, _, stderr := runCLI(t, strings.NewReader(orphan), args...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no decision recorded for this tool call")

	// The ledger verifies offline, signatures and chains included.
	code, stdout, stderr := runCLI(t, nil, "ledger", "verify", "--data-dir", dataDir)
	require.Equal(t, 0, code, "ledger verify: %s", stderr)
	assert.Contains(t, stdout, "ok: 6 entries")
	assert.Contains(t, stdout, "signatures: checked with 1 key")

	jwks, err := os.ReadFile(filepath.Join(dataDir, "jwks.json"))
	require.NoError(t, err)
	keys, err := receipt.ParseJWKS(jwks)
	require.NoError(t, err)
	v, err := receipt.NewVerifier(keys)
	require.NoError(t, err)
	store, err := sqlite.Open(context.Background(), filepath.Join(dataDir, "oars.db"), sqlite.WithReadOnly())
	require.NoError(t, err)
	defer store.Close()
	rep, err := ledger.Verify(context.Background(), store, receipt.NewLogChecker(v))
	require.NoError(t, err)
	assert.EqualValues(t, 6, rep.Size)

	var got []string
	for i := range int64(6) {
		leaves, err := store.ReadLeaves(context.Background(), i, 1)
		require.NoError(t, err)
		r, err := v.Verify(leaves[0])
		require.NoError(t, err)
		got = append(got, fmt.Sprintf("%s %s %s", r.Status, r.Resource.ToolID, r.ErrorClass))
		assert.Equal(t, "alice", r.Principal.UserID)
		assert.Equal(t, "local", r.TenantID)
		assert.Equal(t, "claude-code", r.AgentID)
	}
	assert.Equal(t, []string{
		"allowed claude-code:Bash ", "executing claude-code:Bash ", "executed claude-code:Bash ",
		"allowed claude-code:Bash ", "executing claude-code:Bash ", "failed claude-code:Bash tool_error",
	}, got)
}

func TestHookFailsClosed(t *testing.T) {
	clearHookEnv(t)
	const event = `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"ls"},"tool_use_id":"t"}`
	dataDir := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		stdin     io.Reader
		wantCode  int
		stdoutHas string
		stderrHas string
	}{
		{"no policy", []string{"hook", "claude-code", "--data-dir", dataDir}, strings.NewReader(event),
			2, `"permissionDecision":"deny"`, "no policy at " + filepath.Join(dataDir, "policies")},
		{"bad policy", []string{"hook", "claude-code", "--data-dir", dataDir, "--policy", filepath.Join("testdata", "policy", "lint", "bad.yaml")}, strings.NewReader(event),
			2, `"permissionDecision":"deny"`, "undefined field 'role'"},
		{"bad flag", []string{"hook", "gemini", "--polcy", hookPolicy}, strings.NewReader(`{"hook_event_name":"BeforeTool","tool_name":"x","tool_input":{}}`),
			2, `{"decision":"deny"`, "flag provided but not defined: -polcy"},
		{"bad timeout", []string{"hook", "cursor", "--timeout", "-1s"}, strings.NewReader(`{"hook_event_name":"beforeShellExecution","command":"ls"}`),
			2, `{"permission":"deny"`, "--timeout must be positive"},
		{"policy and server", []string{"hook", "codex", "--policy", hookPolicy, "--server", "https://oars.example.com"}, strings.NewReader(event),
			2, `"permissionDecision":"deny"`, "give --policy or --server, not both"},
		{"server unreachable", []string{"hook", "claude-code", "--server", "http://127.0.0.1:1", "--token", "t"}, strings.NewReader(event),
			2, `"permissionDecision":"deny"`, "oarsd: "},
		{"server over plain http", []string{"hook", "claude-code", "--server", "http://oars.example.com", "--token", "t"}, strings.NewReader(event),
			2, `"permissionDecision":"deny"`, "plain http is allowed only for loopback hosts"},
		{"event too large", []string{"hook", "claude-code", "--policy", hookPolicy, "--data-dir", dataDir}, io.LimitReader(zeroReader{}, 17<<20),
			2, `"permissionDecision":"deny"`, "larger than"},
		{"unknown agent", []string{"hook", "copilot"}, strings.NewReader(event), 2, "", "unknown agent"},
		{"after event without ledger", []string{"hook", "claude-code", "--data-dir", dataDir}, strings.NewReader(strings.Replace(event, "PreToolUse", "PostToolUse", 1)),
			1, "", "no policy at"},
		{"other event needs nothing", []string{"hook", "claude-code", "--data-dir", filepath.Join(dataDir, "never")}, strings.NewReader(`{"hook_event_name":"SessionStart"}`),
			0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.stdin, tt.args...)
			assert.Equal(t, tt.wantCode, code, "exit code; stderr: %s", stderr)
			if tt.stdoutHas == "" {
				assert.Empty(t, stdout)
			} else {
				assert.Contains(t, stdout, tt.stdoutHas)
			}
			if tt.stderrHas == "" {
				assert.Empty(t, stderr)
			} else {
				assert.Contains(t, stderr, tt.stderrHas)
			}
		})
	}
	assert.NoDirExists(t, filepath.Join(dataDir, "never"), "an event that needs no decision opens nothing")
}

// zeroReader reads zeros forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestHookTimeout(t *testing.T) {
	clearHookEnv(t)
	// The agent never closes stdin: the watchdog denies.
	r, w := io.Pipe()
	t.Cleanup(func() { w.Close() })
	code, stdout, stderr := runCLI(t, r, "hook", "cursor", "--policy", hookPolicy, "--data-dir", t.TempDir(), "--timeout", "50ms")
	assert.Equal(t, 2, code)
	assert.JSONEq(t, `{"permission":"deny","user_message":"OARS could not decide this tool call, so it is denied: no decision within 50ms","agent_message":"OARS could not decide this tool call, so it is denied: no decision within 50ms"}`, stdout)
	assert.Contains(t, stderr, "no decision within 50ms")
}

func TestHookRemote(t *testing.T) {
	clearHookEnv(t)
	ctx := context.Background()
	p, err := policy.LoadFile(hookPolicy)
	require.NoError(t, err)
	set, err := policy.NewSet(p)
	require.NoError(t, err)
	signer, err := receipt.NewEd25519Signer("hook-test", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	l, err := ledger.New(ctx, ledger.NewMemStore())
	require.NoError(t, err)
	g, err := oars.New(set, keys, l)
	require.NoError(t, err)
	const secret = "oars_hooktestsecretPLANTEDaaaaaaaaaaaaaaaaaaaaaaaa"
	auth, err := identity.NewTokenSet([]identity.Token{{
		Name: "alice-laptop", Hash: identity.HashToken(secret), Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{"acme"},
	}})
	require.NoError(t, err)
	h, err := httpapi.New(httpapi.Config{Guard: g, Keys: keys, Auth: auth})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	defer srv.Close()

	tests := []struct {
		name      string
		args      []string
		event     string
		wantCode  int
		stdoutHas string
		stderrHas string
	}{
		{"allow", nil, `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":{"command":"git log"},"tool_use_id":"t1"}`,
			0, `"permissionDecision":"allow"`, ""},
		{"deny", nil, `{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"rm -rf /"}}`,
			0, `{"decision":"deny","reason":"OARS denied this tool call: deleting files is not allowed (receipt `, ""},
		{"malformed", nil, `{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":[]}`,
			2, `{"decision":"deny"`, "malformed event"},
		{"another tenant", []string{"--tenant", "globex"}, `{"hook_event_name":"BeforeTool","tool_name":"x","tool_input":{}}`,
			2, `{"decision":"deny"`, "HTTP 404 Not Found: not_found: tenant not found"},
		{"bad token", []string{"--token", "oars_wrong"}, `{"hook_event_name":"BeforeTool","tool_name":"x","tool_input":{}}`,
			2, `{"decision":"deny"`, "HTTP 401"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			agent := "gemini"
			if strings.Contains(tt.event, "PreToolUse") {
				agent = "claude-code"
			}
			args := append([]string{"hook", agent, "--server", srv.URL, "--token", secret}, tt.args...)
			code, stdout, stderr := runCLI(t, strings.NewReader(tt.event), args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr)
			assert.Contains(t, stdout, tt.stdoutHas)
			if tt.stderrHas == "" {
				assert.Empty(t, stderr)
			} else {
				assert.Contains(t, stderr, tt.stderrHas)
			}
			assert.NotContains(t, stdout+stderr, secret)
		})
	}
	// The decisions are the caller's.
	size, err := l.Size(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, size)
	leaves, err := l.Store().ReadLeaves(ctx, 0, 1)
	require.NoError(t, err)
	var r receipt.Receipt
	require.NoError(t, json.Unmarshal(leaves[0], &r))
	assert.Equal(t, "acme", r.TenantID)
	assert.Equal(t, "claude-code", r.AgentID)
	assert.Equal(t, "alice-laptop", r.Principal.UserID)
}

func TestHookInstall(t *testing.T) {
	const command = "/opt/bin/oars hook claude-code --policy /etc/oars/hooks.yaml"
	dir := t.TempDir()
	settings := filepath.Join(dir, "settings.json")
	require.NoError(t, os.WriteFile(settings, []byte(`{"model":"opus","env":{"A":"1"}}`), 0o600))

	code, stdout, stderr := runCLI(t, nil, "hook", "install", "claude-code", "--settings", settings, "--command", command)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Equal(t, "installed the OARS hook for claude-code in "+settings+" (the previous file is "+settings+".bak)\ncommand: "+command+"\n", stdout)
	backup, err := os.ReadFile(settings + ".bak")
	require.NoError(t, err)
	assert.Equal(t, `{"model":"opus","env":{"A":"1"}}`, string(backup))
	first, err := os.ReadFile(settings)
	require.NoError(t, err)
	var s struct {
		Model string            `json:"model"`
		Env   map[string]string `json:"env"`
		Hooks map[string][]struct {
			Matcher string `json:"matcher"`
			Hooks   []struct {
				Type, Command string
			} `json:"hooks"`
		} `json:"hooks"`
	}
	require.NoError(t, json.Unmarshal(first, &s))
	assert.Equal(t, "opus", s.Model)
	assert.Equal(t, map[string]string{"A": "1"}, s.Env)
	for _, event := range []string{"PreToolUse", "PostToolUse", "PostToolUseFailure"} {
		require.Len(t, s.Hooks[event], 1, event)
		assert.Equal(t, "*", s.Hooks[event][0].Matcher)
		assert.Equal(t, command, s.Hooks[event][0].Hooks[0].Command)
	}

	// Twice: nothing changes.
	code, stdout, _ = runCLI(t, nil, "hook", "install", "claude-code", "--settings", settings, "--command", command)
	require.Equal(t, 0, code)
	assert.Equal(t, "the OARS hook for claude-code is already installed in "+settings+"\ncommand: "+command+"\n", stdout)
	second, err := os.ReadFile(settings)
	require.NoError(t, err)
	assert.Equal(t, first, second)

	// Invalid JSON: a clear error, nothing written.
	bad := filepath.Join(dir, "bad.json")
	require.NoError(t, os.WriteFile(bad, []byte(`{"model":"opus" "x":1}`), 0o600))
	code, _, stderr = runCLI(t, nil, "hook", "install", "claude-code", "--settings", bad, "--command", command)
	assert.Equal(t, 1, code)
	assert.Equal(t, "oars hook install: "+bad+": hook: install: invalid JSON: json: syntax error (offset 16)\n", stderr)
	assert.NoFileExists(t, bad+".bak")

	// Cursor, into a new file; the default command is this executable.
	cursorFile := filepath.Join(dir, ".cursor", "hooks.json")
	code, _, stderr = runCLI(t, nil, "hook", "install", "cursor", "--settings", cursorFile, "--", "--tenant", "acme corp")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	data, err := os.ReadFile(cursorFile)
	require.NoError(t, err)
	exe, err := os.Executable()
	require.NoError(t, err)
	exe, err = filepath.EvalSymlinks(exe)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"command": "`+shellQuote(exe)+` hook cursor --tenant 'acme corp'"`)
	assert.Contains(t, string(data), `"version": 1`)

	// --print prints the snippet and edits nothing.
	code, stdout, _ = runCLI(t, nil, "hook", "install", "cursor", "--print", "--command", "oars hook cursor")
	require.Equal(t, 0, code)
	assert.JSONEq(t, `{"version":1,"hooks":{
		"beforeShellExecution":[{"command":"oars hook cursor","failClosed":true}],
		"beforeMCPExecution":[{"command":"oars hook cursor","failClosed":true}],
		"beforeReadFile":[{"command":"oars hook cursor","failClosed":true}]}}`, stdout)

	for _, args := range [][]string{
		{"hook", "install"},
		{"hook", "install", "gemini"},
		{"hook", "install", "claude-code", "--command", "x", "--", "--tenant", "y"},
		{"hook", "install", "claude-code", "--bogus"},
	} {
		code, _, _ := runCLI(t, nil, args...)
		assert.Equal(t, 2, code, "oars %s", strings.Join(args, " "))
	}
}

func TestHookUsage(t *testing.T) {
	code, _, stderr := runCLI(t, nil, "hook")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "usage: oars hook AGENT")
	code, stdout, _ := runCLI(t, nil, "hook", "--help")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "oars hook install")
	code, stdout, _ = runCLI(t, nil, "hook", "claude-code", "-h")
	assert.Equal(t, 0, code)
	assert.Contains(t, stdout, "usage: oars hook AGENT")
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/local/bin/oars", "/usr/local/bin/oars"},
		{"--policy=/etc/x.yaml", "--policy=/etc/x.yaml"},
		{"/Users/a b/oars", "'/Users/a b/oars'"},
		{"it's", `'it'\''s'`},
		{"", "''"},
		{"$HOME", "'$HOME'"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, shellQuote(tt.in), "shellQuote(%q)", tt.in)
	}
}
