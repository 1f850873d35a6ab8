package httpconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	"github.com/oarsdev/oars/connector"
)

// fieldPattern is a placeholder's field: dotted names.
var fieldPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// placeholder returns the field path of s if s is exactly "{name}" or
// "{a.b}".
func placeholder(s string) ([]string, bool) {
	if len(s) < 3 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	name := s[1 : len(s)-1]
	if !fieldPattern.MatchString(name) {
		return nil, false
	}
	return strings.Split(name, "."), true
}

// inputAll is the body template string replaced by the whole input.
const inputAll = "$input"

// pathPart is a literal piece of escaped path or, when field is set, a
// placeholder.
type pathPart struct {
	lit   string
	field []string
}

// parsePath compiles a path template: it starts with "/", its literal
// parts are valid escaped path text, and every "{" opens a placeholder.
func parsePath(s string) ([]pathPart, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, errors.New(`must start with "/"`)
	}
	var parts []pathPart
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			i = len(s)
		}
		if i > 0 {
			if err := checkPathText(s[:i]); err != nil {
				return nil, err
			}
			parts = append(parts, pathPart{lit: s[:i]})
			s = s[i:]
			continue
		}
		j := strings.IndexByte(s, '}')
		if j < 0 {
			return nil, errors.New(`has a "{" without "}"`)
		}
		f, ok := placeholder(s[:j+1])
		if !ok {
			return nil, fmt.Errorf("placeholder %q must be {name} or {a.b} with letters, digits, '_' and '-'", truncate(s[:j+1]))
		}
		parts = append(parts, pathPart{field: f})
		s = s[j+1:]
	}
	return parts, nil
}

// checkPathText reports whether s is escaped path text (RFC 3986 pchar
// and "/").
func checkPathText(s string) error {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/", c) >= 0:
		case c == '%':
			if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
				return errors.New(`has a "%" that is not followed by two hex digits`)
			}
			i += 2
		case c == '?':
			return errors.New("must not hold a query: use query")
		default:
			return fmt.Errorf("has %q, which must be escaped", string(rune(c)))
		}
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// queryParam is one query parameter: a literal value or a placeholder.
type queryParam struct {
	name  string
	lit   string
	field []string
}

// bodyTemplate is a compiled body: the template decoded with numbers kept
// as written.
type bodyTemplate struct {
	v any
}

// parseBody compiles a body template. Any JSON is a valid template.
func parseBody(raw json.RawMessage) (*bodyTemplate, error) {
	if raw == nil {
		return nil, nil
	}
	v, err := decodeJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	return &bodyTemplate{v: v}, nil
}

// decodeJSON decodes one JSON value keeping numbers as json.Number.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

// invalidInput is the error of an execution whose input does not fit the
// templates. Its text names fields, never their values.
func invalidInput(format string, args ...any) *connector.Error {
	return &connector.Error{
		Class: "invalid_input",
		Err:   fmt.Errorf("%w: %s", connector.ErrInvalidInput, fmt.Sprintf(format, args...)),
	}
}

// lookup returns the input value at field, and whether it is present.
func lookup(input any, field []string) (any, bool) {
	v := input
	for _, f := range field {
		m, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		if v, ok = m[f]; !ok {
			return nil, false
		}
	}
	return v, true
}

// renderPath returns the escaped path of parts for input.
func renderPath(parts []pathPart, input any) (string, error) {
	var b strings.Builder
	for _, p := range parts {
		if p.field == nil {
			b.WriteString(p.lit)
			continue
		}
		name := strings.Join(p.field, ".")
		v, ok := lookup(input, p.field)
		if !ok {
			return "", invalidInput("path field %q is missing", name)
		}
		var s string
		switch v := v.(type) {
		case string:
			s = v
		case json.Number:
			s = v.String()
		default:
			return "", invalidInput("path field %q must be a string or a number", name)
		}
		if s == "" || s == "." || s == ".." {
			return "", invalidInput(`path field %q must not be empty, "." or ".."`, name)
		}
		b.WriteString(url.PathEscape(s))
	}
	return b.String(), nil
}

// renderQuery returns the encoded query of params for input.
func renderQuery(params []queryParam, input any) (string, error) {
	q := url.Values{}
	for _, p := range params {
		if p.field == nil {
			q.Set(p.name, p.lit)
			continue
		}
		v, ok := lookup(input, p.field)
		if !ok || v == nil {
			continue
		}
		switch v := v.(type) {
		case string:
			q.Set(p.name, v)
		case json.Number:
			q.Set(p.name, v.String())
		case bool:
			q.Set(p.name, strconv.FormatBool(v))
		default:
			return "", invalidInput("query field %q must be a string, a number or a boolean", strings.Join(p.field, "."))
		}
	}
	return q.Encode(), nil
}

// render returns the JSON body for input.
func (t *bodyTemplate) render(input any) ([]byte, error) {
	v, err := renderValue(t.v, input)
	if err != nil {
		return nil, err
	}
	if v == absent {
		return nil, invalidInput("body field %q is missing", placeholderName(t.v))
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, invalidInput("body cannot be encoded")
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// absent marks a placeholder whose field the input does not have.
var absent = new(struct{ absent byte })

func placeholderName(v any) string {
	s, _ := v.(string)
	return strings.Trim(s, "{}")
}

// renderValue fills in template value v, returning absent for a
// placeholder of a missing field.
func renderValue(v, input any) (any, error) {
	switch v := v.(type) {
	case string:
		if v == inputAll {
			return input, nil
		}
		if f, ok := placeholder(v); ok {
			got, ok := lookup(input, f)
			if !ok {
				return absent, nil
			}
			return got, nil
		}
		return v, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			r, err := renderValue(e, input)
			if err != nil {
				return nil, err
			}
			if r != absent {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			r, err := renderValue(e, input)
			if err != nil {
				return nil, err
			}
			if r == absent {
				return nil, invalidInput("body field %q is missing", placeholderName(e))
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// checkPointer reports whether p is a JSON Pointer (RFC 6901).
func checkPointer(p string) error {
	if p != "" && p[0] != '/' {
		return errors.New(`must be a JSON Pointer: "" or starting with "/"`)
	}
	for i := 0; i < len(p); i++ {
		if p[i] == '~' && (i+1 == len(p) || (p[i+1] != '0' && p[i+1] != '1')) {
			return errors.New(`must be a JSON Pointer: "~" only as "~0" or "~1"`)
		}
	}
	return nil
}

// resolvePointer returns the value at JSON Pointer p in doc (decoded by
// decodeJSON), and whether there is one.
func resolvePointer(doc any, p string) (any, bool) {
	if p == "" {
		return doc, true
	}
	v := doc
	for _, tok := range strings.Split(p[1:], "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch c := v.(type) {
		case map[string]any:
			e, ok := c[tok]
			if !ok {
				return nil, false
			}
			v = e
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) || strconv.Itoa(i) != tok {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}
