package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"

	"github.com/oarsdev/oars/identity"
)

// Agent passports (OAP) live in one table, added by schema version 4:
//
//	oars_passports(tenant_id TEXT, agent_id TEXT, status TEXT,
//	               version BIGINT, data BYTEA,
//	               PRIMARY KEY (tenant_id, agent_id))
//
// data is the passport's JSON (identity.MarshalPassport); status and
// version repeat its fields. Every change sends, in its transaction, a
// notification on the channel oars_passports with the payload
// {"schema","tenant","agent","status"}, so that other replicas drop their
// cached copy as soon as the change commits (see [Store.WatchPassports]).

// passportChannel is the LISTEN/NOTIFY channel of passport changes.
const passportChannel = "oars_passports"

var _ identity.PassportStore = (*Store)(nil)

// passportNotice is the payload of a notification on oars_passports.
type passportNotice struct {
	Schema string `json:"schema"`
	Tenant string `json:"tenant"`
	Agent  string `json:"agent"`
	Status string `json:"status"`
}

func (s *Store) passportTable() string {
	return pgx.Identifier{s.schema, "oars_passports"}.Sanitize()
}

// GetPassport implements [identity.PassportStore]. It fails with
// [ErrClosed] after Close and [ErrCorrupt] when the stored JSON is not a
// valid passport.
func (s *Store) GetPassport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error) {
	done, err := s.enter("passports: get")
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	p, err := s.getPassport(ctx, s.pool.QueryRow, tenantID, agentID, "")
	if err != nil {
		return nil, fmt.Errorf("postgres: passports: get: %w", err)
	}
	return p, nil
}

type queryRower func(ctx context.Context, sql string, args ...any) pgx.Row

func (s *Store) getPassport(ctx context.Context, q queryRower, tenantID, agentID, suffix string) (*identity.Passport, error) {
	var data []byte
	err := q(ctx, `SELECT data FROM `+s.passportTable()+` WHERE tenant_id = $1 AND agent_id = $2`+suffix, tenantID, agentID).Scan(&data)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
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
// [ErrClosed] after Close.
func (s *Store) PutPassport(ctx context.Context, p *identity.Passport) error {
	if p == nil {
		return fmt.Errorf("postgres: passports: put: %w: nil passport", identity.ErrInvalidPassport)
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
// [ErrClosed] after Close.
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

// passportTx locks and reads the stored passport of (tenantID, agentID),
// asks change for the passport to store (nil: nothing to do), stores it
// and notifies oars_passports in the same transaction.
func (s *Store) passportTx(ctx context.Context, op, tenantID, agentID string,
	change func(old *identity.Passport) (*identity.Passport, error)) error {
	done, err := s.enter(op)
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: %s: begin: %w", op, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	old, err := s.getPassport(ctx, tx.QueryRow, tenantID, agentID, " FOR UPDATE")
	switch {
	case errors.Is(err, identity.ErrPassportNotFound):
		old = nil
	case err != nil:
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	next, err := change(old)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	if next == nil {
		return nil
	}
	data, err := identity.MarshalPassport(next)
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	t := s.passportTable()
	if old == nil {
		// A concurrent creation that commits first wins; this one is
		// then a conflict.
		tag, err := tx.Exec(ctx, `INSERT INTO `+t+` (tenant_id, agent_id, status, version, data) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, agent_id) DO NOTHING`, tenantID, agentID, string(next.Status), next.Version, data)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", op, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: %s: %w: created concurrently", op, identity.ErrPassportConflict)
		}
	} else {
		_, err = tx.Exec(ctx, `UPDATE `+t+` SET status = $3, version = $4, data = $5 WHERE tenant_id = $1 AND agent_id = $2`,
			tenantID, agentID, string(next.Status), next.Version, data)
	}
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", op, err)
	}
	payload, err := json.Marshal(passportNotice{Schema: s.schema, Tenant: tenantID, Agent: agentID, Status: string(next.Status)})
	if err != nil {
		return fmt.Errorf("postgres: %s: notify payload: %w", op, err)
	}
	if len(payload) >= 8000 {
		// NOTIFY payloads must be shorter than 8000 bytes; receivers
		// treat an empty agent as "drop everything".
		payload, _ = json.Marshal(passportNotice{Schema: s.schema, Status: string(next.Status)})
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, passportChannel, string(payload)); err != nil {
		return fmt.Errorf("postgres: %s: notify: %w", op, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: %s: commit: %w", op, err)
	}
	return nil
}

// WatchPassports reports the passport changes committed to this store's
// schema by any process, as soon as they commit. It opens a dedicated
// connection (outside the pool), LISTENs on the channel oars_passports, and
// returns a channel that receives one [identity.PassportChange] per change
// committed after it returned. A change with an empty AgentID means "any
// agent of TenantID may have changed" (an empty TenantID too: any agent).
// [identity.PassportCache.Follow] consumes it.
//
// The channel buffers 256 changes; when the receiver falls behind, the
// watch waits for it (changes are not dropped). WatchPassports starts one
// goroutine, owned by ctx and by the Store: it ends, closes its connection
// and closes the channel when ctx is done, when [Store.Close] is called,
// or when the connection fails. Changes committed while no watch was
// listening are not replayed: a receiver whose channel closed must drop
// what it cached and watch again.
//
// WatchPassports returns an error wrapping [ErrClosed] after Close, and
// another error if the connection or the LISTEN fails.
func (s *Store) WatchPassports(ctx context.Context) (<-chan identity.PassportChange, error) {
	done, err := s.enter("watch passports")
	if err != nil {
		return nil, err
	}
	defer done()

	octx, cancel := s.opContext(ctx)
	defer cancel()
	conn, err := s.listen(octx, "watch passports", passportChannel)
	if err != nil {
		return nil, err
	}
	wctx, w := s.addWatcher(ctx)

	ch := make(chan identity.PassportChange, 256)
	go s.watchPassports(wctx, w, conn, ch)
	return ch, nil
}

// watchPassports forwards passport notifications for this schema until
// ctx ends or the connection fails.
func (s *Store) watchPassports(ctx context.Context, w *watcher, conn *pgx.Conn, ch chan identity.PassportChange) {
	defer func() {
		close(ch)
		s.endWatch(w, conn)
	}()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		var msg passportNotice
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || msg.Schema != s.schema {
			continue // another schema's passports, or not ours to read
		}
		select {
		case ch <- identity.PassportChange{TenantID: msg.Tenant, AgentID: msg.Agent, Status: identity.PassportStatus(msg.Status)}:
		case <-ctx.Done():
			return
		}
	}
}
