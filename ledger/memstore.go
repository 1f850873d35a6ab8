package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// MemStore is an in-memory [Store]. It keeps everything in process memory, so
// "durable" means only "visible to later reads": use it for tests, examples
// and short-lived tools, never as the system of record.
//
// MemStore is also a [Querier]: Append indexes each receipt leaf
// ([ParseHeader]) in memory, under the same lock as the leaves, so queries
// see exactly the receipts that reads see.
//
// A MemStore is safe for concurrent use by multiple goroutines and may be
// shared by several [Ledger] values. Append copies the leaves it is given;
// ReadLeaves returns the stored slices themselves, which callers must not
// modify (as the [Store] contract says). Query results are copies.
type MemStore struct {
	mu       sync.RWMutex
	leaves   [][]byte
	hashes   []tlog.Hash
	receipts receiptIndex
	// slab is the free end of the current block that leaf copies are
	// carved from: one allocation for many leaves rather than one each.
	slab     []byte
	slabSize int // size of the block slab is the end of
}

// Leaf copies are carved from blocks that start at minSlab bytes and double
// up to maxSlab; a leaf larger than maxSlab/4 gets its own allocation.
const (
	minSlab = 4 << 10
	maxSlab = 256 << 10
)

var (
	_ Store   = (*MemStore)(nil)
	_ Querier = (*MemStore)(nil)
)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore {
	return &MemStore{}
}

// Size returns the number of leaves stored. It fails only if ctx is done.
func (m *MemStore) Size(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("ledger: memstore: size: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return int64(len(m.leaves)), nil
}

// Append stores copies of leaves at [start, start+len(leaves)) together with
// hashes, atomically, and indexes the receipts among them. It returns an
// error wrapping [ErrConflict] if start is not the current size, and another
// error if ctx is done or the number of hashes is not the number
// tlog.StoredHashes yields for those leaves, and an error wrapping
// [ErrDuplicate] if a receipt among leaves has the receipt_id or the
// (action_id, seq) of a stored receipt or of an earlier receipt among
// leaves (see [Querier]); in every error case it stores nothing.
func (m *MemStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("ledger: memstore: append: %w", err)
	}
	if start < 0 {
		return errors.New("ledger: memstore: append: negative start")
	}
	// Parse outside the lock.
	var one [1]Header
	headers := one[:]
	if len(leaves) != 1 {
		headers = make([]Header, len(leaves))
	}
	for i, leaf := range leaves {
		headers[i], _ = ParseHeader(leaf) // zero Header (no spec) if not an entry
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if size := int64(len(m.leaves)); start != size {
		return fmt.Errorf("ledger: memstore: append at %d, size is %d: %w", start, size, ErrConflict)
	}
	end := start + int64(len(leaves))
	if want := tlog.StoredHashCount(end) - tlog.StoredHashIndex(0, start); int64(len(hashes)) != want {
		return fmt.Errorf("ledger: memstore: append: got %d hashes for %d leaves, want %d", len(hashes), len(leaves), want)
	}
	m.receipts.list = grow(m.receipts.list, len(headers))
	if len(headers) == 1 {
		// One leaf: indexing it is the duplicate check. Nothing can fail
		// after it, so the index never holds a leaf that is not stored.
		if h := headers[0]; h.Spec == SpecReceipt && !m.receipts.add(start, h) {
			return fmt.Errorf("ledger: memstore: append: leaf %d: receipt_id or (action_id, seq) already stored: %w", start, ErrDuplicate)
		}
	} else {
		if i, dup := m.receipts.duplicate(headers); dup {
			return fmt.Errorf("ledger: memstore: append: leaf %d: receipt_id or (action_id, seq) already stored: %w", start+int64(i), ErrDuplicate)
		}
		for i, h := range headers {
			m.receipts.add(start+int64(i), h)
		}
	}
	m.leaves = grow(m.leaves, len(leaves))
	for _, leaf := range leaves {
		m.leaves = append(m.leaves, m.copyLocked(leaf))
	}
	m.hashes = append(grow(m.hashes, len(hashes)), hashes...)
	return nil
}

// ReadLeaves returns n leaves starting at index start. It returns an error
// wrapping [ErrOutOfRange] if start or n is negative or any of the leaves is
// not stored, and another error if ctx is done. The returned slices must not
// be modified.
func (m *MemStore) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ledger: memstore: read leaves: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	size := int64(len(m.leaves))
	if start < 0 || n < 0 || start > size || int64(n) > size-start {
		return nil, fmt.Errorf("ledger: memstore: read leaves [%d, +%d) of %d: %w", start, n, size, ErrOutOfRange)
	}
	out := make([][]byte, n)
	copy(out, m.leaves[start:start+int64(n)])
	return out, nil
}

// ReadHashes returns the stored hashes at the given storage indexes, in the
// same order. It returns an error wrapping [ErrOutOfRange] if any of them is
// not stored, and another error if ctx is done.
func (m *MemStore) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ledger: memstore: read hashes: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("ledger: memstore: read hash %d of %d: %w", x, len(m.hashes), ErrOutOfRange)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// copyLocked returns a copy of leaf, carved from the slab when it fits, with
// its capacity clipped to its length.
func (m *MemStore) copyLocked(leaf []byte) []byte {
	switch {
	case len(leaf) == 0:
		return []byte{}
	case len(leaf) > maxSlab/4:
		return clone(leaf)
	}
	if len(leaf) > cap(m.slab) {
		m.slabSize = min(max(2*m.slabSize, minSlab), maxSlab)
		for m.slabSize < len(leaf) {
			m.slabSize *= 2
		}
		m.slab = make([]byte, 0, m.slabSize)
	}
	n := len(leaf)
	c := append(m.slab[:0:n], leaf...)
	m.slab = m.slab[n:n]
	return c
}

// grow makes room for n more elements of s, doubling the capacity when it
// must grow, so that a log of N entries copies them O(N) times in all
// (append grows large slices by only a quarter).
func grow[T any](s []T, n int) []T {
	if len(s)+n <= cap(s) {
		return s
	}
	return slices.Grow(s, max(n, len(s)))
}

// ReceiptByID returns the receipt whose receipt_id is id. It returns an
// error wrapping [ErrNotFound] if there is none and another error if ctx is
// done.
func (m *MemStore) ReceiptByID(ctx context.Context, id string) (Record, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, fmt.Errorf("ledger: memstore: receipt by id: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	index, ok := m.receipts.receipt(id)
	if !ok {
		return Record{}, fmt.Errorf("ledger: memstore: receipt by id: %w", ErrNotFound)
	}
	return m.recordLocked(index), nil
}

// ActionReceipts returns the receipts of action actionID in seq order, or
// an empty slice if there are none. It fails only if ctx is done.
func (m *MemStore) ActionReceipts(ctx context.Context, actionID string) ([]Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ledger: memstore: action receipts: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.recordsLocked(m.receipts.action(actionID)), nil
}

// ListReceipts returns the receipts matching q in index order, at most the
// page size of q, and the cursor of the next page ("" when no more match).
// It returns an error if q.Cursor is malformed or ctx is done.
func (m *MemStore) ListReceipts(ctx context.Context, q Query) ([]Record, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", fmt.Errorf("ledger: memstore: list receipts: %w", err)
	}
	after, err := parseCursor(q.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: memstore: list receipts: %w", err)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	idx, more := m.receipts.query(q, after, pageSize(q.Limit))
	next := ""
	if more {
		next = formatCursor(idx[len(idx)-1])
	}
	return m.recordsLocked(idx), next, nil
}

func (m *MemStore) recordLocked(index int64) Record {
	return Record{Index: index, Leaf: clone(m.leaves[index])}
}

func (m *MemStore) recordsLocked(idx []int64) []Record {
	out := make([]Record, len(idx))
	for i, x := range idx {
		out[i] = m.recordLocked(x)
	}
	return out
}
