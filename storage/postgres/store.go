package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
)

// ErrClosed is returned (wrapped) by every method of a [Store] after
// [Store.Close].
var ErrClosed = errors.New("postgres: store is closed")

// ErrSchemaTooNew is returned (wrapped) by [Open] when the database holds a
// schema version newer than this build knows: a newer OARS has migrated it,
// and this one must not write to it.
var ErrSchemaTooNew = errors.New("postgres: schema too new")

// ErrDuplicateReceipt is returned (wrapped) by [Store.Append] when a leaf
// of the batch is a receipt whose receipt_id, or whose (action_id, seq),
// is already stored or appears twice in the batch. Nothing of the batch is
// stored. It wraps [ledger.ErrDuplicate].
var ErrDuplicateReceipt = fmt.Errorf("postgres: duplicate receipt: %w", ledger.ErrDuplicate)

// ErrCorrupt is returned (wrapped) when the tables do not hold together:
// the sequencer row is missing, or a leaf or hash below the recorded size
// is missing. The store never answers such a read with a shorter result.
var ErrCorrupt = errors.New("postgres: store is corrupt")

// notifyChannel is the LISTEN/NOTIFY channel of every OARS ledger in a
// database; the payload names the schema (see [Store.Watch]).
const notifyChannel = "oars_ledger"

// maxIdentifier is the longest identifier PostgreSQL keeps whole
// (NAMEDATALEN-1).
const maxIdentifier = 63

// defaultTimeout bounds each operation unless [WithTimeout] says otherwise.
const defaultTimeout = 30 * time.Second

// Option configures [Open]. An invalid option makes Open fail.
type Option func(*config) error

type config struct {
	schema  string
	timeout time.Duration
}

// WithSchema sets the PostgreSQL schema that holds the tables (default
// "public"). Open creates the schema if it does not exist. Use one schema
// per ledger to keep several ledgers (tenants, tests) in one database. The
// name is quoted, so any name of 1 to 63 bytes without NUL bytes is
// allowed (PostgreSQL would silently truncate a longer one).
func WithSchema(name string) Option {
	return func(c *config) error {
		if name == "" {
			return errors.New("empty schema name")
		}
		if strings.IndexByte(name, 0) >= 0 {
			return errors.New("schema name contains a NUL byte")
		}
		if len(name) > maxIdentifier {
			return fmt.Errorf("schema name longer than %d bytes", maxIdentifier)
		}
		c.schema = name
		return nil
	}
}

// WithTimeout bounds how long one operation of the store (an append, a
// read, a query, the migration in Open) may take, including waiting for a
// connection or for the sequencer lock (default 30s). A [ledger.Ledger]
// runs store writes without its caller's cancellation, so this is what
// keeps a hung database from hanging appends forever. d == 0 disables the
// bound; a negative d is an error.
func WithTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < 0 {
			return errors.New("negative timeout")
		}
		c.timeout = d
		return nil
	}
}

// Store is a [ledger.Store] and [ledger.Querier] in a PostgreSQL database,
// shared safely by any number of processes. See the package documentation
// for the schema, the sequencing method and the durability argument.
//
// A Store is safe for concurrent use by multiple goroutines. It holds a
// connection pool (pgxpool) until [Store.Close].
type Store struct {
	pool    *pgxpool.Pool
	schema  string
	timeout time.Duration
	q       queries

	mu     sync.RWMutex // held for reading by every operation, for writing by Close
	closed bool

	watchMu  sync.Mutex
	watchers map[*watcher]struct{}
	watchWG  sync.WaitGroup
}

var (
	_ ledger.Store   = (*Store)(nil)
	_ ledger.Querier = (*Store)(nil)
)

// queries holds the SQL of a Store, with the schema name quoted into it.
type queries struct {
	size, lockSize, setSize                  string
	insertLeaves, insertHashes, insertRcpts  string
	readLeaves, readHashes                   string
	receiptByID, actionReceipts, listReceipt string
	notify                                   string
	check                                    string
}

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	return queries{
		size:     `SELECT size FROM ` + s + `.oars_log`,
		lockSize: `SELECT size FROM ` + s + `.oars_log FOR UPDATE`,
		setSize:  `UPDATE ` + s + `.oars_log SET size = $1`,
		insertLeaves: `INSERT INTO ` + s + `.oars_leaves (idx, data)
			SELECT * FROM unnest($1::bigint[], $2::bytea[])`,
		insertHashes: `INSERT INTO ` + s + `.oars_hashes (idx, hash)
			SELECT * FROM unnest($1::bigint[], $2::bytea[])`,
		insertRcpts: `INSERT INTO ` + s + `.oars_receipts
			(idx, receipt_id, action_id, seq, status, tenant_id, agent_id, issued_at)
			SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[],
				$5::text[], $6::text[], $7::text[], $8::timestamptz[])`,
		// One statement, one snapshot: the size and the rows agree.
		readLeaves: `SELECT g.size, l.idx, l.data FROM ` + s + `.oars_log g
			LEFT JOIN ` + s + `.oars_leaves l ON l.idx >= $1 AND l.idx < $2
			ORDER BY l.idx`,
		readHashes: `SELECT g.size, h.idx, h.hash FROM ` + s + `.oars_log g
			LEFT JOIN ` + s + `.oars_hashes h ON h.idx = ANY($1::bigint[])`,
		receiptByID: `SELECT r.idx, l.data FROM ` + s + `.oars_receipts r
			JOIN ` + s + `.oars_leaves l ON l.idx = r.idx WHERE r.receipt_id = $1`,
		actionReceipts: `SELECT r.idx, l.data FROM ` + s + `.oars_receipts r
			JOIN ` + s + `.oars_leaves l ON l.idx = r.idx WHERE r.action_id = $1 ORDER BY r.seq`,
		listReceipt: `SELECT r.idx, l.data FROM ` + s + `.oars_receipts r
			JOIN ` + s + `.oars_leaves l ON l.idx = r.idx WHERE r.idx > $1`,
		notify: `SELECT pg_notify('` + notifyChannel + `', $1)`,
		check: `SELECT g.size,
			(SELECT max(idx) FROM ` + s + `.oars_leaves),
			(SELECT max(idx) FROM ` + s + `.oars_hashes)
			FROM ` + s + `.oars_log g`,
	}
}

// Open connects to the PostgreSQL database named by connString (a URL such
// as "postgres://user:pass@host:5432/db?sslmode=verify-full" or key=value
// pairs; pgxpool's pool_* parameters such as pool_max_conns are honoured),
// migrates the schema to the version this build knows, checks that the log
// tables hold together and returns the Store.
//
// Several processes may Open the same database and schema at once: the
// migration runs in one transaction under a PostgreSQL advisory lock, so it
// is applied exactly once. Open returns an error wrapping [ErrSchemaTooNew]
// if the schema was migrated by a newer build, wrapping [ErrCorrupt] if the
// log tables disagree, and another error if an option is invalid, the
// connection string cannot be parsed or the database cannot be reached.
// Error messages never contain the connection string's password.
func Open(ctx context.Context, connString string, opts ...Option) (*Store, error) {
	cfg := config{schema: "public", timeout: defaultTimeout}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("postgres: open: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("postgres: open: %w", err)
		}
	}
	pcfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// A parse error may quote the connection string, password and all
		// (pgx redacts only what it recognises), so its text is withheld.
		return nil, &redactedError{
			msg: "postgres: open: cannot parse the connection string (details withheld: they may contain a password)",
			err: err,
		}
	}
	password := pcfg.ConnConfig.Password
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, redact(fmt.Errorf("postgres: open: %w", err), password)
	}
	s := &Store{
		pool:     pool,
		schema:   cfg.schema,
		timeout:  cfg.timeout,
		q:        newQueries(cfg.schema),
		watchers: make(map[*watcher]struct{}),
	}
	octx, cancel := s.opContext(ctx)
	defer cancel()
	if err := pool.Ping(octx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("postgres: open: connect: %w", err), password)
	}
	if err := s.migrate(octx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("postgres: open: %w", err), password)
	}
	if err := s.check(octx); err != nil {
		pool.Close()
		return nil, redact(fmt.Errorf("postgres: open: %w", err), password)
	}
	return s, nil
}

// Close stops every [Store.Watch], waits for operations in progress to
// finish and closes the connection pool. Afterwards every method returns
// an error wrapping [ErrClosed]. Close is safe to call more than once; later
// calls do nothing and return nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	s.watchMu.Lock()
	for w := range s.watchers {
		w.cancel()
	}
	s.watchMu.Unlock()
	s.watchWG.Wait()
	s.pool.Close()
	return nil
}

// enter marks the start of an operation; the returned func marks its end.
// It fails with ErrClosed once Close has begun.
func (s *Store) enter(op string) (func(), error) {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return nil, fmt.Errorf("postgres: %s: %w", op, ErrClosed)
	}
	return s.mu.RUnlock, nil
}

// opContext bounds ctx by the store's timeout.
func (s *Store) opContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.timeout == 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, s.timeout)
}

// check verifies at Open that the leaves and hashes end where the
// sequencer row says the log ends.
func (s *Store) check(ctx context.Context) error {
	var (
		size             int64
		maxLeaf, maxHash *int64
	)
	err := s.pool.QueryRow(ctx, s.q.check).Scan(&size, &maxLeaf, &maxHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("check: sequencer row missing: %w", ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if size < 0 {
		return fmt.Errorf("check: negative size %d: %w", size, ErrCorrupt)
	}
	wantLeaf, wantHash := size-1, tlog.StoredHashCount(size)-1
	if got := orMinus1(maxLeaf); got != wantLeaf {
		return fmt.Errorf("check: last leaf is %d, size %d wants %d: %w", got, size, wantLeaf, ErrCorrupt)
	}
	if got := orMinus1(maxHash); got != wantHash {
		return fmt.Errorf("check: last hash is %d, size %d wants %d: %w", got, size, wantHash, ErrCorrupt)
	}
	return nil
}

func orMinus1(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

// Size returns the number of leaves stored, as recorded in the sequencer
// row. It returns an error wrapping [ErrClosed] after Close, wrapping
// [ErrCorrupt] if the sequencer row is missing, and another error if the
// database cannot be read.
func (s *Store) Size(ctx context.Context) (int64, error) {
	done, err := s.enter("size")
	if err != nil {
		return 0, err
	}
	defer done()
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	var size int64
	err = s.pool.QueryRow(ctx, s.q.size).Scan(&size)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres: size: sequencer row missing: %w", ErrCorrupt)
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: size: %w", err)
	}
	return size, nil
}

// receiptRows are the columns of oars_receipts for one append.
type receiptRows struct {
	idx       []int64
	receiptID []string
	actionID  []string
	seq       []int64
	status    []string
	tenantID  []string
	agentID   []string
	issuedAt  []pgtype.Timestamptz
}

func (r *receiptRows) add(idx int64, h ledger.Header) {
	r.idx = append(r.idx, idx)
	r.receiptID = append(r.receiptID, h.ReceiptID)
	r.actionID = append(r.actionID, h.ActionID)
	r.seq = append(r.seq, h.Seq)
	r.status = append(r.status, h.Status)
	r.tenantID = append(r.tenantID, h.TenantID)
	r.agentID = append(r.agentID, h.AgentID)
	r.issuedAt = append(r.issuedAt, pgtype.Timestamptz{Time: h.IssuedAt, Valid: !h.IssuedAt.IsZero()})
}

// receiptHeader returns the header of leaf if it is a receipt this store
// indexes. PostgreSQL text cannot hold NUL bytes, so a receipt with one in
// an indexed field is stored but not indexed, like any other leaf that is
// not a receipt.
func receiptHeader(leaf []byte) (ledger.Header, bool) {
	h, ok := ledger.ParseHeader(leaf)
	if !ok || h.Spec != ledger.SpecReceipt {
		return ledger.Header{}, false
	}
	for _, f := range []string{h.ReceiptID, h.ActionID, h.Status, h.TenantID, h.AgentID} {
		if strings.IndexByte(f, 0) >= 0 {
			return ledger.Header{}, false
		}
	}
	return h, true
}

// Append stores leaves at [start, start+len(leaves)) with their hashes and
// receipt index rows in one transaction; see the package documentation for
// how the sequencer row keeps concurrent appenders, in any number of
// processes, on one linear log.
//
// It returns an error wrapping [ledger.ErrConflict] if start is not the
// current size, wrapping [ErrDuplicateReceipt] if a receipt's receipt_id or
// (action_id, seq) is already stored or repeated in the batch, wrapping
// [ErrClosed] after Close, and another error if start is negative, the
// number of hashes is not the number tlog.StoredHashes yields for these
// leaves, or the database fails. In every error case nothing is stored,
// except that an error from the final commit (a lost connection, say)
// leaves the outcome unknown; [ledger.Ledger] copes by re-reading the size.
// Append returns nil only after PostgreSQL reported the commit durable.
func (s *Store) Append(ctx context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	done, err := s.enter("append")
	if err != nil {
		return err
	}
	defer done()
	if start < 0 {
		return errors.New("postgres: append: negative start")
	}
	end := start + int64(len(leaves))
	first := tlog.StoredHashIndex(0, start)
	if want := tlog.StoredHashCount(end) - first; int64(len(hashes)) != want {
		return fmt.Errorf("postgres: append: got %d hashes for %d leaves, want %d", len(hashes), len(leaves), want)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	if len(leaves) == 0 {
		var size int64
		if err := s.pool.QueryRow(ctx, s.q.size).Scan(&size); err != nil {
			return fmt.Errorf("postgres: append: %w", err)
		}
		if size != start {
			return fmt.Errorf("postgres: append at %d, size is %d: %w", start, size, ledger.ErrConflict)
		}
		return nil
	}

	idx := make([]int64, len(leaves))
	data := make([][]byte, len(leaves))
	var rcpts receiptRows
	for i, leaf := range leaves {
		idx[i] = start + int64(i)
		data[i] = leaf
		if leaf == nil {
			data[i] = []byte{} // pgx sends a nil slice as NULL
		}
		if h, ok := receiptHeader(leaf); ok {
			rcpts.add(idx[i], h)
		}
	}
	hidx := make([]int64, len(hashes))
	hbytes := make([][]byte, len(hashes))
	for i := range hashes {
		hidx[i] = first + int64(i)
		hbytes[i] = hashes[i][:]
	}
	payload, err := notifyPayload(s.schema, end)
	if err != nil {
		return fmt.Errorf("postgres: append: %w", err)
	}

	// One round trip for BEGIN, the row lock and every write; one more for
	// COMMIT once the locked size proved start right. If start is wrong the
	// writes already sent are rolled back with the transaction.
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	lock := b.Queue(s.q.lockSize)
	b.Queue(s.q.insertLeaves, idx, data)
	b.Queue(s.q.insertHashes, hidx, hbytes)
	if len(rcpts.idx) > 0 {
		b.Queue(s.q.insertRcpts, rcpts.idx, rcpts.receiptID, rcpts.actionID, rcpts.seq,
			rcpts.status, rcpts.tenantID, rcpts.agentID, rcpts.issuedAt)
	}
	b.Queue(s.q.setSize, end)
	b.Queue(s.q.notify, payload)

	var size int64
	sizeRead := false
	lock.QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&size); err != nil {
			return err
		}
		sizeRead = true
		return nil
	})
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	if tx != nil {
		// Rollback after Commit is a no-op; it also returns the connection
		// to the pool when the batch failed.
		defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	}
	batchErr := br.Close()
	if sizeRead && size != start {
		return fmt.Errorf("postgres: append at %d, size is %d: %w", start, size, ledger.ErrConflict)
	}
	if batchErr != nil {
		if errors.Is(batchErr, pgx.ErrNoRows) {
			return fmt.Errorf("postgres: append: sequencer row missing: %w", ErrCorrupt)
		}
		if isDuplicateReceipt(batchErr) {
			return fmt.Errorf("postgres: append: %w: %w", ErrDuplicateReceipt, batchErr)
		}
		return fmt.Errorf("postgres: append: %w", batchErr)
	}
	if tx == nil || !sizeRead {
		return errors.New("postgres: append: transaction did not start")
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: append: commit: %w", err)
	}
	return nil
}

// isDuplicateReceipt reports whether err is a unique violation of one of
// the receipt index's unique constraints.
func isDuplicateReceipt(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "23505" {
		return false
	}
	return pgErr.ConstraintName == "oars_receipts_receipt_id_key" ||
		pgErr.ConstraintName == "oars_receipts_action_seq_key"
}

// ReadLeaves returns n leaves starting at index start. It returns an error
// wrapping [ledger.ErrOutOfRange] if start or n is negative or the range
// reaches past the size, wrapping [ErrCorrupt] if a leaf below the size is
// missing, wrapping [ErrClosed] after Close, and another error if the
// database fails. It never returns fewer than n leaves without an error.
func (s *Store) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	done, err := s.enter("read leaves")
	if err != nil {
		return nil, err
	}
	defer done()
	if start < 0 || n < 0 {
		return nil, fmt.Errorf("postgres: read leaves [%d, +%d): %w", start, n, ledger.ErrOutOfRange)
	}
	end := start + int64(n)
	if end < start {
		return nil, fmt.Errorf("postgres: read leaves [%d, +%d): %w", start, n, ledger.ErrOutOfRange)
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.readLeaves, start, end)
	if err != nil {
		return nil, fmt.Errorf("postgres: read leaves: %w", err)
	}
	defer rows.Close()
	out := make([][]byte, 0, n)
	size := int64(-1)
	for rows.Next() {
		var (
			idx  *int64
			data []byte
		)
		if err := rows.Scan(&size, &idx, &data); err != nil {
			return nil, fmt.Errorf("postgres: read leaves: %w", err)
		}
		if idx == nil {
			continue // no leaf in range: the LEFT JOIN's lone NULL row
		}
		if want := start + int64(len(out)); *idx != want {
			if want < size {
				return nil, fmt.Errorf("postgres: read leaves: leaf %d missing: %w", want, ErrCorrupt)
			}
			break
		}
		if data == nil {
			data = []byte{}
		}
		out = append(out, data)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read leaves: %w", err)
	}
	if size < 0 {
		return nil, fmt.Errorf("postgres: read leaves: sequencer row missing: %w", ErrCorrupt)
	}
	if end > size {
		return nil, fmt.Errorf("postgres: read leaves [%d, +%d) of %d: %w", start, n, size, ledger.ErrOutOfRange)
	}
	if len(out) != n {
		return nil, fmt.Errorf("postgres: read leaves: leaf %d missing: %w", start+int64(len(out)), ErrCorrupt)
	}
	return out, nil
}

// ReadHashes returns the stored hashes at the given storage indexes, in the
// same order. It returns an error wrapping [ledger.ErrOutOfRange] if an
// index is negative or not below tlog.StoredHashCount(size), wrapping
// [ErrCorrupt] if such a hash is missing or not 32 bytes, wrapping
// [ErrClosed] after Close, and another error if the database fails.
func (s *Store) ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error) {
	done, err := s.enter("read hashes")
	if err != nil {
		return nil, err
	}
	defer done()
	for _, x := range indexes {
		if x < 0 {
			return nil, fmt.Errorf("postgres: read hash %d: %w", x, ledger.ErrOutOfRange)
		}
	}
	ctx, cancel := s.opContext(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, s.q.readHashes, indexes)
	if err != nil {
		return nil, fmt.Errorf("postgres: read hashes: %w", err)
	}
	defer rows.Close()
	found := make(map[int64]tlog.Hash, len(indexes))
	size := int64(-1)
	for rows.Next() {
		var (
			idx  *int64
			hash []byte
		)
		if err := rows.Scan(&size, &idx, &hash); err != nil {
			return nil, fmt.Errorf("postgres: read hashes: %w", err)
		}
		if idx == nil {
			continue
		}
		if len(hash) != len(tlog.Hash{}) {
			return nil, fmt.Errorf("postgres: read hashes: hash %d has %d bytes: %w", *idx, len(hash), ErrCorrupt)
		}
		found[*idx] = tlog.Hash(hash)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: read hashes: %w", err)
	}
	if size < 0 {
		return nil, fmt.Errorf("postgres: read hashes: sequencer row missing: %w", ErrCorrupt)
	}
	stored := tlog.StoredHashCount(size)
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x >= stored {
			return nil, fmt.Errorf("postgres: read hash %d of %d: %w", x, stored, ledger.ErrOutOfRange)
		}
		h, ok := found[x]
		if !ok {
			return nil, fmt.Errorf("postgres: read hashes: hash %d missing: %w", x, ErrCorrupt)
		}
		out[i] = h
	}
	return out, nil
}

// redactedError replaces the text of err, which may hold a password, while
// keeping it reachable through errors.Is and errors.As.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// redact returns err with every occurrence of password in its text masked.
func redact(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return &redactedError{msg: strings.ReplaceAll(err.Error(), password, "xxxxx"), err: err}
}
