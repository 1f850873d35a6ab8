package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/ledger"
)

// The inputs of actions held for approval live in one table, added by
// schema version 3:
//
//	oars_action_inputs(action_id TEXT PRIMARY KEY, tenant_id TEXT,
//	                   input BYTEA)
//
// Receipts record only the digest of an action's input; a server that
// executes an action once it is approved needs the input itself, stored
// when the action was held. The Guard checks the stored input against the
// recorded digest before executing it, so this table is not trusted.

// PutInput stores the canonical input of action actionID of tenant
// tenantID. It is idempotent: if the action's input is already stored,
// by this or another replica, the first one is kept and PutInput
// succeeds. It fails with [ErrClosed] after Close.
func (s *Store) PutInput(ctx context.Context, actionID, tenantID string, input []byte) error {
	done, err := s.enter("inputs: put")
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if input == nil {
		input = []byte{}
	}
	t := pgx.Identifier{s.schema, "oars_action_inputs"}.Sanitize()
	if _, err := s.pool.Exec(ctx, `INSERT INTO `+t+` (action_id, tenant_id, input) VALUES ($1, $2, $3)
		ON CONFLICT (action_id) DO NOTHING`, actionID, tenantID, input); err != nil {
		return fmt.Errorf("postgres: inputs: put: %w", err)
	}
	return nil
}

// GetInput returns the input stored for action actionID, in a slice the
// caller may keep, or an error wrapping [ledger.ErrNotFound] when none is
// stored. It fails with [ErrClosed] after Close.
func (s *Store) GetInput(ctx context.Context, actionID string) ([]byte, error) {
	done, err := s.enter("inputs: get")
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	t := pgx.Identifier{s.schema, "oars_action_inputs"}.Sanitize()
	var input []byte
	err = s.pool.QueryRow(ctx, `SELECT input FROM `+t+` WHERE action_id = $1`, actionID).Scan(&input)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("postgres: inputs: get: %w", ledger.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("postgres: inputs: get: %w", err)
	}
	if input == nil {
		input = []byte{}
	}
	return input, nil
}
