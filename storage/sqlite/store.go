package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"slices"
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

// Append durably and atomically stores leaves at [start, start+len(leaves))
// with their hashes (starting at storage index tlog.StoredHashIndex(0,
// start)) and the receipt and event index columns, in one transaction; see
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
	// Build the rows outside the transaction: the write lock is held only
	// for the database work.
	args := leafArgs(start, leaves, hashes)
	stmts := make([]*sql.Stmt, 0, 1+len(leaves)/maxInsertRows)
	for pos := 0; pos < len(leaves); pos += maxInsertRows {
		st, err := s.w.insertStmt(ctx, s.writer, min(len(leaves)-pos, maxInsertRows))
		if err != nil {
			return fail("append: prepare", err)
		}
		stmts = append(stmts, st)
	}

	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE (see Open)
	if err != nil {
		return fail("append: begin", err)
	}
	// This fails, harmlessly, after Commit and when SQLite has already
	// rolled the transaction back (see insertSQL).
	defer func() { _ = tx.Rollback() }()

	if err := s.claim(ctx, tx, start, end); err != nil {
		return err
	}
	for i, st := range stmts {
		pos := i * maxInsertRows
		end := min(len(leaves), pos+maxInsertRows)
		if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args[pos*numLeafColumns:end*numLeafColumns]...); err != nil {
			return insertFail(ctx, tx, args[:end*numLeafColumns], pos, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("append: commit", err)
	}
	return nil
}

// claim moves meta.size from start to end inside the write transaction,
// failing with ErrConflict if the size is not start.
func (s *Store) claim(ctx context.Context, tx *sql.Tx, start, end int64) error {
	res, err := tx.StmtContext(ctx, s.w.claim).ExecContext(ctx, end, start)
	if err != nil {
		return fail("append: update size", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("append: update size", err)
	} else if n == 1 {
		return nil
	}
	var size int64
	switch err := tx.StmtContext(ctx, s.w.size).QueryRowContext(ctx).Scan(&size); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("sqlite: append: meta row missing: %w", ErrCorrupt)
	case err != nil:
		return fail("append: read size", err)
	}
	return fmt.Errorf("sqlite: append at %d, size is %d: %w", start, size, ledger.ErrConflict)
}

// leafArgs returns the values of the leaves rows of a batch, numLeafColumns
// per leaf in the order of leafColumns. The stored hashes of leaf start+i
// are the run that tlog.StoredHashes yields for it, concatenated; the index
// columns are those [ledger.ParseHeader] finds, NULL for a leaf it does not
// recognise and for the columns of the other kind of entry.
func leafArgs(start int64, leaves [][]byte, hashes []tlog.Hash) []any {
	hbuf := make([]byte, 0, len(hashes)*tlog.HashSize)
	for i := range hashes {
		hbuf = append(hbuf, hashes[i][:]...)
	}
	args := make([]any, len(leaves)*numLeafColumns)
	for i, leaf := range leaves {
		idx := start + int64(i)
		n := hashesPerRecord(idx) * tlog.HashSize
		row := args[i*numLeafColumns : (i+1)*numLeafColumns]
		row[0], row[1], row[10] = idx, hbuf[:n:n], leaf
		hbuf = hbuf[n:]
		h, ok := ledger.ParseHeader(leaf)
		switch {
		case !ok:
			// Every index column stays NULL.
		case h.Spec == ledger.SpecEvent:
			row[6], row[7], row[8], row[9] = h.EventID, h.TenantID, h.AgentID, formatTime(h.IssuedAt)
		default:
			row[2], row[3], row[4], row[5] = h.ReceiptID, h.ActionID, h.Seq, h.Status
			row[7], row[8], row[9] = h.TenantID, h.AgentID, formatTime(h.IssuedAt)
		}
	}
	return args
}

// insertFail explains the failed insert of the rows args[from:] of a
// batch (earlier rows were inserted): a duplicate receipt or event names
// the leaf holding it, and a row already there means the table disagrees
// with meta.size. A constraint failure has rolled back the transaction
// (see insertSQL), so the queries on tx, which now run on their own, see
// only what was stored before the batch.
func insertFail(ctx context.Context, tx *sql.Tx, args []any, from int, err error) error {
	first := args[from*numLeafColumns].(int64)
	switch sqliteCode(err) {
	case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return fmt.Errorf("sqlite: append: a leaf row at %d or after exists beyond the stored size: %w", first, ErrCorrupt)
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE:
	default:
		return fail(fmt.Sprintf("append: insert leaves from %d", first), err)
	}
	// Find the first leaf whose id is taken: by a stored entry or by an
	// earlier leaf of the batch.
	seen := map[[3]any]bool{}
	for i := 0; i < len(args); i += numLeafColumns {
		row := args[i : i+numLeafColumns]
		idx := row[0].(int64)
		for _, k := range []struct {
			key   [3]any
			query string
			args  []any
			what  string
			err   error
		}{
			{[3]any{"r", row[2]}, `SELECT 1 FROM leaves WHERE receipt_id = ?`, row[2:3], "receipt_id", ErrDuplicateReceipt},
			{[3]any{"a", row[3], row[4]}, `SELECT 1 FROM leaves WHERE action_id = ? AND seq = ?`, row[3:5], "(action_id, seq)", ErrDuplicateReceipt},
			{[3]any{"e", row[6]}, `SELECT 1 FROM leaves WHERE event_id = ?`, row[6:7], "event_id", ErrDuplicateEvent},
		} {
			if k.args[0] == nil {
				continue
			}
			taken := seen[k.key]
			if !taken && i >= from*numLeafColumns {
				var one int
				qerr := tx.QueryRowContext(ctx, k.query, k.args...).Scan(&one)
				switch {
				case qerr == nil:
					taken = true
				case !errors.Is(qerr, sql.ErrNoRows):
					return fail(fmt.Sprintf("append: insert leaves from %d", first), errors.Join(err, qerr))
				}
			}
			if taken {
				return fmt.Errorf("sqlite: append: leaf %d: %s already stored: %w", idx, k.what, k.err)
			}
			seen[k.key] = true
		}
	}
	// Not found: a UNIQUE index this build does not know. Report it as is.
	return fail(fmt.Sprintf("append: insert leaves from %d", first), err)
}

// Size returns the number of leaves stored. It cross-checks the stored size
// with the last leaf row and its hashes and fails with an error wrapping
// [ErrCorrupt] if they disagree; with [ErrClosed] after Close.
func (s *Store) Size(ctx context.Context) (int64, error) {
	if err := s.enter("size"); err != nil {
		return 0, err
	}
	defer s.leave()
	var size int64
	var last, hashLen sql.NullInt64
	err := s.r.check.QueryRowContext(ctx).Scan(&size, &last, &hashLen)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("sqlite: size: meta row missing: %w", ErrCorrupt)
		}
		return 0, fail("size", err)
	}
	leaves := int64(0)
	if last.Valid {
		leaves = last.Int64 + 1
	}
	switch {
	case size < 0:
		return 0, fmt.Errorf("sqlite: size: negative size: %w", ErrCorrupt)
	case leaves != size:
		return 0, fmt.Errorf("sqlite: size: size is %d but leaves end at %d: %w", size, leaves, ErrCorrupt)
	case size > 0 && hashLen.Int64 != int64(hashesPerRecord(size-1)*tlog.HashSize):
		return 0, fmt.Errorf("sqlite: size: hashes of leaf %d are %d bytes, want %d: %w",
			size-1, hashLen.Int64, hashesPerRecord(size-1)*tlog.HashSize, ErrCorrupt)
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

	// Each hash lives in the row of the record that completed it: read
	// every run of consecutive records with one range query.
	recs := make([]int64, len(indexes))
	for i, x := range indexes {
		recs[i] = recordOf(x)
	}
	uniq := slices.Compact(slices.Sorted(slices.Values(recs)))
	rows := make([][]byte, len(uniq))
	for i := 0; i < len(uniq); {
		j := i + 1
		for j < len(uniq) && uniq[j] == uniq[j-1]+1 {
			j++
		}
		if err := s.readHashRun(ctx, uniq[i], rows[i:j]); err != nil {
			return nil, err
		}
		i = j
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		k, _ := slices.BinarySearch(uniq, recs[i])
		off := (x - tlog.StoredHashIndex(0, recs[i])) * tlog.HashSize
		copy(out[i][:], rows[k][off:])
	}
	return out, nil
}

// hashesPerRecord returns how many stored hashes record i adds to the
// tree: its own and one for each subtree it completes.
func hashesPerRecord(i int64) int {
	return 1 + bits.TrailingZeros64(^uint64(i))
}

// recordOf returns the record whose row holds the stored hash at storage
// index x: the last leaf of the subtree that hash covers.
func recordOf(x int64) int64 {
	level, n := tlog.SplitStoredHashIndex(x)
	return (n+1)<<level - 1
}

// readHashRun reads the hash blobs of records [from, from+len(dst)) into
// dst, checking that every row is there and holds exactly the hashes its
// record adds.
func (s *Store) readHashRun(ctx context.Context, from int64, dst [][]byte) error {
	rows, err := s.r.hashes.QueryContext(ctx, from, from+int64(len(dst)))
	if err != nil {
		return fail("read hashes", err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var idx int64
		var h []byte
		if err := rows.Scan(&idx, &h); err != nil {
			return fail("read hashes", err)
		}
		if want := from + int64(n); idx != want {
			return fmt.Errorf("sqlite: read hashes: leaf %d missing: %w", want, ErrCorrupt)
		}
		if want := hashesPerRecord(idx) * tlog.HashSize; len(h) != want {
			return fmt.Errorf("sqlite: read hashes: hashes of leaf %d are %d bytes, want %d: %w", idx, len(h), want, ErrCorrupt)
		}
		dst[n] = h
		n++
	}
	if err := rows.Err(); err != nil {
		return fail("read hashes", err)
	}
	if n != len(dst) {
		return fmt.Errorf("sqlite: read hashes: leaf %d missing: %w", from+int64(n), ErrCorrupt)
	}
	return nil
}
