package ledger

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestAppendReadRoundTrip(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())

	size, err := l.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(0), size, "Size() of new ledger")

	const n = 37
	leaves := appendN(t, l, n)

	size, err = l.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(n), size, "Size() after %d appends", n)

	for i, want := range leaves {
		got, err := l.Leaf(ctx, int64(i))
		require.NoError(t, err, "Leaf(%d)", i)
		require.Equal(t, want, got, "Leaf(%d)", i)
	}
	all, err := l.Leaves(ctx, 0, n)
	require.NoError(t, err)
	require.Equal(t, leaves, all, "Leaves(0, %d)", n)

	mid, err := l.Leaves(ctx, 10, 5)
	require.NoError(t, err)
	require.Equal(t, leaves[10:15], mid, "Leaves(10, 5)")

	none, err := l.Leaves(ctx, n, 0)
	require.NoError(t, err)
	require.Empty(t, none, "Leaves(n, 0)")

	// Returned leaves are copies.
	got, err := l.Leaf(ctx, 3)
	require.NoError(t, err)
	got[0] ^= 0xff
	again, err := l.Leaf(ctx, 3)
	require.NoError(t, err)
	require.Equal(t, leaves[3], again, "Leaf(3) after modifying an earlier result")

	// The ledger does not keep the caller's buffer.
	buf := []byte("reused buffer")
	idx, err := l.Append(ctx, buf)
	require.NoError(t, err)
	copy(buf, "XXXXXX")
	stored, err := l.Leaf(ctx, idx)
	require.NoError(t, err)
	require.Equal(t, []byte("reused buffer"), stored, "Leaf(%d) after caller reused its buffer", idx)
}

func TestReadOutOfRange(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())
	appendN(t, l, 4)

	tests := []struct {
		name  string
		start int64
		n     int
	}{
		{"negative start", -1, 1},
		{"negative count", 0, -1},
		{"at size", 4, 1},
		{"past end", 2, 3},
		{"far", 1 << 40, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Leaves(ctx, tt.start, tt.n)
			assert.ErrorIs(t, err, ErrOutOfRange, "Leaves(%d, %d)", tt.start, tt.n)
			if tt.n == 1 {
				_, err := l.Leaf(ctx, tt.start)
				assert.ErrorIs(t, err, ErrOutOfRange, "Leaf(%d)", tt.start)
			}
		})
	}
}

func TestAppendBatch(t *testing.T) {
	ctx := context.Background()
	hs := &hookStore{Store: NewMemStore()}
	l := newTestLedger(t, hs, WithMaxBatch(2))
	appendN(t, l, 3)

	batch := [][]byte{leafAt(3), leafAt(4), leafAt(5), leafAt(6), leafAt(7)}
	first, err := l.AppendBatch(ctx, batch)
	require.NoError(t, err)
	require.Equal(t, int64(3), first, "AppendBatch(5 leaves) first index")
	calls, maxLen, _ := hs.stats()
	require.Equal(t, 4, calls, "Store.Append calls: 3 single appends + 1 batch")
	require.Equal(t, 5, maxLen, "a batch larger than WithMaxBatch is still written in one call")

	for i := range 8 {
		got, err := l.Leaf(ctx, int64(i))
		require.NoError(t, err)
		require.Equal(t, leafAt(i), got, "Leaf(%d)", i)
	}

	_, err = l.AppendBatch(ctx, nil)
	require.Error(t, err, "AppendBatch(nil)")

	rep, err := Verify(ctx, hs, nil)
	require.NoError(t, err)
	require.Equal(t, int64(8), rep.Size)
}

func TestTreeHash(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())

	// Independently computed stored hashes, straight from tlog.
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})

	empty, err := l.TreeHash(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, refRoot(nil), empty, "TreeHash(0)")

	var leaves [][]byte
	for n := 1; n <= 100; n++ {
		leaf := leafAt(n - 1)
		leaves = append(leaves, leaf)
		_, err := l.Append(ctx, leaf)
		require.NoError(t, err)
		hs, err := tlog.StoredHashes(int64(n-1), leaf, reader)
		require.NoError(t, err)
		stored = append(stored, hs...)

		got, err := l.TreeHash(ctx, int64(n))
		require.NoError(t, err, "TreeHash(%d)", n)
		want, err := tlog.TreeHash(int64(n), reader)
		require.NoError(t, err)
		require.Equal(t, want, got, "TreeHash(%d) vs tlog.TreeHash over tlog.StoredHashes", n)
		if n <= 40 {
			require.Equal(t, refRoot(leaves), got, "TreeHash(%d) vs from-scratch RFC 6962", n)
		}
	}
	// Earlier sizes stay answerable.
	got, err := l.TreeHash(ctx, 13)
	require.NoError(t, err)
	require.Equal(t, refRoot(leaves[:13]), got, "TreeHash(13) after 100 appends")

	for _, size := range []int64{-1, 101, 1 << 50} {
		_, err := l.TreeHash(ctx, size)
		assert.ErrorIs(t, err, ErrInvalidRange, "TreeHash(%d)", size)
	}
}

// TestRefRootKnownAnswer pins the from-scratch reference to RFC 6962 itself,
// so the cross-checks above cannot agree with a shared mistake.
func TestRefRootKnownAnswer(t *testing.T) {
	// Empty tree: SHA-256 of no bytes.
	require.Equal(t, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", refRoot(nil).String(), "refRoot(empty)")
	// One leaf: SHA-256(0x00 || "").
	require.Equal(t, "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=", refRoot([][]byte{{}}).String(), "refRoot([\"\"])")
	for n := range 20 {
		leaves := make([][]byte, n)
		for i := range leaves {
			leaves[i] = leafAt(i)
		}
		var stored []tlog.Hash
		r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			out := make([]tlog.Hash, len(idx))
			for i, x := range idx {
				out[i] = stored[x]
			}
			return out, nil
		})
		for i, leaf := range leaves {
			hs, err := tlog.StoredHashes(int64(i), leaf, r)
			require.NoError(t, err)
			stored = append(stored, hs...)
		}
		want, err := tlog.TreeHash(int64(n), r)
		require.NoError(t, err)
		require.Equal(t, want, refRoot(leaves), "refRoot(%d leaves)", n)
	}
}

func TestOptions(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		opt  Option
	}{
		{"nil logger", WithLogger(nil)},
		{"zero max batch", WithMaxBatch(0)},
		{"nil signer", WithCheckpointSigner(nil)},
		{"negative retries", WithConflictRetries(-1)},
		{"nil option", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(ctx, NewMemStore(), tt.opt)
			assert.Error(t, err, "New(%s)", tt.name)
		})
	}
	t.Run("nil store", func(t *testing.T) {
		_, err := New(ctx, nil)
		assert.Error(t, err, "New(nil store)")
	})
	t.Run("store failure", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := New(ctx, NewMemStore())
		assert.ErrorIs(t, err, context.Canceled, "New(cancelled ctx)")
	})
}

func TestNewLoadsExistingLog(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	for n := range 20 {
		l := newTestLedger(t, ms)
		idx, err := l.Append(ctx, leafAt(n))
		require.NoError(t, err)
		require.Equal(t, int64(n), idx, "Append on a Ledger reopened at size %d", n)
	}
	_, err := Verify(ctx, ms, nil)
	require.NoError(t, err)
}

func TestInclusionProofs(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())
	leaves := appendN(t, l, 40)

	for n := int64(1); n <= 40; n++ {
		root, err := l.TreeHash(ctx, n)
		require.NoError(t, err)
		require.Equal(t, refRoot(leaves[:n]), root, "TreeHash(%d)", n)
		badRoot := root
		badRoot[7] ^= 1
		for i := range n {
			p, err := l.ProveInclusion(ctx, i, n)
			require.NoError(t, err, "ProveInclusion(%d, %d)", i, n)
			require.NoError(t, CheckInclusion(p, n, root, i, leaves[i]), "CheckInclusion(index %d, size %d)", i, n)

			err = CheckInclusion(p, n, root, i, []byte("not the leaf"))
			require.ErrorIs(t, err, ErrInvalidProof, "CheckInclusion(wrong leaf, index %d, size %d)", i, n)
			err = CheckInclusion(p, n, badRoot, i, leaves[i])
			require.ErrorIs(t, err, ErrInvalidProof, "CheckInclusion(wrong root, index %d, size %d)", i, n)
			if n > 1 {
				other := (i + 1) % n
				err = CheckInclusion(p, n, root, other, leaves[i])
				require.ErrorIs(t, err, ErrInvalidProof, "CheckInclusion(index %d for proof of %d, size %d)", other, i, n)
			}
			err = CheckInclusion(p, n, root, n, leaves[i])
			require.ErrorIs(t, err, ErrInvalidRange, "CheckInclusion(index %d = size)", n)
		}
	}
}

func TestConsistencyProofs(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())
	appendN(t, l, 40)

	roots := make([]tlog.Hash, 41)
	for n := int64(1); n <= 40; n++ {
		var err error
		roots[n], err = l.TreeHash(ctx, n)
		require.NoError(t, err)
	}
	for n := int64(1); n <= 40; n++ {
		for m := int64(1); m <= n; m++ {
			p, err := l.ProveConsistency(ctx, m, n)
			require.NoError(t, err, "ProveConsistency(%d, %d)", m, n)
			require.NoError(t, CheckConsistency(p, n, roots[n], m, roots[m]), "CheckConsistency(%d, %d)", m, n)

			bad := roots[m]
			bad[0] ^= 1
			err = CheckConsistency(p, n, roots[n], m, bad)
			require.ErrorIs(t, err, ErrInvalidProof, "CheckConsistency(%d, %d) with wrong old root", m, n)
			bad = roots[n]
			bad[31] ^= 1
			err = CheckConsistency(p, n, bad, m, roots[m])
			require.ErrorIs(t, err, ErrInvalidProof, "CheckConsistency(%d, %d) with wrong new root", m, n)
			if m > 1 && m < n {
				err = CheckConsistency(p, n, roots[n], m-1, roots[m-1])
				require.ErrorIs(t, err, ErrInvalidProof, "CheckConsistency(proof %d→%d checked as %d→%d)", m, n, m-1, n)
			}
		}
	}
}

func TestProveInvalidRange(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, NewMemStore())
	appendN(t, l, 10)

	inclusion := []struct {
		name            string
		index, treeSize int64
	}{
		{"negative index", -1, 5},
		{"index equals size", 5, 5},
		{"index beyond size", 7, 5},
		{"empty tree", 0, 0},
		{"negative size", 0, -1},
		{"size beyond log", 3, 11},
		{"huge", 1 << 62, 1<<62 + 1},
	}
	for _, tt := range inclusion {
		t.Run("inclusion/"+tt.name, func(t *testing.T) {
			_, err := l.ProveInclusion(ctx, tt.index, tt.treeSize)
			assert.ErrorIs(t, err, ErrInvalidRange, "ProveInclusion(%d, %d)", tt.index, tt.treeSize)
		})
	}

	consistency := []struct {
		name     string
		from, to int64
	}{
		{"from zero", 0, 5},
		{"negative from", -1, 5},
		{"from after to", 6, 5},
		{"to beyond log", 3, 11},
		{"both beyond log", 11, 11},
		{"negative to", 1, -1},
	}
	for _, tt := range consistency {
		t.Run("consistency/"+tt.name, func(t *testing.T) {
			_, err := l.ProveConsistency(ctx, tt.from, tt.to)
			assert.ErrorIs(t, err, ErrInvalidRange, "ProveConsistency(%d, %d)", tt.from, tt.to)
			err = CheckConsistency(nil, tt.to, tlog.Hash{1}, tt.from, tlog.Hash{2})
			if tt.from < 1 || tt.from > tt.to {
				assert.ErrorIs(t, err, ErrInvalidRange, "CheckConsistency(%d, %d)", tt.from, tt.to)
			} else {
				assert.ErrorIs(t, err, ErrInvalidProof, "CheckConsistency(%d, %d) with empty proof", tt.from, tt.to)
			}
		})
	}
}

func TestConflictLogged(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ms := NewMemStore()
	l1 := newTestLedger(t, ms, WithLogger(logger))
	l2 := newTestLedger(t, ms)

	_, err := l2.Append(ctx, leafAt(0))
	require.NoError(t, err)
	idx, err := l1.Append(ctx, leafAt(1))
	require.NoError(t, err)
	require.Equal(t, int64(1), idx, "Append after another Ledger appended")
	require.Contains(t, buf.String(), "append conflict", "log output")
	require.Contains(t, buf.String(), "committed", "log output")
}

func TestConflictRetriesExhausted(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs, WithConflictRetries(2))
	other := newTestLedger(t, ms)

	// Before every write of l, another writer appends first.
	hs.setHooks(func(int) error {
		_, err := other.Append(ctx, []byte("other"))
		return err
	}, nil)
	_, err := l.Append(ctx, leafAt(0))
	require.ErrorIs(t, err, ErrConflict, "Append under constant conflicts")
	calls, _, conflicts := hs.stats()
	require.Equal(t, 3, calls, "Store.Append calls with 2 retries")
	require.Equal(t, 3, conflicts, "conflicts")

	hs.setHooks(nil, nil)
	idx, err := l.Append(ctx, leafAt(0))
	require.NoError(t, err)
	require.Equal(t, int64(3), idx, "Append after conflicts stop")
	_, err = Verify(ctx, ms, nil)
	require.NoError(t, err)
}

func TestErrorsDoNotLeakInput(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	hs := &hookStore{Store: ms}
	l := newTestLedger(t, hs)
	secret := []byte("sk-very-secret-token")
	hs.setHooks(func(int) error { return errors.New("disk full") }, nil)
	_, err := l.Append(ctx, secret)
	require.Error(t, err)
	require.NotContains(t, err.Error(), string(secret), "Append error message")
}
