// Command custom-store runs an OARS ledger over a storage adapter written
// from scratch: package filestore, a directory of append-only files. It
// appends a few receipt-shaped entries, prints the size and root hash of
// the log, reopens the store as a restarted process would, audits it with
// ledger.Verify and finds a receipt through ledger.NewQuerier, which scans
// stores that do not index receipts themselves.
//
// It works in a temporary directory that it removes when done:
//
//	go run ./examples/custom-store
//
// See README.md beside this file for how to write such an adapter.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/oarsdev/oars/examples/custom-store/filestore"
	"github.com/oarsdev/oars/ledger"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "custom-store:", err)
		os.Exit(1)
	}
}

// entries are stand-ins for signed receipts (a real ledger holds the exact
// canonical bytes of each signed receipt).
var entries = []string{
	`{"action_id":"act-1","issued_at":"2026-03-01T12:00:00Z","receipt_id":"rcpt-1","seq":1,"spec":"oars.receipt.v1","status":"allowed","tenant_id":"acme"}`,
	`{"action_id":"act-1","issued_at":"2026-03-01T12:00:01Z","receipt_id":"rcpt-2","seq":2,"spec":"oars.receipt.v1","status":"executing","tenant_id":"acme"}`,
	`{"action_id":"act-1","issued_at":"2026-03-01T12:00:02Z","receipt_id":"rcpt-3","seq":3,"spec":"oars.receipt.v1","status":"executed","tenant_id":"acme"}`,
	`{"action_id":"act-2","issued_at":"2026-03-01T12:00:03Z","receipt_id":"rcpt-4","seq":1,"spec":"oars.receipt.v1","status":"denied","tenant_id":"acme"}`,
}

func run(ctx context.Context, w io.Writer) error {
	dir, err := os.MkdirTemp("", "oars-custom-store-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// Write: the adapter under a Ledger, which does the Merkle hashing and
	// group commit.
	store, err := filestore.Open(ctx, dir)
	if err != nil {
		return err
	}
	l, err := ledger.New(ctx, store)
	if err != nil {
		store.Close()
		return err
	}
	for _, e := range entries {
		index, err := l.Append(ctx, []byte(e))
		if err != nil {
			store.Close()
			return err
		}
		fmt.Fprintf(w, "appended entry %d\n", index)
	}
	size, err := l.Size(ctx)
	if err != nil {
		store.Close()
		return err
	}
	root, err := l.TreeHash(ctx, size)
	if err != nil {
		store.Close()
		return err
	}
	fmt.Fprintf(w, "size %d, root %s\n", size, root)
	if err := store.Close(); err != nil {
		return err
	}

	// Read: open the directory again and audit the whole log.
	store, err = filestore.Open(ctx, dir)
	if err != nil {
		return err
	}
	defer store.Close()
	rep, err := ledger.Verify(ctx, store, nil)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "reopened and verified: size %d, root %s\n", rep.Size, rep.Root)

	rec, err := ledger.NewQuerier(store).ReceiptByID(ctx, "rcpt-3")
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "rcpt-3 is entry %d\n", rec.Index)
	return store.Close()
}
