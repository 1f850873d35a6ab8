package policy

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// yamlDoc is the YAML shape of a document, for writing a parsed policy
// back out.
type yamlDoc struct {
	ID          string     `yaml:"id"`
	Version     string     `yaml:"version"`
	Description string     `yaml:"description,omitempty"`
	Default     Effect     `yaml:"default"`
	Mode        Mode       `yaml:"mode"`
	Tenants     []string   `yaml:"tenants,omitempty"`
	Rules       []yamlRule `yaml:"rules"`
}

type yamlRule struct {
	ID       string        `yaml:"id"`
	When     string        `yaml:"when"`
	Effect   Effect        `yaml:"effect"`
	Reason   string        `yaml:"reason"`
	Approval *yamlApproval `yaml:"approval,omitempty"`
}

type yamlApproval struct {
	Roles  []string `yaml:"roles,omitempty"`
	Users  []string `yaml:"users,omitempty"`
	Quorum int      `yaml:"quorum"`
	Expiry string   `yaml:"expiry"`
	StepUp bool     `yaml:"step_up"`
}

func marshalPolicy(p *Policy) ([]byte, error) {
	d := yamlDoc{ID: p.ID, Version: p.Version, Description: p.Description, Default: p.Default, Mode: p.Mode, Tenants: p.Tenants}
	for _, r := range p.Rules {
		yr := yamlRule{ID: r.ID, When: r.When, Effect: r.Effect, Reason: r.Reason}
		if a := r.Approval; a != nil {
			yr.Approval = &yamlApproval{Roles: a.Roles, Users: a.Users, Quorum: a.Quorum, Expiry: a.Expiry.String(), StepUp: a.StepUp}
		}
		d.Rules = append(d.Rules, yr)
	}
	return yaml.Marshal(d)
}

func FuzzParse(f *testing.F) {
	demo, err := os.ReadFile(filepath.Join("testdata", "demo.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte(minimalDoc))
	f.Add([]byte(benchPolicy))
	f.Add([]byte("id: p\nversion: \"1\"\ntenants: [a, b]\nmode: shadow\ndefault: require_approval\nrules:\n  - id: r\n    when: |\n      principal.delegation.all(d, 'x' in d.scope)\n    effect: require_approval\n    reason: \"r\"\n    approval: {users: [u, v], quorum: 2, expiry: 90s, step_up: true}\n"))
	f.Add([]byte("id: p\nversion: 3\n"))
	f.Add([]byte("id: &a p\nversion: *a\n"))
	f.Add([]byte("id: p\n---\nid: q\n"))
	f.Add([]byte("{id: p, version: '1', rules: [{id: r, when: 'true', effect: deny, reason: x}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Parse error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		out, err := marshalPolicy(p)
		if err != nil {
			t.Fatalf("marshal accepted policy: %v", err)
		}
		q, err := Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Parse(marshal(Parse(doc))) = %v\n%s", err, out)
		}
		if p.Digest() != q.Digest() {
			t.Fatalf("digest after round trip = %s, want %s\n%s", q.Digest(), p.Digest(), out)
		}
		for _, r := range q.Rules {
			if r.Approval != nil && (r.Approval.Quorum < 1 || r.Approval.Expiry <= 0 || r.Approval.Expiry > 1<<62*time.Nanosecond) {
				t.Fatalf("accepted approval out of range: %+v", r.Approval)
			}
		}
	})
}

func FuzzParseTests(f *testing.F) {
	demo, err := os.ReadFile(filepath.Join("testdata", "demo_test.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(demo)
	f.Add([]byte("cases:\n  - name: a\n    input: {x: [1, 2.5, null, true, {y: z}], t: 2026-01-02}\n    expect: {effect: allow, matched_rules: []}\n"))
	f.Add([]byte("cases:\n  - name: a\n    input: {x: &v 1, y: *v}\n"))
	f.Add([]byte("cases: []\n---\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cases, err := ParseTests("fuzz_test.yaml", data)
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("ParseTests error %T is not a *ParseError: %v", err, err)
			}
			return
		}
		names := map[string]bool{}
		for _, c := range cases {
			if c.Name == "" || names[c.Name] {
				t.Fatalf("ParseTests accepted an empty or duplicate case name %q", c.Name)
			}
			names[c.Name] = true
			if _, ok := parseEffect(string(c.Want.Effect)); !ok {
				t.Fatalf("ParseTests accepted effect %q", c.Want.Effect)
			}
		}
	})
}
