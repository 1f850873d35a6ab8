package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

// faultyStore fails every failEvery-th Append with ENOSPC ("no space left
// on device"): before writing (the batch is lost) or, with after set,
// after the inner store committed it (the caller cannot know the outcome,
// as when a connection drops after commit).
type faultyStore struct {
	*sqlite.Store
	failEvery int
	after     bool

	mu     sync.Mutex
	calls  int
	failed int
}

func (f *faultyStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls%f.failEvery == 0
	if fail {
		f.failed++
	}
	f.mu.Unlock()
	if !fail {
		return f.Store.Append(ctx, start, leaves, hashes)
	}
	if f.after {
		if err := f.Store.Append(ctx, start, leaves, hashes); err != nil {
			return err
		}
		return fmt.Errorf("faulty: outcome unknown: %w", syscall.ENOSPC)
	}
	return fmt.Errorf("faulty: %w", syscall.ENOSPC)
}

func TestFailingWrites(t *testing.T) {
	for _, after := range []bool{false, true} {
		t.Run(fmt.Sprintf("after=%v", after), func(t *testing.T) {
			s, path := openTemp(t)
			fs := &faultyStore{Store: s, failEvery: 3, after: after}
			l := newLedger(t, fs, ledger.WithMaxBatch(4))

			const writers, each = 8, 30
			var mu sync.Mutex
			acked := map[int64][]byte{}
			attempted := map[string]bool{}
			failures := 0
			var wg sync.WaitGroup
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						leaf := receiptLeaf(w*each+i, w*each+i, 1)
						idx, err := l.Append(context.Background(), leaf)
						mu.Lock()
						attempted[string(leaf)] = true
						if err != nil {
							if !errors.Is(err, syscall.ENOSPC) {
								t.Errorf("Append() = %v, want nil or ENOSPC", err)
							}
							failures++
						} else {
							acked[idx] = leaf
						}
						mu.Unlock()
					}
				})
			}
			wg.Wait()
			if fs.failed == 0 {
				t.Fatalf("no store call failed (%d calls), the test exercised nothing", fs.calls)
			}
			// A write that failed before storing anything fails its
			// callers; one that failed after committing is found stored
			// by the Ledger, which then reports success.
			if !after && failures == 0 {
				t.Fatalf("no append failed (%d store calls, %d failed)", fs.calls, fs.failed)
			}
			if after && failures != 0 {
				t.Errorf("%d appends failed whose batches were stored, want 0", failures)
			}

			check := func(s ledger.Store) {
				t.Helper()
				ctx := t.Context()
				rep := mustVerifyAtLeast(t, s, int64(len(acked)))
				leaves, err := s.ReadLeaves(ctx, 0, int(rep.Size))
				if err != nil {
					t.Fatalf("ReadLeaves(0, %d) = %v", rep.Size, err)
				}
				for idx, want := range acked {
					if !bytes.Equal(leaves[idx], want) {
						t.Fatalf("leaf %d = %q, want the acknowledged %q", idx, leaves[idx], want)
					}
				}
				for i, leaf := range leaves {
					if !attempted[string(leaf)] {
						t.Fatalf("leaf %d = %q was never appended", i, leaf)
					}
				}
				if !after && rep.Size != int64(len(acked)) {
					t.Fatalf("size = %d, want %d: batches that failed before writing must not be stored", rep.Size, len(acked))
				}
			}
			check(s)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			check(openAt(t, path))
		})
	}
}

// mustVerifyAtLeast runs ledger.Verify and fails unless it passes with at
// least min leaves.
func mustVerifyAtLeast(t *testing.T, s ledger.Store, min int64) *ledger.Report {
	t.Helper()
	rep, err := ledger.Verify(t.Context(), s, nil)
	if err != nil {
		t.Fatalf("ledger.Verify() = %v, want nil", err)
	}
	if rep.Size < min {
		t.Fatalf("ledger.Verify().Size = %d, want at least %d", rep.Size, min)
	}
	return rep
}
