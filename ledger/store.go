package ledger

import (
	"context"
	"errors"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrConflict is returned by [Store.Append] when start is not the current
// size of the store: another writer appended first.
var ErrConflict = errors.New("ledger: append conflict")

// ErrOutOfRange is returned when a read asks for a leaf or hash that the
// store does not hold.
var ErrOutOfRange = errors.New("ledger: index out of range")

// Store is the durable storage under a [Ledger]. It holds the leaves (the
// exact bytes of each entry) and the Merkle hashes of the tree in the
// storage-index layout of [tlog.StoredHashIndex].
//
// Implementations must be safe for concurrent use. A Ledger calls Append from
// one goroutine at a time per Ledger value, but several Ledgers (in several
// processes) may share one Store; Append's start check is what keeps the log
// linear.
type Store interface {
	// Size returns the number of leaves durably stored.
	Size(ctx context.Context) (int64, error)

	// Append durably and atomically stores leaves at indexes
	// [start, start+len(leaves)) together with hashes, which are the stored
	// hashes of those leaves in order, starting at storage index
	// tlog.StoredHashIndex(0, start). Either all of it is stored or none.
	// If start is not the current size, Append stores nothing and returns an
	// error that wraps ErrConflict. Append must not return until the data
	// survives a crash of the process (and, for a local store, of the machine).
	Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error

	// ReadLeaves returns n leaves starting at index start. It returns an error
	// wrapping ErrOutOfRange if any of them is not stored. The returned slices
	// must not be modified by the caller.
	ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error)

	// ReadHashes returns the stored hashes at the given storage indexes, in
	// the same order. It returns an error wrapping ErrOutOfRange if any of
	// them is not stored.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
}
