// Package hook puts coding agents under OARS policy through their hooks:
// Claude Code, Cursor, Codex and Gemini CLI run a command before (and
// after) each tool call, hand it the call as JSON on stdin and obey what
// it answers. `oars hook AGENT` is that command; this package holds the
// logic it shares with oarsd's POST /v1/hooks/{agent}.
//
// # Flow
//
// [Parse] reads one hook event in its agent's protocol into an [Event].
// [Decide] turns a before-tool event into an [oars.Action] (see
// [Event.Action]) and decides it with [oars.Guard.Decide], which records
// the signed decision receipt; the [Decision] is then written back in the
// agent's protocol by [Reply]. [Record] records what happened to a tool
// call the agent ran (its after-tool event): an executing receipt and then
// executed (with the digest of the tool's response) or failed, chained to
// the decision through [oars.Guard.Execute]. [Handle] does all of this for
// one event and never fails: every error becomes the fail-closed answer of
// [Fail].
//
// # Mapping a tool call to an action
//
//   - tenant_id: [Options.TenantID], default [DefaultTenant] ("local").
//   - agent_id: [Options.AgentID], default the agent's name ("claude-code",
//     "cursor", "codex", "gemini").
//   - principal: [Options.Principal] (the CLI uses $USER).
//   - resource.tool_id: "mcp:SERVER" for an MCP tool (the agents name them
//     mcp__SERVER__TOOL), otherwise AGENT:TOOL with the agent's own tool
//     name, e.g. "claude-code:Bash", "codex:apply_patch",
//     "gemini:run_shell_command", "cursor:Shell".
//   - resource.operation: the MCP tool's name for an MCP tool; for the
//     agents' built-in tools a kind shared by all four agents, so that one
//     policy covers them: "shell" (a shell command), "read" (reading or
//     searching files), "write" (creating, editing or deleting files),
//     "fetch" (web fetch and search), or "call" (anything else).
//   - resource.target: for "shell" the program the command starts with
//     (leading VAR=value assignments skipped, directory dropped: "rm" for
//     "FOO=1 /bin/rm -rf x"); for "read" and "write" the file or directory
//     path (for Codex's apply_patch the first file the patch names); for
//     "fetch" the URL or query; empty otherwise.
//   - input: the tool's input object as the agent sent it (Cursor's
//     beforeReadFile without the file's content).
//   - context.request (not recorded in receipts): agent, event,
//     session_id, tool_use_id, tool_name and cwd, plus what
//     [Options.Request] adds.
//
// A target is only a hint: a policy that must stop a command looks at
// input.command too (the first word of "bash -c 'rm -rf /'" is bash).
//
// When the event carries a session id and a tool-call id (Claude Code,
// Codex), the action's id is derived from them ([oars.Action]'s
// IdempotencyKey), so that a hook run twice for one call (installed in two
// settings files, say) records one decision, and the after-tool event
// finds the decision it completes.
//
// # Decisions
//
// An allowed action is answered allow; a denied one deny, with the
// matched rules' reasons and the receipt id; one held for approval ask,
// where the agent can ask its user (Claude Code's PreToolUse, Cursor's
// beforeShellExecution and beforeMCPExecution), and otherwise deny, saying
// that approval is needed. Note that allow also skips the agent's own
// permission prompt (Claude Code, Gemini CLI): the OARS policy decides.
//
// When the user allows an ask in the agent's prompt, the action stays
// pending_approval in the ledger: that consent is not an OARS approval,
// and the receipt statuses have no way to say otherwise. [Record] then
// records nothing and returns an error wrapping [ErrNotRecorded].
//
// # Failing closed
//
// The agents let a tool call proceed when a hook crashes, times out or
// exits with an unexpected code; only exit code 2 or an explicit deny
// blocks. So every failure of a before-tool hook (malformed input, a
// policy or ledger error, a timeout) is answered by [Fail] with deny and
// exit code 2, the reason on stderr. After-tool failures exit 1 (the call
// already ran). Events this package does not handle are answered with the
// agent's neutral answer (exit 0).
//
// # Protocols
//
// Verified against the agents' documentation in November 2026:
//
// Claude Code (https://code.claude.com/docs/en/hooks): stdin has
// session_id, cwd, hook_event_name, tool_name (MCP tools as
// mcp__SERVER__TOOL), tool_input and tool_use_id, plus tool_response on
// PostToolUse and error on PostToolUseFailure (which replaces PostToolUse
// for failed calls). PreToolUse answers, with exit 0,
// {"hookSpecificOutput":{"hookEventName":"PreToolUse",
// "permissionDecision":"allow|deny|ask","permissionDecisionReason":…}};
// exit 2 blocks with stderr as the reason; any other exit code or a
// timeout does not block.
//
// Codex (https://developers.openai.com/codex/hooks): the same wire format
// in ~/.codex/hooks.json, with turn_id and model added. It honours
// permissionDecision "deny" and exit 2; "allow" and "ask" are parsed but
// not enforced, so allow is answered {} and ask becomes deny.
//
// Cursor (https://cursor.com/docs/agent/hooks): .cursor/hooks.json,
// {"version":1,"hooks":{EVENT:[{"command":…}]}}; stdin has
// hook_event_name, conversation_id, generation_id, workspace_roots and per
// event command and cwd (beforeShellExecution), tool_name, tool_input
// (an object or a JSON string), url or command (beforeMCPExecution),
// file_path and content (beforeReadFile), or tool_name and tool_input
// (preToolUse). The answer is {"permission":"allow|deny|ask",
// "user_message":…,"agent_message":…}; ask only for shell and MCP
// executions. A hook entry with "failClosed": true blocks when the hook
// fails.
//
// Gemini CLI (https://geminicli.com/docs/hooks/reference): stdin has
// session_id, cwd, hook_event_name, timestamp and, for BeforeTool and
// AfterTool, tool_name (MCP tools as mcp__SERVER__TOOL) and tool_input;
// BeforeTool answers {"decision":"allow|deny","reason":…}; exit 2 blocks
// with stderr as the reason; other exit codes only warn. Its events carry
// no tool-call id, so AfterTool is not recorded.
package hook
