package hook_test

import (
	"encoding/json"
	"testing"

	"github.com/oarsdev/oars/hook"
)

// FuzzParse checks that no event makes Parse, Action or Fail panic, that
// a parsed tool event always maps to an action, and that every answer's
// stdout is JSON.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		claudeEvent("PreToolUse", "rm -rf /", "toolu_1"),
		claudeEvent("PostToolUseFailure", "ls", "toolu_1"),
		`{"hook_event_name":"PreToolUse","tool_name":"mcp__a__b","tool_input":{"x":[1,{"y":null}]}}`,
		`{"hook_event_name":"PreToolUse","tool_name":"apply_patch","tool_input":{"command":"*** Add File: a\n"}}`,
		`{"hook_event_name":"beforeMCPExecution","tool_name":"q","tool_input":"{\"a\":1}","url":"https://h/mcp"}`,
		`{"hook_event_name":"beforeShellExecution","command":"A=1 B=2 ./x"}`,
		`{"hook_event_name":"BeforeTool","tool_name":"run_shell_command","tool_input":{"command":["sh","-c","rm x"]}}`,
		`{"hook_event_name":"Stop"}`, `{`, `[]`, `""`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		for _, agent := range hook.Agents() {
			ans := hook.Fail(agent, []byte(data), "fuzz")
			if len(ans.Stdout) > 0 && !json.Valid(ans.Stdout) {
				t.Fatalf("Fail(%s, %q).Stdout = %s, not JSON", agent, data, ans.Stdout)
			}
			ev, err := hook.Parse(agent, []byte(data))
			if err != nil || ev.Phase == hook.Other {
				continue
			}
			a, err := ev.Action(hook.Options{})
			if err != nil {
				t.Fatalf("Parse(%s, %q) gave a tool event but Action failed: %v", agent, data, err)
			}
			if !json.Valid(a.Input) || a.Resource.ToolID == "" || a.Resource.Operation == "" {
				t.Fatalf("Action of %q = %+v", data, a)
			}
		}
	})
}

// FuzzMerge checks that Merge never panics and that merging its own
// output changes nothing.
func FuzzMerge(f *testing.F) {
	for _, s := range []string{`{}`, `{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"oars hook claude-code"}]}]}}`,
		`{"version":1,"hooks":{"beforeReadFile":[{"command":"x"}]}}`, `{"hooks":[]}`, `{"a":{"b":[1,2,{"c":"\u00e9"}]}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, settings string) {
		for _, agent := range []hook.Agent{hook.ClaudeCode, hook.Cursor} {
			out, _, err := hook.Merge(agent, []byte(settings), "oars hook "+string(agent))
			if err != nil {
				continue
			}
			again, changed, err := hook.Merge(agent, out, "oars hook "+string(agent))
			if err != nil || changed || string(again) != string(out) {
				t.Fatalf("Merge(%s) of its own output = %s, %v, %v; want it unchanged:\n%s", agent, again, changed, err, out)
			}
		}
	})
}
