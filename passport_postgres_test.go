package oars_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
	"github.com/oarsdev/oars/receipt"
)

// replica is one oarsd replica's passport wiring: its own store, cache,
// watcher and Guard.
type replica struct {
	cache *identity.PassportCache
	f     *fixture
	// applied receives each change of the watch once the cache has
	// applied it (dropped if the test does not keep up).
	applied <-chan identity.PassportChange
}

func newReplica(t *testing.T, ctx context.Context, url, schema string) *replica {
	t.Helper()
	store := openPostgres(t, url, schema)
	cache, err := identity.NewPassportCache(store, identity.DefaultPassportTTL, nil)
	require.NoError(t, err)
	// The watch is proxied through an unbuffered channel whose first value
	// is a no-op change: once Follow took it, Follow has dropped what was
	// cached before the watch started, and what the test caches stays.
	// Each real change is followed by the same no-op: once Follow took
	// that, it has applied the change before it, which then goes to
	// applied.
	listening := make(chan struct{}, 1)
	applied := make(chan identity.PassportChange, 16)
	noop := identity.PassportChange{TenantID: "none", AgentID: "none"}
	watch := func(ctx context.Context) (<-chan identity.PassportChange, error) {
		ch, err := store.WatchPassports(ctx)
		if err != nil {
			return nil, err
		}
		out := make(chan identity.PassportChange)
		go func() {
			defer close(out)
			out <- noop
			select {
			case listening <- struct{}{}:
			default:
			}
			for c := range ch {
				out <- c
				out <- noop
				select {
				case applied <- c:
				default:
				}
			}
		}()
		return out, nil
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cache.Follow(wctx, watch, 10*time.Millisecond, func(err error) { t.Logf("passport watch: %v", err) })
	}()
	t.Cleanup(func() { cancel(); <-done })
	<-listening
	return &replica{cache: cache, f: newFixture(t, store, []string{testPolicy}, oars.WithPassports(cache)), applied: applied}
}

// TestPassportSuspensionReachesOtherReplica suspends an agent through
// replica A and measures how long replica B, whose cache holds the active
// passport for 30 seconds, takes to deny the agent's next action.
func TestPassportSuspensionReachesOtherReplica(t *testing.T) {
	url, schema := postgresSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not a timing assertion
	defer cancel()
	a := newReplica(t, ctx, url, schema)
	// B starts after the passport exists, so the creation's notification
	// does not empty B's cache after the test filled it.
	require.NoError(t, a.cache.PutPassport(ctx, passporttest.Passport("acme", "support-bot")))
	b := newReplica(t, ctx, url, schema)
	out, err := b.f.guard.Decide(ctx, refund(50, "order/warm"))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusAllowed, out.Status, "B allows the active agent (and caches its passport)")
	require.Equal(t, 1, b.cache.Len(), "B's cached passports")

	start := time.Now()
	_, err = a.cache.SetPassportStatus(ctx, "acme", "support-bot", identity.PassportSuspended)
	require.NoError(t, err)
	committed := time.Since(start)
	awaitApplied(t, ctx, b, "support-bot")
	latency := time.Since(start)
	out, err = b.f.guard.Decide(ctx, refund(50, "order/suspended"))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusDenied, out.Status, "B denies the suspended agent once its cache applied the change")
	assert.Equal(t, []string{oars.ReasonPassportSuspended, oars.ReasonPassportCode}, out.Receipts[0].Receipt.Reasons)
	// The latency is reported, not asserted (machines here are shared and
	// noisy). B's cache TTL is 30 s and nothing waited for it: the
	// suspension reached B by notification.
	t.Logf("suspension through A applied by B after %v (commit took %v)", latency, committed)

	// Resuming propagates the same way.
	_, err = a.cache.SetPassportStatus(ctx, "acme", "support-bot", identity.PassportActive)
	require.NoError(t, err)
	awaitApplied(t, ctx, b, "support-bot")
	out, err = b.f.guard.Decide(ctx, refund(50, "order/resume"))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusAllowed, out.Status, "B allows the resumed agent")
}

// awaitApplied waits until r's cache has applied a change of agent's
// passport, or fails when ctx ends.
func awaitApplied(t *testing.T, ctx context.Context, r *replica, agent string) {
	t.Helper()
	for {
		select {
		case c := <-r.applied:
			if c.AgentID == agent {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no change of %s's passport reached the replica: %v", agent, ctx.Err())
		}
	}
}
