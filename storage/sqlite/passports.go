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
	var next *identity.Passport
	err := s.passportTx(ctx, "passports: put", p.TenantID, p.AgentID, func(old *identity.Passport) (_ *identity.Passport, err error) {
		next, err = identity.PreparePut(old, p, time.Now())
		return next, err
	})
	if err != nil {
		return err
	}
	p.Version, p.CreatedAt, p.UpdatedAt = next.Version, next.CreatedAt, next.UpdatedAt
	return nil
}

// SetPassportStatus implements [identity.PassportStore]. It fails with
// [ErrReadOnly] on a read-only store and [ErrClosed] after Close.
func (s *Store) SetPassportStatus(ctx context.Context, tenantID, agentID string, status identity.PassportStatus) (*identity.Passport, error) {
	var out *identity.Passport
	err := s.passportTx(ctx, "passports: set status", tenantID, agentID, func(old *identity.Passport) (*identity.Passport, error) {
		next, changed, err := identity.PrepareStatus(old, status, time.Now())
		out = next
		if !changed {
			return nil, err
		}
		return next, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// passportTx reads the stored passport of (tenantID, agentID) in a write
// transaction, asks change for the passport to store (nil: nothing to
// do) and stores it.
func (s *Store) passportTx(ctx context.Context, op, tenantID, agentID string,
	change func(old *identity.Passport) (*identity.Passport, error)) error {
	return s.writeTx(ctx, op, func(tx *sql.Tx) error {
		old, err := getPassport(ctx, tx.QueryRowContext, tenantID, agentID)
		switch {
		case errors.Is(err, identity.ErrPassportNotFound):
			old = nil
		case err != nil:
			return err
		}
		next, err := change(old)
		if err != nil || next == nil {
			return err
		}
		data, err := identity.MarshalPassport(next)
		if err != nil {
			return err
		}
		if old == nil {
			_, err = tx.ExecContext(ctx, `INSERT INTO passports (tenant_id, agent_id, status, version, data) VALUES (?, ?, ?, ?, ?)`,
				tenantID, agentID, string(next.Status), next.Version, data)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE passports SET status = ?, version = ?, data = ? WHERE tenant_id = ? AND agent_id = ?`,
				string(next.Status), next.Version, data, tenantID, agentID)
		}
		return err
	})
}
