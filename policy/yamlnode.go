package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ParseError reports why a policy document or a test-case file was rejected.
// Its message names the file, the line (when known), the rule or test case
// and the key, for example:
//
//	policy: payments.yaml:12: rule "big-refunds": approval.quorum: must be an integer, got string
type ParseError struct {
	// File is the name the document was parsed under.
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Rule is the id of the rule the problem is in ("rules[2]" while the id
	// is unknown), or "".
	Rule string
	// Case is the name of the test case the problem is in ("cases[2]" while
	// the name is unknown), or "".
	Case string
	// Key is the key path of the offending value, such as
	// "approval.quorum", or "" when the problem is the document itself.
	Key string
	// Err is the problem. For a `when` expression that does not compile it
	// is an [*ExprError].
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString("policy: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Rule != "" {
		fmt.Fprintf(&b, ": rule %q", e.Rule)
	}
	if e.Case != "" {
		fmt.Fprintf(&b, ": case %q", e.Case)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }

// ExprError is a compile or type-check error in a rule's `when` expression.
// Line and Column are 1-based and relative to the expression text, not the
// file.
type ExprError struct {
	Line, Column int
	// Msg is cel-go's description of the first problem; further problems,
	// if any, are appended after "; ".
	Msg string
}

// Error implements error.
func (e *ExprError) Error() string {
	return fmt.Sprintf("%d:%d: %s", e.Line, e.Column, e.Msg)
}

// maxKeyInMessage bounds how much of an unknown key is echoed in an error.
const maxKeyInMessage = 64

// walker walks the yaml.Node tree of one file, producing [ParseError]s that
// name the file and the rule or case being walked.
type walker struct {
	file string
	rule string
	tc   string
}

func (w *walker) errAt(n *yaml.Node, key string, err error) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ParseError{File: w.file, Line: line, Rule: w.rule, Case: w.tc, Key: key, Err: err}
}

func (w *walker) fail(n *yaml.Node, key, format string, args ...any) error {
	return w.errAt(n, key, fmt.Errorf(format, args...))
}

// decodeSingle decodes data as exactly one YAML document and returns its
// root node (the content of the document node).
func (w *walker) decodeSingle(data []byte, maxSize int) (*yaml.Node, error) {
	if len(data) > maxSize {
		return nil, w.fail(nil, "", "document is %d bytes, larger than the %d byte limit", len(data), maxSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, w.fail(nil, "", "empty document")
		}
		return nil, w.errAt(nil, "", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, w.errAt(nil, "", err)
	default:
		return nil, w.fail(&extra, "", "multiple YAML documents in one file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, w.fail(&doc, "", "empty document")
	}
	return doc.Content[0], nil
}

// kindName describes a node's type for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		switch t := n.ShortTag(); t {
		case "!!str":
			return "string"
		case "!!int":
			return "integer"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "timestamp"
		default:
			return "value tagged " + strconv.Quote(truncate(t))
		}
	}
	return "unknown node"
}

func truncate(s string) string {
	if len(s) <= maxKeyInMessage {
		return s
	}
	return s[:maxKeyInMessage] + "…"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// mapping walks a mapping node. For every key it calls set with the key and
// the value node; set returns errUnknownKey for keys it does not know.
// Aliases, non-string keys and duplicate keys are rejected.
func (w *walker) mapping(n *yaml.Node, path string, set func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return w.fail(n, path, "must be a mapping, got %s", kindName(n))
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return w.fail(k, path, "keys must be strings, got %s", kindName(k))
		}
		if first, dup := seen[k.Value]; dup {
			return w.fail(k, join(path, truncate(k.Value)), "duplicate key (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return w.fail(v, join(path, k.Value), "aliases are not allowed")
		}
		if err := set(k.Value, v); err != nil {
			if errors.Is(err, errUnknownKey) {
				return w.fail(k, path, "unknown key %q", truncate(k.Value))
			}
			return err
		}
	}
	return nil
}

var errUnknownKey = errors.New("unknown key")

func (w *walker) str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it)"
		}
		return "", w.fail(n, key, "must be a string, got %s%s", kindName(n), hint)
	}
	return n.Value, nil
}

func (w *walker) strList(n *yaml.Node, key string, unique bool) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, w.fail(n, key, "must be a list of strings, got %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		s, err := w.str(e, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, w.fail(e, fmt.Sprintf("%s[%d]", key, i), "must not be empty")
		}
		if unique {
			for _, prev := range out {
				if prev == s {
					return nil, w.fail(e, fmt.Sprintf("%s[%d]", key, i), "duplicate value %q", truncate(s))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

func (w *walker) integer(n *yaml.Node, key string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, w.fail(n, key, "must be an integer, got %s", kindName(n))
	}
	var i int
	if err := n.Decode(&i); err != nil {
		return 0, w.fail(n, key, "must be an integer that fits in %d bits", strconv.IntSize)
	}
	return i, nil
}

func (w *walker) boolean(n *yaml.Node, key string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, w.fail(n, key, "must be true or false, got %s", kindName(n))
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, w.fail(n, key, "must be true or false")
	}
	return b, nil
}

// timestamp accepts an RFC 3339 timestamp, quoted or not.
func (w *walker) timestamp(n *yaml.Node, key string) (time.Time, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		return time.Time{}, w.fail(n, key, "must be an RFC 3339 timestamp, got %s", kindName(n))
	}
	t, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		return time.Time{}, w.fail(n, key, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// maxJSONDepth bounds the nesting of a test case's `input`.
const maxJSONDepth = 64

// jsonValue converts a YAML node to the value encoding/json would decode
// from the equivalent JSON: map[string]any, []any, string, float64, bool or
// nil. Values JSON cannot represent (non-string keys, NaN, infinities,
// binary, integers a float64 cannot hold exactly) are rejected.
func (w *walker) jsonValue(n *yaml.Node, key string, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, w.fail(n, key, "nested deeper than %d levels", maxJSONDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nil, w.fail(n, key, "aliases are not allowed")
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		err := w.mapping(n, key, func(k string, v *yaml.Node) error {
			val, err := w.jsonValue(v, join(key, k), depth+1)
			if err != nil {
				return err
			}
			m[k] = val
			return nil
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			val, err := w.jsonValue(e, fmt.Sprintf("%s[%d]", key, i), depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str", "!!timestamp":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			return w.boolean(n, key)
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil || i > 1<<53 || i < -(1<<53) {
				return nil, w.fail(n, key, "integer out of the exact range of a JSON number")
			}
			return float64(i), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, w.fail(n, key, "must be a finite number")
			}
			return f, nil
		}
	}
	return nil, w.fail(n, key, "%s has no JSON equivalent", kindName(n))
}
