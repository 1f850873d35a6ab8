package sqlite_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/countertest"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestCounterStore(t *testing.T) {
	countertest.Run(t, func(t *testing.T) identity.CounterStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestCounterAfterClose(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	day := identity.DayWindow(time.Now())
	if _, ok, err := s.Consume(ctx, "acme", "k", day, 3, 10); err != nil || !ok {
		t.Fatalf("Consume = %t, %v, want true, nil", ok, err)
	}
	if used, err := s.Counter(ctx, "acme", "k", day); err != nil || used != 3 {
		t.Errorf("Counter = %d, %v, want 3, nil", used, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, _, err := s.Consume(ctx, "acme", "k", day, 1, 10); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("Consume after Close: error %v, want ErrClosed", err)
	}
}
