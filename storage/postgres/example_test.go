package postgres_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/postgres"
)

// Example opens the shared ledger of a group of replicas, appends a receipt
// and finds it again. Every replica runs the same code against the same
// database; the store keeps their appends in one log. (It is compiled but
// not run by go test: it needs a database.)
func Example() {
	ctx := context.Background()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"), postgres.WithSchema("oars"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	l, err := ledger.New(ctx, s, ledger.WithConflictRetries(100))
	if err != nil {
		log.Fatal(err)
	}
	receipt := []byte(`{"spec":"oars.receipt.v1","receipt_id":"rcpt_1","action_id":"act_1","seq":1,` +
		`"status":"allowed","tenant_id":"acme","agent_id":"agent_7","issued_at":"2026-05-01T09:00:00Z"}`)
	idx, err := l.Append(ctx, receipt)
	if err != nil {
		log.Fatal(err)
	}
	rec, err := s.ReceiptByID(ctx, "rcpt_1")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rec.Index == idx)
}

// ExampleStore_Watch follows the size of the log as other replicas append.
func ExampleStore_Watch() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := postgres.Open(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	sizes, err := s.Watch(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for size := range sizes { // closed when ctx ends, on Close, or on a lost connection
		fmt.Println("log size", size)
		if size >= 100 {
			cancel()
		}
	}
}
