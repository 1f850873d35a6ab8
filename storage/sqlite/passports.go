package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/oarsdev/oars/identity"
)

// Agent passports (OAP) live in one table, added by schema version 4:
//
//	passports(tenant_id TEXT, agent_id TEXT, status TEXT, version INTEGER,
//	          data BLOB, PRIMARY KEY (tenant_id, agent_id))
//
// data is the passport's JSON (identity.MarshalPassport); status and
// version repeat its fields for the optimistic update.

var _ identity.PassportStore = (*Store)(nil)

// GetPassport implements [identity.PassportStore]. It fails with
// [ErrClosed] after Close and [ErrCorrupt] when the stored JSON is not a
// valid passport.
func (s *Store) GetPassport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error) {
	if err := s.enter("passports: get"); err != nil {
		return nil, err
	}
	defer s.leave()
	p, err := getPassport(ctx, s.reader.QueryRowContext, tenantID, agentID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: passports: get: %w", err)
	}
	return p, nil
}

type queryRower func(ctx context.Context, query string, args ...any) *sql.Row

func getPassport(ctx context.Context, q queryRower, tenantID, agentID string) (*identity.Passport, error) {
	var data []byte
	err := q(ctx, `SELECT data FROM passports WHERE tenant_id = ? AND agent_id = ?`, tenantID, agentID).Scan(&data)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, identity.ErrPassportNotFound
	case err != nil:
		return nil, err
	}
	p, err := identity.ParsePassport(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return p, nil
}

// PutPassport implements [identity.PassportStore]. It fails with
// [ErrReadOnly] on a read-only store and [ErrClosed] after Close.
func (s *Store) PutPassport(ctx context.Context, p *identity.Passport) error {
	if p == nil {
		return fmt.Errorf("sqlite: passports: put: %w: nil passport", identity.ErrInvalidPassport)
	}
	err := s.passportTx(ctx, "passports: put", p.TenantID, p.AgentID, func(old *identity.Passport) (*identity.Passport, error) {
		next := p.Clone()
		if err := identity.PreparePut(old, next, time.Now()); err != nil {
			return nil, err
		}
		return next, nil
	}, func(stored *identity.Passport) {
		p.Version, p.CreatedAt, p.UpdatedAt = stored.Version, stored.CreatedAt, stored.UpdatedAt
	})
	return err
}

// SetPassportStatus implements [identity.PassportStore]. It fails with
// [ErrReadOnly] on a read-only store and [ErrClosed] after Close.
func (s *Store) SetPassportStatus(ctx context.Context, tenantID, agentID string, status identity.PassportStatus) (*identity.Passport, error) {
	var out *identity.Passport
	err := s.passportTx(ctx, "passports: set status", tenantID, agentID, func(old *identity.Passport) (*identity.Passport, error) {
		if old == nil {
			return nil, identity.ErrPassportNotFound
		}
		next, changed, err := identity.PrepareStatus(old, status, time.Now())
		if err != nil {
			return nil, err
		}
		if !changed {
			out = old
			return nil, nil
		}
		return next, nil
	}, func(stored *identity.Passport) { out = stored })
	if err != nil {
		return nil, err
	}
	return out, nil
}

// passportTx reads the stored passport of (tenantID, agentID) in a write
// transaction, asks change for the passport to store (nil: nothing to
// do), stores it and reports it to stored after the commit.
func (s *Store) passportTx(ctx context.Context, op, tenantID, agentID string,
	change func(old *identity.Passport) (*identity.Passport, error), stored func(*identity.Passport)) error {
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: %s: %w", op, ErrReadOnly)
	}
	tx, err := s.writer.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fail(op+": begin", err)
	}
	defer func() { _ = tx.Rollback() }()
	old, err := getPassport(ctx, tx.QueryRowContext, tenantID, agentID)
	switch {
	case errors.Is(err, identity.ErrPassportNotFound):
		old = nil
	case err != nil:
		return fail(op, err)
	}
	next, err := change(old)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if next == nil {
		return nil
	}
	data, err := identity.MarshalPassport(next)
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if old == nil {
		_, err = tx.ExecContext(ctx, `INSERT INTO passports (tenant_id, agent_id, status, version, data) VALUES (?, ?, ?, ?, ?)`,
			tenantID, agentID, string(next.Status), next.Version, data)
	} else {
		_, err = tx.ExecContext(ctx, `UPDATE passports SET status = ?, version = ?, data = ? WHERE tenant_id = ? AND agent_id = ?`,
			string(next.Status), next.Version, data, tenantID, agentID)
	}
	if err != nil {
		return fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(op+": commit", err)
	}
	stored(next)
	return nil
}
