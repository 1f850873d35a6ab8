// Package sqlite is the embedded default storage of OARS: a [ledger.Store]
// and [ledger.Querier] in one SQLite database file, on the pure-Go driver
// modernc.org/sqlite, so programs that embed OARS need no C toolchain.
//
//	s, err := sqlite.Open(ctx, filepath.Join(dataDir, "oars.db"))
//	if err != nil { … }
//	defer s.Close()
//	l, err := ledger.New(ctx, s)
//
// One file holds one ledger. Several processes may open the same file; the
// log stays linear because every append checks its start index inside the
// write transaction (see Concurrency). For several servers on several
// machines, use the PostgreSQL store instead: SQLite's locking needs a local
// file system.
//
// # Schema
//
// Version 1 of the schema has these tables:
//
//	schema_version(id = 1, version)         the schema version, see Migrations
//	meta(id = 1, size)                      the number of leaves stored
//	leaves(idx INTEGER PRIMARY KEY, data BLOB NOT NULL)
//	hashes(idx INTEGER PRIMARY KEY, hash BLOB NOT NULL)
//	receipts(idx PRIMARY KEY REFERENCES leaves, receipt_id UNIQUE,
//	         action_id, seq, status, tenant_id, agent_id, issued_at,
//	         UNIQUE(action_id, seq))
//	events(idx PRIMARY KEY REFERENCES leaves, event_id UNIQUE,
//	       tenant_id, issued_at)
//
// leaves holds the exact bytes of each entry at its log index; hashes holds
// the stored Merkle hashes (32 bytes each) at their tlog storage indexes
// ([tlog.StoredHashIndex]). receipts and events index the entries that
// [ledger.ParseHeader] recognises; issued_at is RFC 3339 text in UTC with
// exactly nine fraction digits, so that text order is time order. receipts
// has an index on each of tenant_id, agent_id, status and issued_at, each
// followed by idx, so that [Store.ListReceipts] pages in log order.
//
// # Appends
//
// [Store.Append] is one transaction (BEGIN IMMEDIATE, which takes SQLite's
// write lock up front): it reads meta.size and refuses the write with
// [ledger.ErrConflict] unless it equals start, inserts the leaves, the
// hashes and the index rows, updates meta.size and commits. A receipt whose
// receipt_id, or whose (action_id, seq), is already stored, in the log or
// earlier in the same batch, fails the whole batch with [ErrDuplicateReceipt]
// and nothing is stored; an event whose event_id is taken fails it with
// [ErrDuplicateEvent]. [ledger.Ledger] batches concurrent appends (group
// commit), so one transaction, and one sync to disk, carries many leaves.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a commit returns only
// after its WAL frames have been fsynced, so an acknowledged append survives
// a crash of the process and of the machine (power loss), as the
// [ledger.Store] contract asks. SQLite also fsyncs the directory when it
// creates the WAL file, and Open fsyncs it after creating the database file.
// synchronous=NORMAL would skip that fsync and is durable only across a
// process crash, not a power loss, so Open never uses it (it measured no
// faster here with group commit: the batching, not the sync mode, is what
// makes appends cheap). A torn write
// at the end of the WAL is discarded at the next open (every WAL frame is
// checksummed), so a crash never leaves a partial entry: the log is exactly
// some prefix of what was appended that includes every acknowledged entry.
//
// # Consistency checks
//
// Reads never return a shortened log. [Store.Size] cross-checks meta.size
// against the highest leaf and hash index, and reads check that every row in
// the asked range is there and that every hash is 32 bytes; anything else is
// an error wrapping [ErrCorrupt], as is a file that is not a SQLite database.
// These checks catch damage, not an attacker who rewrites the file
// consistently: that is what [ledger.Verify] and signed checkpoints are for.
//
// # Concurrency
//
// A [Store] is safe for concurrent use. It keeps one connection for writes
// (SQLite allows one writer at a time per file) and a small pool of
// connections for reads, which in WAL mode never wait for the writer. Several
// Stores, in one process or several, may open the same file: writers queue on
// SQLite's lock for up to the busy timeout ([WithBusyTimeout]).
//
// # Migrations
//
// The schema version lives in the schema_version table. Open applies every
// migration the file lacks in one write transaction, so a file is at its old
// version or the current one, never in between. A file at a newer version than this
// build knows fails with [ErrSchemaTooNew]; a file that holds other tables
// but no schema_version is refused as not an OARS database. A store opened
// with [WithReadOnly] never migrates: it requires the current version.
package sqlite
