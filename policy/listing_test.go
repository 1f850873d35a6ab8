package policy

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNeverAllows(t *testing.T) {
	const src = `
id: mcp
version: "1"
default: deny
tenants: [acme]
rules:
  - id: files-read
    when: action.tool_id == "files" && action.operation == "read"
    effect: allow
    reason: reading is fine
  - id: files-write-small
    when: action.tool_id == "files" && action.operation == "write" && input.size < 100
    effect: allow
    reason: small writes
  - id: no-shell-for-bots
    when: action.tool_id == "shell" && principal.user_id == "bot"
    effect: deny
    reason: bots get no shell
  - id: shell
    when: action.tool_id == "shell"
    effect: require_approval
    reason: shell needs approval
    approval: {roles: [ops], quorum: 1, expiry: 1h}
  - id: docs
    when: action.tool_id == "docs" && action.target.startsWith("public/")
    effect: allow
    reason: public docs
  - id: secrets-by-path
    when: action.tool_id == "vault" && input.path.startsWith("/secret")
    effect: deny
    reason: no secrets
`
	p, err := Parse("mcp.yaml", []byte(src))
	require.NoError(t, err)
	set, err := NewSet(p)
	require.NoError(t, err)
	tests := []struct {
		name       string
		in         Input
		wantHidden bool
	}{
		{"allowed without input", Input{TenantID: "acme", ToolID: "files", Operation: "read", UserID: "u"}, false},
		{"allowed depending on input", Input{TenantID: "acme", ToolID: "files", Operation: "write", UserID: "u"}, false},
		{"no rule can allow", Input{TenantID: "acme", ToolID: "files", Operation: "delete", UserID: "u"}, true},
		{"deny without input", Input{TenantID: "acme", ToolID: "shell", Operation: "run", UserID: "bot"}, true},
		{"approval possible", Input{TenantID: "acme", ToolID: "shell", Operation: "run", UserID: "alice"}, false},
		{"only an input-dependent deny, default deny", Input{TenantID: "acme", ToolID: "vault", Operation: "get", UserID: "u"}, true},
		{"no policy for the tenant", Input{TenantID: "globex", ToolID: "files", Operation: "read", UserID: "u"}, true},
	}
	// A rule on the target: unknown when the target is.
	in := Input{TenantID: "acme", ToolID: "docs", Operation: "read", UserID: "u"}
	hidden, err := set.NeverAllows(context.Background(), &in, false)
	require.NoError(t, err)
	assert.True(t, hidden, "target \"\" cannot match the docs rule")
	hidden, err = set.NeverAllows(context.Background(), &in, true)
	require.NoError(t, err)
	assert.False(t, hidden, "with the target unknown the docs rule may match")
	other := Input{TenantID: "acme", ToolID: "docs", Operation: "delete", UserID: "u"}
	hidden, err = set.NeverAllows(context.Background(), &other, true)
	require.NoError(t, err)
	assert.False(t, hidden, "the docs rule does not look at the operation")
	nope := Input{TenantID: "acme", ToolID: "wiki", Operation: "read", UserID: "u"}
	hidden, err = set.NeverAllows(context.Background(), &nope, true)
	require.NoError(t, err)
	assert.True(t, hidden, "no rule names the wiki, whatever the target")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := set.NeverAllows(context.Background(), &tt.in, false)
			require.NoError(t, err)
			assert.Equal(t, tt.wantHidden, got)
			// Never hidden when some input is allowed.
			if !got {
				return
			}
			for _, input := range []any{nil, map[string]any{"size": 1.0, "path": "/tmp"}} {
				in := tt.in
				in.Input = input
				d, err := set.Evaluate(context.Background(), &in)
				if err == nil {
					assert.Equal(t, EffectDeny, d.Effect, "a hidden tool was allowed for input %v", input)
				}
			}
		})
	}
}
