package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
)

// Compare BenchmarkAppendSQLite with BenchmarkFsync: group commit should
// make a durable SQLite append at least 12x cheaper than one small write
// plus fsync, by putting many leaves in each synced transaction. The
// cpu-µs/op metric (process CPU time per append, where the platform reports
// it) varies much less than the rates on a shared machine; on a quiet one,
// run each benchmark several times (-count) and compare medians.
// BenchmarkSQLiteFloor shows the most this driver and disk allow: what a
// bare table and the real table take per row with no OARS code around them.
//
//	go test ./storage/sqlite -run '^$' -bench . -benchtime=3s -count=3

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
			cpu := startCPU()
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
			cpu.report(b)
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
			cpu := startCPU()
			for b.Loop() {
				n++
				if _, err := l.Append(ctx, benchLeaf(n)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
			cpu.report(b)
		})
	}
}

// BenchmarkStoreAppend calls Store.Append directly with batches of 32
// leaves, the size group commit makes in BenchmarkAppendSQLite, from one
// goroutine, and times only those calls: the store's own cost per leaf,
// without the Ledger's hashing or the scheduling of many goroutines.
func BenchmarkStoreAppend(b *testing.B) {
	const batch = 32
	for _, sync := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			s, err := Open(context.Background(), filepath.Join(b.TempDir(), "oars.db"), withSynchronous(sync))
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = s.Close() })
			ctx := context.Background()
			var all []tlog.Hash // every stored hash so far
			reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
				out := make([]tlog.Hash, len(idx))
				for i, x := range idx {
					out[i] = all[x]
				}
				return out, nil
			})
			var cpu, wall time.Duration
			var n int64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				start := n
				leaves := make([][]byte, batch)
				lo := len(all)
				for j := range leaves {
					leaves[j] = benchLeaf(n)
					hs, err := tlog.StoredHashes(n, leaves[j], reader)
					if err != nil {
						b.Fatal(err)
					}
					all = append(all, hs...)
					n++
				}
				c0, _ := processCPU()
				t0 := time.Now()
				b.StartTimer()
				if err := s.Append(ctx, start, leaves, all[lo:]); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				wall += time.Since(t0)
				c1, _ := processCPU()
				cpu += c1 - c0
			}
			b.ReportMetric(float64(b.N*batch)/wall.Seconds(), "appends/s")
			if cpu > 0 {
				b.ReportMetric(float64(cpu)/float64(time.Microsecond)/float64(b.N*batch), "cpu-µs/op")
			}
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

// cpuMeter measures the CPU time the process spends per op: on a shared,
// noisy machine it varies less than the wall-clock rate, and it is what
// group commit cannot batch away.
type cpuMeter struct {
	start time.Duration
	ok    bool
}

func startCPU() cpuMeter {
	d, ok := processCPU()
	return cpuMeter{start: d, ok: ok}
}

// report adds the "cpu-µs/op" metric: process CPU time (all goroutines)
// per op since startCPU.
func (m cpuMeter) report(b *testing.B) { m.reportPer(b, b.N, "cpu-µs/op") }

// reportPer adds the metric unit: process CPU time since startCPU per one
// of n units of work (n appends, when an op is several).
func (m cpuMeter) reportPer(b *testing.B, n int, unit string) {
	end, ok := processCPU()
	if !m.ok || !ok || n == 0 {
		return
	}
	b.ReportMetric(float64(end-m.start)/float64(time.Microsecond)/float64(n), unit)
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

// BenchmarkSQLiteFloor measures what this driver and disk allow at all,
// without the Ledger or Store.Append: one transaction per op inserting
// "rows" leaves of 1 KB with the pragmas Open uses (WAL, synchronous FULL,
// 8 KiB pages), as one multi-row statement. "bare" is a table of just the
// index and the leaf, the cheapest durable layout there is; "leaves" is the
// real table with its four indexes, with the rows built before the
// transaction (Append's leafArgs, which parses each leaf's header). The
// gap between the two is what those columns and the indexes the query API
// and the duplicate check need cost; the gap
// between "leaves" and BenchmarkStoreAppend is the store's own overhead.
func BenchmarkSQLiteFloor(b *testing.B) {
	for _, table := range []string{"bare", "leaves"} {
		for _, rows := range []int{32, 64} {
			b.Run(fmt.Sprintf("table=%s/rows=%d", table, rows), func(b *testing.B) {
				s, err := Open(context.Background(), filepath.Join(b.TempDir(), "oars.db"))
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { _ = s.Close() })
				ctx := context.Background()
				cols, ncols := leafColumns, numLeafColumns
				if table == "bare" {
					if _, err := s.writer.ExecContext(ctx, `CREATE TABLE bare (idx INTEGER PRIMARY KEY, data BLOB NOT NULL)`); err != nil {
						b.Fatal(err)
					}
					cols, ncols = "idx, data", 2
				}
				row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + "), "
				st, err := s.writer.PrepareContext(ctx, "INSERT INTO "+table+" ("+cols+") VALUES "+
					strings.TrimSuffix(strings.Repeat(row, rows), ", "))
				if err != nil {
					b.Fatal(err)
				}
				defer st.Close()
				leaves := make([][]byte, rows)
				var n int64
				cpu := startCPU()
				for b.Loop() {
					for i := range leaves {
						leaves[i] = benchLeaf(n + int64(i))
					}
					var args []any
					if table == "bare" {
						args = make([]any, 0, 2*rows)
						for i, leaf := range leaves {
							args = append(args, n+int64(i), leaf)
						}
					} else {
						// Zero hashes of the right number: their values cost
						// nothing to store differently.
						hashes := make([]tlog.Hash, tlog.StoredHashCount(n+int64(rows))-tlog.StoredHashIndex(0, n))
						args = leafArgs(n, leaves, hashes)
					}
					n += int64(rows)
					tx, err := s.writer.BeginTx(ctx, nil)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := tx.StmtContext(ctx, st).ExecContext(ctx, args...); err != nil {
						b.Fatal(err)
					}
					if err := tx.Commit(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N*rows)/b.Elapsed().Seconds(), "appends/s")
				cpu.reportPer(b, b.N*rows, "cpu-µs/append")
			})
		}
	}
}
