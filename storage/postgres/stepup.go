package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/approval/stepup"
)

// The step-up enrollments live in one table, added by schema version 2:
//
//	oars_stepup_totp(tenant_id TEXT, user_id TEXT, secret BYTEA,
//	                 last_step BIGINT, PRIMARY KEY (tenant_id, user_id))
//
// secret is the sealed secret exactly as [stepup.TOTP] sealed it; this
// store never sees a secret in the clear. last_step is the last used TOTP
// time step, advanced only by a conditional UPDATE: PostgreSQL re-checks
// the WHERE clause of an UPDATE that waited for a concurrent one on the
// same row, so of several replicas using one step at once exactly one
// succeeds.

var _ stepup.Store = (*Store)(nil)

// PutEnrollment stores sealedSecret for the approver, replacing any
// earlier enrollment and resetting its last used step to 0; see
// [stepup.Store]. It fails with [ErrClosed] after Close.
func (s *Store) PutEnrollment(ctx context.Context, tenantID, userID string, sealedSecret []byte) error {
	done, err := s.enter("stepup: put enrollment")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if sealedSecret == nil {
		sealedSecret = []byte{}
	}
	t := pgx.Identifier{s.schema, "oars_stepup_totp"}.Sanitize()
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+t+` (tenant_id, user_id, secret, last_step)
		VALUES ($1, $2, $3, 0)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = EXCLUDED.secret, last_step = 0`,
		tenantID, userID, sealedSecret); err != nil {
		return fmt.Errorf("postgres: stepup: put enrollment: %w", err)
	}
	return nil
}

// GetEnrollment returns the approver's sealed secret, or an error wrapping
// [stepup.ErrNotEnrolled]; see [stepup.Store]. It fails with [ErrClosed]
// after Close.
func (s *Store) GetEnrollment(ctx context.Context, tenantID, userID string) ([]byte, error) {
	done, err := s.enter("stepup: get enrollment")
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_stepup_totp"}.Sanitize()
	var sealed []byte
	err = s.pool.QueryRow(ctx, `SELECT secret FROM `+t+` WHERE tenant_id = $1 AND user_id = $2`,
		tenantID, userID).Scan(&sealed)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("postgres: stepup: get enrollment: %w", stepup.ErrNotEnrolled)
	case err != nil:
		return nil, fmt.Errorf("postgres: stepup: get enrollment: %w", err)
	}
	if sealed == nil {
		sealed = []byte{}
	}
	return sealed, nil
}

// UseStep makes step the approver's last used step if it is greater than
// the stored one, in one statement; see [stepup.Store]. It fails with an
// error wrapping [stepup.ErrReplayed] if it is not,
// [stepup.ErrNotEnrolled] for an unknown approver and [ErrClosed] after
// Close.
func (s *Store) UseStep(ctx context.Context, tenantID, userID string, step int64) error {
	done, err := s.enter("stepup: use step")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_stepup_totp"}.Sanitize()
	var used, enrolled bool
	err = s.pool.QueryRow(ctx, `WITH used AS (
			UPDATE `+t+` SET last_step = $3
			WHERE tenant_id = $1 AND user_id = $2 AND last_step < $3
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM used),
			EXISTS (SELECT 1 FROM `+t+` WHERE tenant_id = $1 AND user_id = $2)`,
		tenantID, userID, step).Scan(&used, &enrolled)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: stepup: use step: %w", err)
	case used:
		return nil
	case !enrolled:
		return fmt.Errorf("postgres: stepup: use step: %w", stepup.ErrNotEnrolled)
	}
	return fmt.Errorf("postgres: stepup: use step: %w", stepup.ErrReplayed)
}
