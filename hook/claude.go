package hook

import (
	"encoding/json"
	"errors"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// claudeProtocol is the hook protocol of Claude Code and of Codex, which
// adopted its wire format (see the package documentation). canAsk is
// false for Codex, which does not enforce "ask" (nor "allow").
type claudeProtocol struct {
	agent  Agent
	canAsk bool
}

// claudeEvent is the stdin of a Claude Code or Codex hook. Members it
// does not name (transcript_path, permission_mode, turn_id, model…) are
// ignored.
type claudeEvent struct {
	SessionID     string         `json:"session_id"`
	CWD           string         `json:"cwd"`
	HookEventName string         `json:"hook_event_name"`
	ToolName      string         `json:"tool_name"`
	ToolInput     jsontext.Value `json:"tool_input"`
	ToolUseID     string         `json:"tool_use_id"`
	ToolResponse  jsontext.Value `json:"tool_response"`
}

// claudeOutput is the JSON answer of a PreToolUse hook.
type claudeOutput struct {
	HookSpecificOutput claudeDecision `json:"hookSpecificOutput"`
}

type claudeDecision struct {
	HookEventName            string `json:"hookEventName"`
	PermissionDecision       string `json:"permissionDecision"`
	PermissionDecisionReason string `json:"permissionDecisionReason,omitempty"`
}

func (p claudeProtocol) parse(data []byte) (*Event, error) {
	var in claudeEvent
	if err := jsonv2.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("%w: %s: %s", ErrMalformed, p.agent, jsonMessage(err))
	}
	ev := &Event{Agent: p.agent, Name: in.HookEventName, SessionID: in.SessionID, ToolUseID: in.ToolUseID, CWD: in.CWD, Tool: in.ToolName}
	switch in.HookEventName {
	case "PreToolUse":
		ev.Phase = Before
	case "PostToolUse":
		ev.Phase = After
	case "PostToolUseFailure":
		ev.Phase, ev.Failed = After, true
	case "":
		return nil, fmt.Errorf("%w: %s: hook_event_name is missing", ErrMalformed, p.agent)
	default:
		return ev, nil
	}
	if in.ToolName == "" {
		return nil, fmt.Errorf("%w: %s: %s without tool_name", ErrMalformed, p.agent, in.HookEventName)
	}
	input, err := objectInput(in.ToolInput)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: tool_input %w", ErrMalformed, p.agent, err)
	}
	ev.Input = input
	if ev.Phase == After && len(in.ToolResponse) > 0 {
		ev.Response = json.RawMessage(in.ToolResponse)
	}
	return ev, nil
}

func (p claudeProtocol) phase(data []byte) Phase {
	if name, ok := eventName(data); ok {
		switch name {
		case "PostToolUse", "PostToolUseFailure":
			return After
		case "PreToolUse", "":
			return Before
		}
		return Other
	}
	return Before
}

func (p claudeProtocol) reply(ev *Event, d *Decision) Answer {
	verdict := d.Verdict
	if verdict == Ask && !p.canAsk {
		verdict = Deny
	}
	if verdict == Allow && p.agent == Codex {
		// Codex parses "allow" but does not enforce it: say nothing and
		// let its own approval flow run.
		return Answer{Stdout: json.RawMessage("{}")}
	}
	return Answer{Stdout: mustJSON(claudeOutput{claudeDecision{
		HookEventName:            "PreToolUse",
		PermissionDecision:       string(verdict),
		PermissionDecisionReason: message(p.agent, d, p.canAsk),
	}})}
}

func (p claudeProtocol) deny(_ *Event, reason string) Answer {
	return Answer{
		ExitCode: 2,
		Stdout: mustJSON(claudeOutput{claudeDecision{
			HookEventName: "PreToolUse", PermissionDecision: string(Deny), PermissionDecisionReason: reason,
		}}),
		Stderr: reason,
	}
}

func (p claudeProtocol) neutral(*Event) Answer { return Answer{} }

// objectInput returns a tool input, which must be a JSON object; absent
// or null means {}.
func objectInput(v jsontext.Value) (json.RawMessage, error) {
	switch {
	case len(v) == 0 || string(v) == "null":
		return json.RawMessage("{}"), nil
	case v.Kind() != '{':
		return nil, errors.New("is not a JSON object")
	}
	return json.RawMessage(v), nil
}

// jsonMessage describes an error decoding an event that is strict JSON
// (see Parse) into its Go type, naming the member but not its value.
func jsonMessage(err error) string {
	if de, ok := errors.AsType[*jsonv2.SemanticError](err); ok && de.JSONPointer != "" {
		return printable(string(de.JSONPointer), 100) + " has the wrong type"
	}
	return "the event has the wrong shape"
}
