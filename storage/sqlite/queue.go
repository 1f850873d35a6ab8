package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/oarsdev/oars/connector/queue"
)

// The jobs of the durable execution queue live in one table, added by
// schema version 7:
//
//	jobs(action_id TEXT PRIMARY KEY, tenant_id TEXT, state TEXT,
//	     attempts INTEGER, next_run_at INTEGER, lease_until INTEGER,
//	     lease_token TEXT, last_error TEXT, upstream_status INTEGER,
//	     created_at INTEGER)
//
// with the index jobs_due(state, next_run_at). Times are Unix
// milliseconds (UTC), so the queue has millisecond resolution; 0 in
// lease_until and an empty lease_token mean "not claimed". A job is only
// a reminder that an action still has to be executed: the receipts stay
// the system of record.
//
// Every write is one statement on the writer, a single connection, so the
// store's claims run one after the other; between processes sharing the
// file, SQLite's write lock orders them. A claim is one UPDATE whose
// subquery picks the due job, so no two claims can pick one job while its
// lease holds. Updates of a claimed job name its lease token in their
// WHERE clause: when another claim has replaced the token, no row matches
// and the update fails with [queue.ErrLeaseLost].

var _ queue.Store = (*Store)(nil)

// jobColumns are the columns scanJob reads, in its order.
const jobColumns = `action_id, tenant_id, state, attempts, next_run_at, lease_until,
	lease_token, last_error, upstream_status, created_at`

// EnqueueJob adds a job for the action, due at runAt; see [queue.Store].
// It is idempotent: an existing job of the action, queued or dead, is
// left as it is. It fails with [ErrReadOnly] on a read-only store and
// [ErrClosed] after Close.
func (s *Store) EnqueueJob(ctx context.Context, actionID, tenantID string, runAt time.Time) error {
	const op = "queue: enqueue"
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: %s: %w", op, ErrReadOnly)
	}
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO jobs (action_id, tenant_id, state, next_run_at, created_at)
		VALUES (?, ?, 'queued', ?, ?) ON CONFLICT (action_id) DO NOTHING`,
		actionID, tenantID, jobMillis(runAt), time.Now().UnixMilli()); err != nil {
		return fail(op, err)
	}
	return nil
}

// ClaimJob claims the due job with the earliest NextRunAt (then the
// smallest action id) for lease; see [queue.Store]. It returns nil, nil
// when no job is due. The claim is a single UPDATE … RETURNING on the
// writer, atomic against every other claim, in this process or another.
// It fails with [ErrReadOnly] on a read-only store and [ErrClosed] after
// Close.
func (s *Store) ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*queue.Job, error) {
	const op = "queue: claim"
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if s.readOnly {
		return nil, fmt.Errorf("sqlite: %s: %w", op, ErrReadOnly)
	}
	at := jobMillis(now)
	row := s.writer.QueryRowContext(ctx, `UPDATE jobs SET attempts = attempts + 1, lease_until = ?, lease_token = ?
		WHERE action_id = (SELECT action_id FROM jobs
			WHERE state = 'queued' AND next_run_at <= ? AND lease_until <= ?
			ORDER BY next_run_at, action_id LIMIT 1)
		RETURNING `+jobColumns,
		jobMillis(now.Add(lease)), queue.NewToken(), at, at)
	j, err := scanJob(row.Scan)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fail(op, err)
	}
	return j, nil
}

// RetryJob ends the claim of j and makes the job due again at runAt,
// recording errorClass and upstreamStatus; see [queue.Store]. It fails
// with an error wrapping [queue.ErrLeaseLost] if j.Token is no longer the
// job's token, [ErrReadOnly] on a read-only store and [ErrClosed] after
// Close.
func (s *Store) RetryJob(ctx context.Context, j *queue.Job, runAt time.Time, errorClass string, upstreamStatus int) error {
	return s.updateJob(ctx, "queue: retry", j, `UPDATE jobs
		SET next_run_at = ?, lease_until = 0, lease_token = '', last_error = ?, upstream_status = ?
		WHERE action_id = ? AND lease_token = ? AND state = 'queued'`,
		jobMillis(runAt), errorClass, upstreamStatus)
}

// CompleteJob deletes the job j; see [queue.Store]. It fails with an
// error wrapping [queue.ErrLeaseLost] if j.Token is no longer the job's
// token, [ErrReadOnly] on a read-only store and [ErrClosed] after Close.
func (s *Store) CompleteJob(ctx context.Context, j *queue.Job) error {
	return s.updateJob(ctx, "queue: complete", j, `DELETE FROM jobs
		WHERE action_id = ? AND lease_token = ? AND state = 'queued'`)
}

// KillJob moves the job j to [queue.StateDead] with errorClass; see
// [queue.Store]. It fails with an error wrapping [queue.ErrLeaseLost] if
// j.Token is no longer the job's token, [ErrReadOnly] on a read-only
// store and [ErrClosed] after Close.
func (s *Store) KillJob(ctx context.Context, j *queue.Job, errorClass string) error {
	return s.updateJob(ctx, "queue: kill", j, `UPDATE jobs
		SET state = 'dead', lease_until = 0, lease_token = '', last_error = ?
		WHERE action_id = ? AND lease_token = ? AND state = 'queued'`,
		errorClass)
}

// updateJob runs query, a statement changing the job j under its claim,
// with args followed by j's action id and token, and fails with
// ErrLeaseLost when no row matches.
func (s *Store) updateJob(ctx context.Context, op string, j *queue.Job, query string, args ...any) error {
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: %s: %w", op, ErrReadOnly)
	}
	if j.Token == "" { // never claimed: it cannot own the job
		return fmt.Errorf("sqlite: %s: job %s: %w", op, j.ActionID, queue.ErrLeaseLost)
	}
	res, err := s.writer.ExecContext(ctx, query, append(args, j.ActionID, j.Token)...)
	if err != nil {
		return fail(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fail(op, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: %s: job %s: %w", op, j.ActionID, queue.ErrLeaseLost)
	}
	return nil
}

// ListJobs returns up to limit jobs in state, in NextRunAt order, then
// action id; see [queue.Store]. A limit of 0 or less means no limit. It
// fails with [ErrClosed] after Close.
func (s *Store) ListJobs(ctx context.Context, state string, limit int) ([]queue.Job, error) {
	const op = "queue: list"
	if err := s.enter(op); err != nil {
		return nil, err
	}
	defer s.leave()
	if limit <= 0 {
		limit = -1 // no limit, to SQLite
	}
	rows, err := s.reader.QueryContext(ctx, `SELECT `+jobColumns+` FROM jobs
		WHERE state = ? ORDER BY next_run_at, action_id LIMIT ?`, state, limit)
	if err != nil {
		return nil, fail(op, err)
	}
	defer rows.Close()
	var jobs []queue.Job
	for rows.Next() {
		j, err := scanJob(rows.Scan)
		if err != nil {
			return nil, fail(op, err)
		}
		jobs = append(jobs, *j)
	}
	if err := rows.Err(); err != nil {
		return nil, fail(op, err)
	}
	return jobs, nil
}

// scanJob reads the jobColumns of a row with scan.
func scanJob(scan func(dest ...any) error) (*queue.Job, error) {
	var (
		j                                queue.Job
		attempts, upstream               int64
		nextRunAt, leaseUntil, createdAt int64
	)
	if err := scan(&j.ActionID, &j.TenantID, &j.State, &attempts, &nextRunAt, &leaseUntil,
		&j.Token, &j.LastError, &upstream, &createdAt); err != nil {
		return nil, err
	}
	j.Attempts, j.UpstreamStatus = int(attempts), int(upstream)
	j.NextRunAt, j.LeaseUntil, j.CreatedAt = jobTime(nextRunAt), jobTime(leaseUntil), jobTime(createdAt)
	return &j, nil
}

// jobMillis returns the stored form of a job time: Unix milliseconds, 0
// for the zero time.
func jobMillis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// jobTime is the inverse of jobMillis, in UTC.
func jobTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}
