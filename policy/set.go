package policy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cel.dev/cel-go/common/types"
	"cel.dev/cel-go/interpreter"
)

// ErrCostLimit reports that a rule's evaluation exceeded [MaxEvalCost].
// Evaluate's error wraps it; test with errors.Is.
var ErrCostLimit = errors.New("cost limit exceeded")

// EvalError reports that a rule could not be evaluated: a runtime error
// such as a missing key or a type mismatch in `input`, the cost limit
// ([ErrCostLimit]) or cancellation (the context's error). The Guard treats
// it as a denial (fail closed).
type EvalError struct {
	PolicyID string
	RuleID   string
	Err      error
}

// Error implements error.
func (e *EvalError) Error() string {
	return fmt.Sprintf("policy: evaluate: policy %q rule %q: %s", e.PolicyID, e.RuleID, e.Err)
}

// Unwrap returns the underlying error.
func (e *EvalError) Unwrap() error { return e.Err }

// Delegation is one link of the chain of authority an action runs under.
type Delegation struct {
	// Subject is the party authority was delegated to (`sub` in CEL).
	Subject string
	// Issuer is the party that delegated it (`iss` in CEL).
	Issuer string
	// Scope lists what was delegated.
	Scope []string
}

// Input is what policies see about one action. See the package
// documentation for the CEL variables each field appears as.
type Input struct {
	// ToolID, Operation and Target name the resource acted on
	// (action.tool_id, action.operation, action.target).
	ToolID, Operation, Target string
	// Input is the action's decoded JSON input (`input`): map[string]any,
	// []any, string, float64, bool or nil, as encoding/json decodes into
	// an any. Nil is seen as an empty object.
	Input any

	UserID     string
	Roles      []string
	Delegation []Delegation

	AgentID  string
	TenantID string
	// Capabilities and AssuranceLevel come from the agent's passport
	// (agent.capabilities, agent.assurance_level); empty without one.
	Capabilities   []string
	AssuranceLevel string

	// Time is the time of the request; the Guard sets it.
	Time time.Time
	// Request is request metadata such as the client address.
	Request map[string]string
}

// Match is a rule whose condition held.
type Match struct {
	PolicyID string
	RuleID   string
	Effect   Effect
	Reason   string
}

// String returns "<policy_id>/<rule_id>", the form matched rules take in
// receipts.
func (m Match) String() string { return MatchedRuleName(m) }

// MatchedRuleName returns "<policy_id>/<rule_id>", the form matched rules
// take in receipts (`policy.matched_rules`).
func MatchedRuleName(m Match) string { return m.PolicyID + "/" + m.RuleID }

// ShadowResult is the would-be decision of one shadow-mode policy.
type ShadowResult struct {
	PolicyID string
	Version  string
	Digest   string
	// Effect is the policy's result, or [EffectError] when it could not be
	// evaluated.
	Effect Effect
	// Matched are the rules that matched, in rule order (those that
	// matched before the error, if Effect is [EffectError]).
	Matched []Match
	// Err is the evaluation error when Effect is [EffectError].
	Err error
}

// Decision is the outcome of evaluating a [Set] for one action.
type Decision struct {
	// Effect is the combined effect of the enforcing policies that apply to
	// the tenant.
	Effect Effect
	// Matched lists every matched rule of the enforcing policies, in policy
	// then rule order.
	Matched []Match
	// Reasons are the reasons of the matched rules whose effect is Effect,
	// and "policy <id>: default <effect>" for each applicable policy that
	// produced Effect by its default; or "no policy applies to tenant <id>".
	Reasons []string
	// Approval is set when Effect is [EffectRequireApproval]: the strictest
	// merge of the matched require_approval rules (union of roles and users,
	// largest quorum, shortest expiry, step-up if any asks for it). A policy
	// that requires approval by default contributes quorum 1 and
	// [DefaultApprovalExpiry].
	Approval *Approval
	// Shadow has one result per shadow-mode policy that applies to the
	// tenant, in policy order.
	Shadow []ShadowResult
}

// MatchedRules returns the names of d.Matched as [MatchedRuleName] writes
// them.
func (d *Decision) MatchedRules() []string {
	out := make([]string, len(d.Matched))
	for i, m := range d.Matched {
		out[i] = MatchedRuleName(m)
	}
	return out
}

// Set is an immutable collection of policies evaluated together with
// deny-overrides. It is safe for concurrent use.
type Set struct {
	policies []*Policy   // sorted by id
	compiled []*compiled // same order
	id       string
	version  string
	digest   string
}

// NewSet combines policies, which must have been built by [Parse],
// [LoadFile] or [LoadDir], into a Set ordered by policy id. It fails when
// there are none, when one is nil or not parsed, or when two share an id.
func NewSet(policies ...*Policy) (*Set, error) {
	if len(policies) == 0 {
		return nil, errors.New("policy: new set: no policies")
	}
	ps := slices.Clone(policies)
	for i, p := range ps {
		if p == nil || p.c == nil {
			return nil, fmt.Errorf("policy: new set: policy %d was not built by Parse", i)
		}
	}
	slices.SortFunc(ps, func(a, b *Policy) int { return strings.Compare(a.c.id, b.c.id) })
	s := &Set{policies: ps, compiled: make([]*compiled, len(ps))}
	ids := make([]string, len(ps))
	versions := make([]string, len(ps))
	type member struct {
		ID      string `json:"id"`
		Version string `json:"version"`
		Digest  string `json:"digest"`
	}
	members := make([]member, len(ps))
	for i, p := range ps {
		if i > 0 && ps[i-1].c.id == p.c.id {
			return nil, fmt.Errorf("policy: new set: duplicate policy id %q", p.c.id)
		}
		s.compiled[i] = p.c
		ids[i], versions[i] = p.c.id, p.c.version
		members[i] = member{p.c.id, p.c.version, p.c.digest}
	}
	if len(ps) == 1 {
		s.id, s.version, s.digest = ids[0], versions[0], ps[0].c.digest
		return s, nil
	}
	s.id = strings.Join(ids, "+")
	s.version = strings.Join(versions, "+")
	d, err := canonicalDigest(members)
	if err != nil {
		return nil, fmt.Errorf("policy: new set: digest: %w", err)
	}
	s.digest = d
	return s, nil
}

// ID returns the policy's id for a single-policy set, else the ids joined
// by "+" in id order.
func (s *Set) ID() string { return s.id }

// Version returns the policy's version for a single-policy set, else the
// versions joined by "+" in id order.
func (s *Set) Version() string { return s.version }

// Digest returns the policy's digest for a single-policy set, else
// "sha256:<hex>" over the RFC 8785 canonical JSON of the id-sorted list of
// {"id","version","digest"} objects of its policies.
func (s *Set) Digest() string { return s.digest }

// Policies returns the set's policies in id order. The slice is a copy.
func (s *Set) Policies() []*Policy { return slices.Clone(s.policies) }

// Capabilities returns the union of the capability ids the set's policies
// test (see [Policy.Capabilities]), sorted.
func (s *Set) Capabilities() []string {
	var caps []string
	for _, p := range s.policies {
		caps = append(caps, p.Capabilities()...)
	}
	slices.Sort(caps)
	return slices.Compact(caps)
}

// appliesTo reports whether the policy applies to the tenant.
func (c *compiled) appliesTo(tenant string) bool {
	return len(c.tenants) == 0 || slices.Contains(c.tenants, tenant)
}

// Evaluate decides the action described by in.
//
// Every policy whose tenants include in.TenantID (or that lists none) is
// evaluated, all of its rules in order. A policy's result is deny if a
// matched rule denies, else require_approval if one requires approval, else
// allow if one allows, else its default. The decision is the strongest
// result over the enforcing policies (deny > require_approval > allow), or
// deny with reason "no policy applies to tenant <id>" when none applies.
// Shadow-mode policies are evaluated the same way into [Decision.Shadow]
// and never change the effect; their evaluation errors are recorded there
// (as [EffectError]) rather than returned.
//
// Evaluate returns an error, and no decision, when s or in is nil, when ctx is
// done (the error wraps ctx.Err()), or when a rule of an enforcing policy
// fails to evaluate ([*EvalError]); callers must then fail closed.
func (s *Set) Evaluate(ctx context.Context, in *Input) (*Decision, error) {
	if s == nil || in == nil {
		return nil, errors.New("policy: evaluate: nil set or input")
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("policy: evaluate: %w", err)
	}
	act := &activation{in: in, bounded: withinSizeHints(in)}
	d := &Decision{}
	type result struct {
		c          *compiled
		effect     Effect
		defaulted  bool
		start, end int // d.Matched[start:end] are this policy's matches
	}
	var buf [4]result
	results := buf[:0]
	for _, c := range s.compiled {
		if !c.appliesTo(in.TenantID) {
			continue
		}
		if c.mode == ModeShadow {
			matched, eff, _, err := c.evaluate(ctx, act, nil)
			sr := ShadowResult{PolicyID: c.id, Version: c.version, Digest: c.digest, Effect: eff, Matched: matched}
			if err != nil {
				sr.Effect, sr.Err = EffectError, err
			}
			d.Shadow = append(d.Shadow, sr)
			continue
		}
		start := len(d.Matched)
		var (
			eff       Effect
			defaulted bool
			err       error
		)
		d.Matched, eff, defaulted, err = c.evaluate(ctx, act, d.Matched)
		if err != nil {
			return nil, err
		}
		results = append(results, result{c: c, effect: eff, defaulted: defaulted, start: start, end: len(d.Matched)})
		if eff.rank() > d.Effect.rank() {
			d.Effect = eff
		}
	}
	if len(results) == 0 {
		tenant := in.TenantID
		if tenant == "" {
			tenant = `""`
		}
		d.Effect = EffectDeny
		d.Reasons = []string{"no policy applies to tenant " + tenant}
		return d, nil
	}
	for _, r := range results {
		if r.effect != d.Effect {
			continue
		}
		if r.defaulted {
			d.Reasons = append(d.Reasons, "policy "+r.c.id+": default "+string(r.effect))
			if r.effect == EffectRequireApproval {
				d.Approval = mergeApproval(d.Approval, &Approval{Quorum: 1, Expiry: DefaultApprovalExpiry})
			}
			continue
		}
		for i := r.start; i < r.end; i++ {
			if d.Matched[i].Effect != d.Effect {
				continue
			}
			d.Reasons = append(d.Reasons, d.Matched[i].Reason)
			if d.Effect == EffectRequireApproval {
				d.Approval = mergeApproval(d.Approval, r.c.rules[ruleIndex(r.c, d.Matched[i].RuleID)].approval)
			}
		}
	}
	return d, nil
}

func ruleIndex(c *compiled, id string) int {
	for i := range c.rules {
		if c.rules[i].id == id {
			return i
		}
	}
	return -1
}

// mergeApproval returns the strictest combination of acc (owned, may be nil)
// and a (not modified).
func mergeApproval(acc, a *Approval) *Approval {
	if acc == nil {
		return cloneApproval(a)
	}
	for _, r := range a.Roles {
		if !slices.Contains(acc.Roles, r) {
			acc.Roles = append(acc.Roles, r)
		}
	}
	for _, u := range a.Users {
		if !slices.Contains(acc.Users, u) {
			acc.Users = append(acc.Users, u)
		}
	}
	acc.Quorum = max(acc.Quorum, a.Quorum)
	acc.Expiry = min(acc.Expiry, a.Expiry)
	acc.StepUp = acc.StepUp || a.StepUp
	return acc
}

// evaluate evaluates every rule of one policy, appending matches to matched.
// It returns the policy's effect and whether it came from the default.
func (c *compiled) evaluate(ctx context.Context, act *activation, matched []Match) ([]Match, Effect, bool, error) {
	var deny, approve, allow bool
	for i := range c.rules {
		r := &c.rules[i]
		ok, err := r.eval(ctx, act)
		if err != nil {
			return matched, "", false, &EvalError{PolicyID: c.id, RuleID: r.id, Err: err}
		}
		if !ok {
			continue
		}
		matched = append(matched, Match{PolicyID: c.id, RuleID: r.id, Effect: r.effect, Reason: r.reason})
		switch r.effect {
		case EffectDeny:
			deny = true
		case EffectRequireApproval:
			approve = true
		case EffectAllow:
			allow = true
		}
	}
	switch {
	case deny:
		return matched, EffectDeny, false, nil
	case approve:
		return matched, EffectRequireApproval, false, nil
	case allow:
		return matched, EffectAllow, false, nil
	}
	return matched, c.def, true, nil
}

// eval evaluates one rule's condition.
func (r *compiledRule) eval(ctx context.Context, act *activation) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	// Without comprehensions an expression's work is bounded by its size
	// (and the cost limit), and cel-go only checks for interruption inside
	// comprehensions anyway, so the cheaper Eval is equivalent there.
	prg := r.prg
	if r.fast != nil && act.bounded {
		prg = r.fast
	}
	var err error
	var out any
	if r.loops {
		out, _, err = prg.ContextEval(ctx, act)
	} else {
		out, _, err = prg.Eval(act)
	}
	if err != nil {
		var cancelled interpreter.EvalCancelledError
		if errors.As(err, &cancelled) && cancelled.Cause == interpreter.CostLimitExceeded {
			return false, fmt.Errorf("%w (limit %d)", ErrCostLimit, MaxEvalCost)
		}
		if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
			return false, fmt.Errorf("%w: %w", err, ctxErr)
		}
		return false, err
	}
	b, ok := out.(types.Bool)
	if !ok {
		return false, errNotBool
	}
	return bool(b), nil
}
