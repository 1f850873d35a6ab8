package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema changes in order: migrations[i] takes the
// schema from version i to version i+1. Each runs inside the migration
// transaction with %[1]s standing for the quoted schema name. Append only;
// never edit a released migration.
var migrations = [...]string{
	// Version 1: the log, its hashes, the receipt index and the sequencer.
	`CREATE TABLE %[1]s.oars_log (
		id   BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
		size BIGINT NOT NULL CHECK (size >= 0)
	);
	INSERT INTO %[1]s.oars_log (id, size) VALUES (TRUE, 0);
	CREATE TABLE %[1]s.oars_leaves (
		idx  BIGINT PRIMARY KEY CHECK (idx >= 0),
		data BYTEA NOT NULL
	);
	CREATE TABLE %[1]s.oars_hashes (
		idx  BIGINT PRIMARY KEY CHECK (idx >= 0),
		hash BYTEA NOT NULL CHECK (length(hash) = 32)
	);
	CREATE TABLE %[1]s.oars_receipts (
		idx        BIGINT PRIMARY KEY REFERENCES %[1]s.oars_leaves (idx),
		receipt_id TEXT NOT NULL,
		action_id  TEXT NOT NULL,
		seq        BIGINT NOT NULL,
		status     TEXT NOT NULL,
		tenant_id  TEXT NOT NULL,
		agent_id   TEXT NOT NULL,
		issued_at  TIMESTAMPTZ,
		CONSTRAINT oars_receipts_receipt_id_key UNIQUE (receipt_id),
		CONSTRAINT oars_receipts_action_seq_key UNIQUE (action_id, seq)
	);
	CREATE INDEX oars_receipts_tenant_idx ON %[1]s.oars_receipts (tenant_id, idx);
	CREATE INDEX oars_receipts_agent_idx ON %[1]s.oars_receipts (agent_id, idx);
	CREATE INDEX oars_receipts_status_idx ON %[1]s.oars_receipts (status, idx);
	CREATE INDEX oars_receipts_issued_idx ON %[1]s.oars_receipts (issued_at, idx);`,
	// Version 2 (approval step-up, see stepup.go): sealed TOTP secrets and
	// the last used time step of each enrolled approver.
	`CREATE TABLE %[1]s.oars_stepup_totp (
		tenant_id TEXT NOT NULL,
		user_id   TEXT NOT NULL,
		secret    BYTEA NOT NULL,
		last_step BIGINT NOT NULL DEFAULT 0,
		PRIMARY KEY (tenant_id, user_id)
	);`,
	// Version 3 (server-side execution of approved actions, see
	// inputs.go): the canonical input of each action held for approval.
	// IF NOT EXISTS: a schema taken back to an older version by hand
	// still migrates.
	`CREATE TABLE IF NOT EXISTS %[1]s.oars_action_inputs (
		action_id TEXT PRIMARY KEY,
		tenant_id TEXT NOT NULL,
		input     BYTEA NOT NULL
	);`,
	// Version 4 (agent passports, see passports.go): one OAP passport per
	// agent of a tenant, as JSON, with its status and version beside it.
	`CREATE TABLE IF NOT EXISTS %[1]s.oars_passports (
		tenant_id TEXT NOT NULL,
		agent_id  TEXT NOT NULL,
		status    TEXT NOT NULL,
		version   BIGINT NOT NULL CHECK (version > 0),
		data      BYTEA NOT NULL,
		PRIMARY KEY (tenant_id, agent_id)
	);`,
	// Version 5 (daily caps of passport capabilities, see counters.go):
	// the amount used per tenant, counter key and window.
	`CREATE TABLE IF NOT EXISTS %[1]s.oars_counters (
		tenant_id    TEXT NOT NULL,
		key          TEXT NOT NULL,
		window_start BIGINT NOT NULL,
		used         BIGINT NOT NULL CHECK (used >= 0),
		PRIMARY KEY (tenant_id, key, window_start)
	);`,
	// Version 6 (connector secret vault, see vault.go): each secret
	// sealed with XChaCha20-Poly1305 under the vault key key_id.
	`CREATE TABLE IF NOT EXISTS %[1]s.oars_secrets (
		name       TEXT PRIMARY KEY,
		key_id     TEXT NOT NULL,
		sealed     BYTEA NOT NULL,
		updated_at BIGINT NOT NULL
	);`,
	// Version 7 (durable execution queue, see queue.go): one job per
	// action executed asynchronously; the input is in oars_action_inputs.
	`CREATE TABLE IF NOT EXISTS %[1]s.oars_jobs (
		action_id       TEXT PRIMARY KEY,
		tenant_id       TEXT NOT NULL,
		state           TEXT NOT NULL CHECK (state IN ('queued', 'dead')),
		attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
		next_run_at     BIGINT NOT NULL,
		lease_until     BIGINT NOT NULL DEFAULT 0,
		lease_token     TEXT NOT NULL DEFAULT '',
		last_error      TEXT NOT NULL DEFAULT '',
		upstream_status INTEGER NOT NULL DEFAULT 0,
		created_at      BIGINT NOT NULL
	);
	CREATE INDEX IF NOT EXISTS oars_jobs_due ON %[1]s.oars_jobs (state, next_run_at);`,
}

// SchemaVersion is the schema version this build creates and understands.
const SchemaVersion = len(migrations)

// migrate brings the schema to SchemaVersion in one transaction under an
// advisory lock keyed by the schema name, so replicas opening at once wait
// for each other and the first one does the work.
func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('oars.storage.postgres:' || $1, 0))`, s.schema); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	quoted := pgx.Identifier{s.schema}.Sanitize()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, s.schema).Scan(&exists); err != nil {
		return fmt.Errorf("migrate: find schema: %w", err)
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE SCHEMA `+quoted); err != nil {
			return fmt.Errorf("migrate: create schema: %w", err)
		}
	}
	versionTable := quoted + `.oars_schema_version`
	var hasTable bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, versionTable).Scan(&hasTable); err != nil {
		return fmt.Errorf("migrate: find version table: %w", err)
	}
	if !hasTable {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+versionTable+` (
			id      BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (id),
			version INTEGER NOT NULL CHECK (version >= 0)
		)`); err != nil {
			return fmt.Errorf("migrate: create version table: %w", err)
		}
	}
	version := 0
	err = tx.QueryRow(ctx, `SELECT version FROM `+versionTable).Scan(&version)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if version > SchemaVersion {
		return fmt.Errorf("migrate: schema version %d is newer than this build supports (%d): %w", version, SchemaVersion, ErrSchemaTooNew)
	}
	if version == SchemaVersion {
		return nil // nothing to do; the deferred rollback releases the lock
	}
	for v := version; v < SchemaVersion; v++ {
		if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], quoted)); err != nil {
			return fmt.Errorf("migrate: to version %d: %w", v+1, err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+versionTable+` (id, version) VALUES (TRUE, $1)
		ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version`, SchemaVersion); err != nil {
		return fmt.Errorf("migrate: record version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
