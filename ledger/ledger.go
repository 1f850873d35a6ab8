package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrInvalidRange is returned (wrapped) when a proof or tree hash is asked for
// with an index or tree size that is negative, out of order, or beyond the
// current size of the log.
var ErrInvalidRange = errors.New("ledger: invalid range")

// ErrInvalidProof is returned (wrapped) by [CheckInclusion] and
// [CheckConsistency] when a proof does not prove what it is checked against.
var ErrInvalidProof = errors.New("ledger: invalid proof")

const (
	defaultMaxBatch        = 512
	defaultConflictRetries = 10
)

// Option configures a [Ledger]. An invalid option makes [New] fail.
type Option func(*config) error

type config struct {
	logger          *slog.Logger
	maxBatch        int
	signer          note.Signer
	conflictRetries int
	registerer      prometheus.Registerer
}

// WithMetrics registers the Ledger's Prometheus metrics with reg:
// oars_ledger_append_batch_leaves (leaves per store write, a histogram),
// oars_ledger_append_duration_seconds (store write latency) and
// oars_ledger_append_errors_total.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("ledger: nil metrics registerer")
		}
		c.registerer = reg
		return nil
	}
}

// WithLogger sets the logger the Ledger reports commits, conflicts and store
// failures to. The default discards everything. A nil logger is an error.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("ledger: nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithMaxBatch sets how many leaves group commit puts into one [Store.Append]
// call (default 512). A single [Ledger.AppendBatch] call larger than n is still
// written in one call, on its own. n must be at least 1.
func WithMaxBatch(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("ledger: max batch must be at least 1")
		}
		c.maxBatch = n
		return nil
	}
}

// WithCheckpointSigner sets the signer [Ledger.Checkpoint] signs with; its
// name is the checkpoint origin. See [NewCheckpointSigner]. A nil signer is
// an error.
func WithCheckpointSigner(s note.Signer) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("ledger: nil checkpoint signer")
		}
		c.signer = s
		return nil
	}
}

// WithConflictRetries sets how many times one batch is retried after the
// store reports [ErrConflict] because another writer appended first (default
// 10). n must not be negative; 0 means fail on the first conflict.
func WithConflictRetries(n int) Option {
	return func(c *config) error {
		if n < 0 {
			return errors.New("ledger: negative conflict retries")
		}
		c.conflictRetries = n
		return nil
	}
}

// Ledger is an append-only Merkle log over a [Store]. It assigns each leaf its
// index, computes the tree's stored hashes, serves proofs and signs
// checkpoints.
//
// A Ledger is safe for concurrent use by multiple goroutines, and several
// Ledgers (in one or many processes) may share one Store: appends stay linear
// because the store rejects a write at a stale size with [ErrConflict], after
// which the Ledger re-reads the store and retries. A Ledger starts no
// goroutines and needs no Close.
type Ledger struct {
	store   Store
	cfg     config
	metrics *metrics

	mu         sync.Mutex
	queue      []*request // appends waiting for a committer, in arrival order
	committing bool       // a committer (leader) is active

	// front is the right edge of the tree as this Ledger last saw it. It is
	// read and written only by the active committer (or New), which the
	// committing flag makes exclusive.
	front      frontier
	frontValid bool

	// testHookQueued, if set, is called with l.mu held after a request was
	// queued behind an active committer.
	testHookQueued func()
}

// request is one Append or AppendBatch call. Its state fields are guarded by
// Ledger.mu.
type request struct {
	leaves [][]byte
	rh     []tlog.Hash   // the record hashes of leaves
	wake   chan struct{} // receives one signal: the result is set, or lead is set
	state  requestState
	lead   bool // chosen to become the next committer
	first  int64
	err    error
}

type requestState int

const (
	queued requestState = iota // waiting in Ledger.queue
	taken                      // handed to a store write
	done                       // first/err are set
)

// New returns a Ledger over s. It reads the current size and right edge of
// the tree from s and fails if s cannot serve them, if s is nil or if an
// option is invalid.
func New(ctx context.Context, s Store, opts ...Option) (*Ledger, error) {
	if s == nil {
		return nil, errors.New("ledger: new: nil store")
	}
	cfg := config{
		logger:          slog.New(slog.DiscardHandler),
		maxBatch:        defaultMaxBatch,
		conflictRetries: defaultConflictRetries,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("ledger: new: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("ledger: new: %w", err)
		}
	}
	l := &Ledger{store: s, cfg: cfg}
	if cfg.registerer != nil {
		m, err := newMetrics(cfg.registerer)
		if err != nil {
			return nil, fmt.Errorf("ledger: new: %w", err)
		}
		l.metrics = m
	}
	if err := l.loadFrontier(ctx); err != nil {
		return nil, fmt.Errorf("ledger: new: %w", err)
	}
	return l, nil
}

// Append appends leaf to the log and returns its index. The leaf should be
// the exact bytes of one entry (for OARS, a canonical signed receipt or
// event); an empty leaf is allowed. leaf must not be modified until Append
// returns.
//
// Append is safe to call from many goroutines: concurrent appends are
// combined into one [Store.Append] call (group commit). It returns only after
// the store has durably accepted the batch holding leaf.
//
// If ctx is done before the leaf is handed to a store write, Append returns an
// error wrapping ctx.Err() and the leaf is not written. Once the leaf has been
// handed over, Append waits for the outcome of that write whatever ctx does:
// the write itself runs with ctx's values but without its cancellation, so
// one caller giving up cannot fail the others in its batch. Stores should
// bound their own I/O time.
//
// If the store fails, the caller gets the error (wrapped). When the store
// refuses a batch that combines several callers' leaves with an error other
// than [ErrConflict] (say, a duplicate receipt one of them sent), each
// caller's leaves are written again alone, so that only the callers whose
// leaves the store refuses get its error. An error from a store whose
// outcome is unknown (say, a lost connection after commit) does not prove
// the leaf was not stored: before retrying or reporting the error, the
// Ledger re-reads the store's size and the leaves at the index it wrote
// to, and reports success if they are there. Later appends always land at
// the right index.
func (l *Ledger) Append(ctx context.Context, leaf []byte) (int64, error) {
	return l.AppendBatch(ctx, [][]byte{leaf})
}

// AppendBatch appends leaves to the log as one contiguous run and returns the
// index of the first; leaves[i] gets index first+i. The run is written
// atomically: all of it or none. It behaves like [Ledger.Append] in every
// other way. An empty leaves is an error.
func (l *Ledger) AppendBatch(ctx context.Context, leaves [][]byte) (first int64, err error) {
	if len(leaves) == 0 {
		return 0, errors.New("ledger: append: no leaves")
	}
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ledger: append: %w", err)
	}
	// Hash the leaves here, before queueing: callers hash in parallel, and
	// the committer, which everyone waits for, only combines the hashes.
	// A single leaf's hash stays on the stack unless it must be queued.
	var one [1]tlog.Hash
	var rh []tlog.Hash
	if len(leaves) == 1 {
		one[0] = tlog.RecordHash(leaves[0])
	} else {
		rh = recordHashes(leaves)
	}
	l.mu.Lock()
	if !l.committing {
		// Fast path: no committer is active, so the queue is empty and
		// this call commits its own leaves as a batch of one, exactly as
		// the committer loop would, without a request to queue and wake.
		l.committing = true
		l.mu.Unlock()
		if rh == nil {
			first, err = l.commitAlone(ctx, leaves, one[:])
		} else {
			first, err = l.commitAlone(ctx, leaves, rh)
		}
		l.mu.Lock()
		l.handOffLocked()
		l.mu.Unlock()
		return first, err
	}
	if rh == nil {
		rh = []tlog.Hash{one[0]}
	}
	r := &request{leaves: leaves, rh: rh, wake: make(chan struct{}, 1)}
	l.queue = append(l.queue, r)
	if l.testHookQueued != nil {
		l.testHookQueued()
	}
	l.mu.Unlock()

	select {
	case <-r.wake:
	case <-ctx.Done():
		l.mu.Lock()
		if r.state == queued {
			l.removeLocked(r)
			if r.lead {
				// Chosen as the next committer but leaving: pass it on.
				l.handOffLocked()
			}
			l.mu.Unlock()
			return 0, fmt.Errorf("ledger: append: %w", ctx.Err())
		}
		l.mu.Unlock()
		<-r.wake // handed to a store write: wait for its outcome
	}

	l.mu.Lock()
	if r.state == done {
		l.mu.Unlock()
		return r.first, r.err
	}
	l.mu.Unlock()
	// Not done, so r.lead was set: this goroutine is now the committer.
	return l.lead(ctx, r)
}

// lead runs the committer loop for the goroutine that owns r: it writes
// batches from the head of the queue until r's own batch is done, then hands
// the committer role to the next queued request (or clears it).
func (l *Ledger) lead(ctx context.Context, r *request) (int64, error) {
	for {
		l.mu.Lock()
		if r.state == done {
			l.handOffLocked()
			l.mu.Unlock()
			return r.first, r.err
		}
		if err := ctx.Err(); err != nil {
			// r is still queued: nothing of it was handed over yet.
			l.removeLocked(r)
			l.handOffLocked()
			l.mu.Unlock()
			return 0, fmt.Errorf("ledger: append: %w", err)
		}
		batch := l.takeLocked()
		l.mu.Unlock()

		results := l.commit(ctx, batch)

		l.mu.Lock()
		for i, b := range batch {
			b.state = done
			b.first, b.err = results[i].first, results[i].err
			if b != r {
				signal(b.wake)
			}
		}
		l.mu.Unlock()
	}
}

// takeLocked removes and returns the requests at the head of the queue,
// at most cfg.maxBatch leaves in all but at least one request.
func (l *Ledger) takeLocked() []*request {
	n, total := 0, 0
	for _, q := range l.queue {
		if n > 0 && total+len(q.leaves) > l.cfg.maxBatch {
			break
		}
		total += len(q.leaves)
		n++
	}
	batch := make([]*request, n)
	copy(batch, l.queue[:n])
	for _, b := range batch {
		b.state = taken
	}
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	return batch
}

// handOffLocked makes the first queued request the next committer, or marks
// that no committer is active if the queue is empty.
func (l *Ledger) handOffLocked() {
	if len(l.queue) == 0 {
		l.committing = false
		return
	}
	next := l.queue[0]
	next.lead = true
	signal(next.wake)
}

func (l *Ledger) removeLocked(r *request) {
	for i, q := range l.queue {
		if q == r {
			copy(l.queue[i:], l.queue[i+1:])
			l.queue[len(l.queue)-1] = nil
			l.queue = l.queue[:len(l.queue)-1]
			return
		}
	}
}

// signal sends the one wake-up a request ever gets. The channel has room for
// it, so the send never blocks; the default case only guards against a bug
// turning into a deadlock.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// result is the outcome of one request of a committed batch.
type result struct {
	first int64
	err   error
}

// commitAlone writes the leaves of one caller to the store, as commit does
// for a batch of one request. Only the active committer calls it.
func (l *Ledger) commitAlone(ctx context.Context, leaves [][]byte, rh []tlog.Hash) (int64, error) {
	start, _, err := l.write(withoutCancel(ctx), leaves, rh, 1)
	if err != nil {
		return 0, err
	}
	return start, nil
}

// withoutCancel returns ctx without its cancellation: a store write, once
// begun, is waited for whatever the callers' contexts do. A context that
// can never be cancelled is returned as it is.
func withoutCancel(ctx context.Context) context.Context {
	if ctx.Done() == nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// commit writes the leaves of batch to the store and returns each request's
// result. Only the active committer calls it.
//
// When the store refuses a batch of several requests with an error other
// than a conflict (for example a duplicate receipt that only one of the
// callers sent), commit writes each request alone, in order, so that only
// the request the store refuses fails. Before any retry it checks whether
// the refused write landed after all (an error with an unknown outcome,
// such as a connection lost after commit), so that nothing is written
// twice.
func (l *Ledger) commit(ctx context.Context, batch []*request) []result {
	ctx = withoutCancel(ctx)
	results := make([]result, len(batch))
	leaves, rh := batch[0].leaves, batch[0].rh
	if len(batch) > 1 {
		leaves = make([][]byte, 0, l.cfg.maxBatch)
		rh = make([]tlog.Hash, 0, l.cfg.maxBatch)
		for _, b := range batch {
			leaves = append(leaves, b.leaves...)
			rh = append(rh, b.rh...)
		}
	}
	start, refused, err := l.write(ctx, leaves, rh, len(batch))
	if err == nil || !refused || len(batch) == 1 {
		next := start
		for i, b := range batch {
			if err != nil {
				results[i] = result{err: err}
				continue
			}
			results[i] = result{first: next}
			next += int64(len(b.leaves))
		}
		return results
	}
	l.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "ledger: store refused a batch, retrying each caller's leaves alone",
		slog.Int("callers", len(batch)))
	for i, b := range batch {
		start, _, err := l.write(ctx, b.leaves, b.rh, 1)
		if err != nil {
			start = 0
		}
		results[i] = result{first: start, err: err}
	}
	return results
}

// write writes leaves, whose record hashes are rh, to the store at the end
// of the log, retrying on conflicts, and returns the index of the first.
// When the store's Append fails with an error other than a conflict, write
// checks whether the leaves landed after all (see [Ledger.landed]) and
// succeeds if so; otherwise refused reports that case, start then being
// where it tried to write.
func (l *Ledger) write(ctx context.Context, leaves [][]byte, rh []tlog.Hash, callers int) (start int64, refused bool, err error) {
	for attempt := 0; ; attempt++ {
		if !l.frontValid {
			if err := l.loadFrontier(ctx); err != nil {
				return 0, false, fmt.Errorf("ledger: append: %w", err)
			}
		}
		// Extend the frontier in place: if anything fails below, it is
		// marked invalid and reloaded from the store before the next write.
		start := l.front.size
		hashes, err := l.front.extend(rh)
		if err != nil {
			l.frontValid = false
			return 0, false, fmt.Errorf("ledger: append: %w", err)
		}
		var began time.Time
		if l.metrics != nil {
			began = time.Now()
		}
		err = l.store.Append(ctx, start, leaves, hashes)
		if l.metrics != nil {
			l.metrics.commit(len(leaves), time.Since(began), err)
		}
		if err == nil {
			l.cfg.logger.LogAttrs(ctx, slog.LevelDebug, "ledger: committed",
				slog.Int64("start", start), slog.Int("leaves", len(leaves)), slog.Int("callers", callers))
			return start, false, nil
		}
		// Whatever happened, the store may now hold more than we think.
		l.frontValid = false
		if !errors.Is(err, ErrConflict) {
			l.cfg.logger.LogAttrs(ctx, slog.LevelError, "ledger: store append failed",
				slog.Int64("start", start), slog.Int("leaves", len(leaves)), slog.Any("error", err))
			if l.landed(ctx, start, leaves) {
				return start, false, nil
			}
			return start, true, fmt.Errorf("ledger: append: store: %w", err)
		}
		if attempt >= l.cfg.conflictRetries {
			l.cfg.logger.LogAttrs(ctx, slog.LevelError, "ledger: append gave up after conflicts",
				slog.Int("attempts", attempt+1))
			return 0, false, fmt.Errorf("ledger: append: %d conflicting writes in a row: %w", attempt+1, err)
		}
		l.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "ledger: append conflict, retrying",
			slog.Int64("start", start), slog.Int("attempt", attempt+1))
	}
}

// landed reports whether leaves are in the store at start, as they are
// after a write whose error hid a commit. It reloads the frontier, so the
// next write lands at the right index either way.
func (l *Ledger) landed(ctx context.Context, start int64, leaves [][]byte) bool {
	if err := l.loadFrontier(ctx); err != nil || l.front.size < start+int64(len(leaves)) {
		return false
	}
	stored, err := l.store.ReadLeaves(ctx, start, len(leaves))
	if err != nil || len(stored) != len(leaves) {
		return false
	}
	for i := range leaves {
		if !bytes.Equal(stored[i], leaves[i]) {
			return false
		}
	}
	l.cfg.logger.LogAttrs(ctx, slog.LevelWarn, "ledger: store reported an error, but the leaves were stored",
		slog.Int64("start", start), slog.Int("leaves", len(leaves)))
	return true
}

// loadFrontier reads the size and the right edge of the tree from the store.
func (l *Ledger) loadFrontier(ctx context.Context) error {
	size, err := l.store.Size(ctx)
	if err != nil {
		return fmt.Errorf("read size: %w", err)
	}
	if size < 0 {
		return errors.New("read size: store reported a negative size")
	}
	f := frontier{size: size}
	idx := f.indexes()
	hs, err := l.store.ReadHashes(ctx, idx)
	if err != nil {
		return fmt.Errorf("read tree edge: %w", err)
	}
	if len(hs) != len(idx) {
		return fmt.Errorf("read tree edge: store returned %d hashes, want %d", len(hs), len(idx))
	}
	for i, x := range idx {
		level, _ := tlog.SplitStoredHashIndex(x)
		f.hashes[level] = hs[i]
	}
	l.front, l.frontValid = f, true
	return nil
}

// Store returns the store under the Ledger. Use it to read (for example
// with [NewQuerier]); appending to it directly bypasses the Ledger's hashing
// and breaks the log.
func (l *Ledger) Store() Store { return l.store }

// Size returns the number of leaves in the log, as the store reports it (so
// it includes leaves other Ledgers sharing the store appended).
func (l *Ledger) Size(ctx context.Context) (int64, error) {
	n, err := l.store.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("ledger: size: %w", err)
	}
	return n, nil
}

// TreeHash returns the root hash of the tree of the first size leaves. The
// hash of the empty tree (size 0) is the SHA-256 of no bytes. It returns an
// error wrapping [ErrInvalidRange] if size is negative or beyond the log.
func (l *Ledger) TreeHash(ctx context.Context, size int64) (tlog.Hash, error) {
	if err := l.checkSize(ctx, size); err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger: tree hash: %w", err)
	}
	h, err := tlog.TreeHash(size, l.reader(ctx))
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ledger: tree hash: %w", err)
	}
	return h, nil
}

// Leaf returns a copy of the leaf at index. It returns an error wrapping
// [ErrOutOfRange] if index is negative or not yet in the log.
func (l *Ledger) Leaf(ctx context.Context, index int64) ([]byte, error) {
	if index < 0 {
		return nil, fmt.Errorf("ledger: leaf: negative index: %w", ErrOutOfRange)
	}
	ls, err := l.store.ReadLeaves(ctx, index, 1)
	if err != nil {
		return nil, fmt.Errorf("ledger: leaf: %w", err)
	}
	if len(ls) != 1 {
		return nil, fmt.Errorf("ledger: leaf: store returned %d leaves, want 1", len(ls))
	}
	return clone(ls[0]), nil
}

// Leaves returns copies of n leaves starting at index start. It returns an
// error wrapping [ErrOutOfRange] if start or n is negative or any of the
// leaves is not in the log. n == 0 yields an empty slice.
func (l *Ledger) Leaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	if start < 0 || n < 0 {
		return nil, fmt.Errorf("ledger: leaves: negative start or count: %w", ErrOutOfRange)
	}
	if n == 0 {
		return [][]byte{}, nil
	}
	ls, err := l.store.ReadLeaves(ctx, start, n)
	if err != nil {
		return nil, fmt.Errorf("ledger: leaves: %w", err)
	}
	if len(ls) != n {
		return nil, fmt.Errorf("ledger: leaves: store returned %d leaves, want %d", len(ls), n)
	}
	out := make([][]byte, n)
	for i, leaf := range ls {
		out[i] = clone(leaf)
	}
	return out, nil
}

// ProveInclusion returns the proof that the leaf at index is in the tree of
// the first treeSize leaves (RFC 6962 audit path). Check it with
// [CheckInclusion]. It returns an error wrapping [ErrInvalidRange] unless
// 0 <= index < treeSize <= size of the log.
func (l *Ledger) ProveInclusion(ctx context.Context, index, treeSize int64) (tlog.RecordProof, error) {
	if index < 0 || index >= treeSize {
		return nil, fmt.Errorf("ledger: prove inclusion: index %d not in tree of size %d: %w", index, treeSize, ErrInvalidRange)
	}
	if err := l.checkSize(ctx, treeSize); err != nil {
		return nil, fmt.Errorf("ledger: prove inclusion: %w", err)
	}
	p, err := tlog.ProveRecord(treeSize, index, l.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("ledger: prove inclusion: %w", err)
	}
	return p, nil
}

// ProveConsistency returns the proof that the tree of the first to leaves
// extends the tree of the first from leaves (RFC 6962 consistency proof).
// Check it with [CheckConsistency]. It returns an error wrapping
// [ErrInvalidRange] unless 1 <= from <= to <= size of the log (every tree
// extends the empty one, so there is nothing to prove for from == 0).
func (l *Ledger) ProveConsistency(ctx context.Context, from, to int64) (tlog.TreeProof, error) {
	if from < 1 || from > to {
		return nil, fmt.Errorf("ledger: prove consistency: from %d to %d: %w", from, to, ErrInvalidRange)
	}
	if err := l.checkSize(ctx, to); err != nil {
		return nil, fmt.Errorf("ledger: prove consistency: %w", err)
	}
	p, err := tlog.ProveTree(to, from, l.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("ledger: prove consistency: %w", err)
	}
	return p, nil
}

// checkSize reports an error wrapping ErrInvalidRange unless
// 0 <= size <= the store's size.
func (l *Ledger) checkSize(ctx context.Context, size int64) error {
	if size < 0 {
		return fmt.Errorf("negative tree size: %w", ErrInvalidRange)
	}
	n, err := l.store.Size(ctx)
	if err != nil {
		return fmt.Errorf("read size: %w", err)
	}
	if size > n {
		return fmt.Errorf("tree size %d beyond log size %d: %w", size, n, ErrInvalidRange)
	}
	return nil
}

func (l *Ledger) reader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs, err := l.store.ReadHashes(ctx, idx)
		if err != nil {
			return nil, err
		}
		if len(hs) != len(idx) {
			return nil, fmt.Errorf("store returned %d hashes, want %d", len(hs), len(idx))
		}
		return hs, nil
	})
}

// CheckInclusion reports whether proof shows that leaf is the leaf at index in
// the tree of size treeSize with root hash root. It returns nil if so, an
// error wrapping [ErrInvalidRange] unless 0 <= index < treeSize, and an error
// wrapping [ErrInvalidProof] if the proof does not hold.
func CheckInclusion(proof tlog.RecordProof, treeSize int64, root tlog.Hash, index int64, leaf []byte) error {
	if index < 0 || index >= treeSize {
		return fmt.Errorf("ledger: check inclusion: index %d not in tree of size %d: %w", index, treeSize, ErrInvalidRange)
	}
	if err := tlog.CheckRecord(proof, treeSize, root, index, tlog.RecordHash(leaf)); err != nil {
		return fmt.Errorf("ledger: check inclusion: %w: %w", ErrInvalidProof, err)
	}
	return nil
}

// CheckConsistency reports whether proof shows that the tree of size to with
// root toRoot extends the tree of size from with root fromRoot. It returns
// nil if so, an error wrapping [ErrInvalidRange] unless 1 <= from <= to, and
// an error wrapping [ErrInvalidProof] if the proof does not hold.
func CheckConsistency(proof tlog.TreeProof, to int64, toRoot tlog.Hash, from int64, fromRoot tlog.Hash) error {
	if from < 1 || from > to {
		return fmt.Errorf("ledger: check consistency: from %d to %d: %w", from, to, ErrInvalidRange)
	}
	if err := tlog.CheckTree(proof, to, toRoot, from, fromRoot); err != nil {
		return fmt.Errorf("ledger: check consistency: %w: %w", ErrInvalidProof, err)
	}
	return nil
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}
