package hook

import (
	"encoding/json"
	"fmt"
	"net/url"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// cursorProtocol is Cursor's hook protocol (see the package
// documentation).
type cursorProtocol struct{}

// cursorEvent is the stdin of a Cursor hook; unnamed members (model,
// cursor_version, user_email, content, attachments…) are ignored.
type cursorEvent struct {
	HookEventName  string         `json:"hook_event_name"`
	ConversationID string         `json:"conversation_id"`
	WorkspaceRoots []string       `json:"workspace_roots"`
	Command        string         `json:"command"`
	CWD            string         `json:"cwd"`
	ToolName       string         `json:"tool_name"`
	ToolInput      jsontext.Value `json:"tool_input"`
	ToolUseID      string         `json:"tool_use_id"`
	URL            string         `json:"url"`
	FilePath       string         `json:"file_path"`
}

// cursorOutput is the answer of Cursor's permission hooks.
type cursorOutput struct {
	Permission   string `json:"permission"`
	UserMessage  string `json:"user_message,omitempty"`
	AgentMessage string `json:"agent_message,omitempty"`
}

// cursorCanAsk lists the events whose answer may be "ask".
var cursorCanAsk = map[string]bool{"beforeShellExecution": true, "beforeMCPExecution": true}

func (cursorProtocol) parse(data []byte) (*Event, error) {
	var in cursorEvent
	if err := jsonv2.Unmarshal(data, &in); err != nil {
		return nil, fmt.Errorf("%w: cursor: %s", ErrMalformed, jsonMessage(err))
	}
	ev := &Event{Agent: Cursor, Name: in.HookEventName, SessionID: in.ConversationID, ToolUseID: in.ToolUseID, CWD: in.CWD}
	if ev.CWD == "" && len(in.WorkspaceRoots) > 0 {
		ev.CWD = in.WorkspaceRoots[0]
	}
	malformed := func(what string) error {
		return fmt.Errorf("%w: cursor: %s %s", ErrMalformed, in.HookEventName, what)
	}
	switch in.HookEventName {
	case "beforeShellExecution":
		if in.Command == "" {
			return nil, malformed("without command")
		}
		ev.Phase, ev.Tool = Before, "Shell"
		ev.Input = mustJSON(map[string]string{"command": in.Command, "cwd": in.CWD})
	case "beforeReadFile":
		if in.FilePath == "" {
			return nil, malformed("without file_path")
		}
		// The file's content is not the agent's input: it stays out of
		// the action (and out of policies' sight).
		ev.Phase, ev.Tool = Before, "Read"
		ev.Input = mustJSON(map[string]string{"file_path": in.FilePath})
	case "beforeMCPExecution", "preToolUse":
		if in.ToolName == "" {
			return nil, malformed("without tool_name")
		}
		input := in.ToolInput
		if input.Kind() == '"' {
			// Cursor has sent MCP arguments as a JSON string holding the
			// object.
			var s string
			if err := jsonv2.Unmarshal(input, &s); err != nil {
				return nil, malformed("with an invalid tool_input")
			}
			input = jsontext.Value(s)
			if !input.IsValid() {
				return nil, malformed("with a tool_input string that is not JSON")
			}
		}
		obj, err := objectInput(input)
		if err != nil {
			return nil, malformed("with a tool_input that " + err.Error())
		}
		ev.Phase, ev.Tool, ev.Input = Before, in.ToolName, obj
		if in.HookEventName == "beforeMCPExecution" {
			ev.extra = map[string]string{"mcp_server": mcpServer(in.URL, in.Command)}
			if in.URL != "" {
				ev.extra["mcp_url"] = in.URL
			}
			if in.Command != "" {
				ev.extra["mcp_command"] = in.Command
			}
		}
	case "":
		return nil, fmt.Errorf("%w: cursor: hook_event_name is missing", ErrMalformed)
	}
	return ev, nil
}

// mcpServer names the MCP server of a Cursor beforeMCPExecution event,
// which does not name it: the host of its URL, or "stdio" for a server
// Cursor runs as a command.
func mcpServer(rawURL, command string) string {
	if u, err := url.Parse(rawURL); err == nil && u.Hostname() != "" {
		return u.Hostname()
	}
	if command != "" {
		return "stdio"
	}
	return "unknown"
}

func (cursorProtocol) phase(data []byte) Phase {
	if name, ok := eventName(data); ok {
		switch name {
		case "beforeShellExecution", "beforeMCPExecution", "beforeReadFile", "preToolUse", "":
			return Before
		}
		return Other
	}
	return Before
}

func (cursorProtocol) reply(ev *Event, d *Decision) Answer {
	canAsk := cursorCanAsk[ev.Name]
	verdict := d.Verdict
	if verdict == Ask && !canAsk {
		verdict = Deny
	}
	out := cursorOutput{Permission: string(verdict)}
	if verdict != Allow {
		msg := message(Cursor, d, canAsk)
		out.UserMessage, out.AgentMessage = msg, msg
	}
	return Answer{Stdout: mustJSON(out)}
}

func (cursorProtocol) deny(_ *Event, reason string) Answer {
	return Answer{
		ExitCode: 2,
		Stdout:   mustJSON(cursorOutput{Permission: string(Deny), UserMessage: reason, AgentMessage: reason}),
		Stderr:   reason,
	}
}

func (cursorProtocol) neutral(*Event) Answer { return Answer{Stdout: json.RawMessage("{}")} }
