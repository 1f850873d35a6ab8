package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/oarsdev/oars/ledger"
)

// The inputs of actions held for approval live in one table, added by
// schema version 3:
//
//	action_inputs(action_id TEXT PRIMARY KEY, tenant_id TEXT, input BLOB)
//
// Receipts record only the digest of an action's input; a server that
// executes an action once it is approved needs the input itself, stored
// when the action was held. The Guard checks the stored input against the
// recorded digest before executing it, so this table is not trusted.

// PutInput stores the canonical input of action actionID of tenant
// tenantID. It is idempotent: if the action's input is already stored,
// the first one is kept and PutInput succeeds. The write is committed
// like a ledger append when it returns nil. It fails with [ErrReadOnly]
// on a read-only store and [ErrClosed] after Close.
func (s *Store) PutInput(ctx context.Context, actionID, tenantID string, input []byte) error {
	if err := s.enter("inputs: put"); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: inputs: put: %w", ErrReadOnly)
	}
	// An empty input may bind as NULL; store it as the empty blob.
	if _, err := s.writer.ExecContext(ctx, `INSERT INTO action_inputs (action_id, tenant_id, input)
		VALUES (?, ?, coalesce(?, x'')) ON CONFLICT (action_id) DO NOTHING`,
		actionID, tenantID, input); err != nil {
		return fail("inputs: put", err)
	}
	return nil
}

// GetInput returns the input stored for action actionID, in a slice the
// caller may keep, or an error wrapping [ledger.ErrNotFound] when none is
// stored. It fails with [ErrClosed] after Close.
func (s *Store) GetInput(ctx context.Context, actionID string) ([]byte, error) {
	if err := s.enter("inputs: get"); err != nil {
		return nil, err
	}
	defer s.leave()
	var input []byte
	err := s.reader.QueryRowContext(ctx, `SELECT input FROM action_inputs WHERE action_id = ?`, actionID).Scan(&input)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: inputs: get: %w", ledger.ErrNotFound)
	case err != nil:
		return nil, fail("inputs: get", err)
	}
	if input == nil {
		input = []byte{}
	}
	return input, nil
}
