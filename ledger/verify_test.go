package ledger

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestVerifyGoodLog(t *testing.T) {
	ctx := context.Background()
	for _, n := range []int{0, 1, 2, 3, 7, 8, 9, 1023, 1024, 1025, 2500} {
		ms := NewMemStore()
		l := newTestLedger(t, ms)
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = leafAt(i)
		}
		if n > 0 {
			_, err := l.AppendBatch(ctx, leaves)
			require.NoError(t, err)
		}

		var checked []int64
		rep, err := Verify(ctx, ms, EntryCheckerFunc(func(index int64, leaf []byte) error {
			checked = append(checked, index)
			if string(leaf) != string(leafAt(int(index))) {
				return errors.New("unexpected leaf")
			}
			return nil
		}))
		require.NoError(t, err, "Verify(%d leaves)", n)
		require.Equal(t, int64(n), rep.Size, "Verify(%d leaves).Size", n)
		want, err := l.TreeHash(ctx, int64(n))
		require.NoError(t, err)
		require.Equal(t, want, rep.Root, "Verify(%d leaves).Root", n)
		require.Len(t, checked, n, "CheckEntry calls")
		for i, idx := range checked {
			require.Equal(t, int64(i), idx, "CheckEntry call %d index", i)
		}

		rep2, err := Verify(ctx, ms, nil)
		require.NoError(t, err, "Verify(nil checker)")
		require.Equal(t, rep, rep2, "Verify(nil checker)")
	}
	empty, err := Verify(ctx, NewMemStore(), nil)
	require.NoError(t, err)
	require.Equal(t, tlog.Hash(sha256.Sum256(nil)), empty.Root, "Verify(empty).Root")
}

func TestVerifyTampered(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		tamper func(m *MemStore)
		index  int64
		reason string
	}{
		{
			name:   "leaf changed",
			tamper: func(m *MemStore) { m.leaves[5] = []byte("forged") },
			index:  5,
			reason: "leaf hash mismatch",
		},
		{
			name:   "leaf byte flipped",
			tamper: func(m *MemStore) { m.leaves[0] = append([]byte{}, m.leaves[0]...); m.leaves[0][0] ^= 1 },
			index:  0,
			reason: "leaf hash mismatch",
		},
		{
			name:   "leaf hash changed",
			tamper: func(m *MemStore) { m.hashes[tlog.StoredHashIndex(0, 9)][3] ^= 1 },
			index:  9,
			reason: "leaf hash mismatch",
		},
		{
			name: "interior hash changed",
			// The level-1 node over leaves 2 and 3 is written with leaf 3.
			tamper: func(m *MemStore) { m.hashes[tlog.StoredHashIndex(1, 1)][0] ^= 1 },
			index:  3,
			reason: "stored hash mismatch",
		},
		{
			name: "leaf and its hash rewritten together",
			// Leaf 4's hash feeds the node written with leaf 5.
			tamper: func(m *MemStore) {
				m.leaves[4] = []byte("forged")
				m.hashes[tlog.StoredHashIndex(0, 4)] = tlog.RecordHash([]byte("forged"))
			},
			index:  5,
			reason: "stored hash mismatch",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := NewMemStore()
			l := newTestLedger(t, ms)
			appendN(t, l, 12)
			tt.tamper(ms)

			_, err := Verify(ctx, ms, nil)
			var ve *VerifyError
			require.ErrorAs(t, err, &ve, "Verify(tampered log)")
			assert.Equal(t, tt.index, ve.Index, "VerifyError.Index")
			assert.Equal(t, tt.reason, ve.Reason, "VerifyError.Reason")
			assert.ErrorIs(t, err, ErrTampered, "Verify(tampered log)")
			assert.Contains(t, err.Error(), tt.reason, "error message")
		})
	}
}

func TestVerifyCheckerError(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	l := newTestLedger(t, ms)
	appendN(t, l, 10)

	errBadReceipt := errors.New("bad receipt signature")
	var calls int
	_, err := Verify(ctx, ms, EntryCheckerFunc(func(index int64, _ []byte) error {
		calls++
		if index == 7 {
			return errBadReceipt
		}
		return nil
	}))
	var ve *VerifyError
	require.ErrorAs(t, err, &ve, "Verify(checker fails at 7)")
	require.Equal(t, int64(7), ve.Index, "VerifyError.Index")
	require.ErrorIs(t, err, errBadReceipt, "Verify error wraps the checker's error")
	require.ErrorIs(t, err, ErrTampered, "Verify error wraps ErrTampered")
	require.Equal(t, 8, calls, "CheckEntry calls: stops at the first failure")
	require.Equal(t, "ledger: verify: leaf 7: entry check failed: bad receipt signature", err.Error())
}

// shortStore returns fewer leaves than asked for or fails reads.
type shortStore struct {
	Store
	failHashes bool
}

func (s shortStore) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	ls, err := s.Store.ReadLeaves(ctx, start, n)
	if err != nil || s.failHashes {
		return ls, err
	}
	return ls[:len(ls)-1], nil
}

func (s shortStore) ReadHashes(ctx context.Context, idx []int64) ([]tlog.Hash, error) {
	if s.failHashes {
		return nil, errors.New("io error")
	}
	return s.Store.ReadHashes(ctx, idx)
}

func TestVerifyStoreErrors(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	l := newTestLedger(t, ms)
	appendN(t, l, 5)

	tests := []struct {
		name string
		s    Store
		ctx  func() context.Context
	}{
		{"short read", shortStore{Store: ms}, context.Background},
		{"hash read fails", shortStore{Store: ms, failHashes: true}, context.Background},
		{"cancelled", ms, func() context.Context {
			c, cancel := context.WithCancel(ctx)
			cancel()
			return c
		}},
		{"nil store", nil, context.Background},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(tt.ctx(), tt.s, nil)
			require.Error(t, err, "Verify(%s)", tt.name)
			var ve *VerifyError
			require.False(t, errors.As(err, &ve), "Verify(%s) = VerifyError, want a plain error", tt.name)
		})
	}
}
