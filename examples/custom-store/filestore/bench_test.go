package filestore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/oarsdev/oars/examples/custom-store/filestore"
	"github.com/oarsdev/oars/ledger"
)

// benchLeaf is about the size of a signed receipt.
var benchLeaf = make([]byte, 1024)

func benchLedger(b *testing.B) *ledger.Ledger {
	b.Helper()
	s, err := filestore.Open(b.Context(), filepath.Join(b.TempDir(), "ledger"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	l, err := ledger.New(b.Context(), s)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// BenchmarkAppend: one goroutine, so one leaf per durable commit.
func BenchmarkAppend(b *testing.B) {
	l := benchLedger(b)
	for b.Loop() {
		if _, err := l.Append(b.Context(), benchLeaf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendParallel: many goroutines, so group commit puts many
// leaves in each durable commit.
func BenchmarkAppendParallel(b *testing.B) {
	l := benchLedger(b)
	b.SetParallelism(32)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(b.Context(), benchLeaf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkFsync is the floor: a 1 KB write and an fsync per operation.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if _, err := f.Write(benchLeaf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
