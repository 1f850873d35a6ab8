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
//	schema_version(id = 1, version)   the schema version, see Migrations
//	meta(id = 1, size)                the number of leaves stored
//	leaves(idx INTEGER PRIMARY KEY,   the log index
//	       hashes BLOB NOT NULL,      the stored hashes the leaf adds
//	       receipt_id, action_id, seq, status,   receipts only, else NULL
//	       event_id,                             events only, else NULL
//	       tenant_id, agent_id, issued_at,       receipts and events
//	       data BLOB NOT NULL)        the exact bytes of the entry
//
// with these indexes on leaves, each partial so that it holds only the rows
// it serves:
//
//	UNIQUE (receipt_id)                          WHERE receipt_id IS NOT NULL
//	UNIQUE (action_id, seq)                      WHERE action_id IS NOT NULL
//	UNIQUE (event_id)                            WHERE event_id IS NOT NULL
//	(tenant_id, idx, agent_id, status, issued_at) WHERE receipt_id IS NOT NULL
//
// Later versions add the tables of the other stores that share the file
// (approval step-up, inputs of actions held for approval, agent passports,
// daily-cap counters, connector secrets, the execution queue).
//
// One row holds everything about one leaf, so an append writes one table
// row and at most three index entries per receipt. hashes is the run of
// stored Merkle hashes that [tlog.StoredHashes] yields for the leaf,
// concatenated (32 bytes each): the leaf's own hash and one for every
// subtree the leaf completes, so leaf i holds 1 + (trailing one bits of i)
// hashes, those at storage indexes [tlog.StoredHashIndex](0, i) onwards.
// [Store.ReadHashes] finds the hash at storage index x in the row of leaf
// ((n+1) << l) - 1, where l and n are the level and number of the subtree x
// covers ([tlog.SplitStoredHashIndex]).
//
// The index columns hold what [ledger.ParseHeader] finds in the leaf; a leaf
// it does not recognise has them all NULL. issued_at is RFC 3339 text in UTC
// with exactly nine fraction digits, so that text order is time order.
// [Store.ReceiptByID] and [Store.ActionReceipts] use the unique indexes.
// [Store.ListReceipts] pages in log order: by the action index (and a small
// sort) when the query names an action; else by the tenant index when it
// names a tenant, whose entries also hold agent_id, status and issued_at so
// that those filters are checked without reading the rows of the receipts
// they reject; else along the table in idx order (a query over all tenants
// with a selective agent, status or time filter reads the rows it skips).
//
// # Appends
//
// [Store.Append] is one transaction (BEGIN IMMEDIATE, which takes SQLite's
// write lock up front): it moves meta.size from start to the end of the
// batch, refusing the write with [ledger.ErrConflict] unless the size was
// start, inserts the leaves rows with multi-row INSERT statements (up to 64
// rows each) and commits. A receipt whose receipt_id, or whose (action_id,
// seq), is already stored, in the log or earlier in the same batch, fails
// the whole batch with [ErrDuplicateReceipt] naming the leaf, and nothing is
// stored; an event whose event_id is taken fails it with
// [ErrDuplicateEvent]. The inserts are INSERT OR ROLLBACK: a constraint
// failure ends the whole transaction at once, which is what Append wants
// anyway and spares SQLite the statement journal (a copy of every page a
// multi-row statement touches) that undoing just the failed statement
// would need. [ledger.Ledger] batches concurrent appends (group commit), so
// one transaction, and one sync to disk, carries many leaves.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL: a commit returns only
// after its WAL frames have been fsynced, so an acknowledged append survives
// a crash of the process and of the machine (power loss), as the
// [ledger.Store] contract asks. SQLite also fsyncs the directory when it
// creates the WAL file, and Open fsyncs it after creating the database file.
// synchronous=NORMAL would skip that fsync and is durable only across a
// process crash, not a power loss, so Open never uses it. A torn write at
// the end of the WAL is discarded at the next open (every WAL frame is
// checksummed), so a crash never leaves a partial entry: the log is exactly
// some prefix of what was appended that includes every acknowledged entry.
//
// SQLite's automatic checkpoint (every 1000 WAL pages, in the commit that
// fills them) copies the WAL into the database file, syncing the WAL before
// and the database file after, so it never weakens durability.
// journal_size_limit cuts a WAL that grew past 64 MB (say, while a long read
// held checkpoints back) back to that size when it starts over.
//
// # Throughput
//
// One connection writes, so appends are bounded by the CPU time of one
// transaction, not by the disk: with many concurrent appenders, group
// commit puts a few dozen leaves in each transaction and the fsync is a
// small part of it. The pure-Go driver spends 20 to 25 µs of CPU per ~1 KB
// receipt row with its indexes (the unique receipt_id and (action_id, seq)
// indexes the duplicate check needs and the listing index), about twice
// what a bare two-column row costs. On a 2-core virtual machine that comes
// to some 30,000 durable appends per second from 64 appenders, against
// some 4,000 from one appender waiting for each of its own. The
// package's benchmarks measure both on your disk, and BenchmarkSQLiteFloor
// measures what the driver allows with no OARS code:
//
//	go test ./storage/sqlite -run '^$' -bench . -benchtime=3s
//
// # Consistency checks
//
// Reads never return a shortened log. [Store.Size] cross-checks meta.size
// against the last leaf row and the length of its hashes, and reads check
// that every row in the asked range is there and holds exactly the hashes
// its leaf adds; anything else is an error wrapping [ErrCorrupt], as is a
// file that is not a SQLite database. As the receipt index lives in the
// leaf's own row, an index entry never names a missing leaf: deleting a row
// deletes its entries too and leaves a gap that these checks report.
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
