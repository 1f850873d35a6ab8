package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/oarsdev/oars/internal/textcheck"
)

// Errors returned by the registry. A Guard turns [ErrUnknownTool],
// [ErrUnknownOperation] and [ErrInvalidInput] into a denied receipt before
// any policy runs.
var (
	// ErrUnknownTool: no connector is registered for the tool, or the tool
	// is not in the allowlist.
	ErrUnknownTool = errors.New("connector: unknown tool")
	// ErrUnknownOperation: the tool's connector does not offer the
	// operation.
	ErrUnknownOperation = errors.New("connector: unknown operation")
	// ErrInvalidInput: the action input does not match the operation's
	// input schema.
	ErrInvalidInput = errors.New("connector: input does not match the operation's schema")
	// ErrInvalidConnector: a connector or its operations cannot be
	// registered (empty or duplicate names, a schema that does not
	// compile).
	ErrInvalidConnector = errors.New("connector: invalid connector")
)

// Operation describes one operation a connector offers.
type Operation struct {
	// Name is the operation name actions use (Action.Resource.Operation).
	Name string
	// Description says what the operation does, for people and models.
	Description string
	// InputSchema is a JSON Schema (draft 2020-12) the action input must
	// match; nil accepts any JSON object. The registry compiles it once.
	InputSchema json.RawMessage
	// Idempotent reports that running the operation twice with the same
	// input has the effect of running it once, so a failed attempt may be
	// retried.
	Idempotent bool
}

// Request is one execution of an operation.
type Request struct {
	// ActionID is the action being executed.
	ActionID string
	// IdempotencyKey is the same for every attempt of one action (its id
	// unless the caller set another); a connector passes it to the
	// upstream (for example as an Idempotency-Key header) so that an
	// upstream that honours it performs the action once however often it
	// is retried.
	IdempotencyKey string
	// TenantID and AgentID are the action's tenant and agent.
	TenantID, AgentID string
	// UserID is the user the action is for.
	UserID string
	// ToolID, Operation and Target are the action's resource.
	ToolID, Operation, Target string
	// Input is the action input, already checked against the operation's
	// schema.
	Input json.RawMessage
	// Attempt is 1 for the first attempt and grows with each retry.
	Attempt int
}

// Result is what an execution produced.
type Result struct {
	// Output is the raw output; the executed receipt records its digest
	// (over the RFC 8785 form), never the output itself.
	Output json.RawMessage
	// Summary is an optional JSON object recorded in the executed receipt
	// as output_summary: a redacted extract (the created ticket's id, say)
	// chosen by the tool's configuration. It must not hold secrets.
	Summary json.RawMessage
	// UpstreamStatus is the upstream's status code (HTTP status for the
	// HTTP connector), recorded as upstream_status; 0 when there is none.
	UpstreamStatus int
}

// Connector executes the operations of one tool.
type Connector interface {
	// Operations lists the operations the connector offers. The registry
	// reads it once, at registration.
	Operations() []Operation
	// Execute runs one operation. An error should be an [*Error] (or wrap
	// one) so that the failed receipt records its class and upstream
	// status and the queue knows whether to retry; any other error is
	// class "error" and not retried.
	Execute(ctx context.Context, req *Request) (*Result, error)
}

// Error is a failed execution. Its message is for logs only: receipts
// record the class and the upstream status, never the text.
type Error struct {
	// Class names the failure: "timeout", "upstream_5xx", "upstream_4xx",
	// "response_too_large", "egress_refused", "connect", ... (lower case,
	// digits, '_', '.', '-'; at most 64 bytes).
	Class string
	// UpstreamStatus is the upstream's status code, or 0.
	UpstreamStatus int
	// Retryable reports that a later attempt may succeed (a timeout, a
	// 5xx, a refused connection). Whether it is retried also depends on
	// the operation being idempotent.
	Retryable bool
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("connector: ")
	b.WriteString(e.Class)
	if e.UpstreamStatus != 0 {
		fmt.Fprintf(&b, " (upstream status %d)", e.UpstreamStatus)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// ErrorClass returns the class recorded in the failed receipt.
func (e *Error) ErrorClass() string { return e.Class }

// Status returns the upstream status recorded in the failed receipt.
func (e *Error) Status() int { return e.UpstreamStatus }

// IsRetryable reports whether err (or an [*Error] it wraps) may succeed
// on a later attempt.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// UpstreamStatusOf returns the upstream status carried by err, or 0.
func UpstreamStatusOf(err error) int {
	var e interface{ Status() int }
	if errors.As(err, &e) {
		return e.Status()
	}
	return 0
}

// Tool is one registered connector with its compiled operations.
type Tool struct {
	id   string
	conn Connector
	ops  map[string]*operation
}

type operation struct {
	Operation
	schema *jsonschema.Resolved
}

// ID returns the tool id.
func (t *Tool) ID() string { return t.id }

// Connector returns the tool's connector.
func (t *Tool) Connector() Connector { return t.conn }

// Operations returns the tool's operations sorted by name.
func (t *Tool) Operations() []Operation {
	out := make([]Operation, 0, len(t.ops))
	for _, op := range t.ops {
		out = append(out, op.Operation)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Operation returns the named operation.
func (t *Tool) Operation(name string) (Operation, bool) {
	op, ok := t.ops[name]
	if !ok {
		return Operation{}, false
	}
	return op.Operation, true
}

// Registry maps tool ids to connectors. It is safe for concurrent use;
// tools are registered at start-up and looked up on every action.
type Registry struct {
	mu      sync.RWMutex
	tools   map[string]*Tool
	allowed map[string]bool // nil: every registered tool
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{tools: map[string]*Tool{}} }

// Register adds the connector of tool toolID, compiling every operation's
// input schema. It fails with [ErrInvalidConnector] for an invalid tool
// id, a tool registered twice, an operation without a name or listed
// twice, or a schema that does not compile or is not an object schema.
func (r *Registry) Register(toolID string, c Connector) error {
	if p := textcheck.Problem(toolID, true, 256); p != "" {
		return fmt.Errorf("%w: tool id %s", ErrInvalidConnector, p)
	}
	if c == nil {
		return fmt.Errorf("%w: tool %q: nil connector", ErrInvalidConnector, toolID)
	}
	t := &Tool{id: toolID, conn: c, ops: map[string]*operation{}}
	ops := c.Operations()
	if len(ops) == 0 {
		return fmt.Errorf("%w: tool %q offers no operations", ErrInvalidConnector, toolID)
	}
	for _, op := range ops {
		if p := textcheck.Problem(op.Name, true, 256); p != "" {
			return fmt.Errorf("%w: tool %q: operation name %s", ErrInvalidConnector, toolID, p)
		}
		if _, dup := t.ops[op.Name]; dup {
			return fmt.Errorf("%w: tool %q: operation %q listed twice", ErrInvalidConnector, toolID, op.Name)
		}
		rs, err := CompileSchema(op.InputSchema)
		if err != nil {
			return fmt.Errorf("%w: tool %q: operation %q: %w", ErrInvalidConnector, toolID, op.Name, err)
		}
		op.InputSchema = slices.Clone(op.InputSchema)
		t.ops[op.Name] = &operation{Operation: op, schema: rs}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.tools[toolID]; dup {
		return fmt.Errorf("%w: tool %q registered twice", ErrInvalidConnector, toolID)
	}
	r.tools[toolID] = t
	return nil
}

// Allow limits the tools the registry serves to ids, whatever is
// registered (like OARS_ALLOWED_TOOLS): a registered tool not in the list
// is unknown. Calling it again replaces the list; a nil list allows every
// registered tool again.
func (r *Registry) Allow(ids []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ids == nil {
		r.allowed = nil
		return
	}
	r.allowed = make(map[string]bool, len(ids))
	for _, id := range ids {
		r.allowed[id] = true
	}
}

// Tool returns the tool toolID, or an error wrapping [ErrUnknownTool] if
// it is not registered or not allowed.
func (r *Registry) Tool(toolID string) (*Tool, error) {
	r.mu.RLock()
	t, ok := r.tools[toolID]
	if ok && r.allowed != nil && !r.allowed[toolID] {
		ok = false
	}
	r.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTool, toolID)
	}
	return t, nil
}

// Serves reports whether tool toolID is registered and allowed, as Tool
// finds it. A nil Registry serves nothing.
func (r *Registry) Serves(toolID string) bool {
	if r == nil {
		return false
	}
	_, err := r.Tool(toolID)
	return err == nil
}

// Tools returns the ids of the tools served, sorted.
func (r *Registry) Tools() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ids := make([]string, 0, len(r.tools))
	for id := range r.tools {
		if r.allowed == nil || r.allowed[id] {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Check returns nil if tool toolID is served, offers operation op and
// input matches the operation's schema; otherwise an error wrapping
// [ErrUnknownTool], [ErrUnknownOperation] or [ErrInvalidInput] whose text
// names the failing schema location but never echoes input values.
func (r *Registry) Check(toolID, op string, input json.RawMessage) error {
	_, o, err := r.lookup(toolID, op)
	if err != nil {
		return err
	}
	return o.validate(input)
}

// CheckValue is [Registry.Check] for an input already decoded the way
// encoding/json decodes into an any (nil for no input): the Guard, which
// has decoded it, does not decode it again.
func (r *Registry) CheckValue(toolID, op string, input any) error {
	_, o, err := r.lookup(toolID, op)
	if err != nil {
		return err
	}
	return o.validateValue(input)
}

// lookup returns the served tool toolID and its operation op, or an error
// wrapping [ErrUnknownTool] or [ErrUnknownOperation].
func (r *Registry) lookup(toolID, op string) (*Tool, *operation, error) {
	t, err := r.Tool(toolID)
	if err != nil {
		return nil, nil, err
	}
	o, ok := t.ops[op]
	if !ok {
		return nil, nil, fmt.Errorf("%w: tool %q has no operation %q", ErrUnknownOperation, toolID, op)
	}
	return t, o, nil
}

func (o *operation) validate(input json.RawMessage) error {
	if len(input) == 0 {
		return o.validateValue(nil)
	}
	var v any
	if err := json.Unmarshal(input, &v); err != nil {
		return fmt.Errorf("%w: not JSON", ErrInvalidInput)
	}
	return o.validateValue(v)
}

func (o *operation) validateValue(v any) error {
	if v == nil {
		v = map[string]any{}
	}
	if _, ok := v.(map[string]any); !ok {
		return fmt.Errorf("%w: input is not an object", ErrInvalidInput)
	}
	if o.schema == nil {
		return nil
	}
	if err := o.schema.Validate(v); err != nil {
		return fmt.Errorf("%w: %s", ErrInvalidInput, schemaReason(err))
	}
	return nil
}

// schemaReason shortens a validator error to its first line, bounded, so
// that a reason in a receipt stays readable. The validator names keywords
// and locations; it may quote an offending value, which came from the
// caller's own input.
func schemaReason(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 300
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// CompileSchema compiles a JSON Schema for input validation. A nil or
// empty schema compiles to nil (any object). The schema's type, when
// given, must be "object": action inputs are objects.
func CompileSchema(raw json.RawMessage) (*jsonschema.Resolved, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var s jsonschema.Schema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	if s.Type != "" && s.Type != "object" {
		return nil, fmt.Errorf("input schema: type is %q, want \"object\"", s.Type)
	}
	rs, err := s.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("input schema: %w", err)
	}
	return rs, nil
}

// Execute checks req against the registry (as [Registry.Check]) and runs
// it with the tool's connector.
func (r *Registry) Execute(ctx context.Context, req *Request) (*Result, error) {
	t, o, err := r.lookup(req.ToolID, req.Operation)
	if err != nil {
		return nil, err
	}
	if err := o.validate(req.Input); err != nil {
		return nil, err
	}
	res, err := t.conn.Execute(ctx, req)
	if err != nil {
		return res, err
	}
	if res == nil {
		res = &Result{}
	}
	return res, nil
}

// Idempotent reports whether operation op of tool toolID may be retried.
func (r *Registry) Idempotent(toolID, op string) bool {
	_, o, err := r.lookup(toolID, op)
	return err == nil && o.Idempotent
}
