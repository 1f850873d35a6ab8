package yamlx

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// read decodes src and reads the value of its top-level key "v" with fn;
// key "x" is skipped (it holds anchors).
func read(t *testing.T, w *Walker, src string, fn func(w *Walker, n *yaml.Node) (any, error)) (any, error) {
	t.Helper()
	root, err := w.DecodeSingle([]byte(src))
	if err != nil {
		t.Fatalf("DecodeSingle(%q) = %v", src, err)
	}
	var got any
	err = w.Mapping(root, "", func(key string, v *yaml.Node) error {
		switch key {
		case "x":
			return nil
		case "v":
		default:
			return ErrUnknownKey
		}
		var err error
		got, err = fn(w, v)
		return err
	})
	return got, err
}

func str(w *Walker, n *yaml.Node) (any, error)  { return w.Str(n, "v") }
func num(w *Walker, n *yaml.Node) (any, error)  { return w.Int(n, "v") }
func flag(w *Walker, n *yaml.Node) (any, error) { return w.Bool(n, "v") }
func dur(w *Walker, n *yaml.Node) (any, error)  { return w.Duration(n, "v") }
func ts(w *Walker, n *yaml.Node) (any, error)   { return w.Timestamp(n, "v") }
func smap(w *Walker, n *yaml.Node) (any, error) { return w.StrMap(n, "v") }
func js(w *Walker, n *yaml.Node) (any, error)   { return w.JSONValue(n, "v") }

func list(checks ListCheck) func(w *Walker, n *yaml.Node) (any, error) {
	return func(w *Walker, n *yaml.Node) (any, error) { return w.StrList(n, "v", checks) }
}

func mapping(w *Walker, n *yaml.Node) (any, error) {
	return nil, w.Mapping(n, "v", func(string, *yaml.Node) error { return nil })
}

func TestDecodeSingleRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", "empty document"},
		{"comment only", "# nothing\n", "empty document"},
		{"two documents", "a: 1\n---\nb: 2\n", "line 2: multiple YAML documents in one file"},
		{"empty second document", "a: 1\n---\n", "multiple YAML documents in one file"},
		{"syntax error", "a: [1\n", "yaml: "},
		{"tab indent", "a:\n\tb: 1\n", "yaml: "},
		{"syntax error in second document", "a: 1\n---\n[\n", "yaml: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Walker
			_, err := w.DecodeSingle([]byte(tt.in))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeSingle(%q) = %v, want an *Error", tt.in, err)
			}
			if e.Key != "" || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("DecodeSingle(%q) = %q (key %q), want %q and no key", tt.in, err, e.Key, tt.want)
			}
		})
	}
}

func TestDecodeSingle(t *testing.T) {
	var w Walker
	n, err := w.DecodeSingle([]byte("---\na: 1\n"))
	if err != nil {
		t.Fatalf("DecodeSingle = %v", err)
	}
	if n.Kind != yaml.MappingNode || n.Line != 2 {
		t.Errorf("DecodeSingle = kind %v line %d, want a mapping at line 2", n.Kind, n.Line)
	}
}

func TestReadRejects(t *testing.T) {
	long := strings.Repeat("k", 100)
	tests := []struct {
		name string
		in   string
		fn   func(w *Walker, n *yaml.Node) (any, error)
		want string
	}{
		{"root not a mapping", "- v\n", str, "line 1: must be a mapping, got list"},
		{"unknown key", "v: a\ny: 1\n", str, `line 2: unknown key "y"`},
		{"long unknown key", long + ": 1\n", str, `line 1: unknown key "` + long[:MaxKeyInMessage] + `…"`},
		{"non-string key", "1: a\n", str, "line 1: keys must be strings, got integer"},
		{"null key", "~: a\n", str, "line 1: keys must be strings, got null"},
		{"complex key", "? [a]\n: b\n", str, "line 1: keys must be strings, got list"},
		{"duplicate key", "v: a\nv: b\n", str, "line 2: v: duplicate key (first at line 1)"},
		{"duplicate long key", "v:\n  " + long + ": 1\n  " + long + ": 2\n", mapping, "line 3: v." + long[:MaxKeyInMessage] + "…: duplicate key (first at line 2)"},
		{"alias value", "x: &a b\nv: *a\n", str, "line 2: v: aliases are not allowed"},
		{"alias value long key", "x: &a b\nv: {" + long + ": *a}\n", mapping, "line 2: v." + long[:MaxKeyInMessage] + "…: aliases are not allowed"},
		{"nested not a mapping", "v: [a]\n", mapping, "line 1: v: must be a mapping, got list"},

		{"str from int", "v: 10\n", str, "line 1: v: must be a string, got integer (quote it)"},
		{"str from bool", "v: true\n", str, "v: must be a string, got boolean (quote it)"},
		{"str from timestamp", "v: 2026-01-02\n", str, "v: must be a string, got timestamp (quote it)"},
		{"str from float", "v: 1.5\n", str, "v: must be a string, got number (quote it)"},
		{"str from null", "v:\n", str, "v: must be a string, got null"},
		{"str from list", "v: [a]\n", str, "v: must be a string, got list"},
		{"str from mapping", "v: {a: b}\n", str, "v: must be a string, got mapping"},
		{"str from binary", "v: !!binary aGk=\n", str, `v: must be a string, got value tagged "!!binary" (quote it)`},
		{"str from custom tag", "v: !foo x\n", str, `v: must be a string, got value tagged "!foo" (quote it)`},

		{"list not a list", "v: a\n", list(0), "v: must be a list of strings, got string"},
		{"list element type", "v: [a, 1]\n", list(0), "v[1]: must be a string, got integer (quote it)"},
		{"list element alias", "x: &a b\nv: [*a]\n", list(0), "line 2: v[0]: must be a string, got alias"},
		{"list empty element", "v: [a, '']\n", list(NonEmpty), "line 1: v[1]: must not be empty"},
		{"list duplicate", "v: [a, b, a]\n", list(Unique), `v[2]: duplicate value "a"`},
		{"list empty before type", "v: ['', 1]\n", list(NonEmpty), "v[0]: must not be empty"},
		{"list duplicate before type", "v: [a, a, 1]\n", list(Unique), `v[1]: duplicate value "a"`},

		{"map not a mapping", "v: [a]\n", smap, "v: must be a mapping, got list"},
		{"map value type", "v: {a: 1}\n", smap, "v.a: must be a string, got integer (quote it)"},
		{"map duplicate key", "v: {a: x, a: y}\n", smap, "v.a: duplicate key (first at line 1)"},
		{"map long key", "v: {" + long + ": 1}\n", smap, "v." + long[:MaxKeyInMessage] + "…: must be a string"},

		{"int from string", "v: '1'\n", num, "v: must be an integer, got string"},
		{"int from float", "v: 1.0\n", num, "v: must be an integer, got number"},
		{"int overflow", "v: 9223372036854775808\n", num, "v: must be an integer that fits in"},

		{"bool from string", "v: 'true'\n", flag, "v: must be true or false, got string"},
		{"bool from yes", "v: 1\n", flag, "v: must be true or false, got integer"},

		{"duration from int", "v: 10\n", dur, "v: must be a string, got integer (quote it)"},
		{"duration unparsable", "v: ten seconds\n", dur, "v: must be a positive duration such as 10s or 200ms"},
		{"duration no unit", "v: '10'\n", dur, "v: must be a positive duration"},
		{"duration zero", "v: 0s\n", dur, "v: must be a positive duration"},
		{"duration negative", "v: -1s\n", dur, "v: must be a positive duration"},

		{"timestamp from int", "v: 10\n", ts, "v: must be an RFC 3339 timestamp, got integer"},
		{"timestamp date only", "v: 2026-01-02\n", ts, "v: must be an RFC 3339 timestamp such as"},
		{"timestamp text", "v: yesterday\n", ts, "v: must be an RFC 3339 timestamp such as"},

		{"json alias", "x: &a 1\nv: [*a]\n", js, "line 2: v[0]: aliases are not allowed"},
		{"json nested alias", "x: &a 1\nv: {y: *a}\n", js, "line 2: v.y: aliases are not allowed"},
		{"json non-string key", "v: {1: a}\n", js, "v: keys must be strings, got integer"},
		{"json duplicate key", "v: {a: 1, a: 2}\n", js, "v.a: duplicate key"},
		{"json NaN", "v: .nan\n", js, "v: must be a finite number"},
		{"json infinity", "v: [-.inf]\n", js, "v[0]: must be a finite number"},
		{"json big integer", "v: 9007199254740993\n", js, "v: integer out of the exact range of a JSON number"},
		{"json huge integer", "v: 9223372036854775808\n", js, "v: integer out of the exact range"},
		{"json binary", "v: !!binary aGk=\n", js, `v: value tagged "!!binary" has no JSON equivalent`},
		{"json timestamp", "v: {t: 2026-01-02}\n", js, "v.t: timestamp has no JSON equivalent"},
		{"json too deep", "v: " + strings.Repeat("[", MaxJSONDepth+2) + strings.Repeat("]", MaxJSONDepth+2) + "\n", js, "nested deeper than 64 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(t, &Walker{}, tt.in, tt.fn)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("read(%q) = %v, %v, want an *Error", tt.in, got, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("read(%q) = %q, want %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name string
		in   string
		fn   func(w *Walker, n *yaml.Node) (any, error)
		want any
	}{
		{"str", "v: hello\n", str, "hello"},
		{"str quoted number", "v: '10'\n", str, "10"},
		{"str empty", "v: ''\n", str, ""},
		{"list", "v: [a, '', a]\n", list(0), []string{"a", "", "a"}},
		{"list checked", "v: [a, b]\n", list(NonEmpty | Unique), []string{"a", "b"}},
		{"list empty", "v: []\n", list(NonEmpty | Unique), []string{}},
		{"map", "v: {a: x, b: ''}\n", smap, map[string]string{"a": "x", "b": ""}},
		{"map empty", "v: {}\n", smap, map[string]string{}},
		{"int", "v: -42\n", num, -42},
		{"int hex", "v: 0x10\n", num, 16},
		{"bool", "v: false\n", flag, false},
		{"duration", "v: 1m30s\n", dur, 90 * time.Second},
		{"timestamp", "v: 2026-01-02T15:04:05Z\n", ts, time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)},
		{"timestamp quoted", "v: '2026-01-02T15:04:05.5+01:00'\n", ts, time.Date(2026, 1, 2, 15, 4, 5, 5e8, time.FixedZone("", 3600))},
		{"json", "v: {a: [1, 2.5, null, true, x], b: {}}\n", js, map[string]any{"a": []any{1.0, 2.5, nil, true, "x"}, "b": map[string]any{}}},
		{"json largest integer", "v: -9007199254740992\n", js, -9007199254740992.0},
		{"json deepest", "v: " + strings.Repeat("[", MaxJSONDepth+1) + strings.Repeat("]", MaxJSONDepth+1) + "\n", js, nest(MaxJSONDepth + 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := read(t, &Walker{}, tt.in, tt.fn)
			if err != nil {
				t.Fatalf("read(%q) = %v", tt.in, err)
			}
			if tm, ok := got.(time.Time); ok {
				if !tm.Equal(tt.want.(time.Time)) {
					t.Errorf("read(%q) = %v, want %v", tt.in, tm, tt.want)
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("read(%q) = %#v, want %#v", tt.in, got, tt.want)
			}
		})
	}
}

// nest returns depth nested empty lists.
func nest(depth int) any {
	var v any = []any{}
	for range depth - 1 {
		v = []any{v}
	}
	return v
}

func TestJSONTimestamps(t *testing.T) {
	w := &Walker{JSONTimestamps: true}
	got, err := read(t, w, "v: [2026-01-02, '2026-01-02']\n", js)
	if err != nil {
		t.Fatalf("JSONValue = %v", err)
	}
	if want := []any{"2026-01-02", "2026-01-02"}; !reflect.DeepEqual(got, want) {
		t.Errorf("JSONValue = %#v, want %#v", got, want)
	}
}

func TestJSONValueMarshal(t *testing.T) {
	got, err := read(t, &Walker{}, "v: {n: [0, -1, 9007199254740992, 1.5e300, 1e-7], s: \"\\u00e9\"}\n", js)
	if err != nil {
		t.Fatalf("JSONValue = %v", err)
	}
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatalf("json.Marshal = %v", err)
	}
	if want := `{"n":[0,-1,9007199254740992,1.5e+300,1e-7],"s":"é"}`; string(b) != want {
		t.Errorf("json.Marshal(JSONValue) = %s, want %s", b, want)
	}
}

// ctxError stands for a caller's error type.
type ctxError struct {
	file string
	e    *Error
}

func (c *ctxError) Error() string { return c.file + ":" + c.e.Error() }

func TestWrap(t *testing.T) {
	w := &Walker{Wrap: func(e *Error) error { return &ctxError{file: "f.yaml", e: e} }}
	_, err := read(t, w, "v: 1\n", str)
	var ce *ctxError
	if !errors.As(err, &ce) {
		t.Fatalf("error = %T %v, want a *ctxError", err, err)
	}
	if want := "f.yaml:line 1: v: must be a string, got integer (quote it)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}

	// Errors of callbacks pass through, unwrapped again.
	mine := errors.New("mine")
	_, err = read(t, w, "v: 1\n", func(*Walker, *yaml.Node) (any, error) { return nil, mine })
	if err != mine {
		t.Errorf("callback error = %v, want it unchanged", err)
	}

	// So does ErrUnknownKey, as an unknown-key error.
	_, err = read(t, w, "y: 1\n", str)
	if !errors.As(err, &ce) || ce.e.Line != 1 || ce.e.Key != "" || ce.e.Err.Error() != `unknown key "y"` {
		t.Errorf("unknown key error = %v, want a *ctxError at line 1 without key", err)
	}
}

func TestLines(t *testing.T) {
	w := &Walker{Lines: map[string]int{}}
	root, err := w.DecodeSingle([]byte("a: 1\nb:\n  c: x\n  d:\n    - y\n"))
	if err != nil {
		t.Fatalf("DecodeSingle = %v", err)
	}
	err = w.Mapping(root, "", func(k string, v *yaml.Node) error {
		if k == "b" {
			return w.Mapping(v, k, func(string, *yaml.Node) error { return nil })
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Mapping = %v", err)
	}
	want := map[string]int{"a": 1, "b": 3, "b.c": 3, "b.d": 5}
	if !reflect.DeepEqual(w.Lines, want) {
		t.Errorf("Lines = %v, want %v", w.Lines, want)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		want string
	}{
		{"full", &Error{Line: 3, Key: "a.b", Err: errors.New("bad")}, "line 3: a.b: bad"},
		{"no line", &Error{Key: "a", Err: errors.New("bad")}, "a: bad"},
		{"no key", &Error{Line: 1, Err: errors.New("bad")}, "line 1: bad"},
		{"nothing", &Error{}, "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
		})
	}
	inner := errors.New("inner")
	if e := (&Error{Err: inner}); !errors.Is(e, inner) {
		t.Errorf("errors.Is(%v, inner) = false, want true", e)
	}
}

func TestFormatError(t *testing.T) {
	bad := errors.New("bad")
	tests := []struct {
		name  string
		file  string
		line  int
		err   error
		parts []string
		want  string
	}{
		{"all", "f.yaml", 12, bad, []string{Label("rule", "r1"), Label("case", "c"), "a.b"}, `p: f.yaml:12: rule "r1": case "c": a.b: bad`},
		{"empty parts", "f.yaml", 3, bad, []string{Label("rule", ""), "", "k"}, "p: f.yaml:3: k: bad"},
		{"no line", "f.yaml", 0, bad, nil, "p: f.yaml: bad"},
		{"no err", "f.yaml", 1, nil, []string{"k"}, "p: f.yaml:1: k: invalid"},
		{"no file", "", 0, bad, nil, "p: : bad"},
		{"label quotes", "f", 0, bad, []string{Label("tool", "a\"b")}, `p: f: tool "a\"b": bad`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatError("p", tt.file, tt.line, tt.err, tt.parts...); got != tt.want {
				t.Errorf("FormatError = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name string
		in   string
		path string
		want string // "" for no error
	}{
		{"all present", "a: 1\nb: ~\n", "", ""},
		{"first missing", "b: 1\n", "", "line 1: a: required key is missing"},
		{"second missing", "a: 1\n", "", "line 1: b: required key is missing"},
		{"nested path", "\nc: 1\n", "v", "line 2: v.a: required key is missing"},
		{"only in a value", "c: {a: 1, b: 2}\n", "", "a: required key is missing"},
		{"empty mapping", "{}\n", "", "a: required key is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Walker
			n, err := w.DecodeSingle([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeSingle(%q) = %v", tt.in, err)
			}
			err = w.Require(n, tt.path, "a", "b")
			if tt.want == "" {
				if err != nil {
					t.Errorf("Require(%q) = %v, want nil", tt.in, err)
				}
				return
			}
			var e *Error
			if !errors.As(err, &e) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Require(%q) = %v, want an *Error with %q", tt.in, err, tt.want)
			}
		})
	}
}

func TestPeek(t *testing.T) {
	nonEmpty := func(s string) bool { return s != "" }
	tests := []struct {
		name   string
		in     string
		want   string
		wantOK bool
	}{
		{"found", "a: 1\nid: x\nb: 2\n", "x", true},
		{"last valid wins", "id: x\nid: y\nid: ''\n", "y", true},
		{"not a string", "id: 1\n", "", false},
		{"rejected", "id: ''\n", "", false},
		{"missing", "a: x\n", "", false},
		{"nested only", "a: {id: x}\n", "", false},
		{"not a mapping", "[id, x]\n", "", false},
		{"alias", "a: &v x\nid: *v\n", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var w Walker
			n, err := w.DecodeSingle([]byte(tt.in))
			if err != nil {
				t.Fatalf("DecodeSingle(%q) = %v", tt.in, err)
			}
			if got, ok := Peek(n, "id", nonEmpty); got != tt.want || ok != tt.wantOK {
				t.Errorf("Peek(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestTruncateJoin(t *testing.T) {
	if got := Truncate("abc"); got != "abc" {
		t.Errorf(`Truncate("abc") = %q, want "abc"`, got)
	}
	exact := strings.Repeat("x", MaxKeyInMessage)
	if got := Truncate(exact); got != exact {
		t.Errorf("Truncate(%d bytes) = %q, want it unchanged", len(exact), got)
	}
	if got := Truncate(exact + "y"); got != exact+"…" {
		t.Errorf("Truncate(%d bytes) = %q, want %q", len(exact)+1, got, exact+"…")
	}
	if got := Join("", "a"); got != "a" {
		t.Errorf(`Join("", "a") = %q, want "a"`, got)
	}
	if got := Join("a.b", "c"); got != "a.b.c" {
		t.Errorf(`Join("a.b", "c") = %q, want "a.b.c"`, got)
	}
}

func FuzzJSONValue(f *testing.F) {
	for _, seed := range []string{
		"{a: [1, 2.5, null, true, x], t: 2026-01-02}",
		"x: &a 1\ny: *a\n",
		"[.nan, .inf, 9007199254740993]",
		"!!binary aGk=",
		"a: 1\n---\nb: 2\n",
		"? [a]\n: b\n",
	} {
		f.Add([]byte(seed), false)
	}
	f.Fuzz(func(t *testing.T, data []byte, timestamps bool) {
		w := &Walker{JSONTimestamps: timestamps}
		n, err := w.DecodeSingle(data)
		if err == nil {
			var v any
			if v, err = w.JSONValue(n, ""); err == nil {
				if _, err := json.Marshal(v); err != nil {
					t.Fatalf("json.Marshal(JSONValue(%q)) = %v", data, err)
				}
				return
			}
		}
		var e *Error
		if !errors.As(err, &e) {
			t.Fatalf("error %T is not an *Error: %v", err, err)
		}
	})
}
