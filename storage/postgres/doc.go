// Package postgres stores an OARS ledger in PostgreSQL, so that several
// oarsd replicas (or any processes) can append to one shared, linear,
// verifiable log.
//
// It needs PostgreSQL 11 or later and is tested on 15. [Open] returns a
// [Store], which implements [ledger.Store] for a
// [ledger.Ledger] and [ledger.Querier] for finding receipts. Each replica
// opens its own Store on the same database and schema and wraps it in its
// own Ledger; the Store keeps their appends in one sequence.
//
// # Schema
//
// All tables live in one PostgreSQL schema ("public" unless [WithSchema]
// names another, which lets several ledgers share a database):
//
//	oars_schema_version(id BOOLEAN PK, version INTEGER)  -- one row: the migration level
//	oars_log(id BOOLEAN PK, size BIGINT)                 -- one row: the sequencer
//	oars_leaves(idx BIGINT PK, data BYTEA)               -- leaf idx, exact bytes
//	oars_hashes(idx BIGINT PK, hash BYTEA, length 32)    -- tlog storage index, hash
//	oars_receipts(idx BIGINT PK REFERENCES oars_leaves,
//	              receipt_id TEXT UNIQUE, action_id TEXT, seq BIGINT,
//	              status TEXT, tenant_id TEXT, agent_id TEXT,
//	              issued_at TIMESTAMPTZ, UNIQUE (action_id, seq))
//
// with indexes on (tenant_id, idx), (agent_id, idx), (status, idx) and
// (issued_at, idx) for listing. oars_leaves and oars_hashes are the log
// itself; oars_receipts is an index over it, filled from
// [ledger.ParseHeader] in the same transaction as the leaves. A leaf that is
// not a receipt (an event, or anything else) is stored but not indexed, and
// so is a receipt with a NUL byte in an indexed field, which PostgreSQL text
// cannot hold. Absent text fields are stored as "" and an absent issued_at
// as NULL; issued_at is kept, and compared, to the microsecond.
//
// Open applies migrations in one transaction guarded by
// pg_advisory_xact_lock on a key derived from the schema name, so replicas
// starting together migrate exactly once and the others wait and find the
// work done. A database whose schema version is newer than [SchemaVersion]
// is refused with [ErrSchemaTooNew]. Open also checks that the last leaf
// and last hash sit where the sequencer row says the log ends, and fails
// with [ErrCorrupt] if not.
//
// # Sequencing
//
// Every [Store.Append] is one transaction:
//
//  1. SELECT size FROM oars_log FOR UPDATE. The row lock serialises all
//     appenders in every process: a second transaction waits here until
//     the first commits or rolls back, then reads the new size.
//  2. If size is not the start the Ledger asked for, roll back and return
//     [ledger.ErrConflict]: another replica appended first. The Ledger
//     re-reads the size and its tree edge from the store and retries.
//  3. Insert the leaves, the hashes and the receipt index rows, each with
//     one multi-row INSERT ... SELECT FROM unnest($arrays).
//  4. UPDATE oars_log SET size = start+len(leaves).
//  5. pg_notify('oars_ledger', ...) announcing the new size (see below).
//  6. COMMIT.
//
// Steps 1 to 5 are sent in one pipelined batch together with BEGIN, so an
// append costs two round trips (the batch, then COMMIT, sent only once the
// locked size proved the start right). Writes sent before a failed size
// check are rolled back with the transaction. The primary keys on idx are
// a second line of defence: no two transactions can store the same index.
//
// Group commit happens above the store: a Ledger turns many concurrent
// appends into one Store.Append of many leaves, so one transaction and one
// WAL flush carry a whole batch. Replicas contending for the lock each
// still batch their own callers; with many busy replicas, raise
// [ledger.WithConflictRetries] so that a replica repeatedly beaten to the
// lock keeps trying.
//
// A duplicate receipt_id or (action_id, seq) fails the whole transaction
// with [ErrDuplicateReceipt]: nothing of the batch is stored.
//
// # Durability
//
// Append returns only after COMMIT succeeded. With PostgreSQL's default
// synchronous_commit = on, COMMIT returns only after the transaction's WAL
// record is flushed to disk (and, with synchronous replication configured,
// to the standbys it names), so an acknowledged append survives a crash of
// the client, of the server process and of the machine. This package does
// not change synchronous_commit; a database or role configured with
// synchronous_commit = off trades that guarantee away, so don't. A commit
// whose reply is lost (the connection drops) has an unknown outcome; the
// Ledger re-reads the size before its next write, so no index is reused.
//
// # Change notification
//
// Each append's transaction calls pg_notify on the channel oars_ledger
// with the JSON payload {"schema":"<schema>","size":<new size>}; PostgreSQL
// delivers it only if and when the transaction commits. [Store.Watch]
// LISTENs on a dedicated connection and delivers the sizes announced for
// its own schema, so replicas learn promptly of entries others appended
// (new receipts, suspensions) without polling.
//
// # Errors and faults
//
// A closed store returns errors wrapping [ErrClosed]; missing rows below
// the recorded size, or a missing sequencer row, are reported as
// [ErrCorrupt], never as a shorter result; reads past the size wrap
// [ledger.ErrOutOfRange]. Tampering with leaf or hash bytes is not
// something a store can see: [ledger.Verify] recomputes every hash and
// names the first bad leaf. Error messages never contain the password of
// the connection string. Every operation is bounded by [WithTimeout]
// (default 30s) as well as by its context.
package postgres
