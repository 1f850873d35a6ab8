package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

// Environment of the crash child: the database path and the round number
// (which keeps receipt ids unique across rounds).
const (
	crashPathEnv  = "OARS_SQLITE_CRASH_CHILD_DB"
	crashRoundEnv = "OARS_SQLITE_CRASH_CHILD_ROUND"
)

// TestCrashChild is not a test on its own: TestCrashRecovery runs the test
// binary again with only this test selected, and this process then appends
// from several goroutines and prints "<index> <sha256 of leaf>" for each
// acknowledged append until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashPathEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestCrashRecovery")
	}
	round := os.Getenv(crashRoundEnv)
	// Bound the child's life in case the parent dies without killing it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("child: Open() = %v", err)
	}
	l, err := ledger.New(ctx, s)
	if err != nil {
		t.Fatalf("child: ledger.New() = %v", err)
	}
	var mu sync.Mutex // one whole line per write
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("%s-%d-%d", round, w, i)
				leaf := leafOf(testReceipt{
					Spec: ledger.SpecReceipt, ReceiptID: "r" + id, ActionID: "a" + id, Seq: 1,
					Status: "allowed", TenantID: "t1", AgentID: "agent-1",
					IssuedAt: time.Now().UTC().Format(time.RFC3339Nano),
					Padding:  strings.Repeat("x", 600),
				})
				idx, err := l.Append(ctx, leaf)
				if err != nil {
					if ctx.Err() == nil {
						t.Errorf("child: Append() = %v", err)
					}
					return
				}
				sum := sha256.Sum256(leaf)
				mu.Lock()
				_, err = fmt.Fprintf(os.Stdout, "%d %x\n", idx, sum)
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery kills a process that is appending (SIGKILL, no chance
// to clean up) at a random point, three times over the same file, and
// checks after each crash that every acknowledged leaf is there with its
// bytes, that the whole log verifies, and that the index rows match.
func TestCrashRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping crash test in short mode")
	}
	path := filepath.Join(t.TempDir(), "oars.db")
	acked := map[int64][sha256.Size]byte{}
	high := int64(-1)
	for round := range 3 {
		want := 50 + rand.IntN(451)
		got := runCrashChild(t, path, round, want, func(idx int64, sum [sha256.Size]byte) {
			if prev, ok := acked[idx]; ok && prev != sum {
				t.Fatalf("round %d: index %d acknowledged twice with different leaves", round, idx)
			}
			acked[idx] = sum
			high = max(high, idx)
		})
		if got < want {
			t.Fatalf("round %d: child acknowledged %d appends before exiting, want %d", round, got, want)
		}
		checkAfterCrash(t, path, acked, high)
		t.Logf("round %d: killed after %d acks; %d acked in all, highest index %d", round, got, len(acked), high)
	}
}

// runCrashChild starts the child on path, reads acks until it has want of
// them, SIGKILLs the child and returns how many it read.
func runCrashChild(t *testing.T, path string, round, want int, ack func(int64, [sha256.Size]byte)) int {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashPathEnv+"="+path, crashRoundEnv+"="+strconv.Itoa(round))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	n := 0
	sc := bufio.NewScanner(out)
	for n < want && sc.Scan() {
		idx, sum, ok := parseAck(sc.Text())
		if !ok {
			continue // test framework output
		}
		ack(idx, sum)
		n++
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = cmd.Wait() // "signal: killed"
	if n < want {
		t.Logf("child stderr:\n%s", stderr.String())
	}
	return n
}

func parseAck(line string) (int64, [sha256.Size]byte, bool) {
	var sum [sha256.Size]byte
	idxText, sumText, ok := strings.Cut(line, " ")
	if !ok {
		return 0, sum, false
	}
	idx, err := strconv.ParseInt(idxText, 10, 64)
	if err != nil || idx < 0 {
		return 0, sum, false
	}
	if b, err := hex.DecodeString(sumText); err != nil || len(b) != sha256.Size {
		return 0, sum, false
	} else {
		copy(sum[:], b)
	}
	return idx, sum, true
}

func checkAfterCrash(t *testing.T, path string, acked map[int64][sha256.Size]byte, high int64) {
	t.Helper()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open after crash = %v", err)
	}
	defer s.Close()
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		t.Fatalf("Verify after crash = %v, want nil", err)
	}
	if rep.Size < high+1 {
		t.Fatalf("size after crash = %d, want at least %d (highest ack + 1)", rep.Size, high+1)
	}
	leaves, err := s.ReadLeaves(ctx, 0, int(rep.Size))
	if err != nil {
		t.Fatalf("ReadLeaves after crash = %v", err)
	}
	for idx, sum := range acked {
		if sha256.Sum256(leaves[idx]) != sum {
			t.Fatalf("leaf %d after crash differs from the acknowledged leaf", idx)
		}
	}
	// Every leaf, acknowledged or not, is indexed (same transaction).
	for i, leaf := range leaves {
		h, ok := ledger.ParseHeader(leaf)
		if !ok {
			t.Fatalf("leaf %d after crash is not a receipt: torn entry", i)
		}
		rec, err := s.ReceiptByID(ctx, h.ReceiptID)
		if err != nil || rec.Index != int64(i) {
			t.Fatalf("ReceiptByID(leaf %d) after crash = %d, %v, want %d, nil", i, rec.Index, err, i)
		}
	}
}
