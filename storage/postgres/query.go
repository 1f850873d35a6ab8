package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/ledger"
)

// errBadCursor is wrapped when ListReceipts is given a cursor it did not
// issue.
var errBadCursor = errors.New("malformed cursor")

// ReceiptByID returns the receipt whose receipt_id is id. It returns an
// error wrapping [ledger.ErrNotFound] if there is none, wrapping [ErrClosed]
// after Close, and another error if the database fails.
func (s *Store) ReceiptByID(ctx context.Context, id string) (ledger.Record, error) {
	done, err := s.enter("receipt by id")
	if err != nil {
		return ledger.Record{}, err
	}
	defer done()
	if id == "" || strings.IndexByte(id, 0) >= 0 {
		// Never indexed: receipt ids are non-empty and free of NUL bytes.
		return ledger.Record{}, fmt.Errorf("postgres: receipt by id: %w", ledger.ErrNotFound)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var rec ledger.Record
	err = s.pool.QueryRow(ctx, s.q.receiptByID, id).Scan(&rec.Index, &rec.Leaf)
	if errors.Is(err, pgx.ErrNoRows) {
		return ledger.Record{}, fmt.Errorf("postgres: receipt by id: %w", ledger.ErrNotFound)
	}
	if err != nil {
		return ledger.Record{}, fmt.Errorf("postgres: receipt by id: %w", err)
	}
	return rec, nil
}

// ActionReceipts returns the receipts of action actionID in seq order: an
// empty slice and a nil error when there are none. It returns an error
// wrapping [ErrClosed] after Close, and another error if the database fails.
func (s *Store) ActionReceipts(ctx context.Context, actionID string) ([]ledger.Record, error) {
	done, err := s.enter("action receipts")
	if err != nil {
		return nil, err
	}
	defer done()
	if actionID == "" || strings.IndexByte(actionID, 0) >= 0 {
		return []ledger.Record{}, nil
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.records(ctx, s.q.actionReceipts, actionID)
	if err != nil {
		return nil, fmt.Errorf("postgres: action receipts: %w", err)
	}
	return out, nil
}

// ListReceipts returns the receipts matching q in index order, at most one
// page (q.Limit, bounded as [ledger.Query] says), and the cursor of the next
// page, "" when there are no more. The cursor is opaque; one this store did
// not issue is an error. Times are compared at PostgreSQL's microsecond
// resolution. It returns an error wrapping [ErrClosed] after Close, and
// another error if the database fails.
func (s *Store) ListReceipts(ctx context.Context, q ledger.Query) ([]ledger.Record, string, error) {
	done, err := s.enter("list receipts")
	if err != nil {
		return nil, "", err
	}
	defer done()
	after := int64(-1)
	if q.Cursor != "" {
		after, err = parseCursor(q.Cursor)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: list receipts: %w", err)
		}
	}
	limit := q.Limit
	if limit <= 0 {
		limit = ledger.DefaultPageSize
	}
	limit = min(limit, ledger.MaxPageSize)

	var sb strings.Builder
	sb.WriteString(s.q.listReceipt)
	args := []any{after}
	filter := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&sb, " AND %s $%d", cond, len(args))
	}
	for _, f := range []struct {
		col, v string
	}{
		{"r.tenant_id", q.TenantID}, {"r.agent_id", q.AgentID},
		{"r.action_id", q.ActionID}, {"r.status", q.Status},
	} {
		if f.v == "" {
			continue
		}
		if strings.IndexByte(f.v, 0) >= 0 {
			return []ledger.Record{}, "", nil // text columns never hold NUL
		}
		filter(f.col+" =", f.v)
	}
	if !q.Since.IsZero() {
		filter("r.issued_at >=", q.Since)
	}
	if !q.Until.IsZero() {
		filter("r.issued_at <", q.Until)
	}
	args = append(args, limit+1)
	fmt.Fprintf(&sb, " ORDER BY r.idx LIMIT $%d", len(args))

	ctx, cancel := s.opContext(ctx)
	defer cancel()
	out, err := s.records(ctx, sb.String(), args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: list receipts: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = formatCursor(out[limit-1].Index)
	}
	return out, next, nil
}

// records runs a query yielding (idx, data) rows.
func (s *Store) records(ctx context.Context, sql string, args ...any) ([]ledger.Record, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []ledger.Record{}
	for rows.Next() {
		var rec ledger.Record
		if err := rows.Scan(&rec.Index, &rec.Leaf); err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// formatCursor encodes the index of the last receipt of a page.
func formatCursor(idx int64) string {
	return "i" + strconv.FormatInt(idx, 10)
}

// parseCursor decodes a cursor made by formatCursor. It accepts exactly the
// strings formatCursor makes: "i" and a canonical non-negative decimal.
func parseCursor(c string) (int64, error) {
	digits, ok := strings.CutPrefix(c, "i")
	if !ok || digits == "" || len(digits) > 19 {
		return 0, errBadCursor
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return 0, errBadCursor
		}
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, errBadCursor
	}
	idx, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return 0, errBadCursor
	}
	return idx, nil
}
