package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
)

// scanChunk is how many leaves the scanning querier reads per store call.
const scanChunk = 1024

// NewQuerier returns a [Querier] over s: s itself if it implements
// Querier, and otherwise a querier that answers every call by reading the
// log from the start (in chunks of leaves) and indexing it with
// [ParseHeader] as it goes, under the same rules an indexing store
// follows. Each call of the scanning querier costs O(n) reads and time in
// the size of the log and keeps only the matching receipts in memory: it is
// meant for small logs, tools and tests, not for serving queries over a
// production ledger. It is safe for concurrent use if s is, and sees the
// log as of the size it read at the start of each call.
//
// The methods of the returned querier fail if s is nil.
func NewQuerier(s Store) Querier {
	if q, ok := s.(Querier); ok {
		return q
	}
	return &scanQuerier{store: s}
}

// scanQuerier implements Querier by scanning a Store.
type scanQuerier struct {
	store Store
}

// scan reads the log from index 0 up to its current size and indexes each
// receipt in a fresh receiptIndex. It calls visit with each receipt it
// indexes and the receipt's leaf (which visit must copy to keep), and stops
// early when visit returns true.
func (sq *scanQuerier) scan(ctx context.Context, visit func(r indexedReceipt, leaf []byte) (stop bool)) error {
	if sq.store == nil {
		return errors.New("nil store")
	}
	size, err := sq.store.Size(ctx)
	if err != nil {
		return fmt.Errorf("read size: %w", err)
	}
	var x receiptIndex
	for start := int64(0); start < size; start += scanChunk {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := int(min(scanChunk, size-start))
		leaves, err := sq.store.ReadLeaves(ctx, start, n)
		if err != nil {
			return fmt.Errorf("read leaves at %d: %w", start, err)
		}
		if len(leaves) != n {
			return fmt.Errorf("store returned %d leaves at %d, want %d", len(leaves), start, n)
		}
		for i, leaf := range leaves {
			h, ok := ParseHeader(leaf)
			if !ok {
				continue
			}
			index := start + int64(i)
			if !x.add(index, h) {
				continue
			}
			if visit(indexedReceipt{index: index, hdr: h}, leaf) {
				return nil
			}
		}
	}
	return nil
}

// ReceiptByID returns the first receipt in the log whose receipt_id is id,
// or an error wrapping ErrNotFound.
func (sq *scanQuerier) ReceiptByID(ctx context.Context, id string) (Record, error) {
	var rec Record
	found := false
	err := sq.scan(ctx, func(r indexedReceipt, leaf []byte) bool {
		if r.hdr.ReceiptID != id {
			return false
		}
		rec, found = Record{Index: r.index, Leaf: clone(leaf)}, true
		return true
	})
	if err != nil {
		return Record{}, fmt.Errorf("ledger: scan querier: receipt by id: %w", err)
	}
	if !found {
		return Record{}, fmt.Errorf("ledger: scan querier: receipt by id: %w", ErrNotFound)
	}
	return rec, nil
}

// ActionReceipts returns the receipts of action actionID in seq order.
func (sq *scanQuerier) ActionReceipts(ctx context.Context, actionID string) ([]Record, error) {
	type found struct {
		seq int64
		rec Record
	}
	var all []found
	err := sq.scan(ctx, func(r indexedReceipt, leaf []byte) bool {
		if r.hdr.ActionID == actionID {
			all = append(all, found{r.hdr.Seq, Record{Index: r.index, Leaf: clone(leaf)}})
		}
		return false
	})
	if err != nil {
		return nil, fmt.Errorf("ledger: scan querier: action receipts: %w", err)
	}
	slices.SortFunc(all, func(a, b found) int { return cmp.Compare(a.seq, b.seq) })
	out := make([]Record, len(all))
	for i, f := range all {
		out[i] = f.rec
	}
	return out, nil
}

// ListReceipts returns a page of the receipts matching q, in index order.
func (sq *scanQuerier) ListReceipts(ctx context.Context, q Query) ([]Record, string, error) {
	after, err := parseCursor(q.Cursor)
	if err != nil {
		return nil, "", fmt.Errorf("ledger: scan querier: list receipts: %w", err)
	}
	limit := pageSize(q.Limit)
	out := []Record{}
	more := false
	err = sq.scan(ctx, func(r indexedReceipt, leaf []byte) bool {
		if r.index <= after || !matchQuery(r.hdr, q) {
			return false
		}
		if len(out) == limit {
			more = true
			return true
		}
		out = append(out, Record{Index: r.index, Leaf: clone(leaf)})
		return false
	})
	if err != nil {
		return nil, "", fmt.Errorf("ledger: scan querier: list receipts: %w", err)
	}
	next := ""
	if more {
		next = formatCursor(out[len(out)-1].Index)
	}
	return out, next, nil
}
