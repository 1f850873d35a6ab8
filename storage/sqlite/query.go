package sqlite

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/oarsdev/oars/ledger"
)

// ReceiptByID returns the receipt whose receipt_id is id. It fails with an
// error wrapping [ledger.ErrNotFound] if there is none, [ErrCorrupt] if the
// index names a leaf that is missing, and [ErrClosed] after Close.
func (s *Store) ReceiptByID(ctx context.Context, id string) (ledger.Record, error) {
	if err := s.enter("receipt by id"); err != nil {
		return ledger.Record{}, err
	}
	defer s.leave()
	if id == "" {
		return ledger.Record{}, fmt.Errorf("sqlite: receipt by id: empty id: %w", ledger.ErrNotFound)
	}
	var rec ledger.Record
	var leaf []byte
	err := s.r.byID.QueryRowContext(ctx, id).Scan(&rec.Index, &leaf)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return ledger.Record{}, fmt.Errorf("sqlite: receipt by id: %w", ledger.ErrNotFound)
	case err != nil:
		return ledger.Record{}, fail("receipt by id", err)
	case leaf == nil:
		return ledger.Record{}, fmt.Errorf("sqlite: receipt by id: leaf %d missing: %w", rec.Index, ErrCorrupt)
	}
	rec.Leaf = leaf
	return rec, nil
}

// ActionReceipts returns the receipts of the action actionID in seq order,
// or an empty slice if there are none. It fails with an error wrapping
// [ErrCorrupt] if the index names a leaf that is missing, and [ErrClosed]
// after Close.
func (s *Store) ActionReceipts(ctx context.Context, actionID string) ([]ledger.Record, error) {
	if err := s.enter("action receipts"); err != nil {
		return nil, err
	}
	defer s.leave()
	out := []ledger.Record{}
	if actionID == "" {
		return out, nil
	}
	rows, err := s.r.byAction.QueryContext(ctx, actionID)
	if err != nil {
		return nil, fail("action receipts", err)
	}
	return scanRecords(rows, out, "action receipts")
}

// ListReceipts returns the receipts matching q in log order, at most the
// page size of q, and the cursor of the next page ("" when this page is the
// last). It fails if q.Cursor is not a cursor this store returned, with
// [ErrCorrupt] if the index names a leaf that is missing, and with
// [ErrClosed] after Close.
//
// A query naming an action is served by the (action_id, seq) index, one
// naming a tenant by the tenant index, whose entries also hold the other
// filter columns, and any other by the table in idx order (see the package
// doc). Paging continues after the last index returned, so a page never
// skips or repeats a receipt, whatever is appended between pages.
func (s *Store) ListReceipts(ctx context.Context, q ledger.Query) ([]ledger.Record, string, error) {
	if err := s.enter("list receipts"); err != nil {
		return nil, "", err
	}
	defer s.leave()
	after := int64(-1)
	if q.Cursor != "" {
		var err error
		if after, err = decodeCursor(q.Cursor); err != nil {
			return nil, "", fmt.Errorf("sqlite: list receipts: %w", err)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = ledger.DefaultPageSize
	}
	limit = min(limit, ledger.MaxPageSize)

	// Pick the access path rather than leave it to the planner, which has
	// no statistics: an action has few receipts, so its index and a sort
	// beat any scan; a tenant's receipts are listed from the tenant index
	// in idx order, whose entries also hold agent_id, status and issued_at
	// so that those filters are checked without reading the rows; anything
	// else walks the table in idx order.
	var b strings.Builder
	b.WriteString(`SELECT idx, data FROM leaves `)
	switch {
	case q.ActionID != "":
		b.WriteString(`INDEXED BY leaves_action_seq`)
	case q.TenantID != "":
		b.WriteString(`INDEXED BY leaves_tenant`)
	default:
		b.WriteString(`NOT INDEXED`)
	}
	b.WriteString(` WHERE receipt_id IS NOT NULL AND idx > ?`)
	args := []any{after}
	for _, f := range []struct{ col, val string }{
		{"tenant_id", q.TenantID}, {"agent_id", q.AgentID}, {"action_id", q.ActionID}, {"status", q.Status},
	} {
		if f.val != "" {
			b.WriteString(" AND " + f.col + " = ?")
			args = append(args, f.val)
		}
	}
	if !q.Since.IsZero() {
		b.WriteString(" AND issued_at >= ?")
		args = append(args, timeBound(q.Since))
	}
	if !q.Until.IsZero() {
		b.WriteString(" AND issued_at < ?")
		args = append(args, timeBound(q.Until))
	}
	b.WriteString(" ORDER BY idx LIMIT ?")
	args = append(args, limit+1) // one more tells whether a next page exists

	rows, err := s.reader.QueryContext(ctx, b.String(), args...)
	if err != nil {
		return nil, "", fail("list receipts", err)
	}
	recs, err := scanRecords(rows, make([]ledger.Record, 0, min(limit+1, 64)), "list receipts")
	if err != nil {
		return nil, "", err
	}
	if len(recs) <= limit {
		return recs, "", nil
	}
	recs = recs[:limit]
	return recs, encodeCursor(recs[limit-1].Index), nil
}

// scanRecords appends the (idx, data) rows to out and closes rows.
func scanRecords(rows *sql.Rows, out []ledger.Record, op string) ([]ledger.Record, error) {
	defer rows.Close()
	for rows.Next() {
		var rec ledger.Record
		var leaf []byte
		if err := rows.Scan(&rec.Index, &leaf); err != nil {
			return nil, fail(op, err)
		}
		if leaf == nil {
			return nil, fmt.Errorf("sqlite: %s: leaf %d missing: %w", op, rec.Index, ErrCorrupt)
		}
		rec.Leaf = leaf
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return out, nil
}

// timeBound returns the stored form of a query time bound. Times outside
// the years 0000–9999, which no stored issued_at can have, map to text
// below or above every stored value.
func timeBound(t time.Time) string {
	switch y := t.UTC().Year(); {
	case y < 0:
		return ""
	case y > 9999:
		return "~" // sorts after every digit
	}
	return t.UTC().Format(timeLayout)
}

// cursorEncoding encodes cursors: the last index returned, as 8 big-endian
// bytes in unpadded base64url. Strict decoding makes each cursor have one
// spelling.
var cursorEncoding = base64.RawURLEncoding.Strict()

func encodeCursor(idx int64) string {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(idx))
	return cursorEncoding.EncodeToString(b[:])
}

// errBadCursor is the cause for any cursor this store did not make; the
// cursor itself is never quoted.
var errBadCursor = errors.New("malformed cursor")

func decodeCursor(c string) (int64, error) {
	if len(c) != cursorEncoding.EncodedLen(8) {
		return 0, errBadCursor
	}
	var b [8]byte
	n, err := cursorEncoding.Decode(b[:], []byte(c))
	if err != nil || n != 8 {
		return 0, errBadCursor
	}
	v := binary.BigEndian.Uint64(b[:])
	if v > math.MaxInt64 {
		return 0, errBadCursor
	}
	return int64(v), nil
}
