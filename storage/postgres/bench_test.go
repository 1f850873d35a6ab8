package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
)

// countingStore counts the Store.Append calls (transactions) under a Ledger.
type countingStore struct {
	*Store
	appends atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	c.appends.Add(1)
	return c.Store.Append(ctx, start, leaves, hashes)
}

// benchLedger opens a Ledger over a store in a fresh schema.
func benchLedger(b *testing.B) (*ledger.Ledger, *countingStore) {
	b.Helper()
	s := &countingStore{Store: openStore(b, newSchema(b))}
	l, err := ledger.New(context.Background(), s)
	if err != nil {
		b.Fatalf("ledger.New: %v", err)
	}
	return l, s
}

// benchLeafSize is about the size of a signed receipt.
const benchLeafSize = 1024

// BenchmarkAppendPostgres drives one Ledger from 32×GOMAXPROCS goroutines,
// so group commit puts many receipts in each transaction.
func BenchmarkAppendPostgres(b *testing.B) {
	l, cs := benchLedger(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetBytes(benchLeafSize)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("bench-%d", n.Add(1))
			leaf := receiptLeaf("rcpt-"+id, "act-"+id, 1, "allowed", benchLeafSize)
			if _, err := l.Append(ctx, leaf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	if tx := cs.appends.Load(); tx > 0 {
		b.ReportMetric(float64(b.N)/float64(tx), "leaves/tx")
	}
}

// BenchmarkAppendPostgresSerial appends from one goroutine: one leaf per
// transaction, the rate without group commit.
func BenchmarkAppendPostgresSerial(b *testing.B) {
	l, _ := benchLedger(b)
	ctx := context.Background()
	b.SetBytes(benchLeafSize)
	i := 0
	for b.Loop() {
		i++
		id := fmt.Sprintf("bench-%d", i)
		leaf := receiptLeaf("rcpt-"+id, "act-"+id, 1, "allowed", benchLeafSize)
		if _, err := l.Append(ctx, leaf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
