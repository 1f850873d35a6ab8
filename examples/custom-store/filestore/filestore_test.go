package filestore_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/oarsdev/oars/examples/custom-store/filestore"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/ledger/ledgertest"
)

// open opens a store in dir and closes it when the test ends.
func open(t *testing.T, dir string) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", filepath.Base(dir), err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close() = %v, want nil", err)
		}
	})
	return s
}

// TestConformance is all an adapter needs to prove it keeps the Store
// contract. (README.md shows this function; main_test.go keeps the two
// the same.)
func TestConformance(t *testing.T) {
	ledgertest.RunHarness(t, ledgertest.Harness{
		New: func(t *testing.T) ledger.Store {
			s, err := filestore.Open(t.Context(), filepath.Join(t.TempDir(), "ledger"))
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
		Reopen: func(t *testing.T, s ledger.Store) ledger.Store {
			fs := s.(*filestore.Store)
			if err := fs.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			s2, err := filestore.Open(t.Context(), fs.Dir())
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			t.Cleanup(func() { s2.Close() })
			return s2
		},
	})
}

// TestConformanceWithScanQueries runs the query cases too, answered by
// ledger.NewQuerier scanning the store: a store without its own index still
// gives correct (if O(n)) query results. It stores duplicate receipts
// instead of refusing them, so it suits a single writer only.
func TestConformanceWithScanQueries(t *testing.T) {
	ledgertest.RunHarness(t, ledgertest.Harness{
		New: func(t *testing.T) ledger.Store {
			s := open(t, filepath.Join(t.TempDir(), "ledger"))
			return struct {
				ledger.Store
				ledger.Querier
			}{s, ledger.NewQuerier(s)}
		},
		StoresDuplicates: true,
	})
}

// fill appends n leaves through a Ledger and returns them.
func fill(t *testing.T, s ledger.Store, n int) [][]byte {
	t.Helper()
	l, err := ledger.New(t.Context(), s)
	if err != nil {
		t.Fatalf("ledger.New() = %v, want nil", err)
	}
	leaves := make([][]byte, n)
	for i := range leaves {
		leaves[i] = fmt.Appendf(nil, `{"entry":%d}`, i)
	}
	if _, err := l.AppendBatch(t.Context(), leaves); err != nil {
		t.Fatalf("AppendBatch(%d leaves) = %v, want nil", n, err)
	}
	return leaves
}

// newFilled returns the directory of a closed store holding n leaves.
func newFilled(t *testing.T, n int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ledger")
	s, err := filestore.Open(t.Context(), dir)
	if err != nil {
		t.Fatalf("Open() = %v, want nil", err)
	}
	fill(t, s, n)
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v, want nil", err)
	}
	return dir
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestTornTail: bytes past the commit (an Append that never finished) are
// cut off on Open, and the log goes on from the committed state.
func TestTornTail(t *testing.T) {
	ctx := t.Context()
	dir := newFilled(t, 10)
	leavesPath, hashesPath := filepath.Join(dir, "leaves.log"), filepath.Join(dir, "hashes.log")
	wantLeaves, wantHashes := fileSize(t, leavesPath), fileSize(t, hashesPath)
	appendBytes(t, leavesPath, []byte{0, 0, 0, 9, 'p', 'a', 'r'}) // half a record
	appendBytes(t, hashesPath, bytes.Repeat([]byte{0xab}, 40))

	s := open(t, dir)
	if size, err := s.Size(ctx); err != nil || size != 10 {
		t.Errorf("Size() after a torn tail = %d, %v, want 10, nil", size, err)
	}
	if got := fileSize(t, leavesPath); got != wantLeaves {
		t.Errorf("leaves.log after Open = %d bytes, want %d (tail cut off)", got, wantLeaves)
	}
	if got := fileSize(t, hashesPath); got != wantHashes {
		t.Errorf("hashes.log after Open = %d bytes, want %d (tail cut off)", got, wantHashes)
	}
	fill(t, s, 5)
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil || rep.Size != 15 {
		t.Errorf("ledger.Verify() after appending past a torn tail = %v, %v, want size 15, nil", rep, err)
	}
}

// TestCorruption: damage to committed data makes Open fail rather than
// serve a shorter or altered log.
func TestCorruption(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"leaf record byte flipped", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "leaves.log"), 30) }},
		{"leaf length changed", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "leaves.log"), 3) }},
		{"leaves.log shortened", func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "leaves.log"), -1) }},
		{"hashes.log shortened", func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "hashes.log"), -32) }},
		{"commit byte flipped", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "commit"), 12) }},
		{"commit torn", func(t *testing.T, dir string) { truncate(t, filepath.Join(dir, "commit"), -5) }},
		{"commit of another format", func(t *testing.T, dir string) { flip(t, filepath.Join(dir, "commit"), 7) }},
		{"commit missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, "commit")); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := newFilled(t, 10)
			tt.damage(t, dir)
			s, err := filestore.Open(t.Context(), dir)
			if !errors.Is(err, filestore.ErrCorrupt) {
				if s != nil {
					s.Close()
				}
				t.Errorf("Open(store with %s) = %v, want an error wrapping ErrCorrupt", tt.name, err)
			}
		})
	}
}

func flip(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func truncate(t *testing.T, path string, by int64) {
	t.Helper()
	if err := os.Truncate(path, fileSize(t, path)+by); err != nil {
		t.Fatal(err)
	}
}

// TestDamagedHash: hashes carry no checksum of their own; ledger.Verify
// recomputes them from the leaves and names the damaged one.
func TestDamagedHash(t *testing.T) {
	dir := newFilled(t, 10)
	flip(t, filepath.Join(dir, "hashes.log"), 5*32+1) // stored hash 5: leaf 3
	s := open(t, dir)
	_, err := ledger.Verify(t.Context(), s, nil)
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Index != 3 {
		t.Errorf("ledger.Verify() over a damaged hash = %v, want a VerifyError at leaf 3", err)
	}
}

// TestLeafTooLarge: Append refuses a leaf over MaxLeafSize and stores
// nothing of its batch.
func TestLeafTooLarge(t *testing.T) {
	ctx := t.Context()
	s := open(t, t.TempDir())
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() = %v, want nil", err)
	}
	big := make([]byte, filestore.MaxLeafSize+1)
	if _, err := l.AppendBatch(ctx, [][]byte{[]byte("small"), big}); err == nil {
		t.Errorf("AppendBatch(small, %d bytes) = nil, want an error", len(big))
	}
	if size, err := s.Size(ctx); err != nil || size != 0 {
		t.Errorf("Size() after a refused batch = %d, %v, want 0, nil", size, err)
	}
}

const crashEnv = "FILESTORE_CRASH_DIR"

// TestCrashChild is the process TestCrash kills: it appends from several
// goroutines and prints "ack <index> <sha256 of leaf>" for each append the
// store acknowledged, until it is killed.
func TestCrashChild(t *testing.T) {
	dir, ok := os.LookupEnv(crashEnv)
	if !ok {
		t.Skip("run by TestCrash")
	}
	ctx := context.Background()
	s, err := filestore.Open(ctx, dir)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("ledger.New() = %v", err)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				leaf := fmt.Appendf(nil, `{"crash_test":true,"goroutine":%d,"n":%d,"pad":%q}`, g, i, strings.Repeat("x", 200+i%300))
				idx, err := l.Append(ctx, leaf)
				if err != nil {
					t.Errorf("Append() = %v", err)
					return
				}
				sum := sha256.Sum256(leaf)
				mu.Lock()
				// One write per line, straight to the pipe.
				fmt.Fprintf(os.Stdout, "ack %d %s\n", idx, hex.EncodeToString(sum[:]))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrash kills a writing process at a random point, three times, and
// checks after each that every acknowledged leaf survived at its index and
// that the log still verifies.
func TestCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("starts writer processes")
	}
	dir := filepath.Join(t.TempDir(), "ledger")
	acked := make(map[int64]string) // index -> leaf digest, over all runs
	for run := range 3 {
		want := 50 + rand.IntN(451)
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		got := 0
		for got < want && sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 || f[0] != "ack" {
				continue
			}
			idx, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				t.Fatalf("child printed %q", sc.Text())
			}
			acked[idx] = f[2]
			got++
		}
		if err := cmd.Process.Kill(); err != nil {
			t.Fatalf("kill child: %v", err)
		}
		cmd.Wait() // killed: the error is expected
		if got < want {
			t.Fatalf("run %d: child stopped after %d acks, want %d; stderr:\n%s", run, got, want, stderr.String())
		}

		s, err := filestore.Open(t.Context(), dir)
		if err != nil {
			t.Fatalf("run %d: Open() after kill = %v, want nil", run, err)
		}
		checkAcked(t, s, acked)
		if err := s.Close(); err != nil {
			t.Fatalf("Close() = %v", err)
		}
	}
}

func checkAcked(t *testing.T, s *filestore.Store, acked map[int64]string) {
	t.Helper()
	ctx := t.Context()
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		t.Fatalf("ledger.Verify() after kill = %v, want nil", err)
	}
	maxAck := int64(-1)
	for idx := range acked {
		maxAck = max(maxAck, idx)
	}
	if rep.Size < maxAck+1 {
		t.Fatalf("Size after kill = %d, want at least %d (highest ack + 1)", rep.Size, maxAck+1)
	}
	leaves, err := s.ReadLeaves(ctx, 0, int(rep.Size))
	if err != nil {
		t.Fatalf("ReadLeaves(0, %d) = %v", rep.Size, err)
	}
	for idx, want := range acked {
		sum := sha256.Sum256(leaves[idx])
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("leaf %d after kill has digest %s, want %s (acknowledged)", idx, got, want)
		}
	}
}
