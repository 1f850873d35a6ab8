package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse("test.yaml", []byte(doc))
	require.NoError(t, err)
	return p
}

const minimalDoc = `
id: p
version: "1"
rules:
  - id: r
    when: "true"
    effect: allow
    reason: ok
`

func TestParseFields(t *testing.T) {
	p := mustParse(t, `
id: payments
version: "3"
description: refunds
default: require_approval
mode: shadow
tenants: [acme, globex]
rules:
  - id: big-refunds
    when: |
      action.tool_id == "payments"
    effect: require_approval
    reason: big refunds need a second person
    approval:
      roles: [finance-approver]
      users: [alice]
      quorum: 2
      expiry: 30m
      step_up: true
  - id: defaults
    when: "false"
    effect: require_approval
    reason: r
    approval: {roles: [x]}
`)
	assert.Equal(t, "payments", p.ID)
	assert.Equal(t, "3", p.Version)
	assert.Equal(t, "refunds", p.Description)
	assert.Equal(t, EffectRequireApproval, p.Default)
	assert.Equal(t, ModeShadow, p.Mode)
	assert.Equal(t, []string{"acme", "globex"}, p.Tenants)
	require.Len(t, p.Rules, 2)
	assert.Equal(t, Rule{
		ID:     "big-refunds",
		When:   `action.tool_id == "payments"`,
		Effect: EffectRequireApproval,
		Reason: "big refunds need a second person",
		Approval: &Approval{
			Roles: []string{"finance-approver"}, Users: []string{"alice"},
			Quorum: 2, Expiry: 30 * time.Minute, StepUp: true,
		},
	}, p.Rules[0])
	assert.Equal(t, &Approval{Roles: []string{"x"}, Quorum: 1, Expiry: DefaultApprovalExpiry}, p.Rules[1].Approval)
	assert.True(t, strings.HasPrefix(p.Digest(), "sha256:"), "Digest() = %q, want sha256: prefix", p.Digest())
	assert.Len(t, p.Digest(), len("sha256:")+64)
}

func TestParseDefaults(t *testing.T) {
	p := mustParse(t, minimalDoc)
	assert.Equal(t, EffectDeny, p.Default, "Default")
	assert.Equal(t, ModeEnforce, p.Mode, "Mode")
	assert.Empty(t, p.Tenants, "Tenants")
	assert.Nil(t, p.Rules[0].Approval, "Approval")
}

func TestParseErrors(t *testing.T) {
	rule := func(extra string) string {
		return "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"true\"\n    effect: allow\n    reason: ok\n" + extra
	}
	tests := []struct {
		name string
		doc  string
		want []string // substrings of the error message
	}{
		{"empty", "", []string{"bad.yaml", "empty document"}},
		{"comment only", "# nothing\n", []string{"bad.yaml", "empty document"}},
		{"syntax", "id: [p\n", []string{"bad.yaml", "yaml:"}},
		{"not a mapping", "- a\n- b\n", []string{"bad.yaml:1", "must be a mapping, got list"}},
		{"multiple documents", minimalDoc + "---\n" + minimalDoc, []string{"bad.yaml:9", "multiple YAML documents"}},
		{"unknown key", "id: p\nversion: \"1\"\ndefualt: allow\nrules: []\n", []string{"bad.yaml:3", `unknown key "defualt"`}},
		{"duplicate key", "id: p\nid: q\nversion: \"1\"\n", []string{"bad.yaml:2", "id: duplicate key (first at line 1)"}},
		{"missing id", "version: \"1\"\nrules: []\n", []string{"bad.yaml:1", "id: required key is missing"}},
		{"missing rules", "id: p\nversion: \"1\"\n", []string{"rules: required key is missing"}},
		{"no rules", "id: p\nversion: \"1\"\nrules: []\n", []string{"bad.yaml:3", "rules: must have at least one rule"}},
		{"rules not a list", "id: p\nversion: \"1\"\nrules: {a: b}\n", []string{"bad.yaml:3", "rules: must be a list of rules, got mapping"}},
		{"bad id", "id: Payments\nversion: \"1\"\n", []string{"bad.yaml:1", "id: must match"}},
		{"id with slash", "id: a/b\nversion: \"1\"\n", []string{"id: must match"}},
		{"unquoted version", "id: p\nversion: 3\n", []string{"bad.yaml:2", "version: must be a string, got integer (quote it)"}},
		{"version with space", "id: p\nversion: \"1 0\"\n", []string{"version: must be non-empty printable text"}},
		{"null description", "id: p\nversion: \"1\"\ndescription:\n", []string{"bad.yaml:3", "description: must be a string, got null"}},
		{"bad default", "id: p\nversion: \"1\"\ndefault: permit\n", []string{"bad.yaml:3", "default: must be allow, deny or require_approval"}},
		{"bad mode", "id: p\nversion: \"1\"\nmode: audit\n", []string{"mode: must be enforce or shadow"}},
		{"tenants not a list", "id: p\nversion: \"1\"\ntenants: acme\n", []string{"tenants: must be a list of strings, got string"}},
		{"tenant not a string", "id: p\nversion: \"1\"\ntenants: [acme, 42]\n", []string{"tenants[1]: must be a string, got integer"}},
		{"duplicate tenant", "id: p\nversion: \"1\"\ntenants: [acme, acme]\n", []string{`tenants[1]: duplicate value "acme"`}},
		{"alias", "id: &a p\nversion: *a\n", []string{"bad.yaml:2", "version: aliases are not allowed"}},
		{"rule unknown key", rule("    effct: deny\n"), []string{"bad.yaml:8", `rule "r1"`, `unknown key "effct"`}},
		{"rule unknown key before id", "id: p\nversion: \"1\"\nrules:\n  - whn: x\n    id: r1\n", []string{"bad.yaml:4", `rule "r1"`, `unknown key "whn"`}},
		{"rule without id", "id: p\nversion: \"1\"\nrules:\n  - when: \"true\"\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:4", `rule "rules[0]"`, "id: required key is missing"}},
		{"rule missing reason", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"true\"\n    effect: allow\n", []string{`rule "r1"`, "reason: required key is missing"}},
		{"rule empty reason", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"true\"\n    effect: allow\n    reason: \" \"\n", []string{"bad.yaml:7", "reason: must not be empty"}},
		{"rule bad effect", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"true\"\n    effect: permit\n    reason: ok\n", []string{"bad.yaml:6", `rule "r1"`, "effect: must be allow, deny or require_approval"}},
		{"rule duplicate key", rule("    reason: again\n"), []string{"bad.yaml:8", `rule "r1"`, "reason: duplicate key (first at line 7)"}},
		{"duplicate rule id", rule("  - id: r1\n    when: \"true\"\n    effect: deny\n    reason: no\n"), []string{"bad.yaml:8", `rule "r1"`, "id: duplicate rule id (first at line 4)"}},
		{"rule not a mapping", "id: p\nversion: \"1\"\nrules:\n  - just text\n", []string{"bad.yaml:4", `rule "rules[0]"`, "must be a mapping, got string"}},
		{"approval missing", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n", []string{`rule "r1"`, "approval: required with effect require_approval"}},
		{"approval with allow", rule("    approval: {roles: [x]}\n"), []string{"bad.yaml:8", `rule "r1"`, "approval: only allowed with effect require_approval"}},
		{"approval bad quorum type", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval:\n      quorum: two\n", []string{"bad.yaml:9", `rule "big"`, "approval.quorum: must be an integer, got string"}},
		{"approval zero quorum", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {quorum: 0}\n", []string{"approval.quorum: must be between 1 and 100"}},
		{"approval unmeetable quorum", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {users: [alice], quorum: 2}\n", []string{"approval.quorum: quorum 2 can never be met"}},
		{"approval bad expiry", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {expiry: 1 day}\n", []string{"approval.expiry: must be a positive Go duration"}},
		{"approval negative expiry", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {expiry: -1h}\n", []string{"approval.expiry: must be a positive Go duration"}},
		{"approval bad step_up", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {step_up: yes}\n", []string{"approval.step_up: must be true or false, got string"}},
		{"approval unknown key", "id: p\nversion: \"1\"\nrules:\n  - id: big\n    when: \"true\"\n    effect: require_approval\n    reason: ok\n    approval: {role: [x]}\n", []string{"bad.yaml:8", `rule "big"`, `approval: unknown key "role"`}},
		{"when empty", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: \"  \"\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", "when: must not be empty"}},
		{"when not a string", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: true\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", "when: must be a string, got boolean (quote it)"}},
		{"when syntax error", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: action.tool_id == \n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", `rule "r1"`, "when: 1:"}},
		{"when undeclared", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: action.tool_id == \"x\" && inptu.amount > 1\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", `rule "r1"`, "when: 1:26: undeclared reference to 'inptu' (did you mean 'input'?)"}},
		{"when unknown field", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: |\n      action.tool_id == \"x\" &&\n        principal.role == \"admin\"\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", `rule "r1"`, "when: 2:12: undefined field 'role'"}},
		{"when not bool", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: action.tool_id\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", "when: 1:1: must be a bool expression, got string"}},
		{"when dyn", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: input.flag\n    effect: allow\n    reason: ok\n", []string{"must be a bool expression, got dyn"}},
		{"when type error", "id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: action.tool_id > 1\n    effect: allow\n    reason: ok\n", []string{"bad.yaml:5", "when: 1:16: found no matching overload for '_>_'"}},
		{"too many rules", "id: p\nversion: \"1\"\nrules:\n" + strings.Repeat("  - {id: r, when: \"true\", effect: allow, reason: x}\n", MaxRules+1), []string{"bad.yaml:4", "rules: has 1001 rules, more than the limit of 1000"}},
		{"expression too long", "id: p\nversion: \"1\"\nrules:\n  - id: r\n    when: \"" + strings.Repeat("true && ", MaxExpressionSize/8) + "true\"\n    effect: allow\n    reason: x\n", []string{"bad.yaml:5", `rule "r"`, "when: 1:1: expression code point size exceeds limit"}},
		{"too large", "id: p\n" + strings.Repeat("#", MaxDocumentSize), []string{"bad.yaml", "larger than the 1048576 byte limit"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Parse("bad.yaml", []byte(tt.doc))
			require.Error(t, err, "Parse(%q) = %v, want error", tt.name, p)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "Parse error %T is not a *ParseError", err)
			assert.Equal(t, "bad.yaml", pe.File)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w, "Parse(%s) error", tt.name)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "policy: bad.yaml"), "error %q lacks the policy: <file> prefix", err)
		})
	}
}

func TestParseExprErrorPosition(t *testing.T) {
	_, err := Parse("p.yaml", []byte("id: p\nversion: \"1\"\nrules:\n  - id: r1\n    when: |\n      action.tool_id == \"x\" &&\n        principal.role == \"admin\"\n    effect: allow\n    reason: ok\n"))
	var ee *ExprError
	require.True(t, errors.As(err, &ee), "Parse error = %v, want an *ExprError", err)
	assert.Equal(t, 2, ee.Line, "ExprError.Line")
	assert.Equal(t, 12, ee.Column, "ExprError.Column")
	var pe *ParseError
	require.True(t, errors.As(err, &pe))
	assert.Equal(t, "r1", pe.Rule)
	assert.Equal(t, "when", pe.Key)
	assert.Equal(t, 5, pe.Line)
}

func TestDigestStability(t *testing.T) {
	base := `
id: payments
version: "3"
rules:
  - id: big
    when: input.amount > 100
    effect: require_approval
    reason: needs approval
    approval:
      roles: [a, b]
      expiry: 30m
`
	same := map[string]string{
		"key order and comments": `
# refunds policy
version: '3'   # quoted differently
rules:
  - reason: "needs approval"
    effect: require_approval
    approval: {expiry: 0.5h, roles: [b, a]}
    id: big
    when: |
      input.amount > 100
id: "payments"
`,
		"defaults written out": `
id: payments
version: "3"
description: ""
default: deny
mode: enforce
tenants: []
rules:
  - id: big
    when: input.amount > 100
    effect: require_approval
    reason: needs approval
    approval:
      roles: [a, b]
      users: []
      quorum: 1
      expiry: 30m
      step_up: false
`,
	}
	different := map[string]string{
		"version":     strings.Replace(base, `"3"`, `"4"`, 1),
		"expression":  strings.Replace(base, "> 100", ">= 100", 1),
		"reason":      strings.Replace(base, "needs approval", "needs an approval", 1),
		"expiry":      strings.Replace(base, "30m", "31m", 1),
		"default":     base + "default: allow\n",
		"mode":        base + "mode: shadow\n",
		"tenants":     base + "tenants: [acme]\n",
		"description": base + "description: x\n",
	}
	want := mustParse(t, base).Digest()
	for name, doc := range same {
		t.Run("same/"+name, func(t *testing.T) {
			assert.Equal(t, want, mustParse(t, doc).Digest(), "Digest() of an equivalent spelling")
		})
	}
	for name, doc := range different {
		t.Run("different/"+name, func(t *testing.T) {
			assert.NotEqual(t, want, mustParse(t, doc).Digest(), "Digest() after changing %s", name)
		})
	}
}

// TestDigestGolden pins the digest of the demo policy: a change here means
// receipts already written no longer name the policy they were decided by.
func TestDigestGolden(t *testing.T) {
	p, err := LoadFile(filepath.Join("testdata", "demo.yaml"))
	require.NoError(t, err)
	assert.Equal(t, "sha256:975d03129f763a73dffc44cc695240366ee082bb82185a1b660e1cd2755451bb", p.Digest())
}

func TestPolicyFieldsDoNotAffectEvaluation(t *testing.T) {
	p := mustParse(t, minimalDoc)
	d := p.Digest()
	p.Rules[0].Effect = EffectDeny
	p.ID = "other"
	assert.Equal(t, d, p.Digest(), "Digest() after editing exported fields")
	s, err := NewSet(p)
	require.NoError(t, err)
	assert.Equal(t, "p", s.ID(), "Set.ID() after editing exported fields")
	assert.Empty(t, (&Policy{}).Digest(), "Digest() of an unparsed Policy")
}

func TestLoadDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600))
	}
	write("b.yaml", strings.Replace(minimalDoc, "id: p", "id: b", 1))
	write("a.yml", strings.Replace(minimalDoc, "id: p", "id: a", 1))
	write("a_test.yaml", "this: is not a policy\n")
	write("notes.txt", "ignored")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "sub.yaml"), 0o700))

	ps, err := LoadDir(dir)
	require.NoError(t, err)
	require.Len(t, ps, 2)
	assert.Equal(t, "a", ps[0].ID, "LoadDir()[0].ID")
	assert.Equal(t, "b", ps[1].ID, "LoadDir()[1].ID")

	write("c.yaml", "id: c\n")
	write("d.yaml", "id: D\n")
	_, err = LoadDir(dir)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "c.yaml")
	assert.Contains(t, err.Error(), "d.yaml", "LoadDir error reports every bad file")

	empty := t.TempDir()
	_, err = LoadDir(empty)
	assert.ErrorContains(t, err, "no policy documents")

	_, err = LoadDir(filepath.Join(empty, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}

func TestLoadFile(t *testing.T) {
	_, err := LoadFile(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.ErrorIs(t, err, os.ErrNotExist)

	path := filepath.Join(t.TempDir(), "big.yaml")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("#", MaxDocumentSize+10)), 0o600))
	_, err = LoadFile(path)
	assert.ErrorContains(t, err, "byte limit")
}
