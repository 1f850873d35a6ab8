package postgres

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/countertest"
)

func TestCounterStore(t *testing.T) {
	countertest.Run(t, func(t *testing.T) identity.CounterStore {
		return openStore(t, newSchema(t))
	})
}

// TestCounterTwoStores races two Stores on one schema, like two
// replicas, for a counter's last units.
func TestCounterTwoStores(t *testing.T) {
	schema := newSchema(t)
	stores := []*Store{openStore(t, schema), openStore(t, schema)}
	ctx := context.Background()
	day := identity.DayWindow(time.Now())
	const n, capN = 50, 10
	var wg sync.WaitGroup
	var mu sync.Mutex
	granted := 0
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, ok, err := stores[i%2].Consume(ctx, "acme", "bot/pay", day, 1, capN)
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
		t.Errorf("granted %d of %d consumes over two stores, want %d", granted, n, capN)
	}
	used, err := stores[1].Counter(ctx, "acme", "bot/pay", day)
	if err != nil || used != capN {
		t.Errorf("Counter = %d, %v, want %d, nil", used, err, capN)
	}
}
