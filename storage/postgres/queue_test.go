package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/connector/queue/queuetest"
)

func TestQueueStore(t *testing.T) {
	queuetest.Run(t, func(t *testing.T) queue.Store {
		return openStore(t, newSchema(t))
	})
}

// TestQueueTwoStores races claimers on two Stores on one schema, like two
// replicas, over 100 jobs. The jobs are claimed with a long lease and
// never completed, so a job claimed twice would show.
func TestQueueTwoStores(t *testing.T) {
	schema := newSchema(t)
	stores := []*Store{openStore(t, schema), openStore(t, schema)}
	ctx := context.Background()
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	const jobs, claimersPerStore = 100, 6
	for i := range jobs {
		if err := stores[i%2].EnqueueJob(ctx, fmt.Sprintf("act-%03d", i), "acme", now.Add(time.Duration(i%5)*time.Millisecond)); err != nil {
			t.Fatalf("EnqueueJob(%d) = %v, want nil", i, err)
		}
	}
	var (
		mu      sync.Mutex
		claimed = map[string]int{} // action id -> claims
		wg      sync.WaitGroup
	)
	for i := range 2 * claimersPerStore {
		s := stores[i%2]
		wg.Go(func() {
			for {
				j, err := s.ClaimJob(ctx, now.Add(time.Second), time.Hour)
				if err != nil {
					t.Errorf("claimer %d: ClaimJob = %v, want nil", i, err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.ActionID]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("claimers on two stores claimed %d distinct jobs of %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s was claimed %d times under one lease, want once", id, n)
		}
	}
	listed, err := stores[1].ListJobs(ctx, queue.StateQueued, 0)
	if err != nil {
		t.Fatalf("ListJobs = %v, want nil", err)
	}
	if len(listed) != jobs {
		t.Errorf("ListJobs(queued, no limit) = %d jobs, want %d", len(listed), jobs)
	}
	for _, j := range listed {
		if j.Attempts != 1 || j.Token == "" {
			t.Errorf("job %s: Attempts %d, token set %t, want 1, true", j.ActionID, j.Attempts, j.Token != "")
		}
	}
}

func TestQueueAfterClose(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newSchema(t))
	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	j := &queue.Job{ActionID: "act-1", Token: queue.NewToken()}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v, want nil", err)
	}
	checks := []struct {
		name string
		err  error
	}{
		{"EnqueueJob", s.EnqueueJob(ctx, "act-1", "acme", now)},
		{"ClaimJob", func() error { _, err := s.ClaimJob(ctx, now, time.Minute); return err }()},
		{"RetryJob", s.RetryJob(ctx, j, now, "timeout", 0)},
		{"CompleteJob", s.CompleteJob(ctx, j)},
		{"KillJob", s.KillJob(ctx, j, "permanent")},
		{"ListJobs", func() error { _, err := s.ListJobs(ctx, queue.StateQueued, 10); return err }()},
	}
	for _, c := range checks {
		if !errors.Is(c.err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", c.name, c.err)
		}
	}
}
