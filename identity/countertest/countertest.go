// Package countertest is the conformance suite of [identity.CounterStore]
// implementations. It uses only the standard library's testing package.
package countertest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/identity"
)

// Run runs the conformance suite, each case as a subtest on a fresh store
// from newStore.
func Run(t *testing.T, newStore func(t *testing.T) identity.CounterStore) {
	ctx := context.Background()
	day := identity.DayWindow(time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC))
	next := day.AddDate(0, 0, 1)

	t.Run("consume up to the cap", func(t *testing.T) {
		s := newStore(t)
		steps := []struct {
			amount, cap, used int64
			ok                bool
		}{
			{amount: 4, cap: 10, used: 4, ok: true},
			{amount: 6, cap: 10, used: 10, ok: true},
			{amount: 1, cap: 10, used: 10, ok: false},
			{amount: 1, cap: 11, used: 11, ok: true},
			{amount: 20, cap: 5, used: 11, ok: false},
		}
		for i, st := range steps {
			used, ok, err := s.Consume(ctx, "acme", "bot/pay", day, st.amount, st.cap)
			if err != nil {
				t.Fatalf("step %d: Consume(%d, cap %d) error: %v", i, st.amount, st.cap, err)
			}
			if used != st.used || ok != st.ok {
				t.Errorf("step %d: Consume(%d, cap %d) = %d, %t, want %d, %t", i, st.amount, st.cap, used, ok, st.used, st.ok)
			}
		}
	})

	t.Run("first consume over the cap", func(t *testing.T) {
		s := newStore(t)
		used, ok, err := s.Consume(ctx, "acme", "bot/pay", day, 11, 10)
		if err != nil || ok || used != 0 {
			t.Errorf("Consume(11, cap 10) on a new counter = %d, %t, %v, want 0, false, nil", used, ok, err)
		}
	})

	t.Run("counters are apart", func(t *testing.T) {
		s := newStore(t)
		for _, c := range []struct {
			tenant, key string
			window      time.Time
		}{
			{"acme", "bot/pay", day}, {"other", "bot/pay", day}, {"acme", "bot/pay/EUR", day}, {"acme", "bot/pay", next},
		} {
			used, ok, err := s.Consume(ctx, c.tenant, c.key, c.window, 10, 10)
			if err != nil || !ok || used != 10 {
				t.Errorf("Consume(%s, %s, %s, 10, cap 10) = %d, %t, %v, want 10, true, nil", c.tenant, c.key, c.window, used, ok, err)
			}
		}
	})

	t.Run("release", func(t *testing.T) {
		s := newStore(t)
		if err := s.Release(ctx, "acme", "bot/pay", day, 5); err != nil {
			t.Fatalf("Release of a missing counter: %v", err)
		}
		if _, ok, err := s.Consume(ctx, "acme", "bot/pay", day, 10, 10); err != nil || !ok {
			t.Fatalf("Consume(10, cap 10) = %t, %v, want true, nil", ok, err)
		}
		if err := s.Release(ctx, "acme", "bot/pay", day, 4); err != nil {
			t.Fatalf("Release(4): %v", err)
		}
		used, ok, err := s.Consume(ctx, "acme", "bot/pay", day, 4, 10)
		if err != nil || !ok || used != 10 {
			t.Errorf("Consume(4, cap 10) after Release(4) = %d, %t, %v, want 10, true, nil", used, ok, err)
		}
		if err := s.Release(ctx, "acme", "bot/pay", day, 100); err != nil {
			t.Fatalf("Release(100): %v", err)
		}
		used, ok, err = s.Consume(ctx, "acme", "bot/pay", day, 1, 10)
		if err != nil || !ok || used != 1 {
			t.Errorf("Consume(1, cap 10) after releasing more than used = %d, %t, %v, want 1, true, nil", used, ok, err)
		}
	})

	t.Run("invalid arguments", func(t *testing.T) {
		s := newStore(t)
		for _, c := range []struct {
			name, tenant, key string
			amount, cap       int64
		}{
			{"zero amount", "acme", "k", 0, 10},
			{"negative amount", "acme", "k", -1, 10},
			{"zero cap", "acme", "k", 1, 0},
			{"empty tenant", "", "k", 1, 10},
			{"empty key", "acme", "", 1, 10},
		} {
			if _, _, err := s.Consume(ctx, c.tenant, c.key, day, c.amount, c.cap); !errors.Is(err, identity.ErrInvalidCounter) {
				t.Errorf("Consume %s: error %v, want ErrInvalidCounter", c.name, err)
			}
		}
		if err := s.Release(ctx, "acme", "k", day, 0); !errors.Is(err, identity.ErrInvalidCounter) {
			t.Errorf("Release(0): error %v, want ErrInvalidCounter", err)
		}
	})

	t.Run("concurrent consumes never exceed the cap", func(t *testing.T) {
		s := newStore(t)
		const n, capN = 40, 15
		var wg sync.WaitGroup
		var mu sync.Mutex
		granted := 0
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, ok, err := s.Consume(ctx, "acme", "bot/pay", day, 1, capN)
				if err != nil {
					t.Errorf("Consume: %v", err)
					return
				}
				if ok {
					mu.Lock()
					granted++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if granted != capN {
			t.Errorf("granted %d of %d concurrent consumes, want %d", granted, n, capN)
		}
	})
}
