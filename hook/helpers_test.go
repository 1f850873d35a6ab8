package hook_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// testGuard is a Guard over a real SQLite ledger, deciding with
// testdata/policy.yaml, with ids "id-1", "id-2"… so that answers are
// predictable.
type testGuard struct {
	*oars.Guard
	store *sqlite.Store
	keys  *receipt.KeySet
}

func newTestGuard(t testing.TB) *testGuard {
	t.Helper()
	ctx := context.Background()
	p, err := policy.LoadFile(filepath.Join("testdata", "policy.yaml"))
	require.NoError(t, err)
	set, err := policy.NewSet(p)
	require.NoError(t, err)
	signer, err := receipt.GenerateSigner()
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "oars.db"))
	require.NoError(t, err)
	t.Cleanup(func() { store.Close() })
	l, err := ledger.New(ctx, store)
	require.NoError(t, err)
	var n atomic.Int64
	g, err := oars.New(set, keys, l,
		oars.WithIDGenerator(func() string { return fmt.Sprintf("id-%d", n.Add(1)) }),
		oars.WithClock(func() time.Time { return time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC) }))
	require.NoError(t, err)
	return &testGuard{Guard: g, store: store, keys: keys}
}

// verifyLedger checks the whole ledger offline: hashes, signatures and
// the receipt chains.
func (g *testGuard) verifyLedger(t testing.TB) {
	t.Helper()
	v, err := receipt.NewVerifier(g.keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), g.store, receipt.NewLogChecker(v))
	require.NoError(t, err, "ledger.Verify")
}

// chain returns the action's receipts after checking that they chain and
// verify.
func (g *testGuard) chain(t testing.TB, actionID string) []*receipt.Receipt {
	t.Helper()
	entries, err := g.Receipts(context.Background(), actionID)
	require.NoError(t, err)
	raw := make([][]byte, len(entries))
	for i, e := range entries {
		raw[i] = e.Bytes
	}
	v, err := receipt.NewVerifier(g.keys)
	require.NoError(t, err)
	rs, err := v.VerifyChain(raw)
	require.NoError(t, err, "VerifyChain")
	return rs
}

func statuses(rs []*receipt.Receipt) []receipt.Status {
	out := make([]receipt.Status, len(rs))
	for i, r := range rs {
		out[i] = r.Status
	}
	return out
}
