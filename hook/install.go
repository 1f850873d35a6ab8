package hook

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/oarsdev/oars/internal/fsutil"
	"github.com/oarsdev/oars/internal/strictjson"
)

// ErrInstallUnsupported is returned (wrapped) by [Merge] and [InstallFile]
// for an agent they cannot configure (Codex and Gemini CLI: add the hook
// by hand, see the package documentation).
var ErrInstallUnsupported = errors.New("hook: install: agent not supported")

// SettingsPath returns the project settings file [InstallFile] edits by
// default for agent, relative to the project's root: .claude/settings.json
// for Claude Code, .cursor/hooks.json for Cursor; "" for other agents.
func SettingsPath(agent Agent) string {
	switch agent {
	case ClaudeCode:
		return filepath.Join(".claude", "settings.json")
	case Cursor:
		return filepath.Join(".cursor", "hooks.json")
	}
	return ""
}

// HookTimeoutSeconds is the timeout [Merge] gives Claude Code for the
// hook. The hook answers well within it (the CLI denies after its own
// --timeout); Claude Code lets a call proceed when a hook times out.
const HookTimeoutSeconds = 10

// The events the hook is installed for.
var (
	claudeEvents = []string{"PreToolUse", "PostToolUse", "PostToolUseFailure"}
	cursorEvents = []string{"beforeShellExecution", "beforeMCPExecution", "beforeReadFile"}
)

// claudeEntry is one matcher group of Claude Code's hooks settings.
type claudeEntry struct {
	Matcher string          `json:"matcher"`
	Hooks   []claudeCommand `json:"hooks"`
}

type claudeCommand struct {
	Type    string `json:"type"`
	Command string `json:"command"`
	Timeout int    `json:"timeout,omitempty"`
}

// cursorEntry is one hook of Cursor's hooks.json.
type cursorEntry struct {
	Command    string `json:"command"`
	FailClosed bool   `json:"failClosed,omitempty"`
}

// Merge adds the hook command to an agent's settings file content and
// returns the new content, indented, and whether it differs from settings.
// For Claude Code it adds to hooks.PreToolUse, PostToolUse and
// PostToolUseFailure a matcher group {"matcher":"*","hooks":[{"type":
// "command","command":command,"timeout":10}]}; for Cursor it adds
// {"command":command,"failClosed":true} to hooks.beforeShellExecution,
// beforeMCPExecution and beforeReadFile and sets "version": 1.
//
// Merge is idempotent: a group (Claude Code) or hook (Cursor) that already
// runs an `oars hook AGENT` command is replaced by the new one, not
// repeated, and everything else is kept as it was, in its order. settings
// must be a strict JSON object (duplicate member names are refused);
// otherwise Merge fails and returns nothing.
func Merge(agent Agent, settings []byte, command string) ([]byte, bool, error) {
	if strings.TrimSpace(command) == "" {
		return nil, false, errors.New("hook: install: empty command")
	}
	var events []string
	var entry jsontext.Value
	var err error
	switch agent {
	case ClaudeCode:
		events = claudeEvents
		entry, err = jsonv2.Marshal(claudeEntry{Matcher: "*", Hooks: []claudeCommand{{Type: "command", Command: command, Timeout: HookTimeoutSeconds}}})
	case Cursor:
		events = cursorEvents
		entry, err = jsonv2.Marshal(cursorEntry{Command: command, FailClosed: true})
	default:
		return nil, false, fmt.Errorf("%w: %s", ErrInstallUnsupported, printable(string(agent), 64))
	}
	if err != nil {
		return nil, false, fmt.Errorf("hook: install: %w", err)
	}
	if err := strictjson.Check(settings); err != nil {
		return nil, false, fmt.Errorf("hook: install: invalid JSON: %w", err)
	}
	root, err := parseObject(settings)
	if err != nil {
		return nil, false, fmt.Errorf("hook: install: the settings %w", err)
	}
	if agent == Cursor {
		switch v, ok := root.get("version"); {
		case !ok:
			root = append(object{{"version", jsontext.Value("1")}}, root...)
		case string(v) != "1":
			return nil, false, errors.New("hook: install: hooks.json has a version other than 1")
		}
	}
	hooks := object{}
	if v, ok := root.get("hooks"); ok {
		if hooks, err = parseObject(v); err != nil {
			return nil, false, fmt.Errorf("hook: install: hooks %w", err)
		}
	}
	for _, event := range events {
		var list []jsontext.Value
		if v, ok := hooks.get(event); ok {
			if list, err = parseArray(v); err != nil {
				return nil, false, fmt.Errorf("hook: install: hooks.%s %w", event, err)
			}
		}
		hooks.set(event, encodeArray(replaceOurs(agent, list, entry)))
	}
	root.set("hooks", hooks.encode())
	out := root.encode()
	if err := out.Indent(jsontext.WithIndent("  ")); err != nil {
		return nil, false, fmt.Errorf("hook: install: %w", err)
	}
	changed := !sameJSON(settings, out)
	return append(out, '\n'), changed, nil
}

// replaceOurs returns list with entry in place of the first entry that
// runs an `oars hook AGENT` command (the others such are dropped), or
// with entry appended if there is none.
func replaceOurs(agent Agent, list []jsontext.Value, entry jsontext.Value) []jsontext.Value {
	out := make([]jsontext.Value, 0, len(list)+1)
	placed := false
	for _, v := range list {
		if !isOurEntry(agent, v) {
			out = append(out, v)
			continue
		}
		if !placed {
			out = append(out, entry)
			placed = true
		}
	}
	if !placed {
		out = append(out, entry)
	}
	return out
}

// isOurEntry reports whether v is a settings entry that runs only an
// `oars hook AGENT` command.
func isOurEntry(agent Agent, v jsontext.Value) bool {
	switch agent {
	case ClaudeCode:
		var e struct {
			Hooks []claudeCommand `json:"hooks"`
		}
		return jsonv2.Unmarshal(v, &e) == nil && len(e.Hooks) == 1 && isOurCommand(agent, e.Hooks[0].Command)
	case Cursor:
		var e cursorEntry
		return jsonv2.Unmarshal(v, &e) == nil && isOurCommand(agent, e.Command)
	}
	return false
}

// isOurCommand reports whether command runs `oars hook AGENT`: its first
// word names a program whose name contains "oars", followed by "hook"
// and the agent.
func isOurCommand(agent Agent, command string) bool {
	f := strings.Fields(command)
	return len(f) >= 3 && strings.Contains(path.Base(strings.Trim(f[0], `"'`)), "oars") &&
		f[1] == "hook" && f[2] == string(agent)
}

// sameJSON reports whether a and b are the same JSON text up to
// whitespace.
func sameJSON(a, b []byte) bool {
	ca, cb := jsontext.Value(bytes.Clone(a)), jsontext.Value(bytes.Clone(b))
	return ca.Compact() == nil && cb.Compact() == nil && bytes.Equal(ca, cb)
}

// object is a JSON object with its members in order.
type object []member

type member struct {
	name  string
	value jsontext.Value
}

// parseObject parses the JSON object v (already checked strictly).
func parseObject(v []byte) (object, error) {
	if jsontext.Value(v).Kind() != '{' {
		return nil, errors.New("are not a JSON object")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var o object
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		name := tok.String() // before the next read voids tok
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		o = append(o, member{name, val.Clone()})
	}
	return o, nil
}

// parseArray parses the JSON array v (already checked strictly).
func parseArray(v jsontext.Value) ([]jsontext.Value, error) {
	if v.Kind() != '[' {
		return nil, errors.New("is not a JSON array")
	}
	dec := jsontext.NewDecoder(bytes.NewReader(v))
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	var out []jsontext.Value
	for dec.PeekKind() != ']' {
		val, err := dec.ReadValue()
		if err != nil {
			return nil, err
		}
		out = append(out, val.Clone())
	}
	return out, nil
}

func (o object) get(name string) (jsontext.Value, bool) {
	for _, m := range o {
		if m.name == name {
			return m.value, true
		}
	}
	return nil, false
}

// set replaces the value of member name, or appends the member.
func (o *object) set(name string, v jsontext.Value) {
	for i := range *o {
		if (*o)[i].name == name {
			(*o)[i].value = v
			return
		}
	}
	*o = append(*o, member{name, v})
}

// encode returns o as compact JSON; its values are valid JSON, so this
// cannot fail.
func (o object) encode() jsontext.Value {
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf)
	must(enc.WriteToken(jsontext.BeginObject))
	for _, m := range o {
		must(enc.WriteToken(jsontext.String(m.name)))
		must(enc.WriteValue(m.value))
	}
	must(enc.WriteToken(jsontext.EndObject))
	return bytes.TrimSpace(buf.Bytes())
}

func encodeArray(list []jsontext.Value) jsontext.Value {
	var buf bytes.Buffer
	enc := jsontext.NewEncoder(&buf)
	must(enc.WriteToken(jsontext.BeginArray))
	for _, v := range list {
		must(enc.WriteValue(v))
	}
	must(enc.WriteToken(jsontext.EndArray))
	return bytes.TrimSpace(buf.Bytes())
}

func must(err error) {
	if err != nil {
		panic("hook: install: encode: " + err.Error()) // programmer error
	}
}

// InstallFile merges the hook command into the agent's settings file at
// path (see [Merge]) and reports whether it changed the file. A missing
// file is created (with its directory); an existing one is first copied
// to path+".bak", and the new content replaces it atomically, with the
// same permissions. When nothing changes, nothing is written. On error the
// file is unchanged.
func InstallFile(path string, agent Agent, command string) (bool, error) {
	data, err := os.ReadFile(path)
	perm := fs.FileMode(0o644)
	existed := true
	switch {
	case errors.Is(err, fs.ErrNotExist):
		data, existed = []byte("{}"), false
	case err != nil:
		return false, fmt.Errorf("hook: install: %w", err)
	default:
		if fi, err := os.Stat(path); err == nil {
			perm = fi.Mode().Perm()
		}
	}
	merged, changed, err := Merge(agent, data, command)
	if err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	if !changed && existed {
		return false, nil
	}
	if existed {
		if err := fsutil.WriteFileAtomic(path+".bak", data, perm); err != nil {
			return false, fmt.Errorf("hook: install: backup: %w", err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("hook: install: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, merged, perm); err != nil {
		return false, fmt.Errorf("hook: install: %w", err)
	}
	return true, nil
}
