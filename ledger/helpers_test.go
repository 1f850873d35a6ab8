package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// testOrigin is the log origin of test checkpoints.
const testOrigin = "example.com/oars-test"

// testKey returns a fixed Ed25519 key, so signatures (deterministic in
// Ed25519) can be compared with golden files.
func testKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("oars ledger test key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

// leafAt returns the test leaf for index i.
func leafAt(i int) []byte {
	return fmt.Appendf(nil, `{"test_leaf":%d}`, i)
}

// newTestLedger returns a Ledger over s, failing the test on error.
func newTestLedger(t testing.TB, s Store, opts ...Option) *Ledger {
	t.Helper()
	l, err := New(context.Background(), s, opts...)
	require.NoError(t, err, "New")
	return l
}

// appendN appends leafAt(0..n-1) and checks each index.
func appendN(t testing.TB, l *Ledger, n int) [][]byte {
	t.Helper()
	ctx := context.Background()
	leaves := make([][]byte, n)
	for i := range n {
		leaves[i] = leafAt(i)
		idx, err := l.Append(ctx, leaves[i])
		require.NoError(t, err, "Append(%d)", i)
		require.Equal(t, int64(i), idx, "Append(leaf %d) index", i)
	}
	return leaves
}

// refRoot computes the RFC 6962 Merkle tree hash from scratch, without tlog:
// leaf = SHA-256(0x00 || d), node = SHA-256(0x01 || left || right), split at
// the largest power of two smaller than n.
func refRoot(leaves [][]byte) tlog.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0x00}, leaves[0]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := refRoot(leaves[:k]), refRoot(leaves[k:])
	buf := append([]byte{0x01}, l[:]...)
	return sha256.Sum256(append(buf, r[:]...))
}

// hookStore wraps a Store, counts Append calls and lets a test intercept
// them.
type hookStore struct {
	Store

	mu       sync.Mutex
	calls    int   // Append calls so far
	maxLen   int   // most leaves in one Append call
	lens     []int // leaves per Append call
	before   func(call int) error
	after    func(call int, err error) error
	conflict int // Append calls that returned ErrConflict
}

func (h *hookStore) setHooks(before func(int) error, after func(int, error) error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.before, h.after = before, after
}

func (h *hookStore) stats() (calls, maxLen, conflicts int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.calls, h.maxLen, h.conflict
}

func (h *hookStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	h.mu.Lock()
	h.calls++
	call := h.calls
	h.maxLen = max(h.maxLen, len(leaves))
	h.lens = append(h.lens, len(leaves))
	before, after := h.before, h.after
	h.mu.Unlock()

	if before != nil {
		if err := before(call); err != nil {
			return err
		}
	}
	err := h.Store.Append(ctx, start, leaves, hashes)
	if isConflict(err) {
		h.mu.Lock()
		h.conflict++
		h.mu.Unlock()
	}
	if after != nil {
		return after(call, err)
	}
	return err
}

func isConflict(err error) bool {
	return err != nil && errors.Is(err, ErrConflict)
}
