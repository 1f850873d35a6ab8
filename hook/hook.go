package hook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/internal/strictjson"
	"github.com/oarsdev/oars/receipt"
)

// Agent names a coding agent whose hook protocol this package speaks.
type Agent string

// The agents.
const (
	ClaudeCode Agent = "claude-code"
	Cursor     Agent = "cursor"
	Codex      Agent = "codex"
	Gemini     Agent = "gemini"
)

// Agents returns every agent, in the order the CLI lists them.
func Agents() []Agent { return []Agent{ClaudeCode, Cursor, Codex, Gemini} }

// ErrUnknownAgent is returned (wrapped) by [ParseAgent] for a name that is
// not one of [Agents].
var ErrUnknownAgent = errors.New("hook: unknown agent")

// ParseAgent returns the agent named s, or an error wrapping
// [ErrUnknownAgent].
func ParseAgent(s string) (Agent, error) {
	for _, a := range Agents() {
		if string(a) == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("%w %q; want claude-code, cursor, codex or gemini", ErrUnknownAgent, printable(s, 64))
}

// DefaultTenant is the tenant of the actions when [Options.TenantID] is
// empty.
const DefaultTenant = "local"

// MaxEventBytes bounds one hook event (the JSON an agent writes to the
// hook's stdin). Callers that read the event bound their read by it; the
// CLI's Guard accepts tool inputs this large.
const MaxEventBytes = 16 << 20

// maxReasonBytes bounds the reason text of an answer.
const maxReasonBytes = 2048

// Errors of [Decide], [Record] and [Parse]. Test for them with errors.Is.
var (
	// ErrMalformed: the event is not valid JSON in the agent's protocol
	// (or misses a field the event needs). Nothing was recorded.
	ErrMalformed = errors.New("hook: malformed event")
	// ErrPhase: Decide was given an after-tool event, or Record a
	// before-tool one.
	ErrPhase = errors.New("hook: wrong event for this call")
	// ErrNoDecision: Record found no decision for the tool call (the
	// before-tool hook did not run, or ran with other settings), or the
	// event has no session or tool-call id to find it by.
	ErrNoDecision = errors.New("hook: no decision recorded for this tool call")
	// ErrNotRecorded: the tool call ran although OARS did not allow it,
	// typically an action held for approval that the user allowed in the
	// agent's own prompt. Nothing was recorded: the decision stays as it
	// was.
	ErrNotRecorded = errors.New("hook: the tool call ran without an OARS allow; its execution is not recorded")
)

// Phase says where in a tool call an event fires.
type Phase int

// The phases.
const (
	// Other: an event this package does not handle (a session start, a
	// prompt…); it is answered neutrally.
	Other Phase = iota
	// Before: the tool is about to run; the answer allows or blocks it.
	Before
	// After: the tool ran (successfully or not); the answer blocks
	// nothing.
	After
)

// Event is one hook event, parsed by [Parse].
type Event struct {
	Agent Agent
	// Name is the hook_event_name the agent sent (PreToolUse,
	// beforeShellExecution, BeforeTool…).
	Name  string
	Phase Phase
	// Failed reports that the tool call failed (After only: Claude Code's
	// PostToolUseFailure).
	Failed bool
	// SessionID identifies the agent's session (Cursor: the conversation);
	// ToolUseID the tool call within it, when the agent sends one.
	SessionID string
	ToolUseID string
	CWD       string
	// Tool is the agent's name of the tool: "Bash", "run_shell_command",
	// "mcp__github__create_issue"; for Cursor's shell and file events,
	// which name none, "Shell" and "Read".
	Tool string
	// Input is the tool's input, a JSON object.
	Input json.RawMessage
	// Response is the tool's response (After only), any JSON value;
	// nil when the agent sent none.
	Response json.RawMessage
	// extra is request metadata the protocol adds (Cursor's MCP server).
	extra map[string]string
}

// Options say for whom and where the actions of hook events are decided.
// The zero value is valid.
type Options struct {
	// TenantID is the tenant of the actions; empty means
	// [DefaultTenant].
	TenantID string
	// AgentID is the actions' agent_id; empty means the agent's name.
	AgentID string
	// Principal is the user the agent works for.
	Principal oars.Principal
	// Request is added to the request metadata policies see as
	// context.request (it is not recorded).
	Request map[string]string
}

// Verdict is what a hook answers for a tool call.
type Verdict string

// The verdicts.
const (
	Allow Verdict = "allow"
	Deny  Verdict = "deny"
	// Ask: let the agent ask its user (for an action held for approval).
	Ask Verdict = "ask"
)

// Decision is the OARS decision on a before-tool event.
type Decision struct {
	Verdict Verdict
	// Status is the status of the decision receipt (allowed, denied or
	// pending_approval).
	Status receipt.Status
	// Reasons are the decision receipt's reasons.
	Reasons   []string
	ActionID  string
	ReceiptID string
}

// Answer is a hook's answer to its agent: what to write to stdout and
// stderr and the exit code. It is also the body of oarsd's POST
// /v1/hooks/{agent}.
type Answer struct {
	ExitCode int `json:"exit_code"`
	// Stdout is the JSON to write to stdout, in the agent's protocol; nil
	// for nothing.
	Stdout json.RawMessage `json:"stdout,omitempty"`
	Stderr string          `json:"stderr,omitempty"`
}

// Write writes a's stdout (followed by a newline) and stderr and returns
// its exit code. Write errors are ignored: the agent reads the exit code
// either way.
func (a Answer) Write(stdout, stderr io.Writer) int {
	if len(a.Stdout) > 0 {
		_, _ = stdout.Write(append(append([]byte(nil), a.Stdout...), '\n'))
	}
	if a.Stderr != "" {
		s := a.Stderr
		if !strings.HasSuffix(s, "\n") {
			s += "\n"
		}
		_, _ = io.WriteString(stderr, s)
	}
	return a.ExitCode
}

// protocol is one agent's hook protocol.
type protocol interface {
	// parse parses an event; errors wrap ErrMalformed.
	parse(data []byte) (*Event, error)
	// phase returns the phase of the event in data as far as it can be
	// told, Before when it cannot (so that a failure blocks).
	phase(data []byte) Phase
	// reply answers a decision on ev.
	reply(ev *Event, d *Decision) Answer
	// deny answers a before-tool failure (exit 2); ev may be nil.
	deny(ev *Event, reason string) Answer
	// neutral answers an event that needs no decision (exit 0).
	neutral(ev *Event) Answer
}

func protocolOf(a Agent) (protocol, error) {
	switch a {
	case ClaudeCode:
		return claudeProtocol{agent: ClaudeCode, canAsk: true}, nil
	case Codex:
		return claudeProtocol{agent: Codex}, nil
	case Cursor:
		return cursorProtocol{}, nil
	case Gemini:
		return geminiProtocol{}, nil
	}
	_, err := ParseAgent(string(a))
	return nil, err
}

// Parse parses one hook event of agent. It fails with an error wrapping
// [ErrMalformed] when data is not strict JSON (duplicate member names and
// invalid UTF-8 are refused) in the agent's protocol, or lacks what a tool
// event needs; unknown members are ignored. Events that are not about a
// tool call parse with Phase [Other].
func Parse(agent Agent, data []byte) (*Event, error) {
	p, err := protocolOf(agent)
	if err != nil {
		return nil, err
	}
	if len(data) > MaxEventBytes {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrMalformed, MaxEventBytes)
	}
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrMalformed, agent, err)
	}
	return p.parse(data)
}

// Decide decides the before-tool event ev with g and returns the
// decision, recorded as a signed receipt. A denial is not an error. It
// fails with [ErrPhase] for another event, and with the Guard's errors
// (oars.ErrInvalidAction, ErrPolicy, ErrLedger…) when nothing could be
// decided; the caller must then block the call (see [Fail]).
func Decide(ctx context.Context, g *oars.Guard, ev *Event, opts Options) (*Decision, error) {
	if ev == nil || ev.Phase != Before {
		return nil, fmt.Errorf("%w: decide needs a before-tool event", ErrPhase)
	}
	a, err := ev.Action(opts)
	if err != nil {
		return nil, err
	}
	out, err := g.Decide(ctx, a)
	if err != nil && a.IdempotencyKey != "" && errors.Is(err, oars.ErrLedger) {
		// Two hook processes decided the same call at once (the hook is
		// installed twice); the store kept the other's decision.
		a.ID = ""
		out, err = g.Decide(ctx, a)
	}
	if err != nil {
		return nil, fmt.Errorf("hook: decide: %w", err)
	}
	return DecisionOf(out)
}

// DecisionOf returns the decision an outcome of [oars.Guard.Decide] (or
// [oars.Guard.Refuse]) records: its first receipt's.
func DecisionOf(out *oars.Outcome) (*Decision, error) {
	if out == nil || len(out.Receipts) == 0 {
		return nil, errors.New("hook: no decision receipt")
	}
	first := out.Receipts[0].Receipt
	d := &Decision{
		Status:    first.Status,
		Reasons:   first.Reasons,
		ActionID:  out.ActionID,
		ReceiptID: first.ReceiptID,
	}
	switch {
	case out.Allowed():
		d.Verdict = Allow
	case first.Status == receipt.StatusPendingApproval:
		d.Verdict = Ask
	default:
		d.Verdict = Deny
	}
	return d, nil
}

// Reply returns the answer of decision d on the before-tool event ev in
// ev's agent's protocol.
func Reply(ev *Event, d *Decision) Answer {
	p, err := protocolOf(ev.Agent)
	if err != nil {
		return Answer{ExitCode: 2, Stderr: "OARS: " + err.Error()}
	}
	return p.reply(ev, d)
}

// toolError is the error Record's ExecFunc returns for a failed tool
// call; its class goes into the failed receipt.
type toolError struct{}

func (toolError) Error() string      { return "the tool call failed" }
func (toolError) ErrorClass() string { return "tool_error" }

// Record records the outcome of the after-tool event ev: an executing
// receipt claiming the action its before-tool event decided, then executed
// with the digest of the tool's response (failed, error class tool_error,
// when ev.Failed). It returns the receipts it wrote.
//
// Running the hook twice for one call records once: the second call finds
// the execution claimed and returns the action's receipts with a nil
// error. It fails with [ErrPhase] for another event, [ErrNoDecision] when
// no decision is recorded for the call, [ErrNotRecorded] when the call was
// not allowed (held for approval, or denied), and oars.ErrApprovalMismatch
// when the call differs from the decided one.
func Record(ctx context.Context, g *oars.Guard, ev *Event, opts Options) (*oars.Outcome, error) {
	if ev == nil || ev.Phase != After {
		return nil, fmt.Errorf("%w: record needs an after-tool event", ErrPhase)
	}
	a, err := ev.Action(opts)
	if err != nil {
		return nil, err
	}
	if a.IdempotencyKey == "" {
		return nil, fmt.Errorf("%w: %s sends no tool-call id to find it by", ErrNoDecision, ev.Agent)
	}
	id := oars.IdempotentActionID(a.TenantID, a.IdempotencyKey)
	a.IdempotencyKey = ""
	exec := func(context.Context, *oars.Action) (json.RawMessage, error) {
		if ev.Failed {
			return nil, toolError{}
		}
		if len(ev.Response) == 0 {
			return json.RawMessage("null"), nil
		}
		return ev.Response, nil
	}
	out, err := g.Execute(ctx, id, a, exec)
	if out != nil && len(out.Receipts) > 0 {
		switch out.Status {
		case receipt.StatusExecuted, receipt.StatusFailed:
			// Recorded; a failed tool call (or an invalid response) is a
			// recorded outcome, not an error of Record.
			return out, nil
		}
	}
	switch {
	case err == nil:
		return out, nil
	case errors.Is(err, oars.ErrAlreadyClaimed):
		entries, rerr := g.Receipts(ctx, id)
		if rerr != nil {
			return nil, fmt.Errorf("hook: record: %w", rerr)
		}
		first := entries[0].Receipt
		digest, derr := receipt.DigestJSON(a.Input)
		if derr != nil || first.Resource != a.Resource || first.InputDigest != digest {
			return nil, fmt.Errorf("hook: record: the call differs from the recorded one: %w", oars.ErrApprovalMismatch)
		}
		return &oars.Outcome{ActionID: id, Status: entries[len(entries)-1].Receipt.Status, Receipts: entries, Replayed: true}, nil
	case errors.Is(err, oars.ErrNotFound):
		return nil, fmt.Errorf("%w (action %s)", ErrNoDecision, id)
	case errors.Is(err, oars.ErrNotApproved):
		return out, fmt.Errorf("%w (action %s: %w)", ErrNotRecorded, id, err)
	}
	return out, fmt.Errorf("hook: record: %w", err)
}

// Handle answers the hook event in data: it parses it, decides a
// before-tool event ([Decide], [Reply]), records an after-tool event
// ([Record]) and answers other events neutrally. It never fails: any
// error is answered by [Fail] with the error's text as the reason, which
// suits a local hook; a server that must not show its errors uses
// [Parse], [Decide], [Record] and [Fail] itself.
func Handle(ctx context.Context, g *oars.Guard, agent Agent, data []byte, opts Options) Answer {
	ev, err := Parse(agent, data)
	if err != nil {
		return Fail(agent, data, err.Error())
	}
	ans, err := HandleEvent(ctx, g, ev, opts)
	if err != nil {
		return FailEvent(ev, err.Error())
	}
	return ans
}

// HandleEvent answers a parsed event like [Handle], but returns the error
// (with a zero Answer) when the event could not be decided or recorded.
// g is not used for an event of Phase [Other], which may be answered
// without opening a ledger.
func HandleEvent(ctx context.Context, g *oars.Guard, ev *Event, opts Options) (Answer, error) {
	p, err := protocolOf(ev.Agent)
	if err != nil {
		return Answer{}, err
	}
	switch ev.Phase {
	case Before:
		d, err := Decide(ctx, g, ev, opts)
		if err != nil {
			return Answer{}, err
		}
		return p.reply(ev, d), nil
	case After:
		if _, err := Record(ctx, g, ev, opts); err != nil {
			return Answer{}, err
		}
		return p.neutral(ev), nil
	}
	return p.neutral(ev), nil
}

// Fail returns the fail-closed answer to the hook event in data (which
// may be malformed) when it could not be handled: for a before-tool event
// (or one whose phase cannot be told) a deny with exit code 2 and reason
// on stderr; for an after-tool event exit code 1 (the call already ran);
// for other events the neutral answer with reason on stderr.
func Fail(agent Agent, data []byte, reason string) Answer {
	p, err := protocolOf(agent)
	if err != nil {
		return Answer{ExitCode: 2, Stderr: failText(reason)}
	}
	return failWith(p, nil, p.phase(data), reason)
}

// FailEvent is [Fail] for a parsed event.
func FailEvent(ev *Event, reason string) Answer {
	p, err := protocolOf(ev.Agent)
	if err != nil {
		return Answer{ExitCode: 2, Stderr: failText(reason)}
	}
	return failWith(p, ev, ev.Phase, reason)
}

func failWith(p protocol, ev *Event, ph Phase, reason string) Answer {
	switch ph {
	case After:
		return Answer{ExitCode: 1, Stderr: "OARS: " + limit(reason)}
	case Other:
		a := p.neutral(ev)
		a.Stderr = "OARS: " + limit(reason)
		return a
	}
	return p.deny(ev, failText(reason))
}

func failText(reason string) string {
	return limit("OARS could not decide this tool call, so it is denied: " + reason)
}

// message is the reason text of decision d for an agent; canAsk says
// whether the answer is an ask.
func message(agent Agent, d *Decision, canAsk bool) string {
	why := strings.Join(d.Reasons, "; ")
	var s string
	switch {
	case d.Verdict == Allow:
		s = "OARS allowed this tool call"
	case d.Verdict == Ask && canAsk:
		s = "OARS policy requires approval for this tool call"
	case d.Verdict == Ask:
		s = "OARS denied this tool call: it needs approval, which " + string(agent) + " cannot ask for"
	default:
		s = "OARS denied this tool call"
		if why == "" {
			why = "no policy rule allows it"
		}
	}
	if why != "" {
		s += ": " + why
	}
	if d.ReceiptID != "" {
		s += " (receipt " + d.ReceiptID + ")"
	}
	return limit(s)
}

// limit bounds s to maxReasonBytes, cutting at a rune boundary.
func limit(s string) string {
	if len(s) <= maxReasonBytes {
		return s
	}
	return cut(s, maxReasonBytes-len("…")) + "…"
}

// printable returns s for an error message: cut to max bytes, with
// control characters replaced.
func printable(s string, max int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > max {
		s = cut(s, max) + "…"
	}
	return s
}

// eventName returns the hook_event_name of the event in data, and
// whether data could be read as an event at all.
func eventName(data []byte) (string, bool) {
	var in struct {
		HookEventName string `json:"hook_event_name"`
	}
	err := json.Unmarshal(data, &in)
	return in.HookEventName, err == nil
}

// mustJSON marshals v, which is always marshalable.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("hook: marshal answer: " + err.Error()) // programmer error
	}
	return b
}
