package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/oarsdev/oars/identity"
)

// The counters of daily caps live in one table, added by schema
// version 5:
//
//	counters(tenant_id TEXT, key TEXT, window_start INTEGER, used INTEGER,
//	         PRIMARY KEY (tenant_id, key, window_start))
//
// window_start is the window's first instant in Unix seconds. Consume
// runs in one write transaction (BEGIN IMMEDIATE), which SQLite
// serialises with every other writer of the file, processes included.
// Rows of past windows are kept.

var _ identity.CounterStore = (*Store)(nil)

// Consume implements [identity.CounterStore]: it adds amount to the
// counter unless the result would exceed cap, in one write transaction.
// It fails with [identity.ErrInvalidCounter], [ErrReadOnly] on a
// read-only store and [ErrClosed] after Close.
func (s *Store) Consume(ctx context.Context, tenantID, key string, window time.Time, amount, cap int64) (int64, bool, error) {
	const op = "counters: consume"
	if err := identity.CheckCounterArgs(tenantID, key, amount, cap, true); err != nil {
		return 0, false, fmt.Errorf("sqlite: %s: %w", op, err)
	}
	var used int64
	var ok bool
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		w := window.Unix()
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO counters (tenant_id, key, window_start, used) VALUES (?, ?, ?, 0)`,
			tenantID, key, w); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE counters SET used = used + ? WHERE tenant_id = ? AND key = ? AND window_start = ? AND used + ? <= ?`,
			amount, tenantID, key, w, amount, cap)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		ok = n == 1
		return tx.QueryRowContext(ctx, `SELECT used FROM counters WHERE tenant_id = ? AND key = ? AND window_start = ?`, tenantID, key, w).Scan(&used)
	})
	if err != nil {
		return 0, false, err
	}
	return used, ok, nil
}

// Release implements [identity.CounterStore]. It fails with
// [identity.ErrInvalidCounter], [ErrReadOnly] on a read-only store and
// [ErrClosed] after Close.
func (s *Store) Release(ctx context.Context, tenantID, key string, window time.Time, amount int64) error {
	const op = "counters: release"
	if err := identity.CheckCounterArgs(tenantID, key, amount, 0, false); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE counters SET used = max(used - ?, 0) WHERE tenant_id = ? AND key = ? AND window_start = ?`,
			amount, tenantID, key, window.Unix())
		return err
	})
}

// Counter returns the value of a counter (0 when it does not exist). It
// fails with [ErrClosed] after Close.
func (s *Store) Counter(ctx context.Context, tenantID, key string, window time.Time) (int64, error) {
	const op = "counters: get"
	if err := s.enter(op); err != nil {
		return 0, err
	}
	defer s.leave()
	var used int64
	err := s.reader.QueryRowContext(ctx, `SELECT coalesce(max(used), 0) FROM counters WHERE tenant_id = ? AND key = ? AND window_start = ?`,
		tenantID, key, window.Unix()).Scan(&used)
	if err != nil {
		return 0, fail(op, err)
	}
	return used, nil
}
