package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/identity"
)

// The counters of daily caps live in one table, added by schema
// version 5:
//
//	oars_counters(tenant_id TEXT, key TEXT, window_start BIGINT,
//	              used BIGINT, PRIMARY KEY (tenant_id, key, window_start))
//
// window_start is the window's first instant in Unix seconds. Consume is
// one statement, INSERT … ON CONFLICT DO UPDATE … WHERE used + amount <=
// cap: PostgreSQL locks the row for the update and re-checks the
// condition on its latest version, so replicas sharing the schema never
// push a counter over its cap. Rows of past windows are kept.

var _ identity.CounterStore = (*Store)(nil)

func (s *Store) counterTable() string {
	return pgx.Identifier{s.schema, "oars_counters"}.Sanitize()
}

// Consume implements [identity.CounterStore]: it adds amount to the
// counter unless the result would exceed cap, atomically across every
// Store on the schema. It fails with [identity.ErrInvalidCounter] and
// [ErrClosed] after Close.
func (s *Store) Consume(ctx context.Context, tenantID, key string, window time.Time, amount, cap int64) (int64, bool, error) {
	const op = "counters: consume"
	if err := identity.CheckCounterArgs(tenantID, key, amount, cap, true); err != nil {
		return 0, false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	done, err := s.enter(op)
	if err != nil {
		return 0, false, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	w := window.Unix()
	// An amount over the cap is refused without a write: the INSERT
	// below would create the row with it.
	if amount <= cap {
		var used int64
		err := s.pool.QueryRow(ctx, `INSERT INTO `+s.counterTable()+` AS c (tenant_id, key, window_start, used)
			VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, key, window_start) DO UPDATE SET used = c.used + EXCLUDED.used
			WHERE c.used + EXCLUDED.used <= $5
			RETURNING used`, tenantID, key, w, amount, cap).Scan(&used)
		switch {
		case err == nil:
			return used, true, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return 0, false, fmt.Errorf("postgres: %s: %w", op, err)
		}
		// No row returned: the row exists and has no room.
	}
	// Refused. The counter's value is read for the caller's information
	// only.
	used, err := s.counter(ctx, tenantID, key, w)
	if err != nil {
		return 0, false, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return used, false, nil
}

// Release implements [identity.CounterStore]. It fails with
// [identity.ErrInvalidCounter] and [ErrClosed] after Close.
func (s *Store) Release(ctx context.Context, tenantID, key string, window time.Time, amount int64) error {
	const op = "counters: release"
	if err := identity.CheckCounterArgs(tenantID, key, amount, 0, false); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	done, err := s.enter(op)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `UPDATE `+s.counterTable()+` SET used = GREATEST(used - $1, 0)
		WHERE tenant_id = $2 AND key = $3 AND window_start = $4`, amount, tenantID, key, window.Unix()); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return nil
}

// Counter returns the value of a counter (0 when it does not exist). It
// fails with [ErrClosed] after Close.
func (s *Store) Counter(ctx context.Context, tenantID, key string, window time.Time) (int64, error) {
	const op = "counters: get"
	done, err := s.enter(op)
	if err != nil {
		return 0, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	used, err := s.counter(ctx, tenantID, key, window.Unix())
	if err != nil {
		return 0, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return used, nil
}

func (s *Store) counter(ctx context.Context, tenantID, key string, window int64) (int64, error) {
	var used int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce(max(used), 0) FROM `+s.counterTable()+`
		WHERE tenant_id = $1 AND key = $2 AND window_start = $3`, tenantID, key, window).Scan(&used)
	return used, err
}
