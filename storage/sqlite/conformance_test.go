package sqlite_test

import (
	"path/filepath"
	"sync"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/ledger/ledgertest"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestConformance(t *testing.T) {
	var mu sync.Mutex
	files := map[ledger.Store]string{} // store -> its file, for Reopen
	open := func(t *testing.T, path string) ledger.Store {
		s := openAt(t, path)
		mu.Lock()
		files[s] = path
		mu.Unlock()
		return s
	}
	ledgertest.RunHarness(t, ledgertest.Harness{
		New: func(t *testing.T) ledger.Store {
			return open(t, filepath.Join(t.TempDir(), "oars.db"))
		},
		Reopen: func(t *testing.T, s ledger.Store) ledger.Store {
			mu.Lock()
			path, ok := files[s]
			mu.Unlock()
			if !ok {
				t.Fatal("Reopen: store not opened by this harness")
			}
			if err := s.(*sqlite.Store).Close(); err != nil {
				t.Fatalf("Close() = %v, want nil", err)
			}
			return open(t, path)
		},
	})
}
