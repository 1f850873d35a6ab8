package identity_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
)

func TestCanTransition(t *testing.T) {
	all := []identity.PassportStatus{identity.PassportDraft, identity.PassportActive, identity.PassportSuspended, identity.PassportRevoked}
	allowed := map[[2]identity.PassportStatus]bool{
		{identity.PassportDraft, identity.PassportActive}:      true,
		{identity.PassportActive, identity.PassportSuspended}:  true,
		{identity.PassportSuspended, identity.PassportActive}:  true,
		{identity.PassportDraft, identity.PassportRevoked}:     true,
		{identity.PassportActive, identity.PassportRevoked}:    true,
		{identity.PassportSuspended, identity.PassportRevoked}: true,
	}
	for _, from := range all {
		for _, to := range all {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				want := allowed[[2]identity.PassportStatus{from, to}]
				if got := identity.CanTransition(from, to); got != want {
					t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
				}
			})
		}
	}
	if identity.CanTransition(identity.PassportActive, "paused") {
		t.Errorf("CanTransition(active, paused) = true, want false")
	}
}

const validJSON = `{"agent_id":"bot","tenant_id":"acme","owner_id":"org_1","status":"active","assurance_level":"L2",
"capabilities":[{"id":"finance.payment.refund","limits":{"currency_limits":{"USD":{"max_per_tx":5000}}}},{"id":"data.export"}],
"created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:05Z","version":3}`

func TestParsePassport(t *testing.T) {
	tests := []struct {
		name, in string
		wantErr  string // "" for valid
	}{
		{"valid", validJSON, ""},
		{"minimal", `{"agent_id":"a","tenant_id":"t","owner_id":"o","status":"draft","assurance_level":"L0","capabilities":[]}`, ""},
		{"unknown member", strings.Replace(validJSON, `"version":3`, `"version":3,"did":"did:web:x"`, 1), "member"},
		{"duplicate key", strings.Replace(validJSON, `"version":3`, `"version":3,"version":4`, 1), "not strict JSON"},
		{"bad status", strings.Replace(validJSON, `"status":"active"`, `"status":"paused"`, 1), "status must be"},
		{"bad assurance", strings.Replace(validJSON, `"L2"`, `"L5"`, 1), "assurance_level must be"},
		{"uppercase capability", strings.Replace(validJSON, `"data.export"`, `"Data.Export"`, 1), "capabilities[1].id"},
		{"empty capability segment", strings.Replace(validJSON, `"data.export"`, `"data..export"`, 1), "capabilities[1].id"},
		{"duplicate capability", strings.Replace(validJSON, `"data.export"`, `"finance.payment.refund"`, 1), "repeats"},
		{"limits not object", strings.Replace(validJSON, `{"currency_limits":{"USD":{"max_per_tx":5000}}}`, `[1]`, 1), "must be a JSON object"},
		{"missing owner", strings.Replace(validJSON, `"owner_id":"org_1",`, ``, 1), "owner_id is required"},
		{"control char", strings.Replace(validJSON, `"owner_id":"org_1"`, `"owner_id":"org\u0001"`, 1), "control character"},
		{"negative version", strings.Replace(validJSON, `"version":3`, `"version":-1`, 1), "negative version"},
		{"not an object", `[]`, "invalid passport"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := identity.ParsePassport([]byte(tt.in))
			if tt.wantErr == "" {
				require.NoError(t, err, "ParsePassport(%s)", tt.name)
				assert.NoError(t, p.Validate(), "Validate(ParsePassport(%s))", tt.name)
				assert.NotNil(t, p.Capabilities, "ParsePassport(%s).Capabilities", tt.name)
				return
			}
			require.ErrorIs(t, err, identity.ErrInvalidPassport, "ParsePassport(%s)", tt.name)
			assert.Contains(t, err.Error(), tt.wantErr, "ParsePassport(%s) error", tt.name)
			assert.NotContains(t, err.Error(), "org\u0001", "error echoes input")
		})
	}
}

func TestPassportRoundTrip(t *testing.T) {
	p, err := identity.ParsePassport([]byte(validJSON))
	require.NoError(t, err)
	assert.Equal(t, []string{"finance.payment.refund", "data.export"}, p.CapabilityIDs())
	data, err := identity.MarshalPassport(p)
	require.NoError(t, err)
	again, err := identity.ParsePassport(data)
	require.NoError(t, err)
	assert.Equal(t, p, again, "ParsePassport(MarshalPassport(p)) = %+v, want %+v", again, p)
	empty := &identity.Passport{AgentID: "a", TenantID: "t", OwnerID: "o", Status: identity.PassportActive, AssuranceLevel: "L0"}
	data, err = identity.MarshalPassport(empty)
	require.NoError(t, err)
	assert.Contains(t, string(data), `"capabilities":[]`, "MarshalPassport(no capabilities)")
}

func TestMemPassportStore(t *testing.T) {
	passporttest.Run(t, func(t *testing.T) identity.PassportStore { return &identity.MemPassportStore{} })
}

func TestPassportCacheConformance(t *testing.T) {
	passporttest.Run(t, func(t *testing.T) identity.PassportStore {
		c, err := identity.NewPassportCache(&identity.MemPassportStore{}, time.Hour, nil)
		require.NoError(t, err)
		return c
	})
}

// countingStore counts the reads of a store and can fail them.
type countingStore struct {
	identity.PassportStore
	reads atomic.Int64
	fail  atomic.Bool
}

func (s *countingStore) GetPassport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error) {
	s.reads.Add(1)
	if s.fail.Load() {
		return nil, errors.New("store down")
	}
	return s.PassportStore.GetPassport(ctx, tenantID, agentID)
}

func TestPassportCache(t *testing.T) {
	ctx := context.Background()
	mem := &identity.MemPassportStore{}
	store := &countingStore{PassportStore: mem}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c, err := identity.NewPassportCache(store, 0, clock)
	require.NoError(t, err)
	require.NoError(t, mem.PutPassport(ctx, passporttest.Passport("acme", "bot")))

	get := func() *identity.Passport {
		t.Helper()
		p, err := c.Passport(ctx, "acme", "bot")
		require.NoError(t, err)
		return p
	}
	get()
	get()
	assert.Equal(t, int64(1), store.reads.Load(), "store reads after two lookups")

	// A change elsewhere is not seen until the TTL passes ...
	_, err = mem.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended)
	require.NoError(t, err)
	assert.Equal(t, identity.PassportActive, get().Status, "cached status before TTL")
	now = now.Add(identity.DefaultPassportTTL)
	assert.Equal(t, identity.PassportSuspended, get().Status, "status after TTL")

	// ... or an invalidation.
	_, err = mem.SetPassportStatus(ctx, "acme", "bot", identity.PassportActive)
	require.NoError(t, err)
	c.Invalidate("acme", "bot")
	assert.Equal(t, identity.PassportActive, get().Status, "status after Invalidate")

	// Writes through the cache are seen at once.
	_, err = c.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended)
	require.NoError(t, err)
	assert.Equal(t, identity.PassportSuspended, get().Status, "status after a write through the cache")

	// Absence is cached too; errors are not.
	reads := store.reads.Load()
	for range 2 {
		_, err := c.Passport(ctx, "acme", "ghost")
		require.ErrorIs(t, err, identity.ErrPassportNotFound)
	}
	assert.Equal(t, reads+1, store.reads.Load(), "store reads for two lookups of an absent passport")
	store.fail.Store(true)
	_, err = c.Passport(ctx, "acme", "other")
	require.Error(t, err)
	assert.NotErrorIs(t, err, identity.ErrPassportNotFound)
	store.fail.Store(false)
	_, err = c.Passport(ctx, "acme", "other")
	require.ErrorIs(t, err, identity.ErrPassportNotFound, "lookup after a store error")

	// A cached copy cannot be changed by its receiver.
	p := get()
	p.Status = identity.PassportActive
	assert.Equal(t, identity.PassportSuspended, get().Status, "status after modifying a returned copy")
}

// racingStore invalidates the cache while a read is in flight.
type racingStore struct {
	identity.PassportStore
	during func()
}

func (s *racingStore) GetPassport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error) {
	p, err := s.PassportStore.GetPassport(ctx, tenantID, agentID)
	if s.during != nil {
		s.during()
	}
	return p, err
}

func TestPassportCacheInvalidationDuringRead(t *testing.T) {
	ctx := context.Background()
	mem := &identity.MemPassportStore{}
	require.NoError(t, mem.PutPassport(ctx, passporttest.Passport("acme", "bot")))
	rs := &racingStore{PassportStore: mem}
	c, err := identity.NewPassportCache(rs, time.Hour, nil)
	require.NoError(t, err)
	rs.during = func() {
		// The suspension commits and is announced after the read.
		_, err := mem.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended)
		require.NoError(t, err)
		c.Invalidate("acme", "bot")
	}
	p, err := c.Passport(ctx, "acme", "bot")
	require.NoError(t, err)
	assert.Equal(t, identity.PassportActive, p.Status, "the racing read itself")
	rs.during = nil
	p, err = c.Passport(ctx, "acme", "bot")
	require.NoError(t, err)
	assert.Equal(t, identity.PassportSuspended, p.Status, "Passport after an invalidation during the previous read (stale entry kept)")
}

func TestPassportCacheFollow(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mem := &identity.MemPassportStore{}
	require.NoError(t, mem.PutPassport(ctx, passporttest.Passport("acme", "bot")))
	c, err := identity.NewPassportCache(mem, time.Hour, nil)
	require.NoError(t, err)

	changes := make(chan identity.PassportChange)
	watches := make(chan struct{}, 4)
	var calls atomic.Int64
	watch := func(ctx context.Context) (<-chan identity.PassportChange, error) {
		defer func() { watches <- struct{}{} }()
		if calls.Add(1) == 1 {
			return nil, errors.New("connection refused")
		}
		return changes, nil
	}
	failures := make(chan error, 4)
	done := make(chan error, 1)
	go func() { done <- c.Follow(ctx, watch, time.Millisecond, func(err error) { failures <- err }) }()
	<-watches
	require.Error(t, <-failures, "the first watch failure is reported")
	<-watches

	_, err = c.Passport(ctx, "acme", "bot")
	require.NoError(t, err)
	require.Equal(t, 1, c.Len())
	_, err = mem.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended)
	require.NoError(t, err)
	changes <- identity.PassportChange{TenantID: "acme", AgentID: "other"}
	changes <- identity.PassportChange{TenantID: "acme", AgentID: "bot", Status: identity.PassportSuspended}
	// The unbuffered sends returned: the first change was handled, the
	// second received. A third, a no-op, orders the second's handling.
	changes <- identity.PassportChange{TenantID: "x", AgentID: "y"}
	p, err := c.Passport(ctx, "acme", "bot")
	require.NoError(t, err)
	assert.Equal(t, identity.PassportSuspended, p.Status, "Passport after a change notification")

	cancel()
	close(changes) // as a watch does when its ctx ends
	assert.ErrorIs(t, <-done, context.Canceled, "Follow after ctx ends")
}

func ExamplePassportCache() {
	ctx := context.Background()
	store := &identity.MemPassportStore{}
	if err := store.PutPassport(ctx, &identity.Passport{
		AgentID: "refund-bot", TenantID: "acme", OwnerID: "org_acme",
		Status: identity.PassportActive, AssuranceLevel: "L3",
		Capabilities: []identity.Capability{{ID: "finance.payment.refund"}},
	}); err != nil {
		fmt.Println(err)
		return
	}
	cache, err := identity.NewPassportCache(store, 0, nil) // TTL 30s
	if err != nil {
		fmt.Println(err)
		return
	}
	// The kill switch: suspend through the cache, seen at once.
	if _, err := cache.SetPassportStatus(ctx, "acme", "refund-bot", identity.PassportSuspended); err != nil {
		fmt.Println(err)
		return
	}
	p, err := cache.Passport(ctx, "acme", "refund-bot")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Status, p.Version, p.HasCapability("finance.payment.refund"))
	// Revoked is final.
	if _, err := cache.SetPassportStatus(ctx, "acme", "refund-bot", identity.PassportRevoked); err != nil {
		fmt.Println(err)
		return
	}
	_, err = cache.SetPassportStatus(ctx, "acme", "refund-bot", identity.PassportActive)
	fmt.Println(errors.Is(err, identity.ErrPassportTransition))
	// Output:
	// suspended 2 true
	// true
}

func FuzzParsePassport(f *testing.F) {
	f.Add([]byte(validJSON))
	f.Add([]byte(`{"agent_id":"a","tenant_id":"t","owner_id":"o","status":"draft","assurance_level":"L0","capabilities":[]}`))
	f.Add([]byte(`{"capabilities":[{"id":"a.b","limits":{"x":1e400}}]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := identity.ParsePassport(data)
		if err != nil {
			if !errors.Is(err, identity.ErrInvalidPassport) {
				t.Fatalf("ParsePassport error %v does not wrap ErrInvalidPassport", err)
			}
			return
		}
		out, err := identity.MarshalPassport(p)
		if err != nil {
			t.Fatalf("MarshalPassport(parsed) = %v", err)
		}
		again, err := identity.ParsePassport(out)
		if err != nil {
			t.Fatalf("ParsePassport(MarshalPassport(p)) = %v", err)
		}
		out2, err := identity.MarshalPassport(again)
		if err != nil || string(out2) != string(out) {
			t.Fatalf("round trip not stable:\n%s\n%s", out, out2)
		}
	})
}
