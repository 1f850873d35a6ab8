package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/connector/queue/queuetest"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestQueueStore(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		s, _ := openTemp(t)
		return s
	})
}

// TestQueueReopen checks that jobs, claims included, survive reopening
// the file.
func TestQueueReopen(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	s, path := openTemp(t)
	if err := s.EnqueueJob(ctx, "act-1", "acme", now); err != nil {
		t.Fatalf("EnqueueJob = %v, want nil", err)
	}
	j, err := s.ClaimJob(ctx, now, time.Minute)
	if err != nil || j == nil {
		t.Fatalf("ClaimJob = %v, %v, want a job", j, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}

	s = openAt(t, path)
	if got, err := s.ClaimJob(ctx, now.Add(time.Second), time.Minute); got != nil || err != nil {
		t.Errorf("ClaimJob under the lease after reopening = %v, %v, want nil, nil", got, err)
	}
	if err := s.CompleteJob(ctx, j); err != nil {
		t.Errorf("CompleteJob with the claim from before reopening = %v, want nil", err)
	}
}

func TestQueueClosedAndReadOnly(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	s, path := openTemp(t)
	if err := s.EnqueueJob(ctx, "act-1", "acme", now); err != nil {
		t.Fatalf("EnqueueJob = %v, want nil", err)
	}
	j, err := s.ClaimJob(ctx, now, time.Minute)
	if err != nil || j == nil {
		t.Fatalf("ClaimJob = %v, %v, want a job", j, err)
	}

	ro := openAt(t, path, sqlite.WithReadOnly())
	if jobs, err := ro.ListJobs(ctx, queue.StateQueued, 10); err != nil || len(jobs) != 1 {
		t.Errorf("ListJobs on a read-only store = %d jobs, %v, want 1, nil", len(jobs), err)
	}
	if err := ro.EnqueueJob(ctx, "act-2", "acme", now); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("EnqueueJob on a read-only store = %v, want ErrReadOnly", err)
	}
	if _, err := ro.ClaimJob(ctx, now.Add(time.Hour), time.Minute); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("ClaimJob on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := ro.CompleteJob(ctx, j); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("CompleteJob on a read-only store = %v, want ErrReadOnly", err)
	}

	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"EnqueueJob", s.EnqueueJob(ctx, "act-2", "acme", now)},
		{"ClaimJob", func() error { _, err := s.ClaimJob(ctx, now, time.Minute); return err }()},
		{"RetryJob", s.RetryJob(ctx, j, now, "timeout", 0)},
		{"CompleteJob", s.CompleteJob(ctx, j)},
		{"KillJob", s.KillJob(ctx, j, "permanent")},
		{"ListJobs", func() error { _, err := s.ListJobs(ctx, queue.StateQueued, 10); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, sqlite.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, c.err)
		}
	}
}
