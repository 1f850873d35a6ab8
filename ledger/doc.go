// Package ledger is the append-only, verifiable log under OARS: every signed
// receipt and event becomes one leaf of a Merkle tree, the tree's root is
// published in signed checkpoints, and anyone holding a checkpoint can check
// that an entry is in the log, or that a later log extends an earlier one,
// without trusting the operator.
//
// # Leaves
//
// A leaf is an opaque byte string: for OARS, the exact canonical bytes of one
// whole signed receipt or event. The ledger never parses leaves. Leaves are
// numbered from 0 in the order they were appended; once appended, a leaf
// never changes and never moves. The size of a log is its number of leaves,
// and "the tree of size n" is the tree over leaves 0..n-1.
//
// # Hashes
//
// Hashing follows RFC 6962 and is computed with golang.org/x/mod/sumdb/tlog:
// a leaf's hash is SHA-256(0x00 || leaf), an interior node's is
// SHA-256(0x01 || left || right), and the tree of size n splits at the
// largest power of two below n. The hash of the empty tree is SHA-256 of no
// bytes.
//
// Appending leaf n stores its leaf hash plus the hash of every complete
// subtree it finishes ([tlog.StoredHashes]), at the dense storage indexes of
// [tlog.StoredHashIndex]; on average just under two hashes per leaf. The
// root of any earlier size and every proof are then a handful of reads.
// A [Ledger] keeps the right edge of the tree (one hash per set bit of the
// size) in memory, so appends need no hash reads from the store.
//
// # Group commit
//
// [Ledger.Append] is safe for many goroutines and returns only once the
// store has durably accepted the leaf. Durable writes are slow (an fsync, a
// transaction), so concurrent appends are written together: the first caller
// that finds no write in progress becomes the committer, takes everything
// queued (up to [WithMaxBatch] leaves) and writes it with one
// [Store.Append]; the others wait for their batch's outcome. When its own
// leaf is written the committer hands the role to the next waiting caller,
// so no goroutine outlives its call and a Ledger needs no Close.
//
// A caller whose context ends while its leaf is still queued gets the
// context's error and its leaf is not written. Once the leaf is part of a
// store write, the caller waits for that write's outcome. If the store
// refuses a batch that combines several callers' leaves (with an error
// other than a conflict), the Ledger writes each caller's leaves again
// alone, so that only the callers whose leaves the store refuses get the
// error: one duplicate receipt (see [ErrDuplicate]) does not fail its
// neighbours. Before retrying or reporting an error, the Ledger re-reads
// the store and reports success if the leaves were stored after all (an
// error with an unknown outcome, such as a connection lost after commit),
// so nothing is written twice.
//
// Several Ledgers, in one process or many, may share one [Store]. The store
// refuses a write at a stale size with [ErrConflict]; the Ledger then re-reads
// size and tree edge from the store and retries the batch, at most
// [WithConflictRetries] times. The log stays one linear sequence.
//
// # Checkpoints
//
// A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint):
// a signed note (golang.org/x/mod/sumdb/note, Ed25519) whose text is
//
//	<origin>
//	<size>
//	<base64 root hash>
//
// The origin names the log and is also the name of the signing key. Create
// the signer with [NewCheckpointSigner], pass it with
// [WithCheckpointSigner], and publish [VerifierKey] so that verifiers can
// build a [NewCheckpointVerifier] (or a plain note.NewVerifier) and call
// [ParseCheckpoint]. [Ledger.Checkpoint] signs the current size and root.
//
// # Proofs
//
// [Ledger.ProveInclusion] proves that leaf i is in the tree of size n (an
// RFC 6962 audit path); [CheckInclusion] checks one against a root, e.g. the
// root of a verified checkpoint. [Ledger.ProveConsistency] proves that the
// tree of size n extends the tree of size m, so that no entry seen in a
// checkpoint was ever removed or changed; [CheckConsistency] checks one. The
// Check functions are plain functions of their arguments for offline
// verifiers. Asking for impossible sizes or indexes yields [ErrInvalidRange];
// a proof that does not hold yields [ErrInvalidProof].
//
// [Verify] audits a whole store: it recomputes every stored hash from the
// leaves alone, compares, runs an optional [EntryChecker] on each leaf (for
// OARS, a receipt signature check), and reports the size and root, or a
// [*VerifyError] naming the first bad leaf.
//
// # Store contract
//
// Adapter authors implement [Store], four methods; [MemStore] is the
// reference. The rules:
//
//   - Append is atomic and durable: leaves and hashes are stored together or
//     not at all, and Append returns only after they survive a crash.
//   - Append at a start that is not the current size stores nothing and
//     returns an error wrapping [ErrConflict]. This check, done atomically
//     with the write (a transaction, a unique key, a compare-and-swap), is
//     what keeps a shared log linear.
//   - Hashes passed to Append begin at storage index
//     tlog.StoredHashIndex(0, start) and are stored at consecutive indexes.
//     A store never computes or checks hashes; [Verify] does.
//   - Reads of leaves or hashes not stored return an error wrapping
//     [ErrOutOfRange]; reads never return partial results.
//   - All methods are safe for concurrent use and honour ctx.
//   - Leaves are copied on Append (the caller may reuse its buffers);
//     slices returned by reads are not modified by the Ledger.
//
// The ledgertest package (github.com/oarsdev/oars/ledger/ledgertest) runs
// a conformance suite against any Store; every store of this project passes
// it, and an adapter's test calls it in one line.
//
// # Queries
//
// A Store may also implement [Querier], the one optional interface of this
// package, found by type assertion: it indexes receipt leaves (see
// [ParseHeader]) in the same transaction that appends them, so receipts can
// be found by id or action, or listed by tenant, agent, status and
// issued_at with cursor pagination. [MemStore] does. [NewQuerier] returns a
// store's own Querier, or for a store without one a querier that scans the
// log: correct, but O(n) per call, for small logs and tests.
package ledger
