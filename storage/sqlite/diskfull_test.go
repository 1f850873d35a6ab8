package sqlite

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/oarsdev/oars/ledger"
)

// TestDiskFull makes SQLite itself run out of space (PRAGMA max_page_count
// on the writer connection, which fails writes with SQLITE_FULL as a full
// disk does) and checks that failed appends store nothing, the log stays
// whole, and appends resume at the right index once there is room again.
func TestDiskFull(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oars.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	defer s.Close()
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() = %v", err)
	}
	leaf := func(i int) []byte {
		return fmt.Appendf(bytes.Repeat([]byte{' '}, 4000), `{"leaf":%d}`, i)
	}
	var acked [][]byte
	for i := range 10 {
		if _, err := l.Append(ctx, leaf(i)); err != nil {
			t.Fatalf("Append(%d) = %v", i, err)
		}
		acked = append(acked, leaf(i))
	}

	setMaxPages := func(extra int64) {
		t.Helper()
		var pages int64
		if err := s.writer.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
			t.Fatalf("PRAGMA page_count: %v", err)
		}
		if _, err := s.writer.ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages+extra)); err != nil {
			t.Fatalf("PRAGMA max_page_count: %v", err)
		}
	}
	setMaxPages(3)

	var full error
	for i := len(acked); i < 100; i++ {
		if _, err := l.Append(ctx, leaf(i)); err != nil {
			full = err
			break
		}
		acked = append(acked, leaf(i))
	}
	if full == nil {
		t.Fatal("Append never failed with max_page_count set, want SQLITE_FULL")
	}
	if got := sqliteCode(full) & 0xff; got != sqlite3.SQLITE_FULL {
		t.Fatalf("Append on a full database = %v (code %d), want SQLITE_FULL (%d)", full, got, sqlite3.SQLITE_FULL)
	}
	// Still full: the next append fails too, with nothing stored.
	if _, err := l.Append(ctx, leaf(1000)); err == nil {
		t.Fatal("second Append on a full database = nil error, want an error")
	}
	checkLog := func(s *Store) {
		t.Helper()
		rep, err := ledger.Verify(ctx, s, nil)
		if err != nil {
			t.Fatalf("Verify() = %v, want nil", err)
		}
		if rep.Size != int64(len(acked)) {
			t.Fatalf("Verify().Size = %d, want %d (the acknowledged leaves)", rep.Size, len(acked))
		}
		got, err := s.ReadLeaves(ctx, 0, len(acked))
		if err != nil {
			t.Fatalf("ReadLeaves() = %v", err)
		}
		for i := range acked {
			if !bytes.Equal(got[i], acked[i]) {
				t.Fatalf("leaf %d differs from the acknowledged one", i)
			}
		}
	}
	checkLog(s)

	// Room again: the same Ledger appends at the next index.
	if _, err := s.writer.ExecContext(ctx, "PRAGMA max_page_count = 1073741823"); err != nil {
		t.Fatal(err)
	}
	idx, err := l.Append(ctx, leaf(2000))
	if err != nil || idx != int64(len(acked)) {
		t.Fatalf("Append after freeing space = %d, %v, want %d, nil", idx, err, len(acked))
	}
	acked = append(acked, leaf(2000))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s2.Close()
	checkLog(s2)
}

func TestCursorRoundTrip(t *testing.T) {
	for _, idx := range []int64{0, 1, 255, 1 << 40, 1<<63 - 1} {
		c := encodeCursor(idx)
		got, err := decodeCursor(c)
		if err != nil || got != idx {
			t.Errorf("decodeCursor(encodeCursor(%d)) = %d, %v, want %d, nil", idx, got, err, idx)
		}
	}
	for _, bad := range []string{"", "x", "AAAAAAAAAAA=", "AAAAAAAAAAB", "//////////8", "gAAAAAAAAAA", "AAAAAAAAAAAA", "12"} {
		if got, err := decodeCursor(bad); !errors.Is(err, errBadCursor) {
			t.Errorf("decodeCursor(%q) = %d, %v, want errBadCursor", bad, got, err)
		}
	}
}

func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "AAAAAAAAAAA", "AAAAAAAAAAE", "f_________8", "gAAAAAAAAAA", "AAAAAAAAAAB", "!!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		idx, err := decodeCursor(c)
		if err != nil {
			return
		}
		if idx < 0 {
			t.Fatalf("decodeCursor(%q) = %d, want a non-negative index", c, idx)
		}
		if back := encodeCursor(idx); back != c {
			t.Fatalf("encodeCursor(decodeCursor(%q)) = %q, want the input (one spelling per cursor)", c, back)
		}
	})
}

func TestTimeBound(t *testing.T) {
	tests := []struct {
		year int
		want string
	}{
		{-5, ""},
		{10000, "~"},
	}
	for _, tt := range tests {
		tm := testTime(tt.year)
		if got := timeBound(tm); got != tt.want {
			t.Errorf("timeBound(year %d) = %q, want %q", tt.year, got, tt.want)
		}
	}
	if got, want := timeBound(testTime(2026)), "2026-01-01T00:00:00.000000000Z"; got != want {
		t.Errorf("timeBound(2026) = %q, want %q", got, want)
	}
	if got := formatTime(testTime(2026)); got != timeBound(testTime(2026)) {
		t.Errorf("formatTime(2026) = %q, want the same text as timeBound", got)
	}
}

func testTime(year int) time.Time { return time.Date(year, 1, 1, 0, 0, 0, 0, time.UTC) }
