package ledgertest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/ledger/ledgertest"
	"golang.org/x/mod/sumdb/tlog"
)

func TestMemStore(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store { return ledger.NewMemStore() })
}

// TestHarnessReopen runs the reopen cases with a harness whose "reopen"
// hands back the same MemStore, as a persistent store would hand back the
// same data.
func TestHarnessReopen(t *testing.T) {
	ledgertest.RunHarness(t, ledgertest.Harness{
		New:    func(t *testing.T) ledger.Store { return ledger.NewMemStore() },
		Reopen: func(t *testing.T, s ledger.Store) ledger.Store { return s },
	})
}

// naiveStore is a small Store whose faults can be switched on, to check that
// the suite notices each of them.
type naiveStore struct {
	fault string

	mu     sync.Mutex
	leaves [][]byte
	hashes []tlog.Hash
	closed bool
}

func (s *naiveStore) Size(ctx context.Context) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return int64(len(s.leaves)), nil
}

func (s *naiveStore) check(ctx context.Context) error {
	if s.fault != "ignore ctx" {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed && s.fault != "works after close" {
		return errors.New("naive: closed")
	}
	return nil
}

func (s *naiveStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

func (s *naiveStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if start != int64(len(s.leaves)) {
		switch s.fault {
		case "no conflict check":
			// Append anyway.
		case "partial batch":
			if start > int64(len(s.leaves)) && len(leaves) > 1 {
				s.leaves = append(s.leaves, bytes.Clone(leaves[0]))
			}
			return fmt.Errorf("naive: %w", ledger.ErrConflict)
		default:
			return fmt.Errorf("naive: %w", ledger.ErrConflict)
		}
	}
	for _, l := range leaves {
		if s.fault == "no copy" {
			s.leaves = append(s.leaves, l)
		} else {
			s.leaves = append(s.leaves, bytes.Clone(l))
		}
	}
	if s.fault == "drops last hash" && len(hashes) > 1 {
		hashes = hashes[:len(hashes)-1]
	}
	s.hashes = append(s.hashes, hashes...)
	return nil
}

func (s *naiveStore) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	size := int64(len(s.leaves))
	if s.fault == "short reads" {
		start = max(0, min(start, size))
		end := max(start, min(size, start+int64(max(n, 0))))
		return slices.Clone(s.leaves[start:end]), nil
	}
	if start < 0 || n < 0 || start > size || int64(n) > size-start {
		return nil, fmt.Errorf("naive: %w", ledger.ErrOutOfRange)
	}
	out := slices.Clone(s.leaves[start : start+int64(n)])
	if s.fault == "empty leaf as nil" {
		for i := range out {
			if len(out[i]) == 0 {
				out[i] = []byte("<nil>")
			}
		}
	}
	return out, nil
}

func (s *naiveStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fault == "sorted hash reads" {
		indexes = slices.Clone(indexes)
		slices.Sort(indexes)
		indexes = slices.Compact(indexes)
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(s.hashes)) {
			return nil, fmt.Errorf("naive: %w", ledger.ErrOutOfRange)
		}
		out[i] = s.hashes[x]
	}
	return out, nil
}

// brokenQuerier is a MemStore whose queries have a switchable fault.
type brokenQuerier struct {
	*ledger.MemStore
	fault string
}

func (b *brokenQuerier) ReceiptByID(ctx context.Context, id string) (ledger.Record, error) {
	if b.fault == "prefix ids" {
		// Finds the first receipt whose id starts with id, as a careless
		// LIKE query would.
		recs, _, err := b.MemStore.ListReceipts(ctx, ledger.Query{Limit: ledger.MaxPageSize})
		if err != nil {
			return ledger.Record{}, err
		}
		for _, r := range recs {
			h, _ := ledger.ParseHeader(r.Leaf)
			if strings.HasPrefix(h.ReceiptID, id) {
				return r, nil
			}
		}
		return ledger.Record{}, ledger.ErrNotFound
	}
	return b.MemStore.ReceiptByID(ctx, id)
}

func (b *brokenQuerier) ActionReceipts(ctx context.Context, id string) ([]ledger.Record, error) {
	recs, err := b.MemStore.ActionReceipts(ctx, id)
	if b.fault == "action in index order" {
		slices.SortFunc(recs, func(x, y ledger.Record) int { return int(x.Index - y.Index) })
	}
	return recs, err
}

func (b *brokenQuerier) ListReceipts(ctx context.Context, q ledger.Query) ([]ledger.Record, string, error) {
	switch b.fault {
	case "lenient cursor":
		if _, _, err := b.MemStore.ListReceipts(ctx, q); err != nil {
			q.Cursor = ""
		}
	case "inclusive until":
		if !q.Until.IsZero() {
			q.Until = q.Until.Add(1)
		}
	}
	recs, next, err := b.MemStore.ListReceipts(ctx, q)
	if b.fault == "cursor on full last page" && err == nil && next == "" && len(recs) > 0 && len(recs) == q.Limit {
		next = fmt.Sprint(recs[len(recs)-1].Index)
	}
	if b.fault == "ignores limit" && err == nil {
		q.Limit = ledger.MaxPageSize
		recs, next, err = b.MemStore.ListReceipts(ctx, q)
	}
	return recs, next, err
}

// brokenCases names, for each fault, the subtest of the suite that must
// fail because of it.
var brokenCases = []struct {
	fault string
	fails string
}{
	{"no copy", "AppendCopies"},
	{"no conflict check", "AppendConflict"},
	{"partial batch", "BatchAtomicity"},
	{"short reads", "ReadOutOfRange"},
	{"ignore ctx", "Cancelled"},
	{"sorted hash reads", "HashRoundTrip"},
	{"drops last hash", "LedgerConcurrent"},
	{"empty leaf as nil", "AppendRead"},
	{"works after close", "Closed"},
	{"prefix ids", "Query/ReceiptByID"},
	{"action in index order", "Query/ActionReceipts"},
	{"lenient cursor", "Query/MalformedCursor"},
	{"inclusive until", "Query/ListFilters"},
	{"cursor on full last page", "Query/ListPages"},
	{"ignores limit", "Query/ListPageSize"},
}

const brokenEnv = "LEDGERTEST_BROKEN_FAULT"

// TestBrokenChild runs the suite on a broken store when the parent test
// asks for it through the environment; otherwise it is skipped.
func TestBrokenChild(t *testing.T) {
	fault, ok := os.LookupEnv(brokenEnv)
	if !ok {
		t.Skip("run by TestSuiteCatchesFaults")
	}
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		if strings.HasPrefix(brokenCaseFor(fault), "Query/") {
			return &brokenQuerier{MemStore: ledger.NewMemStore(), fault: fault}
		}
		return &naiveStore{fault: fault}
	})
}

func brokenCaseFor(fault string) string {
	for _, c := range brokenCases {
		if c.fault == fault {
			return c.fails
		}
	}
	return ""
}

// TestSuiteCatchesFaults checks that each fault of a broken store makes the
// suite fail in the case that tests for it, by running the suite on the
// broken store in a child process.
func TestSuiteCatchesFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process per fault")
	}
	for _, tt := range brokenCases {
		t.Run(tt.fault, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBrokenChild$", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tt.fault)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite on a store with fault %q: exit %v, want a failing exit status; output:\n%s", tt.fault, err, out)
			}
			want := "--- FAIL: TestBrokenChild/" + tt.fails + " "
			if !bytes.Contains(out, []byte(want)) {
				t.Errorf("suite on a store with fault %q: output lacks %q; output:\n%s", tt.fault, want, out)
			}
		})
	}
}

// TestNaiveStorePasses checks that naiveStore without a fault passes, so
// that the failures above come from the faults alone.
func TestNaiveStorePasses(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store { return &naiveStore{} })
}
