package queue

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"sync"
	"time"
)

// MemStore is an in-memory [Store]: jobs do not survive the process.
type MemStore struct {
	mu   sync.Mutex
	jobs map[string]*Job
}

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{jobs: map[string]*Job{}} }

// NewToken returns a fresh random lease token.
func NewToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// EnqueueJob implements [Store].
func (m *MemStore) EnqueueJob(ctx context.Context, actionID, tenantID string, runAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("queue: enqueue: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.jobs[actionID]; !ok {
		m.jobs[actionID] = &Job{ActionID: actionID, TenantID: tenantID, State: StateQueued, NextRunAt: runAt, CreatedAt: runAt}
	}
	return nil
}

// ClaimJob implements [Store].
func (m *MemStore) ClaimJob(ctx context.Context, now time.Time, lease time.Duration) (*Job, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("queue: claim: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *Job
	for _, j := range m.jobs {
		if j.State != StateQueued || j.NextRunAt.After(now) || j.LeaseUntil.After(now) {
			continue
		}
		if best == nil || j.NextRunAt.Before(best.NextRunAt) || j.NextRunAt.Equal(best.NextRunAt) && j.ActionID < best.ActionID {
			best = j
		}
	}
	if best == nil {
		return nil, nil
	}
	best.Attempts++
	best.LeaseUntil = now.Add(lease)
	best.Token = NewToken()
	c := *best
	return &c, nil
}

func (m *MemStore) owned(j *Job) (*Job, error) {
	cur, ok := m.jobs[j.ActionID]
	if !ok || cur.Token != j.Token || j.Token == "" {
		return nil, fmt.Errorf("queue: job %s: %w", j.ActionID, ErrLeaseLost)
	}
	return cur, nil
}

// RetryJob implements [Store].
func (m *MemStore) RetryJob(ctx context.Context, j *Job, runAt time.Time, errorClass string, upstreamStatus int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.owned(j)
	if err != nil {
		return err
	}
	cur.NextRunAt, cur.LeaseUntil, cur.Token = runAt, time.Time{}, ""
	cur.LastError, cur.UpstreamStatus = errorClass, upstreamStatus
	return nil
}

// CompleteJob implements [Store].
func (m *MemStore) CompleteJob(ctx context.Context, j *Job) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.owned(j); err != nil {
		return err
	}
	delete(m.jobs, j.ActionID)
	return nil
}

// KillJob implements [Store].
func (m *MemStore) KillJob(ctx context.Context, j *Job, errorClass string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur, err := m.owned(j)
	if err != nil {
		return err
	}
	cur.State, cur.LeaseUntil, cur.Token, cur.LastError = StateDead, time.Time{}, "", errorClass
	return nil
}

// ListJobs implements [Store].
func (m *MemStore) ListJobs(ctx context.Context, state string, limit int) ([]Job, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Job
	for _, j := range m.jobs {
		if j.State == state {
			out = append(out, *j)
		}
	}
	sort.Slice(out, func(i, k int) bool {
		if !out[i].NextRunAt.Equal(out[k].NextRunAt) {
			return out[i].NextRunAt.Before(out[k].NextRunAt)
		}
		return out[i].ActionID < out[k].ActionID
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
