// Package passporttest is the conformance suite of
// [identity.PassportStore] implementations. It uses only the standard
// library's testing package.
package passporttest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"github.com/oarsdev/oars/identity"
)

// Passport returns a valid active passport of agent agentID of tenant
// tenantID, never stored (version 0), with two capabilities.
func Passport(tenantID, agentID string) *identity.Passport {
	return &identity.Passport{
		AgentID: agentID, TenantID: tenantID, OwnerID: "org_12345678",
		Status: identity.PassportActive, AssuranceLevel: "L2",
		Capabilities: []identity.Capability{
			{ID: "finance.payment.refund", Limits: json.RawMessage(`{"currency_limits":{"USD":{"max_per_tx":5000,"daily_cap":50000}}}`)},
			{ID: "data.export"},
		},
	}
}

// Run runs the conformance suite, each case as a subtest on a fresh store
// from newStore.
func Run(t *testing.T, newStore func(t *testing.T) identity.PassportStore) {
	ctx := context.Background()
	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.GetPassport(ctx, "acme", "nobody"); !errors.Is(err, identity.ErrPassportNotFound) {
			t.Errorf("GetPassport(absent) error = %v, want ErrPassportNotFound", err)
		}
		if _, err := s.SetPassportStatus(ctx, "acme", "nobody", identity.PassportSuspended); !errors.Is(err, identity.ErrPassportNotFound) {
			t.Errorf("SetPassportStatus(absent) error = %v, want ErrPassportNotFound", err)
		}
	})
	t.Run("CreateGetUpdate", func(t *testing.T) {
		s := newStore(t)
		p := Passport("acme", "bot")
		if err := s.PutPassport(ctx, p); err != nil {
			t.Fatalf("PutPassport(new) = %v, want nil", err)
		}
		if p.Version != 1 || p.CreatedAt.IsZero() || p.UpdatedAt.IsZero() {
			t.Errorf("after create: version %d, created_at %v, updated_at %v; want 1 and times set", p.Version, p.CreatedAt, p.UpdatedAt)
		}
		got, err := s.GetPassport(ctx, "acme", "bot")
		if err != nil {
			t.Fatalf("GetPassport = %v", err)
		}
		if got.OwnerID != p.OwnerID || got.Version != 1 || !got.HasCapability("finance.payment.refund") || got.Status != identity.PassportActive {
			t.Errorf("GetPassport = %+v, want the stored passport", got)
		}
		if want := `{"currency_limits":{"USD":{"daily_cap":50000,"max_per_tx":5000}}}`; string(got.Capabilities[0].Limits) != want {
			t.Errorf("stored limits = %s, want canonical %s", got.Capabilities[0].Limits, want)
		}
		if _, err := s.GetPassport(ctx, "other", "bot"); !errors.Is(err, identity.ErrPassportNotFound) {
			t.Errorf("GetPassport(other tenant) error = %v, want ErrPassportNotFound", err)
		}
		got.AssuranceLevel = "L3"
		if err := s.PutPassport(ctx, got); err != nil {
			t.Fatalf("PutPassport(update v1) = %v", err)
		}
		if got.Version != 2 {
			t.Errorf("version after update = %d, want 2", got.Version)
		}
		if !got.CreatedAt.Equal(p.CreatedAt) {
			t.Errorf("created_at changed on update: %v, want %v", got.CreatedAt, p.CreatedAt)
		}
	})
	t.Run("Conflicts", func(t *testing.T) {
		s := newStore(t)
		p := Passport("acme", "bot")
		if err := s.PutPassport(ctx, p); err != nil {
			t.Fatalf("PutPassport = %v", err)
		}
		again := Passport("acme", "bot")
		if err := s.PutPassport(ctx, again); !errors.Is(err, identity.ErrPassportConflict) {
			t.Errorf("PutPassport(create existing) error = %v, want ErrPassportConflict", err)
		}
		stale := Passport("acme", "bot")
		stale.Version = 7
		if err := s.PutPassport(ctx, stale); !errors.Is(err, identity.ErrPassportConflict) {
			t.Errorf("PutPassport(stale version) error = %v, want ErrPassportConflict", err)
		}
		ghost := Passport("acme", "ghost")
		ghost.Version = 1
		if err := s.PutPassport(ctx, ghost); !errors.Is(err, identity.ErrPassportConflict) {
			t.Errorf("PutPassport(update absent) error = %v, want ErrPassportConflict", err)
		}
	})
	t.Run("Invalid", func(t *testing.T) {
		s := newStore(t)
		p := Passport("acme", "bot")
		p.Capabilities[0].ID = "Finance.Refund"
		if err := s.PutPassport(ctx, p); !errors.Is(err, identity.ErrInvalidPassport) {
			t.Errorf("PutPassport(bad capability) error = %v, want ErrInvalidPassport", err)
		}
		if _, err := s.GetPassport(ctx, "acme", "bot"); !errors.Is(err, identity.ErrPassportNotFound) {
			t.Errorf("GetPassport after refused put error = %v, want ErrPassportNotFound", err)
		}
	})
	t.Run("StatusMachine", func(t *testing.T) {
		s := newStore(t)
		p := Passport("acme", "bot")
		p.Status = identity.PassportDraft
		if err := s.PutPassport(ctx, p); err != nil {
			t.Fatalf("PutPassport = %v", err)
		}
		steps := []struct {
			to      identity.PassportStatus
			wantErr error
			version int64
		}{
			{identity.PassportSuspended, identity.ErrPassportTransition, 1},
			{identity.PassportActive, nil, 2},
			{identity.PassportSuspended, nil, 3},
			{identity.PassportSuspended, nil, 3}, // already: no change
			{identity.PassportActive, nil, 4},
			{identity.PassportRevoked, nil, 5},
			{identity.PassportActive, identity.ErrPassportTransition, 5},
			{identity.PassportRevoked, nil, 5},
		}
		for i, st := range steps {
			got, err := s.SetPassportStatus(ctx, "acme", "bot", st.to)
			if !errors.Is(err, st.wantErr) || (st.wantErr == nil) != (err == nil) {
				t.Fatalf("step %d: SetPassportStatus(%s) error = %v, want %v", i, st.to, err, st.wantErr)
			}
			if err == nil && (got.Status != st.to || got.Version != st.version) {
				t.Errorf("step %d: SetPassportStatus(%s) = status %s version %d, want %s %d", i, st.to, got.Status, got.Version, st.to, st.version)
			}
		}
		got, err := s.GetPassport(ctx, "acme", "bot")
		if err != nil || got.Status != identity.PassportRevoked {
			t.Errorf("GetPassport after revoke = %v, %v; want revoked", got, err)
		}
		if got != nil {
			got.Status = identity.PassportActive
			if err := s.PutPassport(ctx, got); !errors.Is(err, identity.ErrPassportTransition) {
				t.Errorf("PutPassport(revoked → active) error = %v, want ErrPassportTransition", err)
			}
		}
	})
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		s := newStore(t)
		p := Passport("acme", "bot")
		if err := s.PutPassport(ctx, p); err != nil {
			t.Fatalf("PutPassport = %v", err)
		}
		const n = 8
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				c := p.Clone()
				c.OwnerID = "org_writer"
				errs[i] = s.PutPassport(ctx, c)
			})
		}
		wg.Wait()
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, identity.ErrPassportConflict):
				t.Errorf("writer %d: PutPassport = %v, want nil or ErrPassportConflict", i, err)
			}
		}
		if ok != 1 {
			t.Errorf("%d of %d writers of version 1 succeeded, want exactly 1", ok, n)
		}
	})
}
