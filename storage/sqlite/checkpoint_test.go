package sqlite

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/oarsdev/oars/ledger"
)

func TestCheckpointerWakes(t *testing.T) {
	c := &checkpointer{wake: make(chan struct{}, 1)}
	for i := range checkpointCommits - 1 {
		c.appended(100)
		if len(c.wake) != 0 {
			t.Fatalf("appended() woke the checkpointer after %d small commits, want after %d", i+1, checkpointCommits)
		}
	}
	c.appended(100)
	if len(c.wake) != 1 {
		t.Fatalf("appended() did not wake the checkpointer after %d commits", checkpointCommits)
	}
	<-c.wake
	c.appended(checkpointBytes)
	c.appended(checkpointBytes) // a request is pending: never blocks
	if len(c.wake) != 1 {
		t.Fatalf("appended(%d) did not wake the checkpointer", checkpointBytes)
	}
}

// TestBackgroundCheckpoint checks that the checkpointer copies the WAL into
// the database file once enough is appended, while the store goes on.
func TestBackgroundCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "oars.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open() = %v", err)
	}
	defer s.Close()
	done := make(chan error, 8)
	s.ckpt.testHookDone = func(err error) { done <- err }
	l, err := ledger.New(t.Context(), s)
	if err != nil {
		t.Fatalf("ledger.New() = %v", err)
	}
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves := make([][]byte, 300)
	for i := range leaves {
		leaves[i] = fmt.Appendf(bytes.Repeat([]byte{' '}, 4000), `{"leaf":%d}`, i)
	}
	if _, err := l.AppendBatch(t.Context(), leaves); err != nil {
		t.Fatalf("AppendBatch() = %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("background checkpoint = %v, want nil", err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if after.Size() < before.Size()+int64(len(leaves)*4000) {
		t.Errorf("database file is %d bytes after a checkpoint of %d leaves of 4 KB (%d before), want the leaves in it",
			after.Size(), len(leaves), before.Size())
	}
	if _, err := l.Append(t.Context(), []byte("after")); err != nil {
		t.Fatalf("Append() after a checkpoint = %v", err)
	}
	if rep, err := ledger.Verify(t.Context(), s, nil); err != nil || rep.Size != int64(len(leaves))+1 {
		t.Fatalf("Verify() = %v, %v, want size %d", rep, err, len(leaves)+1)
	}
}
