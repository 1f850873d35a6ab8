// Package yamlx reads configuration files strictly from a go.yaml.in/yaml/v3
// node tree.
//
// A [Walker] decodes exactly one YAML document ([Walker.DecodeSingle]) and
// then reads it key by key: [Walker.Mapping] visits a mapping's keys in file
// order, [Walker.Require] reports a required key that is missing, and the
// readers ([Walker.Str], [Walker.StrList], [Walker.StrMap], [Walker.Int],
// [Walker.Bool], [Walker.Duration], [Walker.Timestamp], [Walker.JSONValue])
// check one value's type.
//
// # Strictness
//
// Input that breaks a rule is rejected, never repaired:
//
//   - exactly one document: empty input and several documents are errors;
//   - mapping keys are strings and appear once;
//   - aliases are not allowed (no billion laughs, no shared values);
//   - a key the caller does not know is an error: its callback returns
//     [ErrUnknownKey];
//   - values have the type asked for; a string must be a YAML string, so
//     10, true and 2026-01-02 must be quoted to be read as text.
//
// Size limits are not this package's job: callers bound input size first.
//
// # Errors
//
// Every problem is an [*Error] giving the line and the key path, such as
// "operations.get.method", of the offending node. A caller adds its own
// context (the file name, the item being read) by setting [Walker.Wrap],
// which converts each [*Error] into the caller's error type; [FormatError]
// and [Label] write that type's message. Messages echo at most 64 bytes of
// a key or value ([Truncate]).
package yamlx

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

// MaxKeyInMessage bounds how many bytes of a key or value an error echoes.
const MaxKeyInMessage = 64

// MaxJSONDepth bounds the nesting [Walker.JSONValue] accepts.
const MaxJSONDepth = 64

// ErrUnknownKey is returned by a [Walker.Mapping] callback for a key it
// does not know; Mapping reports it as an "unknown key" [*Error].
var ErrUnknownKey = errors.New("unknown key")

// Error is a problem at one node of a YAML document.
type Error struct {
	// Line is the 1-based line of the node, or 0 when unknown.
	Line int
	// Key is the key path of the node, such as "auth.type" or "tags[2]",
	// or "" when the problem is the document itself.
	Key string
	// Err is the problem.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	head := ""
	if e.Line > 0 {
		head = "line " + strconv.Itoa(e.Line)
	}
	return message(head, e.Err, e.Key)
}

// Unwrap returns the underlying problem.
func (e *Error) Unwrap() error { return e.Err }

// FormatError formats the message of a caller's error type for a problem
// in file:
//
//	prefix: file[:line][: part]…: err
//
// leaving out a line of 0 and empty parts; a nil err reads "invalid".
// Parts are typically a [Label] naming the item being read and the key
// path.
func FormatError(prefix, file string, line int, err error, parts ...string) string {
	head := prefix + ": " + file
	if line > 0 {
		head += ":" + strconv.Itoa(line)
	}
	return message(head, err, parts...)
}

// Label returns name and the quoted value, such as `tool "tracker"`, or ""
// when value is "".
func Label(name, value string) string {
	if value == "" {
		return ""
	}
	return name + " " + strconv.Quote(value)
}

// message joins head, the non-empty parts and err (or "invalid") with ": ".
func message(head string, err error, parts ...string) string {
	var b strings.Builder
	b.WriteString(head)
	for _, p := range parts {
		if p == "" {
			continue
		}
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(p)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if err != nil {
		b.WriteString(err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
}

// ListCheck selects the extra checks of [Walker.StrList].
type ListCheck uint8

// List checks, combined with |.
const (
	// NonEmpty rejects empty strings.
	NonEmpty ListCheck = 1 << iota
	// Unique rejects a string that is already in the list.
	Unique
)

// Walker reads the node tree of one document. The zero value is ready to
// use and reports bare [*Error]s. A Walker is not safe for concurrent use.
type Walker struct {
	// Wrap, if not nil, converts every error the Walker reports, such as
	// into the caller's error type naming the file. Errors returned by the
	// callbacks of [Walker.Mapping] pass through unchanged.
	Wrap func(*Error) error
	// Lines, if not nil, receives the line of every value [Walker.Mapping]
	// visits under its key path (keys not truncated).
	Lines map[string]int
	// JSONTimestamps makes [Walker.JSONValue] keep an unquoted timestamp
	// as its text; otherwise it is rejected, as JSON has no timestamp type.
	JSONTimestamps bool
}

// ErrAt reports err at node n (nil when there is no node) and key path key.
func (w *Walker) ErrAt(n *yaml.Node, key string, err error) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	e := &Error{Line: line, Key: key, Err: err}
	if w.Wrap == nil {
		return e
	}
	return w.Wrap(e)
}

// Fail reports a problem at node n (nil when there is no node) and key path
// key, formatted as by [fmt.Errorf].
func (w *Walker) Fail(n *yaml.Node, key, format string, args ...any) error {
	return w.ErrAt(n, key, fmt.Errorf(format, args...))
}

// DecodeSingle decodes data as exactly one YAML document and returns its
// root node (the content of the document node). Empty input, a document
// with no content, several documents and YAML syntax errors are reported
// with key "".
func (w *Walker) DecodeSingle(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, w.Fail(nil, "", "empty document")
		}
		return nil, w.ErrAt(nil, "", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, w.ErrAt(nil, "", err)
	default:
		return nil, w.Fail(&extra, "", "multiple YAML documents in one file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, w.Fail(&doc, "", "empty document")
	}
	return doc.Content[0], nil
}

// KindName describes a node's type for error messages: "mapping", "list",
// "alias", "string", "integer", "number", "boolean", "null", "timestamp"
// or "value tagged …".
func KindName(n *yaml.Node) string {
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
			return "value tagged " + strconv.Quote(Truncate(t))
		}
	}
	return "unknown node"
}

// Truncate returns s cut to [MaxKeyInMessage] bytes, marked with "…" when
// cut, for echoing in a message.
func Truncate(s string) string {
	if len(s) <= MaxKeyInMessage {
		return s
	}
	return s[:MaxKeyInMessage] + "…"
}

// Join appends key to the key path path.
func Join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// Mapping walks the mapping node n at key path path, calling set with every
// key and its value node in file order. set returns [ErrUnknownKey] for a
// key it does not know. Mapping rejects a node that is not a mapping,
// non-string and duplicate keys, and alias values, before calling set.
func (w *Walker) Mapping(n *yaml.Node, path string, set func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return w.Fail(n, path, "must be a mapping, got %s", KindName(n))
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return w.Fail(k, path, "keys must be strings, got %s", KindName(k))
		}
		if first, dup := seen[k.Value]; dup {
			return w.Fail(k, Join(path, Truncate(k.Value)), "duplicate key (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return w.Fail(v, Join(path, Truncate(k.Value)), "aliases are not allowed")
		}
		if w.Lines != nil {
			w.Lines[Join(path, k.Value)] = v.Line
		}
		if err := set(k.Value, v); err != nil {
			if errors.Is(err, ErrUnknownKey) {
				return w.Fail(k, path, "unknown key %q", Truncate(k.Value))
			}
			return err
		}
	}
	return nil
}

// Require reports the first of keys that the mapping node n at key path
// path lacks, as a "required key is missing" [*Error] at n. Callers check
// n with [Walker.Mapping] first.
func (w *Walker) Require(n *yaml.Node, path string, keys ...string) error {
	for _, key := range keys {
		if !hasKey(n, key) {
			return w.Fail(n, Join(path, key), "required key is missing")
		}
	}
	return nil
}

// hasKey reports whether the mapping node n has key.
func hasKey(n *yaml.Node, key string) bool {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return true
		}
	}
	return false
}

// Peek returns the last string value of key in the mapping node n that
// valid accepts, checking nothing else; ok is false when there is none or n
// is not a mapping. Callers use it to name an item in errors about the keys
// before its name.
func Peek(n *yaml.Node, key string, valid func(string) bool) (value string, ok bool) {
	if n.Kind != yaml.MappingNode {
		return "", false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k, v := n.Content[i], n.Content[i+1]; k.Value == key && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && valid(v.Value) {
			value, ok = v.Value, true
		}
	}
	return value, ok
}

// Str reads a string. Other scalars are rejected with a hint to quote them.
func (w *Walker) Str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it)"
		}
		return "", w.Fail(n, key, "must be a string, got %s%s", KindName(n), hint)
	}
	return n.Value, nil
}

// StrList reads a list of strings, each checked as checks says as it is
// read. An empty list gives an empty, non-nil slice.
func (w *Walker) StrList(n *yaml.Node, key string, checks ListCheck) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, w.Fail(n, key, "must be a list of strings, got %s", KindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		ek := fmt.Sprintf("%s[%d]", key, i)
		s, err := w.Str(e, ek)
		if err != nil {
			return nil, err
		}
		if checks&NonEmpty != 0 && s == "" {
			return nil, w.Fail(e, ek, "must not be empty")
		}
		if checks&Unique != 0 {
			for _, prev := range out {
				if prev == s {
					return nil, w.Fail(e, ek, "duplicate value %q", Truncate(s))
				}
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// StrMap reads a mapping of strings to strings. An empty mapping gives an
// empty, non-nil map.
func (w *Walker) StrMap(n *yaml.Node, key string) (map[string]string, error) {
	m := map[string]string{}
	err := w.Mapping(n, key, func(k string, v *yaml.Node) error {
		s, err := w.Str(v, Join(key, Truncate(k)))
		m[k] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Int reads an integer that fits in an int.
func (w *Walker) Int(n *yaml.Node, key string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, w.Fail(n, key, "must be an integer, got %s", KindName(n))
	}
	var i int
	if err := n.Decode(&i); err != nil {
		return 0, w.Fail(n, key, "must be an integer that fits in %d bits", strconv.IntSize)
	}
	return i, nil
}

// Bool reads true or false.
func (w *Walker) Bool(n *yaml.Node, key string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, w.Fail(n, key, "must be true or false, got %s", KindName(n))
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, w.Fail(n, key, "must be true or false")
	}
	return b, nil
}

// Duration reads a Go duration string such as "10s", greater than zero.
func (w *Walker) Duration(n *yaml.Node, key string) (time.Duration, error) {
	s, err := w.Str(n, key)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, w.Fail(n, key, "must be a positive duration such as 10s or 200ms")
	}
	return d, nil
}

// Timestamp reads an RFC 3339 timestamp, quoted or not.
func (w *Walker) Timestamp(n *yaml.Node, key string) (time.Time, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!str" && n.ShortTag() != "!!timestamp") {
		return time.Time{}, w.Fail(n, key, "must be an RFC 3339 timestamp, got %s", KindName(n))
	}
	t, err := time.Parse(time.RFC3339Nano, n.Value)
	if err != nil {
		return time.Time{}, w.Fail(n, key, "must be an RFC 3339 timestamp such as 2026-01-02T15:04:05Z")
	}
	return t, nil
}

// JSONValue converts n to the value encoding/json would decode from the
// equivalent JSON: map[string]any, []any, string, float64, bool or nil.
// Values JSON cannot represent (non-string keys, NaN, infinities, binary,
// integers a float64 cannot hold exactly, nesting deeper than
// [MaxJSONDepth]) are rejected; so are unquoted timestamps unless
// [Walker.JSONTimestamps] is set.
func (w *Walker) JSONValue(n *yaml.Node, key string) (any, error) {
	return w.jsonValue(n, key, 0)
}

func (w *Walker) jsonValue(n *yaml.Node, key string, depth int) (any, error) {
	if depth > MaxJSONDepth {
		return nil, w.Fail(n, key, "nested deeper than %d levels", MaxJSONDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nil, w.Fail(n, key, "aliases are not allowed")
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		err := w.Mapping(n, key, func(k string, v *yaml.Node) error {
			val, err := w.jsonValue(v, Join(key, Truncate(k)), depth+1)
			m[k] = val
			return err
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
		case "!!str":
			return n.Value, nil
		case "!!timestamp":
			if w.JSONTimestamps {
				return n.Value, nil
			}
		case "!!null":
			return nil, nil
		case "!!bool":
			return w.Bool(n, key)
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil || i > 1<<53 || i < -(1<<53) {
				return nil, w.Fail(n, key, "integer out of the exact range of a JSON number")
			}
			return float64(i), nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, w.Fail(n, key, "must be a finite number")
			}
			return f, nil
		}
	}
	return nil, w.Fail(n, key, "%s has no JSON equivalent", KindName(n))
}
