// Package ledgertest is the conformance suite for [ledger.Store]
// implementations. A storage adapter passes it to show that a [ledger.Ledger]
// over the adapter keeps its promises: appends are atomic and linear, reads
// are exact, and the log verifies. It plays the part testing/fstest and
// testing/slogtest play for file systems and log handlers, and like them it
// uses only the standard library (plus the ledger package itself), so an
// adapter's tests pull in nothing else.
//
// # Using it
//
// Write one test that hands the suite a function returning a fresh, empty
// store. The function registers the store's cleanup with t.Cleanup:
//
//	func TestConformance(t *testing.T) {
//		ledgertest.Run(t, func(t *testing.T) ledger.Store {
//			s, err := mystore.Open(t.Context(), filepath.Join(t.TempDir(), "ledger"))
//			if err != nil {
//				t.Fatalf("Open: %v", err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// A store that keeps its data somewhere it can find again should also pass
// the cases that reopen it. Use [RunHarness] and say how to reopen:
//
//	ledgertest.RunHarness(t, ledgertest.Harness{
//		New: newStore,
//		Reopen: func(t *testing.T, s ledger.Store) ledger.Store {
//			dir := s.(*mystore.Store).Dir()
//			if err := s.(*mystore.Store).Close(); err != nil {
//				t.Fatalf("Close: %v", err)
//			}
//			s2, err := mystore.Open(t.Context(), dir)
//			if err != nil {
//				t.Fatalf("reopen: %v", err)
//			}
//			t.Cleanup(func() { s2.Close() })
//			return s2
//		},
//	})
//
// Each case runs as a subtest on a fresh store and reports every failure it
// finds, so `go test -run 'TestConformance/AppendConflict' -v` reruns one
// case. Cases that need an ability the store lacks are skipped with a
// message saying so.
//
// # What is checked
//
// The [ledger.Store] contract, case by case: an empty store has size 0;
// leaves and hashes read back byte for byte, including empty, binary and
// large leaves, and the store keeps its own copy of what it was given;
// batches are stored whole and in order; an Append at a start other than the
// size returns an error wrapping [ledger.ErrConflict] and stores nothing
// (a conflicting batch leaves no partial data); reads outside the stored
// range return an error wrapping [ledger.ErrOutOfRange] and never a short
// result; a [ledger.Ledger] with many concurrent appenders, and two Ledgers
// sharing the store, produce one linear log that [ledger.Verify] accepts and
// whose inclusion and consistency proofs check against roots the suite
// computes itself.
//
// Contexts: with a cancelled context, Size, ReadLeaves and ReadHashes must
// return an error wrapping [context.Canceled]. Append with a cancelled
// context must either store nothing and return an error wrapping
// context.Canceled, or (for a store that cannot abandon a write it has
// begun) store the leaves and return nil; it must never report failure for
// a write it made.
//
// With [Harness.Reopen]: everything appended before reopening is there
// afterwards, the log still verifies, and appends continue where they left
// off. If the store implements [io.Closer], the suite closes one store and
// checks that every method then fails rather than returning stale or empty
// results; a store's cleanup must therefore tolerate a store that is
// already closed.
//
// # Queries
//
// If the store also implements [ledger.Querier], the Query cases append a
// mix of realistic receipt leaves (several tenants, agents, statuses and
// actions, seq 1 to 3, issued_at times including one with fractional
// seconds and one with a zone offset), event leaves, a non-JSON leaf and
// malformed receipts, in several batches, and check: [ledger.Querier.ReceiptByID]
// finds every receipt and returns an error wrapping [ledger.ErrNotFound] for
// anything else (events included); [ledger.Querier.ActionReceipts] returns an
// action's receipts in seq order, even if they were logged out of order, and
// nothing for an unknown action; [ledger.Querier.ListReceipts] applies each
// filter and the half-open time range Since <= issued_at < Until, pages
// through every result with small limits without duplicates or gaps in index
// order, returns a non-empty cursor exactly when another non-empty page
// follows, applies [ledger.DefaultPageSize] and [ledger.MaxPageSize], keeps a
// cursor valid across later appends, and rejects a malformed cursor with an
// error.
//
// A receipt whose receipt_id, or whose (action_id, seq), is already stored,
// or repeats one of an earlier receipt of the same batch, is a duplicate.
// The store must refuse the Append holding it, storing nothing of that
// batch, with an error that wraps [ledger.ErrDuplicate] and not
// [ledger.ErrConflict]: the approval workflow relies on it to decide which
// of two racing executors of an approved action wins. Only a harness with
// [Harness.StoresDuplicates] (a plain Store behind the scanning querier)
// may instead store the duplicate without indexing it.
package ledgertest
