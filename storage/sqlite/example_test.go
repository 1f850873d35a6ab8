package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

// A ledger in a SQLite file: append a receipt, find it by id, and audit the
// whole log.
func Example() {
	dir, err := os.MkdirTemp("", "oars-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()

	s, err := sqlite.Open(ctx, filepath.Join(dir, "oars.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	l, err := ledger.New(ctx, s)
	if err != nil {
		fmt.Println(err)
		return
	}

	// In OARS a leaf is a signed receipt; this one is unsigned for brevity.
	leaf := []byte(`{"action_id":"act_1","agent_id":"billing-bot","issued_at":"2026-01-02T03:04:05Z",` +
		`"receipt_id":"rcpt_1","seq":1,"spec":"oars.receipt.v1","status":"allowed","tenant_id":"acme"}`)
	idx, err := l.Append(ctx, leaf)
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, err := s.ReceiptByID(ctx, "rcpt_1")
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("appended at %d, found rcpt_1 at %d, log of %d verifies\n", idx, rec.Index, rep.Size)
	// Output: appended at 0, found rcpt_1 at 0, log of 1 verifies
}

// An auditor opens a ledger read-only: nothing is created or migrated, and
// appends are refused.
func ExampleWithReadOnly() {
	dir, err := os.MkdirTemp("", "oars-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	path := filepath.Join(dir, "oars.db")

	if _, err := sqlite.Open(ctx, path, sqlite.WithReadOnly()); err != nil {
		fmt.Println("missing file:", err != nil)
	}
	w, err := sqlite.Open(ctx, path)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Close(); err != nil {
		fmt.Println(err)
		return
	}

	s, err := sqlite.Open(ctx, path, sqlite.WithReadOnly())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer s.Close()
	size, err := s.Size(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	err = s.Append(ctx, 0, [][]byte{[]byte("x")}, nil)
	fmt.Println("size:", size)
	fmt.Println(err)
	// Output:
	// missing file: true
	// size: 0
	// sqlite: append: sqlite: read-only
}
