package hook_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/hook"
	"github.com/oarsdev/oars/receipt"
)

// claudeEvent returns a Claude Code (or Codex) event for a Bash command.
func claudeEvent(name, command, toolUseID string) string {
	b, _ := json.Marshal(map[string]any{
		"session_id": "sess-1", "cwd": "/home/dev/project", "hook_event_name": name,
		"tool_name": "Bash", "tool_input": map[string]any{"command": command}, "tool_use_id": toolUseID,
	})
	return string(b)
}

func TestHandle(t *testing.T) {
	const (
		denyRm  = `deleting files is not allowed`
		askKube = `deploys need a second person`
	)
	tests := []struct {
		name       string
		agent      hook.Agent
		event      string
		wantExit   int
		wantStdout string // exact; "" for none
		wantStderr string // substring; "" for none at all
	}{
		{"claude allow", hook.ClaudeCode, claudeEvent("PreToolUse", "ls -l", "toolu_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"OARS allowed this tool call: ls, git and go may run (receipt id-1)"}}`, ""},
		{"claude deny", hook.ClaudeCode, claudeEvent("PreToolUse", "rm -rf /", "toolu_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: ` + denyRm + ` (receipt id-1)"}}`, ""},
		{"claude ask", hook.ClaudeCode, claudeEvent("PreToolUse", "kubectl apply -f x.yaml", "toolu_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"ask","permissionDecisionReason":"OARS policy requires approval for this tool call: ` + askKube + ` (receipt id-1)"}}`, ""},
		{"claude default deny", hook.ClaudeCode, claudeEvent("PreToolUse", "curl https://example.com", "toolu_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: policy coding-agents: default deny (receipt id-1)"}}`, ""},
		{"claude mcp tool", hook.ClaudeCode, `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"mcp__github__create_issue","tool_input":{"title":"x"},"tool_use_id":"t"}`, 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"OARS allowed this tool call: opening GitHub issues is allowed (receipt id-1)"}}`, ""},
		{"claude without ids", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Read","tool_input":{"file_path":"/w/a.go"}}`, 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"allow","permissionDecisionReason":"OARS allowed this tool call: reading files is allowed (receipt id-2)"}}`, ""},
		{"claude malformed input", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":[1]}`, 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: hook: malformed event: claude-code: tool_input is not a JSON object"}}`,
			"so it is denied: hook: malformed event"},
		{"claude not json", hook.ClaudeCode, `{"hook_event_name":`, 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: hook: malformed event: claude-code: json: syntax error at /hook_event_name (offset 19)"}}`,
			"syntax error"},
		{"claude duplicate member", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Read","tool_name":"Bash","tool_input":{}}`, 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: hook: malformed event: claude-code: json: duplicate key at /tool_name (offset 51)"}}`,
			"duplicate key"},
		{"claude other event", hook.ClaudeCode, `{"session_id":"s","hook_event_name":"Stop"}`, 0, "", ""},

		{"codex allow", hook.Codex, claudeEvent("PreToolUse", "git status", "call_1"), 0, `{}`, ""},
		{"codex deny", hook.Codex, claudeEvent("PreToolUse", "rm -rf /", "call_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: ` + denyRm + ` (receipt id-1)"}}`, ""},
		{"codex ask is deny", hook.Codex, claudeEvent("PreToolUse", "kubectl delete pod x", "call_1"), 0,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: it needs approval, which codex cannot ask for: ` + askKube + ` (receipt id-1)"}}`, ""},
		{"codex argv command", hook.Codex, `{"session_id":"s","hook_event_name":"PreToolUse","tool_name":"shell","tool_input":{"command":["bash","-lc","ls -la"]},"tool_use_id":"c"}`, 0, `{}`, ""},

		{"cursor shell allow", hook.Cursor, `{"hook_event_name":"beforeShellExecution","conversation_id":"c1","command":"go test ./...","cwd":"/w"}`, 0,
			`{"permission":"allow"}`, ""},
		{"cursor shell deny", hook.Cursor, `{"hook_event_name":"beforeShellExecution","conversation_id":"c1","command":"rm -rf build","cwd":"/w"}`, 0,
			`{"permission":"deny","user_message":"OARS denied this tool call: ` + denyRm + ` (receipt id-2)","agent_message":"OARS denied this tool call: ` + denyRm + ` (receipt id-2)"}`, ""},
		{"cursor shell ask", hook.Cursor, `{"hook_event_name":"beforeShellExecution","conversation_id":"c1","command":"kubectl apply -f k.yaml","cwd":"/w"}`, 0,
			`{"permission":"ask","user_message":"OARS policy requires approval for this tool call: ` + askKube + ` (receipt id-2)","agent_message":"OARS policy requires approval for this tool call: ` + askKube + ` (receipt id-2)"}`, ""},
		{"cursor read allow", hook.Cursor, `{"hook_event_name":"beforeReadFile","conversation_id":"c1","file_path":"/w/.env","content":"SECRET=1"}`, 0,
			`{"permission":"allow"}`, ""},
		{"cursor mcp string input", hook.Cursor, `{"hook_event_name":"beforeMCPExecution","conversation_id":"c1","tool_name":"mcp__github__create_issue","tool_input":"{\"title\":\"x\"}"}`, 0,
			`{"permission":"allow"}`, ""},
		{"cursor preToolUse ask is deny", hook.Cursor, `{"hook_event_name":"preToolUse","conversation_id":"c1","tool_name":"Shell","tool_input":{"command":"kubectl get pods"},"tool_use_id":"u1"}`, 0,
			`{"permission":"deny","user_message":"OARS denied this tool call: it needs approval, which cursor cannot ask for: ` + askKube + ` (receipt id-1)","agent_message":"OARS denied this tool call: it needs approval, which cursor cannot ask for: ` + askKube + ` (receipt id-1)"}`, ""},
		{"cursor malformed", hook.Cursor, `{"hook_event_name":"beforeShellExecution","conversation_id":"c1"}`, 2,
			`{"permission":"deny","user_message":"OARS could not decide this tool call, so it is denied: hook: malformed event: cursor: beforeShellExecution without command","agent_message":"OARS could not decide this tool call, so it is denied: hook: malformed event: cursor: beforeShellExecution without command"}`,
			"without command"},
		{"cursor after event", hook.Cursor, `{"hook_event_name":"afterShellExecution","conversation_id":"c1","command":"ls","output":"a"}`, 0, `{}`, ""},

		{"gemini allow", hook.Gemini, `{"session_id":"g1","cwd":"/w","hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"ls"}}`, 0,
			`{"decision":"allow"}`, ""},
		{"gemini deny", hook.Gemini, `{"session_id":"g1","cwd":"/w","hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"rm -r x"}}`, 0,
			`{"decision":"deny","reason":"OARS denied this tool call: ` + denyRm + ` (receipt id-2)"}`, ""},
		{"gemini ask is deny", hook.Gemini, `{"session_id":"g1","cwd":"/w","hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"kubectl apply"}}`, 0,
			`{"decision":"deny","reason":"OARS denied this tool call: it needs approval, which gemini cannot ask for: ` + askKube + ` (receipt id-2)"}`, ""},
		{"gemini malformed", hook.Gemini, `{"session_id":"g1","hook_event_name":"BeforeTool","tool_input":{}}`, 2,
			`{"decision":"deny","reason":"OARS could not decide this tool call, so it is denied: hook: malformed event: gemini: BeforeTool without tool_name"}`, "without tool_name"},
		{"gemini after tool", hook.Gemini, `{"session_id":"g1","hook_event_name":"AfterTool","tool_name":"read_file","tool_input":{},"tool_response":{"llmContent":"x"}}`, 0, `{}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuard(t)
			ans := hook.Handle(context.Background(), g.Guard, tt.agent, []byte(tt.event), hook.Options{Principal: oars.Principal{UserID: "alice"}})
			assert.Equal(t, tt.wantExit, ans.ExitCode, "Handle(%s).ExitCode", tt.event)
			assert.Equal(t, tt.wantStdout, string(ans.Stdout), "Handle(%s).Stdout", tt.event)
			if tt.wantStderr == "" {
				assert.Empty(t, ans.Stderr, "Handle(%s).Stderr", tt.event)
			} else {
				assert.Contains(t, ans.Stderr, tt.wantStderr, "Handle(%s).Stderr", tt.event)
			}
			if tt.wantStdout != "" {
				assert.True(t, json.Valid(ans.Stdout), "stdout is not JSON: %s", ans.Stdout)
			}
			g.verifyLedger(t)
		})
	}
}

func TestHandleInternalErrorDenies(t *testing.T) {
	for _, agent := range hook.Agents() {
		t.Run(string(agent), func(t *testing.T) {
			g := newTestGuard(t)
			event := map[hook.Agent]string{
				hook.ClaudeCode: claudeEvent("PreToolUse", "ls", "t1"),
				hook.Codex:      claudeEvent("PreToolUse", "ls", "t1"),
				hook.Cursor:     `{"hook_event_name":"beforeShellExecution","command":"ls"}`,
				hook.Gemini:     `{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"ls"}}`,
			}[agent]
			require.NoError(t, g.store.Close()) // the ledger fails
			ans := hook.Handle(context.Background(), g.Guard, agent, []byte(event), hook.Options{})
			assert.Equal(t, 2, ans.ExitCode, "ExitCode")
			assert.Contains(t, ans.Stderr, "OARS could not decide this tool call, so it is denied")
			assert.Contains(t, string(ans.Stdout), "deny")
		})
	}
}

func TestRecord(t *testing.T) {
	ctx := context.Background()
	opts := hook.Options{Principal: oars.Principal{UserID: "alice"}}
	parse := func(t *testing.T, agent hook.Agent, s string) *hook.Event {
		t.Helper()
		ev, err := hook.Parse(agent, []byte(s))
		require.NoError(t, err)
		return ev
	}
	post := func(command, toolUseID, response string) string {
		return strings.TrimSuffix(claudeEvent("PostToolUse", command, toolUseID), "}") + `,"tool_response":` + response + `}`
	}
	failure := func(command, toolUseID string) string {
		return strings.TrimSuffix(claudeEvent("PostToolUseFailure", command, toolUseID), "}") + `,"error":"exit status 1"}`
	}

	t.Run("executed", func(t *testing.T) {
		g := newTestGuard(t)
		d, err := hook.Decide(ctx, g.Guard, parse(t, hook.ClaudeCode, claudeEvent("PreToolUse", "ls -l", "toolu_9")), opts)
		require.NoError(t, err)
		require.Equal(t, hook.Allow, d.Verdict)
		out, err := hook.Record(ctx, g.Guard, parse(t, hook.ClaudeCode, post("ls -l", "toolu_9", `{"stdout":"a.go","stderr":""}`)), opts)
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusExecuted, out.Status)
		rs := g.chain(t, d.ActionID)
		assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, statuses(rs))
		want, err := receipt.DigestJSON([]byte(`{"stdout":"a.go","stderr":""}`))
		require.NoError(t, err)
		assert.Equal(t, want, rs[2].OutputDigest, "output digest")

		// The same ids with another call are refused, not replayed.
		_, err = hook.Record(ctx, g.Guard, parse(t, hook.ClaudeCode, post("rm -rf /", "toolu_9", `"x"`)), opts)
		assert.ErrorIs(t, err, oars.ErrApprovalMismatch)

		// The hook run twice records once.
		again, err := hook.Record(ctx, g.Guard, parse(t, hook.ClaudeCode, post("ls -l", "toolu_9", `{"stdout":"a.go","stderr":""}`)), opts)
		require.NoError(t, err)
		assert.True(t, again.Replayed)
		assert.Len(t, g.chain(t, d.ActionID), 3)
		g.verifyLedger(t)
	})

	t.Run("failed", func(t *testing.T) {
		g := newTestGuard(t)
		d, err := hook.Decide(ctx, g.Guard, parse(t, hook.Codex, claudeEvent("PreToolUse", "go test ./...", "call_3")), opts)
		require.NoError(t, err)
		out, err := hook.Record(ctx, g.Guard, parse(t, hook.Codex, failure("go test ./...", "call_3")), opts)
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusFailed, out.Status)
		rs := g.chain(t, d.ActionID)
		assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusFailed}, statuses(rs))
		assert.Equal(t, "tool_error", rs[2].ErrorClass)
		g.verifyLedger(t)
	})

	tests := []struct {
		name    string
		pre     string // "" for no before-tool event
		post    string
		opts    hook.Options
		wantErr error
	}{
		{"no decision", "", post("ls", "toolu_1", `"x"`), opts, hook.ErrNoDecision},
		{"held for approval", claudeEvent("PreToolUse", "kubectl apply", "toolu_1"), post("kubectl apply", "toolu_1", `"ok"`), opts, hook.ErrNotRecorded},
		{"denied", claudeEvent("PreToolUse", "rm -rf x", "toolu_1"), post("rm -rf x", "toolu_1", `"ok"`), opts, hook.ErrNotRecorded},
		{"another call", claudeEvent("PreToolUse", "ls", "toolu_1"), post("ls -R /", "toolu_1", `"ok"`), opts, oars.ErrApprovalMismatch},
		{"another user", claudeEvent("PreToolUse", "ls", "toolu_1"), post("ls", "toolu_1", `"ok"`), hook.Options{Principal: oars.Principal{UserID: "mallory"}}, hook.ErrNoDecision},
		{"another agent id", claudeEvent("PreToolUse", "ls", "toolu_1"), post("ls", "toolu_1", `"ok"`), hook.Options{AgentID: "bot-2", Principal: oars.Principal{UserID: "alice"}}, hook.ErrNoDecision},
		{"no tool-call id", claudeEvent("PreToolUse", "ls", ""), post("ls", "", `"ok"`), opts, hook.ErrNoDecision},
		{"before-tool event", "", claudeEvent("PreToolUse", "ls", "toolu_1"), opts, hook.ErrPhase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := newTestGuard(t)
			if tt.pre != "" {
				_, err := hook.Decide(ctx, g.Guard, parse(t, hook.ClaudeCode, tt.pre), opts)
				require.NoError(t, err)
			}
			size, err := g.Ledger().Size(ctx)
			require.NoError(t, err)
			_, err = hook.Record(ctx, g.Guard, parse(t, hook.ClaudeCode, tt.post), tt.opts)
			assert.ErrorIs(t, err, tt.wantErr, "Record")
			after, err := g.Ledger().Size(ctx)
			require.NoError(t, err)
			assert.Equal(t, size, after, "Record recorded something")
			// Through Handle, a recording failure exits 1: the call
			// already ran, nothing is blocked.
			if !errors.Is(tt.wantErr, hook.ErrPhase) {
				ans := hook.Handle(ctx, g.Guard, hook.ClaudeCode, []byte(tt.post), tt.opts)
				assert.Equal(t, 1, ans.ExitCode, "Handle exit code")
				assert.Empty(t, ans.Stdout)
				assert.NotEmpty(t, ans.Stderr)
			}
		})
	}
}

func TestDecideIsIdempotent(t *testing.T) {
	ctx := context.Background()
	g := newTestGuard(t)
	ev, err := hook.Parse(hook.ClaudeCode, []byte(claudeEvent("PreToolUse", "ls", "toolu_1")))
	require.NoError(t, err)
	first, err := hook.Decide(ctx, g.Guard, ev, hook.Options{})
	require.NoError(t, err)
	second, err := hook.Decide(ctx, g.Guard, ev, hook.Options{})
	require.NoError(t, err)
	assert.Equal(t, first, second, "a hook run twice for one call decides once")
	size, err := g.Ledger().Size(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 1, size)
	// The same tool-call id in another session is another call.
	other, err := hook.Parse(hook.ClaudeCode, []byte(strings.Replace(claudeEvent("PreToolUse", "ls", "toolu_1"), "sess-1", "sess-2", 1)))
	require.NoError(t, err)
	third, err := hook.Decide(ctx, g.Guard, other, hook.Options{})
	require.NoError(t, err)
	assert.NotEqual(t, first.ActionID, third.ActionID)
}

func TestAction(t *testing.T) {
	tests := []struct {
		name  string
		agent hook.Agent
		event string
		want  oars.Resource
		input string // "" to skip the check
	}{
		{"claude bash", hook.ClaudeCode, claudeEvent("PreToolUse", "FOO=1 /usr/bin/rm -rf /tmp/x", "t"), oars.Resource{ToolID: "claude-code:Bash", Operation: "shell", Target: "rm"}, ""},
		{"claude quoted program", hook.ClaudeCode, claudeEvent("PreToolUse", `"./run tests.sh" a`, "t"), oars.Resource{ToolID: "claude-code:Bash", Operation: "shell", Target: "run"}, ""},
		{"claude write", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Write","tool_input":{"file_path":"/w/main.go","content":"package main"}}`, oars.Resource{ToolID: "claude-code:Write", Operation: "write", Target: "/w/main.go"}, `{"file_path":"/w/main.go","content":"package main"}`},
		{"claude fetch", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"WebFetch","tool_input":{"url":"https://go.dev","prompt":"x"}}`, oars.Resource{ToolID: "claude-code:WebFetch", Operation: "fetch", Target: "https://go.dev"}, ""},
		{"claude task", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Task","tool_input":{"prompt":"x"}}`, oars.Resource{ToolID: "claude-code:Task", Operation: "call"}, ""},
		{"claude mcp", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"mcp__jira__create_ticket","tool_input":{}}`, oars.Resource{ToolID: "mcp:jira", Operation: "create_ticket"}, `{}`},
		{"claude no input", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"TodoWrite"}`, oars.Resource{ToolID: "claude-code:TodoWrite", Operation: "call"}, `{}`},
		{"codex apply_patch", hook.Codex, `{"hook_event_name":"PreToolUse","tool_name":"apply_patch","tool_input":{"command":"*** Begin Patch\n*** Update File: src/a.go\n@@\n-x\n+y\n*** End Patch"}}`, oars.Resource{ToolID: "codex:apply_patch", Operation: "write", Target: "src/a.go"}, ""},
		{"codex argv", hook.Codex, `{"hook_event_name":"PreToolUse","tool_name":"shell","tool_input":{"command":["/bin/rm","-f","x"]}}`, oars.Resource{ToolID: "codex:shell", Operation: "shell", Target: "rm"}, ""},
		{"gemini read", hook.Gemini, `{"hook_event_name":"BeforeTool","tool_name":"read_file","tool_input":{"absolute_path":"/w/go.mod"}}`, oars.Resource{ToolID: "gemini:read_file", Operation: "read", Target: "/w/go.mod"}, ""},
		{"gemini mcp", hook.Gemini, `{"hook_event_name":"BeforeTool","tool_name":"mcp__github__list_prs","tool_input":{}}`, oars.Resource{ToolID: "mcp:github", Operation: "list_prs"}, ""},
		{"cursor shell", hook.Cursor, `{"hook_event_name":"beforeShellExecution","command":"npm install","cwd":"/w"}`, oars.Resource{ToolID: "cursor:Shell", Operation: "shell", Target: "npm"}, `{"command":"npm install","cwd":"/w"}`},
		{"cursor read without content", hook.Cursor, `{"hook_event_name":"beforeReadFile","file_path":"/w/.env","content":"SECRET=1"}`, oars.Resource{ToolID: "cursor:Read", Operation: "read", Target: "/w/.env"}, `{"file_path":"/w/.env"}`},
		{"cursor mcp by url", hook.Cursor, `{"hook_event_name":"beforeMCPExecution","tool_name":"query","tool_input":{"sql":"select 1"},"url":"https://db.example.com/mcp"}`, oars.Resource{ToolID: "mcp:db.example.com", Operation: "query"}, `{"sql":"select 1"}`},
		{"cursor mcp by command", hook.Cursor, `{"hook_event_name":"beforeMCPExecution","tool_name":"query","tool_input":"{\"sql\":\"select 1\"}","command":"npx db-mcp"}`, oars.Resource{ToolID: "mcp:stdio", Operation: "query"}, `{"sql":"select 1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := hook.Parse(tt.agent, []byte(tt.event))
			require.NoError(t, err)
			a, err := ev.Action(hook.Options{})
			require.NoError(t, err)
			assert.Equal(t, tt.want, a.Resource, "Action(%s).Resource", tt.event)
			assert.Equal(t, hook.DefaultTenant, a.TenantID)
			assert.Equal(t, string(tt.agent), a.AgentID)
			assert.Equal(t, string(tt.agent), a.Request["agent"])
			if tt.input != "" {
				assert.JSONEq(t, tt.input, string(a.Input), "Action(%s).Input", tt.event)
			}
		})
	}
}

func TestActionOptions(t *testing.T) {
	ev, err := hook.Parse(hook.ClaudeCode, []byte(claudeEvent("PreToolUse", "ls", "toolu_1")))
	require.NoError(t, err)
	a, err := ev.Action(hook.Options{TenantID: "acme", AgentID: "bot-7", Principal: oars.Principal{UserID: "alice"}, Request: map[string]string{"ip": "10.0.0.1"}})
	require.NoError(t, err)
	assert.Equal(t, "acme", a.TenantID)
	assert.Equal(t, "bot-7", a.AgentID)
	assert.Equal(t, "alice", a.Principal.UserID)
	assert.Equal(t, map[string]string{
		"agent": "claude-code", "event": "PreToolUse", "session_id": "sess-1", "tool_use_id": "toolu_1",
		"tool_name": "Bash", "cwd": "/home/dev/project", "ip": "10.0.0.1",
	}, a.Request)
	assert.NotEmpty(t, a.IdempotencyKey)

	other, err := hook.Parse(hook.ClaudeCode, []byte(`{"hook_event_name":"Notification"}`))
	require.NoError(t, err)
	_, err = other.Action(hook.Options{})
	assert.ErrorIs(t, err, hook.ErrPhase)
}

func TestParse(t *testing.T) {
	tests := []struct {
		name      string
		agent     hook.Agent
		event     string
		wantPhase hook.Phase
		wantErr   bool
	}{
		{"claude pre", hook.ClaudeCode, claudeEvent("PreToolUse", "ls", "t"), hook.Before, false},
		{"claude post", hook.ClaudeCode, claudeEvent("PostToolUse", "ls", "t"), hook.After, false},
		{"claude post failure", hook.ClaudeCode, claudeEvent("PostToolUseFailure", "ls", "t"), hook.After, false},
		{"claude session start", hook.ClaudeCode, `{"hook_event_name":"SessionStart","source":"startup"}`, hook.Other, false},
		{"claude unknown members", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Read","tool_input":{},"new_field":[1,2]}`, hook.Before, false},
		{"claude no event name", hook.ClaudeCode, `{"tool_name":"Read","tool_input":{}}`, 0, true},
		{"claude no tool", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_input":{}}`, 0, true},
		{"claude wrong type", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":7}`, 0, true},
		{"claude string input", hook.ClaudeCode, `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}`, 0, true},
		{"invalid utf-8", hook.ClaudeCode, "{\"hook_event_name\":\"PreToolUse\",\"tool_name\":\"\xff\",\"tool_input\":{}}", 0, true},
		{"trailing data", hook.Gemini, `{"hook_event_name":"BeforeTool","tool_name":"x","tool_input":{}} {}`, 0, true},
		{"empty", hook.Gemini, ``, 0, true},
		{"array", hook.Gemini, `[]`, 0, true},
		{"cursor stop", hook.Cursor, `{"hook_event_name":"stop","status":"completed"}`, hook.Other, false},
		{"cursor mcp bad string", hook.Cursor, `{"hook_event_name":"beforeMCPExecution","tool_name":"q","tool_input":"{nope"}`, 0, true},
		{"cursor read without path", hook.Cursor, `{"hook_event_name":"beforeReadFile"}`, 0, true},
		{"gemini before", hook.Gemini, `{"hook_event_name":"BeforeTool","tool_name":"glob","tool_input":{"pattern":"*.go"}}`, hook.Before, false},
		{"gemini after", hook.Gemini, `{"hook_event_name":"AfterTool","tool_name":"glob","tool_input":{}}`, hook.Other, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := hook.Parse(tt.agent, []byte(tt.event))
			if tt.wantErr {
				assert.ErrorIs(t, err, hook.ErrMalformed, "Parse(%q)", tt.event)
				return
			}
			require.NoError(t, err, "Parse(%q)", tt.event)
			assert.Equal(t, tt.wantPhase, ev.Phase, "Parse(%q).Phase", tt.event)
		})
	}
	_, err := hook.Parse("copilot", []byte(`{}`))
	assert.ErrorIs(t, err, hook.ErrUnknownAgent)
}

func TestFail(t *testing.T) {
	tests := []struct {
		name       string
		agent      hook.Agent
		event      string
		wantExit   int
		wantStdout string
	}{
		{"claude before", hook.ClaudeCode, claudeEvent("PreToolUse", "ls", "t"), 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: boom"}}`},
		{"claude garbage", hook.ClaudeCode, `garbage`, 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: boom"}}`},
		{"claude after", hook.ClaudeCode, claudeEvent("PostToolUse", "ls", "t"), 1, ""},
		{"claude other", hook.ClaudeCode, `{"hook_event_name":"Stop"}`, 0, ""},
		{"codex before", hook.Codex, claudeEvent("PreToolUse", "ls", "t"), 2,
			`{"hookSpecificOutput":{"hookEventName":"PreToolUse","permissionDecision":"deny","permissionDecisionReason":"OARS could not decide this tool call, so it is denied: boom"}}`},
		{"cursor before", hook.Cursor, `{"hook_event_name":"beforeReadFile","file_path":"x"}`, 2,
			`{"permission":"deny","user_message":"OARS could not decide this tool call, so it is denied: boom","agent_message":"OARS could not decide this tool call, so it is denied: boom"}`},
		{"cursor other", hook.Cursor, `{"hook_event_name":"afterFileEdit"}`, 0, `{}`},
		{"gemini garbage", hook.Gemini, `{`, 2, `{"decision":"deny","reason":"OARS could not decide this tool call, so it is denied: boom"}`},
		{"gemini other", hook.Gemini, `{"hook_event_name":"SessionStart"}`, 0, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ans := hook.Fail(tt.agent, []byte(tt.event), "boom")
			assert.Equal(t, tt.wantExit, ans.ExitCode, "Fail(%s).ExitCode", tt.event)
			assert.Equal(t, tt.wantStdout, string(ans.Stdout), "Fail(%s).Stdout", tt.event)
			assert.Contains(t, ans.Stderr, "boom", "Fail(%s).Stderr", tt.event)
		})
	}
	ans := hook.Fail("copilot", nil, "boom")
	assert.Equal(t, 2, ans.ExitCode, "an unknown agent blocks")
}

func TestAnswerWrite(t *testing.T) {
	var out, errOut strings.Builder
	code := hook.Answer{ExitCode: 2, Stdout: json.RawMessage(`{"a":1}`), Stderr: "no"}.Write(&out, &errOut)
	assert.Equal(t, 2, code)
	assert.Equal(t, "{\"a\":1}\n", out.String())
	assert.Equal(t, "no\n", errOut.String())

	b, err := json.Marshal(hook.Answer{ExitCode: 0, Stdout: json.RawMessage(`{"permission":"allow"}`)})
	require.NoError(t, err)
	assert.JSONEq(t, `{"exit_code":0,"stdout":{"permission":"allow"}}`, string(b))
}

func TestReasonIsBounded(t *testing.T) {
	ans := hook.Fail(hook.Gemini, nil, strings.Repeat("é", 5000))
	assert.LessOrEqual(t, len(ans.Stderr), 2048)
	assert.True(t, json.Valid(ans.Stdout))
}
