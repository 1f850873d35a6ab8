package sqlite_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

// openTemp opens a store on a new file in t.TempDir and returns it with the
// file's path.
func openTemp(t testing.TB, opts ...sqlite.Option) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "oars.db")
	return openAt(t, path, opts...), path
}

// openAt opens a store at path and closes it at the end of the test.
func openAt(t testing.TB, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", filepath.Base(path), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

// rawDB opens the database file at path with plain database/sql, bypassing
// the store, to inspect or damage it. Foreign keys are off, as in the
// sqlite3 shell.
func rawDB(t testing.TB, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open(%s) = %v", filepath.Base(path), err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// rawExec runs statements on the database file at path and closes it.
func rawExec(t testing.TB, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open(%s) = %v", filepath.Base(path), err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("Exec(%q) = %v", q, err)
		}
	}
}

// testReceipt is the header of a receipt-shaped test leaf.
type testReceipt struct {
	Spec      string `json:"spec"`
	ReceiptID string `json:"receipt_id"`
	ActionID  string `json:"action_id"`
	Seq       int64  `json:"seq"`
	Status    string `json:"status"`
	TenantID  string `json:"tenant_id"`
	AgentID   string `json:"agent_id"`
	IssuedAt  string `json:"issued_at"`
	Padding   string `json:"padding,omitempty"`
}

var testEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// receiptLeaf returns a receipt-shaped leaf: receipt r<i>, seq seq of
// action a<action>, issued i seconds after testEpoch.
func receiptLeaf(i, action int, seq int64) []byte {
	return leafOf(testReceipt{
		Spec:      ledger.SpecReceipt,
		ReceiptID: fmt.Sprintf("r%d", i),
		ActionID:  fmt.Sprintf("a%d", action),
		Seq:       seq,
		Status:    "allowed",
		TenantID:  "t1",
		AgentID:   "agent-1",
		IssuedAt:  testEpoch.Add(time.Duration(i) * time.Second).Format(time.RFC3339),
	})
}

func leafOf(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // test data only
	}
	return b
}

// receiptLeaves returns n receipt leaves, each the first of its own action.
func receiptLeaves(from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = receiptLeaf(from+i, from+i, 1)
	}
	return out
}

// newLedger returns a Ledger over s.
func newLedger(t testing.TB, s ledger.Store, opts ...ledger.Option) *ledger.Ledger {
	t.Helper()
	l, err := ledger.New(context.Background(), s, opts...)
	if err != nil {
		t.Fatalf("ledger.New() = %v, want nil", err)
	}
	return l
}

// appendAll appends leaves one by one through l.
func appendAll(t testing.TB, l *ledger.Ledger, leaves [][]byte) {
	t.Helper()
	for i, leaf := range leaves {
		if _, err := l.Append(context.Background(), leaf); err != nil {
			t.Fatalf("Append(leaf %d) = %v, want nil", i, err)
		}
	}
}

// mustVerify runs ledger.Verify on s and fails the test unless it passes
// with the wanted size.
func mustVerify(t testing.TB, s ledger.Store, wantSize int64) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(context.Background(), s, nil)
	if err != nil {
		t.Fatalf("ledger.Verify() = %v, want nil", err)
	}
	if rep.Size != wantSize {
		t.Fatalf("ledger.Verify().Size = %d, want %d", rep.Size, wantSize)
	}
	return rep
}
