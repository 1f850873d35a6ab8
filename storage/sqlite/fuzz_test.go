package sqlite_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

// FuzzAppendLeaf appends arbitrary leaves: each is stored byte for byte,
// indexed when it parses as a receipt, refused only as a duplicate, and the
// log keeps verifying.
func FuzzAppendLeaf(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`not json`,
		"\xff\xfe invalid utf-8",
		`{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1,"status":"allowed","tenant_id":"t","agent_id":"g","issued_at":"2026-01-02T03:04:05Z"}`,
		`{"spec":"oars.receipt.v1","receipt_id":"r2","action_id":"a1","seq":2,"issued_at":"0000-01-01T00:00:00.123456789+14:00"}`,
		`{"spec":"oars.receipt.v1","receipt_id":"r'); DROP TABLE leaves;--","action_id":"a\u0000","seq":1}`,
		`{"spec":"oars.event.v1","event_id":"e1","event":"policy.reloaded","tenant_id":"t","issued_at":"9999-12-31T23:59:59Z"}`,
		`{"spec":"oars.receipt.v1","receipt_id":"r3","action_id":"a3","seq":9007199254740993}`,
	} {
		f.Add([]byte(seed))
	}
	s, _ := openTemp(f)
	l := newLedger(f, s)
	f.Fuzz(func(t *testing.T, leaf []byte) {
		ctx := t.Context()
		idx, err := l.Append(ctx, leaf)
		if errors.Is(err, sqlite.ErrDuplicateReceipt) || errors.Is(err, sqlite.ErrDuplicateEvent) {
			return
		}
		if err != nil {
			t.Fatalf("Append(%q) = %v, want nil", leaf, err)
		}
		got, err := s.ReadLeaves(ctx, idx, 1)
		if err != nil || !bytes.Equal(got[0], leaf) {
			t.Fatalf("ReadLeaves(%d) = %q, %v, want %q", idx, got, err, leaf)
		}
		if h, ok := ledger.ParseHeader(leaf); ok && h.Spec == ledger.SpecReceipt {
			rec, err := s.ReceiptByID(ctx, h.ReceiptID)
			if err != nil || rec.Index != idx {
				t.Fatalf("ReceiptByID(%q) = %d, %v, want %d, nil", h.ReceiptID, rec.Index, err, idx)
			}
		}
		if idx%32 != 0 {
			return // Verify reads the whole log: not after every append
		}
		if _, err := ledger.Verify(ctx, s, nil); err != nil {
			t.Fatalf("Verify() after appending %q = %v", leaf, err)
		}
	})
}
