package oars

import (
	"sync"
	"testing"
)

func TestKeyedMutex(t *testing.T) {
	var k keyedMutex
	unlockA := k.lock("a")
	// Another key is not blocked by a held one.
	unlockB := k.lock("b")
	unlockB()

	// The same key waits for its holder.
	acquired := make(chan struct{})
	go func() {
		unlock := k.lock("a")
		close(acquired)
		unlock()
	}()
	select {
	case <-acquired:
		t.Fatal("lock(a) succeeded while a was held")
	default:
	}
	unlockA()
	<-acquired

	// Entries are dropped once unused.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k.lock("c")()
		}()
	}
	wg.Wait()
	k.mu.Lock()
	n := len(k.locks)
	k.mu.Unlock()
	if n != 0 {
		t.Errorf("%d lock entries left after every holder unlocked, want 0", n)
	}
}
