package policy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rl is a rule for the test policy builder.
type rl struct {
	id, when string
	effect   Effect
	approval string // YAML flow mapping, for require_approval rules
}

// pol builds and parses a policy; header holds extra top-level lines.
func pol(t testing.TB, id, header string, rules ...rl) *Policy {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nversion: \"1\"\n%s\nrules:\n", id, header)
	for _, r := range rules {
		fmt.Fprintf(&b, "  - id: %s\n    when: %q\n    effect: %s\n    reason: %s says %s\n", r.id, r.when, r.effect, r.id, r.effect)
		if r.effect == EffectRequireApproval {
			a := r.approval
			if a == "" {
				a = "{}"
			}
			fmt.Fprintf(&b, "    approval: %s\n", a)
		}
	}
	p, err := Parse(id+".yaml", []byte(b.String()))
	require.NoError(t, err)
	return p
}

func set(t testing.TB, ps ...*Policy) *Set {
	t.Helper()
	s, err := NewSet(ps...)
	require.NoError(t, err)
	return s
}

func acme() *Input {
	return &Input{ToolID: "payments", Operation: "refund", TenantID: "acme", Input: map[string]any{"amount": 50.0}}
}

func TestEvaluateCombining(t *testing.T) {
	allowR := rl{id: "allow-all", when: "true", effect: EffectAllow}
	denyR := rl{id: "deny-all", when: "true", effect: EffectDeny}
	approveR := rl{id: "approve-all", when: "true", effect: EffectRequireApproval, approval: "{roles: [finance]}"}
	never := rl{id: "never", when: "false", effect: EffectDeny}

	tests := []struct {
		name        string
		policies    []*Policy
		tenant      string // "acme" when empty
		emptyTenant bool
		wantEffect  Effect
		wantMatched []string
		wantReasons []string
	}{
		{
			name:        "deny overrides allow within a policy",
			policies:    []*Policy{pol(t, "p", "", allowR, denyR)},
			wantEffect:  EffectDeny,
			wantMatched: []string{"p/allow-all", "p/deny-all"},
			wantReasons: []string{"deny-all says deny"},
		},
		{
			name:        "deny overrides require_approval within a policy",
			policies:    []*Policy{pol(t, "p", "", approveR, denyR)},
			wantEffect:  EffectDeny,
			wantMatched: []string{"p/approve-all", "p/deny-all"},
			wantReasons: []string{"deny-all says deny"},
		},
		{
			name:        "require_approval overrides allow within a policy",
			policies:    []*Policy{pol(t, "p", "", allowR, approveR)},
			wantEffect:  EffectRequireApproval,
			wantMatched: []string{"p/allow-all", "p/approve-all"},
			wantReasons: []string{"approve-all says require_approval"},
		},
		{
			name:        "allow",
			policies:    []*Policy{pol(t, "p", "", allowR, never)},
			wantEffect:  EffectAllow,
			wantMatched: []string{"p/allow-all"},
			wantReasons: []string{"allow-all says allow"},
		},
		{
			name:        "no match falls to default deny",
			policies:    []*Policy{pol(t, "p", "", never)},
			wantEffect:  EffectDeny,
			wantMatched: []string{},
			wantReasons: []string{"policy p: default deny"},
		},
		{
			name:        "no match falls to default allow",
			policies:    []*Policy{pol(t, "p", "default: allow", never)},
			wantEffect:  EffectAllow,
			wantMatched: []string{},
			wantReasons: []string{"policy p: default allow"},
		},
		{
			name:        "no match falls to default require_approval",
			policies:    []*Policy{pol(t, "p", "default: require_approval", never)},
			wantEffect:  EffectRequireApproval,
			wantMatched: []string{},
			wantReasons: []string{"policy p: default require_approval"},
		},
		{
			name:        "deny overrides allow across policies",
			policies:    []*Policy{pol(t, "b", "", denyR), pol(t, "a", "", allowR)},
			wantEffect:  EffectDeny,
			wantMatched: []string{"a/allow-all", "b/deny-all"},
			wantReasons: []string{"deny-all says deny"},
		},
		{
			name:        "default deny of one policy overrides allow of another",
			policies:    []*Policy{pol(t, "a", "", allowR), pol(t, "b", "", never)},
			wantEffect:  EffectDeny,
			wantMatched: []string{"a/allow-all"},
			wantReasons: []string{"policy b: default deny"},
		},
		{
			name:        "require_approval across policies",
			policies:    []*Policy{pol(t, "a", "", allowR), pol(t, "b", "", approveR)},
			wantEffect:  EffectRequireApproval,
			wantMatched: []string{"a/allow-all", "b/approve-all"},
			wantReasons: []string{"approve-all says require_approval"},
		},
		{
			name:        "allow needs every policy to allow",
			policies:    []*Policy{pol(t, "a", "", allowR), pol(t, "b", "default: allow", never)},
			wantEffect:  EffectAllow,
			wantMatched: []string{"a/allow-all"},
			wantReasons: []string{"allow-all says allow", "policy b: default allow"},
		},
		{
			name:        "tenant-scoped deny applies to its tenant",
			policies:    []*Policy{pol(t, "a", "", allowR), pol(t, "b", "tenants: [acme]", denyR)},
			tenant:      "acme",
			wantEffect:  EffectDeny,
			wantMatched: []string{"a/allow-all", "b/deny-all"},
			wantReasons: []string{"deny-all says deny"},
		},
		{
			name:        "tenant-scoped deny skips other tenants",
			policies:    []*Policy{pol(t, "a", "", allowR), pol(t, "b", "tenants: [acme]", denyR)},
			tenant:      "globex",
			wantEffect:  EffectAllow,
			wantMatched: []string{"a/allow-all"},
			wantReasons: []string{"allow-all says allow"},
		},
		{
			name:        "no policy applies to the tenant",
			policies:    []*Policy{pol(t, "a", "tenants: [acme, initech]", allowR)},
			tenant:      "globex",
			wantEffect:  EffectDeny,
			wantMatched: []string{},
			wantReasons: []string{"no policy applies to tenant globex"},
		},
		{
			name:        "no policy applies to an empty tenant",
			policies:    []*Policy{pol(t, "a", "tenants: [acme]", allowR)},
			emptyTenant: true,
			wantEffect:  EffectDeny,
			wantMatched: []string{},
			wantReasons: []string{`no policy applies to tenant ""`},
		},
		{
			name:        "only shadow policies apply",
			policies:    []*Policy{pol(t, "a", "mode: shadow", allowR)},
			wantEffect:  EffectDeny,
			wantMatched: []string{},
			wantReasons: []string{"no policy applies to tenant acme"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := set(t, tt.policies...)
			in := acme()
			if tt.tenant != "" {
				in.TenantID = tt.tenant
			}
			if tt.emptyTenant {
				in.TenantID = ""
			}
			d, err := s.Evaluate(context.Background(), in)
			require.NoError(t, err)
			assert.Equal(t, tt.wantEffect, d.Effect, "Evaluate().Effect")
			assert.Equal(t, tt.wantMatched, d.MatchedRules(), "Evaluate().Matched")
			assert.Equal(t, tt.wantReasons, d.Reasons, "Evaluate().Reasons")
			if d.Effect == EffectRequireApproval {
				assert.NotNil(t, d.Approval, "Evaluate().Approval")
			} else {
				assert.Nil(t, d.Approval, "Evaluate().Approval")
			}
		})
	}
}

func TestEvaluateApprovalMerge(t *testing.T) {
	a := pol(t, "a", "",
		rl{id: "r1", when: "true", effect: EffectRequireApproval, approval: "{roles: [finance, ops], users: [alice], quorum: 2, expiry: 4h}"},
		rl{id: "r2", when: "true", effect: EffectRequireApproval, approval: "{roles: [finance, legal], expiry: 30m}"},
		rl{id: "r3", when: "false", effect: EffectRequireApproval, approval: "{quorum: 5, expiry: 1m, step_up: true}"},
	)
	b := pol(t, "b", "",
		rl{id: "r4", when: "true", effect: EffectRequireApproval, approval: "{roles: [audit], users: [bob, alice], quorum: 3, step_up: true}"},
	)
	d, err := set(t, a, b).Evaluate(context.Background(), acme())
	require.NoError(t, err)
	require.Equal(t, EffectRequireApproval, d.Effect)
	assert.Equal(t, &Approval{
		Roles:  []string{"finance", "ops", "legal", "audit"},
		Users:  []string{"alice", "bob"},
		Quorum: 3,
		Expiry: 30 * time.Minute,
		StepUp: true,
	}, d.Approval, "Evaluate().Approval: union of roles and users, max quorum, min expiry, step-up if any; unmatched r3 ignored")

	// The merge must not alias the policy's own approval.
	assert.Equal(t, []string{"finance", "ops"}, a.c.rules[0].approval.Roles, "compiled approval after merge")

	// A default require_approval contributes quorum 1 and the default expiry.
	c := pol(t, "c", "default: require_approval", rl{id: "never", when: "false", effect: EffectDeny})
	d, err = set(t, c).Evaluate(context.Background(), acme())
	require.NoError(t, err)
	assert.Equal(t, &Approval{Quorum: 1, Expiry: DefaultApprovalExpiry}, d.Approval)
}

func TestEvaluateShadow(t *testing.T) {
	enforce := pol(t, "enforce", "", rl{id: "ok", when: "true", effect: EffectAllow})
	shadowDeny := pol(t, "shadow-deny", "mode: shadow",
		rl{id: "big", when: "input.amount > 10", effect: EffectDeny},
		rl{id: "small", when: "input.amount <= 10", effect: EffectAllow})
	shadowErr := pol(t, "shadow-err", "mode: shadow",
		rl{id: "first", when: "true", effect: EffectAllow},
		rl{id: "broken", when: "input.nope > 1", effect: EffectDeny})
	shadowOther := pol(t, "shadow-other", "mode: shadow\ntenants: [globex]", rl{id: "x", when: "true", effect: EffectDeny})

	s := set(t, enforce, shadowDeny, shadowErr, shadowOther)
	d, err := s.Evaluate(context.Background(), acme())
	require.NoError(t, err, "an error in a shadow policy must not fail Evaluate")
	assert.Equal(t, EffectAllow, d.Effect, "shadow policies never change the effect")
	assert.Equal(t, []string{"enforce/ok"}, d.MatchedRules(), "Matched holds enforcing policies only")
	assert.Equal(t, []string{"ok says allow"}, d.Reasons)
	require.Len(t, d.Shadow, 2, "one result per shadow policy that applies to the tenant")

	assert.Equal(t, "shadow-deny", d.Shadow[0].PolicyID)
	assert.Equal(t, "1", d.Shadow[0].Version)
	assert.Equal(t, shadowDeny.Digest(), d.Shadow[0].Digest)
	assert.Equal(t, EffectDeny, d.Shadow[0].Effect)
	assert.Equal(t, []Match{{PolicyID: "shadow-deny", RuleID: "big", Effect: EffectDeny, Reason: "big says deny"}}, d.Shadow[0].Matched)
	assert.NoError(t, d.Shadow[0].Err)

	assert.Equal(t, "shadow-err", d.Shadow[1].PolicyID)
	assert.Equal(t, EffectError, d.Shadow[1].Effect)
	var ee *EvalError
	require.True(t, errors.As(d.Shadow[1].Err, &ee), "ShadowResult.Err = %v, want *EvalError", d.Shadow[1].Err)
	assert.Equal(t, "broken", ee.RuleID)
	assert.Equal(t, []string{"shadow-err/first"}, []string{d.Shadow[1].Matched[0].String()})
}

func TestEvaluateErrors(t *testing.T) {
	items := make([]any, 1000)
	for i := range items {
		items[i] = float64(i)
	}
	tests := []struct {
		name    string
		when    string
		input   any
		ctx     func() context.Context
		wantIs  error
		wantMsg string
	}{
		{
			name:    "missing key",
			when:    "input.nope > 1",
			input:   map[string]any{"amount": 1.0},
			wantMsg: "no such key: nope",
		},
		{
			name:    "type mismatch",
			when:    `input.amount.startsWith("1")`,
			input:   map[string]any{"amount": 1.0},
			wantMsg: "no such overload",
		},
		{
			name:    "missing key in a comprehension",
			when:    "input.items.all(x, x.nope > 1)",
			input:   map[string]any{"items": []any{map[string]any{}}},
			wantMsg: "no such key: nope",
		},
		{
			name:   "cost limit exceeded",
			when:   "input.items.all(x, input.items.all(y, x + y >= 0.0))",
			input:  map[string]any{"items": items},
			wantIs: ErrCostLimit,
		},
		{
			name:  "cancelled context",
			when:  "true",
			input: nil,
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			wantIs: context.Canceled,
		},
		{
			name:    "context cancelled during a comprehension",
			when:    "input.items.all(x, x >= 0.0)",
			input:   map[string]any{"items": items},
			ctx:     func() context.Context { return &lateCancel{Context: context.Background(), okChecks: 2} },
			wantIs:  context.Canceled,
			wantMsg: "interrupted",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := set(t, pol(t, "p", "", rl{id: "r", when: tt.when, effect: EffectAllow}))
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			in := acme()
			in.Input = tt.input
			d, err := s.Evaluate(ctx, in)
			require.Error(t, err, "Evaluate(%s) = %+v, want error", tt.when, d)
			assert.Nil(t, d, "Evaluate returns no decision with an error")
			assert.True(t, strings.HasPrefix(err.Error(), "policy: evaluate: "), "error %q lacks prefix", err)
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			if tt.wantMsg != "" {
				assert.ErrorContains(t, err, tt.wantMsg)
				var ee *EvalError
				require.True(t, errors.As(err, &ee), "error %T is not an *EvalError", err)
				assert.Equal(t, "p", ee.PolicyID)
				assert.Equal(t, "r", ee.RuleID)
			}
		})
	}

	_, err := set(t, pol(t, "p", "", rl{id: "r", when: "true", effect: EffectAllow})).Evaluate(context.Background(), nil)
	assert.ErrorContains(t, err, "nil set or input")
	var nilSet *Set
	_, err = nilSet.Evaluate(context.Background(), acme())
	assert.ErrorContains(t, err, "nil set or input")
}

// lateCancel is a context whose Done channel is closed from the start but
// whose Err reports cancellation only after okChecks calls, so cancellation
// is first noticed by cel-go's interrupt check inside a comprehension.
type lateCancel struct {
	context.Context
	okChecks int32
	calls    atomic.Int32
}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *lateCancel) Done() <-chan struct{} { return closedCh }

func (c *lateCancel) Err() error {
	if c.calls.Add(1) <= c.okChecks {
		return nil
	}
	return context.Canceled
}

func TestErrorAbsorbedByShortCircuit(t *testing.T) {
	s := set(t, pol(t, "p", "",
		rl{id: "r", when: `action.tool_id == "other" && input.nope > 1`, effect: EffectDeny},
		rl{id: "ok", when: "true", effect: EffectAllow}))
	d, err := s.Evaluate(context.Background(), acme())
	require.NoError(t, err, "&& with a false side absorbs the error")
	assert.Equal(t, EffectAllow, d.Effect)
}

func TestEvaluateVariables(t *testing.T) {
	in := &Input{
		ToolID: "payments", Operation: "refund", Target: "order/1",
		Input: map[string]any{
			"amount": 150.0, "currency": "EUR",
			"items": []any{map[string]any{"sku": "a"}},
			"count": 3, // not JSON-decoded, but adaptable
			"none":  nil,
		},
		UserID: "bob", Roles: []string{"support", "admin"},
		Delegation: []Delegation{
			{Subject: "agent-1", Issuer: "bob", Scope: []string{"payments", "crm"}},
			{Subject: "agent-2", Issuer: "agent-1", Scope: []string{"payments"}},
		},
		AgentID: "agent-2", TenantID: "acme",
		Time:    time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		Request: map[string]string{"ip": "10.0.0.1"},
	}
	tests := []struct {
		when string
		want bool
	}{
		{`action.tool_id == "payments"`, true},
		{`action.operation == "refund"`, true},
		{`action.target.startsWith("order/")`, true},
		{`has(action.target)`, true},
		{`input.amount > 100`, true},
		{`input.amount > 100.5`, true},
		{`input.amount < 100`, false},
		{`input.amount == 150`, true},
		{`input.amount == 150u`, true},
		{`input.count == 3`, true},
		{`input.count < 3.5`, true},
		{`input.items[0].sku == "a"`, true},
		{`input["currency"] == "EUR"`, true},
		{`has(input.amount)`, true},
		{`has(input.nope)`, false},
		{`input.none == null`, true},
		{`size(input) == 5`, true},
		{`principal.user_id == "bob"`, true},
		{`"admin" in principal.roles`, true},
		{`"root" in principal.roles`, false},
		{`size(principal.roles) == 2`, true},
		{`size(principal.delegation) <= 2`, true},
		{`size(principal.delegation) > 2`, false},
		{`principal.delegation[0].sub == "agent-1" && principal.delegation[0].iss == "bob"`, true},
		{`principal.delegation.all(d, "payments" in d.scope)`, true},
		{`principal.delegation.exists(d, "crm" in d.scope && d.sub == "agent-2")`, false},
		{`has(principal.delegation[1].scope)`, true},
		{`agent.id == "agent-2"`, true},
		{`tenant.id == "acme"`, true},
		{`context.time > timestamp("2026-01-01T00:00:00Z")`, true},
		{`context.time.getHours() == 15`, true},
		{`context.time - timestamp("2026-01-02T15:00:00Z") < duration("5m")`, true},
		{`context.request["ip"] == "10.0.0.1"`, true},
		{`context.request.ip.startsWith("10.")`, true},
		{`has(context.request.ip)`, true},
		{`has(context.request.port)`, false},
		{`action.tool_id.upperAscii() == "PAYMENTS"`, true},
		{`"a,b".split(",").size() == 2`, true},
		{`action == action`, true},
		{`type(action) == type(action)`, true},
		{`principal.delegation[0] == principal.delegation[0]`, true},
		{`principal.delegation[0] == principal.delegation[1]`, false},
	}
	for _, tt := range tests {
		t.Run(tt.when, func(t *testing.T) {
			s := set(t, pol(t, "p", "", rl{id: "r", when: tt.when, effect: EffectAllow}))
			d, err := s.Evaluate(context.Background(), in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, len(d.Matched) == 1, "rule %q matched", tt.when)
		})
	}
}

func TestEvaluateEmptyInput(t *testing.T) {
	s := set(t, pol(t, "p", "",
		rl{id: "r", when: `!has(input.amount) && size(input) == 0 && !has(action.target) && !has(context.time) && size(principal.delegation) == 0`, effect: EffectAllow}))
	d, err := s.Evaluate(context.Background(), &Input{})
	require.NoError(t, err)
	assert.Equal(t, EffectAllow, d.Effect, "an input without fields sees empty values")
}

func TestEvaluateConcurrent(t *testing.T) {
	s := set(t, pol(t, "p", "",
		rl{id: "small", when: "input.amount <= 100", effect: EffectAllow},
		rl{id: "big", when: `input.amount > 100 && "admin" in principal.roles`, effect: EffectRequireApproval, approval: "{roles: [x]}"}))
	var wg sync.WaitGroup
	var bad atomic.Int32
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				amount := float64(g*200 + i)
				in := &Input{Input: map[string]any{"amount": amount}, Roles: []string{"admin"}}
				d, err := s.Evaluate(context.Background(), in)
				want := EffectAllow
				if amount > 100 {
					want = EffectRequireApproval
				}
				if err != nil || d.Effect != want {
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, bad.Load(), "concurrent evaluations with wrong results")
}

func TestNewSet(t *testing.T) {
	a := pol(t, "a", "", rl{id: "r", when: "true", effect: EffectAllow})
	b := pol(t, "b", "", rl{id: "r", when: "true", effect: EffectAllow})
	b2 := pol(t, "b", "", rl{id: "r", when: "false", effect: EffectAllow})

	_, err := NewSet()
	assert.ErrorContains(t, err, "no policies")
	_, err = NewSet(a, nil)
	assert.ErrorContains(t, err, "not built by Parse")
	_, err = NewSet(&Policy{ID: "x"})
	assert.ErrorContains(t, err, "not built by Parse")
	_, err = NewSet(b, a, b2)
	assert.ErrorContains(t, err, `duplicate policy id "b"`)

	one := set(t, a)
	assert.Equal(t, "a", one.ID())
	assert.Equal(t, "1", one.Version())
	assert.Equal(t, a.Digest(), one.Digest(), "single-policy set digest")
	assert.Equal(t, []*Policy{a}, one.Policies())

	ab := set(t, b, a)
	assert.Equal(t, "a+b", ab.ID())
	assert.Equal(t, "1+1", ab.Version())
	assert.Equal(t, []*Policy{a, b}, ab.Policies(), "Policies() in id order")
	assert.Equal(t, set(t, a, b).Digest(), ab.Digest(), "digest independent of argument order")
	assert.NotEqual(t, set(t, a, b2).Digest(), ab.Digest(), "digest changes with a member")
	assert.NotEqual(t, a.Digest(), ab.Digest())
	// sha256 of {"digest","id","version"} objects in id order, per the package doc.
	want, err := canonicalDigest([]map[string]string{
		{"id": "a", "version": "1", "digest": a.Digest()},
		{"id": "b", "version": "1", "digest": b.Digest()},
	})
	require.NoError(t, err)
	assert.Equal(t, want, ab.Digest())

	ps := ab.Policies()
	ps[0] = nil
	assert.Equal(t, a, ab.Policies()[0], "Policies() returns a copy")
}

func TestMatchedRuleName(t *testing.T) {
	m := Match{PolicyID: "payments", RuleID: "small-refunds"}
	assert.Equal(t, "payments/small-refunds", MatchedRuleName(m))
	assert.Equal(t, "payments/small-refunds", m.String())
}
