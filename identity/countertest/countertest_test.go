package countertest_test

import (
	"testing"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/countertest"
)

func TestMemCounterStore(t *testing.T) {
	countertest.Run(t, func(*testing.T) identity.CounterStore { return &identity.MemCounterStore{} })
}
