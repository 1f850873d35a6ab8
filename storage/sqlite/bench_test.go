package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
)

// Compare BenchmarkAppendSQLite with BenchmarkFsync: group commit should
// make a durable SQLite append at least 12x cheaper than one small write
// plus fsync, by putting many leaves in each synced transaction.
//
//	go test ./storage/sqlite -run '^$' -bench . -benchtime=3s

// BenchmarkFsync is the baseline: append 1 KB to a file and fsync it, the
// least a durable write on this disk costs.
func BenchmarkFsync(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "fsync"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 1024)
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendSQLite appends ~1 KB receipt-shaped leaves through a
// Ledger from 64 goroutines (on 2 cores), so group commit batches them.
func BenchmarkAppendSQLite(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			l, cs := benchLedger(b, sync)
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := l.Append(ctx, benchLeaf(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(b.N)/float64(max(cs.calls.Load(), 1)), "leaves/commit")
		})
	}
}

// BenchmarkAppendSQLiteSerial appends from one goroutine: one leaf per
// transaction, one sync per leaf.
func BenchmarkAppendSQLiteSerial(b *testing.B) {
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			l, _ := benchLedger(b, sync)
			ctx := context.Background()
			var n int64
			for b.Loop() {
				n++
				if _, err := l.Append(ctx, benchLeaf(n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkReadLeaves reads 1024 leaves per op, as Verify does.
func BenchmarkReadLeaves(b *testing.B) {
	l, cs := benchLedger(b, "FULL")
	leaves := make([][]byte, 4096)
	for i := range leaves {
		leaves[i] = benchLeaf(int64(i))
	}
	ctx := context.Background()
	if _, err := l.AppendBatch(ctx, leaves); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(1024 * len(leaves[0])))
	var start int64
	for b.Loop() {
		if _, err := cs.ReadLeaves(ctx, start, 1024); err != nil {
			b.Fatal(err)
		}
		start = (start + 1024) % 4096
	}
}

// countingStore counts Append calls, to report leaves per commit.
type countingStore struct {
	*Store
	calls atomic.Int64
}

func (c *countingStore) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	c.calls.Add(1)
	return c.Store.Append(ctx, start, leaves, hashes)
}

func benchLedger(b *testing.B, sync string) (*ledger.Ledger, *countingStore) {
	b.Helper()
	s, err := Open(context.Background(), filepath.Join(b.TempDir(), "oars.db"), withSynchronous(sync))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	cs := &countingStore{Store: s}
	l, err := ledger.New(context.Background(), cs)
	if err != nil {
		b.Fatal(err)
	}
	return l, cs
}

var benchPadding = strings.Repeat("x", 760)

// benchLeaf returns a unique ~1 KB receipt-shaped leaf.
func benchLeaf(n int64) []byte {
	return fmt.Appendf(nil, `{"action_id":"act_%016d","agent_id":"agent-7","input_digest":"sha256:%064d",`+
		`"issued_at":"2026-01-02T03:04:05.123456Z","mode":"enforce","padding":"%s","receipt_id":"rcpt_%016d",`+
		`"seq":1,"spec":"oars.receipt.v1","status":"allowed","tenant_id":"tenant-1"}`, n, n, benchPadding, n)
}
