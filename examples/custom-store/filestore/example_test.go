package filestore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/oarsdev/oars/examples/custom-store/filestore"
	"github.com/oarsdev/oars/ledger"
)

// ExampleOpen puts a Ledger over a file store, and opens the directory
// again to read what was written.
func ExampleOpen() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "filestore-example-")
	if err != nil {
		fmt.Println("temp dir:", err)
		return
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "ledger")

	s, err := filestore.Open(ctx, dir)
	if err != nil {
		fmt.Println("open:", err)
		return
	}
	l, err := ledger.New(ctx, s)
	if err != nil {
		fmt.Println("ledger:", err)
		return
	}
	if _, err := l.AppendBatch(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		fmt.Println("append:", err)
		return
	}
	if err := s.Close(); err != nil {
		fmt.Println("close:", err)
		return
	}

	s, err = filestore.Open(ctx, dir)
	if err != nil {
		fmt.Println("reopen:", err)
		return
	}
	defer s.Close()
	leaves, err := s.ReadLeaves(ctx, 0, 3)
	if err != nil {
		fmt.Println("read:", err)
		return
	}
	rep, err := ledger.Verify(ctx, s, nil)
	if err != nil {
		fmt.Println("verify:", err)
		return
	}
	fmt.Printf("%s %s %s\n%d %s\n", leaves[0], leaves[1], leaves[2], rep.Size, rep.Root)
	// Output:
	// a b c
	// 3 NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
}
