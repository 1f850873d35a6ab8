package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/connector/queue"
)

// The jobs of the durable execution queue live in one table, added by
// schema version 7:
//
//	oars_jobs(action_id TEXT PRIMARY KEY, tenant_id TEXT, state TEXT,
//	          attempts INTEGER, next_run_at BIGINT, lease_until BIGINT,
//	          lease_token TEXT, last_error TEXT, upstream_status INTEGER,
//	          created_at BIGINT)
//
// with the index oars_jobs_due(state, next_run_at). Times are Unix
// milliseconds (UTC), so the queue has millisecond resolution; 0 in
// lease_until and an empty lease_token mean "not claimed". A job is only
// a reminder that an action still has to be executed: the receipts stay
// the system of record.
//
// Every method is one statement in its own transaction. A claim is one
// UPDATE whose subquery picks the due job with FOR UPDATE SKIP LOCKED (see
// [Store.ClaimJob]), so replicas claiming at once never take one job
// twice while its lease holds. Updates of a claimed job name its lease
// token in their WHERE clause: when another claim has replaced the token,
// no row matches and the update fails with [queue.ErrLeaseLost].

var _ queue.Store = (*Store)(nil)

// jobColumns are the columns scanJob reads, in its order.
const jobColumns = `action_id, tenant_id, state, attempts, next_run_at, lease_until,
	lease_token, last_error, upstream_status, created_at`

// EnqueueJob adds a job for the action, due at runAt; see [queue.Store].
// It is idempotent: an existing job of the action, queued or dead,
// enqueued by this or another replica, is left as it is. It fails with
// [ErrClosed] after Close.
func (s *Store) EnqueueJob(ctx context.Context, actionID, tenantID string, runAt time.Time) error {
	const op = "queue: enqueue"
	done, err := s.enter(op)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+s.jobsTable()+` (action_id, tenant_id, state, next_run_at, created_at)
		VALUES ($1, $2, 'queued', $3, $4) ON CONFLICT (action_id) DO NOTHING`,
		actionID, tenantID, jobMillis(runAt), time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	return nil
}

// ClaimJob claims the due job with the earliest NextRunAt (then the
// smallest action id) for lease; see [queue.Store]. It returns nil, nil
// when no job is due.
//
// The claim is safe across replicas: it is a single UPDATE … RETURNING
// whose subquery selects the job with FOR UPDATE SKIP LOCKED. The row
// lock keeps a concurrent claim from choosing the same job (it skips to
// the next due one instead of waiting), and a job another transaction
// claimed and committed meanwhile is re-checked against the lease
// condition and passed over, so no two claimers, in any process, ever
// hold one job under a live lease. If ctx ends after the UPDATE committed
// but before the job was read, the claim is lost to the caller and the
// job becomes due again when the lease runs out. ClaimJob fails with
// [ErrClosed] after Close.
func (s *Store) ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*queue.Job, error) {
	const op = "queue: claim"
	done, err := s.enter(op)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := s.jobsTable()
	row := s.pool.QueryRow(ctx, `UPDATE `+t+` SET attempts = attempts + 1, lease_until = $1, lease_token = $2
		WHERE action_id = (SELECT action_id FROM `+t+`
			WHERE state = 'queued' AND next_run_at <= $3 AND lease_until <= $3
			ORDER BY next_run_at, action_id LIMIT 1
			FOR UPDATE SKIP LOCKED)
		RETURNING `+jobColumns,
		jobMillis(now.Add(lease)), queue.NewToken(), jobMillis(now))
	j, err := scanJob(row)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return j, nil
}

// RetryJob ends the claim of j and makes the job due again at runAt,
// recording errorClass and upstreamStatus; see [queue.Store]. It fails
// with an error wrapping [queue.ErrLeaseLost] if j.Token is no longer the
// job's token and with [ErrClosed] after Close.
func (s *Store) RetryJob(ctx context.Context, j *queue.Job, runAt time.Time, errorClass string, upstreamStatus int) error {
	return s.updateJob(ctx, "queue: retry", j, `UPDATE `+s.jobsTable()+`
		SET next_run_at = $3, lease_until = 0, lease_token = '', last_error = $4, upstream_status = $5
		WHERE action_id = $1 AND lease_token = $2 AND state = 'queued'`,
		jobMillis(runAt), errorClass, upstreamStatus)
}

// CompleteJob deletes the job j; see [queue.Store]. It fails with an
// error wrapping [queue.ErrLeaseLost] if j.Token is no longer the job's
// token and with [ErrClosed] after Close.
func (s *Store) CompleteJob(ctx context.Context, j *queue.Job) error {
	return s.updateJob(ctx, "queue: complete", j, `DELETE FROM `+s.jobsTable()+`
		WHERE action_id = $1 AND lease_token = $2 AND state = 'queued'`)
}

// KillJob moves the job j to [queue.StateDead] with errorClass; see
// [queue.Store]. It fails with an error wrapping [queue.ErrLeaseLost] if
// j.Token is no longer the job's token and with [ErrClosed] after Close.
func (s *Store) KillJob(ctx context.Context, j *queue.Job, errorClass string) error {
	return s.updateJob(ctx, "queue: kill", j, `UPDATE `+s.jobsTable()+`
		SET state = 'dead', lease_until = 0, lease_token = '', last_error = $3
		WHERE action_id = $1 AND lease_token = $2 AND state = 'queued'`,
		errorClass)
}

// updateJob runs query, a statement changing the job j under its claim,
// with j's action id and token as $1 and $2 and args from $3 on, and fails
// with ErrLeaseLost when no row matches.
func (s *Store) updateJob(ctx context.Context, op string, j *queue.Job, query string, args ...any) error {
	done, err := s.enter(op)
	if err != nil {
		return err
	}
	defer done()
	if j.Token == "" { // never claimed: it cannot own the job
		return fmt.Errorf("postgres: %s: job %s: %w", op, j.ActionID, queue.ErrLeaseLost)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, append([]any{j.ActionID, j.Token}, args...)...)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: %s: job %s: %w", op, j.ActionID, queue.ErrLeaseLost)
	}
	return nil
}

// ListJobs returns up to limit jobs in state, in NextRunAt order, then
// action id; see [queue.Store]. A limit of 0 or less means no limit. It
// fails with [ErrClosed] after Close.
func (s *Store) ListJobs(ctx context.Context, state string, limit int) ([]queue.Job, error) {
	const op = "queue: list"
	done, err := s.enter(op)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+jobColumns+` FROM `+s.jobsTable()+`
		WHERE state = $1 ORDER BY next_run_at, action_id LIMIT NULLIF($2::bigint, 0)`,
		state, int64(max(limit, 0)))
	if err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	defer rows.Close()
	var jobs []queue.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", op, err)
		}
		jobs = append(jobs, *j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", op, err)
	}
	return jobs, nil
}

// jobsTable returns the quoted name of the jobs table.
func (s *Store) jobsTable() string {
	return pgx.Identifier{s.schema, "oars_jobs"}.Sanitize()
}

// scanJob reads the jobColumns of row.
func scanJob(row pgx.Row) (*queue.Job, error) {
	var (
		j                                queue.Job
		attempts, upstream               int32
		nextRunAt, leaseUntil, createdAt int64
	)
	if err := row.Scan(&j.ActionID, &j.TenantID, &j.State, &attempts, &nextRunAt, &leaseUntil,
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
