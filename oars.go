// Package oars governs what AI agents do.
//
// Every tool call an agent wants to make becomes an [Action]. A [Guard]
// decides it with policies, runs it when allowed, and writes a signed
// receipt for every step into a verifiable Merkle ledger, so that an
// auditor can later prove what happened without trusting the operator.
//
// # The pipeline
//
// [Guard.Decide] validates the action, checks its identity, evaluates the
// policy set and appends a signed decision receipt (allowed, denied or
// pending_approval) to the ledger. [Guard.Do] does the same and then, only
// if the action is allowed and its decision receipt is durably in the
// ledger, runs the caller's [ExecFunc] and appends an executed or failed
// receipt chained to the decision.
//
// # Approvals
//
// When the policies require approval, the decision receipt is
// pending_approval and records the requirement (approver roles and users,
// quorum, expiry, step-up). [Guard.Vote] records each approver's vote and,
// when the quorum is reached, an approved receipt ([Guard.Cancel] and the
// expiry sweeper, [Guard.RunSweeper], end a request otherwise).
// [Guard.Do] waits for the outcome ([Guard.Wait]) and executes an
// approved action through [Guard.Execute], which claims the execution
// with an executing receipt first: the ledger's stores accept one receipt
// per (action, seq), so an approved action runs once however many
// goroutines, Guards or server replicas try, and a crash between approval
// and execution is recovered with [Guard.ApprovedUnexecuted]. Package
// approval documents the state machine and the exactly-once design.
//
// # Failing closed
//
// An error in any stage (identity, policy evaluation, signing, ledger
// append) means the ExecFunc is never called. The errors are wrapped so
// callers can branch with errors.Is on [ErrInvalidAction], [ErrIdentity],
// [ErrPolicy], [ErrSigning] and [ErrLedger].
//
// # Shadow mode
//
// A Guard built with [WithShadowMode] records every decision with receipt
// mode "shadow" but never blocks: Do executes even actions the policies
// would deny. Single policies can be in shadow mode too (see package
// policy); their would-be decisions are recorded beside the enforced one.
package oars

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/textcheck"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// Errors returned by [Guard.Decide] and [Guard.Do]. Test for them with
// errors.Is; the wrapped message says what failed without echoing input.
var (
	// ErrInvalidAction: the action is malformed (missing or oversized
	// fields, input that is not strict JSON). Nothing was recorded.
	ErrInvalidAction = errors.New("oars: invalid action")
	// ErrIdentity: the identity check refused the action. Nothing was
	// executed.
	ErrIdentity = errors.New("oars: identity check failed")
	// ErrPolicy: policy evaluation failed (for example the cost limit was
	// exceeded). A denied receipt is recorded when the ledger allows it.
	ErrPolicy = errors.New("oars: policy evaluation failed")
	// ErrSigning: a receipt could not be signed. Nothing was executed.
	ErrSigning = errors.New("oars: signing failed")
	// ErrLedger: a receipt could not be appended to the ledger. When this
	// happens for the decision receipt, nothing was executed.
	ErrLedger = errors.New("oars: ledger append failed")
	// ErrDenied: Do refused to execute because the action was denied.
	ErrDenied = errors.New("oars: action denied")
	// ErrPendingApproval: Do (or Wait) returned because its context ended
	// while the action was still waiting for human approval; the error
	// also wraps the context's error. The action stays pending and may be
	// approved and executed later (see [Guard.Execute]).
	ErrPendingApproval = errors.New("oars: action pending approval")
	// ErrInvalidOutput: the ExecFunc returned output that is not strict
	// JSON; the action is recorded as failed.
	ErrInvalidOutput = errors.New("oars: invalid exec output")
	// ErrIdempotencyConflict: the idempotency key was used before for a
	// different action (another agent, user, resource or input).
	ErrIdempotencyConflict = errors.New("oars: idempotency key reused for a different action")
	// ErrNotFound: no action with that id is recorded.
	ErrNotFound = errors.New("oars: not found")
)

// Limits on action fields. Longer values are rejected with
// [ErrInvalidAction].
const (
	// MaxIDLength bounds identifiers: tenant, agent, user, tool, operation
	// and action ids.
	MaxIDLength = 256
	// MaxTargetLength bounds Resource.Target.
	MaxTargetLength = 4096
	// DefaultMaxInputBytes is the default bound on Action.Input.
	DefaultMaxInputBytes = 1 << 20
)

// Resource is what an action touches: a tool, one of its operations, and
// an optional target (for example "order/1234").
type Resource = receipt.Resource

// Principal is who an action is for: the user, their roles, and the chain
// of actors acting on the user's behalf (outermost first).
type Principal struct {
	UserID     string
	Roles      []string
	Delegation []receipt.DelegationHop
}

// Action is one tool call an agent wants to make.
type Action struct {
	// ID identifies the action. Leave it empty to have the Guard generate
	// one (a UUIDv7).
	ID        string
	TenantID  string
	AgentID   string
	Principal Principal
	Resource  Resource
	// Input is the tool call's arguments as JSON. It must be strict JSON
	// (no duplicate keys, valid UTF-8, finite numbers, bounded nesting).
	// Empty means {}.
	Input json.RawMessage
	// Request is request metadata (client address, trace id, …), visible
	// to policies as context.request. It is not recorded in receipts.
	Request map[string]string
	// IdempotencyKey, when set, makes the call idempotent: the action id is
	// derived from the tenant and the key, and a repeated call with the same
	// key returns the recorded outcome (Outcome.Replayed) without deciding
	// or executing again. The same key with a different action is refused
	// with [ErrIdempotencyConflict]. ID must be empty when it is set.
	IdempotencyKey string
}

// ExecFunc executes an allowed action and returns its output as JSON. The
// output's digest is recorded in the executed receipt; the output itself
// is not. A nil output is recorded as JSON null.
type ExecFunc func(ctx context.Context, a *Action) (json.RawMessage, error)

// Entry is one receipt as recorded: the parsed receipt, its exact signed
// canonical bytes (the ledger leaf), and its index in the ledger.
type Entry struct {
	Receipt *receipt.Receipt
	Bytes   []byte
	Index   int64
}

// Outcome is what happened to an action in one call.
type Outcome struct {
	// ActionID is the action's id, generated if the Action had none.
	ActionID string
	// Status is the action's status after the call: the status of the
	// last receipt written.
	Status receipt.Status
	// Decision is the policy decision; nil if evaluation failed.
	Decision *policy.Decision
	// Receipts are the receipts written by this call, in order. For Do on
	// an action held for approval, and for Wait, they are all the
	// action's receipts.
	Receipts []Entry
	// Output is the ExecFunc's output (Do only; nil for a replay).
	Output json.RawMessage
	// Replayed reports that the outcome was recorded by an earlier call
	// with the same idempotency key; Receipts are then the action's
	// receipts so far and Decision is nil.
	Replayed bool
}

// Allowed reports whether the decision allowed execution. In shadow mode
// every decision allows execution.
func (o *Outcome) Allowed() bool {
	if o == nil || len(o.Receipts) == 0 {
		return false
	}
	first := o.Receipts[0].Receipt
	return first.Status == receipt.StatusAllowed || first.Mode == receipt.ModeShadow
}

// IdentityCheck verifies that the principal, agent and tenant of an action
// are who the caller's credentials say they are. Returning an error refuses
// the action (fail closed).
type IdentityCheck func(ctx context.Context, a *Action) error

// Option configures a [Guard].
type Option func(*config) error

type config struct {
	clock         func() time.Time
	newID         func() string
	logger        *slog.Logger
	identity      IdentityCheck
	shadow        bool
	maxInputBytes int
	registerer    prometheus.Registerer
	pollInterval  time.Duration
	notifier      approval.Notifier
	// passports and requirePassport: see passport.go.
	passports       PassportSource
	requirePassport bool
	// counters and capabilityFor: see limits.go.
	counters      identity.CounterStore
	capabilityFor func(Resource) string
	// connectors: see connectors.go.
	connectors *connector.Registry
}

// WithMetrics registers the Guard's Prometheus metrics with reg:
// oars_decisions_total by status and oars_decision_duration_seconds.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("oars: WithMetrics: nil registerer")
		}
		c.registerer = reg
		return nil
	}
}

// WithClock sets the clock used for issued_at and policy context.time.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("oars: WithClock: nil clock")
		}
		c.clock = now
		return nil
	}
}

// WithIDGenerator sets the generator of action and receipt ids. It must
// return unique, non-empty ids and be safe for concurrent use.
func WithIDGenerator(newID func() string) Option {
	return func(c *config) error {
		if newID == nil {
			return errors.New("oars: WithIDGenerator: nil generator")
		}
		c.newID = newID
		return nil
	}
}

// WithLogger sets the logger. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("oars: WithLogger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithIdentityCheck installs a check run on every action before policy.
func WithIdentityCheck(check IdentityCheck) Option {
	return func(c *config) error {
		if check == nil {
			return errors.New("oars: WithIdentityCheck: nil check")
		}
		c.identity = check
		return nil
	}
}

// WithShadowMode makes the Guard record decisions with mode "shadow" and
// never block: Do executes even when the policies deny or require approval.
// Use it to roll out policies safely.
func WithShadowMode() Option {
	return func(c *config) error {
		c.shadow = true
		return nil
	}
}

// WithMaxInputBytes bounds the size of Action.Input (default
// [DefaultMaxInputBytes]).
func WithMaxInputBytes(n int) Option {
	return func(c *config) error {
		if n <= 0 {
			return fmt.Errorf("oars: WithMaxInputBytes: %d is not positive", n)
		}
		c.maxInputBytes = n
		return nil
	}
}

// Guard decides, executes and records actions. It is safe for concurrent
// use by many goroutines.
type Guard struct {
	policies atomic.Pointer[policy.Set]
	keys     *receipt.KeySet
	ledger   *ledger.Ledger
	querier  ledger.Querier
	cfg      config
	metrics  *metrics
	// keyLocks serialise calls that share an idempotency key.
	keyLocks keyedMutex
	// appr is the in-memory bookkeeping of approvals (see approval.go).
	appr approvals
}

// New returns a Guard that decides with policies, signs receipts with the
// active key of keys, and appends them to l.
func New(policies *policy.Set, keys *receipt.KeySet, l *ledger.Ledger, opts ...Option) (*Guard, error) {
	if policies == nil {
		return nil, errors.New("oars: new: nil policy set")
	}
	if keys == nil || keys.Active() == nil {
		return nil, errors.New("oars: new: key set has no active signing key")
	}
	if l == nil {
		return nil, errors.New("oars: new: nil ledger")
	}
	cfg := config{
		clock:         time.Now,
		newID:         new(uuidV7).newID,
		logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		maxInputBytes: DefaultMaxInputBytes,
		pollInterval:  DefaultPollInterval,
	}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	g := &Guard{keys: keys, ledger: l, querier: ledger.NewQuerier(l.Store()), cfg: cfg}
	if cfg.registerer != nil {
		m, err := newMetrics(cfg.registerer)
		if err != nil {
			return nil, err
		}
		g.metrics = m
	}
	g.policies.Store(policies)
	return g, nil
}

// uuidV7 generates the default action and receipt ids: UUIDv7 (RFC 9562)
// strings whose first 60 bits are the Unix time in milliseconds and a
// 12-bit counter that keeps the ids of one Guard in increasing order, and
// whose 62 other bits come from crypto/rand. It is safe for concurrent use.
type uuidV7 struct {
	last atomic.Uint64 // milliseconds<<12 | counter of the last id
}

func (g *uuidV7) newID() string {
	var u uuid.UUID
	rand.Read(u[8:]) // never fails: crypto/rand crashes the program instead
	now := uint64(time.Now().UnixMilli()) << 12
	var t uint64
	for {
		last := g.last.Load()
		t = max(now, last+1)
		if g.last.CompareAndSwap(last, t) {
			break
		}
	}
	ms := t >> 12
	u[0], u[1], u[2], u[3], u[4], u[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	u[6] = 0x70 | byte(t>>8)&0x0f // version 7, counter
	u[7] = byte(t)
	u[8] = 0x80 | u[8]&0x3f // variant RFC 9562
	return u.String()
}

// Policies returns the policy set in force.
func (g *Guard) Policies() *policy.Set { return g.policies.Load() }

// Ledger returns the ledger the Guard appends to.
func (g *Guard) Ledger() *ledger.Ledger { return g.ledger }

// Decide decides a, appends the signed decision receipt to the ledger, and
// returns the outcome: status allowed, denied or pending_approval. A denial
// is not an error. On error the returned Outcome, if not nil, describes the
// receipts that were recorded (for example a denied receipt after a policy
// evaluation error).
func (g *Guard) Decide(ctx context.Context, a *Action) (*Outcome, error) {
	replay, unlock, err := g.idempotent(ctx, a)
	if err != nil || replay != nil {
		return replay, err
	}
	defer unlock()
	start := g.decisionStart()
	out, _, err := g.decide(ctx, a, false)
	g.metrics.observe(out, start)
	return out, err
}

// decisionStart returns the start time of a decision for the latency
// metric; without metrics the clock is not read.
func (g *Guard) decisionStart() time.Time {
	if g.metrics == nil {
		return time.Time{}
	}
	return time.Now()
}

// Do decides a like [Guard.Decide] and, only if it is allowed and its
// decision receipt is durably recorded, runs exec and records an executed
// receipt (with the digest of exec's output) or a failed receipt (with an
// error class, never the error text). It returns [ErrDenied] when the
// action is denied, and exec's error (wrapped) when it failed.
//
// When the policies require approval, Do waits (see [Guard.Wait]) until
// the approvers decide, the request expires or ctx ends. Once approved, it
// executes the action through [Guard.Execute], so exec runs at most once
// however many Guards try; the Outcome then lists all the action's
// receipts. It returns [ErrRejected], [ErrExpired] or [ErrCancelled] when
// the action will never run, [ErrAlreadyClaimed] when another executor ran
// it, and an error wrapping [ErrPendingApproval] and ctx.Err() when ctx
// ends first (the action stays pending; use a short-lived ctx to decide
// without waiting).
func (g *Guard) Do(ctx context.Context, a *Action, exec ExecFunc) (*Outcome, error) {
	fn, err := g.execFor(exec)
	if err != nil {
		return nil, err
	}
	replay, unlock, err := g.idempotent(ctx, a)
	if err != nil || replay != nil {
		return replay, err
	}
	unlockOnce := sync.OnceFunc(unlock)
	defer unlockOnce()
	start := g.decisionStart()
	out, st, err := g.decide(ctx, a, true)
	g.metrics.observe(out, start)
	if err != nil {
		return out, err
	}
	if !out.Allowed() {
		if out.Status == receipt.StatusPendingApproval {
			// The decision is recorded: a replay of the idempotency key
			// finds it, so the key's lock is not held while waiting.
			unlockOnce()
			return g.awaitApproval(ctx, a, out, exec)
		}
		return out, ErrDenied
	}
	st.digest = receipt.Digest(out.Receipts[0].Bytes)
	return g.run(ctx, out, a, fn, st)
}

// ErrorClass returns the class of an execution error recorded in failed
// receipts: "timeout", "cancelled", "invalid_output", the value of an
// ErrorClass() string method anywhere in the chain, or "error". It never
// returns the error's text, which may hold secrets.
func ErrorClass(err error) string {
	var c interface{ ErrorClass() string }
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, ErrInvalidOutput):
		return "invalid_output"
	case errors.As(err, &c) && validClass(c.ErrorClass()):
		return c.ErrorClass()
	}
	return "error"
}

func validClass(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// chainState carries what the next receipt of an action needs.
type chainState struct {
	base   receipt.Receipt // the fields every receipt of the action repeats
	seq    int64
	digest string
}

// stateAfter returns the chain state after the recorded receipt e.
func stateAfter(e Entry) *chainState {
	return &chainState{base: *e.Receipt, seq: e.Receipt.Seq, digest: receipt.Digest(e.Bytes)}
}

func (st *chainState) next(g *Guard) *receipt.Receipt {
	r := st.base
	r.ReceiptID = g.cfg.newID()
	r.Seq = st.seq + 1
	r.PrevReceiptDigest = st.digest
	r.IssuedAt = g.cfg.clock().UTC()
	return &r
}

// record signs r, appends it and adds it to out.
func (g *Guard) record(ctx context.Context, out *Outcome, r *receipt.Receipt) error {
	signed, err := receipt.Sign(ctx, g.keys.Active(), r)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSigning, err)
	}
	idx, err := g.ledger.Append(ctx, signed)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLedger, err)
	}
	out.Receipts = append(out.Receipts, Entry{Receipt: r, Bytes: signed, Index: idx})
	out.Status = r.Status
	g.signal(r.ActionID)
	return nil
}

// decided is what decide allocates for the Outcome it returns.
type decided struct {
	out     Outcome
	entries [1]Entry
	r       receipt.Receipt
	policy  receipt.PolicyRef
}

// decide decides a and records its decision receipt. The chain state for
// the action's next receipts is returned only when withState is set and
// the policies decided (Do needs it, Decide does not).
func (g *Guard) decide(ctx context.Context, a *Action, withState bool) (*Outcome, *chainState, error) {
	if a == nil {
		return nil, nil, fmt.Errorf("%w: nil action", ErrInvalidAction)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, fmt.Errorf("oars: decide: %w", err)
	}
	if a.ID == "" {
		a.ID = g.cfg.newID()
	}
	if err := g.validate(a); err != nil {
		return nil, nil, err
	}
	input := a.Input
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	canonInput, decoded, err := receipt.CanonicalizeValue(input)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: input: %w", ErrInvalidAction, err)
	}
	if g.cfg.identity != nil {
		if err := g.cfg.identity(ctx, a); err != nil {
			return nil, nil, fmt.Errorf("%w: %w", ErrIdentity, err)
		}
	}

	now := g.cfg.clock().UTC()
	set := g.policies.Load()
	in := &policy.Input{
		ToolID:    a.Resource.ToolID,
		Operation: a.Resource.Operation,
		Target:    a.Resource.Target,
		Input:     decoded,
		UserID:    a.Principal.UserID,
		Roles:     a.Principal.Roles,
		AgentID:   a.AgentID,
		TenantID:  a.TenantID,
		Time:      now,
		Request:   a.Request,
	}
	if len(a.Principal.Delegation) > 0 {
		in.Delegation = make([]policy.Delegation, len(a.Principal.Delegation))
		for i, h := range a.Principal.Delegation {
			in.Delegation[i] = policy.Delegation{Subject: h.Subject, Issuer: h.Issuer, Scope: h.Scope}
		}
	}

	mode := receipt.ModeEnforce
	if g.cfg.shadow {
		mode = receipt.ModeShadow
	}
	base := baseReceipt(a, receipt.Digest(canonInput), mode)
	if class, reason := g.checkConnector(a, decoded); class != "" {
		out, err := g.denyByConnector(ctx, base, class, reason)
		return out, nil, err
	}
	passport, reasons, err := g.checkPassport(ctx, a, in)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrIdentity, err)
	}
	if reasons != nil {
		out, err := g.denyByPassport(ctx, base, reasons)
		return out, nil, err
	}
	reasons, res, err := g.checkLimits(ctx, a, passport, decoded, now)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrLimits, err)
	}
	if reasons != nil {
		out, err := g.denyByPassport(ctx, base, reasons)
		return out, nil, err
	}
	// The reservation is given back unless the action may still run.
	keep := false
	defer func() {
		if !keep {
			g.release(ctx, a.ID, res)
		}
	}()

	// The outcome, its entry, the decision receipt and its policy
	// member live and die together: one allocation.
	d := new(decided)
	d.out.ActionID = a.ID
	d.out.Receipts = d.entries[:0]
	out := &d.out

	dec, evalErr := set.Evaluate(ctx, in)
	d.r = base
	r := &d.r
	r.ReceiptID = g.cfg.newID()
	r.Seq = 1
	r.IssuedAt = now
	d.policy = receipt.PolicyRef{ID: set.ID(), Version: set.Version(), Digest: set.Digest()}
	r.Policy = &d.policy
	if evalErr != nil {
		// Fail closed, and leave a trace of the refusal when possible.
		r.Status = receipt.StatusDenied
		r.Mode = receipt.ModeEnforce
		r.ErrorClass = "policy_error"
		r.Reasons = []string{"policy evaluation failed"}
		if err := g.record(ctx, out, r); err != nil {
			g.cfg.logger.ErrorContext(ctx, "recording policy failure failed",
				slog.String("action_id", a.ID), slog.Any("error", err))
		}
		return out, nil, fmt.Errorf("%w: %w", ErrPolicy, evalErr)
	}
	out.Decision = dec
	var req approval.Requirement
	switch dec.Effect {
	case policy.EffectAllow:
		r.Status = receipt.StatusAllowed
	case policy.EffectRequireApproval:
		r.Status = receipt.StatusPendingApproval
		var pa policy.Approval
		if dec.Approval != nil {
			pa = *dec.Approval
		}
		req = approval.RequirementFrom(pa, now)
		r.Approval = req.Receipt()
	default:
		r.Status = receipt.StatusDenied
	}
	r.Reasons = dec.Reasons
	r.Policy.MatchedRules = matchedRuleNames(dec.Matched)
	for _, s := range dec.Shadow {
		r.Policy.Shadow = append(r.Policy.Shadow, receipt.ShadowResult{
			ID: s.PolicyID, Version: s.Version, Digest: s.Digest, Effect: string(s.Effect),
			MatchedRules: matchedRuleNames(s.Matched),
		})
	}
	if err := g.record(ctx, out, r); err != nil {
		return out, nil, err
	}
	keep = out.Allowed() || r.Status == receipt.StatusPendingApproval
	if r.Status == receipt.StatusPendingApproval && r.Mode == receipt.ModeEnforce {
		g.held(ctx, r, req)
	}
	if !withState {
		return out, nil, nil
	}
	return out, &chainState{base: base, seq: 1}, nil
}

// baseReceipt returns the fields every receipt of action a repeats.
func baseReceipt(a *Action, inputDigest string, mode receipt.Mode) receipt.Receipt {
	return receipt.Receipt{
		Spec:        receipt.Spec,
		ActionID:    a.ID,
		TenantID:    a.TenantID,
		AgentID:     a.AgentID,
		Principal:   receipt.Principal{UserID: a.Principal.UserID, Delegation: a.Principal.Delegation},
		Resource:    a.Resource,
		InputDigest: inputDigest,
		Mode:        mode,
	}
}

// denyBeforePolicy records in out the seq-1 denied receipt, after base, of
// an action refused before any policy, with error class class (none when
// empty) and reasons. It is in enforce mode even in shadow mode: nothing
// may execute the action.
func (g *Guard) denyBeforePolicy(ctx context.Context, out *Outcome, base receipt.Receipt, class string, reasons []string) error {
	r := base
	r.ReceiptID = g.cfg.newID()
	r.Seq = 1
	r.IssuedAt = g.cfg.clock().UTC()
	r.Status = receipt.StatusDenied
	r.Mode = receipt.ModeEnforce
	r.ErrorClass = class
	r.Reasons = reasons
	return g.record(ctx, out, &r)
}

func (g *Guard) validate(a *Action) error {
	fields := []struct {
		name, value string
		required    bool
		max         int
	}{
		{"id", a.ID, true, MaxIDLength},
		{"tenant_id", a.TenantID, true, MaxIDLength},
		{"agent_id", a.AgentID, true, MaxIDLength},
		{"principal.user_id", a.Principal.UserID, false, MaxIDLength},
		{"resource.tool_id", a.Resource.ToolID, true, MaxIDLength},
		{"resource.operation", a.Resource.Operation, true, MaxIDLength},
		{"resource.target", a.Resource.Target, false, MaxTargetLength},
	}
	for _, f := range fields {
		if err := checkField(f.value, f.required, f.max); err != nil {
			return fmt.Errorf("%w: %s %s", ErrInvalidAction, f.name, err)
		}
	}
	for _, role := range a.Principal.Roles {
		if err := checkField(role, true, MaxIDLength); err != nil {
			return fmt.Errorf("%w: principal.roles: role %s", ErrInvalidAction, err)
		}
	}
	for _, h := range a.Principal.Delegation {
		if err := checkField(h.Subject, true, MaxIDLength); err != nil {
			return fmt.Errorf("%w: principal.delegation: sub %s", ErrInvalidAction, err)
		}
	}
	if len(a.Input) > g.cfg.maxInputBytes {
		return fmt.Errorf("%w: input is %d bytes, more than the limit of %d", ErrInvalidAction, len(a.Input), g.cfg.maxInputBytes)
	}
	return nil
}

func checkField(v string, required bool, max int) error {
	if msg := textcheck.Problem(v, required, max); msg != "" {
		return errors.New(msg)
	}
	return nil
}
