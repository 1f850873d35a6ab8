package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"sync"
)

// migrations[i] takes the schema from version i to version i+1. Append new
// migrations; never edit one that has shipped.
var migrations = []string{
	// Version 1.
	`
CREATE TABLE meta (
	id   INTEGER PRIMARY KEY CHECK (id = 1),
	size INTEGER NOT NULL CHECK (size >= 0)
);
INSERT INTO meta (id, size) VALUES (1, 0);

CREATE TABLE leaves (
	idx        INTEGER PRIMARY KEY,
	hashes     BLOB NOT NULL,
	receipt_id TEXT,
	action_id  TEXT,
	seq        INTEGER,
	status     TEXT,
	event_id   TEXT,
	tenant_id  TEXT,
	agent_id   TEXT,
	issued_at  TEXT,
	data       BLOB NOT NULL
);
CREATE UNIQUE INDEX leaves_receipt_id ON leaves (receipt_id) WHERE receipt_id IS NOT NULL;
CREATE UNIQUE INDEX leaves_action_seq ON leaves (action_id, seq) WHERE action_id IS NOT NULL;
CREATE UNIQUE INDEX leaves_event_id ON leaves (event_id) WHERE event_id IS NOT NULL;
CREATE INDEX leaves_tenant ON leaves (tenant_id, idx, agent_id, status, issued_at) WHERE receipt_id IS NOT NULL;
`,
	// Version 2 (approval step-up, see stepup.go): sealed TOTP secrets and
	// the last used time step of each enrolled approver.
	`
CREATE TABLE stepup_totp (
	tenant_id TEXT NOT NULL,
	user_id   TEXT NOT NULL,
	secret    BLOB NOT NULL,
	last_step INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (tenant_id, user_id)
);
`,
	// Version 3 (server-side execution of approved actions, see
	// inputs.go): the canonical input of each action held for approval.
	// IF NOT EXISTS: a database taken back to an older version by hand
	// still migrates.
	`
CREATE TABLE IF NOT EXISTS action_inputs (
	action_id TEXT PRIMARY KEY,
	tenant_id TEXT NOT NULL,
	input     BLOB NOT NULL
);
`,
	// Version 4 (agent passports, see passports.go): one OAP passport per
	// agent of a tenant, as JSON, with its status and version beside it.
	`
CREATE TABLE IF NOT EXISTS passports (
	tenant_id TEXT NOT NULL,
	agent_id  TEXT NOT NULL,
	status    TEXT NOT NULL,
	version   INTEGER NOT NULL CHECK (version > 0),
	data      BLOB NOT NULL,
	PRIMARY KEY (tenant_id, agent_id)
);
`,
	// Version 5 (daily caps of passport capabilities, see counters.go):
	// the amount used per tenant, counter key and window.
	`
CREATE TABLE IF NOT EXISTS counters (
	tenant_id    TEXT NOT NULL,
	key          TEXT NOT NULL,
	window_start INTEGER NOT NULL,
	used         INTEGER NOT NULL CHECK (used >= 0),
	PRIMARY KEY (tenant_id, key, window_start)
);
`,
	// Version 6 (connector secret vault, see vault.go): each secret
	// sealed with XChaCha20-Poly1305 under the vault key key_id.
	`
CREATE TABLE IF NOT EXISTS secrets (
	name       TEXT PRIMARY KEY,
	key_id     TEXT NOT NULL,
	sealed     BLOB NOT NULL,
	updated_at INTEGER NOT NULL
);
`,
	// Version 7 (durable execution queue, see queue.go): one job per
	// action executed asynchronously; the input is in action_inputs.
	`
CREATE TABLE IF NOT EXISTS jobs (
	action_id       TEXT PRIMARY KEY,
	tenant_id       TEXT NOT NULL,
	state           TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
	attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
	next_run_at     INTEGER NOT NULL,
	lease_until     INTEGER NOT NULL DEFAULT 0,
	lease_token     TEXT NOT NULL DEFAULT '',
	last_error      TEXT NOT NULL DEFAULT '',
	upstream_status INTEGER NOT NULL DEFAULT 0,
	created_at      INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (state, next_run_at);
`,
}

// SchemaVersion is the schema version this build writes and reads.
const SchemaVersion = 7

// errNotLedger is the cause when a database holds tables but no
// schema_version: it belongs to something else.
var errNotLedger = errors.New("database holds tables but is not an OARS ledger (no schema_version table)")

// migrate brings the database behind db to SchemaVersion in one write
// transaction, creating the schema in an empty database.
func migrate(ctx context.Context, db *sql.DB) error {
	if len(migrations) != SchemaVersion {
		return fmt.Errorf("sqlite: open: build has %d migrations for schema version %d", len(migrations), SchemaVersion)
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time
	if err != nil {
		return fail("open: begin migration", err)
	}
	defer func() { _ = tx.Rollback() }()

	v, err := readVersion(ctx, tx)
	if err != nil {
		return err
	}
	if v == SchemaVersion {
		return nil // the deferred rollback ends the transaction
	}
	if v == 0 {
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
	id      INTEGER PRIMARY KEY CHECK (id = 1),
	version INTEGER NOT NULL
);
INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0);`); err != nil {
			return fail("open: migrate", err)
		}
	}
	for i := v; i < SchemaVersion; i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fail(fmt.Sprintf("open: migrate to schema version %d", i+1), err)
		}
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ? WHERE id = 1`, SchemaVersion); err != nil {
		return fail("open: migrate", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("open: commit migration", err)
	}
	return nil
}

// checkVersion fails unless the database behind db is at SchemaVersion;
// read-only stores use it instead of migrate.
func checkVersion(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fail("open", err)
	}
	defer func() { _ = tx.Rollback() }()
	v, err := readVersion(ctx, tx)
	if err != nil {
		return err
	}
	switch {
	case v == 0:
		return errors.New("sqlite: open: database is empty, not an OARS ledger")
	case v < SchemaVersion:
		return fmt.Errorf("sqlite: open: schema version %d is older than this build's (%d); open it read-write once to migrate", v, SchemaVersion)
	}
	return nil
}

// readVersion returns the schema version of the database: 0 for an empty
// database. It fails for a database that holds other tables, and with
// ErrSchemaTooNew for a version above SchemaVersion.
func readVersion(ctx context.Context, tx *sql.Tx) (int, error) {
	var tables int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'`).Scan(&tables); err != nil {
		return 0, fail("open: read schema version", err)
	}
	if tables == 0 {
		var objects int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&objects); err != nil {
			return 0, fail("open: read schema version", err)
		}
		if objects > 0 {
			return 0, fmt.Errorf("sqlite: open: %w", errNotLedger)
		}
		return 0, nil
	}
	var v int
	err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version WHERE id = 1`).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("sqlite: open: schema_version table is empty: %w", ErrCorrupt)
	case err != nil:
		return 0, fail("open: read schema version", err)
	case v < 0:
		return 0, fmt.Errorf("sqlite: open: negative schema version: %w", ErrCorrupt)
	case v > SchemaVersion:
		return 0, fmt.Errorf("sqlite: open: schema version %d is newer than this build supports (%d): %w", v, SchemaVersion, ErrSchemaTooNew)
	}
	return v, nil
}

// leafColumns are the columns of a leaves row in the order Append binds
// them.
const leafColumns = "idx, hashes, receipt_id, action_id, seq, status, event_id, tenant_id, agent_id, issued_at, data"

// numLeafColumns is the number of leafColumns.
const numLeafColumns = 11

// maxInsertRows is the most leaves one insert statement takes: a batch of n
// leaves takes n/maxInsertRows full statements and one for the rest.
const maxInsertRows = 64

// writeStmts are the statements of the append path, prepared on the writer
// connection: claim and size at Open, each insert when a batch first needs
// its number of rows.
type writeStmts struct {
	// claim moves meta.size from the start of a batch to its end.
	claim, size *sql.Stmt

	mu     sync.Mutex
	insert [maxInsertRows + 1]*sql.Stmt // insert[n] inserts n rows
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&w.claim, `UPDATE meta SET size = ? WHERE id = 1 AND size = ?`},
		{&w.size, `SELECT size FROM meta WHERE id = 1`},
	})
}

// insertStmt returns the statement that inserts n leaves rows, 1 <= n <=
// maxInsertRows, preparing it on db the first time.
func (w *writeStmts) insertStmt(ctx context.Context, db *sql.DB, n int) (*sql.Stmt, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.insert[n] == nil {
		st, err := db.PrepareContext(ctx, insertSQL(n))
		if err != nil {
			return nil, err
		}
		w.insert[n] = st
	}
	return w.insert[n], nil
}

// insertSQL returns an INSERT of n leaves rows. An empty leaf may bind as
// NULL; it is stored as the empty blob.
//
// A row that breaks a constraint (a taken receipt_id, say) rolls back the
// whole transaction (OR ROLLBACK), as Append would anyway. Unlike the
// default (OR ABORT), which undoes just the failed statement, this needs no
// statement journal: SQLite would otherwise copy every page a multi-row
// insert touches before changing it.
func insertSQL(n int) string {
	var b strings.Builder
	b.WriteString("INSERT OR ROLLBACK INTO leaves (" + leafColumns + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, coalesce(?, x''))")
	}
	return b.String()
}

func (w *writeStmts) close() []error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return closeAll(append([]*sql.Stmt{w.claim, w.size}, w.insert[:]...)...)
}

// readStmts are the fixed read statements, prepared on the reader pool.
type readStmts struct {
	size, check, leaves, hashes, byID, byAction *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&r.size, `SELECT size FROM meta WHERE id = 1`},
		{&r.check, `SELECT size, last.idx, length(last.hashes) FROM meta
			LEFT JOIN (SELECT idx, hashes FROM leaves ORDER BY idx DESC LIMIT 1) AS last WHERE meta.id = 1`},
		{&r.leaves, `SELECT idx, data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`},
		{&r.hashes, `SELECT idx, hashes FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`},
		{&r.byID, `SELECT idx, data FROM leaves WHERE receipt_id = ?`},
		{&r.byAction, `SELECT idx, data FROM leaves WHERE action_id = ? ORDER BY seq`},
	})
}

func (r *readStmts) close() []error {
	return closeAll(r.size, r.check, r.leaves, r.hashes, r.byID, r.byAction)
}

type stmtDef struct {
	dst   **sql.Stmt
	query string
}

func prepareAll(ctx context.Context, db *sql.DB, defs []stmtDef) error {
	for _, d := range defs {
		st, err := db.PrepareContext(ctx, d.query)
		if err != nil {
			return err
		}
		*d.dst = st
	}
	return nil
}

func closeAll(stmts ...*sql.Stmt) []error {
	var errs []error
	for _, st := range stmts {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errs
}
