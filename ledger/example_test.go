package ledger_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"

	"github.com/oarsdev/oars/ledger"
)

// Example appends entries, publishes a signed checkpoint, and checks, as an
// offline auditor would, that one entry is in the checkpointed log.
func Example() {
	ctx := context.Background()

	// The log operator: a key, a signer named after the log, a ledger.
	seed := sha256.Sum256([]byte("example log key")) // use a real secret key
	key := ed25519.NewKeyFromSeed(seed[:])
	signer, err := ledger.NewCheckpointSigner("example.com/log", key)
	if err != nil {
		fmt.Println("signer:", err)
		return
	}
	l, err := ledger.New(ctx, ledger.NewMemStore(), ledger.WithCheckpointSigner(signer))
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	for _, entry := range []string{`{"receipt":1}`, `{"receipt":2}`, `{"receipt":3}`} {
		if _, err := l.Append(ctx, []byte(entry)); err != nil {
			fmt.Println("append:", err)
			return
		}
	}
	msg, err := l.Checkpoint(ctx)
	if err != nil {
		fmt.Println("checkpoint:", err)
		return
	}
	proof, err := l.ProveInclusion(ctx, 1, 3)
	if err != nil {
		fmt.Println("prove:", err)
		return
	}

	// The auditor: trusts only the log's public key and origin.
	verifier, err := ledger.NewCheckpointVerifier("example.com/log", key.Public().(ed25519.PublicKey))
	if err != nil {
		fmt.Println("verifier:", err)
		return
	}
	cp, err := ledger.ParseCheckpoint(msg, verifier)
	if err != nil {
		fmt.Println("parse checkpoint:", err)
		return
	}
	if err := ledger.CheckInclusion(proof, cp.Size, cp.Root, 1, []byte(`{"receipt":2}`)); err != nil {
		fmt.Println("inclusion:", err)
		return
	}
	fmt.Printf("entry 1 is in %s at size %d\n", cp.Origin, cp.Size)

	err = ledger.CheckInclusion(proof, cp.Size, cp.Root, 1, []byte(`{"receipt":"forged"}`))
	fmt.Println("forged entry:", err != nil)
	// Output:
	// entry 1 is in example.com/log at size 3
	// forged entry: true
}

// ExampleVerify audits a whole store, checking each entry as it goes.
func ExampleVerify() {
	ctx := context.Background()
	store := ledger.NewMemStore()
	l, err := ledger.New(ctx, store)
	if err != nil {
		fmt.Println("new:", err)
		return
	}
	if _, err := l.AppendBatch(ctx, [][]byte{[]byte("a"), []byte("b"), []byte("c")}); err != nil {
		fmt.Println("append:", err)
		return
	}
	rep, err := ledger.Verify(ctx, store, ledger.EntryCheckerFunc(func(index int64, leaf []byte) error {
		if len(leaf) == 0 {
			return fmt.Errorf("empty entry")
		}
		return nil
	}))
	if err != nil {
		fmt.Println("verify:", err)
		return
	}
	fmt.Println(rep.Size, rep.Root)
	// Output:
	// 3 NmQuc8JUCrEh46a/lUWwokmCzYMOsT080Z3jzmwCHsE=
}
