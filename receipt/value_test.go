package receipt

import (
	"bytes"
	"reflect"
	"slices"
	"testing"
	"unicode/utf16"

	jsonv2 "github.com/go-json-experiment/json"
)

var valueCases = []string{
	`{"amount": 42, "currency": "EUR", "note": "customer sent photos"}`,
	`{"b":[1,2.5,-0,1e2,-1.5e-7,1e21,123456789012345678901234567890],"a":{"y":null,"x":true,"z":false}}`,
	`["\ud83d\ude00","\u00e9","\u2028","","\"\\\/\b\f\n\r\t\u0000\u001f\u007f","x\u0001y"]`,
	`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4,"":{}}`,
	`[[],{},[[]],{"a":[{}]}]`,
	`{"b":{"d":"\n","c":"x\"y"},"a":["\t",{"z":1,"y":"\u00e9\\"}],"c":{"f":{"h":"\u0001","g":"q"},"e":"\/"}}`,
	"{\"\U0001F600\":1,\"\uFB33\":2,\"\u00e9\":3,\"e\":4,\"\U0001F600a\":5,\"\uFB33\U0001F600\":6,\"\uFFFF\":7,\"\u00e9\u00e9\":8,\"\u00e8\":9}",
	`"just a string"`, `0`, `-12.75`, `1e-400`, `-1e-400`, `[0.1,1E-7,123e-20,1e21,5e-324,1.7976931348623157e308]`, `true`, `false`, `null`, `-0`, `123456789012345`, `1234567890123456`,
	` {"z": [ 1 , -2 , "x\u00e9\u2028\/" ] , "a" : { "c":null, "b" :true } } `,
	`{"\ud83d\ude00":1,"\ufb33":2,"\u00e9":3,"e":4,"":5,"\u0000":6}`,
	"{\"deep\":" + string(bytes.Repeat([]byte("["), MaxDepth-1)) + string(bytes.Repeat([]byte("]"), MaxDepth-1)) + "}",
}

// rejectCases are not strict JSON.
var rejectCases = []string{
	``, ` `, `{"a":1,"a":2}`, `{"a":1,"\u0061":2}`, `{"b":1,"a":2,"b":3}`, `[1,]`, `1e400`, "\"\xff\"", `[] []`,
	`007`, `["\ud800"]`, `["\udc00\ud800"]`, `[1,2]x`, `{"a" 1}`, `[tru]`, "[\"\x01\"]", `"\x"`,
	string(bytes.Repeat([]byte("["), MaxDepth+1)) + string(bytes.Repeat([]byte("]"), MaxDepth+1)),
}

// referenceValue is what the general-purpose decoder makes of canonical.
func referenceValue(t testing.TB, canonical []byte) any {
	t.Helper()
	var v any
	if err := jsonv2.Unmarshal(canonical, &v); err != nil {
		t.Fatalf("jsonv2.Unmarshal(%q) error = %v", canonical, err)
	}
	return v
}

func TestCanonicalizeValue(t *testing.T) {
	for _, c := range valueCases {
		t.Run(c, func(t *testing.T) {
			canonical, v, err := CanonicalizeValue([]byte(c))
			if err != nil {
				t.Fatalf("CanonicalizeValue(%q) error = %v", c, err)
			}
			want, err := Canonicalize([]byte(c))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(canonical, want) {
				t.Errorf("CanonicalizeValue(%q) canonical = %q, want %q", c, canonical, want)
			}
			if ref := referenceValue(t, canonical); !reflect.DeepEqual(v, ref) {
				t.Errorf("CanonicalizeValue(%q) value = %#v, want %#v", c, v, ref)
			}
		})
	}
}

func TestCompareUTF16(t *testing.T) {
	words := []string{"", "a", "ab", "b", "\u00e9", "\u00e9a", "\u00e8", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\ufb33",
		"\uffff", "\U00010000", "\U0001F600", "\U0001F600a", "\U0010FFFF", "a\U0001F600", "a\uffff"}
	for _, a := range words {
		for _, b := range words {
			want := slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
			if got := compareUTF16(a, b); got != want {
				t.Errorf("compareUTF16(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
}

// TestCanonicalizeSimpleTakesTypicalInput checks that the one-pass path,
// not the fallback, handles the usual shapes of action input.
func TestCanonicalizeSimpleTakesTypicalInput(t *testing.T) {
	for _, c := range []string{
		valueCases[0], valueCases[1], valueCases[3], valueCases[4], `"just a string"`, `-12`, `true`, `null`,
		`[1.5,1e2,-0,-0.0,1234567890123456,0.1,1E-7,123e-20,1e21,5e-324]`, string(actionInput),
		` {"z": [ 1 , -2 , "x\u00e9\u2028\/" ] , "a" : { "c":null, "b" :true } } `,
	} {
		if _, _, ok := canonicalizeSimple([]byte(c)); !ok {
			t.Errorf("canonicalizeSimple(%q) fell back, want the one-pass path", c)
		}
	}
	for _, c := range []string{`1e400`, `-1e400`, `["\ud83d\ude00"]`, `{"a":1,"a":1}`} {
		if _, _, ok := canonicalizeSimple([]byte(c)); ok {
			t.Errorf("canonicalizeSimple(%q) took the one-pass path, want the fallback", c)
		}
	}
}

func TestCanonicalizeValueRejects(t *testing.T) {
	for _, c := range rejectCases {
		_, _, err := CanonicalizeValue([]byte(c))
		_, want := Canonicalize([]byte(c))
		if err == nil || want == nil || err.Error() != want.Error() {
			t.Errorf("CanonicalizeValue(%q) error = %v, want %v", c, err, want)
		}
	}
}

func TestDecodeCanonicalValueRejectsNonCanonical(t *testing.T) {
	for _, c := range []string{``, ` 1`, `{"a" :1}`, `{"a":1,"a":2}`, `[1 ]`, `"\u0041"`, `"\x"`, `"a`, `tru`, `[`, `{"a":1`, "\"\x01\"", `1 `} {
		if v, err := decodeCanonicalValue([]byte(c)); err == nil {
			t.Errorf("decodeCanonicalValue(%q) = %#v, want an error", c, v)
		}
	}
}

// FuzzCanonicalizeValue checks that the value CanonicalizeValue decodes is
// what the general-purpose decoder makes of the canonical form.
func FuzzCanonicalizeValue(f *testing.F) {
	for _, c := range append(valueCases, rejectCases...) {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		canonical, v, err := CanonicalizeValue(data)
		want, werr := Canonicalize(data)
		if err != nil {
			if werr == nil {
				t.Fatalf("CanonicalizeValue(%q) error = %v, but Canonicalize accepts it", data, err)
			}
			if err.Error() != werr.Error() {
				t.Fatalf("CanonicalizeValue(%q) error = %v, Canonicalize error = %v", data, err, werr)
			}
			return
		}
		if werr != nil {
			t.Fatalf("CanonicalizeValue(%q) accepted what Canonicalize rejects: %v", data, werr)
		}
		if !bytes.Equal(canonical, want) {
			t.Fatalf("CanonicalizeValue(%q) canonical = %q, Canonicalize = %q", data, canonical, want)
		}
		if ref := referenceValue(t, canonical); !reflect.DeepEqual(v, ref) {
			t.Fatalf("CanonicalizeValue(%q) value = %#v, want %#v", data, v, ref)
		}
	})
}

func BenchmarkCanonicalizeValue(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := CanonicalizeValue(actionInput); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalizeThenDecode is what CanonicalizeValue replaces.
func BenchmarkCanonicalizeThenDecode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := Canonicalize(actionInput)
		if err != nil {
			b.Fatal(err)
		}
		var v any
		if err := jsonv2.Unmarshal(c, &v); err != nil {
			b.Fatal(err)
		}
	}
}
