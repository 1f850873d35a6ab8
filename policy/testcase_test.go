package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func demoSet(t testing.TB) *Set {
	t.Helper()
	ps, err := LoadDir("testdata")
	require.NoError(t, err)
	return set(t, ps...)
}

func TestLoadTestsDemo(t *testing.T) {
	cases, err := LoadTests("testdata")
	require.NoError(t, err)
	require.Len(t, cases, 7)
	assert.Equal(t, TestCase{
		File: filepath.Join("testdata", "demo_test.yaml"),
		Line: 2,
		Name: "small refund allowed",
		Input: Input{
			ToolID: "payments", Operation: "refund", Target: "order/1",
			Input:  map[string]any{"amount": 50.0},
			UserID: "bob", Roles: []string{"support"},
			AgentID: "agent-1", TenantID: "acme",
			Time:    time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
			Request: map[string]string{"ip": "10.0.0.1"},
		},
		Want: Expectation{Effect: EffectAllow, MatchedRules: []string{"demo/small-refunds"}, CheckMatched: true},
	}, cases[0])
	assert.Equal(t, []Delegation{
		{Subject: "agent-1", Issuer: "bob", Scope: []string{"crm"}},
		{Subject: "agent-2", Issuer: "agent-1", Scope: []string{"crm"}},
		{Subject: "agent-3", Issuer: "agent-2", Scope: []string{"crm"}},
	}, cases[6].Input.Delegation)
	assert.False(t, cases[4].Want.CheckMatched, "a case without matched_rules does not check them")
	assert.True(t, cases[3].Want.CheckMatched, "matched_rules: [] checks for no matches")
	assert.Empty(t, cases[3].Want.MatchedRules)
}

func TestRunTestsDemo(t *testing.T) {
	cases, err := LoadTests("testdata")
	require.NoError(t, err)
	for _, r := range RunTests(context.Background(), demoSet(t), cases) {
		assert.True(t, r.Pass, "case %q: %s", r.Case.Name, r.Diff())
		assert.Empty(t, r.Diff())
	}
}

func TestRunTestsFailures(t *testing.T) {
	s := demoSet(t)
	in := Input{ToolID: "payments", Operation: "refund", TenantID: "acme", Input: map[string]any{"amount": 50.0}}
	cases := []TestCase{
		{Name: "wrong effect", Input: in, Want: Expectation{Effect: EffectDeny}},
		{Name: "wrong rules", Input: in, Want: Expectation{Effect: EffectAllow, MatchedRules: []string{"demo/other"}, CheckMatched: true}},
		{Name: "error", Input: Input{ToolID: "payments", Operation: "refund", TenantID: "acme", Input: map[string]any{"amount": "fifty"}}, Want: Expectation{Effect: EffectAllow}},
		{Name: "pass", Input: in, Want: Expectation{Effect: EffectAllow}},
	}
	rs := RunTests(context.Background(), s, cases)
	require.Len(t, rs, 4)

	assert.False(t, rs[0].Pass)
	assert.Equal(t, EffectAllow, rs[0].GotEffect)
	assert.Equal(t, EffectDeny, rs[0].WantEffect)
	assert.Equal(t, "effect: want deny, got allow\n", rs[0].Diff())

	assert.False(t, rs[1].Pass)
	assert.Equal(t, []string{"demo/small-refunds"}, rs[1].GotMatched)
	assert.Equal(t, "matched_rules: want [demo/other], got [demo/small-refunds]\n", rs[1].Diff())

	assert.False(t, rs[2].Pass)
	require.Error(t, rs[2].Err)
	assert.Contains(t, rs[2].Diff(), "error: policy: evaluate: ")

	assert.True(t, rs[3].Pass)
}

func TestParseTestsErrors(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string
	}{
		{"missing cases", "tests: []\n", []string{"t.yaml:1", `unknown key "tests"`}},
		{"cases not a list", "cases: {}\n", []string{"t.yaml:1", "cases: must be a list of cases"}},
		{"empty cases key", "{}\n", []string{"cases: required key is missing"}},
		{"missing name", "cases:\n  - expect: {effect: allow}\n", []string{"t.yaml:2", `case "cases[0]"`, "name: required key is missing"}},
		{"missing expect", "cases:\n  - name: a\n", []string{"t.yaml:2", `case "a"`, "expect: required key is missing"}},
		{"missing effect", "cases:\n  - name: a\n    expect: {matched_rules: []}\n", []string{"t.yaml:3", `case "a"`, "expect.effect: required key is missing"}},
		{"bad effect", "cases:\n  - name: a\n    expect: {effect: permit}\n", []string{"t.yaml:3", `case "a"`, "expect.effect: must be allow, deny or require_approval"}},
		{"unknown case key", "cases:\n  - name: a\n    expect: {effect: allow}\n    actor: {id: x}\n", []string{"t.yaml:4", `case "a"`, `unknown key "actor"`}},
		{"unknown action key", "cases:\n  - name: a\n    action: {tool: x}\n    expect: {effect: allow}\n", []string{"t.yaml:3", `case "a"`, `action: unknown key "tool"`}},
		{"wrong type", "cases:\n  - name: a\n    principal: {roles: admin}\n    expect: {effect: allow}\n", []string{"t.yaml:3", "principal.roles: must be a list of strings, got string"}},
		{"duplicate name", "cases:\n  - name: a\n    expect: {effect: allow}\n  - name: a\n    expect: {effect: deny}\n", []string{"t.yaml:4", `case "a"`, "name: duplicate case name (first at line 2)"}},
		{"duplicate key", "cases:\n  - name: a\n    name: b\n", []string{"t.yaml:3", "name: duplicate key"}},
		{"bad time", "cases:\n  - name: a\n    context: {time: yesterday}\n    expect: {effect: allow}\n", []string{"t.yaml:3", "context.time: must be an RFC 3339 timestamp"}},
		{"input non-string key", "cases:\n  - name: a\n    input: {1: x}\n    expect: {effect: allow}\n", []string{"t.yaml:3", "input: keys must be strings, got integer"}},
		{"input nan", "cases:\n  - name: a\n    input: {x: .nan}\n    expect: {effect: allow}\n", []string{"t.yaml:3", "input.x: must be a finite number"}},
		{"input huge int", "cases:\n  - name: a\n    input: {x: 18014398509481985}\n    expect: {effect: allow}\n", []string{"input.x: integer out of the exact range"}},
		{"input binary", "cases:\n  - name: a\n    input: {x: !!binary aGk=}\n    expect: {effect: allow}\n", []string{"input.x: value tagged \"!!binary\" has no JSON equivalent"}},
		{"input alias", "cases:\n  - name: a\n    input: {x: &v 1, y: *v}\n    expect: {effect: allow}\n", []string{"input.y: aliases are not allowed"}},
		{"delegation unknown key", "cases:\n  - name: a\n    principal: {delegation: [{subject: x}]}\n    expect: {effect: allow}\n", []string{"t.yaml:3", `principal.delegation[0]: unknown key "subject"`}},
		{"multiple documents", "cases: []\n---\ncases: []\n", []string{"multiple YAML documents"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cs, err := ParseTests("t.yaml", []byte(tt.doc))
			require.Error(t, err, "ParseTests = %v, want error", cs)
			var pe *ParseError
			require.True(t, errors.As(err, &pe), "error %T is not a *ParseError", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestParseTestsInput(t *testing.T) {
	cs, err := ParseTests("t.yaml", []byte(`
cases:
  - name: json kinds
    input:
      s: text
      quoted: "3"
      i: 3
      f: 2.5
      b: true
      n: null
      when: 2026-01-02
      list: [1, "a", {k: v}]
    expect: {effect: allow}
`))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, map[string]any{
		"s": "text", "quoted": "3", "i": 3.0, "f": 2.5, "b": true, "n": nil,
		"when": "2026-01-02",
		"list": []any{1.0, "a", map[string]any{"k": "v"}},
	}, cs[0].Input.Input)
}

func TestLoadTestsDir(t *testing.T) {
	dir := t.TempDir()
	cases, err := LoadTests(dir)
	require.NoError(t, err)
	assert.Empty(t, cases, "LoadTests of a directory without test files")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "x_test.yml"), []byte("cases:\n  - name: a\n    expect: {effect: allow}\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "x.yaml"), []byte("not: a test\n"), 0o600))
	cases, err = LoadTests(dir)
	require.NoError(t, err)
	require.Len(t, cases, 1)
	assert.Equal(t, filepath.Join(dir, "x_test.yml"), cases[0].File)

	_, err = LoadTests(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
}
