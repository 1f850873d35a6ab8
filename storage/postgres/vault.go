package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/connector/vault"
)

// The connector secret vault lives in one table, added by schema version
// 6:
//
//	oars_secrets(name TEXT PRIMARY KEY, key_id TEXT, sealed BYTEA,
//	             updated_at BIGINT)
//
// sealed is the secret exactly as [vault.Vault] sealed it under the key
// key_id; this store never sees a secret in the clear. updated_at is the
// time of the last write in Unix milliseconds, by the clock of the
// writing replica. The store implements [vault.Store] and [vault.Swapper].

// PutSecret stores sealed under name with keyID, replacing any secret of
// that name; see [vault.Store]. It fails with [ErrClosed] after Close.
func (s *Store) PutSecret(ctx context.Context, name, keyID string, sealed []byte) error {
	done, err := s.enter("vault: put")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if sealed == nil {
		sealed = []byte{}
	}
	t := pgx.Identifier{s.schema, "oars_secrets"}.Sanitize()
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+t+` (name, key_id, sealed, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (name) DO UPDATE SET key_id = EXCLUDED.key_id, sealed = EXCLUDED.sealed,
			updated_at = EXCLUDED.updated_at`,
		name, keyID, sealed, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("postgres: vault: put: %w", err)
	}
	return nil
}

// GetSecret returns the key id and sealed bytes stored under name, or an
// error wrapping [vault.ErrNotFound]; see [vault.Store]. It fails with
// [ErrClosed] after Close.
func (s *Store) GetSecret(ctx context.Context, name string) (string, []byte, error) {
	done, err := s.enter("vault: get")
	if err != nil {
		return "", nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_secrets"}.Sanitize()
	var (
		keyID  string
		sealed []byte
	)
	err = s.pool.QueryRow(ctx, `SELECT key_id, sealed FROM `+t+` WHERE name = $1`, name).Scan(&keyID, &sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil, fmt.Errorf("postgres: vault: get: %w", vault.ErrNotFound)
	case err != nil:
		return "", nil, fmt.Errorf("postgres: vault: get: %w", err)
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return keyID, sealed, nil
}

// ListSecrets returns the name, key id and update time of every stored
// secret, sorted by name in byte order (the "C" collation, whatever the
// database's); see [vault.Store]. It fails with [ErrClosed] after Close.
func (s *Store) ListSecrets(ctx context.Context) ([]vault.SecretInfo, error) {
	done, err := s.enter("vault: list")
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_secrets"}.Sanitize()
	rows, err := s.pool.Query(ctx, `SELECT name, key_id, updated_at FROM `+t+` ORDER BY name COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: vault: list: %w", err)
	}
	defer rows.Close()
	out := []vault.SecretInfo{}
	for rows.Next() {
		var (
			info vault.SecretInfo
			ms   int64
		)
		if err := rows.Scan(&info.Name, &info.KeyID, &ms); err != nil {
			return nil, fmt.Errorf("postgres: vault: list: %w", err)
		}
		info.UpdatedAt = time.UnixMilli(ms).UTC()
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: vault: list: %w", err)
	}
	return out, nil
}

// DeleteSecret removes the secret stored under name, or fails with an
// error wrapping [vault.ErrNotFound]; see [vault.Store]. It fails with
// [ErrClosed] after Close.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	done, err := s.enter("vault: delete")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_secrets"}.Sanitize()
	tag, err := s.pool.Exec(ctx, `DELETE FROM `+t+` WHERE name = $1`, name)
	if err != nil {
		return fmt.Errorf("postgres: vault: delete: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: vault: delete: %w", vault.ErrNotFound)
	}
	return nil
}

// SwapSecret stores sealed under name with keyID only if the sealed bytes
// stored under name are still old, in one conditional UPDATE, and reports
// whether it did; see [vault.Swapper]. Of replicas racing to swap from
// one value, one succeeds: the row lock serializes the updates and the
// others see the new value. It fails with [ErrClosed] after Close.
func (s *Store) SwapSecret(ctx context.Context, name string, old []byte, keyID string, sealed []byte) (bool, error) {
	done, err := s.enter("vault: swap")
	if err != nil {
		return false, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if old == nil {
		old = []byte{}
	}
	if sealed == nil {
		sealed = []byte{}
	}
	t := pgx.Identifier{s.schema, "oars_secrets"}.Sanitize()
	tag, err := s.pool.Exec(ctx, `UPDATE `+t+` SET key_id = $1, sealed = $2, updated_at = $3
		WHERE name = $4 AND sealed = $5`,
		keyID, sealed, time.Now().UnixMilli(), name, old)
	if err != nil {
		return false, fmt.Errorf("postgres: vault: swap: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
