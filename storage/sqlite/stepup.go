package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/oarsdev/oars/approval/stepup"
)

// The step-up enrollments live in one table, added by schema version 2:
//
//	stepup_totp(tenant_id TEXT, user_id TEXT, secret BLOB, last_step INTEGER,
//	            PRIMARY KEY (tenant_id, user_id))
//
// secret is the sealed secret exactly as [stepup.TOTP] sealed it; this
// store never sees a secret in the clear. last_step is the last used TOTP
// time step, advanced only by a conditional UPDATE so that connections and
// processes sharing the file never accept one step twice.

var _ stepup.Store = (*Store)(nil)

// PutEnrollment stores sealedSecret for the approver, replacing any
// earlier enrollment and resetting its last used step to 0; see
// [stepup.Store]. It fails with [ErrReadOnly] on a read-only store and
// [ErrClosed] after Close.
func (s *Store) PutEnrollment(ctx context.Context, tenantID, userID string, sealedSecret []byte) error {
	if err := s.enter("stepup: put enrollment"); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: stepup: put enrollment: %w", ErrReadOnly)
	}
	// An empty secret may bind as NULL; store it as the empty blob.
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO stepup_totp (tenant_id, user_id, secret, last_step)
		VALUES (?, ?, coalesce(?, x''), 0)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = excluded.secret, last_step = 0`,
		tenantID, userID, sealedSecret); err != nil {
		return fail("stepup: put enrollment", err)
	}
	return nil
}

// GetEnrollment returns the approver's sealed secret, or an error wrapping
// [stepup.ErrNotEnrolled]; see [stepup.Store]. It fails with [ErrClosed]
// after Close.
func (s *Store) GetEnrollment(ctx context.Context, tenantID, userID string) ([]byte, error) {
	if err := s.enter("stepup: get enrollment"); err != nil {
		return nil, err
	}
	defer s.leave()
	var sealed []byte
	err := s.reader.QueryRowContext(ctx, `SELECT secret FROM stepup_totp WHERE tenant_id = ? AND user_id = ?`,
		tenantID, userID).Scan(&sealed)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: stepup: get enrollment: %w", stepup.ErrNotEnrolled)
	case err != nil:
		return nil, fail("stepup: get enrollment", err)
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return sealed, nil
}

// UseStep makes step the approver's last used step if it is greater than
// the stored one, in one write transaction; see [stepup.Store]. It fails
// with an error wrapping [stepup.ErrReplayed] if it is not,
// [stepup.ErrNotEnrolled] for an unknown approver, [ErrReadOnly] on a
// read-only store and [ErrClosed] after Close.
func (s *Store) UseStep(ctx context.Context, tenantID, userID string, step int64) error {
	return s.writeTx(ctx, "stepup: use step", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE stepup_totp SET last_step = ?
			WHERE tenant_id = ? AND user_id = ? AND last_step < ?`, step, tenantID, userID, step)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil || n > 0 {
			return err
		}
		var enrolled bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM stepup_totp WHERE tenant_id = ? AND user_id = ?)`,
			tenantID, userID).Scan(&enrolled); err != nil {
			return err
		}
		if !enrolled {
			return stepup.ErrNotEnrolled
		}
		return stepup.ErrReplayed
	})
}
