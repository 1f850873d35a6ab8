package ledger

import (
	"testing"

	"github.com/go-json-experiment/json"
)

// slowHeader is what the full decoder makes of a leaf.
func slowHeader(leaf []byte) (entryHeader, bool) {
	var h entryHeader
	err := json.Unmarshal(leaf, &h)
	return h, err == nil
}

var headerScanCases = []string{
	`{"action_id":"a","agent_id":"bot","issued_at":"2026-11-22T11:13:00Z","policy":{"id":"p","x":["}",{"y":"\""}]},"receipt_id":"r","seq":2,"spec":"oars.receipt.v1","status":"executed","tenant_id":"acme"}`,
	` { "spec" : "oars.event.v1" , "event_id" : "e1", "details": {"a":[1,2,{"b":null}]}, "issued_at":"2026-01-01T00:00:00Z" } `,
	`{}`,
	`{"seq":0}`,
	`{"seq":9223372036854775807}`,
}

func TestScanHeaderMatchesDecoder(t *testing.T) {
	for _, c := range headerScanCases {
		fast, ok := scanHeader([]byte(c))
		if !ok {
			t.Errorf("scanHeader(%s) fell back, want the fast path", c)
			continue
		}
		slow, sok := slowHeader([]byte(c))
		if !sok || fast != slow {
			t.Errorf("scanHeader(%s) = %+v, decoder = %+v (ok %v)", c, fast, slow, sok)
		}
	}
}

func TestScanHeaderFallsBack(t *testing.T) {
	for _, c := range []string{
		``, `[]`, `{"spec":"a\u0062"}`, `{"spec":"x","spec":"y"}`, `{"seq":1.5}`, `{"seq":-1}`, `{"seq":01}`,
		`{"seq":1e3}`, `{"seq":99999999999999999999}`, `{"tenant_id":"\xff"}`, `{"a":1,}`, `{"a":1} x`, `{"a" 1}`,
		`{"a":"unterminated}`, `{"a":[1,2}`, `{"status":null}`,
	} {
		if h, ok := scanHeader([]byte(c)); ok {
			t.Errorf("scanHeader(%q) = %+v, ok; want a fallback", c, h)
		}
	}
}

// FuzzScanHeader checks that whenever the fast scanner accepts a leaf that
// is valid JSON, it agrees with the full decoder.
func FuzzScanHeader(f *testing.F) {
	for _, c := range headerScanCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		fast, ok := scanHeader(leaf)
		if !ok {
			return
		}
		if slow, sok := slowHeader(leaf); sok && fast != slow {
			t.Fatalf("scanHeader = %+v, decoder = %+v", fast, slow)
		}
	})
}

func BenchmarkParseHeader(b *testing.B) {
	leaf := []byte(headerScanCases[0])
	for b.Loop() {
		if _, ok := ParseHeader(leaf); !ok {
			b.Fatal("not parsed")
		}
	}
}
