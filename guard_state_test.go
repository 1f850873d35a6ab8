package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

func TestIdempotencyKey(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	ctx := context.Background()
	var runs atomic.Int32
	exec := func(context.Context, *oars.Action) (json.RawMessage, error) {
		runs.Add(1)
		return json.RawMessage(`{"refund_id":"re_9"}`), nil
	}
	a := refund(20, "order/5")
	a.IdempotencyKey = "req-1"
	first, err := f.guard.Do(ctx, a, exec)
	require.NoError(t, err)
	assert.False(t, first.Replayed)
	assert.Equal(t, oars.IdempotentActionID("acme", "req-1"), first.ActionID)

	// Same key, same action (input keys in another order): the recorded outcome.
	again := refund(20, "order/5")
	again.IdempotencyKey = "req-1"
	again.Input = json.RawMessage(`{"currency":"EUR","amount":20}`)
	second, err := f.guard.Do(ctx, again, exec)
	require.NoError(t, err)
	assert.True(t, second.Replayed)
	assert.Equal(t, first.ActionID, second.ActionID)
	assert.Equal(t, receipt.StatusExecuted, second.Status)
	require.Len(t, second.Receipts, 2)
	assert.Equal(t, first.Receipts[1].Bytes, second.Receipts[1].Bytes)
	assert.Equal(t, int32(1), runs.Load(), "executed once")

	// Same key, different input: conflict, nothing recorded.
	size, err := f.ledger.Size(ctx)
	require.NoError(t, err)
	changed := refund(21, "order/5")
	changed.IdempotencyKey = "req-1"
	_, err = f.guard.Do(ctx, changed, exec)
	require.ErrorIs(t, err, oars.ErrIdempotencyConflict)
	after, err := f.ledger.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, size, after)

	// The same key in another tenant is another action.
	other := refund(20, "order/5")
	other.TenantID = "globex"
	other.IdempotencyKey = "req-1"
	out, err := f.guard.Decide(ctx, other)
	require.NoError(t, err)
	assert.NotEqual(t, first.ActionID, out.ActionID)

	// An explicit id and a key together are refused.
	both := refund(1, "order/1")
	both.ID, both.IdempotencyKey = "x", "y"
	_, err = f.guard.Decide(ctx, both)
	require.ErrorIs(t, err, oars.ErrInvalidAction)
}

func TestIdempotencyKeyConcurrent(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	var runs atomic.Int32
	var wg sync.WaitGroup
	replays := atomic.Int32{}
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := refund(20, "order/7")
			a.IdempotencyKey = "same"
			out, err := f.guard.Do(context.Background(), a, func(context.Context, *oars.Action) (json.RawMessage, error) {
				runs.Add(1)
				return nil, nil
			})
			if err != nil {
				t.Error(err)
				return
			}
			if out.Replayed {
				replays.Add(1)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(1), runs.Load())
	assert.Equal(t, int32(15), replays.Load())
	rep := verifyLedger(t, f)
	assert.Equal(t, int64(2), rep.Size)
}

func TestReceiptsLookup(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	ctx := context.Background()
	out, err := f.guard.Do(ctx, refund(3, "order/3"), func(context.Context, *oars.Action) (json.RawMessage, error) { return nil, nil })
	require.NoError(t, err)
	got, err := f.guard.Receipts(ctx, out.ActionID)
	require.NoError(t, err)
	require.Len(t, got, 2)
	for i := range got {
		assert.Equal(t, out.Receipts[i].Bytes, got[i].Bytes)
		assert.Equal(t, out.Receipts[i].Index, got[i].Index)
		assert.Equal(t, out.Receipts[i].Receipt.Status, got[i].Receipt.Status)
	}
	_, err = f.guard.Receipts(ctx, "no-such-action")
	require.ErrorIs(t, err, oars.ErrNotFound)
}

func TestSetPoliciesRecordsEvent(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	ctx := context.Background()
	old := f.guard.Policies().Digest()
	p, err := policy.Parse("allow-all.yaml", []byte("id: open\nversion: \"2\"\ndefault: allow\nrules:\n  - {id: no-rm, when: 'action.operation == \"rm\"', effect: deny, reason: no rm}\n"))
	require.NoError(t, err)
	set, err := policy.NewSet(p)
	require.NoError(t, err)
	require.NoError(t, f.guard.SetPolicies(ctx, set, "admin@example.com"))
	assert.Equal(t, set.Digest(), f.guard.Policies().Digest())

	leaf, err := f.ledger.Leaf(ctx, 0)
	require.NoError(t, err)
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	ev, err := v.VerifyEvent(leaf)
	require.NoError(t, err)
	assert.Equal(t, "policy.reloaded", ev.Event)
	assert.Equal(t, "admin@example.com", ev.Actor)
	assert.Contains(t, string(ev.Details), old)
	assert.Contains(t, string(ev.Details), set.Digest())

	out, err := f.guard.Decide(ctx, &oars.Action{TenantID: "acme", AgentID: "a", Resource: oars.Resource{ToolID: "shell", Operation: "exec"}})
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusAllowed, out.Status, "the new set is in force")
	verifyLedger(t, f)

	// A failing ledger keeps the old set.
	g := newFixture(t, failingStore{f.store}, []string{testPolicy})
	err = g.guard.SetPolicies(ctx, set, "admin")
	require.ErrorIs(t, err, oars.ErrLedger)
	assert.NotEqual(t, set.Digest(), g.guard.Policies().Digest())
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, nil, []string{testPolicy}, oars.WithMetrics(reg))
	ctx := context.Background()
	for _, amount := range []int{1, 2, 500} {
		_, err := f.guard.Decide(ctx, refund(amount, "order/1"))
		require.NoError(t, err)
	}
	_, err := f.guard.Decide(ctx, refund(1, "order/blocked"))
	require.NoError(t, err)
	want := `
# HELP oars_decisions_total Decisions recorded by the Guard, by the status of the decision receipt.
# TYPE oars_decisions_total counter
oars_decisions_total{status="allowed"} 2
oars_decisions_total{status="denied"} 1
oars_decisions_total{status="pending_approval"} 1
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(want), "oars_decisions_total"))
	n, err := testutil.GatherAndCount(reg, "oars_decision_duration_seconds")
	require.NoError(t, err)
	assert.Equal(t, 1, n)

	// Registering twice on one registry is a construction error.
	_, err = oars.New(f.guard.Policies(), f.keys, f.ledger, oars.WithMetrics(reg))
	require.Error(t, err)
	assert.False(t, errors.Is(err, oars.ErrLedger))
}
