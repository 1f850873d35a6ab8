package ledger

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrTampered is wrapped by every [*VerifyError]: the log's contents do not
// hold together (a leaf or stored hash was changed, or an entry failed its
// [EntryChecker]).
var ErrTampered = errors.New("ledger: log tampered")

// verifyChunk is how many leaves Verify reads per store call.
const verifyChunk = 1024

// EntryChecker checks one leaf of a log; Verify calls it for each leaf in
// index order.
type EntryChecker interface {
	// CheckEntry returns nil if leaf is acceptable as the entry at index, and
	// an error saying why not otherwise. leaf must not be modified or
	// retained.
	CheckEntry(index int64, leaf []byte) error
}

// EntryCheckerFunc adapts a function to [EntryChecker].
type EntryCheckerFunc func(index int64, leaf []byte) error

// CheckEntry returns f(index, leaf).
func (f EntryCheckerFunc) CheckEntry(index int64, leaf []byte) error {
	return f(index, leaf)
}

// Report is the result of a successful [Verify]: the size of the log and the
// root hash of the tree of that size, recomputed from the leaves.
type Report struct {
	Size int64
	Root tlog.Hash
}

// VerifyError names the first leaf at which [Verify] found the log bad. It
// wraps [ErrTampered] and Err.
type VerifyError struct {
	Index  int64  // index of the first bad leaf
	Reason string // what is wrong: "leaf hash mismatch", "stored hash mismatch", "entry check failed"
	Err    error  // the cause: ErrTampered, or the EntryChecker's error
}

// Error returns "ledger: verify: leaf <index>: <reason>[: <err>]".
func (e *VerifyError) Error() string {
	msg := fmt.Sprintf("ledger: verify: leaf %d: %s", e.Index, e.Reason)
	if e.Err != nil && e.Err != ErrTampered {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns ErrTampered and, if different, Err.
func (e *VerifyError) Unwrap() []error {
	if e.Err == nil || e.Err == ErrTampered {
		return []error{ErrTampered}
	}
	return []error{ErrTampered, e.Err}
}

// Verify checks a whole log in s offline. It reads every leaf in index order,
// recomputes every stored hash from the leaves alone, compares each with the
// hash s holds, and calls c.CheckEntry for each leaf (a nil c skips that). It
// returns the size and the recomputed root hash.
//
// At the first leaf whose hashes or entry check fail it returns a
// [*VerifyError] naming that leaf; it returns other errors if ctx is done or
// s cannot serve a read.
func Verify(ctx context.Context, s Store, c EntryChecker) (*Report, error) {
	if s == nil {
		return nil, errors.New("ledger: verify: nil store")
	}
	size, err := s.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: verify: read size: %w", err)
	}
	if size < 0 {
		return nil, errors.New("ledger: verify: store reported a negative size")
	}

	var f frontier
	for start := int64(0); start < size; start += verifyChunk {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("ledger: verify: %w", err)
		}
		n := int(min(verifyChunk, size-start))
		leaves, err := s.ReadLeaves(ctx, start, n)
		if err != nil {
			return nil, fmt.Errorf("ledger: verify: read leaves at %d: %w", start, err)
		}
		if len(leaves) != n {
			return nil, fmt.Errorf("ledger: verify: store returned %d leaves at %d, want %d", len(leaves), start, n)
		}
		lo, hi := tlog.StoredHashIndex(0, start), tlog.StoredHashIndex(0, start+int64(n))
		idx := make([]int64, hi-lo)
		for i := range idx {
			idx[i] = lo + int64(i)
		}
		stored, err := s.ReadHashes(ctx, idx)
		if err != nil {
			return nil, fmt.Errorf("ledger: verify: read hashes at %d: %w", start, err)
		}
		if len(stored) != len(idx) {
			return nil, fmt.Errorf("ledger: verify: store returned %d hashes at %d, want %d", len(stored), start, len(idx))
		}

		for i, leaf := range leaves {
			index := start + int64(i)
			hs, err := tlog.StoredHashes(index, leaf, &f)
			if err != nil {
				return nil, fmt.Errorf("ledger: verify: leaf %d: %w", index, err)
			}
			for j, h := range hs {
				if stored[j] == h {
					continue
				}
				reason := "stored hash mismatch"
				if j == 0 {
					reason = "leaf hash mismatch"
				}
				return nil, &VerifyError{Index: index, Reason: reason, Err: ErrTampered}
			}
			stored = stored[len(hs):]
			f.push(hs)
			if c != nil {
				if err := c.CheckEntry(index, leaf); err != nil {
					return nil, &VerifyError{Index: index, Reason: "entry check failed", Err: err}
				}
			}
		}
	}

	root, err := f.root()
	if err != nil {
		return nil, fmt.Errorf("ledger: verify: root: %w", err)
	}
	return &Report{Size: size, Root: root}, nil
}
