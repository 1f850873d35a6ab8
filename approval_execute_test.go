package oars_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// TestExecuteAllowed decides an allowed action and executes it later with
// Execute: the execution is claimed at seq 2 and runs once however many
// goroutines and Guards try.
func TestExecuteAllowed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy})
	other := newFixture(t, f.store, []string{approvalPolicy})
	out, err := f.guard.Decide(ctx, refund(50, "order/ok"))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusAllowed, out.Status)
	id := out.ActionID

	var c counter
	guards := []*oars.Guard{f.guard, other.guard, f.guard, other.guard}
	errs := make([]error, len(guards))
	outs := make([]*oars.Outcome, len(guards))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, g := range guards {
		wg.Go(func() {
			<-start
			outs[i], errs[i] = g.Execute(ctx, id, refund(50, "order/ok"), c.exec)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for i, err := range errs {
		if err == nil {
			won++
			assert.Equal(t, receipt.StatusExecuted, outs[i].Status)
			assert.JSONEq(t, `{"refund_id":"re_7"}`, string(outs[i].Output))
			continue
		}
		require.ErrorIs(t, err, oars.ErrAlreadyClaimed, "Execute(allowed) by a loser")
	}
	assert.Equal(t, 1, won, "executors that won the claim")
	assert.Equal(t, int32(1), c.n.Load(), "exec runs")
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted},
		statusesOf(t, f.guard, id))
	verifyLedger(t, f)
}

func TestExecuteDecidedRefusals(t *testing.T) {
	ctx := context.Background()
	denyPolicy := `
id: strict
version: "1"
default: deny
rules:
  - {id: small, when: 'input.amount <= 100', effect: allow, reason: small}
`
	f := newFixture(t, nil, []string{denyPolicy})
	denied, err := f.guard.Decide(ctx, refund(500, "order/big"))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusDenied, denied.Status)
	allowed, err := f.guard.Decide(ctx, refund(5, "order/small"))
	require.NoError(t, err)
	done, err := f.guard.Do(ctx, refund(6, "order/done"), (&counter{}).exec)
	require.NoError(t, err)

	tests := []struct {
		name    string
		id      string
		action  *oars.Action
		wantErr []error
	}{
		{"denied", denied.ActionID, refund(500, "order/big"), []error{oars.ErrNotApproved, oars.ErrDenied}},
		{"other input", allowed.ActionID, refund(7, "order/small"), []error{oars.ErrApprovalMismatch}},
		{"other target", allowed.ActionID, refund(5, "order/other"), []error{oars.ErrApprovalMismatch}},
		{"executed by Do", done.ActionID, refund(6, "order/done"), []error{oars.ErrAlreadyClaimed}},
		{"unknown", "no-such-action", refund(5, "order/small"), []error{oars.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := size(t, f)
			var c counter
			_, err := f.guard.Execute(ctx, tt.id, tt.action, c.exec)
			for _, want := range tt.wantErr {
				require.ErrorIs(t, err, want, "Execute(%s)", tt.name)
			}
			assert.Zero(t, c.n.Load(), "exec runs")
			assert.Equal(t, before, size(t, f), "a refusal records nothing")
		})
	}
}

// TestRecoverInterruptedAllowed: an allowed action whose claimed execution
// never recorded a result is marked failed once the lease has passed.
func TestRecoverInterruptedAllowed(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := &failSwitchStore{MemStore: ledger.NewMemStore()}
	f := newFixture(t, store, []string{approvalPolicy}, oars.WithClock(clock.Now))
	out, err := f.guard.Decide(ctx, refund(20, "order/int"))
	require.NoError(t, err)
	id := out.ActionID
	_, err = f.guard.Execute(ctx, id, refund(20, "order/int"), func(context.Context, *oars.Action) (json.RawMessage, error) {
		store.fail.Store(true)
		return nil, nil
	})
	require.ErrorIs(t, err, oars.ErrLedger)
	store.fail.Store(false)

	n, err := f.guard.RecoverInterrupted(ctx, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "RecoverInterrupted within the lease")
	clock.add(time.Hour)
	n, err = f.guard.RecoverInterrupted(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "RecoverInterrupted after the lease")
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusFailed}, statusesOf(t, f.guard, id))
	n, err = f.guard.RecoverInterrupted(ctx, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "RecoverInterrupted again")
	verifyLedger(t, f)
}
