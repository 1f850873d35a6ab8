package postgres

import (
	"context"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/ledger/ledgertest"
)

func TestConformance(t *testing.T) {
	testURL(t)
	ledgertest.RunHarness(t, ledgertest.Harness{
		New: func(t *testing.T) ledger.Store {
			return openStore(t, newSchema(t))
		},
		Reopen: func(t *testing.T, s ledger.Store) ledger.Store {
			ps := s.(*Store)
			if err := ps.Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			s2, err := Open(context.Background(), testURL(t), WithSchema(ps.schema))
			if err != nil {
				t.Fatalf("Open(same schema) = %v, want nil", err)
			}
			t.Cleanup(func() { _ = s2.Close() })
			return s2
		},
	})
}
