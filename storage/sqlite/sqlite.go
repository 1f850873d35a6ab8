package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/oarsdev/oars/ledger"
)

// Errors callers can test for with errors.Is.
var (
	// ErrClosed is returned (wrapped) by every method of a closed [Store].
	ErrClosed = errors.New("sqlite: store is closed")

	// ErrSchemaTooNew is returned (wrapped) by [Open] when the database was
	// written by a newer build with a schema version this build does not
	// know. The file is left unchanged.
	ErrSchemaTooNew = errors.New("sqlite: schema too new")

	// ErrDuplicateReceipt is returned (wrapped) by [Store.Append] when a
	// receipt in the batch has a receipt_id, or an (action_id, seq), that is
	// already stored or repeated in the batch. Nothing of the batch is
	// stored. It wraps [ledger.ErrDuplicate].
	ErrDuplicateReceipt = fmt.Errorf("sqlite: duplicate receipt: %w", ledger.ErrDuplicate)

	// ErrDuplicateEvent is returned (wrapped) by [Store.Append] when an event
	// in the batch has an event_id that is already stored or repeated in the
	// batch. Nothing of the batch is stored. It wraps [ledger.ErrDuplicate].
	ErrDuplicateEvent = fmt.Errorf("sqlite: duplicate event: %w", ledger.ErrDuplicate)

	// ErrCorrupt is returned (wrapped) when the file is not a SQLite
	// database, or the database does not hold together: a leaf or hash row
	// missing inside the log, a hash that is not 32 bytes, a size that
	// disagrees with the rows. The store never answers such a read with a
	// shortened result.
	ErrCorrupt = errors.New("sqlite: database corrupt")

	// ErrReadOnly is returned (wrapped) by [Store.Append] on a store opened
	// with [WithReadOnly], and by writes the file system refuses.
	ErrReadOnly = errors.New("sqlite: read-only")
)

// walSizeLimit is the writer's journal_size_limit, in bytes: when the WAL
// starts over after a checkpoint, a WAL file that grew past it (say, while
// a long read held checkpoints back) is cut back to it. It is well above
// the few megabytes the WAL normally takes, which are reused as they are.
const walSizeLimit = 64 << 20

// newPageSize is the page size of a new database file. With SQLite's
// default of 4096 bytes, a page holds only two rows of a ~1 KB receipt
// leaf and its index columns, so a third of each page written to the WAL,
// and copied again by checkpoints, is empty; 8192-byte pages hold five.
// That cuts the WAL frames (two writes each) of a batch by about a third
// and the store's CPU time per leaf by about a tenth. An existing database
// keeps the page size it was created with: a database in WAL mode cannot
// change it.
const newPageSize = 8192

// Defaults of the options.
const (
	DefaultBusyTimeout = 5 * time.Second
	DefaultMaxReaders  = 4
)

// Option configures [Open]. An invalid option makes Open fail.
type Option func(*config) error

type config struct {
	readOnly    bool
	busyTimeout time.Duration
	maxReaders  int
	// synchronous is the PRAGMA synchronous value of the writer. Always
	// FULL outside this package's benchmarks (see the package doc).
	synchronous string
}

// WithReadOnly opens an existing database for reading only: Open fails if
// the file does not exist (it is never created), the schema is never
// migrated and must be the current version, and [Store.Append] fails with
// [ErrReadOnly]. Auditing tools open the ledger this way.
func WithReadOnly() Option {
	return func(c *config) error {
		c.readOnly = true
		return nil
	}
}

// WithBusyTimeout sets how long a statement waits for a lock held by
// another connection (another process appending to the same file, say)
// before failing; the default is [DefaultBusyTimeout]. d must be at least
// one millisecond.
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d < time.Millisecond {
			return errors.New("sqlite: busy timeout must be at least 1ms")
		}
		c.busyTimeout = d
		return nil
	}
}

// WithMaxReaders sets how many connections serve reads concurrently; the
// default is [DefaultMaxReaders]. n must be at least 1.
func WithMaxReaders(n int) Option {
	return func(c *config) error {
		if n < 1 {
			return errors.New("sqlite: max readers must be at least 1")
		}
		c.maxReaders = n
		return nil
	}
}

// withSynchronous sets PRAGMA synchronous on the writer. Only benchmarks
// use it, to measure what FULL costs; see the package doc for why NORMAL is
// not offered.
func withSynchronous(mode string) Option {
	return func(c *config) error {
		switch mode {
		case "FULL", "NORMAL":
			c.synchronous = mode
			return nil
		}
		return fmt.Errorf("sqlite: unsupported synchronous mode %q", mode)
	}
}

// Store is a [ledger.Store] and [ledger.Querier] in one SQLite database
// file; see the package documentation for the schema and its guarantees.
//
// A Store is safe for concurrent use by multiple goroutines. It holds
// database connections until [Store.Close]; after Close every method fails
// with [ErrClosed].
type Store struct {
	readOnly bool
	writer   *sql.DB // one connection; nil when read-only
	reader   *sql.DB // pool of reading connections

	w writeStmts // prepared on writer
	r readStmts  // prepared on reader

	// mu guards closed; every method holds it for reading while it runs,
	// so Close waits for running calls and later calls see closed.
	mu     sync.RWMutex
	closed bool
}

var (
	_ ledger.Store   = (*Store)(nil)
	_ ledger.Querier = (*Store)(nil)
)

// Open opens the ledger database at path, creating the file (mode 0600) and
// the schema if they do not exist yet, and migrating an older schema. The
// directory must exist. The database is put in WAL mode with
// synchronous=FULL.
//
// Open fails with an error wrapping [fs.ErrNotExist] if the directory (or,
// with [WithReadOnly], the file) does not exist; [ErrCorrupt] if the file is
// not a SQLite database; [ErrSchemaTooNew] if its schema is newer than this
// build's; and another error if the file holds a database that is not an
// OARS ledger, ctx ends, or an option is invalid.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{
		busyTimeout: DefaultBusyTimeout,
		maxReaders:  DefaultMaxReaders,
		synchronous: "FULL",
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("sqlite: open: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
	}
	if path == "" {
		return nil, errors.New("sqlite: open: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := prepareFile(abs, cfg.readOnly); err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}

	s := &Store{readOnly: cfg.readOnly}
	ok := false
	defer func() {
		if !ok {
			s.closeDBs()
		}
	}()

	busy := strconv.FormatInt(cfg.busyTimeout.Milliseconds(), 10)
	if !cfg.readOnly {
		wq := url.Values{
			"_busy_timeout": {busy},
			"_journal_mode": {"WAL"},
			"_synchronous":  {cfg.synchronous},
			"_foreign_keys": {"1"},
			"_txlock":       {"immediate"},
			"_pragma": {
				fmt.Sprintf("journal_size_limit(%d)", walSizeLimit),
				// Only a new database takes it (see newPageSize).
				fmt.Sprintf("page_size(%d)", newPageSize),
			},
		}
		s.writer, err = openSingle(fileDSN(abs, wq))
		if err != nil {
			return nil, fmt.Errorf("sqlite: open: %w", err)
		}
		if err := migrate(ctx, s.writer); err != nil {
			return nil, err
		}
	}

	rq := url.Values{"_busy_timeout": {busy}, "_foreign_keys": {"1"}}
	if cfg.readOnly {
		rq.Set("mode", "ro")
	} else {
		// The writer already opened the file; query_only guards against
		// a read path ever writing.
		rq.Set("_query_only", "1")
	}
	s.reader, err = sql.Open("sqlite", fileDSN(abs, rq))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	s.reader.SetMaxOpenConns(cfg.maxReaders)
	s.reader.SetMaxIdleConns(cfg.maxReaders)
	s.reader.SetConnMaxLifetime(0)
	s.reader.SetConnMaxIdleTime(0)
	if cfg.readOnly {
		if err := checkVersion(ctx, s.reader); err != nil {
			return nil, err
		}
	}

	if !cfg.readOnly {
		if err := s.w.prepare(ctx, s.writer); err != nil {
			return nil, fail("open: prepare", err)
		}
	}
	if err := s.r.prepare(ctx, s.reader); err != nil {
		return nil, fail("open: prepare", err)
	}
	ok = true
	return s, nil
}

// openSingle returns a database handle that keeps exactly one connection
// open for its whole life.
func openSingle(dsn string) (*sql.DB, error) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	return db, nil
}

// prepareFile checks that the directory of path exists and, unless
// readOnly, creates the database file with mode 0600 if it is missing, so
// that SQLite (whose WAL and shared-memory files copy the database file's
// mode) never creates it world-readable. With readOnly the file must exist.
func prepareFile(path string, readOnly bool) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("directory does not exist: %w", err)
		}
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if !readOnly {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		switch {
		case err == nil:
			// A new, empty file is an empty SQLite database. Make its
			// directory entry durable before anything is stored in it.
			serr := f.Sync()
			if cerr := f.Close(); serr == nil {
				serr = cerr
			}
			if serr == nil {
				serr = syncDir(dir)
			}
			if serr != nil {
				return fmt.Errorf("create database file: %w", serr)
			}
			return nil
		case !errors.Is(err, fs.ErrExist):
			return fmt.Errorf("create database file: %w", err)
		}
	}
	fi, err = os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("database file does not exist: %w", err)
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// syncDir fsyncs a directory so that a file created in it survives a
// crash. Windows cannot sync a directory (and needs not: NTFS journals
// directory entries), so there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// fileDSN returns a file: URI for the absolute path with the query q, in
// the form modernc.org/sqlite passes to sqlite3_open_v2 (so SQLite's own
// parameters, such as mode, apply) after reading its own underscore keys.
func fileDSN(abs string, q url.Values) string {
	p := filepath.ToSlash(abs)
	if !strings.HasPrefix(p, "/") {
		p = "/" + p // a Windows drive path: file:///C:/…
	}
	u := url.URL{Scheme: "file", Path: p, RawQuery: q.Encode()}
	return u.String()
}

// Close closes the database. It waits for calls in progress to finish;
// afterwards every method fails with [ErrClosed]. Closing a closed Store
// does nothing and returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.closeDBs(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// closeDBs closes statements and connections: readers first, so that the
// writer, a read-write connection, is the last one and checkpoints the WAL
// into the database file.
func (s *Store) closeDBs() error {
	errs := append(s.r.close(), s.w.close()...)
	if s.reader != nil {
		errs = append(errs, s.reader.Close())
	}
	if s.writer != nil {
		errs = append(errs, s.writer.Close())
	}
	return errors.Join(errs...)
}

// enter starts a call: it fails with ErrClosed on a closed store and
// otherwise holds s.mu for reading until leave.
func (s *Store) enter(op string) error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return fmt.Errorf("sqlite: %s: %w", op, ErrClosed)
	}
	return nil
}

func (s *Store) leave() { s.mu.RUnlock() }

// writeTx runs f in a write transaction on the writer (BEGIN IMMEDIATE,
// see Open) and commits it unless f fails. It fails with ErrClosed after
// Close and ErrReadOnly on a read-only store; f's error is wrapped by
// fail(op, …).
func (s *Store) writeTx(ctx context.Context, op string, f func(tx *sql.Tx) error) error {
	if err := s.enter(op); err != nil {
		return err
	}
	defer s.leave()
	if s.readOnly {
		return fmt.Errorf("sqlite: %s: %w", op, ErrReadOnly)
	}
	tx, err := s.writer.BeginTx(ctx, nil)
	if err != nil {
		return fail(op+": begin", err)
	}
	defer func() { _ = tx.Rollback() }() // no-op after Commit
	if err := f(tx); err != nil {
		return fail(op, err)
	}
	if err := tx.Commit(); err != nil {
		return fail(op+": commit", err)
	}
	return nil
}

// fail wraps a database error of operation op, adding ErrCorrupt or
// ErrReadOnly where SQLite's result code says so.
func fail(op string, err error) error {
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB:
		return fmt.Errorf("sqlite: %s: %w: %w", op, ErrCorrupt, err)
	case sqlite3.SQLITE_READONLY:
		return fmt.Errorf("sqlite: %s: %w: %w", op, ErrReadOnly, err)
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// sqliteCode returns the extended SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *msqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}
