package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestOpenCreatesPrivateFile(t *testing.T) {
	s, path := openTemp(t)
	l := newLedger(t, s)
	appendAll(t, l, receiptLeaves(0, 3))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("Stat(db) = %v", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("db file mode = %v, want no group or other bits (0600)", perm)
	}
	var mode string
	if err := rawDB(t, path).QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatalf("PRAGMA journal_mode: %v", err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		path   string
		opts   []sqlite.Option
		wantIs error
	}{
		{"missing directory", filepath.Join(dir, "nope", "oars.db"), nil, fs.ErrNotExist},
		{"missing file read-only", filepath.Join(dir, "absent.db"), []sqlite.Option{sqlite.WithReadOnly()}, fs.ErrNotExist},
		{"parent is a file", filepath.Join(file, "oars.db"), nil, nil},
		{"path is a directory", dir, nil, nil},
		{"empty path", "", nil, nil},
		{"nil option", filepath.Join(dir, "x.db"), []sqlite.Option{nil}, nil},
		{"bad busy timeout", filepath.Join(dir, "x.db"), []sqlite.Option{sqlite.WithBusyTimeout(0)}, nil},
		{"bad max readers", filepath.Join(dir, "x.db"), []sqlite.Option{sqlite.WithMaxReaders(0)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sqlite.Open(t.Context(), tt.path, tt.opts...)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%s) = nil error, want an error", tt.name)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("Open(%s) = %v, want an error wrapping %v", tt.name, err, tt.wantIs)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: open: ") {
				t.Errorf("Open(%s) error %q, want prefix %q", tt.name, err, "sqlite: open: ")
			}
		})
	}
	// Failed opens created nothing.
	for _, name := range []string{"absent.db", "x.db"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) after failed Open = %v, want not exist", name, err)
		}
	}
}

func schemaVersion(t *testing.T, path string) int {
	t.Helper()
	var v int
	if err := rawDB(t, path).QueryRow("SELECT version FROM schema_version WHERE id = 1").Scan(&v); err != nil {
		t.Fatalf("read schema_version: %v", err)
	}
	return v
}

func TestMigrations(t *testing.T) {
	t.Run("fresh", func(t *testing.T) {
		_, path := openTemp(t)
		if got := schemaVersion(t, path); got != sqlite.SchemaVersion {
			t.Errorf("schema version after Open = %d, want %d", got, sqlite.SchemaVersion)
		}
	})

	t.Run("reopen is idempotent", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "oars.db")
		leaves := receiptLeaves(0, 5)
		for round := range 3 {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open (round %d) = %v, want nil", round, err)
			}
			l := newLedger(t, s)
			if _, err := l.Append(t.Context(), leaves[round]); err != nil {
				t.Fatalf("Append (round %d) = %v", round, err)
			}
			mustVerify(t, s, int64(round+1))
			if err := s.Close(); err != nil {
				t.Fatalf("Close (round %d) = %v", round, err)
			}
		}
		if got := schemaVersion(t, path); got != sqlite.SchemaVersion {
			t.Errorf("schema version after reopens = %d, want %d", got, sqlite.SchemaVersion)
		}
	})

	t.Run("too new", func(t *testing.T) {
		s, path := openTemp(t)
		appendAll(t, newLedger(t, s), receiptLeaves(0, 2))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		newer := sqlite.SchemaVersion + 1
		rawExec(t, path, fmt.Sprintf("UPDATE schema_version SET version = %d", newer))
		want := fmt.Sprintf("schema version %d is newer than this build supports (%d)", newer, sqlite.SchemaVersion)
		for _, opts := range [][]sqlite.Option{nil, {sqlite.WithReadOnly()}} {
			s2, err := sqlite.Open(t.Context(), path, opts...)
			if err == nil {
				s2.Close()
				t.Fatalf("Open(newer schema, %d opts) = nil error, want ErrSchemaTooNew", len(opts))
			}
			if !errors.Is(err, sqlite.ErrSchemaTooNew) || !strings.Contains(err.Error(), want) {
				t.Errorf("Open(newer schema, %d opts) = %v, want %q wrapping ErrSchemaTooNew", len(opts), err, want)
			}
		}
		if got := schemaVersion(t, path); got != newer {
			t.Errorf("schema version after refused Open = %d, want %d (unchanged)", got, newer)
		}
	})

	t.Run("foreign database", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "other.db")
		rawExec(t, path, "CREATE TABLE notes (body TEXT)", "INSERT INTO notes VALUES ('keep me')")
		s, err := sqlite.Open(t.Context(), path)
		if err == nil {
			s.Close()
			t.Fatal("Open(foreign database) = nil error, want an error")
		}
		if !strings.Contains(err.Error(), "not an OARS ledger") {
			t.Errorf("Open(foreign database) = %v, want it to say not an OARS ledger", err)
		}
		var n int
		if err := rawDB(t, path).QueryRow("SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil || n != 1 {
			t.Errorf("objects in foreign database after Open = %d, %v, want 1, nil (untouched)", n, err)
		}
	})

	t.Run("read-only on empty file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "empty.db")
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := sqlite.Open(t.Context(), path, sqlite.WithReadOnly())
		if err == nil {
			s.Close()
			t.Fatal("Open(empty file, read-only) = nil error, want an error")
		}
	})
}

func pageSize(t *testing.T, path string) int {
	t.Helper()
	var n int
	if err := rawDB(t, path).QueryRow("PRAGMA page_size").Scan(&n); err != nil {
		t.Fatalf("read page_size: %v", err)
	}
	return n
}

// TestPageSize checks that a new database gets 8 KiB pages and that a
// database created with another page size keeps it and works as before.
func TestPageSize(t *testing.T) {
	t.Run("new", func(t *testing.T) {
		s, path := openTemp(t)
		appendAll(t, newLedger(t, s), receiptLeaves(0, 3))
		if got := pageSize(t, path); got != 8192 {
			t.Errorf("page_size of a new database = %d, want 8192", got)
		}
	})
	t.Run("existing 4096", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "oars.db")
		rawExec(t, path, "PRAGMA page_size = 4096", "PRAGMA journal_mode = WAL")
		for round := range 2 {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("Open (round %d) = %v", round, err)
			}
			l := newLedger(t, s)
			appendAll(t, l, receiptLeaves(round*3, 3))
			mustVerify(t, s, int64(round*3+3))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		if got := pageSize(t, path); got != 4096 {
			t.Errorf("page_size of a database created with 4096 = %d, want 4096", got)
		}
	})
}

func TestCorruptFile(t *testing.T) {
	valid := func(t *testing.T) []byte {
		s, path := openTemp(t)
		appendAll(t, newLedger(t, s), receiptLeaves(0, 200))
		if err := s.Close(); err != nil { // checkpoints the WAL into the file
			t.Fatal(err)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name string
		data func(t *testing.T) []byte
	}{
		{"garbage", func(*testing.T) []byte { return bytes.Repeat([]byte("not a database "), 500) }},
		{"text", func(*testing.T) []byte { return []byte("hello\n") }},
		{"truncated header", func(t *testing.T) []byte { return valid(t)[:50] }},
		{"damaged pages", func(t *testing.T) []byte {
			b := valid(t)
			for i := 4096; i < len(b); i++ { // keep page 1 (the schema), trash the rest
				b[i] = byte(i * 7)
			}
			return b
		}},
		{"truncated pages", func(t *testing.T) []byte {
			b := valid(t)
			return b[:len(b)/2]
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oars.db")
			data := tt.data(t)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := sqlite.Open(t.Context(), path)
			if err == nil {
				defer s.Close()
				// Open may succeed if the schema page is intact; then the
				// damage must show up on reading, never as a short log.
				_, err = ledger.Verify(t.Context(), s, nil)
			}
			if err == nil {
				t.Fatalf("Open+Verify(%s) = nil error, want an error", tt.name)
			}
			if !errors.Is(err, sqlite.ErrCorrupt) {
				t.Errorf("Open+Verify(%s) = %v, want an error wrapping ErrCorrupt", tt.name, err)
			}
		})
	}
}

func TestDamagedRows(t *testing.T) {
	const n = 40
	tests := []struct {
		name string
		sql  string
		// check runs on the reopened store and returns the error it gets.
		check func(ctx context.Context, s *sqlite.Store) error
	}{
		{"leaf missing in the middle", "DELETE FROM leaves WHERE idx = 17",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadLeaves(ctx, 10, 20)
				return err
			}},
		{"last leaf missing", "DELETE FROM leaves WHERE idx = 39",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.Size(ctx)
				return err
			}},
		{"last leaf missing, read", "DELETE FROM leaves WHERE idx = 39",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadLeaves(ctx, 0, n)
				return err
			}},
		// Leaf 19 completes two subtrees: its row holds three hashes.
		{"hashes cut short", "UPDATE leaves SET hashes = substr(hashes, 1, 32) WHERE idx = 19",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, 19) + 2})
				return err
			}},
		{"last hashes missing", fmt.Sprintf("UPDATE leaves SET hashes = x'' WHERE idx = %d", n-1),
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.Size(ctx)
				return err
			}},
		{"short hash", "UPDATE leaves SET hashes = x'0102' WHERE idx = 5",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, 5)})
				return err
			}},
		{"hashes too long", "UPDATE leaves SET hashes = hashes || zeroblob(32) WHERE idx = 6",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadHashes(ctx, []int64{tlog.StoredHashIndex(0, 6)})
				return err
			}},
		{"size beyond rows", fmt.Sprintf("UPDATE meta SET size = %d", n+3),
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.Size(ctx)
				return err
			}},
		{"size below rows", fmt.Sprintf("UPDATE meta SET size = %d", n-3),
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.Size(ctx)
				return err
			}},
		{"meta row gone", "DELETE FROM meta",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadLeaves(ctx, 0, 1)
				return err
			}},
		// The receipt index is part of the leaf's row: deleting the row
		// deletes its index entries with it and leaves a gap, which reads
		// of the log report.
		{"indexed leaf gone", "DELETE FROM leaves WHERE idx = 3",
			func(ctx context.Context, s *sqlite.Store) error {
				_, err := s.ReadLeaves(ctx, 0, n)
				return err
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "oars.db")
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatal(err)
			}
			appendAll(t, newLedger(t, s), receiptLeaves(0, n))
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			rawExec(t, path, tt.sql)
			s = openAt(t, path)
			err = tt.check(t.Context(), s)
			if !errors.Is(err, sqlite.ErrCorrupt) {
				t.Errorf("after %q: got %v, want an error wrapping ErrCorrupt", tt.sql, err)
			}
			// Verify never passes on a damaged store.
			if _, err := ledger.Verify(t.Context(), s, nil); err == nil {
				t.Errorf("after %q: Verify() = nil, want an error", tt.sql)
			}
		})
	}
}

func TestTamperedLeaf(t *testing.T) {
	s, path := openTemp(t)
	l := newLedger(t, s)
	appendAll(t, l, receiptLeaves(0, 10))
	mustVerify(t, s, 10)

	rawExec(t, path, `UPDATE leaves SET data = CAST('{"spec":"oars.receipt.v1","receipt_id":"r5","forged":true}' AS BLOB) WHERE idx = 5`)

	_, err := ledger.Verify(t.Context(), s, nil)
	var verr *ledger.VerifyError
	if !errors.As(err, &verr) {
		t.Fatalf("Verify() after tampering = %v, want a *ledger.VerifyError", err)
	}
	if verr.Index != 5 || !errors.Is(err, ledger.ErrTampered) {
		t.Errorf("Verify() = %v (index %d), want ErrTampered at index 5", err, verr.Index)
	}
	if !strings.Contains(err.Error(), "leaf 5") {
		t.Errorf("Verify() error %q does not name leaf 5", err)
	}
}

func TestClosed(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	leaves := receiptLeaves(0, 1)
	if err := s.Append(ctx, 0, leaves, []tlog.Hash{tlog.RecordHash(leaves[0])}); err != nil {
		t.Fatalf("Append() = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close() = %v, want nil", err)
	}
	calls := map[string]func() error{
		"Size":       func() error { _, err := s.Size(ctx); return err },
		"Append":     func() error { return s.Append(ctx, 1, nil, nil) },
		"ReadLeaves": func() error { _, err := s.ReadLeaves(ctx, 0, 1); return err },
		"ReadHashes": func() error { _, err := s.ReadHashes(ctx, []int64{0}); return err },
		"ReceiptByID": func() error {
			_, err := s.ReceiptByID(ctx, "r0")
			return err
		},
		"ActionReceipts": func() error { _, err := s.ActionReceipts(ctx, "a0"); return err },
		"ListReceipts":   func() error { _, _, err := s.ListReceipts(ctx, ledger.Query{}); return err },
	}
	for name, call := range calls {
		if err := call(); !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("%s() after Close = %v, want an error wrapping ErrClosed", name, err)
		}
	}
}

// hashesFor returns the stored hashes of leaves appended at start to the
// log whose earlier leaves are prev.
func hashesFor(t *testing.T, prev, leaves [][]byte) []tlog.Hash {
	t.Helper()
	all := append(append([][]byte{}, prev...), leaves...)
	var out []tlog.Hash
	var hs []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		r := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			r[i] = hs[x]
		}
		return r, nil
	})
	for i, leaf := range all {
		h, err := tlog.StoredHashes(int64(i), leaf, reader)
		if err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h...)
		if i >= len(prev) {
			out = append(out, h...)
		}
	}
	return out
}

func TestDuplicates(t *testing.T) {
	event := func(id string) []byte {
		return leafOf(map[string]string{"spec": ledger.SpecEvent, "event_id": id, "event": "policy.reloaded",
			"tenant_id": "t1", "issued_at": "2026-01-02T03:04:05Z"})
	}
	base := [][]byte{receiptLeaf(0, 0, 1), receiptLeaf(1, 0, 2), event("e1")}
	// large returns 100 fresh receipts with leaf i replaced, so that the
	// batch takes several insert statements.
	large := func(i int, leaf []byte) [][]byte {
		b := receiptLeaves(100, 100)
		b[i] = leaf
		return b
	}
	tests := []struct {
		name  string
		batch [][]byte
		want  error
		leaf  int // the position in batch of the refused leaf
	}{
		{"receipt_id stored", [][]byte{receiptLeaf(10, 10, 1), receiptLeaf(0, 11, 1)}, sqlite.ErrDuplicateReceipt, 1},
		{"action seq stored", [][]byte{receiptLeaf(10, 10, 1), receiptLeaf(11, 0, 2)}, sqlite.ErrDuplicateReceipt, 1},
		{"receipt_id in batch", [][]byte{receiptLeaf(10, 10, 1), receiptLeaf(10, 11, 1)}, sqlite.ErrDuplicateReceipt, 1},
		{"action seq in batch", [][]byte{receiptLeaf(10, 10, 1), receiptLeaf(11, 10, 1)}, sqlite.ErrDuplicateReceipt, 1},
		{"event_id stored", [][]byte{receiptLeaf(10, 10, 1), event("e1")}, sqlite.ErrDuplicateEvent, 1},
		{"event_id in batch", [][]byte{event("e2"), receiptLeaf(10, 10, 1), event("e2")}, sqlite.ErrDuplicateEvent, 2},
		{"receipt_id stored, large batch", large(90, receiptLeaf(0, 500, 1)), sqlite.ErrDuplicateReceipt, 90},
		{"receipt_id of an earlier statement", large(80, receiptLeaf(105, 600, 1)), sqlite.ErrDuplicateReceipt, 80},
		{"action seq in the same statement", large(70, receiptLeaf(700, 166, 1)), sqlite.ErrDuplicateReceipt, 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			ctx := t.Context()
			if err := s.Append(ctx, 0, base, hashesFor(t, nil, base)); err != nil {
				t.Fatalf("Append(base) = %v", err)
			}
			err := s.Append(ctx, int64(len(base)), tt.batch, hashesFor(t, base, tt.batch))
			if !errors.Is(err, tt.want) {
				t.Fatalf("Append(%s) = %v, want an error wrapping %v", tt.name, err, tt.want)
			}
			if want := fmt.Sprintf("leaf %d:", len(base)+tt.leaf); !strings.Contains(err.Error(), want) {
				t.Errorf("Append(%s) = %q, want it to name %q", tt.name, err, want)
			}
			// Nothing of the batch is stored or indexed.
			if size, err := s.Size(ctx); err != nil || size != int64(len(base)) {
				t.Errorf("Size() after refused batch = %d, %v, want %d, nil", size, err, len(base))
			}
			if _, err := s.ReceiptByID(ctx, "r10"); !errors.Is(err, ledger.ErrNotFound) {
				t.Errorf("ReceiptByID(r10) after refused batch = %v, want ErrNotFound", err)
			}
			mustVerify(t, s, int64(len(base)))
			// The store takes the next batch as if nothing happened.
			good := receiptLeaves(1000, 3)
			if err := s.Append(ctx, int64(len(base)), good, hashesFor(t, base, good)); err != nil {
				t.Fatalf("Append(good batch) after refused batch = %v, want nil", err)
			}
			mustVerify(t, s, int64(len(base)+len(good)))
		})
	}

	t.Run("through a Ledger", func(t *testing.T) {
		s, _ := openTemp(t)
		l := newLedger(t, s)
		appendAll(t, l, base)
		_, err := l.Append(t.Context(), receiptLeaf(0, 99, 1))
		if !errors.Is(err, sqlite.ErrDuplicateReceipt) {
			t.Fatalf("Ledger.Append(duplicate receipt_id) = %v, want ErrDuplicateReceipt", err)
		}
		// The Ledger recovers: the next append lands right after base.
		idx, err := l.Append(t.Context(), receiptLeaf(5, 5, 1))
		if err != nil || idx != int64(len(base)) {
			t.Fatalf("Ledger.Append after refusal = %d, %v, want %d, nil", idx, err, len(base))
		}
		mustVerify(t, s, int64(len(base))+1)
	})
}

func TestReadOnly(t *testing.T) {
	s, path := openTemp(t)
	l := newLedger(t, s)
	appendAll(t, l, receiptLeaves(0, 7))
	want := mustVerify(t, s, 7)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}

	ro := openAt(t, path, sqlite.WithReadOnly())
	got := mustVerify(t, ro, 7)
	if got.Root != want.Root {
		t.Errorf("read-only Verify().Root = %v, want %v", got.Root, want.Root)
	}
	if rec, err := ro.ReceiptByID(t.Context(), "r3"); err != nil || rec.Index != 3 {
		t.Errorf("read-only ReceiptByID(r3) = %d, %v, want 3, nil", rec.Index, err)
	}
	rl := newLedger(t, ro)
	if _, err := rl.Append(t.Context(), receiptLeaf(7, 7, 1)); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("Ledger.Append on read-only store = %v, want an error wrapping ErrReadOnly", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Error("database file changed while opened read-only")
	}
}

// TestReadOnlyFileSystem is a real write fault: the file and its directory
// lose write permission under a store that was opened read-write. Root
// ignores permission bits, so the test skips there; TestDiskFull covers
// a real fault for root.
func TestReadOnlyFileSystem(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: permission bits do not stop writes")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "oars.db")
	s := openAt(t, path)
	l := newLedger(t, s)
	appendAll(t, l, receiptLeaves(0, 3))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o400); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o500); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Chmod(dir, 0o700) })

	s2, err := sqlite.Open(t.Context(), path)
	if err == nil {
		defer s2.Close()
		l2, lerr := ledger.New(t.Context(), s2)
		if lerr == nil {
			_, err = l2.Append(t.Context(), receiptLeaf(3, 3, 1))
		} else {
			err = lerr
		}
	}
	if err == nil {
		t.Fatal("Open+Append on a read-only file = nil error, want an error")
	}
	ro := openAt(t, path, sqlite.WithReadOnly())
	mustVerify(t, ro, 3)
}

func TestTwoStoresOneFile(t *testing.T) {
	a, path := openTemp(t)
	b := openAt(t, path)
	la, lb := newLedger(t, a), newLedger(t, b)
	const writers, each = 4, 25
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[int64][]byte{}
	errs := make(chan error, 2*writers)
	for w := range 2 * writers {
		l := la
		if w%2 == 1 {
			l = lb
		}
		wg.Go(func() {
			for i := range each {
				leaf := receiptLeaf(w*each+i, w*each+i, 1)
				idx, err := l.Append(context.Background(), leaf)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				got[idx] = leaf
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Append from two stores = %v, want nil", err)
	}
	total := int64(2 * writers * each)
	if int64(len(got)) != total {
		t.Fatalf("distinct indexes = %d, want %d", len(got), total)
	}
	mustVerify(t, a, total)
	leaves, err := b.ReadLeaves(t.Context(), 0, int(total))
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range leaves {
		if !bytes.Equal(leaf, got[int64(i)]) {
			t.Fatalf("leaf %d = %q, want %q", i, leaf, got[int64(i)])
		}
	}
}

func TestReadHashesOrder(t *testing.T) {
	s, _ := openTemp(t)
	leaves := receiptLeaves(0, 20)
	hs := hashesFor(t, nil, leaves)
	if err := s.Append(t.Context(), 0, leaves, hs); err != nil {
		t.Fatal(err)
	}
	idx := []int64{7, 3, 3, 0, int64(len(hs) - 1), 8, 7}
	got, err := s.ReadHashes(t.Context(), idx)
	if err != nil {
		t.Fatalf("ReadHashes(%v) = %v", idx, err)
	}
	for i, x := range idx {
		if got[i] != hs[x] {
			t.Errorf("ReadHashes(%v)[%d] = %v, want hash %d %v", idx, i, got[i], x, hs[x])
		}
	}
	if _, err := s.ReadHashes(t.Context(), []int64{1, int64(len(hs))}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("ReadHashes(beyond) = %v, want ErrOutOfRange", err)
	}
}

func TestEmptyLeaf(t *testing.T) {
	s, _ := openTemp(t)
	l := newLedger(t, s)
	for _, leaf := range [][]byte{{}, nil, []byte("x")} {
		if _, err := l.Append(t.Context(), leaf); err != nil {
			t.Fatalf("Append(%q) = %v, want nil", leaf, err)
		}
	}
	got, err := s.ReadLeaves(t.Context(), 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0]) != 0 || len(got[1]) != 0 || string(got[2]) != "x" {
		t.Errorf("ReadLeaves(0, 3) = %q, want [\"\" \"\" \"x\"]", got)
	}
	mustVerify(t, s, 3)
}

func TestNulInIDs(t *testing.T) {
	s, _ := openTemp(t)
	l := newLedger(t, s)
	a := []byte(`{"spec":"oars.receipt.v1","receipt_id":"r\u0000x","action_id":"a\u0000b","seq":1,"status":"allowed","issued_at":"2026-01-02T03:04:05Z"}`)
	b := []byte(`{"spec":"oars.receipt.v1","receipt_id":"r","action_id":"a","seq":1,"status":"allowed","issued_at":"2026-01-02T03:04:05Z"}`)
	appendAll(t, l, [][]byte{a, b})
	for _, tt := range []struct {
		id   string
		want int64
	}{{"r\x00x", 0}, {"r", 1}} {
		rec, err := s.ReceiptByID(t.Context(), tt.id)
		if err != nil || rec.Index != tt.want {
			t.Errorf("ReceiptByID(%q) = %d, %v, want %d, nil", tt.id, rec.Index, err, tt.want)
		}
	}
	if _, err := s.ReceiptByID(t.Context(), "r\x00"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReceiptByID(%q) = %v, want ErrNotFound", "r\x00", err)
	}
	recs, err := s.ActionReceipts(t.Context(), "a\x00b")
	if err != nil || len(recs) != 1 || recs[0].Index != 0 {
		t.Errorf("ActionReceipts(%q) = %v, %v, want the receipt at 0", "a\x00b", recs, err)
	}
}
