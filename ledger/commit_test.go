package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// gate makes the first Append call through a hookStore block until released,
// so that a test can queue other appends behind it.
type gate struct {
	entered chan struct{} // closed when the first call is blocked
	release chan struct{} // close to let it continue
}

func newGate() *gate {
	return &gate{entered: make(chan struct{}), release: make(chan struct{})}
}

// hold blocks call 1 until the gate is released.
func (g *gate) hold(call int) {
	if call == 1 {
		close(g.entered)
		<-g.release
	}
}

// queuedCounter returns a testHookQueued func and a channel that receives one
// value per request queued behind a committer.
func queuedCounter(capacity int) (func(), <-chan struct{}) {
	ch := make(chan struct{}, capacity)
	return func() { ch <- struct{}{} }, ch
}

func waitN(ch <-chan struct{}, n int) {
	for range n {
		<-ch
	}
}

func TestConcurrentAppend(t *testing.T) {
	const goroutines, per = 64, 50
	const total = goroutines * per
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	g := newGate()
	hs.setHooks(func(call int) error { g.hold(call); return nil }, nil)
	l := newTestLedger(t, hs)
	hook, queued := queuedCounter(total)
	l.testHookQueued = hook

	leafFor := func(gr, i int) []byte { return fmt.Appendf(nil, "goroutine %d append %d", gr, i) }
	indexes := make([][]int64, goroutines)
	errs := make([]error, goroutines)
	var wg sync.WaitGroup
	for gr := range goroutines {
		wg.Go(func() {
			for i := range per {
				idx, err := l.Append(ctx, leafFor(gr, i))
				if err != nil {
					errs[gr] = err
					return
				}
				indexes[gr] = append(indexes[gr], idx)
			}
		})
	}
	// One goroutine is committing (blocked in the store); wait until every
	// other one has queued its first append behind it, then let it go.
	<-g.entered
	waitN(queued, goroutines-1)
	close(g.release)
	wg.Wait()

	for gr, err := range errs {
		require.NoError(t, err, "goroutine %d", gr)
	}
	seen := make(map[int64]bool, total)
	for gr := range goroutines {
		require.Len(t, indexes[gr], per, "indexes of goroutine %d", gr)
		for i, idx := range indexes[gr] {
			require.False(t, seen[idx], "index %d returned twice", idx)
			seen[idx] = true
			if i > 0 {
				require.Greater(t, idx, indexes[gr][i-1], "goroutine %d: later append got a smaller index", gr)
			}
			got, err := l.Leaf(ctx, idx)
			require.NoError(t, err)
			require.Equal(t, leafFor(gr, i), got, "Leaf(%d)", idx)
		}
	}
	for i := range int64(total) {
		require.True(t, seen[i], "index %d never returned", i)
	}

	calls, maxLen, _ := hs.stats()
	t.Logf("%d leaves in %d Store.Append calls, largest batch %d", total, calls, maxLen)
	require.Less(t, calls, total, "Store.Append calls for %d leaves", total)
	require.GreaterOrEqual(t, maxLen, goroutines-1, "largest batch: the %d queued appends go in one call", goroutines-1)

	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(total), rep.Size, "Verify size")
	root, err := l.TreeHash(ctx, total)
	require.NoError(t, err)
	require.Equal(t, root, rep.Root, "Verify root vs TreeHash")
}

func TestStoreFailure(t *testing.T) {
	const callers = 8
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs)
	appendN(t, l, 3)
	hook, queued := queuedCounter(callers)
	l.testHookQueued = hook

	errStore := errors.New("disk on fire")
	var failing int
	g := newGate()
	hs.setHooks(func(call int) error {
		call -= 3 // calls 1-3 were the appends above
		g.hold(call)
		failing++ // only the committer calls Append
		return errStore
	}, nil)

	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, errs[i] = l.Append(ctx, []byte("doomed"))
		})
	}
	<-g.entered
	waitN(queued, callers-1)
	close(g.release)
	wg.Wait()

	for i, err := range errs {
		assert.ErrorIs(t, err, errStore, "Append(caller %d) while the store fails", i)
	}
	require.Equal(t, 2+callers-1, failing,
		"failed Store.Append calls: the first caller's, one batch of the %d queued, then each of them alone", callers-1)
	size, err := l.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), size, "Size() after failed appends")

	// The store recovers.
	hs.setHooks(nil, nil)
	for i := 3; i < 6; i++ {
		idx, err := l.Append(ctx, leafAt(i))
		require.NoError(t, err)
		require.Equal(t, int64(i), idx, "Append after recovery")
	}
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(6), rep.Size, "Verify size after recovery")
	leaves, err := l.Leaves(ctx, 0, 6)
	require.NoError(t, err)
	for i, leaf := range leaves {
		require.Equal(t, leafAt(i), leaf, "Leaf(%d)", i)
	}
}

// TestStoreFailureAfterCommit covers a store that stored the batch but
// reported an error (say, a connection lost before the commit was
// acknowledged): the next append must land after the stored leaf.
func TestStoreFailureAfterCommit(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs)
	appendN(t, l, 2)

	errLost := errors.New("connection reset")
	hs.setHooks(nil, func(_ int, err error) error {
		require.NoError(t, err, "inner Store.Append")
		return errLost
	})
	idx, err := l.Append(ctx, leafAt(2))
	require.NoError(t, err, "Append with an ambiguous store failure whose leaf was stored")
	require.Equal(t, int64(2), idx, "Append with an ambiguous store failure: index of the stored leaf")

	hs.setHooks(nil, nil)
	idx, err = l.Append(ctx, leafAt(3))
	require.NoError(t, err)
	require.Equal(t, int64(3), idx, "Append after an ambiguous failure")
	_, _, conflicts := hs.stats()
	require.Equal(t, 0, conflicts, "conflicts: the size must be re-read, not discovered by conflict")
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(4), rep.Size)
}

func TestCancelWhileQueued(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	g := newGate()
	hs.setHooks(func(call int) error { g.hold(call); return nil }, nil)
	l := newTestLedger(t, hs)
	hook, queued := queuedCounter(4)
	l.testHookQueued = hook

	type result struct {
		idx int64
		err error
	}
	leader := make(chan result, 1)
	go func() {
		idx, err := l.Append(ctx, []byte("leader"))
		leader <- result{idx, err}
	}()
	<-g.entered

	cctx, cancel := context.WithCancel(ctx)
	cancelled := make(chan result, 1)
	go func() {
		idx, err := l.Append(cctx, []byte("cancelled"))
		cancelled <- result{idx, err}
	}()
	waitN(queued, 1)
	survivor := make(chan result, 1)
	go func() {
		idx, err := l.Append(ctx, []byte("survivor"))
		survivor <- result{idx, err}
	}()
	waitN(queued, 1)

	cancel()
	r := <-cancelled
	require.ErrorIs(t, r.err, context.Canceled, "Append(ctx cancelled while queued)")

	close(g.release)
	r = <-leader
	require.NoError(t, r.err)
	require.Equal(t, int64(0), r.idx, "leader index")
	r = <-survivor
	require.NoError(t, r.err)
	require.Equal(t, int64(1), r.idx, "survivor index")

	leaves, err := l.Leaves(ctx, 0, 2)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("leader"), []byte("survivor")}, leaves, "log after a cancelled append")
	size, err := l.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), size, "Size(): the cancelled leaf must not be written")
}

func TestCancelAfterHandOver(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	g := newGate()
	hs.setHooks(func(call int) error { g.hold(call); return nil }, nil)
	l := newTestLedger(t, hs)

	cctx, cancel := context.WithCancel(ctx)
	type result struct {
		idx int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		idx, err := l.Append(cctx, []byte("in flight"))
		done <- result{idx, err}
	}()
	<-g.entered // the leaf is in a store write now
	cancel()
	close(g.release)
	r := <-done
	require.NoError(t, r.err, "Append whose ctx was cancelled after its leaf was handed to the store")
	require.Equal(t, int64(0), r.idx)
	got, err := l.Leaf(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, []byte("in flight"), got)
}

func TestCancelledBeforeAppend(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ms := NewMemStore()
	l := newTestLedger(t, ms)
	_, err := l.Append(ctx, []byte("never"))
	require.ErrorIs(t, err, context.Canceled, "Append(cancelled ctx)")
	size, err := ms.Size(context.Background())
	require.NoError(t, err)
	require.Equal(t, int64(0), size, "store size after cancelled Append")
}

func TestTwoLedgersAlternate(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l1 := newTestLedger(t, hs)
	l2 := newTestLedger(t, hs)

	for i := range 20 {
		l := []*Ledger{l1, l2}[i%2]
		idx, err := l.Append(ctx, leafAt(i))
		require.NoError(t, err)
		require.Equal(t, int64(i), idx, "Append(%d) on ledger %d", i, i%2+1)
	}
	_, _, conflicts := hs.stats()
	require.Equal(t, 19, conflicts, "conflicts: every append after the first finds the other ledger went ahead")
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(20), rep.Size)
	leaves, err := l1.Leaves(ctx, 0, 20)
	require.NoError(t, err)
	for i, leaf := range leaves {
		require.Equal(t, leafAt(i), leaf, "Leaf(%d)", i)
	}
}

func TestTwoLedgersConcurrent(t *testing.T) {
	const ledgers, goroutines, per = 2, 4, 25
	const total = ledgers * goroutines * per
	ctx := context.Background()
	ms := NewMemStore()
	ls := make([]*Ledger, ledgers)
	for i := range ls {
		// Each conflict means the other ledger wrote, which it can do at most
		// total times: with this many retries no append can give up.
		ls[i] = newTestLedger(t, ms, WithConflictRetries(total))
	}

	type entry struct {
		idx  int64
		leaf []byte
	}
	results := make([][]entry, ledgers*goroutines)
	errs := make([]error, ledgers*goroutines)
	var wg sync.WaitGroup
	for w := range ledgers * goroutines {
		l := ls[w%ledgers]
		wg.Go(func() {
			for i := range per {
				leaf := fmt.Appendf(nil, "worker %d append %d", w, i)
				idx, err := l.Append(ctx, leaf)
				if err != nil {
					errs[w] = err
					return
				}
				results[w] = append(results[w], entry{idx, leaf})
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		require.NoError(t, err, "worker %d", w)
	}

	seen := make(map[int64]bool)
	for _, rs := range results {
		for _, e := range rs {
			require.False(t, seen[e.idx], "index %d returned twice", e.idx)
			seen[e.idx] = true
			got, err := ls[0].Leaf(ctx, e.idx)
			require.NoError(t, err)
			require.Equal(t, e.leaf, got, "Leaf(%d)", e.idx)
		}
	}
	require.Len(t, seen, total, "distinct indexes")
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(total), rep.Size, "Verify size")
}

func TestMaxBatchSplitsQueue(t *testing.T) {
	const queuedCallers = 5
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	g := newGate()
	hs.setHooks(func(call int) error { g.hold(call); return nil }, nil)
	l := newTestLedger(t, hs, WithMaxBatch(2))
	hook, queued := queuedCounter(queuedCallers)
	l.testHookQueued = hook

	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := l.Append(ctx, []byte("leader"))
		assert.NoError(t, err, "leader Append")
	})
	<-g.entered
	for i := range queuedCallers {
		wg.Go(func() {
			_, err := l.Append(ctx, leafAt(i))
			assert.NoError(t, err, "queued Append %d", i)
		})
	}
	waitN(queued, queuedCallers)
	close(g.release)
	wg.Wait()

	hs.mu.Lock()
	lens := append([]int(nil), hs.lens...)
	hs.mu.Unlock()
	require.Equal(t, []int{1, 2, 2, 1}, lens, "leaves per Store.Append with WithMaxBatch(2)")
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	require.Equal(t, int64(queuedCallers+1), rep.Size)
}

// lateCtx is a context whose cancellation shows only in Err, never on Done,
// so a test can decide deterministically which check observes it.
type lateCtx struct {
	context.Context
	mu  sync.Mutex
	err error
}

func (c *lateCtx) cancel() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = context.Canceled
}

func (c *lateCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func TestCancelledSuccessorPassesLeadOn(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	g := newGate()
	hs.setHooks(func(call int) error { g.hold(call); return nil }, nil)
	l := newTestLedger(t, hs)
	hook, queued := queuedCounter(2)
	l.testHookQueued = hook

	type result struct {
		idx int64
		err error
	}
	leader, successor, last := make(chan result, 1), make(chan result, 1), make(chan result, 1)
	go func() {
		idx, err := l.Append(ctx, []byte("leader"))
		leader <- result{idx, err}
	}()
	<-g.entered
	lc := &lateCtx{Context: ctx}
	go func() {
		idx, err := l.Append(lc, []byte("successor"))
		successor <- result{idx, err}
	}()
	waitN(queued, 1)
	go func() {
		idx, err := l.Append(ctx, []byte("last"))
		last <- result{idx, err}
	}()
	waitN(queued, 1)

	// The successor is chosen to commit next but finds its ctx cancelled:
	// it must leave without writing and pass the role on.
	lc.cancel()
	close(g.release)
	r := <-leader
	require.NoError(t, r.err)
	r = <-successor
	require.ErrorIs(t, r.err, context.Canceled, "Append of a cancelled successor")
	r = <-last
	require.NoError(t, r.err, "Append queued behind a cancelled successor")
	require.Equal(t, int64(1), r.idx, "index after the cancelled successor")
	leaves, err := l.Leaves(ctx, 0, 2)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("leader"), []byte("last")}, leaves)
}

// TestBatchIsolation checks that when the store refuses a batch of several
// callers' leaves because of one of them, only that caller fails: the
// others' leaves are written alone.
func TestBatchIsolation(t *testing.T) {
	const callers = 6
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs)
	hook, queued := queuedCounter(callers)
	l.testHookQueued = hook

	culprit := []byte("refused leaf")
	errRefused := errors.New("store refuses this leaf")
	g := newGate()
	hs.setHooks(func(call int) error {
		g.hold(call)
		return nil
	}, func(_ int, err error) error { return err })
	// The wrapper refuses every write holding the culprit leaf, before it
	// reaches the MemStore.
	refusing := &refuseStore{hookStore: hs, leaf: culprit, err: errRefused}
	l.store = refusing

	leafOf := func(i int) []byte {
		if i == 3 {
			return culprit
		}
		return fmt.Appendf(nil, "caller %d", i)
	}
	idx := make([]int64, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	wg.Go(func() { idx[0], errs[0] = l.Append(ctx, leafOf(0)) }) // the first committer, held by the gate
	<-g.entered
	for i := 1; i < callers; i++ {
		wg.Go(func() { idx[i], errs[i] = l.Append(ctx, leafOf(i)) })
	}
	waitN(queued, callers-1)
	close(g.release)
	wg.Wait()

	for i := range callers {
		if i == 3 {
			assert.ErrorIs(t, errs[i], errRefused, "Append(culprit)")
			continue
		}
		require.NoError(t, errs[i], "Append(caller %d) batched with a refused leaf", i)
		leaf, err := l.Leaf(ctx, idx[i])
		require.NoError(t, err)
		assert.Equal(t, string(leafOf(i)), string(leaf), "Leaf(%d) of caller %d", idx[i], i)
	}
	size, err := l.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(callers-1), size, "Size(): every leaf but the refused one")
	assert.Equal(t, []int{1, callers - 1, 1, 1, 1, 1, 1}, hs.lens, "leaves per store write: the first, the refused batch, then each caller alone")
	rep, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(callers-1), rep.Size)
}

// refuseStore fails every Append holding leaf, without storing anything.
type refuseStore struct {
	*hookStore
	leaf []byte
	err  error
}

func (r *refuseStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	for _, l := range leaves {
		if bytes.Equal(l, r.leaf) {
			r.hookStore.mu.Lock()
			r.hookStore.lens = append(r.hookStore.lens, len(leaves))
			r.hookStore.mu.Unlock()
			return r.err
		}
	}
	return r.hookStore.Append(ctx, start, leaves, hashes)
}

// TestBatchLandedDespiteError checks that a batch the store stored but
// reported as failed is not written again by the per-caller retry.
func TestBatchLandedDespiteError(t *testing.T) {
	const callers = 4
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs)
	hook, queued := queuedCounter(callers)
	l.testHookQueued = hook
	g := newGate()
	errLost := errors.New("connection reset after commit")
	hs.setHooks(func(call int) error { g.hold(call); return nil }, func(call int, err error) error {
		if call == 2 && err == nil {
			return errLost // the batch of the queued callers was stored
		}
		return err
	})
	idx := make([]int64, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	wg.Go(func() { idx[0], errs[0] = l.Append(ctx, leafAt(0)) })
	<-g.entered
	for i := 1; i < callers; i++ {
		wg.Go(func() { idx[i], errs[i] = l.Append(ctx, leafAt(i)) })
	}
	waitN(queued, callers-1)
	close(g.release)
	wg.Wait()
	seen := map[int64]bool{}
	for i := range callers {
		require.NoError(t, errs[i], "Append(caller %d)", i)
		leaf, err := l.Leaf(ctx, idx[i])
		require.NoError(t, err)
		assert.Equal(t, leafAt(i), leaf, "Leaf(%d) of caller %d", idx[i], i)
		seen[idx[i]] = true
	}
	assert.Len(t, seen, callers, "distinct indexes")
	calls, _, _ := hs.stats()
	assert.Equal(t, 2, calls, "store writes: no retry of a batch that landed")
	size, err := l.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(callers), size, "Size(): every leaf exactly once")
}
