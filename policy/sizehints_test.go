package policy

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSizeHintPrograms checks which rules get an untracked program for
// inputs within the size hints: those whose cost is bounded once the
// Guard's own fields are, and no others.
func TestSizeHintPrograms(t *testing.T) {
	for _, tc := range []struct {
		when     string
		wantFast bool
	}{
		{`action.tool_id == "payments"`, false}, // never tracked: no second program
		{`"support" in principal.roles`, true},
		{`action.target.contains(principal.user_id)`, true},
		{`principal.roles.exists(r, r == "x")`, true},
		{`principal.roles.exists(r, r.contains("x"))`, false}, // list elements are unbounded
		{`input.note.contains("x")`, false},                   // input is never bounded
		{`principal.roles.all(a, principal.roles.all(b, true))`, false},
		// A loop variable that shadows a top-level one could make a hinted
		// path name loop data: never hinted.
		{`principal.roles.exists(action, action == "x")`, false},
		{`principal.roles.exists(principal, principal == "x")`, false},
	} {
		t.Run(tc.when, func(t *testing.T) {
			p := mustParse(t, fmt.Sprintf("id: p\nversion: \"1\"\nrules:\n  - id: r\n    when: %q\n    effect: allow\n    reason: ok\n", tc.when))
			r := p.c.rules[0]
			assert.Equal(t, tc.wantFast, r.fast != nil, "fast program")
		})
	}
}

// TestSizeHintsKeepCostLimit proves the fast program is used only where
// the estimate it was admitted on holds: a rule whose cost grows with the
// number of roles is within the limit for a thousand roles, and for a
// hundred thousand it fails with ErrCostLimit exactly as without hints.
func TestSizeHintsKeepCostLimit(t *testing.T) {
	p := mustParse(t, `
id: p
version: "1"
rules:
  - id: r
    when: 'principal.roles.exists(r, false) || "admin" in principal.roles'
    effect: allow
    reason: ok
`)
	require.NotNil(t, p.c.rules[0].fast, "the rule is bounded under the hints")
	set, err := NewSet(p)
	require.NoError(t, err)
	roles := func(n int) []string {
		rs := make([]string, n)
		for i := range rs {
			rs[i] = "role"
		}
		return append(rs, "admin")
	}

	in := &Input{ToolID: "t", Roles: roles(sizeHintMax - 1)}
	require.True(t, withinSizeHints(in))
	d, err := set.Evaluate(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, EffectAllow, d.Effect)

	in = &Input{ToolID: "t", Roles: roles(100_000)}
	require.False(t, withinSizeHints(in))
	_, err = set.Evaluate(context.Background(), in)
	assert.ErrorIs(t, err, ErrCostLimit)
}

// TestWithinSizeHints checks every hinted field, one at a time, just
// within and just over the bound.
func TestWithinSizeHints(t *testing.T) {
	long := strings.Repeat("x", sizeHintMax+1)
	many := make([]string, sizeHintMax+1)
	set := map[string]func(in *Input, over bool){
		"action.tool_id":        func(in *Input, o bool) { in.ToolID = pick(o, long) },
		"action.operation":      func(in *Input, o bool) { in.Operation = pick(o, long) },
		"action.target":         func(in *Input, o bool) { in.Target = pick(o, long) },
		"principal.user_id":     func(in *Input, o bool) { in.UserID = pick(o, long) },
		"principal.roles":       func(in *Input, o bool) { in.Roles = pickN(o, many) },
		"principal.delegation":  func(in *Input, o bool) { in.Delegation = make([]Delegation, len(pickN(o, many))) },
		"agent.id":              func(in *Input, o bool) { in.AgentID = pick(o, long) },
		"agent.capabilities":    func(in *Input, o bool) { in.Capabilities = pickN(o, many) },
		"agent.assurance_level": func(in *Input, o bool) { in.AssuranceLevel = pick(o, long) },
		"tenant.id":             func(in *Input, o bool) { in.TenantID = pick(o, long) },
		"context.request": func(in *Input, o bool) {
			in.Request = map[string]string{}
			for i := range len(pickN(o, many)) {
				in.Request[fmt.Sprint(i)] = ""
			}
		},
	}
	require.Len(t, set, len(hintedFields), "every hinted field is tested")
	for name, f := range set {
		require.True(t, hintedFields[name], name)
		var in Input
		f(&in, false)
		assert.True(t, withinSizeHints(&in), "%s at the bound", name)
		f(&in, true)
		assert.False(t, withinSizeHints(&in), "%s over the bound", name)
	}
}

// pick returns long without its last byte (at the bound) or whole (over).
func pick(over bool, long string) string {
	if over {
		return long
	}
	return long[1:]
}

func pickN(over bool, many []string) []string {
	if over {
		return many
	}
	return many[1:]
}
