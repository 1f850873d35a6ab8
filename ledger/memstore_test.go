package ledger

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

// hashesFor returns the stored hashes for appending leaves to a tree that
// has the given frontier.
func hashesFor(t *testing.T, f *frontier, leaves [][]byte) []tlog.Hash {
	t.Helper()
	hs, err := f.extend(recordHashes(leaves))
	require.NoError(t, err)
	return hs
}

func TestMemStore(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	var f frontier

	leaves := [][]byte{[]byte("a"), []byte("b"), []byte("c")}
	hs := hashesFor(t, &f, leaves)
	require.NoError(t, m.Append(ctx, 0, leaves, hs), "Append(0, 3 leaves)")

	// Append copies.
	leaves[0][0] = 'X'
	got, err := m.ReadLeaves(ctx, 0, 3)
	require.NoError(t, err)
	require.Equal(t, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, got, "ReadLeaves after caller modified its input")

	size, err := m.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), size, "Size()")

	gotHashes, err := m.ReadHashes(ctx, []int64{0, 1, 2, 3})
	require.NoError(t, err)
	require.Equal(t, hs, gotHashes, "ReadHashes(0..3)")

	// Conflicts store nothing.
	g := f
	more := hashesFor(t, &g, [][]byte{[]byte("d")})
	for _, start := range []int64{0, 2, 4} {
		err := m.Append(ctx, start, [][]byte{[]byte("d")}, more)
		assert.ErrorIs(t, err, ErrConflict, "Append(start %d) at size 3", start)
	}
	err = m.Append(ctx, 3, [][]byte{[]byte("d")}, more[:1])
	assert.Error(t, err, "Append with too few hashes")
	assert.NotErrorIs(t, err, ErrConflict, "Append with too few hashes")
	err = m.Append(ctx, -1, nil, nil)
	assert.Error(t, err, "Append(start -1)")

	size, err = m.Size(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), size, "Size() after rejected appends")

	require.NoError(t, m.Append(ctx, 3, [][]byte{[]byte("d")}, more), "Append(3, d)")
	rep, err := Verify(ctx, m, nil)
	require.NoError(t, err)
	require.Equal(t, refRoot([][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")}), rep.Root, "root of a,b,c,d")

	ranges := []struct {
		name  string
		start int64
		n     int
	}{
		{"negative start", -1, 1},
		{"negative n", 0, -1},
		{"past end", 3, 2},
		{"start past end", 5, 0},
		{"overflow", 1, int(^uint(0) >> 1)},
	}
	for _, tt := range ranges {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.ReadLeaves(ctx, tt.start, tt.n)
			assert.ErrorIs(t, err, ErrOutOfRange, "ReadLeaves(%d, %d)", tt.start, tt.n)
		})
	}
	empty, err := m.ReadLeaves(ctx, 4, 0)
	require.NoError(t, err)
	require.Empty(t, empty, "ReadLeaves(size, 0)")

	for _, idx := range []int64{-1, tlog.StoredHashCount(4), 1 << 40} {
		_, err := m.ReadHashes(ctx, []int64{0, idx})
		assert.ErrorIs(t, err, ErrOutOfRange, "ReadHashes(%d)", idx)
	}
}

func TestMemStoreCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	m := NewMemStore()
	_, err := m.Size(ctx)
	assert.ErrorIs(t, err, context.Canceled, "Size")
	var f frontier
	leaves := [][]byte{[]byte("a")}
	hs, ferr := f.extend(recordHashes(leaves))
	require.NoError(t, ferr)
	assert.ErrorIs(t, m.Append(ctx, 0, leaves, hs), context.Canceled, "Append")
	_, err = m.ReadLeaves(ctx, 0, 0)
	assert.ErrorIs(t, err, context.Canceled, "ReadLeaves")
	_, err = m.ReadHashes(ctx, nil)
	assert.ErrorIs(t, err, context.Canceled, "ReadHashes")
	size, err := m.Size(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(0), size, "Size() after cancelled Append")
}

// TestMemStoreLeafCopies appends leaves of many sizes, some larger than a
// slab and some filling slabs exactly, one and several per Append, and
// checks that each reads back as appended and that a leaf read back cannot
// be grown into its neighbour.
func TestMemStoreLeafCopies(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	var f frontier
	var want [][]byte
	sizes := []int{0, 1, 801, minSlab - 802, minSlab, maxSlab / 4, maxSlab/4 + 1, 3 * maxSlab, 100, 7}
	for round := range 3 {
		for i, n := range sizes {
			leaf := make([]byte, n)
			for j := range leaf {
				leaf[j] = byte(round*31 + i*7 + j)
			}
			batch := [][]byte{leaf}
			if i%3 == 0 {
				batch = append(batch, []byte{byte(i)}, make([]byte, n/2))
			}
			hs := hashesFor(t, &f, batch)
			require.NoError(t, m.Append(ctx, int64(len(want)), batch, hs))
			for _, l := range batch {
				want = append(want, bytes.Clone(l))
			}
			clear(leaf) // the store holds a copy
		}
	}
	got, err := m.ReadLeaves(ctx, 0, len(want))
	require.NoError(t, err)
	require.Equal(t, len(want), len(got))
	for i := range want {
		require.Equal(t, want[i], got[i], "leaf %d", i)
		assert.Equal(t, len(got[i]), cap(got[i]), "cap of leaf %d", i)
	}
	_ = append(got[1], 0xff) // must not write into leaf 2
	again, err := m.ReadLeaves(ctx, 2, 1)
	require.NoError(t, err)
	assert.Equal(t, want[2], again[0], "leaf 2 after appending to leaf 1")
	rep, err := Verify(ctx, m, nil)
	require.NoError(t, err)
	assert.Equal(t, refRoot(want), rep.Root)
}
