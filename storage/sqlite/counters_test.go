package sqlite_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/countertest"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestCounterStore(t *testing.T) {
	countertest.Run(t, func(t *testing.T) identity.CounterStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "oars.db"))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestCounterAfterClose(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "oars.db"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
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
