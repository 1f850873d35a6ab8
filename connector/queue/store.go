// Package queue executes allowed and approved actions asynchronously
// through a durable queue kept in the same store as the ledger, with
// at-least-once delivery: a job is claimed under a lease; if its worker
// dies, the lease runs out and another worker claims it again, and the
// connector gets the same idempotency key (the action id) on every
// attempt. Retryable failures of idempotent operations are retried with
// exponential backoff; when the attempts run out the action is
// dead-lettered with a dead_lettered receipt.
//
// The receipts stay the system of record: a job only says that an action
// still has to be executed, and [oars.Guard.ExecuteAttempt] refuses
// anything its receipts do not allow.
package queue

import (
	"context"
	"errors"
	"time"
)

// Job states.
const (
	// StateQueued: the job waits for its next attempt (or runs under a
	// lease).
	StateQueued = "queued"
	// StateDead: the job will not run again; it is kept for inspection.
	StateDead = "dead"
)

// ErrLeaseLost is returned when a job's lease token no longer matches:
// the lease ran out and another worker claimed the job.
var ErrLeaseLost = errors.New("queue: job lease lost")

// Job is one action to execute.
type Job struct {
	// ActionID is the action to execute; one job per action.
	ActionID string
	// TenantID is the action's tenant.
	TenantID string
	// State is StateQueued or StateDead.
	State string
	// Attempts counts the claims so far, including the current one.
	Attempts int
	// NextRunAt is when the job is due.
	NextRunAt time.Time
	// LeaseUntil is when the current claim runs out.
	LeaseUntil time.Time
	// Token identifies the current claim; updates must present it.
	Token string
	// LastError is the error class of the last failed attempt.
	LastError string
	// UpstreamStatus is the upstream status of the last failed attempt.
	UpstreamStatus int
	// CreatedAt is when the job was enqueued.
	CreatedAt time.Time
}

// Store keeps jobs durably. Implementations: MemStore here (tests and
// in-process use), and the SQLite and PostgreSQL stores, where claims use
// SELECT … FOR UPDATE SKIP LOCKED (PostgreSQL) or the single writer
// (SQLite) so that concurrent workers, also in other processes, never
// claim one job twice while its lease holds. Every method is safe for
// concurrent use; a write has happened durably when it returns nil.
type Store interface {
	// EnqueueJob adds a job for the action, due at runAt. It is
	// idempotent: an existing job of the action is left as it is.
	EnqueueJob(ctx context.Context, actionID, tenantID string, runAt time.Time) error
	// ClaimJob claims the due job (state queued, NextRunAt <= now, lease
	// run out) with the earliest NextRunAt: it increments Attempts, sets
	// LeaseUntil to now+lease and a fresh Token, and returns the job. It
	// returns nil, nil when no job is due.
	ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*Job, error)
	// RetryJob ends the claim of j and makes it due again at runAt,
	// recording the failed attempt's error class and upstream status. It
	// fails with ErrLeaseLost if j.Token is no longer the job's token.
	RetryJob(ctx context.Context, j *Job, runAt time.Time, errorClass string, upstreamStatus int) error
	// CompleteJob deletes j. It fails with ErrLeaseLost if j.Token is no
	// longer the job's token.
	CompleteJob(ctx context.Context, j *Job) error
	// KillJob moves j to StateDead with the error class. It fails with
	// ErrLeaseLost if j.Token is no longer the job's token.
	KillJob(ctx context.Context, j *Job, errorClass string) error
	// ListJobs returns up to limit jobs in state (queued or dead), in
	// NextRunAt order, then action id.
	ListJobs(ctx context.Context, state string, limit int) ([]Job, error)
}
