package queue_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const allowAll = `
id: all
version: "1"
default: deny
rules:
  - id: tickets
    when: action.tool_id == "tickets"
    effect: allow
    reason: tickets are fine
`

// clock is a clock the tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// memInputs is an in-memory queue.Inputs.
type memInputs struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *memInputs) PutInput(_ context.Context, id, _ string, in []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; !ok {
		s.m[id] = in
	}
	return nil
}

func (s *memInputs) GetInput(_ context.Context, id string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.m[id]
	if !ok {
		return nil, fmt.Errorf("input %s: %w", id, ledger.ErrNotFound)
	}
	return in, nil
}

// upstream is the connector's behaviour: run is called for each attempt.
type upstream struct {
	mu   sync.Mutex
	keys []string
	run  func(n int, req *connector.Request) (json.RawMessage, error)
}

func (u *upstream) call(_ context.Context, req *connector.Request) (json.RawMessage, error) {
	u.mu.Lock()
	u.keys = append(u.keys, req.IdempotencyKey)
	n := len(u.keys)
	u.mu.Unlock()
	return u.run(n, req)
}

type fixture struct {
	guard  *oars.Guard
	store  *ledger.MemStore
	keys   *receipt.KeySet
	jobs   *queue.MemStore
	inputs *memInputs
	clock  *clock
	worker *queue.Worker
}

func newFixture(t *testing.T, up *upstream, idempotent bool) *fixture {
	t.Helper()
	ctx := context.Background()
	p, err := policy.Parse("all.yaml", []byte(allowAll))
	require.NoError(t, err)
	set, err := policy.NewSet(p)
	require.NoError(t, err)
	signer, err := receipt.NewEd25519Signer("k1", ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	store := ledger.NewMemStore()
	l, err := ledger.New(ctx, store)
	require.NoError(t, err)
	fn, err := connector.NewFunc(connector.FuncOp{
		Operation: connector.Operation{Name: "create", Idempotent: idempotent},
		Run:       up.call,
	})
	require.NoError(t, err)
	reg := connector.NewRegistry()
	require.NoError(t, reg.Register("tickets", fn))
	c := &clock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	g, err := oars.New(set, keys, l, oars.WithConnectors(reg), oars.WithClock(c.Now))
	require.NoError(t, err)
	f := &fixture{guard: g, store: store, keys: keys, jobs: queue.NewMemStore(), inputs: &memInputs{m: map[string][]byte{}}, clock: c}
	f.worker, err = queue.NewWorker(g, f.jobs, f.inputs, queue.Config{
		Lease: time.Minute, MaxAttempts: 3, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second, Clock: c.Now,
	})
	require.NoError(t, err)
	return f
}

// decide records an allowed decision and enqueues the action.
func (f *fixture) decide(t *testing.T) string {
	t.Helper()
	a := &oars.Action{
		TenantID: "acme", AgentID: "bot", Principal: oars.Principal{UserID: "alice"},
		Resource: oars.Resource{ToolID: "tickets", Operation: "create"},
		Input:    json.RawMessage(`{"title":"printer on fire"}`),
	}
	out, err := f.guard.Decide(context.Background(), a)
	require.NoError(t, err)
	require.Equal(t, receipt.StatusAllowed, out.Status)
	canon, err := receipt.Canonicalize(a.Input)
	require.NoError(t, err)
	require.NoError(t, f.worker.Enqueue(context.Background(), out.ActionID, "acme", canon))
	return out.ActionID
}

func (f *fixture) statuses(t *testing.T, id string) []receipt.Status {
	t.Helper()
	entries, err := f.guard.Receipts(context.Background(), id)
	require.NoError(t, err)
	var out []receipt.Status
	for _, e := range entries {
		out = append(out, e.Receipt.Status)
	}
	return out
}

func (f *fixture) verify(t *testing.T) {
	t.Helper()
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), f.store, receipt.NewLogChecker(v))
	require.NoError(t, err)
}

func TestWorkerExecutesQueuedAction(t *testing.T) {
	up := &upstream{run: func(int, *connector.Request) (json.RawMessage, error) {
		return json.RawMessage(`{"id":7}`), nil
	}}
	f := newFixture(t, up, false)
	id := f.decide(t)
	res, err := f.worker.Process(context.Background())
	require.NoError(t, err)
	require.NotNil(t, res.Job)
	require.NoError(t, res.Err)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, f.statuses(t, id))
	assert.Equal(t, []string{id}, up.keys, "the idempotency key is the action id")
	res, err = f.worker.Process(context.Background())
	require.NoError(t, err)
	assert.Nil(t, res.Job, "the job is done")
	f.verify(t)
}

func TestWorkerRetriesIdempotentOperations(t *testing.T) {
	up := &upstream{run: func(n int, _ *connector.Request) (json.RawMessage, error) {
		if n < 3 {
			return nil, &connector.Error{Class: "upstream_5xx", UpstreamStatus: 503, Retryable: true}
		}
		return json.RawMessage(`{"id":7}`), nil
	}}
	f := newFixture(t, up, true)
	id := f.decide(t)
	for attempt := 1; attempt <= 2; attempt++ {
		res, err := f.worker.Process(context.Background())
		require.NoError(t, err)
		require.True(t, res.Retry, "attempt %d", attempt)
		require.ErrorIs(t, res.Err, oars.ErrRetry)
		// Not due before the backoff.
		res, err = f.worker.Process(context.Background())
		require.NoError(t, err)
		require.Nil(t, res.Job, "job claimed again before its backoff")
		f.clock.Add(20 * time.Second)
	}
	res, err := f.worker.Process(context.Background())
	require.NoError(t, err)
	require.NoError(t, res.Err)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuting,
		receipt.StatusExecuting, receipt.StatusExecuted}, f.statuses(t, id))
	entries, err := f.guard.Receipts(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, []string{"attempt 3; the previous attempt failed: upstream_5xx (upstream status 503)"}, entries[3].Receipt.Reasons)
	assert.Equal(t, []string{id, id, id}, up.keys)
	f.verify(t)
}

func TestWorkerDeadLetters(t *testing.T) {
	up := &upstream{run: func(int, *connector.Request) (json.RawMessage, error) {
		return nil, &connector.Error{Class: "timeout", Retryable: true, Err: errors.New("slow")}
	}}
	f := newFixture(t, up, true)
	id := f.decide(t)
	for range 3 {
		_, err := f.worker.Process(context.Background())
		require.NoError(t, err)
		f.clock.Add(time.Minute)
	}
	st := f.statuses(t, id)
	assert.Equal(t, receipt.StatusDeadLettered, st[len(st)-1])
	entries, err := f.guard.Receipts(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "timeout", entries[len(entries)-1].Receipt.ErrorClass)
	dead, err := f.jobs.ListJobs(context.Background(), queue.StateDead, 10)
	require.NoError(t, err)
	require.Len(t, dead, 1)
	assert.Equal(t, id, dead[0].ActionID)
	assert.Len(t, up.keys, 3)
	f.verify(t)
}

func TestWorkerDoesNotRetryNonIdempotent(t *testing.T) {
	up := &upstream{run: func(int, *connector.Request) (json.RawMessage, error) {
		return nil, &connector.Error{Class: "upstream_5xx", UpstreamStatus: 500, Retryable: true}
	}}
	f := newFixture(t, up, false)
	id := f.decide(t)
	res, err := f.worker.Process(context.Background())
	require.NoError(t, err)
	assert.False(t, res.Retry)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusFailed}, f.statuses(t, id))
	assert.Len(t, up.keys, 1)
	f.verify(t)
}

// TestWorkerRedeliversInterruptedAttempt: a worker claims a job and stalls
// mid-execution (as if killed); once its lease runs out another worker
// claims it again, the connector sees the same idempotency key, and an
// upstream that honours it performs the action once.
func TestWorkerRedeliversInterruptedAttempt(t *testing.T) {
	started := make(chan struct{})
	release := make(chan struct{})
	var performed atomic.Int64
	seen := map[string]bool{}
	var mu sync.Mutex
	up := &upstream{}
	up.run = func(n int, req *connector.Request) (json.RawMessage, error) {
		mu.Lock()
		first := !seen[req.IdempotencyKey]
		seen[req.IdempotencyKey] = true
		mu.Unlock()
		if first {
			performed.Add(1)
		}
		if n == 1 {
			close(started)
			<-release // the stalled worker never answers in time
			return nil, context.Canceled
		}
		return json.RawMessage(`{"id":7}`), nil
	}
	f := newFixture(t, up, false)
	id := f.decide(t)
	stalled := make(chan queue.Result, 1)
	go func() {
		res, _ := f.worker.Process(context.Background())
		stalled <- res
	}()
	<-started
	f.clock.Add(2 * time.Minute) // the lease runs out
	res, err := f.worker.Process(context.Background())
	require.NoError(t, err)
	require.NotNil(t, res.Job)
	require.NoError(t, res.Err)
	assert.Equal(t, 2, res.Job.Attempts)
	close(release)
	late := <-stalled
	require.Error(t, late.Err, "the stalled attempt cannot record a result over the redelivered one")

	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuting, receipt.StatusExecuted}, f.statuses(t, id))
	assert.Equal(t, []string{id, id}, up.keys)
	assert.EqualValues(t, 1, performed.Load(), "an upstream honouring the idempotency key acts once")
	f.verify(t)
}
