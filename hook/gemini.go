package hook

import (
	"encoding/json"
	"fmt"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// geminiProtocol is Gemini CLI's hook protocol (see the package
// documentation).
type geminiProtocol struct{}

// geminiEvent is the stdin of a Gemini CLI hook; unnamed members
// (transcript_path, timestamp, mcp_context, tool_response…) are ignored.
type geminiEvent struct {
	SessionID     string         `json:"session_id"`
	CWD           string         `json:"cwd"`
	HookEventName string         `json:"hook_event_name"`
	ToolName      string         `json:"tool_name"`
	ToolInput     jsontext.Value `json:"tool_input"`
}

// geminiOutput is the answer of a BeforeTool hook.
type geminiOutput struct {
	Decision string `json:"decision"`
	Reason   string `json:"reason,omitempty"`
}

func (geminiProtocol) parse(data []byte) (*Event, error) {
	var in geminiEvent
	if err := jsonv2.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("%w: gemini: %s", ErrMalformed, jsonMessage(err))
	}
	ev := &Event{Agent: Gemini, Name: in.HookEventName, SessionID: in.SessionID, CWD: in.CWD, Tool: in.ToolName}
	switch in.HookEventName {
	case "BeforeTool":
		if in.ToolName == "" {
			return nil, fmt.Errorf("%w: gemini: BeforeTool without tool_name", ErrMalformed)
		}
		input, err := objectInput(in.ToolInput)
		if err != nil {
			return nil, fmt.Errorf("%w: gemini: tool_input %w", ErrMalformed, err)
		}
		ev.Phase, ev.Input = Before, input
	case "":
		return nil, fmt.Errorf("%w: gemini: hook_event_name is missing", ErrMalformed)
	}
	// AfterTool carries no tool-call id to find the decision by: it is
	// answered neutrally, like the other events.
	return ev, nil
}

func (geminiProtocol) phase(data []byte) Phase {
	if name, ok := eventName(data); ok && name != "BeforeTool" && name != "" {
		return Other
	}
	return Before
}

func (geminiProtocol) reply(_ *Event, d *Decision) Answer {
	if d.Verdict == Allow {
		return Answer{Stdout: mustJSON(geminiOutput{Decision: string(Allow)})}
	}
	return Answer{Stdout: mustJSON(geminiOutput{Decision: string(Deny), Reason: message(Gemini, d, false)})}
}

func (geminiProtocol) deny(_ *Event, reason string) Answer {
	return Answer{ExitCode: 2, Stdout: mustJSON(geminiOutput{Decision: string(Deny), Reason: reason}), Stderr: reason}
}

func (geminiProtocol) neutral(*Event) Answer { return Answer{Stdout: json.RawMessage("{}")} }
