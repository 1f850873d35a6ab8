package ledger_test

import (
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/ledger/ledgertest"
)

func TestMemStoreConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store { return ledger.NewMemStore() })
}

// TestScanQuerierConformance runs the suite, query cases included, on the
// scanning querier of NewQuerier: the MemStore under it is hidden behind a
// type that only has the Store methods, so NewQuerier cannot use MemStore's
// own index.
func TestScanQuerierConformance(t *testing.T) {
	ledgertest.Run(t, func(t *testing.T) ledger.Store {
		hidden := struct{ ledger.Store }{ledger.NewMemStore()}
		q := ledger.NewQuerier(hidden)
		if _, isMem := q.(*ledger.MemStore); isMem {
			t.Fatal("NewQuerier(store without Querier) returned the MemStore, want a scanning querier")
		}
		return struct {
			ledger.Store
			ledger.Querier
		}{hidden, q}
	})
}
