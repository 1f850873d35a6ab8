package hook

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"path"
	"strings"
	"unicode/utf8"

	"github.com/oarsdev/oars"
)

// Operations of the agents' built-in tools (see the package
// documentation). An MCP tool's operation is its own name.
const (
	OpShell = "shell"
	OpRead  = "read"
	OpWrite = "write"
	OpFetch = "fetch"
	OpCall  = "call"
)

// builtinOps maps the agents' built-in tool names to operations. Names
// are shared where the agents share them (Codex reuses Claude Code's).
var builtinOps = map[string]string{
	// Claude Code.
	"Bash": OpShell, "BashOutput": OpShell, "KillShell": OpShell,
	"Read": OpRead, "Glob": OpRead, "Grep": OpRead, "LS": OpRead, "NotebookRead": OpRead,
	"Write": OpWrite, "Edit": OpWrite, "MultiEdit": OpWrite, "NotebookEdit": OpWrite,
	"WebFetch": OpFetch, "WebSearch": OpFetch,
	// Codex.
	"shell": OpShell, "exec_command": OpShell, "local_shell": OpShell, "unified_exec": OpShell,
	"apply_patch": OpWrite,
	// Gemini CLI.
	"run_shell_command": OpShell,
	"read_file":         OpRead, "read_many_files": OpRead, "glob": OpRead, "search_file_content": OpRead,
	"grep": OpRead, "list_directory": OpRead,
	"write_file": OpWrite, "replace": OpWrite,
	"web_fetch": OpFetch, "google_web_search": OpFetch,
	// Cursor (preToolUse, and the names this package gives its shell
	// and file events).
	"Shell": OpShell, "Terminal": OpShell,
	"StrReplace": OpWrite, "Delete": OpWrite,
}

// Action returns the OARS action of the tool event ev for opts (see the
// package documentation for the mapping). When ev has a session id and a
// tool-call id, the action's IdempotencyKey is derived from them. It fails
// with an error wrapping [ErrPhase] for an event that is not about a tool
// call.
func (ev *Event) Action(opts Options) (*oars.Action, error) {
	if ev == nil || ev.Phase == Other {
		return nil, fmt.Errorf("%w: not a tool event", ErrPhase)
	}
	tenant := opts.TenantID
	if tenant == "" {
		tenant = DefaultTenant
	}
	agentID := opts.AgentID
	if agentID == "" {
		agentID = string(ev.Agent)
	}
	input := ev.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	req := map[string]string{
		"agent": string(ev.Agent),
		"event": ev.Name,
	}
	for k, v := range map[string]string{"session_id": ev.SessionID, "tool_use_id": ev.ToolUseID, "tool_name": ev.Tool, "cwd": ev.CWD} {
		if v != "" {
			req[k] = v
		}
	}
	maps.Copy(req, ev.extra)
	maps.Copy(req, opts.Request)
	a := &oars.Action{
		TenantID:  tenant,
		AgentID:   agentID,
		Principal: opts.Principal,
		Resource:  ev.resource(),
		Input:     input,
		Request:   req,
	}
	if ev.SessionID != "" && ev.ToolUseID != "" {
		// The caller is part of the key: one caller's tool-call ids
		// never name another's action.
		sum := sha256.Sum256([]byte(strings.Join([]string{string(ev.Agent), agentID, a.Principal.UserID, ev.SessionID, ev.ToolUseID}, "\x00")))
		a.IdempotencyKey = "hook:" + hex.EncodeToString(sum[:])
	}
	return a, nil
}

// resource maps the event's tool to an OARS resource.
func (ev *Event) resource() oars.Resource {
	if server, tool, ok := mcpName(ev.Tool); ok {
		return oars.Resource{ToolID: "mcp:" + server, Operation: tool}
	}
	if server := ev.extra["mcp_server"]; server != "" {
		op := ev.Tool
		if op == "" {
			op = OpCall
		}
		return oars.Resource{ToolID: "mcp:" + server, Operation: op}
	}
	op, ok := builtinOps[ev.Tool]
	if !ok {
		op = OpCall
	}
	r := oars.Resource{ToolID: string(ev.Agent) + ":" + ev.Tool, Operation: op}
	var in map[string]json.RawMessage
	_ = json.Unmarshal(ev.Input, &in) // an object: checked by Parse
	str := func(keys ...string) string {
		for _, k := range keys {
			var s string
			if json.Unmarshal(in[k], &s) == nil && s != "" {
				return s
			}
		}
		return ""
	}
	switch op {
	case OpShell:
		var argv []string
		if json.Unmarshal(in["command"], &argv) == nil && len(argv) > 0 {
			r.Target = argvProgram(argv)
		} else {
			r.Target = program(str("command", "cmd"))
		}
	case OpRead, OpWrite:
		if ev.Tool == "apply_patch" {
			r.Target = patchPath(str("command", "patch", "input"))
		} else {
			r.Target = str("file_path", "absolute_path", "notebook_path", "path", "dir_path", "directory")
		}
	case OpFetch:
		r.Target = str("url", "query")
	}
	r.Target = cut(r.Target, oars.MaxTargetLength)
	return r
}

// mcpName splits an MCP tool name, mcp__SERVER__TOOL, into its server and
// tool.
func mcpName(name string) (server, tool string, ok bool) {
	rest, found := strings.CutPrefix(name, "mcp__")
	if !found {
		return "", "", false
	}
	server, tool, found = strings.Cut(rest, "__")
	if !found || server == "" || tool == "" {
		return "", "", false
	}
	return server, tool, true
}

// program returns the program a shell command line starts with: its first
// word after any VAR=value assignments, without a directory.
func program(cmd string) string {
	for _, w := range strings.Fields(cmd) {
		if name, _, ok := strings.Cut(w, "="); ok && name != "" && !strings.ContainsAny(name, "/\"'$") {
			continue // an environment assignment
		}
		return path.Base(strings.Trim(w, `"'`))
	}
	return ""
}

// argvProgram is program for a command given as an argument vector; a
// shell running a script ("bash -lc 'ls -l'") counts as the script.
func argvProgram(argv []string) string {
	base := path.Base(argv[0])
	switch base {
	case "bash", "sh", "zsh", "dash":
		if len(argv) >= 3 && (argv[1] == "-c" || argv[1] == "-lc") {
			return program(argv[2])
		}
	}
	return base
}

// patchPath returns the first file an apply_patch envelope names.
func patchPath(patch string) string {
	for line := range strings.Lines(patch) {
		line = strings.TrimSpace(line)
		for _, p := range []string{"*** Add File: ", "*** Update File: ", "*** Delete File: "} {
			if f, ok := strings.CutPrefix(line, p); ok {
				return strings.TrimSpace(f)
			}
		}
	}
	return ""
}

// cut bounds s to max bytes at a rune boundary.
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max]
}
