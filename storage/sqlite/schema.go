package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
	idx  INTEGER PRIMARY KEY,
	data BLOB NOT NULL
);

CREATE TABLE hashes (
	idx  INTEGER PRIMARY KEY,
	hash BLOB NOT NULL
);

CREATE TABLE receipts (
	idx        INTEGER PRIMARY KEY REFERENCES leaves (idx),
	receipt_id TEXT NOT NULL UNIQUE,
	action_id  TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	status     TEXT NOT NULL,
	tenant_id  TEXT NOT NULL,
	agent_id   TEXT NOT NULL,
	issued_at  TEXT NOT NULL,
	UNIQUE (action_id, seq)
);
CREATE INDEX receipts_tenant ON receipts (tenant_id, idx);
CREATE INDEX receipts_agent ON receipts (agent_id, idx);
CREATE INDEX receipts_status ON receipts (status, idx);
CREATE INDEX receipts_issued ON receipts (issued_at, idx);

CREATE TABLE events (
	idx       INTEGER PRIMARY KEY REFERENCES leaves (idx),
	event_id  TEXT NOT NULL UNIQUE,
	tenant_id TEXT NOT NULL,
	issued_at TEXT NOT NULL
);
CREATE INDEX events_tenant ON events (tenant_id, idx);
`,
}

// SchemaVersion is the schema version this build writes and reads.
const SchemaVersion = 1

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

// writeStmts are the statements of the append path, prepared once on the
// writer connection.
type writeStmts struct {
	size, setSize, leaf, hash, receipt, event *sql.Stmt
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&w.size, `SELECT size FROM meta WHERE id = 1`},
		{&w.setSize, `UPDATE meta SET size = ? WHERE id = 1`},
		// An empty leaf may bind as NULL; store it as the empty blob.
		{&w.leaf, `INSERT INTO leaves (idx, data) VALUES (?, coalesce(?, x''))`},
		{&w.hash, `INSERT INTO hashes (idx, hash) VALUES (?, ?)`},
		{&w.receipt, `INSERT INTO receipts (idx, receipt_id, action_id, seq, status, tenant_id, agent_id, issued_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.event, `INSERT INTO events (idx, event_id, tenant_id, issued_at) VALUES (?, ?, ?, ?)`},
	})
}

func (w *writeStmts) close() []error {
	return closeAll(w.size, w.setSize, w.leaf, w.hash, w.receipt, w.event)
}

// readStmts are the fixed read statements, prepared on the reader pool.
type readStmts struct {
	size, check, leaves, hashes, byID, byAction *sql.Stmt
}

func (r *readStmts) prepare(ctx context.Context, db *sql.DB) error {
	return prepareAll(ctx, db, []stmtDef{
		{&r.size, `SELECT size FROM meta WHERE id = 1`},
		{&r.check, `SELECT size, (SELECT max(idx) FROM leaves), (SELECT max(idx) FROM hashes) FROM meta WHERE id = 1`},
		{&r.leaves, `SELECT idx, data FROM leaves WHERE idx >= ? AND idx < ? ORDER BY idx`},
		{&r.hashes, `SELECT idx, hash FROM hashes WHERE idx >= ? AND idx < ? ORDER BY idx`},
		{&r.byID, `SELECT r.idx, l.data FROM receipts r LEFT JOIN leaves l ON l.idx = r.idx WHERE r.receipt_id = ?`},
		{&r.byAction, `SELECT r.idx, l.data FROM receipts r LEFT JOIN leaves l ON l.idx = r.idx WHERE r.action_id = ? ORDER BY r.seq`},
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
