package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/oarsdev/oars/connector/vault"
)

// The connector secret vault lives in one table, added by schema version
// 6:
//
//	secrets(name TEXT PRIMARY KEY, key_id TEXT, sealed BLOB,
//	        updated_at INTEGER)
//
// sealed is the secret exactly as [vault.Vault] sealed it under the key
// key_id; this store never sees a secret in the clear. updated_at is the
// time of the last write in Unix milliseconds. The store implements
// [vault.Store] and [vault.Swapper].

// PutSecret stores sealed under name with keyID, replacing any secret of
// that name; see [vault.Store]. The write is committed like a ledger
// append when it returns nil. It fails with [ErrReadOnly] on a read-only
// store and [ErrClosed] after Close.
func (s *Store) PutSecret(ctx context.Context, name, keyID string, sealed []byte) error {
	if err := s.enter("vault: put"); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: vault: put: %w", ErrReadOnly)
	}
	// An empty value may bind as NULL; store it as the empty blob.
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO secrets (name, key_id, sealed, updated_at)
		VALUES (?, ?, coalesce(?, x''), ?)
		ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, sealed = excluded.sealed,
			updated_at = excluded.updated_at`,
		name, keyID, sealed, time.Now().UnixMilli()); err != nil {
		return fail("vault: put", err)
	}
	return nil
}

// GetSecret returns the key id and sealed bytes stored under name, or an
// error wrapping [vault.ErrNotFound]; see [vault.Store]. It fails with
// [ErrClosed] after Close.
func (s *Store) GetSecret(ctx context.Context, name string) (string, []byte, error) {
	if err := s.enter("vault: get"); err != nil {
		return "", nil, err
	}
	defer s.leave()
	var (
		keyID  string
		sealed []byte
	)
	err := s.reader.QueryRowContext(ctx, `SELECT key_id, sealed FROM secrets WHERE name = ?`, name).Scan(&keyID, &sealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", nil, fmt.Errorf("sqlite: vault: get: %w", vault.ErrNotFound)
	case err != nil:
		return "", nil, fail("vault: get", err)
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return keyID, sealed, nil
}

// ListSecrets returns the name, key id and update time of every stored
// secret, sorted by name in byte order; see [vault.Store]. It fails with
// [ErrClosed] after Close.
func (s *Store) ListSecrets(ctx context.Context) ([]vault.SecretInfo, error) {
	if err := s.enter("vault: list"); err != nil {
		return nil, err
	}
	defer s.leave()
	// TEXT compares with the BINARY collation: byte order.
	rows, err := s.reader.QueryContext(ctx, `SELECT name, key_id, updated_at FROM secrets ORDER BY name`)
	if err != nil {
		return nil, fail("vault: list", err)
	}
	defer rows.Close()
	out := []vault.SecretInfo{}
	for rows.Next() {
		var (
			info vault.SecretInfo
			ms   int64
		)
		if err := rows.Scan(&info.Name, &info.KeyID, &ms); err != nil {
			return nil, fail("vault: list", err)
		}
		info.UpdatedAt = time.UnixMilli(ms).UTC()
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("vault: list", err)
	}
	return out, nil
}

// DeleteSecret removes the secret stored under name, or fails with an
// error wrapping [vault.ErrNotFound]; see [vault.Store]. It fails with
// [ErrReadOnly] on a read-only store and [ErrClosed] after Close.
func (s *Store) DeleteSecret(ctx context.Context, name string) error {
	if err := s.enter("vault: delete"); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: vault: delete: %w", ErrReadOnly)
	}
	res, err := s.writer.ExecContext(ctx, `DELETE FROM secrets WHERE name = ?`, name)
	if err != nil {
		return fail("vault: delete", err)
	}
	n, err := res.RowsAffected()
	switch {
	case err != nil:
		return fail("vault: delete", err)
	case n == 0:
		return fmt.Errorf("sqlite: vault: delete: %w", vault.ErrNotFound)
	}
	return nil
}

// SwapSecret stores sealed under name with keyID only if the sealed bytes
// stored under name are still old, in one conditional UPDATE, and reports
// whether it did; see [vault.Swapper]. It fails with [ErrReadOnly] on a
// read-only store and [ErrClosed] after Close.
func (s *Store) SwapSecret(ctx context.Context, name string, old []byte, keyID string, sealed []byte) (bool, error) {
	if err := s.enter("vault: swap"); err != nil {
		return false, err
	}
	defer s.leave()
	if s.readOnly {
		return false, fmt.Errorf("sqlite: vault: swap: %w", ErrReadOnly)
	}
	res, err := s.writer.ExecContext(ctx, `UPDATE secrets SET key_id = ?, sealed = coalesce(?, x''), updated_at = ?
		WHERE name = ? AND sealed = coalesce(?, x'')`,
		keyID, sealed, time.Now().UnixMilli(), name, old)
	if err != nil {
		return false, fail("vault: swap", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fail("vault: swap", err)
	}
	return n == 1, nil
}
