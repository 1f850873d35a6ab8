package ledger

import (
	"context"
	"testing"
)

// benchLeaf is about the size of a signed receipt.
var benchLeaf = make([]byte, 700)

func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	l := newTestLedger(b, NewMemStore())
	b.SetBytes(int64(len(benchLeaf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(ctx, benchLeaf); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	ctx := context.Background()
	hs := &hookStore{Store: NewMemStore()}
	l := newTestLedger(b, hs)
	b.SetBytes(int64(len(benchLeaf)))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, benchLeaf); err != nil {
				b.Error(err)
				return
			}
		}
	})
	calls, _, _ := hs.stats()
	if calls > 0 {
		b.ReportMetric(float64(b.N)/float64(calls), "leaves/commit")
	}
}

func BenchmarkProveInclusion(b *testing.B) {
	ctx := context.Background()
	l := newTestLedger(b, NewMemStore())
	leaves := make([][]byte, 1<<14)
	for i := range leaves {
		leaves[i] = leafAt(i)
	}
	if _, err := l.AppendBatch(ctx, leaves); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		if _, err := l.ProveInclusion(ctx, i%(1<<14), 1<<14); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}
