package ledger

import (
	"errors"
	"math/bits"

	"golang.org/x/mod/sumdb/tlog"
)

// frontier is the right edge of a tree of size leaves: for every bit i set in
// size, the hash of the complete subtree of 2^i leaves at level i, index
// (size>>i)-1. Those are exactly the stored hashes that tlog reads to append
// the next leaf (tlog.StoredHashesForRecordHash) and to compute the root
// (tlog.TreeHash), so with a frontier in hand neither needs the store.
type frontier struct {
	size   int64
	hashes [63]tlog.Hash // hashes[i] is valid iff size has bit i set
}

var errNotOnFrontier = errors.New("ledger: internal error: hash not on the tree edge")

// indexes returns the storage indexes of the frontier's hashes, in
// increasing order.
func (f *frontier) indexes() []int64 {
	idx := make([]int64, 0, bits.OnesCount64(uint64(f.size)))
	for i := 62; i >= 0; i-- {
		if f.size>>i&1 == 1 {
			idx = append(idx, tlog.StoredHashIndex(i, f.size>>i-1))
		}
	}
	return idx
}

// ReadHashes implements tlog.HashReader for hashes on the frontier.
func (f *frontier) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		level, n := tlog.SplitStoredHashIndex(x)
		if level >= len(f.hashes) || f.size>>level&1 == 0 || n != f.size>>level-1 {
			return nil, errNotOnFrontier
		}
		out[i] = f.hashes[level]
	}
	return out, nil
}

// extend appends to f the leaves whose record hashes (tlog.RecordHash) are
// rh and returns the stored hashes they add, which belong at storage
// indexes from tlog.StoredHashIndex(0, old size) on.
func (f *frontier) extend(rh []tlog.Hash) ([]tlog.Hash, error) {
	end := f.size + int64(len(rh))
	out := make([]tlog.Hash, 0, tlog.StoredHashCount(end)-tlog.StoredHashIndex(0, f.size))
	for _, h := range rh {
		hs, err := tlog.StoredHashesForRecordHash(f.size, h, f)
		if err != nil {
			return nil, err
		}
		out = append(out, hs...)
		f.push(hs)
	}
	return out, nil
}

// recordHashes returns the record hashes (tlog.RecordHash) of leaves.
func recordHashes(leaves [][]byte) []tlog.Hash {
	rh := make([]tlog.Hash, len(leaves))
	for i, leaf := range leaves {
		rh[i] = tlog.RecordHash(leaf)
	}
	return rh
}

// push records that leaf f.size was added with stored hashes hs, as returned
// by tlog.StoredHashesForRecordHash: hs[j] is the node at level j that the
// leaf completes. The top one is the new frontier entry; the ones below it
// were merged into it.
func (f *frontier) push(hs []tlog.Hash) {
	top := len(hs) - 1
	f.hashes[top] = hs[top]
	f.size++
}

// root returns the root hash of the tree of f.size leaves.
func (f *frontier) root() (tlog.Hash, error) {
	return tlog.TreeHash(f.size, f)
}
