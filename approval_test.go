package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

const approvalPolicy = `
id: payments
version: "3"
default: deny
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
  - id: big-refunds
    when: action.tool_id == "payments" && input.amount > 100 && input.amount <= 10000
    effect: require_approval
    reason: refunds over 100 need two approvals
    approval:
      roles: [finance]
      quorum: 2
      expiry: 1h
  - id: huge-refunds
    when: action.tool_id == "payments" && input.amount > 10000
    effect: require_approval
    reason: refunds over 10000 need a second factor
    approval:
      roles: [finance]
      users: [cfo]
      quorum: 1
      expiry: 30m
      step_up: true
`

// t0 is the start of the fake clock.
var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// fakeClock is a clock tests move by hand.
type fakeClock struct{ now atomic.Pointer[time.Time] }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.set(t0)
	return c
}

func (c *fakeClock) Now() time.Time      { return *c.now.Load() }
func (c *fakeClock) set(t time.Time)     { c.now.Store(&t) }
func (c *fakeClock) add(d time.Duration) { c.set(c.Now().Add(d)) }

// vote returns an approving vote by user holding roles in tenant acme.
func vote(user string, roles ...string) approval.Vote {
	return approval.Vote{
		Approver: approval.Approver{UserID: user, Roles: roles, TenantIDs: []string{"acme"}},
		Decision: approval.Approve, Reason: "checked the order",
	}
}

// counter is an ExecFunc that counts its runs.
type counter struct{ n atomic.Int32 }

func (c *counter) exec(context.Context, *oars.Action) (json.RawMessage, error) {
	c.n.Add(1)
	return json.RawMessage(`{"refund_id":"re_7"}`), nil
}

// statusesOf returns the statuses of the action's receipts in seq order.
func statusesOf(t *testing.T, g *oars.Guard, id string) []receipt.Status {
	t.Helper()
	entries, err := g.Receipts(context.Background(), id)
	require.NoError(t, err)
	out := make([]receipt.Status, len(entries))
	for i, e := range entries {
		out[i] = e.Receipt.Status
	}
	return out
}

// size returns the ledger's size.
func size(t *testing.T, f *fixture) int64 {
	t.Helper()
	n, err := f.ledger.Size(context.Background())
	require.NoError(t, err)
	return n
}

// pending decides a refund of amount that needs approval and returns its id.
func pending(t *testing.T, f *fixture, amount int, target string) string {
	t.Helper()
	out, err := f.guard.Decide(context.Background(), refund(amount, target))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusPendingApproval, out.Status, "Decide(refund %d).Status", amount)
	return out.ActionID
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err, "sqlite.Open")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestApprovalQuorumConcurrentVotes(t *testing.T) {
	stores := map[string]func(t *testing.T) ledger.Store{
		"memory": func(*testing.T) ledger.Store { return ledger.NewMemStore() },
		"sqlite": func(t *testing.T) ledger.Store { return openSQLite(t, filepath.Join(t.TempDir(), "oars.db")) },
	}
	for name, newStore := range stores {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not a timing assertion
			defer cancel()
			notified := make(chan approval.Request, 1)
			f := newFixture(t, newStore(t), []string{approvalPolicy}, oars.WithNotifier(approval.NotifierFunc(
				func(_ context.Context, r approval.Request) error { notified <- r; return nil })))
			var c counter
			type result struct {
				out *oars.Outcome
				err error
			}
			done := make(chan result, 1)
			go func() {
				out, err := f.guard.Do(ctx, refund(500, "order/q"), c.exec)
				done <- result{out, err}
			}()
			req := <-notified
			assert.Equal(t, 2, req.Requirement.Quorum)
			assert.Equal(t, []string{"finance"}, req.Requirement.Roles)
			assert.Equal(t, []string{"refunds over 100 need two approvals"}, req.Reasons)

			// Three approvers vote at once for a quorum of two.
			start := make(chan struct{})
			errs := make([]error, 3)
			var wg sync.WaitGroup
			for i, user := range []string{"bob", "carol", "dave"} {
				wg.Go(func() {
					<-start
					_, errs[i] = f.guard.Vote(ctx, req.ActionID, vote(user, "finance"))
				})
			}
			close(start)
			wg.Wait()
			accepted, late := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					accepted++
				case errors.Is(err, approval.ErrNotPending):
					late++
				default:
					t.Errorf("Vote() = %v, want nil or ErrNotPending", err)
				}
			}
			assert.Equal(t, 2, accepted, "votes recorded")
			assert.Equal(t, 1, late, "votes refused as late")

			res := <-done
			require.NoError(t, res.err, "Do() after approval")
			assert.Equal(t, receipt.StatusExecuted, res.out.Status)
			assert.Equal(t, int32(1), c.n.Load(), "exec runs")
			assert.JSONEq(t, `{"refund_id":"re_7"}`, string(res.out.Output))
			want := []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote,
				receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted}
			assert.Equal(t, want, statusesOf(t, f.guard, req.ActionID))
			got := make([]receipt.Status, len(res.out.Receipts))
			for i, e := range res.out.Receipts {
				got[i] = e.Receipt.Status
			}
			assert.Equal(t, want, got, "Do's outcome lists the whole chain")
			entries := res.out.Receipts
			assert.Equal(t, []string{entries[1].Receipt.ReceiptID, entries[2].Receipt.ReceiptID}, entries[3].Receipt.Approval.Votes,
				"approved lists the counted votes")
			verifyLedger(t, f)
		})
	}
}

func TestVoteRefusals(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithClock(clock.Now))
	id := pending(t, f, 500, "order/r")
	before := size(t, f)

	tests := []struct {
		name string
		v    approval.Vote
		want error
	}{
		{"requesting user", vote("alice", "finance"), approval.ErrSelfApproval},
		{"acting agent", vote("support-bot", "finance"), approval.ErrSelfApproval},
		{"wrong role", vote("bob", "support"), approval.ErrNotApprover},
		{"no role", vote("bob"), approval.ErrNotApprover},
		{"other tenant", approval.Vote{Approver: approval.Approver{UserID: "bob", Roles: []string{"finance"}, TenantIDs: []string{"globex"}},
			Decision: approval.Approve}, approval.ErrWrongTenant},
		{"malformed", approval.Vote{Approver: approval.Approver{UserID: "bob", Roles: []string{"finance"}, TenantIDs: []string{"acme"}},
			Decision: "perhaps"}, approval.ErrInvalidVote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.guard.Vote(ctx, id, tt.v)
			require.ErrorIs(t, err, tt.want, "Vote(%s)", tt.name)
			assert.Equal(t, before, size(t, f), "Vote(%s) recorded something", tt.name)
		})
	}

	t.Run("duplicate vote", func(t *testing.T) {
		out, err := f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusPendingApproval, out.Status, "one of two votes")
		require.Len(t, out.Receipts, 1)
		r := out.Receipts[0].Receipt
		assert.Equal(t, receipt.StatusVote, r.Status)
		assert.Equal(t, &receipt.Approval{Approver: &receipt.Approver{UserID: "bob", Roles: []string{"finance"}},
			Decision: "approve", Reason: "checked the order"}, r.Approval)
		n := size(t, f)
		_, err = f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.ErrorIs(t, err, approval.ErrAlreadyVoted)
		assert.Equal(t, n, size(t, f), "a repeated vote recorded something")
	})

	t.Run("step-up", func(t *testing.T) {
		id := pending(t, f, 20000, "order/s")
		out, err := f.guard.Receipts(ctx, id)
		require.NoError(t, err)
		assert.True(t, out[0].Receipt.Approval.StepUp, "pending_approval records step_up")
		n := size(t, f)
		_, err = f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.ErrorIs(t, err, approval.ErrStepUpRequired)
		assert.Equal(t, n, size(t, f))
		v := vote("cfo") // a named approver without the role
		v.StepUpMethod = approval.StepUpTOTP
		res, err := f.guard.Vote(ctx, id, v)
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusApproved, res.Status, "quorum 1")
		require.Len(t, res.Receipts, 2)
		assert.Equal(t, approval.StepUpTOTP, res.Receipts[0].Receipt.Approval.StepUpMethod)
	})

	t.Run("expired", func(t *testing.T) {
		id := pending(t, f, 600, "order/e")
		clock.add(time.Hour)
		defer clock.set(t0)
		out, err := f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.ErrorIs(t, err, approval.ErrExpired)
		require.ErrorIs(t, err, oars.ErrExpired)
		require.Len(t, out.Receipts, 1, "the expiry that was due is recorded, the vote is not")
		assert.Equal(t, receipt.StatusExpired, out.Receipts[0].Receipt.Status)
	})

	t.Run("unknown action", func(t *testing.T) {
		_, err := f.guard.Vote(ctx, "no-such-action", vote("bob", "finance"))
		require.ErrorIs(t, err, oars.ErrNotFound)
	})
	t.Run("allowed action", func(t *testing.T) {
		out, err := f.guard.Decide(ctx, refund(5, "order/a"))
		require.NoError(t, err)
		_, err = f.guard.Vote(ctx, out.ActionID, vote("bob", "finance"))
		require.ErrorIs(t, err, approval.ErrNotApproval)
	})
	verifyLedger(t, f)
}

func TestApprovalRejectAndCancel(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy})

	t.Run("reject", func(t *testing.T) {
		id := pending(t, f, 500, "order/x")
		_, err := f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.NoError(t, err)
		v := vote("carol", "finance")
		v.Decision = approval.Reject
		out, err := f.guard.Vote(ctx, id, v)
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusRejected, out.Status)
		require.Len(t, out.Receipts, 2)
		assert.Equal(t, []string{out.Receipts[0].Receipt.ReceiptID}, out.Receipts[1].Receipt.Approval.Votes)
		w, err := f.guard.Wait(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusRejected, w.Status)
		var c counter
		_, err = f.guard.Execute(ctx, id, refund(500, "order/x"), c.exec)
		require.ErrorIs(t, err, oars.ErrNotApproved)
		require.ErrorIs(t, err, oars.ErrRejected)
		assert.Zero(t, c.n.Load())
	})

	t.Run("cancel", func(t *testing.T) {
		id := pending(t, f, 500, "order/y")
		n := size(t, f)
		_, err := f.guard.Cancel(ctx, id, approval.Approver{UserID: "bob", Roles: []string{"finance"}, TenantIDs: []string{"acme"}}, "no")
		require.ErrorIs(t, err, approval.ErrNotRequester)
		_, err = f.guard.Cancel(ctx, id, approval.Approver{UserID: "alice", TenantIDs: []string{"globex"}}, "no")
		require.ErrorIs(t, err, approval.ErrWrongTenant)
		assert.Equal(t, n, size(t, f), "refused cancellations record nothing")
		out, err := f.guard.Cancel(ctx, id, approval.Approver{UserID: "alice", TenantIDs: []string{"acme"}}, "customer withdrew")
		require.NoError(t, err)
		assert.Equal(t, receipt.StatusCancelled, out.Status)
		assert.Equal(t, &receipt.Approval{Approver: &receipt.Approver{UserID: "alice"}, Reason: "customer withdrew"}, out.Receipts[0].Receipt.Approval)
		_, err = f.guard.Vote(ctx, id, vote("bob", "finance"))
		require.ErrorIs(t, err, approval.ErrNotPending)

		id = pending(t, f, 500, "order/z")
		out, err = f.guard.Cancel(ctx, id, approval.Approver{UserID: "root", Roles: []string{approval.AdminRole}, TenantIDs: []string{"*"}}, "")
		require.NoError(t, err, "an admin cancels")
		assert.Equal(t, receipt.StatusCancelled, out.Status)
	})

	t.Run("do returns the outcome", func(t *testing.T) {
		for _, tt := range []struct {
			name   string
			decide func(id string) error
			want   error
		}{
			{"rejected", func(id string) error {
				v := vote("bob", "finance")
				v.Decision = approval.Reject
				_, err := f.guard.Vote(ctx, id, v)
				return err
			}, oars.ErrRejected},
			{"cancelled", func(id string) error {
				_, err := f.guard.Cancel(ctx, id, approval.Approver{UserID: "alice", TenantIDs: []string{"acme"}}, "")
				return err
			}, oars.ErrCancelled},
		} {
			t.Run(tt.name, func(t *testing.T) {
				notified := make(chan approval.Request, 1)
				g := newFixture(t, f.store, []string{approvalPolicy}, oars.WithNotifier(approval.NotifierFunc(
					func(_ context.Context, r approval.Request) error { notified <- r; return nil }))).guard
				var c counter
				errc := make(chan error, 1)
				go func() {
					_, err := g.Do(ctx, refund(700, "order/do-"+tt.name), c.exec)
					errc <- err
				}()
				req := <-notified
				require.NoError(t, tt.decide(req.ActionID))
				err := <-errc
				require.ErrorIs(t, err, tt.want, "Do()")
				assert.Zero(t, c.n.Load(), "exec ran")
			})
		}
	})
	verifyLedger(t, f)
}

func TestDoPendingWhenContextEnds(t *testing.T) {
	hc := newHoldCanceller()
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithNotifier(hc))
	var c counter
	a := refund(500, "order/late")
	out, err := f.guard.Do(hc.ctx(t, "order/late"), a, c.exec)
	require.ErrorIs(t, err, oars.ErrPendingApproval)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, receipt.StatusPendingApproval, out.Status)
	assert.Zero(t, c.n.Load())

	// The action stays pending: approved later, it runs through Execute.
	ctx := context.Background()
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, out.ActionID, vote(u, "finance"))
		require.NoError(t, err)
	}
	ids, err := f.guard.ApprovedUnexecuted(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{out.ActionID}, ids)
	res, err := f.guard.Execute(ctx, out.ActionID, refund(500, "order/late"), c.exec)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, res.Status)
	assert.Equal(t, int32(1), c.n.Load())
	ids, err = f.guard.ApprovedUnexecuted(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)
}

func TestExecuteBinding(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy})
	id := pending(t, f, 500, "order/b")
	var c counter

	_, err := f.guard.Execute(ctx, id, refund(500, "order/b"), c.exec)
	require.ErrorIs(t, err, oars.ErrNotApproved, "Execute() while pending")
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, id, vote(u, "finance"))
		require.NoError(t, err)
	}
	before := size(t, f)
	changes := []struct {
		name string
		edit func(a *oars.Action)
	}{
		{"input", func(a *oars.Action) { a.Input = json.RawMessage(`{"amount": 5000, "currency": "EUR"}`) }},
		{"target", func(a *oars.Action) { a.Resource.Target = "order/other" }},
		{"operation", func(a *oars.Action) { a.Resource.Operation = "charge" }},
		{"user", func(a *oars.Action) { a.Principal.UserID = "mallory" }},
		{"agent", func(a *oars.Action) { a.AgentID = "other-bot" }},
		{"tenant", func(a *oars.Action) { a.TenantID = "globex" }},
		{"delegation", func(a *oars.Action) { a.Principal.Delegation = []receipt.DelegationHop{{Subject: "x"}} }},
		{"action id", func(a *oars.Action) { a.ID = "another-action" }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			a := refund(500, "order/b")
			tt.edit(a)
			_, err := f.guard.Execute(ctx, id, a, c.exec)
			require.ErrorIs(t, err, oars.ErrApprovalMismatch, "Execute(changed %s)", tt.name)
			assert.Equal(t, before, size(t, f), "Execute(changed %s) recorded something", tt.name)
		})
	}
	assert.Zero(t, c.n.Load(), "exec ran for a changed call")

	// The same call with its input keys in another order is the same call.
	a := refund(500, "order/b")
	a.Input = json.RawMessage(`{"currency":"EUR","amount":500}`)
	out, err := f.guard.Execute(ctx, id, a, c.exec)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	require.Len(t, out.Receipts, 2)
	assert.Equal(t, receipt.StatusExecuting, out.Receipts[0].Receipt.Status)
	_, err = f.guard.Execute(ctx, id, refund(500, "order/b"), c.exec)
	require.ErrorIs(t, err, oars.ErrAlreadyClaimed, "an approval is used once")
	assert.Equal(t, int32(1), c.n.Load())
	_, err = f.guard.Execute(ctx, id, refund(500, "order/b"), nil)
	require.ErrorIs(t, err, oars.ErrInvalidAction)
}

func TestExecuteConcurrentClaims(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy})
	// Two Guards (two "replicas") over one store race with goroutines of
	// the first.
	other := newFixture(t, f.store, []string{approvalPolicy})
	id := pending(t, f, 500, "order/c")
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, id, vote(u, "finance"))
		require.NoError(t, err)
	}
	var c counter
	guards := []*oars.Guard{f.guard, f.guard, other.guard, other.guard, f.guard, other.guard}
	errs := make([]error, len(guards))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, g := range guards {
		wg.Go(func() {
			<-start
			_, errs[i] = g.Execute(ctx, id, refund(500, "order/c"), c.exec)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		if err == nil {
			won++
			continue
		}
		require.ErrorIs(t, err, oars.ErrAlreadyClaimed)
	}
	assert.Equal(t, 1, won, "executors that won the claim")
	assert.Equal(t, int32(1), c.n.Load(), "exec runs")
	assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote,
		receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted}, statusesOf(t, f.guard, id))
	verifyLedger(t, f)
}

func TestExpiryWhileStopped(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	clock := newFakeClock()

	// Guard A records the pending action and one vote, then stops.
	storeA, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	a := newFixture(t, storeA, []string{approvalPolicy}, oars.WithClock(clock.Now))
	id := pending(t, a, 500, "order/stopped")
	_, err = a.guard.Vote(ctx, id, vote("bob", "finance"))
	require.NoError(t, err)
	require.NoError(t, storeA.Close())

	// Guard B starts on the same file two hours later.
	clock.add(2 * time.Hour)
	b := newFixture(t, openSQLite(t, path), []string{approvalPolicy}, oars.WithClock(clock.Now))
	n, err := b.guard.SweepExpired(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "SweepExpired() before LoadPending knows no action")
	n, err = b.guard.LoadPending(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "LoadPending()")
	n, err = b.guard.SweepExpired(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "SweepExpired()")
	st, err := b.guard.Approval(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExpired, st.Status)
	assert.Equal(t, clock.Now(), st.UpdatedAt, "expired when the sweep ran")

	var c counter
	_, err = b.guard.Execute(ctx, id, refund(500, "order/stopped"), c.exec)
	require.ErrorIs(t, err, oars.ErrNotApproved)
	require.ErrorIs(t, err, oars.ErrExpired)
	_, err = b.guard.Vote(ctx, id, vote("carol", "finance"))
	require.ErrorIs(t, err, approval.ErrNotPending)
	require.ErrorIs(t, err, approval.ErrExpired)
	assert.Zero(t, c.n.Load(), "exec of an expired action")
	n, err = b.guard.SweepExpired(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "a second sweep")
	assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusExpired}, statusesOf(t, b.guard, id))
	verifyLedger(t, b)
}

func TestWaitRecordsExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithClock(clock.Now))
	id := pending(t, f, 500, "order/w")
	clock.add(time.Hour)
	out, err := f.guard.Wait(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExpired, out.Status)
	assert.Len(t, out.Receipts, 2)

	// Wait on an action that never needed approval returns at once.
	d, err := f.guard.Decide(ctx, refund(5, "order/w2"))
	require.NoError(t, err)
	out, err = f.guard.Wait(ctx, d.ActionID)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusAllowed, out.Status)
	_, err = f.guard.Wait(ctx, "no-such-action")
	require.ErrorIs(t, err, oars.ErrNotFound)
}

// watchStore is a MemStore that reports the leaves appended to it.
type watchStore struct {
	*ledger.MemStore
	leaves chan []byte
}

func (w *watchStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	err := w.MemStore.Append(ctx, start, leaves, hashes)
	if err == nil {
		for _, l := range leaves {
			w.leaves <- l
		}
	}
	return err
}

func TestRunSweeper(t *testing.T) {
	clock := newFakeClock()
	store := &watchStore{MemStore: ledger.NewMemStore(), leaves: make(chan []byte, 16)}
	f := newFixture(t, store, []string{approvalPolicy}, oars.WithClock(clock.Now))
	// Recorded by another Guard on the same store: RunSweeper loads it.
	other := newFixture(t, store, []string{approvalPolicy}, oars.WithClock(clock.Now))
	id := pending(t, other, 500, "order/sweep")
	<-store.leaves
	clock.add(time.Hour)

	require.Error(t, f.guard.RunSweeper(context.Background(), 0), "RunSweeper(interval 0)")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- f.guard.RunSweeper(ctx, time.Hour) }()
	leaf := <-store.leaves // the first sweep runs at once
	cancel()
	require.ErrorIs(t, <-errc, context.Canceled, "RunSweeper() after ctx ends")
	h, ok := ledger.ParseHeader(leaf)
	require.True(t, ok)
	assert.Equal(t, id, h.ActionID)
	assert.Equal(t, string(receipt.StatusExpired), h.Status)
}

func TestPendingApprovals(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithClock(clock.Now))
	first := pending(t, f, 500, "order/p1")
	approved := pending(t, f, 20000, "order/p2")
	v := vote("bob", "finance")
	v.StepUpMethod = approval.StepUpTOTP
	_, err := f.guard.Vote(ctx, approved, v)
	require.NoError(t, err)
	globex := refund(500, "order/p3")
	globex.TenantID = "globex"
	out, err := f.guard.Decide(ctx, globex)
	require.NoError(t, err)
	clock.add(time.Minute)
	second := pending(t, f, 900, "order/p4")
	_, err = f.guard.Vote(ctx, second, vote("carol", "finance"))
	require.NoError(t, err)

	list, err := f.guard.PendingApprovals(ctx, "acme")
	require.NoError(t, err)
	var ids []string
	for _, st := range list {
		ids = append(ids, st.ActionID)
	}
	assert.Equal(t, []string{first, second}, ids, "PendingApprovals(acme)")
	assert.Len(t, list[1].Votes, 1)
	all, err := f.guard.PendingApprovals(ctx, "")
	require.NoError(t, err)
	assert.Len(t, all, 3, "PendingApprovals(all tenants)")
	assert.True(t, slices.ContainsFunc(all, func(st *approval.State) bool { return st.ActionID == out.ActionID }))

	// The 1 h requests of the first minute have expired 1 h later; the
	// later one has not.
	clock.add(time.Hour - time.Minute)
	list, err = f.guard.PendingApprovals(ctx, "acme")
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, second, list[0].ActionID)
}

func TestShadowModeApproval(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithShadowMode())
	var c counter
	out, err := f.guard.Do(ctx, refund(500, "order/shadow"), c.exec)
	require.NoError(t, err, "shadow mode never blocks")
	assert.Equal(t, int32(1), c.n.Load())
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	_, err = f.guard.Approval(ctx, out.ActionID)
	require.ErrorIs(t, err, approval.ErrNotApproval)
	list, err := f.guard.PendingApprovals(ctx, "")
	require.NoError(t, err)
	assert.Empty(t, list)
	n, err := f.guard.LoadPending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n)
}

func TestNotifierFailureDoesNotFailDecision(t *testing.T) {
	called := make(chan string, 1)
	f := newFixture(t, nil, []string{approvalPolicy}, oars.WithNotifier(approval.NotifierFunc(
		func(_ context.Context, r approval.Request) error {
			called <- r.ActionID
			return errors.New("webhook down")
		})))
	id := pending(t, f, 500, "order/n")
	assert.Equal(t, id, <-called)
	_, err := oars.New(f.guard.Policies(), f.keys, f.ledger, oars.WithNotifier(nil))
	require.Error(t, err, "WithNotifier(nil)")
	_, err = oars.New(f.guard.Policies(), f.keys, f.ledger, oars.WithPollInterval(0))
	require.Error(t, err, "WithPollInterval(0)")
}

// failSwitchStore is a MemStore whose appends fail while fail is set.
type failSwitchStore struct {
	*ledger.MemStore
	fail atomic.Bool
}

func (s *failSwitchStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if s.fail.Load() {
		return errors.New("disk full")
	}
	return s.MemStore.Append(ctx, start, leaves, hashes)
}

func TestRecoverInterrupted(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := &failSwitchStore{MemStore: ledger.NewMemStore()}
	f := newFixture(t, store, []string{approvalPolicy}, oars.WithClock(clock.Now))
	id := pending(t, f, 500, "order/i")
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, id, vote(u, "finance"))
		require.NoError(t, err)
	}
	// The result of the execution cannot be recorded, as if the process
	// died during exec: the action stays executing.
	_, err := f.guard.Execute(ctx, id, refund(500, "order/i"), func(context.Context, *oars.Action) (json.RawMessage, error) {
		store.fail.Store(true)
		return nil, nil
	})
	require.ErrorIs(t, err, oars.ErrLedger)
	store.fail.Store(false)
	assert.Equal(t, receipt.StatusExecuting, statusesOf(t, f.guard, id)[4])

	_, err = f.guard.RecoverInterrupted(ctx, 0)
	require.Error(t, err, "RecoverInterrupted(0)")
	n, err := f.guard.RecoverInterrupted(ctx, time.Hour)
	require.NoError(t, err)
	assert.Zero(t, n, "within the lease")
	clock.add(time.Hour)
	n, err = f.guard.RecoverInterrupted(ctx, time.Hour)
	require.NoError(t, err)
	assert.Equal(t, 1, n, "after the lease")
	entries, err := f.guard.Receipts(ctx, id)
	require.NoError(t, err)
	last := entries[len(entries)-1].Receipt
	assert.Equal(t, receipt.StatusFailed, last.Status)
	assert.Equal(t, "interrupted", last.ErrorClass)
	var c counter
	_, err = f.guard.Execute(ctx, id, refund(500, "order/i"), c.exec)
	require.ErrorIs(t, err, oars.ErrAlreadyClaimed, "an interrupted action is not executed again")
	assert.Zero(t, c.n.Load())
	verifyLedger(t, f)
}

func TestApprovedChainVerifies(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{approvalPolicy})
	id := pending(t, f, 500, "order/v")
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, id, vote(u, "finance"))
		require.NoError(t, err)
	}
	_, err := f.guard.Execute(ctx, id, refund(500, "order/v"), new(counter).exec)
	require.NoError(t, err)
	entries, err := f.guard.Receipts(ctx, id)
	require.NoError(t, err)
	leaves := make([][]byte, len(entries))
	for i, e := range entries {
		leaves[i] = e.Bytes
	}
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	chain, err := v.VerifyChain(leaves)
	require.NoError(t, err, "VerifyChain()")
	require.Len(t, chain, 6)
	p := chain[0].Approval
	require.NotNil(t, p)
	assert.Equal(t, 2, p.Quorum)
	assert.Equal(t, []string{"finance"}, p.Roles)
	assert.True(t, p.ExpiresAt.Equal(chain[0].IssuedAt.Add(time.Hour)), "expires_at = issued_at + 1h")
	assert.Equal(t, []string{chain[1].ReceiptID, chain[2].ReceiptID}, chain[3].Approval.Votes)
	for _, r := range chain[1:] {
		assert.Equal(t, chain[0].InputDigest, r.InputDigest, "every receipt commits to the input")
		assert.Equal(t, chain[0].Resource, r.Resource, "every receipt commits to the resource")
	}
	assert.NotEmpty(t, chain[5].OutputDigest)
	rep := verifyLedger(t, f)
	assert.Equal(t, int64(6), rep.Size)
}

// ExampleGuard_Vote holds a refund for two approvals, lets two approvers
// vote, and executes it once.
func ExampleGuard_Vote() {
	ctx := context.Background()
	f, err := exampleGuard(ctx, approvalPolicy)
	if err != nil {
		fmt.Println("guard:", err)
		return
	}
	out, err := f.Decide(ctx, refund(500, "order/42"))
	if err != nil {
		fmt.Println("decide:", err)
		return
	}
	fmt.Println(out.Status)
	for _, approver := range []string{"bob", "carol"} {
		res, err := f.Vote(ctx, out.ActionID, approval.Vote{
			Approver: approval.Approver{UserID: approver, Roles: []string{"finance"}, TenantIDs: []string{"acme"}},
			Decision: approval.Approve,
		})
		if err != nil {
			fmt.Println("vote:", err)
			return
		}
		fmt.Println(approver, "voted:", res.Status)
	}
	_, err = f.Vote(ctx, out.ActionID, approval.Vote{
		Approver: approval.Approver{UserID: "alice", Roles: []string{"finance"}, TenantIDs: []string{"acme"}},
		Decision: approval.Approve,
	})
	fmt.Println("alice:", errors.Is(err, approval.ErrNotPending))
	res, err := f.Execute(ctx, out.ActionID, refund(500, "order/42"), func(context.Context, *oars.Action) (json.RawMessage, error) {
		return json.RawMessage(`{"refund_id":"re_42"}`), nil
	})
	if err != nil {
		fmt.Println("execute:", err)
		return
	}
	fmt.Println(res.Status)
	// Output:
	// pending_approval
	// bob voted: pending_approval
	// carol voted: approved
	// alice: true
	// executed
}

// exampleGuard returns a Guard deciding with policyYAML over an in-memory
// ledger.
func exampleGuard(ctx context.Context, policyYAML string) (*oars.Guard, error) {
	pol, err := policy.Parse("payments.yaml", []byte(policyYAML))
	if err != nil {
		return nil, err
	}
	set, err := policy.NewSet(pol)
	if err != nil {
		return nil, err
	}
	signer, err := receipt.GenerateSigner()
	if err != nil {
		return nil, err
	}
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		return nil, err
	}
	l, err := ledger.New(ctx, ledger.NewMemStore())
	if err != nil {
		return nil, err
	}
	return oars.New(set, keys, l)
}
