package ledger

import (
	"cmp"
	"errors"
	"slices"
	"sort"
	"strconv"
)

// errBadCursor is wrapped by the in-memory queriers for a malformed cursor.
var errBadCursor = errors.New("malformed cursor")

// receiptIndex is an in-memory index of receipt headers, shared by
// [MemStore] and the scanning querier of [NewQuerier] so that both apply the
// same rules. It is not safe for concurrent use; its owner locks.
type receiptIndex struct {
	list     []indexedReceipt // in ledger index order
	byID     map[string]int   // receipt_id -> position in list
	byAction map[string][]int // action_id -> positions in list, in seq order
}

type indexedReceipt struct {
	index int64
	hdr   Header
}

// add indexes the entry at index with header h (from ParseHeader) and
// reports whether it did: only receipts are indexed, and a receipt whose
// receipt_id or (action_id, seq) is already indexed is a duplicate and is
// not. Entries must be added in increasing index order.
func (x *receiptIndex) add(index int64, h Header) bool {
	if h.Spec != SpecReceipt {
		return false
	}
	if _, dup := x.byID[h.ReceiptID]; dup {
		return false
	}
	positions := x.byAction[h.ActionID]
	at, dup := slices.BinarySearchFunc(positions, h.Seq, func(p int, seq int64) int {
		return cmp.Compare(x.list[p].hdr.Seq, seq)
	})
	if dup {
		return false
	}
	if x.byID == nil {
		x.byID = make(map[string]int)
		x.byAction = make(map[string][]int)
	}
	pos := len(x.list)
	x.list = append(x.list, indexedReceipt{index: index, hdr: h})
	x.byID[h.ReceiptID] = pos
	x.byAction[h.ActionID] = slices.Insert(positions, at, pos)
	return true
}

// duplicate reports whether a receipt among headers, the headers of leaves
// about to be added in order, would be a duplicate of an indexed receipt
// or of an earlier one among headers, and if so returns its position.
func (x *receiptIndex) duplicate(headers []Header) (int, bool) {
	type actionSeq struct {
		action string
		seq    int64
	}
	var ids map[string]bool
	var seqs map[actionSeq]bool
	for i, h := range headers {
		if h.Spec != SpecReceipt {
			continue
		}
		if _, dup := x.byID[h.ReceiptID]; dup || ids[h.ReceiptID] {
			return i, true
		}
		_, dup := slices.BinarySearchFunc(x.byAction[h.ActionID], h.Seq, func(p int, seq int64) int {
			return cmp.Compare(x.list[p].hdr.Seq, seq)
		})
		as := actionSeq{h.ActionID, h.Seq}
		if dup || seqs[as] {
			return i, true
		}
		if i == len(headers)-1 {
			break // nothing after it to collide with
		}
		if ids == nil {
			ids, seqs = make(map[string]bool), make(map[actionSeq]bool)
		}
		ids[h.ReceiptID], seqs[as] = true, true
	}
	return 0, false
}

// receipt returns the index of the receipt with receipt_id id.
func (x *receiptIndex) receipt(id string) (int64, bool) {
	p, ok := x.byID[id]
	if !ok {
		return 0, false
	}
	return x.list[p].index, true
}

// action returns the indexes of the receipts of action id, in seq order.
func (x *receiptIndex) action(id string) []int64 {
	positions := x.byAction[id]
	out := make([]int64, len(positions))
	for i, p := range positions {
		out[i] = x.list[p].index
	}
	return out
}

// query returns the indexes of at most limit receipts after index after
// that match q, in index order, and reports whether more follow.
func (x *receiptIndex) query(q Query, after int64, limit int) (idx []int64, more bool) {
	start := sort.Search(len(x.list), func(i int) bool { return x.list[i].index > after })
	for _, r := range x.list[start:] {
		if !matchQuery(r.hdr, q) {
			continue
		}
		if len(idx) == limit {
			return idx, true
		}
		idx = append(idx, r.index)
	}
	return idx, false
}

// matchQuery reports whether a receipt with header h matches the filters of
// q (not its cursor or limit).
func matchQuery(h Header, q Query) bool {
	return (q.TenantID == "" || h.TenantID == q.TenantID) &&
		(q.AgentID == "" || h.AgentID == q.AgentID) &&
		(q.ActionID == "" || h.ActionID == q.ActionID) &&
		(q.Status == "" || h.Status == q.Status) &&
		(q.Since.IsZero() || !h.IssuedAt.Before(q.Since)) &&
		(q.Until.IsZero() || h.IssuedAt.Before(q.Until))
}

// pageSize returns the page size a Query with the given Limit asks for.
func pageSize(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

// parseCursor decodes a cursor of the in-memory queriers: the decimal index
// of the last receipt returned. The empty cursor is -1 (start of the log).
func parseCursor(c string) (int64, error) {
	if c == "" {
		return -1, nil
	}
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != c {
		return 0, errBadCursor
	}
	return n, nil
}

func formatCursor(index int64) string {
	return strconv.FormatInt(index, 10)
}
