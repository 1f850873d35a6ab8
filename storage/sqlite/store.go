package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/oarsdev/oars/ledger"
)

// timeLayout is how issued_at is stored: UTC with a fixed number of
// fraction digits, so that comparing the text compares the times.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

// formatTime returns the stored form of an issued_at: "" for the zero
// time, which sorts before every other.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

// indexRow is one leaf of a batch that ParseHeader recognised.
type indexRow struct {
	idx int64
	h   ledger.Header
}

// Append durably and atomically stores leaves at [start, start+len(leaves))
// with their hashes (starting at storage index tlog.StoredHashIndex(0,
// start)) and the receipt and event index rows, in one transaction; see
// [ledger.Store]. It returns once the transaction is committed and synced.
//
// In every error case nothing is stored. Append fails with an error
// wrapping [ledger.ErrConflict] if start is not the current size,
// [ErrDuplicateReceipt] or [ErrDuplicateEvent] if an entry's id is already
// taken, [ErrReadOnly] on a read-only store, [ErrClosed] after Close, and
// another error if the number of hashes is not the number
// [tlog.StoredHashes] yields for these leaves or the database fails (a full
// disk, say).
func (s *Store) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if err := s.enter("append"); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: append: %w", ErrReadOnly)
	}
	if start < 0 {
		return errors.New("sqlite: append: negative start")
	}
	end := start + int64(len(leaves))
	lo := tlog.StoredHashIndex(0, start)
	if want := tlog.StoredHashCount(end) - lo; int64(len(hashes)) != want {
		return fmt.Errorf("sqlite: append: got %d hashes for %d leaves, want %d", len(hashes), len(leaves), want)
	}
	// Parse outside the transaction: the write lock is held only for I/O.
	var rows []indexRow
	for i, leaf := range leaves {
		if h, ok := ledger.ParseHeader(leaf); ok {
			rows = append(rows, indexRow{idx: start + int64(i), h: h})
		}
	}

	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open)
	if err != nil {
		return fail("append: begin", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit

	var size int64
	if err := tx.StmtContext(ctx, s.w.size).QueryRowContext(ctx).Scan(&size); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: append: meta row missing: %w", ErrCorrupt)
		}
		return fail("append: read size", err)
	}
	if size != start {
		return fmt.Errorf("sqlite: append at %d, size is %d: %w", start, size, ledger.ErrConflict)
	}

	st := tx.StmtContext(ctx, s.w.leaf)
	for i, leaf := range leaves {
		if _, err := st.ExecContext(ctx, start+int64(i), leaf); err != nil {
			return insertFail("leaf", start+int64(i), err)
		}
	}
	st = tx.StmtContext(ctx, s.w.hash)
	for i := range hashes {
		if _, err := st.ExecContext(ctx, lo+int64(i), hashes[i][:]); err != nil {
			return insertFail("hash", lo+int64(i), err)
		}
	}
	var rst, est *sql.Stmt
	for _, r := range rows {
		h := r.h
		if h.Spec == ledger.SpecEvent {
			if est == nil {
				est = tx.StmtContext(ctx, s.w.event)
			}
			if _, err := est.ExecContext(ctx, r.idx, h.EventID, h.TenantID, formatTime(h.IssuedAt)); err != nil {
				if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
					return fmt.Errorf("sqlite: append: leaf %d: event_id already stored: %w", r.idx, ErrDuplicateEvent)
				}
				return insertFail("event index", r.idx, err)
			}
			continue
		}
		if rst == nil {
			rst = tx.StmtContext(ctx, s.w.receipt)
		}
		if _, err := rst.ExecContext(ctx, r.idx, h.ReceiptID, h.ActionID, h.Seq, h.Status,
			h.TenantID, h.AgentID, formatTime(h.IssuedAt)); err != nil {
			if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE {
				key := "(action_id, seq)"
				if strings.Contains(err.Error(), "receipt_id") {
					key = "receipt_id"
				}
				return fmt.Errorf("sqlite: append: leaf %d: %s already stored: %w", r.idx, key, ErrDuplicateReceipt)
			}
			return insertFail("receipt index", r.idx, err)
		}
	}
	if _, err := tx.StmtContext(ctx, s.w.setSize).ExecContext(ctx, end); err != nil {
		return fail("append: update size", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("append: commit", err)
	}
	return nil
}

// insertFail wraps a failed insert of the row at idx: a row already there
// means the tables disagree with meta.size.
func insertFail(what string, idx int64, err error) error {
	if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY {
		return fmt.Errorf("sqlite: append: %s row %d exists beyond the stored size: %w", what, idx, ErrCorrupt)
	}
	return fail(fmt.Sprintf("append: insert %s %d", what, idx), err)
}

// Size returns the number of leaves stored. It cross-checks the stored size
// with the leaf and hash rows and fails with an error wrapping [ErrCorrupt]
// if they disagree; with [ErrClosed] after Close.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.enter("size"); err != nil {
		return 0, err
	}
	defer s.leave()
	var size int64
	var maxLeaf, maxHash sql.NullInt64
	err := s.r.check.QueryRowContext(ctx).Scan(&size, &maxLeaf, &maxHash)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("sqlite: size: meta row missing: %w", ErrCorrupt)
		}
		return 0, fail("size", err)
	}
	leaves, hashes := int64(0), int64(0)
	if maxLeaf.Valid {
		leaves = maxLeaf.Int64 + 1
	}
	if maxHash.Valid {
		hashes = maxHash.Int64 + 1
	}
	switch {
	case size < 0:
		return 0, fmt.Errorf("sqlite: size: negative size: %w", ErrCorrupt)
	case leaves != size:
		return 0, fmt.Errorf("sqlite: size: size is %d but leaves end at %d: %w", size, leaves, ErrCorrupt)
	case hashes != tlog.StoredHashCount(size):
		return 0, fmt.Errorf("sqlite: size: size %d needs %d hashes but hashes end at %d: %w",
			size, tlog.StoredHashCount(size), hashes, ErrCorrupt)
	}
	return size, nil
}

// storedSize returns meta.size. Rows below it are committed and never
// change, so a read that fetches the size first and the rows after sees
// them all.
func (s *Store) storedSize(ctx context.Context, op string) (int64, error) {
	var size int64
	if err := s.r.size.QueryRowContext(ctx).Scan(&size); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("sqlite: %s: meta row missing: %w", op, ErrCorrupt)
		}
		return 0, fail(op+": read size", err)
	}
	if size < 0 {
		return 0, fmt.Errorf("sqlite: %s: negative size: %w", op, ErrCorrupt)
	}
	return size, nil
}

// ReadLeaves returns copies of n leaves starting at index start. It fails
// with an error wrapping [ledger.ErrOutOfRange] if start or n is negative or
// any of the leaves is beyond the stored size, [ErrCorrupt] if a leaf below
// the size is missing, and [ErrClosed] after Close; it never returns fewer
// than n leaves.
func (s *Store) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	if err := s.enter("read leaves"); err != nil {
		return nil, err
	}
	defer s.leave()
	if start < 0 || n < 0 {
		return nil, fmt.Errorf("sqlite: read leaves: negative start or count: %w", ledger.ErrOutOfRange)
	}
	size, err := s.storedSize(ctx, "read leaves")
	if err != nil {
		return nil, err
	}
	if start > size || int64(n) > size-start {
		return nil, fmt.Errorf("sqlite: read leaves [%d, +%d) of %d: %w", start, n, size, ledger.ErrOutOfRange)
	}
	out := make([][]byte, 0, n)
	if n == 0 {
		return out, nil
	}
	rows, err := s.r.leaves.QueryContext(ctx, start, start+int64(n))
	if err != nil {
		return nil, fail("read leaves", err)
	}
	defer rows.Close()
	for rows.Next() {
		var idx int64
		var data []byte
		if err := rows.Scan(&idx, &data); err != nil {
			return nil, fail("read leaves", err)
		}
		if want := start + int64(len(out)); idx != want {
			return nil, fmt.Errorf("sqlite: read leaves: leaf %d missing: %w", want, ErrCorrupt)
		}
		if data == nil {
			data = []byte{}
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("read leaves", err)
	}
	if len(out) != n {
		return nil, fmt.Errorf("sqlite: read leaves: leaf %d missing: %w", start+int64(len(out)), ErrCorrupt)
	}
	return out, nil
}

// ReadHashes returns the stored hashes at the given storage indexes, in the
// same order. It fails with an error wrapping [ledger.ErrOutOfRange] if an
// index is negative or beyond the hashes of the stored size, [ErrCorrupt] if
// a hash below that is missing or not 32 bytes, and [ErrClosed] after Close.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.enter("read hashes"); err != nil {
		return nil, err
	}
	defer s.leave()
	if len(indexes) == 0 {
		return []tlog.Hash{}, nil
	}
	size, err := s.storedSize(ctx, "read hashes")
	if err != nil {
		return nil, err
	}
	count := tlog.StoredHashCount(size)
	for _, x := range indexes {
		if x < 0 || x >= count {
			return nil, fmt.Errorf("sqlite: read hash %d of %d: %w", x, count, ledger.ErrOutOfRange)
		}
	}

	// Read each run of consecutive indexes with one range query.
	uniq, inOrder := indexes, strictlyIncreasing(indexes)
	if !inOrder {
		uniq = slices.Compact(slices.Sorted(slices.Values(indexes)))
	}
	vals := make([]tlog.Hash, len(uniq))
	for i := 0; i < len(uniq); {
		j := i + 1
		for j < len(uniq) && uniq[j] == uniq[j-1]+1 {
			j++
		}
		if err := s.readHashRun(ctx, uniq[i], vals[i:j]); err != nil {
			return nil, err
		}
		i = j
	}
	if inOrder {
		return vals, nil
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		k, _ := slices.BinarySearch(uniq, x)
		out[i] = vals[k]
	}
	return out, nil
}

// readHashRun reads the hashes at storage indexes [from, from+len(dst)).
func (s *Store) readHashRun(ctx context.Context, from int64, dst []tlog.Hash) error {
	rows, err := s.r.hashes.QueryContext(ctx, from, from+int64(len(dst)))
	if err != nil {
		return fail("read hashes", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var idx int64
		var h sql.RawBytes
		if err := rows.Scan(&idx, &h); err != nil {
			return fail("read hashes", err)
		}
		if want := from + int64(n); idx != want {
			return fmt.Errorf("sqlite: read hashes: hash %d missing: %w", want, ErrCorrupt)
		}
		if len(h) != len(tlog.Hash{}) {
			return fmt.Errorf("sqlite: read hashes: hash %d is %d bytes, want %d: %w", idx, len(h), len(tlog.Hash{}), ErrCorrupt)
		}
		copy(dst[n][:], h)
		n++
	}
	if err := rows.Err(); err != nil {
		return fail("read hashes", err)
	}
	if n != len(dst) {
		return fmt.Errorf("sqlite: read hashes: hash %d missing: %w", from+int64(n), ErrCorrupt)
	}
	return nil
}

func strictlyIncreasing(xs []int64) bool {
	for i := 1; i < len(xs); i++ {
		if xs[i] <= xs[i-1] {
			return false
		}
	}
	return true
}
