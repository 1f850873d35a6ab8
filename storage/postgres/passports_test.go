package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
)

func TestPassportStore(t *testing.T) {
	passporttest.Run(t, func(t *testing.T) identity.PassportStore {
		return openStore(t, newSchema(t))
	})
}

func TestWatchPassports(t *testing.T) {
	schema := newSchema(t)
	a := openStore(t, schema)
	b := openStore(t, schema)
	other := openStore(t, newSchema(t))                                      // another schema's changes are not ours
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // a bound, not a timing assertion
	defer cancel()
	ch, err := b.WatchPassports(ctx)
	if err != nil {
		t.Fatalf("WatchPassports = %v", err)
	}
	if err := other.PutPassport(ctx, passporttest.Passport("acme", "elsewhere")); err != nil {
		t.Fatalf("PutPassport(other schema) = %v", err)
	}
	if err := a.PutPassport(ctx, passporttest.Passport("acme", "bot")); err != nil {
		t.Fatalf("PutPassport = %v", err)
	}
	if _, err := a.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended); err != nil {
		t.Fatalf("SetPassportStatus = %v", err)
	}
	want := []identity.PassportChange{
		{TenantID: "acme", AgentID: "bot", Status: identity.PassportActive},
		{TenantID: "acme", AgentID: "bot", Status: identity.PassportSuspended},
	}
	for i, w := range want {
		select {
		case got := <-ch:
			if got != w {
				t.Errorf("change %d = %+v, want %+v", i, got, w)
			}
		case <-ctx.Done():
			t.Fatalf("change %d not received", i)
		}
	}
	// Setting the status it has changes and notifies nothing; Close ends
	// the watch.
	if _, err := a.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended); err != nil {
		t.Fatalf("SetPassportStatus(again) = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for c := range ch {
		t.Errorf("change after the last one: %+v", c)
	}
	if _, err := b.WatchPassports(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("WatchPassports after Close error = %v, want ErrClosed", err)
	}
}
