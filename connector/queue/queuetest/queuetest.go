// Package queuetest is the conformance suite for implementations of
// [queue.Store], as testing/fstest is for file systems. A store's tests
// call [Run] with a function returning a fresh, empty store:
//
//	func TestQueueStore(t *testing.T) {
//		queuetest.Run(t, func(t *testing.T) queue.Store { return openEmptyStore(t) })
//	}
//
// The cases drive time through ClaimJob's now argument, never by
// sleeping, and use times on whole milliseconds, the resolution of the
// SQL stores. It uses only the standard library and package queue.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/connector/queue"
)

// t0 is the suite's reference time.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535_000_000, time.UTC)

// Run runs every conformance case as a subtest, each on a fresh
// store made by newStore, which should register the store's cleanup with
// t.Cleanup. Every failure is reported; Run does not stop at the
// first.
func Run(t *testing.T, newStore func(t *testing.T) queue.Store) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s queue.Store)
	}{
		{"ClaimEmpty", testClaimEmpty},
		{"ClaimNotDue", testClaimNotDue},
		{"EnqueueIdempotent", testEnqueueIdempotent},
		{"ClaimOrder", testClaimOrder},
		{"Lease", testLease},
		{"LeaseExpiry", testLeaseExpiry},
		{"StaleToken", testStaleToken},
		{"Retry", testRetry},
		{"Complete", testComplete},
		{"Kill", testKill},
		{"ListJobs", testListJobs},
		{"ConcurrentClaims", testConcurrentClaims},
		{"ContextCancelled", testContextCancelled},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

func enqueue(t *testing.T, s queue.Store, actionID, tenantID string, runAt time.Time) {
	t.Helper()
	if err := s.EnqueueJob(context.Background(), actionID, tenantID, runAt); err != nil {
		t.Fatalf("EnqueueJob(%s, %s, %s) = %v, want nil", actionID, tenantID, runAt, err)
	}
}

// claim claims a job at now with lease and fails the test on an error.
func claim(t *testing.T, s queue.Store, now time.Time, lease time.Duration) *queue.Job {
	t.Helper()
	j, err := s.ClaimJob(context.Background(), now, lease)
	if err != nil {
		t.Fatalf("ClaimJob(%s, %s) error = %v, want nil", now, lease, err)
	}
	return j
}

// claimID claims a job at now with lease and checks that it is actionID's.
func claimID(t *testing.T, s queue.Store, now time.Time, lease time.Duration, actionID string) *queue.Job {
	t.Helper()
	j := claim(t, s, now, lease)
	if j == nil {
		t.Fatalf("ClaimJob(%s, %s) = nil, want job %s", now, lease, actionID)
	}
	if j.ActionID != actionID {
		t.Fatalf("ClaimJob(%s, %s) = job %s, want job %s", now, lease, j.ActionID, actionID)
	}
	return j
}

// claimNone checks that no job is due at now.
func claimNone(t *testing.T, s queue.Store, now time.Time) {
	t.Helper()
	if j := claim(t, s, now, time.Minute); j != nil {
		t.Errorf("ClaimJob(%s) = job %s (attempts %d), want nil", now, j.ActionID, j.Attempts)
	}
}

func list(t *testing.T, s queue.Store, state string, limit int) []queue.Job {
	t.Helper()
	jobs, err := s.ListJobs(context.Background(), state, limit)
	if err != nil {
		t.Fatalf("ListJobs(%s, %d) = %v, want nil", state, limit, err)
	}
	return jobs
}

// ids returns the action ids of jobs.
func ids(jobs []queue.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ActionID
	}
	return out
}

// checkJob compares the fields of got that a case controls with want's.
// Token is compared only for being set or not, and CreatedAt only for
// being set.
func checkJob(t *testing.T, what string, got *queue.Job, want queue.Job) {
	t.Helper()
	if got == nil {
		t.Errorf("%s = nil, want job %s", what, want.ActionID)
		return
	}
	type cmp struct {
		field     string
		got, want any
		ok        bool
	}
	for _, c := range []cmp{
		{"ActionID", got.ActionID, want.ActionID, got.ActionID == want.ActionID},
		{"TenantID", got.TenantID, want.TenantID, got.TenantID == want.TenantID},
		{"State", got.State, want.State, got.State == want.State},
		{"Attempts", got.Attempts, want.Attempts, got.Attempts == want.Attempts},
		{"NextRunAt", got.NextRunAt, want.NextRunAt, got.NextRunAt.Equal(want.NextRunAt)},
		{"LeaseUntil", got.LeaseUntil, want.LeaseUntil, got.LeaseUntil.Equal(want.LeaseUntil)},
		{"Token set", got.Token != "", want.Token != "", (got.Token != "") == (want.Token != "")},
		{"LastError", got.LastError, want.LastError, got.LastError == want.LastError},
		{"UpstreamStatus", got.UpstreamStatus, want.UpstreamStatus, got.UpstreamStatus == want.UpstreamStatus},
		{"CreatedAt set", !got.CreatedAt.IsZero(), true, !got.CreatedAt.IsZero()},
	} {
		if !c.ok {
			t.Errorf("%s: %s = %v, want %v", what, c.field, c.got, c.want)
		}
	}
}

func testClaimEmpty(t *testing.T, s queue.Store) {
	j, err := s.ClaimJob(context.Background(), t0, time.Minute)
	if j != nil || err != nil {
		t.Errorf("ClaimJob on an empty store = %v, %v, want nil, nil", j, err)
	}
	if jobs := list(t, s, queue.StateQueued, 10); len(jobs) != 0 {
		t.Errorf("ListJobs(queued) on an empty store = %v, want none", ids(jobs))
	}
}

func testClaimNotDue(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0.Add(time.Second))
	claimNone(t, s, t0)
	claimNone(t, s, t0.Add(999*time.Millisecond))
	j := claimID(t, s, t0.Add(time.Second), time.Minute, "act-1") // due at NextRunAt
	checkJob(t, "ClaimJob at the due time", j, queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, Attempts: 1,
		NextRunAt: t0.Add(time.Second), LeaseUntil: t0.Add(time.Second + time.Minute), Token: "set",
	})
}

func testEnqueueIdempotent(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0)
	enqueue(t, s, "act-1", "other", t0.Add(-time.Hour))
	enqueue(t, s, "act-1", "other", t0.Add(time.Hour))
	jobs := list(t, s, queue.StateQueued, 10)
	if len(jobs) != 1 {
		t.Fatalf("ListJobs(queued) after enqueueing one action thrice = %v, want one job", ids(jobs))
	}
	checkJob(t, "the job enqueued thrice", &jobs[0], queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, NextRunAt: t0,
	})

	// Enqueueing again leaves a claimed job's lease and attempts alone.
	claimID(t, s, t0, time.Minute, "act-1")
	enqueue(t, s, "act-1", "acme", t0)
	claimNone(t, s, t0.Add(time.Second))
	j2 := claimID(t, s, t0.Add(time.Minute), time.Minute, "act-1")
	if j2.Attempts != 2 {
		t.Errorf("Attempts of the second claim = %d, want 2", j2.Attempts)
	}

	// And a dead job stays dead.
	if err := s.KillJob(context.Background(), j2, "permanent"); err != nil {
		t.Fatalf("KillJob = %v, want nil", err)
	}
	enqueue(t, s, "act-1", "acme", t0)
	claimNone(t, s, t0.Add(time.Hour))
	if dead := list(t, s, queue.StateDead, 10); !slices.Equal(ids(dead), []string{"act-1"}) {
		t.Errorf("ListJobs(dead) after enqueueing a dead job = %v, want [act-1]", ids(dead))
	}
}

func testClaimOrder(t *testing.T, s queue.Store) {
	enqueue(t, s, "c", "acme", t0.Add(2*time.Second))
	enqueue(t, s, "b", "acme", t0.Add(time.Second))
	enqueue(t, s, "d", "acme", t0.Add(time.Hour))
	enqueue(t, s, "a", "other", t0.Add(time.Second))
	enqueue(t, s, "e", "acme", t0.Add(-time.Hour)) // long overdue
	now := t0.Add(5 * time.Second)
	for _, want := range []string{"e", "a", "b", "c"} {
		claimID(t, s, now, 24*time.Hour, want)
	}
	claimNone(t, s, now)
	claimID(t, s, t0.Add(time.Hour), time.Minute, "d")
}

func testLease(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0)
	j := claimID(t, s, t0, 10*time.Second, "act-1")
	checkJob(t, "ClaimJob", j, queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, Attempts: 1,
		NextRunAt: t0, LeaseUntil: t0.Add(10 * time.Second), Token: "set",
	})
	claimNone(t, s, t0)
	claimNone(t, s, t0.Add(5*time.Second))
	claimNone(t, s, t0.Add(10*time.Second-time.Millisecond))

	// ListJobs shows the claim.
	jobs := list(t, s, queue.StateQueued, 10)
	if len(jobs) != 1 {
		t.Fatalf("ListJobs(queued) = %v, want [act-1]", ids(jobs))
	}
	checkJob(t, "ListJobs(queued) of a claimed job", &jobs[0], *j)
	if jobs[0].Token != j.Token {
		t.Errorf("ListJobs(queued): Token differs from the claim's")
	}
}

func testLeaseExpiry(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0)
	first := claimID(t, s, t0, 10*time.Second, "act-1")
	now := t0.Add(10 * time.Second) // the lease has run out
	second := claimID(t, s, now, 30*time.Second, "act-1")
	checkJob(t, "ClaimJob after the lease ran out", second, queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, Attempts: 2,
		NextRunAt: t0, LeaseUntil: now.Add(30 * time.Second), Token: "set",
	})
	if second.Token == first.Token {
		t.Errorf("ClaimJob after the lease ran out kept the token, want a new one")
	}
	claimNone(t, s, now.Add(29*time.Second))
	third := claimID(t, s, now.Add(time.Hour), time.Minute, "act-1")
	if third.Attempts != 3 {
		t.Errorf("third ClaimJob: Attempts = %d, want 3", third.Attempts)
	}
}

// checkLeaseLost runs the three token-checked updates with j and checks
// that each fails with ErrLeaseLost.
func checkLeaseLost(t *testing.T, s queue.Store, what string, j *queue.Job) {
	t.Helper()
	ctx := context.Background()
	if err := s.RetryJob(ctx, j, t0, "timeout", 503); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("RetryJob(%s) = %v, want an error wrapping ErrLeaseLost", what, err)
	}
	if err := s.CompleteJob(ctx, j); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("CompleteJob(%s) = %v, want an error wrapping ErrLeaseLost", what, err)
	}
	if err := s.KillJob(ctx, j, "permanent"); !errors.Is(err, queue.ErrLeaseLost) {
		t.Errorf("KillJob(%s) = %v, want an error wrapping ErrLeaseLost", what, err)
	}
}

func testStaleToken(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0)
	jobs := list(t, s, queue.StateQueued, 10)
	if len(jobs) != 1 {
		t.Fatalf("ListJobs(queued) = %v, want [act-1]", ids(jobs))
	}
	checkLeaseLost(t, s, "unclaimed job", &jobs[0])
	checkLeaseLost(t, s, "unknown job", &queue.Job{ActionID: "act-none", TenantID: "acme", State: queue.StateQueued, Token: queue.NewToken()})

	stale := claimID(t, s, t0, 10*time.Second, "act-1")
	cur := claimID(t, s, t0.Add(10*time.Second), time.Minute, "act-1")
	checkLeaseLost(t, s, "stale token", stale)
	forged := *cur
	forged.Token = queue.NewToken()
	checkLeaseLost(t, s, "wrong token", &forged)
	forged.Token = ""
	checkLeaseLost(t, s, "empty token", &forged)

	// The failed updates changed nothing: the current claim holds and
	// still owns the job.
	claimNone(t, s, t0.Add(30*time.Second))
	jobs = list(t, s, queue.StateQueued, 10)
	if len(jobs) != 1 {
		t.Fatalf("ListJobs(queued) = %v, want [act-1]", ids(jobs))
	}
	checkJob(t, "the job after failed updates", &jobs[0], *cur)
	if err := s.CompleteJob(context.Background(), cur); err != nil {
		t.Errorf("CompleteJob(current claim) = %v, want nil", err)
	}
}

func testRetry(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, "act-1", "acme", t0)
	enqueue(t, s, "act-2", "acme", t0.Add(30*time.Second))
	j := claimID(t, s, t0, time.Hour, "act-1")
	retryAt := t0.Add(time.Minute)
	if err := s.RetryJob(ctx, j, retryAt, "upstream_5xx", 503); err != nil {
		t.Fatalf("RetryJob = %v, want nil", err)
	}
	// The retry ended the claim: its token is spent.
	checkLeaseLost(t, s, "token of a retried claim", j)

	jobs := list(t, s, queue.StateQueued, 10)
	if !slices.Equal(ids(jobs), []string{"act-2", "act-1"}) {
		t.Fatalf("ListJobs(queued) after RetryJob = %v, want [act-2 act-1]", ids(jobs))
	}
	checkJob(t, "ListJobs(queued) of the retried job", &jobs[1], queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, Attempts: 1,
		NextRunAt: retryAt, LastError: "upstream_5xx", UpstreamStatus: 503,
	})

	claimID(t, s, t0.Add(59*time.Second), time.Hour, "act-2")
	claimNone(t, s, retryAt.Add(-time.Millisecond))
	// Due at retryAt although the first lease (an hour) has not run out.
	j = claimID(t, s, retryAt, time.Minute, "act-1")
	checkJob(t, "ClaimJob of the retried job", j, queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateQueued, Attempts: 2,
		NextRunAt: retryAt, LeaseUntil: retryAt.Add(time.Minute), Token: "set",
		LastError: "upstream_5xx", UpstreamStatus: 503,
	})

	// A later retry overwrites the last error.
	if err := s.RetryJob(ctx, j, retryAt.Add(time.Minute), "timeout", 0); err != nil {
		t.Fatalf("second RetryJob = %v, want nil", err)
	}
	j = claimID(t, s, retryAt.Add(time.Minute), time.Minute, "act-1")
	if j.Attempts != 3 || j.LastError != "timeout" || j.UpstreamStatus != 0 {
		t.Errorf("ClaimJob after the second retry = attempts %d, %q, %d, want 3, %q, 0", j.Attempts, j.LastError, j.UpstreamStatus, "timeout")
	}
}

func testComplete(t *testing.T, s queue.Store) {
	enqueue(t, s, "act-1", "acme", t0)
	enqueue(t, s, "act-2", "acme", t0)
	j := claimID(t, s, t0, time.Minute, "act-1")
	if err := s.CompleteJob(context.Background(), j); err != nil {
		t.Fatalf("CompleteJob = %v, want nil", err)
	}
	if jobs := list(t, s, queue.StateQueued, 10); !slices.Equal(ids(jobs), []string{"act-2"}) {
		t.Errorf("ListJobs(queued) after CompleteJob = %v, want [act-2]", ids(jobs))
	}
	if jobs := list(t, s, queue.StateDead, 10); len(jobs) != 0 {
		t.Errorf("ListJobs(dead) after CompleteJob = %v, want none", ids(jobs))
	}
	checkLeaseLost(t, s, "completed job", j)
	j2 := claimID(t, s, t0.Add(time.Hour), time.Minute, "act-2")
	if err := s.CompleteJob(context.Background(), j2); err != nil {
		t.Fatalf("CompleteJob(act-2) = %v, want nil", err)
	}
	claimNone(t, s, t0.Add(2*time.Hour))

	// A completed action can be enqueued afresh.
	enqueue(t, s, "act-1", "acme", t0.Add(3*time.Hour))
	j = claimID(t, s, t0.Add(3*time.Hour), time.Minute, "act-1")
	if j.Attempts != 1 {
		t.Errorf("ClaimJob of a re-enqueued completed action: Attempts = %d, want 1", j.Attempts)
	}
}

func testKill(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, "act-1", "acme", t0)
	enqueue(t, s, "act-2", "acme", t0.Add(time.Second))
	j := claimID(t, s, t0, time.Minute, "act-1")
	if err := s.RetryJob(ctx, j, t0.Add(time.Second), "upstream_5xx", 502); err != nil {
		t.Fatalf("RetryJob = %v, want nil", err)
	}
	j = claimID(t, s, t0.Add(time.Second), time.Minute, "act-1")
	if err := s.KillJob(ctx, j, "attempts_exhausted"); err != nil {
		t.Fatalf("KillJob = %v, want nil", err)
	}
	checkLeaseLost(t, s, "killed job", j)
	j2 := claimID(t, s, t0.Add(time.Second), time.Minute, "act-2")
	if err := s.CompleteJob(ctx, j2); err != nil {
		t.Fatalf("CompleteJob(act-2) = %v, want nil", err)
	}
	claimNone(t, s, t0.Add(24*time.Hour*365))

	dead := list(t, s, queue.StateDead, 10)
	if len(dead) != 1 {
		t.Fatalf("ListJobs(dead) = %v, want [act-1]", ids(dead))
	}
	checkJob(t, "ListJobs(dead)", &dead[0], queue.Job{
		ActionID: "act-1", TenantID: "acme", State: queue.StateDead, Attempts: 2,
		NextRunAt: t0.Add(time.Second), LastError: "attempts_exhausted", UpstreamStatus: 502,
	})
	if queued := list(t, s, queue.StateQueued, 10); len(queued) != 0 {
		t.Errorf("ListJobs(queued) = %v, want none", ids(queued))
	}
}

func testListJobs(t *testing.T, s queue.Store) {
	ctx := context.Background()
	// Two dead jobs, x and y.
	enqueue(t, s, "y", "acme", t0.Add(-time.Second))
	enqueue(t, s, "x", "acme", t0.Add(-2*time.Second))
	for _, id := range []string{"x", "y"} {
		j := claimID(t, s, t0.Add(-time.Second), time.Minute, id)
		if err := s.KillJob(ctx, j, "permanent"); err != nil {
			t.Fatalf("KillJob(%s) = %v, want nil", id, err)
		}
	}
	// Queued jobs enqueued out of order; b and c are due at the same time.
	for _, e := range []struct {
		id  string
		due time.Duration
	}{
		{"e", 4 * time.Second}, {"c", 2 * time.Second}, {"a", 0}, {"d", 3 * time.Second}, {"b", 2 * time.Second},
	} {
		enqueue(t, s, e.id, "acme", t0.Add(e.due))
	}
	tests := []struct {
		state string
		limit int
		want  []string
	}{
		{queue.StateQueued, 100, []string{"a", "b", "c", "d", "e"}},
		{queue.StateQueued, 5, []string{"a", "b", "c", "d", "e"}},
		{queue.StateQueued, 3, []string{"a", "b", "c"}},
		{queue.StateQueued, 1, []string{"a"}},
		{queue.StateDead, 10, []string{"x", "y"}},
		{queue.StateDead, 1, []string{"x"}},
		{"unknown", 10, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%d", tt.state, tt.limit), func(t *testing.T) {
			got := list(t, s, tt.state, tt.limit)
			if !slices.Equal(ids(got), tt.want) {
				t.Errorf("ListJobs(%s, %d) = %v, want %v", tt.state, tt.limit, ids(got), tt.want)
			}
			for _, j := range got {
				if j.State != tt.state {
					t.Errorf("ListJobs(%s, %d): job %s has state %q", tt.state, tt.limit, j.ActionID, j.State)
				}
			}
		})
	}
	// The list is a copy: changing it changes nothing stored.
	got := list(t, s, queue.StateQueued, 1)
	if len(got) == 1 {
		got[0].NextRunAt = t0.Add(time.Hour)
		got[0].Attempts = 99
	}
	j := claimID(t, s, t0, time.Minute, "a")
	if j.Attempts != 1 {
		t.Errorf("ClaimJob after changing a listed job: Attempts = %d, want 1", j.Attempts)
	}
}

func testConcurrentClaims(t *testing.T, s queue.Store) {
	ctx := context.Background()
	const jobs, workers = 50, 8
	for i := range jobs {
		enqueue(t, s, fmt.Sprintf("act-%02d", i), "acme", t0.Add(time.Duration(i%7)*time.Millisecond))
	}
	now := t0.Add(time.Second)
	var (
		mu      sync.Mutex
		claimed = map[string]int{} // action id -> claims
		wg      sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for {
				j, err := s.ClaimJob(ctx, now, time.Hour)
				if err != nil {
					t.Errorf("worker %d: ClaimJob = %v, want nil", w, err)
					return
				}
				if j == nil {
					return
				}
				mu.Lock()
				claimed[j.ActionID]++
				mu.Unlock()
				if err := s.CompleteJob(ctx, j); err != nil {
					t.Errorf("worker %d: CompleteJob(%s) = %v, want nil", w, j.ActionID, err)
				}
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d workers claimed %d distinct jobs of %d", workers, len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s was claimed %d times under one lease, want once", id, n)
		}
	}
	if left := list(t, s, queue.StateQueued, 100); len(left) != 0 {
		t.Errorf("ListJobs(queued) after every job was completed = %v, want none", ids(left))
	}
}

func testContextCancelled(t *testing.T, s queue.Store) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.EnqueueJob(ctx, "act-1", "acme", t0); err == nil {
		t.Errorf("EnqueueJob with a cancelled context = nil, want an error")
	}
	claimNone(t, s, t0.Add(time.Hour)) // nothing was enqueued

	enqueue(t, s, "act-1", "acme", t0)
	if j, err := s.ClaimJob(ctx, t0, time.Minute); err == nil {
		t.Errorf("ClaimJob with a cancelled context = %v, nil, want an error", j)
	}
	// Nothing was claimed.
	j := claimID(t, s, t0, time.Minute, "act-1")
	if j.Attempts != 1 {
		t.Errorf("ClaimJob after a cancelled claim: Attempts = %d, want 1", j.Attempts)
	}
}
