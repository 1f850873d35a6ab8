package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/internal/yamlx"
)

// TestCase is one policy test case from a *_test.yaml file: an action and
// the decision the policies in the same directory must reach for it.
type TestCase struct {
	// File is the path of the file the case was read from.
	File string
	// Line is the line the case starts at.
	Line int
	// Name is unique within its file.
	Name string
	// Input is the action.
	Input Input
	// Want is the expected decision.
	Want Expectation
}

// Expectation is what a [TestCase] expects.
type Expectation struct {
	Effect Effect
	// MatchedRules is the exact list of matched rules as
	// [MatchedRuleName] writes them, in order; only checked when
	// CheckMatched is set (the file has `matched_rules`).
	MatchedRules []string
	CheckMatched bool
}

// TestResult is the outcome of running one [TestCase].
type TestResult struct {
	Case TestCase
	// Pass reports whether the decision met the expectation.
	Pass bool
	// GotEffect and GotMatched describe the decision; they are empty when
	// Err is set.
	GotEffect  Effect
	GotMatched []string
	// WantEffect and WantMatched repeat the expectation; WantMatched is nil
	// when the case does not check matched rules.
	WantEffect  Effect
	WantMatched []string
	// Err is the evaluation error, if any. A case with an error fails.
	Err error
}

// Diff describes how the decision differed from the expectation, one
// "field: want X, got Y" line per difference, or "" when the case passed.
func (r TestResult) Diff() string {
	if r.Pass {
		return ""
	}
	var b strings.Builder
	if r.Err != nil {
		fmt.Fprintf(&b, "error: %v\n", r.Err)
		return b.String()
	}
	if r.GotEffect != r.WantEffect {
		fmt.Fprintf(&b, "effect: want %s, got %s\n", r.WantEffect, r.GotEffect)
	}
	if r.Case.Want.CheckMatched && !slices.Equal(r.GotMatched, r.WantMatched) {
		fmt.Fprintf(&b, "matched_rules: want [%s], got [%s]\n",
			strings.Join(r.WantMatched, ", "), strings.Join(r.GotMatched, ", "))
	}
	return b.String()
}

// LoadTests reads every test-case file (*_test.yaml, *_test.yml) directly
// in dir, in file-name order, and returns their cases in file order. Parsing
// is as strict as for policies: it fails with a [*ParseError] naming the
// file, the case and the key for unknown, duplicate or missing keys, wrong
// types, a duplicate case name within a file, or an `input` JSON cannot
// represent. A directory without test files yields no cases and no error.
func LoadTests(dir string) ([]TestCase, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("policy: load tests: %w", err)
	}
	var cases []TestCase
	for _, e := range entries {
		if e.IsDir() || !isTestFile(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		data, err := readFile(path)
		if err != nil {
			return nil, err
		}
		cs, err := ParseTests(path, data)
		if err != nil {
			return nil, err
		}
		cases = append(cases, cs...)
	}
	return cases, nil
}

// ParseTests parses one test-case document; name is used in errors and as
// each case's File. See [LoadTests] for what it rejects.
func ParseTests(name string, data []byte) ([]TestCase, error) {
	w := newWalker(name)
	root, err := w.decodeSingle(data, MaxDocumentSize)
	if err != nil {
		return nil, err
	}
	var casesNode *yaml.Node
	err = w.Mapping(root, "", func(key string, v *yaml.Node) error {
		if key != "cases" {
			return yamlx.ErrUnknownKey
		}
		if v.Kind != yaml.SequenceNode {
			return w.Fail(v, key, "must be a list of cases, got %s", yamlx.KindName(v))
		}
		casesNode = v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if casesNode == nil {
		return nil, w.Fail(root, "cases", "required key is missing")
	}
	names := map[string]int{}
	cases := make([]TestCase, 0, len(casesNode.Content))
	for i, n := range casesNode.Content {
		tc, err := parseCase(w, i, n)
		if err != nil {
			return nil, err
		}
		if first, dup := names[tc.Name]; dup {
			w.tc = tc.Name
			return nil, w.Fail(n, "name", "duplicate case name (first at line %d)", first)
		}
		names[tc.Name] = n.Line
		tc.File = name
		cases = append(cases, tc)
	}
	return cases, nil
}

func parseCase(w *walker, i int, n *yaml.Node) (TestCase, error) {
	w.tc = fmt.Sprintf("cases[%d]", i)
	defer func() { w.tc = "" }()
	if name, ok := yamlx.Peek(n, "name", func(s string) bool { return s != "" }); ok {
		w.tc = yamlx.Truncate(name)
	}
	tc := TestCase{Line: n.Line}
	in := &tc.Input
	err := w.Mapping(n, "", func(key string, v *yaml.Node) error {
		switch key {
		case "name":
			s, err := w.Str(v, key)
			if err == nil && strings.TrimSpace(s) == "" {
				err = w.Fail(v, key, "must not be empty")
			}
			tc.Name = s
			return err
		case "action":
			return w.Mapping(v, key, func(k string, v *yaml.Node) error {
				var err error
				switch k {
				case "tool_id":
					in.ToolID, err = w.Str(v, yamlx.Join(key, k))
				case "operation":
					in.Operation, err = w.Str(v, yamlx.Join(key, k))
				case "target":
					in.Target, err = w.Str(v, yamlx.Join(key, k))
				default:
					return yamlx.ErrUnknownKey
				}
				return err
			})
		case "input":
			var err error
			in.Input, err = w.JSONValue(v, key)
			return err
		case "principal":
			return w.Mapping(v, key, func(k string, v *yaml.Node) error {
				var err error
				switch k {
				case "user_id":
					in.UserID, err = w.Str(v, yamlx.Join(key, k))
				case "roles":
					in.Roles, err = w.StrList(v, yamlx.Join(key, k), yamlx.NonEmpty)
				case "delegation":
					in.Delegation, err = parseDelegation(w, v, yamlx.Join(key, k))
				default:
					return yamlx.ErrUnknownKey
				}
				return err
			})
		case "agent":
			return w.Mapping(v, key, func(k string, v *yaml.Node) error {
				if k != "id" {
					return yamlx.ErrUnknownKey
				}
				var err error
				in.AgentID, err = w.Str(v, yamlx.Join(key, k))
				return err
			})
		case "tenant":
			return w.Mapping(v, key, func(k string, v *yaml.Node) error {
				if k != "id" {
					return yamlx.ErrUnknownKey
				}
				var err error
				in.TenantID, err = w.Str(v, yamlx.Join(key, k))
				return err
			})
		case "context":
			return w.Mapping(v, key, func(k string, v *yaml.Node) error {
				var err error
				switch k {
				case "time":
					in.Time, err = w.Timestamp(v, yamlx.Join(key, k))
				case "request":
					in.Request = map[string]string{}
					err = w.Mapping(v, yamlx.Join(key, k), func(rk string, rv *yaml.Node) error {
						s, err := w.Str(rv, yamlx.Join(yamlx.Join(key, k), rk))
						in.Request[rk] = s
						return err
					})
				default:
					return yamlx.ErrUnknownKey
				}
				return err
			})
		case "expect":
			return parseExpect(w, v, &tc.Want)
		}
		return yamlx.ErrUnknownKey
	})
	if err == nil {
		err = w.Require(n, "", "name", "expect")
	}
	if err != nil {
		return TestCase{}, err
	}
	return tc, nil
}

func parseDelegation(w *walker, n *yaml.Node, key string) ([]Delegation, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, w.Fail(n, key, "must be a list, got %s", yamlx.KindName(n))
	}
	out := make([]Delegation, len(n.Content))
	for i, e := range n.Content {
		path := fmt.Sprintf("%s[%d]", key, i)
		d := &out[i]
		err := w.Mapping(e, path, func(k string, v *yaml.Node) error {
			var err error
			switch k {
			case "sub":
				d.Subject, err = w.Str(v, yamlx.Join(path, k))
			case "iss":
				d.Issuer, err = w.Str(v, yamlx.Join(path, k))
			case "scope":
				d.Scope, err = w.StrList(v, yamlx.Join(path, k), yamlx.NonEmpty)
			default:
				return yamlx.ErrUnknownKey
			}
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func parseExpect(w *walker, n *yaml.Node, want *Expectation) error {
	err := w.Mapping(n, "expect", func(k string, v *yaml.Node) error {
		path := yamlx.Join("expect", k)
		switch k {
		case "effect":
			s, err := w.Str(v, path)
			if err != nil {
				return err
			}
			var ok bool
			if want.Effect, ok = parseEffect(s); !ok {
				return w.Fail(v, path, "must be allow, deny or require_approval")
			}
			return nil
		case "matched_rules":
			rules, err := w.StrList(v, path, yamlx.NonEmpty)
			want.MatchedRules, want.CheckMatched = rules, true
			return err
		}
		return yamlx.ErrUnknownKey
	})
	if err != nil {
		return err
	}
	return w.Require(n, "expect", "effect")
}

// RunTests evaluates every case against s and reports one result per case,
// in order. A case passes when the effect equals the expected one and, if
// the case lists matched_rules, the matched rules equal that list exactly.
// Evaluation errors make a case fail; RunTests stops early only when ctx is
// done, failing the remaining cases with ctx's error.
func RunTests(ctx context.Context, s *Set, cases []TestCase) []TestResult {
	results := make([]TestResult, len(cases))
	for i := range cases {
		tc := cases[i]
		r := TestResult{Case: tc, WantEffect: tc.Want.Effect}
		if tc.Want.CheckMatched {
			r.WantMatched = append([]string{}, tc.Want.MatchedRules...)
		}
		in := tc.Input
		d, err := s.Evaluate(ctx, &in)
		if err != nil {
			r.Err = err
			results[i] = r
			continue
		}
		r.GotEffect = d.Effect
		r.GotMatched = d.MatchedRules()
		r.Pass = r.GotEffect == r.WantEffect &&
			(!tc.Want.CheckMatched || slices.Equal(r.GotMatched, r.WantMatched))
		results[i] = r
	}
	return results
}
