package strictjson

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func nested(depth int) string {
	return strings.Repeat("[", depth) + strings.Repeat("]", depth)
}

func nestedObjects(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + "{}" + strings.Repeat("}", depth-1)
}

func TestCheckRejects(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   error
		offset int64
		path   string
	}{
		{"duplicate key", `{"a":1,"a":2}`, ErrDuplicateKey, 7, "/a"},
		{"duplicate key after escape", `{"a":1,"\u0061":2}`, ErrDuplicateKey, 7, "/a"},
		{"duplicate key nested", `{"x":[{"b":1,"c":2,"b":3}]}`, ErrDuplicateKey, 19, "/x/0/b"},
		{"duplicate key escaped both", `{"\u00e9":1,"é":2}`, ErrDuplicateKey, 12, "/é"},
		{"invalid UTF-8 in value", "{\"a\":\"x\xffy\"}", ErrInvalidUTF8, 7, "/a"},
		{"invalid UTF-8 in name", "{\"\xc3\":1}", ErrInvalidUTF8, 2, ""},
		{"truncated UTF-8 sequence", "[\"\xe2\x82\"]", ErrInvalidUTF8, 2, "/0"},
		{"overlong UTF-8", "[\"\xc0\xaf\"]", ErrInvalidUTF8, 2, "/0"},
		{"UTF-8 encoded surrogate", "[\"\xed\xa0\x80\"]", ErrInvalidUTF8, 2, "/0"},
		{"lone high surrogate", `"\ud800"`, ErrInvalidUTF8, 1, ""},
		{"lone low surrogate", `["\udc00"]`, ErrInvalidUTF8, 2, "/0"},
		{"high surrogate then letter", `["ab\ud800\u0041"]`, ErrInvalidUTF8, 4, "/0"},
		{"reversed surrogates", `["\udc00\ud800"]`, ErrInvalidUTF8, 2, "/0"},
		{"number overflow", `{"a":1e400}`, ErrNumberRange, 5, "/a"},
		{"negative number overflow", `[0,-1.5E+999]`, ErrNumberRange, 3, "/1"},
		{"long integer overflow", "[" + "1" + strings.Repeat("0", 400) + "]", ErrNumberRange, 1, "/0"},
		{"depth 65 arrays", nested(65), ErrTooDeep, 64, ""},
		{"depth 65 objects", nestedObjects(65), ErrTooDeep, 320, ""},
		{"trailing value", `{} {}`, ErrTrailingData, 3, ""},
		{"trailing number", "1 2", ErrTrailingData, 2, ""},
		{"trailing garbage", "[1]\n x", ErrTrailingData, 5, ""},
		{"trailing brace", `{"a":1}}`, ErrTrailingData, 7, ""},
		{"empty", "", ErrEmpty, 0, ""},
		{"whitespace only", " \n\t\r", ErrEmpty, 4, ""},
		{"unterminated object", `{"a":1`, ErrSyntax, 6, ""},
		{"trailing comma", `[1,]`, ErrSyntax, 3, "/1"},
		{"single quotes", `{'a':1}`, ErrSyntax, 1, ""},
		{"bad escape", `"\q"`, ErrSyntax, 1, ""},
		{"control character in string", "\"a\x01\"", ErrSyntax, 2, ""},
		{"bare word", `nul`, ErrSyntax, 3, ""},
		{"leading zero", `01`, ErrTrailingData, 1, ""},
		{"NaN", `NaN`, ErrSyntax, 0, ""},
		{"hex float", `0x1p9999`, ErrTrailingData, 1, ""},
		{"hex float in array", `[0x1p9999]`, ErrSyntax, 2, ""},
		{"BOM", "\ufeff{}", ErrSyntax, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for fn, call := range map[string]func([]byte) error{
				"Check": Check,
				"Canonicalize": func(b []byte) error {
					out, err := Canonicalize(b)
					if out != nil {
						t.Errorf("Canonicalize(%q) = %q, want nil output", tt.in, out)
					}
					return err
				},
			} {
				err := call([]byte(tt.in))
				require.ErrorIs(t, err, tt.want, "%s(%q)", fn, tt.in)
				var e *Error
				require.ErrorAs(t, err, &e)
				if tt.path != "" || e.Path != "" && !strings.HasPrefix(tt.name, "depth") {
					assert.Equal(t, tt.path, e.Path, "%s(%q).Path", fn, tt.in)
				}
				assert.Equal(t, tt.offset, e.Offset, "%s(%q).Offset", fn, tt.in)
			}
		})
	}
}

func TestCheckAccepts(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"depth 64 arrays", nested(64), nested(64)},
		{"depth 64 objects", nestedObjects(64), nestedObjects(64)},
		{"negative zero", `-0`, `0`},
		{"float integers", `[1.0,1e2,1E+2,-0.0]`, `[1,100,100,0]`},
		{"underflow", `[1e-400]`, `[0]`},
		{"largest double", `1.7976931348623157e308`, `1.7976931348623157e+308`},
		{"big integer loses precision", `12345678901234567890`, `12345678901234567000`},
		{"sorted by UTF-16", `{"\ud83d\ude00":1,"\ufb01":2,"a":3}`, "{\"a\":3,\"\U0001F600\":1,\"\ufb01\":2}"},
		{"whitespace", " {\n\t\"b\" : [ 1 , 2 ] ,\r\"a\":null } \n", `{"a":null,"b":[1,2]}`},
		{"escapes minimised", `"\u0041\/\u00e9\u2028<>&\u001f\b"`, "\"A/\u00e9\u2028<>&\\u001f\\b\""},
		{"scalar", `true`, `true`},
		{"surrogate pair", `"\ud83d\ude00"`, "\"\U0001F600\""},
		{"same name in sibling objects", `[{"a":1},{"a":2}]`, `[{"a":1},{"a":2}]`},
		{"keys differing in case", `{"a":1,"A":2}`, `{"A":2,"a":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NoError(t, Check([]byte(tt.in)), "Check(%q)", tt.in)
			got, err := Canonicalize([]byte(tt.in))
			require.NoError(t, err, "Canonicalize(%q)", tt.in)
			assert.Equal(t, tt.want, string(got), "Canonicalize(%q)", tt.in)
			ref, err := jcs.Transform([]byte(tt.in))
			if err == nil {
				assert.Equal(t, string(ref), string(got), "Canonicalize(%q) vs jcs.Transform", tt.in)
			}
		})
	}
}

func TestCanonicalizeDoesNotModifyInput(t *testing.T) {
	in := []byte(`{"b":1,"a":2}`)
	orig := bytes.Clone(in)
	out, err := Canonicalize(in)
	require.NoError(t, err)
	assert.Equal(t, `{"a":2,"b":1}`, string(out))
	assert.Equal(t, orig, in, "Canonicalize modified its input")
	out[0] = 'X'
	assert.Equal(t, orig, in, "Canonicalize output aliases its input")
}

func TestErrorMessage(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"path", &Error{Err: ErrDuplicateKey, Offset: 17, Path: "/a/b"}, "json: duplicate key at /a/b (offset 17)"},
		{"no path", &Error{Err: ErrEmpty}, "json: empty input (offset 0)"},
		{"control in path", &Error{Err: ErrDuplicateKey, Offset: 3, Path: "/a\x00\nb"}, `json: duplicate key at /a\x00\nb (offset 3)`},
		{"long path", &Error{Err: ErrSyntax, Offset: 1, Path: "/" + strings.Repeat("é", 100)}, "json: syntax error at /" + strings.Repeat("é", 49) + "... (offset 1)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, tt.err.Error())
		})
	}
}

func TestErrorDoesNotEchoValues(t *testing.T) {
	secret := "sk_live_0123456789"
	inputs := []string{
		`{"a":"` + secret + `","a":"` + secret + `"}`,
		`{"a":"` + secret + "\xff" + `"}`,
		`{"a":"` + secret + `\ud800"}`,
		`{"a":"` + secret + `"} x`,
		`{"a":"` + secret + `",}`,
		`{"a":1e` + strings.Repeat("9", 20) + `}`,
	}
	for _, in := range inputs {
		err := Check([]byte(in))
		require.Error(t, err, "Check(%q)", in)
		assert.NotContains(t, err.Error(), secret, "Check(%q) error echoes input", in)
		assert.NotContains(t, err.Error(), "e999", "Check(%q) error echoes input", in)
	}
}

func FuzzStrictJSON(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
		`{"a":1,"\u0061":2}`,
		`["\ud83d\ude00","\ud800"]`,
		`[1e400,-0,1.0,1e-7,0.000001,123456789012345678901234567890]`,
		"{\"\xff\":1}",
		`"\u2028\u2029<>&\u0000\u001f\"\\/"`,
		nested(64), nested(65),
		`{} {}`, ``, ` `,
		`{"b":{"y":1,"x":2},"a":[{"z":1,"\u00e9":2}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		checkErr := Check(data)
		out, err := Canonicalize(data)
		if !bytes.Equal(orig, data) {
			t.Fatalf("input modified")
		}
		if (checkErr == nil) != (err == nil) {
			t.Fatalf("Check(%q) = %v but Canonicalize error = %v", data, checkErr, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Canonicalize(%q) error %T is not *Error", data, err)
			}
			if !errors.Is(err, e.Err) || e.Err == nil {
				t.Fatalf("Canonicalize(%q) error %v does not wrap a sentinel", data, err)
			}
			return
		}
		ref, rerr := jcs.Transform(data)
		if rerr != nil {
			t.Fatalf("Canonicalize(%q) accepted input jcs.Transform rejects: %v", data, rerr)
		}
		if !bytes.Equal(out, ref) {
			t.Fatalf("Canonicalize(%q) = %q, jcs.Transform = %q", data, out, ref)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("Canonicalize not idempotent on %q: %q, %v", out, again, err)
		}
	})
}

// actionInput is a typical ~500 byte action input.
var actionInput = []byte(`{
  "order_id": "ord_9f8e7d6c5b4a",
  "amount": 2599,
  "currency": "EUR",
  "reason": "Customer reported the parcel arrived damaged; photos attached in ticket.",
  "customer": {"id": "cus_123456", "email": "alice@example.com", "tier": "gold"},
  "items": [
    {"sku": "SKU-001", "qty": 1, "price": 19.99},
    {"sku": "SKU-002", "qty": 2, "price": 3.00}
  ],
  "metadata": {"ticket": "T-48213", "agent": "support-bot", "locale": "de-DE", "retry": false},
  "notify": true
}`)

func BenchmarkCheck(b *testing.B) {
	b.SetBytes(int64(len(actionInput)))
	b.ReportAllocs()
	for b.Loop() {
		if err := Check(actionInput); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalize(b *testing.B) {
	b.SetBytes(int64(len(actionInput)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(actionInput); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalizeJCS(b *testing.B) {
	b.SetBytes(int64(len(actionInput)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := jcs.Transform(actionInput); err != nil {
			b.Fatal(err)
		}
	}
}
