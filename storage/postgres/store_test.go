package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/ledger"
)

func TestOpenOptions(t *testing.T) {
	// Options are checked before any connection is made, so these need no
	// database.
	tests := []struct {
		name string
		opts []Option
	}{
		{"empty schema", []Option{WithSchema("")}},
		{"NUL in schema", []Option{WithSchema("a\x00b")}},
		{"schema too long", []Option{WithSchema(strings.Repeat("s", 64))}},
		{"negative timeout", []Option{WithTimeout(-time.Second)}},
		{"nil option", []Option{nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), "postgres://127.0.0.1:1/db", tt.opts...)
			assert.Nil(t, s, "Open(%s) store", tt.name)
			assert.ErrorContains(t, err, "postgres: open: ", "Open(%s) = %v, want an option error", tt.name, err)
		})
	}
}

func TestPasswordNotLeaked(t *testing.T) {
	// Nothing listens on port 1, and the malformed strings never reach the
	// network, so these need no database.
	const secret = "S3cretPassw0rdXYZ"
	tests := []struct {
		name string
		dsn  string
	}{
		{"URL, unreachable", "postgres://alice:" + secret + "@127.0.0.1:1/db?sslmode=disable&connect_timeout=5"},
		{"key=value, unreachable", "host=127.0.0.1 port=1 user=alice password=" + secret + " dbname=db sslmode=disable connect_timeout=5"},
		{"URL, bad port", "postgres://alice:" + secret + "@127.0.0.1:notaport/db"},
		{"URL, bad escape", "postgres://alice:" + secret + "%zz@127.0.0.1/db"},
		{"URL, bad option", "postgres://alice:" + secret + "@127.0.0.1/db?sslmode=bogus"},
		{"key=value, unterminated quote", "host=127.0.0.1 password='" + secret},
		{"key=value, bad option", "host=127.0.0.1 password=" + secret + " pool_max_conns=zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), tt.dsn)
			require.Error(t, err, "Open(%s) error", tt.name)
			assert.Nil(t, s, "Open(%s) store", tt.name)
			assert.NotContains(t, err.Error(), secret, "Open(%s) error text leaks the password", tt.name)
			assert.True(t, strings.HasPrefix(err.Error(), "postgres: open: "), "Open(%s) = %q, want prefix %q", tt.name, err, "postgres: open: ")
		})
	}
	t.Run("connect error is wrapped", func(t *testing.T) {
		_, err := Open(t.Context(), tests[0].dsn)
		var connErr *pgconn.ConnectError
		assert.ErrorAs(t, err, &connErr, "Open(unreachable) = %v, want a wrapped *pgconn.ConnectError", err)
	})
	t.Run("parse error is wrapped", func(t *testing.T) {
		_, err := Open(t.Context(), tests[2].dsn)
		var parseErr *pgconn.ParseConfigError
		assert.ErrorAs(t, err, &parseErr, "Open(bad port) = %v, want a wrapped *pgconn.ParseConfigError", err)
	})
}

func TestRedact(t *testing.T) {
	base := errors.New("login as bob with hunter2 failed")
	tests := []struct {
		name, password, want string
	}{
		{"masked", "hunter2", "login as bob with xxxxx failed"},
		{"absent", "swordfish", "login as bob with hunter2 failed"},
		{"no password", "", "login as bob with hunter2 failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := redact(base, tt.password)
			assert.Equal(t, tt.want, err.Error(), "redact(err, %q)", tt.password)
			assert.ErrorIs(t, err, base, "redact(err, %q) unwraps to err", tt.password)
		})
	}
}

func TestMigrations(t *testing.T) {
	url := testURL(t)
	ctx := t.Context()

	t.Run("fresh", func(t *testing.T) {
		schema := newSchema(t)
		s := openStore(t, schema)
		var version int
		err := s.pool.QueryRow(ctx, "SELECT version FROM "+pgx.Identifier{schema}.Sanitize()+".oars_schema_version").Scan(&version)
		require.NoError(t, err, "read version")
		assert.Equal(t, SchemaVersion, version, "schema version after Open")
		size, err := s.Size(ctx)
		require.NoError(t, err, "Size")
		assert.Equal(t, int64(0), size, "Size() of a fresh store")

		// Opening again migrates nothing and keeps the data.
		l, err := ledger.New(ctx, s)
		require.NoError(t, err, "ledger.New")
		_, err = l.Append(ctx, []byte("kept"))
		require.NoError(t, err, "Append")
		s2 := openStore(t, schema)
		got, err := s2.ReadLeaves(ctx, 0, 1)
		require.NoError(t, err, "ReadLeaves after reopening")
		assert.Equal(t, []byte("kept"), got[0], "leaf 0 after reopening")
	})

	t.Run("concurrent", func(t *testing.T) {
		schema := newSchema(t)
		const n = 4
		stores := make([]*Store, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				stores[i], errs[i] = Open(ctx, url, WithSchema(schema))
			})
		}
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i], "concurrent Open #%d", i)
			t.Cleanup(func() { _ = stores[i].Close() })
		}
		for i, s := range stores {
			size, err := s.Size(ctx)
			require.NoError(t, err, "Size on store #%d", i)
			assert.Equal(t, int64(0), size, "Size() on store #%d", i)
		}
		var rows int
		err := stores[0].pool.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema}.Sanitize()+".oars_log").Scan(&rows)
		require.NoError(t, err, "count sequencer rows")
		assert.Equal(t, 1, rows, "sequencer rows after concurrent migrations")
	})

	t.Run("too new", func(t *testing.T) {
		schema := newSchema(t)
		s := openStore(t, schema)
		require.NoError(t, s.Close(), "Close")
		execSQL(t, schema, "UPDATE %s.oars_schema_version SET version = $1", SchemaVersion+1)
		s2, err := Open(ctx, url, WithSchema(schema))
		assert.Nil(t, s2, "Open(newer schema) store")
		assert.ErrorIs(t, err, ErrSchemaTooNew, "Open(newer schema)")
		want := fmt.Sprintf("schema version %d is newer than this build supports (%d)", SchemaVersion+1, SchemaVersion)
		assert.ErrorContains(t, err, want, "Open(newer schema)")
	})
}

// appendLeaves appends leaves through a fresh Ledger over s.
func appendLeaves(t *testing.T, s ledger.Store, leaves [][]byte) {
	t.Helper()
	l, err := ledger.New(t.Context(), s)
	require.NoError(t, err, "ledger.New")
	_, err = l.AppendBatch(t.Context(), leaves)
	require.NoError(t, err, "AppendBatch(%d leaves)", len(leaves))
}

func testLeaves(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "leaf %d", i)
	}
	return out
}

func TestCorrupt(t *testing.T) {
	url := testURL(t)
	ctx := t.Context()
	tests := []struct {
		name     string
		sql      string
		check    func(s *Store) error
		openFail bool // Open itself must notice
	}{
		{
			name:  "leaf missing in the middle",
			sql:   "DELETE FROM %s.oars_leaves WHERE idx = 3",
			check: func(s *Store) error { _, err := s.ReadLeaves(ctx, 0, 8); return err },
		},
		{
			name:     "last leaf missing",
			sql:      "DELETE FROM %s.oars_leaves WHERE idx = 7",
			check:    func(s *Store) error { _, err := s.ReadLeaves(ctx, 7, 1); return err },
			openFail: true,
		},
		{
			name:  "hash missing",
			sql:   "DELETE FROM %s.oars_hashes WHERE idx = 2",
			check: func(s *Store) error { _, err := s.ReadHashes(ctx, []int64{1, 2, 3}); return err },
		},
		{
			name:     "sequencer row missing",
			sql:      "DELETE FROM %s.oars_log",
			check:    func(s *Store) error { _, err := s.Size(ctx); return err },
			openFail: true,
		},
		{
			name: "sequencer row missing, append",
			sql:  "DELETE FROM %s.oars_log",
			check: func(s *Store) error {
				n := tlog.StoredHashCount(9) - tlog.StoredHashIndex(0, 8)
				return s.Append(ctx, 8, [][]byte{[]byte("x")}, make([]tlog.Hash, n))
			},
			openFail: true,
		},
		{
			name:     "size ahead of the leaves",
			sql:      "UPDATE %s.oars_log SET size = 9",
			check:    func(s *Store) error { _, err := s.ReadLeaves(ctx, 0, 9); return err },
			openFail: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			schema := newSchema(t)
			s := openStore(t, schema)
			appendLeaves(t, s, testLeaves(8))
			execSQL(t, schema, tt.sql)

			err := tt.check(s)
			assert.ErrorIs(t, err, ErrCorrupt, "read after %q", tt.sql)
			assert.NotErrorIs(t, err, ledger.ErrOutOfRange, "read after %q", tt.sql)

			s2, err := Open(ctx, url, WithSchema(schema))
			if tt.openFail {
				assert.ErrorIs(t, err, ErrCorrupt, "Open after %q", tt.sql)
				assert.Nil(t, s2, "Open after %q store", tt.sql)
				return
			}
			require.NoError(t, err, "Open after %q", tt.sql)
			require.NoError(t, s2.Close(), "Close")
		})
	}

	t.Run("tables dropped", func(t *testing.T) {
		schema := newSchema(t)
		s := openStore(t, schema)
		require.NoError(t, s.Close(), "Close")
		execSQL(t, schema, "DROP TABLE %s.oars_leaves CASCADE")
		s2, err := Open(ctx, url, WithSchema(schema))
		assert.Nil(t, s2, "Open(dropped table) store")
		assert.ErrorContains(t, err, "postgres: open: check: ", "Open(dropped table)")
	})
}

func TestMultiReplicaLinearity(t *testing.T) {
	schema := newSchema(t)
	ctx := t.Context()
	const (
		replicas  = 4
		writers   = 16
		perWriter = 20
		total     = replicas * writers * perWriter
	)
	stores := make([]*Store, replicas)
	ledgers := make([]*ledger.Ledger, replicas)
	for i := range replicas {
		stores[i] = openStore(t, schema) // its own pool, as a replica has
		l, err := ledger.New(ctx, stores[i], ledger.WithConflictRetries(total))
		require.NoError(t, err, "ledger.New #%d", i)
		ledgers[i] = l
	}

	var (
		mu    sync.Mutex
		acked = make(map[int64][]byte, total)
		errs  []error
		wg    sync.WaitGroup
	)
	for r := range replicas {
		for w := range writers {
			wg.Go(func() {
				for k := range perWriter {
					id := fmt.Sprintf("r%d-w%d-k%d", r, w, k)
					leaf := receiptLeaf("rcpt-"+id, "act-"+id, 1, "allowed", 200)
					idx, err := ledgers[r].Append(ctx, leaf)
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					} else if _, dup := acked[idx]; dup {
						errs = append(errs, fmt.Errorf("index %d acknowledged twice", idx))
					} else {
						acked[idx] = leaf
					}
					mu.Unlock()
				}
			})
		}
	}
	wg.Wait()
	require.Empty(t, errs, "Append errors")
	require.Len(t, acked, total, "distinct acknowledged indexes")
	for i := range int64(total) {
		require.Contains(t, acked, i, "acknowledged indexes: %d missing", i)
	}

	for i, s := range stores {
		size, err := s.Size(ctx)
		require.NoError(t, err, "Size on replica %d", i)
		assert.Equal(t, int64(total), size, "Size() on replica %d", i)
	}
	got, err := stores[0].ReadLeaves(ctx, 0, total)
	require.NoError(t, err, "ReadLeaves(0, %d)", total)
	for i, leaf := range got {
		assert.Equal(t, acked[int64(i)], leaf, "leaf %d", i)
	}
	rep, err := ledger.Verify(ctx, stores[1], nil)
	require.NoError(t, err, "ledger.Verify")
	assert.Equal(t, int64(total), rep.Size, "Verify size")
	root, err := ledgers[2].TreeHash(ctx, total)
	require.NoError(t, err, "TreeHash")
	assert.Equal(t, root, rep.Root, "Verify root vs Ledger.TreeHash")
}

func TestTamper(t *testing.T) {
	schema := newSchema(t)
	ctx := t.Context()
	s := openStore(t, schema)
	appendLeaves(t, s, testLeaves(10))
	_, err := ledger.Verify(ctx, s, nil)
	require.NoError(t, err, "Verify before tampering")

	execSQL(t, schema, "UPDATE %s.oars_leaves SET data = $1 WHERE idx = 5", []byte("forged"))
	_, err = ledger.Verify(ctx, s, nil)
	var ve *ledger.VerifyError
	require.ErrorAs(t, err, &ve, "Verify after tampering with leaf 5 = %v", err)
	assert.Equal(t, int64(5), ve.Index, "VerifyError.Index")
	assert.ErrorIs(t, err, ledger.ErrTampered, "Verify after tampering")
	assert.ErrorContains(t, err, "leaf 5", "Verify after tampering")
}

func TestDuplicateReceipt(t *testing.T) {
	testURL(t)
	ctx := t.Context()
	first := receiptLeaf("rcpt-1", "act-1", 1, "allowed", 0)
	tests := []struct {
		name  string
		batch [][]byte
	}{
		{"receipt_id already stored", [][]byte{
			receiptLeaf("rcpt-2", "act-2", 1, "allowed", 0),
			receiptLeaf("rcpt-1", "act-3", 1, "allowed", 0),
		}},
		{"(action_id, seq) already stored", [][]byte{
			receiptLeaf("rcpt-2", "act-2", 1, "allowed", 0),
			receiptLeaf("rcpt-3", "act-1", 1, "denied", 0),
		}},
		{"receipt_id twice in the batch", [][]byte{
			receiptLeaf("rcpt-2", "act-2", 1, "allowed", 0),
			receiptLeaf("rcpt-2", "act-3", 1, "allowed", 0),
		}},
		{"(action_id, seq) twice in the batch", [][]byte{
			receiptLeaf("rcpt-2", "act-2", 1, "allowed", 0),
			receiptLeaf("rcpt-3", "act-2", 1, "allowed", 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := openStore(t, newSchema(t))
			l, err := ledger.New(ctx, s)
			require.NoError(t, err, "ledger.New")
			_, err = l.Append(ctx, first)
			require.NoError(t, err, "Append(first)")

			_, err = l.AppendBatch(ctx, tt.batch)
			assert.ErrorIs(t, err, ErrDuplicateReceipt, "AppendBatch(%s)", tt.name)
			assert.NotErrorIs(t, err, ledger.ErrConflict, "AppendBatch(%s)", tt.name)

			size, err := s.Size(ctx)
			require.NoError(t, err, "Size")
			assert.Equal(t, int64(1), size, "Size() after a refused batch")
			_, err = s.ReceiptByID(ctx, "rcpt-2")
			assert.ErrorIs(t, err, ledger.ErrNotFound, "ReceiptByID(rcpt-2) after a refused batch")
			_, err = s.ReadLeaves(ctx, 1, 1)
			assert.ErrorIs(t, err, ledger.ErrOutOfRange, "ReadLeaves(1, 1) after a refused batch")
			_, err = ledger.Verify(ctx, s, nil)
			assert.NoError(t, err, "Verify after a refused batch")

			// The log goes on.
			idx, err := l.Append(ctx, receiptLeaf("rcpt-9", "act-9", 1, "allowed", 0))
			require.NoError(t, err, "Append after a refused batch")
			assert.Equal(t, int64(1), idx, "Append after a refused batch: index")
		})
	}
}

func TestEmptyLeaves(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	appendLeaves(t, s, [][]byte{nil, {}, []byte("x")})
	got, err := s.ReadLeaves(ctx, 0, 3)
	require.NoError(t, err, "ReadLeaves(0, 3)")
	assert.Equal(t, [][]byte{{}, {}, []byte("x")}, got, "ReadLeaves(0, 3)")
	_, err = ledger.Verify(ctx, s, nil)
	assert.NoError(t, err, "Verify")
}

func TestNulInReceiptFields(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	leaf := []byte(`{"spec":"oars.receipt.v1","receipt_id":"r\u0000x","action_id":"a","seq":1,"status":"allowed","issued_at":"2026-05-01T09:00:00Z"}`)
	_, ok := ledger.ParseHeader(leaf)
	require.True(t, ok, "ParseHeader(receipt with NUL in receipt_id) ok")
	appendLeaves(t, s, [][]byte{leaf})
	got, err := s.ReadLeaves(ctx, 0, 1)
	require.NoError(t, err, "ReadLeaves")
	assert.Equal(t, leaf, got[0], "stored leaf")
	_, err = s.ReceiptByID(ctx, "r\x00x")
	assert.ErrorIs(t, err, ledger.ErrNotFound, "ReceiptByID(id with NUL)")
	recs, err := s.ActionReceipts(ctx, "a")
	require.NoError(t, err, "ActionReceipts")
	assert.Empty(t, recs, "ActionReceipts(a): a receipt with a NUL field is not indexed")
}

func TestClosed(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	appendLeaves(t, s, testLeaves(3))
	require.NoError(t, s.Close(), "Close")
	require.NoError(t, s.Close(), "second Close")

	h := tlog.RecordHash([]byte("x"))
	calls := []struct {
		name string
		call func() error
	}{
		{"Size", func() error { _, err := s.Size(ctx); return err }},
		{"Append", func() error { return s.Append(ctx, 3, [][]byte{[]byte("x")}, []tlog.Hash{h}) }},
		{"ReadLeaves", func() error { _, err := s.ReadLeaves(ctx, 0, 1); return err }},
		{"ReadHashes", func() error { _, err := s.ReadHashes(ctx, []int64{0}); return err }},
		{"ReceiptByID", func() error { _, err := s.ReceiptByID(ctx, "x"); return err }},
		{"ActionReceipts", func() error { _, err := s.ActionReceipts(ctx, "x"); return err }},
		{"ListReceipts", func() error { _, _, err := s.ListReceipts(ctx, ledger.Query{}); return err }},
		{"Watch", func() error { _, err := s.Watch(ctx); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			assert.ErrorIs(t, c.call(), ErrClosed, "%s after Close", c.name)
		})
	}
}

func TestAppendChecksHashes(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	leaves := [][]byte{[]byte("a"), []byte("b")}
	tests := []struct {
		name   string
		start  int64
		hashes []tlog.Hash
	}{
		{"too few hashes", 0, []tlog.Hash{{}}},
		{"too many hashes", 0, make([]tlog.Hash, 4)},
		{"negative start", -1, make([]tlog.Hash, 3)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Append(ctx, tt.start, leaves, tt.hashes)
			assert.ErrorContains(t, err, "postgres: append: ", "Append(%s)", tt.name)
			assert.NotErrorIs(t, err, ledger.ErrConflict, "Append(%s)", tt.name)
		})
	}
	size, err := s.Size(ctx)
	require.NoError(t, err, "Size")
	assert.Equal(t, int64(0), size, "Size() after refused appends")
}

func TestListReceiptsCursor(t *testing.T) {
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	var leaves [][]byte
	for i := range 7 {
		leaves = append(leaves, receiptLeaf(fmt.Sprintf("rcpt-%d", i), fmt.Sprintf("act-%d", i), 1, "allowed", 0))
		leaves = append(leaves, []byte("not a receipt"))
	}
	appendLeaves(t, s, leaves)

	var got []int64
	cursor := ""
	for page := 0; ; page++ {
		require.Less(t, page, 10, "ListReceipts pages")
		recs, next, err := s.ListReceipts(ctx, ledger.Query{Limit: 3, Cursor: cursor})
		require.NoError(t, err, "ListReceipts(page %d)", page)
		for _, r := range recs {
			got = append(got, r.Index)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	assert.Equal(t, []int64{0, 2, 4, 6, 8, 10, 12}, got, "indexes listed over all pages")

	for _, c := range []string{"i", "i-1", "i01", "x5", "5", "i99999999999999999999"} {
		_, _, err := s.ListReceipts(ctx, ledger.Query{Cursor: c})
		assert.ErrorContains(t, err, "malformed cursor", "ListReceipts(cursor %q)", c)
	}
}

func TestWatch(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	schema := newSchema(t)
	writer := openStore(t, schema)
	watcher := openStore(t, schema)
	other := openStore(t, newSchema(t)) // same channel, another schema

	ch, err := watcher.Watch(ctx)
	require.NoError(t, err, "Watch")
	recv := func(what string) (int64, bool) {
		t.Helper()
		select {
		case n, ok := <-ch:
			return n, ok
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
			return 0, false
		}
	}
	n, ok := recv("the initial size")
	require.True(t, ok, "Watch channel open")
	assert.Equal(t, int64(0), n, "first value from Watch")

	// Another schema's append (to size 3) must not be reported here.
	appendLeaves(t, other, testLeaves(3))
	appendLeaves(t, writer, testLeaves(1))
	n, ok = recv("size 1")
	require.True(t, ok, "Watch channel open")
	assert.Equal(t, int64(1), n, "value from Watch after one append in its schema")

	appendLeaves(t, writer, testLeaves(4))
	n, ok = recv("size 5")
	require.True(t, ok, "Watch channel open")
	assert.Equal(t, int64(5), n, "value from Watch after four more")

	t.Run("ends with ctx", func(t *testing.T) {
		wctx, wcancel := context.WithCancel(ctx)
		ch2, err := watcher.Watch(wctx)
		require.NoError(t, err, "Watch")
		first := <-ch2
		assert.Equal(t, int64(5), first, "first value of a second watch")
		wcancel()
		for {
			select {
			case _, ok := <-ch2:
				if !ok {
					return // closed, as it should be
				}
			case <-ctx.Done():
				t.Fatalf("Watch channel still open after its ctx ended: %v", ctx.Err())
			}
		}
	})

	t.Run("ends with Close", func(t *testing.T) {
		s := openStore(t, schema)
		ch3, err := s.Watch(ctx)
		require.NoError(t, err, "Watch")
		<-ch3
		require.NoError(t, s.Close(), "Close")
		_, ok := <-ch3
		assert.False(t, ok, "Watch channel open after Close")
	})
}

func TestCancelledAppendStoresNothing(t *testing.T) {
	s := openStore(t, newSchema(t))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	leaf := []byte("x")
	err := s.Append(ctx, 0, [][]byte{leaf}, []tlog.Hash{tlog.RecordHash(leaf)})
	assert.True(t, errors.Is(err, context.Canceled), "Append(cancelled) = %v, want context.Canceled", err)
	size, err := s.Size(t.Context())
	require.NoError(t, err, "Size")
	assert.Equal(t, int64(0), size, "Size() after a cancelled Append")
}
