package ledgertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"golang.org/x/mod/sumdb/tlog"
)

// Harness tells [RunHarness] how to make stores and which optional abilities
// the suite can exercise.
type Harness struct {
	// New returns a fresh, empty store and registers its cleanup with
	// t.Cleanup. It is required. New reports its own failures with
	// t.Fatal.
	New func(t *testing.T) ledger.Store

	// Reopen, if set, closes s and returns a new handle on the same data,
	// as a restarted process would open it. The suite no longer uses s
	// afterwards. If nil, the cases that reopen a store are skipped.
	Reopen func(t *testing.T, s ledger.Store) ledger.Store

	// StoresDuplicates reports that the store's Querier stores a
	// duplicate receipt without indexing it instead of refusing it, as a
	// plain Store answered by the scanning querier of [ledger.NewQuerier]
	// does. The Duplicates case then accepts either. Such a store cannot
	// decide races between writers that share it (two Guards executing
	// one approved action): use it with one writer only.
	StoresDuplicates bool
}

// Run runs every conformance case as a subtest of t, each on a fresh store
// from newStore. It is RunHarness with only [Harness.New] set.
func Run(t *testing.T, newStore func(t *testing.T) ledger.Store) {
	t.Helper()
	RunHarness(t, Harness{New: newStore})
}

// RunHarness runs every conformance case as a subtest of t, each on a fresh
// store from h.New, plus the cases that need h.Reopen when it is set and the
// query cases when the stores implement [ledger.Querier]. It fails t at once
// if h.New is nil.
func RunHarness(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("ledgertest: Harness.New is nil")
		return
	}
	for _, c := range storeCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
	t.Run("Query", func(t *testing.T) { runQueryCases(t, h) })
}

type storeCase struct {
	name string
	run  func(t *testing.T, h Harness)
}

var storeCases = []storeCase{
	{"EmptyStore", testEmptyStore},
	{"AppendRead", testAppendRead},
	{"AppendCopies", testAppendCopies},
	{"Batch", testBatch},
	{"Ordering", testOrdering},
	{"AppendConflict", testAppendConflict},
	{"BatchAtomicity", testBatchAtomicity},
	{"ReadOutOfRange", testReadOutOfRange},
	{"HashRoundTrip", testHashRoundTrip},
	{"LedgerConcurrent", testLedgerConcurrent},
	{"TwoLedgers", testTwoLedgers},
	{"Cancelled", testCancelled},
	{"Reopen", testReopen},
	{"Closed", testClosed},
}

// model is what a correct store holds after the appends the suite made: the
// leaves and the stored hashes, computed here with tlog, independently of
// the store.
type model struct {
	t      *testing.T // fails the test if the model cannot compute a hash
	leaves [][]byte
	hashes []tlog.Hash
}

func newModel(t *testing.T) *model { return &model{t: t} }

func (m *model) size() int64 { return int64(len(m.leaves)) }

// next returns the stored hashes that appending leaves to m adds, without
// changing m.
func (m *model) next(leaves [][]byte) []tlog.Hash {
	base := int64(len(m.hashes))
	var out []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			switch {
			case x >= 0 && x < base:
				hs[i] = m.hashes[x]
			case x >= base && x-base < int64(len(out)):
				hs[i] = out[x-base]
			default:
				return nil, fmt.Errorf("ledgertest: model has no hash %d", x)
			}
		}
		return hs, nil
	})
	for i, leaf := range leaves {
		hs, err := tlog.StoredHashes(m.size()+int64(i), leaf, r)
		if err != nil {
			// Unreachable: every hash tlog asks for was computed above.
			m.t.Fatalf("ledgertest: model: %v", err)
		}
		out = append(out, hs...)
	}
	return out
}

// commit records that leaves with hashes hs were appended.
func (m *model) commit(leaves [][]byte, hs []tlog.Hash) {
	for _, l := range leaves {
		m.leaves = append(m.leaves, bytes.Clone(l))
	}
	m.hashes = append(m.hashes, hs...)
}

// root returns the root hash of the tree of the first n leaves.
func (m *model) root(n int64) tlog.Hash {
	h, err := tlog.TreeHash(n, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		hs := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			if x < 0 || x >= int64(len(m.hashes)) {
				return nil, fmt.Errorf("ledgertest: model has no hash %d", x)
			}
			hs[i] = m.hashes[x]
		}
		return hs, nil
	}))
	if err != nil {
		m.t.Fatalf("ledgertest: model: root of %d: %v", n, err)
	}
	return h
}

// modelOf builds the model of a log holding leaves.
func modelOf(t *testing.T, leaves [][]byte) *model {
	m := newModel(t)
	m.commit(leaves, m.next(leaves))
	return m
}

// appendModel appends leaves to s at m's size with the right hashes and
// records them in m. It fails the test if the store refuses.
func appendModel(t *testing.T, ctx context.Context, s ledger.Store, m *model, leaves [][]byte) {
	t.Helper()
	hs := m.next(leaves)
	if err := s.Append(ctx, m.size(), leaves, hs); err != nil {
		t.Fatalf("Append(start %d, %d leaves) = %v, want nil", m.size(), len(leaves), err)
	}
	m.commit(leaves, hs)
}

// hashIndexes returns the storage indexes [lo, hi).
func hashIndexes(lo, hi int64) []int64 {
	idx := make([]int64, 0, hi-lo)
	for i := lo; i < hi; i++ {
		idx = append(idx, i)
	}
	return idx
}

// checkStore reports every difference between s and m: size, every leaf and
// every stored hash.
func checkStore(t *testing.T, ctx context.Context, s ledger.Store, m *model) {
	t.Helper()
	size, err := s.Size(ctx)
	if err != nil {
		t.Errorf("Size() = %v, want %d", err, m.size())
		return
	}
	if size != m.size() {
		t.Errorf("Size() = %d, want %d", size, m.size())
		return
	}
	leaves, err := s.ReadLeaves(ctx, 0, len(m.leaves))
	switch {
	case err != nil:
		t.Errorf("ReadLeaves(0, %d) = %v, want nil error", len(m.leaves), err)
	case len(leaves) != len(m.leaves):
		t.Errorf("ReadLeaves(0, %d) returned %d leaves, want %d", len(m.leaves), len(leaves), len(m.leaves))
	default:
		for i := range leaves {
			if !bytes.Equal(leaves[i], m.leaves[i]) {
				t.Errorf("ReadLeaves(0, %d)[%d] = %s, want %s", len(m.leaves), i, short(leaves[i]), short(m.leaves[i]))
			}
		}
	}
	idx := hashIndexes(0, int64(len(m.hashes)))
	hs, err := s.ReadHashes(ctx, idx)
	switch {
	case err != nil:
		t.Errorf("ReadHashes(0..%d) = %v, want nil error", len(idx)-1, err)
	case len(hs) != len(idx):
		t.Errorf("ReadHashes(0..%d) returned %d hashes, want %d", len(idx)-1, len(hs), len(idx))
	default:
		for i := range hs {
			if hs[i] != m.hashes[i] {
				t.Errorf("ReadHashes(...)[%d] = %v, want %v", i, hs[i], m.hashes[i])
			}
		}
	}
}

// checkVerify runs ledger.Verify over s and compares with m.
func checkVerify(t *testing.T, ctx context.Context, s ledger.Store, m *model) {
	t.Helper()
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		t.Errorf("ledger.Verify() = %v, want nil", err)
		return
	}
	if rep.Size != m.size() || rep.Root != m.root(m.size()) {
		t.Errorf("ledger.Verify() = size %d root %v, want size %d root %v", rep.Size, rep.Root, m.size(), m.root(m.size()))
	}
}

// short formats a leaf for a failure message without flooding the log.
func short(b []byte) string {
	if b == nil {
		return "nil"
	}
	if len(b) > 48 {
		return fmt.Sprintf("%q...(%d bytes)", b[:48], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// testLeaf returns leaf i of the plain (non-receipt) test leaves. Some are
// empty or binary, to catch stores that treat leaves as text.
func testLeaf(i int) []byte {
	switch {
	case i%11 == 3:
		return []byte{}
	case i%7 == 2:
		return []byte{0x00, 0xff, byte(i), 0xfe, 0x00, '\n', 0xc3, 0x28}
	}
	return fmt.Appendf(nil, "ledgertest leaf %d", i)
}

func testLeaves(from, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = testLeaf(from + i)
	}
	return out
}

func testEmptyStore(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	size, err := s.Size(ctx)
	if err != nil || size != 0 {
		t.Errorf("Size() = %d, %v, want 0, nil", size, err)
	}
	leaves, err := s.ReadLeaves(ctx, 0, 0)
	if err != nil || len(leaves) != 0 {
		t.Errorf("ReadLeaves(0, 0) = %d leaves, %v, want 0 leaves, nil", len(leaves), err)
	}
	if _, err := s.ReadLeaves(ctx, 0, 1); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("ReadLeaves(0, 1) on an empty store = %v, want an error wrapping ErrOutOfRange", err)
	}
	hs, err := s.ReadHashes(ctx, nil)
	if err != nil || len(hs) != 0 {
		t.Errorf("ReadHashes(nil) = %d hashes, %v, want 0 hashes, nil", len(hs), err)
	}
	if _, err := s.ReadHashes(ctx, []int64{0}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("ReadHashes([0]) on an empty store = %v, want an error wrapping ErrOutOfRange", err)
	}
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		t.Errorf("ledger.Verify() on an empty store = %v, want nil", err)
	} else if want := newModel(t).root(0); rep.Size != 0 || rep.Root != want {
		t.Errorf("ledger.Verify() on an empty store = size %d root %v, want 0 %v", rep.Size, rep.Root, want)
	}
}

func testAppendRead(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	m := newModel(t)
	appendModel(t, ctx, s, m, [][]byte{[]byte("first")})
	appendModel(t, ctx, s, m, [][]byte{{}, []byte{0x00, 0xff, 0x00}, []byte("{\"spec\":\"x\"}\n"), big})
	appendModel(t, ctx, s, m, [][]byte{[]byte("last")})
	checkStore(t, ctx, s, m)

	// Every sub-range reads back exactly, including empty ranges at the end.
	for start := int64(0); start <= m.size(); start++ {
		for n := 0; int64(n) <= m.size()-start; n++ {
			got, err := s.ReadLeaves(ctx, start, n)
			if err != nil {
				t.Errorf("ReadLeaves(%d, %d) = %v, want nil error", start, n, err)
				continue
			}
			if len(got) != n {
				t.Errorf("ReadLeaves(%d, %d) returned %d leaves, want %d", start, n, len(got), n)
				continue
			}
			for i := range got {
				if want := m.leaves[start+int64(i)]; !bytes.Equal(got[i], want) {
					t.Errorf("ReadLeaves(%d, %d)[%d] = %s, want %s", start, n, i, short(got[i]), short(want))
				}
			}
		}
	}
	checkVerify(t, ctx, s, m)
}

func testAppendCopies(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)
	// One backing array for all leaves, as a caller reusing a buffer has.
	buf := []byte("aaaabbbbcccc")
	leaves := [][]byte{buf[0:4], buf[4:8], buf[8:12]}
	hs := m.next(leaves)
	want := append([]tlog.Hash(nil), hs...)
	if err := s.Append(ctx, 0, leaves, hs); err != nil {
		t.Fatalf("Append(0, 3 leaves) = %v, want nil", err)
	}
	m.commit(leaves, want)
	for i := range buf {
		buf[i] = 'X'
	}
	for i := range hs {
		hs[i] = tlog.Hash{}
	}
	leaves[0] = []byte("changed")
	checkStore(t, ctx, s, m)

	// Appending more must not disturb what earlier reads returned.
	got, err := s.ReadLeaves(ctx, 0, 3)
	if err != nil {
		t.Fatalf("ReadLeaves(0, 3) = %v, want nil error", err)
	}
	snapshot := make([][]byte, len(got))
	for i, l := range got {
		snapshot[i] = bytes.Clone(l)
	}
	appendModel(t, ctx, s, m, testLeaves(0, 20))
	for i := range got {
		if !bytes.Equal(got[i], snapshot[i]) {
			t.Errorf("leaf %d returned by ReadLeaves changed to %s after a later Append, want %s", i, short(got[i]), short(snapshot[i]))
		}
	}
}

func testBatch(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)
	appendModel(t, ctx, s, m, testLeaves(0, 300))
	checkStore(t, ctx, s, m)
	appendModel(t, ctx, s, m, testLeaves(300, 1))
	appendModel(t, ctx, s, m, testLeaves(301, 211))
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
}

func testOrdering(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)
	next := 0
	for _, n := range []int{1, 1, 2, 3, 5, 8, 13, 21, 1, 34, 2, 55, 1} {
		appendModel(t, ctx, s, m, testLeaves(next, n))
		next += n
		size, err := s.Size(ctx)
		if err != nil || size != m.size() {
			t.Errorf("Size() after appending %d leaves = %d, %v, want %d, nil", next, size, err, m.size())
		}
		// The leaves just appended are at their indexes.
		got, err := s.ReadLeaves(ctx, m.size()-int64(n), n)
		if err != nil || len(got) != n {
			t.Errorf("ReadLeaves(%d, %d) = %d leaves, %v, want %d leaves, nil", m.size()-int64(n), n, len(got), err, n)
			continue
		}
		for i := range got {
			if want := testLeaf(next - n + i); !bytes.Equal(got[i], want) {
				t.Errorf("ReadLeaves(%d, %d)[%d] = %s, want %s", m.size()-int64(n), n, i, short(got[i]), short(want))
			}
		}
	}
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
}

// hashesAt returns plausible stored hashes for appending leaves at start:
// the right number, with values that identify them as the suite's.
func hashesAt(start int64, leaves [][]byte) []tlog.Hash {
	n := tlog.StoredHashCount(start+int64(len(leaves))) - tlog.StoredHashIndex(0, start)
	hs := make([]tlog.Hash, n)
	for i := range hs {
		hs[i][0], hs[i][1] = 0xee, byte(i)
	}
	return hs
}

func testAppendConflict(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)

	stray := [][]byte{[]byte("stray")}
	if err := s.Append(ctx, 1, stray, hashesAt(1, stray)); !errors.Is(err, ledger.ErrConflict) {
		t.Errorf("Append(start 1) on an empty store = %v, want an error wrapping ErrConflict", err)
	}
	checkStore(t, ctx, s, m)

	appendModel(t, ctx, s, m, testLeaves(0, 3))
	for _, start := range []int64{0, 1, 2, 4, 5, 1 << 40} {
		if err := s.Append(ctx, start, stray, hashesAt(start, stray)); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("Append(start %d) at size 3 = %v, want an error wrapping ErrConflict", start, err)
		}
	}
	checkStore(t, ctx, s, m)

	// The right start still works after the refusals.
	appendModel(t, ctx, s, m, testLeaves(3, 2))
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
}

func testBatchAtomicity(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)
	appendModel(t, ctx, s, m, testLeaves(0, 5))

	batch := testLeaves(100, 9)
	for _, start := range []int64{2, 4, 6, 13} {
		if err := s.Append(ctx, start, batch, hashesAt(start, batch)); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("Append(start %d, 9 leaves) at size 5 = %v, want an error wrapping ErrConflict", start, err)
		}
	}
	// Nothing of the refused batches is visible: not the leaves past the
	// size, not their hashes, and the overlapped leaves are unchanged.
	if _, err := s.ReadLeaves(ctx, 5, 1); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("ReadLeaves(5, 1) after refused batches = %v, want an error wrapping ErrOutOfRange", err)
	}
	if _, err := s.ReadHashes(ctx, []int64{int64(len(m.hashes))}); !errors.Is(err, ledger.ErrOutOfRange) {
		t.Errorf("ReadHashes([%d]) after refused batches = %v, want an error wrapping ErrOutOfRange", len(m.hashes), err)
	}
	checkStore(t, ctx, s, m)

	// A whole batch at the right start lands whole.
	appendModel(t, ctx, s, m, batch)
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
}

func testReadOutOfRange(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	m := newModel(t)
	appendModel(t, ctx, s, m, testLeaves(0, 6))
	count := int64(len(m.hashes))

	leafReads := []struct {
		name  string
		start int64
		n     int
	}{
		{"start beyond size", 7, 1},
		{"start beyond size, n 0", 7, 0},
		{"start at size", 6, 1},
		{"n past size", 4, 3},
		{"n past size from 0", 0, 7},
		{"negative start", -1, 1},
		{"negative start, n 0", -1, 0},
		{"negative n", 0, -1},
		{"huge start", math.MaxInt64, 1},
		{"huge n", 1, math.MaxInt},
	}
	for _, tt := range leafReads {
		t.Run("ReadLeaves/"+tt.name, func(t *testing.T) {
			got, err := s.ReadLeaves(ctx, tt.start, tt.n)
			if !errors.Is(err, ledger.ErrOutOfRange) {
				t.Errorf("ReadLeaves(%d, %d) = %d leaves, %v, want an error wrapping ErrOutOfRange", tt.start, tt.n, len(got), err)
			}
		})
	}

	hashReads := []struct {
		name string
		idx  []int64
	}{
		{"first missing", []int64{count}},
		{"valid then missing", []int64{0, 1, count}},
		{"missing then valid", []int64{count + 5, 0}},
		{"negative", []int64{-1}},
		{"huge", []int64{math.MaxInt64}},
	}
	for _, tt := range hashReads {
		t.Run("ReadHashes/"+tt.name, func(t *testing.T) {
			got, err := s.ReadHashes(ctx, tt.idx)
			if !errors.Is(err, ledger.ErrOutOfRange) {
				t.Errorf("ReadHashes(%v) = %d hashes, %v, want an error wrapping ErrOutOfRange", tt.idx, len(got), err)
			}
		})
	}

	// The last valid ones still read.
	if got, err := s.ReadLeaves(ctx, 5, 1); err != nil || len(got) != 1 || !bytes.Equal(got[0], m.leaves[5]) {
		t.Errorf("ReadLeaves(5, 1) = %d leaves, %v, want leaf 5", len(got), err)
	}
	if got, err := s.ReadLeaves(ctx, 6, 0); err != nil || len(got) != 0 {
		t.Errorf("ReadLeaves(6, 0) = %d leaves, %v, want 0 leaves, nil", len(got), err)
	}
	if got, err := s.ReadHashes(ctx, []int64{count - 1}); err != nil || len(got) != 1 || got[0] != m.hashes[count-1] {
		t.Errorf("ReadHashes([%d]) = %v, %v, want the last stored hash", count-1, got, err)
	}
}

func testHashRoundTrip(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	// Stores never compute or check hashes: whatever is given is stored.
	leaves := testLeaves(0, 8)
	hs := make([]tlog.Hash, tlog.StoredHashCount(8))
	for i := range hs {
		for j := range hs[i] {
			hs[i][j] = byte(i*31 + j*7 + 1)
		}
	}
	hs[3] = tlog.Hash{}                  // all zero bytes
	hs[4] = tlog.Hash{0: 0x00, 31: 0xff} // leading and trailing bytes
	hs[5] = tlog.Hash(bytes.Repeat([]byte{0xff}, 32))
	if err := s.Append(ctx, 0, leaves, hs); err != nil {
		t.Fatalf("Append(0, 8 leaves, chosen hashes) = %v, want nil", err)
	}
	idx := []int64{int64(len(hs)) - 1, 0, 5, 5, 3, 4, 1, 0}
	got, err := s.ReadHashes(ctx, idx)
	if err != nil || len(got) != len(idx) {
		t.Fatalf("ReadHashes(%v) = %d hashes, %v, want %d hashes, nil", idx, len(got), err, len(idx))
	}
	for i, x := range idx {
		if got[i] != hs[x] {
			t.Errorf("ReadHashes(%v)[%d] (index %d) = %v, want %v", idx, i, x, got[i], hs[x])
		}
	}
	all, err := s.ReadHashes(ctx, hashIndexes(0, int64(len(hs))))
	if err != nil || len(all) != len(hs) {
		t.Fatalf("ReadHashes(all) = %d hashes, %v, want %d hashes, nil", len(all), err, len(hs))
	}
	for i := range hs {
		if all[i] != hs[i] {
			t.Errorf("ReadHashes(all)[%d] = %v, want %v", i, all[i], hs[i])
		}
	}
}

// appendConcurrently starts writers goroutines per ledger, each appending
// perWriter leaves, and returns the index each leaf got, keyed by leaf.
func appendConcurrently(t *testing.T, ctx context.Context, ls []*ledger.Ledger, writers, perWriter int) map[string]int64 {
	t.Helper()
	var (
		mu   sync.Mutex
		got  = make(map[string]int64)
		wg   sync.WaitGroup
		errs = make(chan error, len(ls)*writers)
	)
	for li, l := range ls {
		for w := range writers {
			wg.Go(func() {
				for i := range perWriter {
					leaf := fmt.Sprintf("ledgertest ledger %d writer %d leaf %d", li, w, i)
					idx, err := l.Append(ctx, []byte(leaf))
					if err != nil {
						errs <- fmt.Errorf("Ledger.Append(%q) = %w", leaf, err)
						return
					}
					mu.Lock()
					got[leaf] = idx
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("%v, want nil", err)
	}
	return got
}

// checkLinear checks that the store holds exactly the leaves in got at the
// indexes they were given, verifies the log and checks proofs over it, and
// returns the model of the log.
func checkLinear(t *testing.T, ctx context.Context, s ledger.Store, l *ledger.Ledger, got map[string]int64, total int) *model {
	t.Helper()
	if len(got) != total {
		t.Errorf("%d appends succeeded, want %d", len(got), total)
	}
	size, err := s.Size(ctx)
	if err != nil || size != int64(total) {
		t.Fatalf("Size() after %d concurrent appends = %d, %v, want %d, nil", total, size, err, total)
	}
	stored, err := s.ReadLeaves(ctx, 0, total)
	if err != nil || len(stored) != total {
		t.Fatalf("ReadLeaves(0, %d) = %d leaves, %v, want %d leaves, nil", total, len(stored), err, total)
	}
	seen := make(map[int64]string, len(got))
	for leaf, idx := range got {
		if prev, dup := seen[idx]; dup {
			t.Errorf("Ledger.Append gave index %d to both %q and %q", idx, prev, leaf)
		}
		seen[idx] = leaf
		if idx < 0 || idx >= int64(total) {
			t.Errorf("Ledger.Append(%q) = %d, want an index in [0, %d)", leaf, idx, total)
			continue
		}
		if string(stored[idx]) != leaf {
			t.Errorf("leaf at index %d = %s, want %q (the index Ledger.Append returned for it)", idx, short(stored[idx]), leaf)
		}
	}

	m := modelOf(t, stored)
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
	checkProofs(t, ctx, l, m)
	return m
}

// checkProofs checks inclusion and consistency proofs served by l against
// the roots of m, which the suite computed from the leaves alone.
func checkProofs(t *testing.T, ctx context.Context, l *ledger.Ledger, m *model) {
	t.Helper()
	n := m.size()
	if n == 0 {
		return
	}
	root := m.root(n)
	if got, err := l.TreeHash(ctx, n); err != nil || got != root {
		t.Errorf("Ledger.TreeHash(%d) = %v, %v, want %v", n, got, err, root)
	}
	for _, i := range []int64{0, 1, n / 3, n / 2, n - 2, n - 1} {
		if i < 0 {
			continue
		}
		for _, size := range []int64{i + 1, (i + 1 + n) / 2, n} {
			p, err := l.ProveInclusion(ctx, i, size)
			if err != nil {
				t.Errorf("Ledger.ProveInclusion(%d, %d) = %v, want nil", i, size, err)
				continue
			}
			if err := ledger.CheckInclusion(p, size, m.root(size), i, m.leaves[i]); err != nil {
				t.Errorf("CheckInclusion(proof of %d in %d) = %v, want nil", i, size, err)
			}
		}
	}
	for _, from := range []int64{1, 2, 7, n / 2, n - 1, n} {
		if from < 1 || from > n {
			continue
		}
		p, err := l.ProveConsistency(ctx, from, n)
		if err != nil {
			t.Errorf("Ledger.ProveConsistency(%d, %d) = %v, want nil", from, n, err)
			continue
		}
		if err := ledger.CheckConsistency(p, n, root, from, m.root(from)); err != nil {
			t.Errorf("CheckConsistency(%d, %d) = %v, want nil", from, n, err)
		}
	}
}

func testLedgerConcurrent(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() = %v, want nil", err)
	}
	const writers, perWriter = 16, 25
	got := appendConcurrently(t, ctx, []*ledger.Ledger{l}, writers, perWriter)
	checkLinear(t, ctx, s, l, got, writers*perWriter)
}

func testTwoLedgers(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	const writers, perWriter = 8, 20
	total := 2 * writers * perWriter
	// Each conflict one Ledger sees means the other made progress, so
	// total retries always suffice.
	ls := make([]*ledger.Ledger, 2)
	for i := range ls {
		l, err := ledger.New(ctx, s, ledger.WithConflictRetries(total))
		if err != nil {
			t.Fatalf("ledger.New() = %v, want nil", err)
		}
		ls[i] = l
	}
	got := appendConcurrently(t, ctx, ls, writers, perWriter)
	checkLinear(t, ctx, s, ls[1], got, total)
}

func testCancelled(t *testing.T, h Harness) {
	s := h.New(t)
	live := t.Context()
	m := newModel(t)
	appendModel(t, live, s, m, testLeaves(0, 3))

	ctx, cancel := context.WithCancel(live)
	cancel()
	if _, err := s.Size(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Size(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	if _, err := s.ReadLeaves(ctx, 0, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadLeaves(cancelled ctx, 0, 1) = %v, want an error wrapping context.Canceled", err)
	}
	if _, err := s.ReadHashes(ctx, []int64{0}); !errors.Is(err, context.Canceled) {
		t.Errorf("ReadHashes(cancelled ctx, [0]) = %v, want an error wrapping context.Canceled", err)
	}

	more := testLeaves(3, 2)
	hs := m.next(more)
	err := s.Append(ctx, m.size(), more, hs)
	switch {
	case err == nil:
		// Allowed for a store that cannot abandon a write; then it is stored.
		m.commit(more, hs)
	case !errors.Is(err, context.Canceled):
		t.Errorf("Append(cancelled ctx) = %v, want nil or an error wrapping context.Canceled", err)
	}
	checkStore(t, live, s, m)

	// The store is still usable with a live context.
	appendModel(t, live, s, m, testLeaves(5, 1))
	checkStore(t, live, s, m)
}

func testReopen(t *testing.T, h Harness) {
	if h.Reopen == nil {
		t.Skip("Harness.Reopen is nil: skipping reopen checks")
	}
	ctx := t.Context()
	s := h.New(t)
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() = %v, want nil", err)
	}
	fx := newFixture(0)
	leaves := fx.leaves()
	half := len(leaves) / 2
	if _, err := l.AppendBatch(ctx, leaves[:half]); err != nil {
		t.Fatalf("Ledger.AppendBatch(%d leaves) = %v, want nil", half, err)
	}
	for _, leaf := range leaves[half:] {
		if _, err := l.Append(ctx, leaf); err != nil {
			t.Fatalf("Ledger.Append() = %v, want nil", err)
		}
	}
	m := modelOf(t, leaves)
	checkStore(t, ctx, s, m)

	s = h.Reopen(t, s)
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
	if q, ok := s.(ledger.Querier); ok {
		fx.setIndexes(0)
		checkReceiptByID(t, ctx, q, fx)
		checkActionReceipts(t, ctx, q, fx)
	}

	// Appends continue where the log left off, through a new Ledger.
	l, err = ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() after reopening = %v, want nil", err)
	}
	more := testLeaves(0, 10)
	for i, leaf := range more {
		idx, err := l.Append(ctx, leaf)
		if err != nil || idx != m.size()+int64(i) {
			t.Errorf("Ledger.Append() after reopening = %d, %v, want %d, nil", idx, err, m.size()+int64(i))
		}
	}
	m.commit(more, m.next(more))
	checkStore(t, ctx, s, m)

	s = h.Reopen(t, s)
	checkStore(t, ctx, s, m)
	checkVerify(t, ctx, s, m)
	l, err = ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() after reopening twice = %v, want nil", err)
	}
	checkProofs(t, ctx, l, m)
}

func testClosed(t *testing.T, h Harness) {
	ctx := t.Context()
	s := h.New(t)
	c, ok := s.(io.Closer)
	if !ok {
		t.Skip("store does not implement io.Closer: skipping use-after-close checks")
	}
	m := newModel(t)
	appendModel(t, ctx, s, m, testLeaves(0, 3))
	if err := c.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	if size, err := s.Size(ctx); err == nil {
		t.Errorf("Size() after Close = %d, nil, want an error", size)
	}
	if got, err := s.ReadLeaves(ctx, 0, 1); err == nil {
		t.Errorf("ReadLeaves(0, 1) after Close = %d leaves, nil, want an error", len(got))
	}
	if got, err := s.ReadHashes(ctx, []int64{0}); err == nil {
		t.Errorf("ReadHashes([0]) after Close = %d hashes, nil, want an error", len(got))
	}
	more := testLeaves(3, 1)
	if err := s.Append(ctx, m.size(), more, m.next(more)); err == nil {
		t.Errorf("Append() after Close = nil, want an error")
	}
	if q, ok := s.(ledger.Querier); ok {
		if _, _, err := q.ListReceipts(ctx, ledger.Query{}); err == nil {
			t.Errorf("ListReceipts() after Close = nil error, want an error")
		}
	}
}
