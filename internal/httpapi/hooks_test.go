package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/hook"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// policyHooks decides coding agents' tool calls.
const policyHooks = `
id: coding-agents
version: "1"
default: deny
rules:
  - id: reads
    when: action.operation == "read"
    effect: allow
    reason: reading files is allowed
  - id: safe-shell
    when: action.operation == "shell" && action.target in ["ls", "git", "go"]
    effect: allow
    reason: ls, git and go may run
  - id: no-rm
    when: action.operation == "shell" && action.target == "rm"
    effect: deny
    reason: deleting files is not allowed
  - id: deploys
    when: action.operation == "shell" && action.target == "kubectl"
    effect: require_approval
    reason: deploys need a second person
    approval:
      roles: [sre]
`

// scopedSecret authenticates as a principal whose scopes allow reading
// only.
const scopedSecret = "scoped-PLANTED-token"

var scopedAuth = identity.AuthenticatorFunc(func(_ context.Context, r *http.Request) (*identity.Principal, error) {
	if r.Header.Get("Authorization") != "Bearer "+scopedSecret {
		return nil, identity.ErrNoCredentials
	}
	return &identity.Principal{
		Subject: "reader", Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{ownTenant},
		UserID: "alice", Groups: []string{"dev"}, Scopes: []string{"*:read"},
	}, nil
})

func bashEvent(name, command, toolUseID string) string {
	b, _ := json.Marshal(map[string]any{
		"session_id": "sess-1", "cwd": "/home/dev/project", "hook_event_name": name,
		"tool_name": "Bash", "tool_input": map[string]any{"command": command}, "tool_use_id": toolUseID,
	})
	return string(b)
}

// hookAnswer decodes the body of POST /v1/hooks/{agent}.
func hookAnswer(t *testing.T, resp response) hook.Answer {
	t.Helper()
	require.Equal(t, http.StatusOK, resp.status, "body %s", resp.body)
	var a hook.Answer
	require.NoError(t, json.Unmarshal(resp.body, &a), "body %s", resp.body)
	return a
}

func TestHooks(t *testing.T) {
	ts := newTestServer(t, options{policy: policyHooks, auth: scopedAuth})
	tests := []struct {
		name       string
		path       string
		token      string
		body       string
		wantExit   int
		wantStdout string // substring
		wantStderr string // substring
	}{
		{"allow", "/v1/hooks/claude-code", "agent", bashEvent("PreToolUse", "git status", "t1"), 0,
			`"permissionDecision":"allow","permissionDecisionReason":"OARS allowed this tool call: ls, git and go may run (receipt `, ""},
		{"deny", "/v1/hooks/claude-code", "agent", bashEvent("PreToolUse", "rm -rf /", "t2"), 0,
			`"permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: deleting files is not allowed (receipt `, ""},
		{"ask", "/v1/hooks/claude-code", "agent", bashEvent("PreToolUse", "kubectl apply", "t3"), 0,
			`"permissionDecision":"ask"`, ""},
		{"codex cannot ask", "/v1/hooks/codex", "agent", bashEvent("PreToolUse", "kubectl apply", "t4"), 0,
			`"permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: it needs approval, which codex cannot ask for`, ""},
		{"cursor", "/v1/hooks/cursor", "operator", `{"hook_event_name":"beforeReadFile","conversation_id":"c","file_path":"/w/a.go"}`, 0,
			`{"permission":"allow"}`, ""},
		{"gemini", "/v1/hooks/gemini", "agent", `{"session_id":"g","hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"rm x"}}`, 0,
			`{"decision":"deny","reason":"OARS denied this tool call: deleting files is not allowed`, ""},
		{"malformed", "/v1/hooks/claude-code", "agent", `{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_input":"ls"}`, 2,
			`"permissionDecision":"deny"`, "malformed event: claude-code: tool_input is not a JSON object"},
		{"neutral", "/v1/hooks/claude-code", "agent", `{"hook_event_name":"SessionStart"}`, 0, "", ""},
		{"all tenants with tenant_id", "/v1/hooks/claude-code?tenant_id=" + ownTenant, "root", bashEvent("PreToolUse", "ls", "t5"), 0,
			`"permissionDecision":"allow"`, ""},
		{"scope refuses", "/v1/hooks/claude-code", scopedSecret, bashEvent("PreToolUse", "ls", "t6"), 0,
			`"permissionDecision":"deny","permissionDecisionReason":"OARS denied this tool call: scope does not allow claude-code:Bash:shell (receipt `, ""},
		{"scope allows", "/v1/hooks/gemini", scopedSecret, `{"hook_event_name":"BeforeTool","tool_name":"read_file","tool_input":{"absolute_path":"/w/go.mod"}}`, 0,
			`{"decision":"allow"}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := request{method: "POST", path: tt.path, token: tt.token, body: tt.body}
			if tt.token == scopedSecret {
				req.token = ""
				req.header = map[string]string{"Authorization": "Bearer " + scopedSecret}
			}
			a := hookAnswer(t, ts.do(req))
			assert.Equal(t, tt.wantExit, a.ExitCode, "exit_code")
			if tt.wantStdout == "" {
				assert.Empty(t, a.Stdout)
			} else {
				assert.Contains(t, string(a.Stdout), tt.wantStdout)
			}
			if tt.wantStderr == "" {
				assert.Empty(t, a.Stderr)
			} else {
				assert.Contains(t, a.Stderr, tt.wantStderr)
			}
		})
	}

	// The receipts name the caller: its tenant, its bound agent, its
	// subject (or the user its credential acts for).
	v, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	rep, err := ledger.Verify(context.Background(), ts.ledger.Store(), receipt.NewLogChecker(v))
	require.NoError(t, err)
	assert.EqualValues(t, 9, rep.Size, "one receipt per decided event")
	leaves, err := ts.ledger.Store().ReadLeaves(context.Background(), 0, int(rep.Size))
	require.NoError(t, err)
	type who struct{ tenant, agent, user, tool, status string }
	var got []who
	for _, leaf := range leaves {
		r := ts.verify(t, leaf)
		got = append(got, who{r.TenantID, r.AgentID, r.Principal.UserID, r.Resource.ToolID, string(r.Status)})
	}
	assert.Equal(t, []who{
		{ownTenant, boundAgent, "agent", "claude-code:Bash", "allowed"},
		{ownTenant, boundAgent, "agent", "claude-code:Bash", "denied"},
		{ownTenant, boundAgent, "agent", "claude-code:Bash", "pending_approval"},
		{ownTenant, boundAgent, "agent", "codex:Bash", "pending_approval"},
		{ownTenant, "cursor", "operator", "cursor:Read", "allowed"},
		{ownTenant, boundAgent, "agent", "gemini:run_shell_command", "denied"},
		{ownTenant, "claude-code", "root", "claude-code:Bash", "allowed"},
		{ownTenant, "claude-code", "alice", "claude-code:Bash", "denied"},
		{ownTenant, "gemini", "alice", "gemini:read_file", "allowed"},
	}, got)
}

func TestHooksRecordExecution(t *testing.T) {
	ts := newTestServer(t, options{policy: policyHooks})
	post := func(body string) hook.Answer {
		return hookAnswer(t, ts.do(request{method: "POST", path: "/v1/hooks/claude-code", token: "agent", body: body}))
	}
	pre := post(bashEvent("PreToolUse", "go test ./...", "toolu_1"))
	require.Equal(t, 0, pre.ExitCode)
	require.Contains(t, string(pre.Stdout), `"permissionDecision":"allow"`)

	done := strings.TrimSuffix(bashEvent("PostToolUse", "go test ./...", "toolu_1"), "}") + `,"tool_response":{"stdout":"ok","stderr":""}}`
	for range 2 { // recorded once however often the hook runs
		a := post(done)
		assert.Equal(t, hook.Answer{}, a)
	}
	// Another caller cannot complete it.
	resp := ts.do(request{method: "POST", path: "/v1/hooks/claude-code", token: "operator", body: done})
	assert.Equal(t, 1, hookAnswer(t, resp).ExitCode)
	// A call nobody decided.
	orphan := post(strings.ReplaceAll(done, "toolu_1", "toolu_2"))
	assert.Equal(t, 1, orphan.ExitCode)
	assert.Contains(t, orphan.Stderr, "no decision recorded for this tool call")

	v, err := receipt.NewVerifier(ts.keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), ts.ledger.Store(), receipt.NewLogChecker(v))
	require.NoError(t, err)
	leaves, err := ts.ledger.Store().ReadLeaves(context.Background(), 0, 3)
	require.NoError(t, err)
	rs, err := v.VerifyChain(leaves)
	require.NoError(t, err)
	var statuses []receipt.Status
	for _, r := range rs {
		statuses = append(statuses, r.Status)
	}
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, statuses)
	assert.EqualValues(t, 3, ts.size())
}

func TestHooksRefused(t *testing.T) {
	ts := newTestServer(t, options{policy: policyHooks})
	event := bashEvent("PreToolUse", "ls", "t1")
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantCode   string
	}{
		{"no token", request{method: "POST", path: "/v1/hooks/claude-code", body: event}, http.StatusUnauthorized, "unauthorized"},
		{"auditor", request{method: "POST", path: "/v1/hooks/claude-code", token: "auditor", body: event}, http.StatusForbidden, "forbidden"},
		{"approver", request{method: "POST", path: "/v1/hooks/claude-code", token: "approver", body: event}, http.StatusForbidden, "forbidden"},
		{"unknown agent", request{method: "POST", path: "/v1/hooks/copilot", token: "agent", body: event}, http.StatusNotFound, "not_found"},
		{"foreign tenant", request{method: "POST", path: "/v1/hooks/claude-code?tenant_id=" + otherTenant, token: "operator", body: event}, http.StatusNotFound, "not_found"},
		{"tenant needed", request{method: "POST", path: "/v1/hooks/claude-code", token: "root", body: event}, http.StatusBadRequest, "validation_failed"},
		{"another agent", request{method: "POST", path: "/v1/hooks/claude-code?agent_id=bot-2", token: "agent", body: event}, http.StatusForbidden, "forbidden"},
		{"not json", request{method: "POST", path: "/v1/hooks/claude-code", token: "agent", body: event, contentType: "text/plain"}, http.StatusUnsupportedMediaType, "unsupported_media_type"},
		{"get", request{method: "GET", path: "/v1/hooks/claude-code", token: "agent"}, http.StatusMethodNotAllowed, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := ts.do(tt.req)
			require.Equal(t, tt.wantStatus, resp.status, "body %s", resp.body)
			assert.Equal(t, tt.wantCode, resp.errorBody(t).Error.Code)
		})
	}
	assert.EqualValues(t, 0, ts.size(), "nothing recorded")

	big := newTestServer(t, options{policy: policyHooks, maxBodyBytes: 64})
	resp := big.do(request{method: "POST", path: "/v1/hooks/claude-code", token: "agent", body: event})
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.status)
}

func TestHooksFailClosedOnLedgerError(t *testing.T) {
	ts := newTestServer(t, options{policy: policyHooks})
	require.NoError(t, ts.ledger.Store().(interface{ Close() error }).Close())
	a := hookAnswer(t, ts.do(request{method: "POST", path: "/v1/hooks/gemini", token: "agent",
		body: `{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":"ls"}}`}))
	assert.Equal(t, 2, a.ExitCode)
	assert.Contains(t, string(a.Stdout), `{"decision":"deny"`)
	assert.Contains(t, a.Stderr, "oarsd could not handle the event (request id ")
	assert.NotContains(t, a.Stderr, "sqlite", "the cause is logged, not sent")
	assert.Contains(t, ts.logs.String(), "hook event not handled; answered fail-closed")
}
