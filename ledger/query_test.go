package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"
)

func TestParseHeader(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		leaf string
		want Header
		ok   bool
	}{
		{
			name: "receipt",
			leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":2,"status":"executed",` +
				`"tenant_id":"t1","agent_id":"g1","issued_at":"2026-03-01T12:00:00Z","principal":{"user_id":"u"},"signature":{"alg":"EdDSA","kid":"k","sig":"AA"}}`,
			want: Header{Spec: SpecReceipt, ReceiptID: "r1", ActionID: "a1", Seq: 2, Status: "executed", TenantID: "t1", AgentID: "g1", IssuedAt: at},
			ok:   true,
		},
		{
			name: "receipt with fractional seconds and offset",
			leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T13:00:00.25+01:00"}`,
			want: Header{Spec: SpecReceipt, ReceiptID: "r1", ActionID: "a1", Seq: 1, IssuedAt: at.Add(250 * time.Millisecond)},
			ok:   true,
		},
		{
			name: "event",
			leaf: `{"spec":"oars.event.v1","event_id":"e1","event":"policy.reloaded","tenant_id":"t1","issued_at":"2026-03-01T12:00:00Z"}`,
			want: Header{Spec: SpecEvent, EventID: "e1", TenantID: "t1", IssuedAt: at},
			ok:   true,
		},
		{
			name: "event with receipt fields",
			leaf: `{"spec":"oars.event.v1","event_id":"e1","receipt_id":"r1","action_id":"a1","seq":1,"status":"allowed","agent_id":"g","issued_at":"2026-03-01T12:00:00Z"}`,
			want: Header{Spec: SpecEvent, EventID: "e1", AgentID: "g", IssuedAt: at},
			ok:   true,
		},
		{name: "empty", leaf: ``},
		{name: "null", leaf: `null`},
		{name: "array", leaf: `[{"spec":"oars.receipt.v1"}]`},
		{name: "string", leaf: `"oars.receipt.v1"`},
		{name: "truncated", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1"`},
		{name: "not json", leaf: "not json \x00"},
		{name: "no spec", leaf: `{"receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "unknown spec", leaf: `{"spec":"oars.receipt.v2","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "spec in other case", leaf: `{"spec":"OARS.RECEIPT.V1","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt without receipt_id", leaf: `{"spec":"oars.receipt.v1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt without action_id", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt without seq", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt with seq 0", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":0,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt with negative seq", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":-1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt with fractional seq", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1.5,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt with string seq", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":"1","issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt with numeric id", leaf: `{"spec":"oars.receipt.v1","receipt_id":7,"action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "receipt without issued_at", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1}`},
		{name: "receipt with bad issued_at", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"yesterday"}`},
		{name: "receipt with issued_at without zone", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00"}`},
		{name: "receipt with numeric issued_at", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":1,"issued_at":1772366400}`},
		{name: "event without event_id", leaf: `{"spec":"oars.event.v1","event":"policy.reloaded","issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "event without issued_at", leaf: `{"spec":"oars.event.v1","event_id":"e1"}`},
		{name: "duplicate key", leaf: `{"spec":"oars.receipt.v1","receipt_id":"r1","receipt_id":"r2","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
		{name: "invalid UTF-8", leaf: "{\"spec\":\"oars.receipt.v1\",\"receipt_id\":\"r\xff\",\"action_id\":\"a1\",\"seq\":1,\"issued_at\":\"2026-03-01T12:00:00Z\"}"},
		{name: "field names in other case", leaf: `{"spec":"oars.receipt.v1","Receipt_ID":"r1","action_id":"a1","seq":1,"issued_at":"2026-03-01T12:00:00Z"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseHeader([]byte(tt.leaf))
			assert.Equal(t, tt.ok, ok, "ParseHeader(%s) ok", tt.leaf)
			assert.Equal(t, tt.want, got, "ParseHeader(%s)", tt.leaf)
			if ok {
				assert.Equal(t, time.UTC, got.IssuedAt.Location(), "ParseHeader(%s).IssuedAt location", tt.leaf)
			}
		})
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range []string{
		`{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":2,"status":"executed","tenant_id":"t1","agent_id":"g1","issued_at":"2026-03-01T12:00:00Z"}`,
		`{"spec":"oars.event.v1","event_id":"e1","issued_at":"2026-03-01T12:00:00.5+01:00"}`,
		`{"spec":"oars.receipt.v1","receipt_id":"r1","action_id":"a1","seq":0,"issued_at":"2026-03-01T12:00:00Z"}`,
		`{"spec":"oars.receipt.v1","receipt_id":"r1","receipt_id":"r1"}`,
		`[]`, ``, `null`, "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, leaf []byte) {
		h, ok := ParseHeader(leaf)
		if !ok {
			if h != (Header{}) {
				t.Fatalf("ParseHeader(%q) = %+v, false; want the zero Header with false", leaf, h)
			}
			return
		}
		if h.IssuedAt.Location() != time.UTC {
			t.Errorf("ParseHeader(%q).IssuedAt location = %v, want UTC", leaf, h.IssuedAt.Location())
		}
		switch h.Spec {
		case SpecReceipt:
			if h.ReceiptID == "" || h.ActionID == "" || h.Seq < 1 || h.EventID != "" {
				t.Errorf("ParseHeader(%q) = %+v, a receipt header without its ids", leaf, h)
			}
		case SpecEvent:
			if h.EventID == "" || h.ReceiptID != "" || h.ActionID != "" || h.Seq != 0 || h.Status != "" {
				t.Errorf("ParseHeader(%q) = %+v, an event header with receipt fields", leaf, h)
			}
		default:
			t.Errorf("ParseHeader(%q) = spec %q, true; want a known spec", leaf, h.Spec)
		}
		if again, ok2 := ParseHeader(leaf); !ok2 || again != h {
			t.Errorf("ParseHeader(%q) is not deterministic: %+v then %+v", leaf, h, again)
		}
	})
}

// queryLeaf returns a receipt leaf for the querier tests.
func queryLeaf(id, action string, seq int64, tenant, status string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"spec":"oars.receipt.v1","receipt_id":%q,"action_id":%q,"seq":%d,"tenant_id":%q,"agent_id":"g","status":%q,"issued_at":%q}`,
		id, action, seq, tenant, status, at.Format(time.RFC3339))
}

// onlyStore hides every method but the Store ones.
type onlyStore struct{ Store }

// countingStore counts ReadLeaves calls and can fail them.
type countingStore struct {
	Store
	reads atomic.Int64
	fail  error
}

func (c *countingStore) ReadLeaves(ctx context.Context, start int64, n int) ([][]byte, error) {
	c.reads.Add(1)
	if c.fail != nil {
		return nil, c.fail
	}
	return c.Store.ReadLeaves(ctx, start, n)
}

func TestNewQuerierUsesStoreIndex(t *testing.T) {
	m := NewMemStore()
	q := NewQuerier(m)
	assert.Same(t, m, q, "NewQuerier(MemStore) should return the MemStore itself")
	_, isMem := NewQuerier(onlyStore{m}).(*MemStore)
	assert.False(t, isMem, "NewQuerier(store without Querier) returned a MemStore")
}

// TestScanMatchesMemStore runs the same queries on MemStore's index and on
// the scanning querier over a log larger than one scan chunk.
func TestScanMatchesMemStore(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	l := newTestLedger(t, m)
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	tenants := []string{"t1", "t2", "t3"}
	statuses := []string{"allowed", "executing", "executed", "denied"}
	var leaves [][]byte
	for i := range 2*scanChunk + 300 {
		switch {
		case i%17 == 5:
			leaves = append(leaves, leafAt(i)) // not a receipt
		case i%101 == 7:
			// A receipt of an action of its own.
			leaves = append(leaves, queryLeaf(fmt.Sprintf("r%d", i), "dup", int64(i/101+1), "t1", "allowed", base))
		default:
			seq := int64(i%3 + 1)
			leaves = append(leaves, queryLeaf(fmt.Sprintf("r%d", i), fmt.Sprintf("a%d", i/3), seq,
				tenants[i%len(tenants)], statuses[i%len(statuses)], base.Add(time.Duration(i)*time.Minute)))
		}
	}
	_, err := l.AppendBatch(ctx, leaves)
	require.NoError(t, err)
	scan := NewQuerier(onlyStore{m})

	for _, id := range []string{"r0", "r1", "r1023", "r1024", "r2347", "r6", "r-none", "", "r100"} {
		want, wantErr := m.ReceiptByID(ctx, id)
		got, err := scan.ReceiptByID(ctx, id)
		assert.Equal(t, errors.Is(wantErr, ErrNotFound), errors.Is(err, ErrNotFound), "scan ReceiptByID(%q) error = %v, MemStore's = %v", id, err, wantErr)
		assert.Equal(t, want, got, "scan ReceiptByID(%q)", id)
	}
	for _, id := range []string{"a0", "a341", "a342", "a700", "dup", "none"} {
		want, err := m.ActionReceipts(ctx, id)
		require.NoError(t, err)
		got, err := scan.ActionReceipts(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, want, got, "scan ActionReceipts(%q)", id)
	}
	queries := []Query{
		{},
		{TenantID: "t2", Limit: 7},
		{Status: "executed", Limit: 1000},
		{TenantID: "t1", Status: "denied", Since: base.Add(500 * time.Minute), Until: base.Add(1500 * time.Minute)},
		{ActionID: "a400"},
		{Limit: 1},
		{TenantID: "nobody"},
	}
	for _, q := range queries {
		for page := 0; ; page++ {
			want, wantNext, err := m.ListReceipts(ctx, q)
			require.NoError(t, err)
			got, next, err := scan.ListReceipts(ctx, q)
			require.NoError(t, err)
			require.Equal(t, want, got, "scan ListReceipts(%+v) page %d", q, page)
			require.Equal(t, wantNext, next, "scan ListReceipts(%+v) page %d cursor", q, page)
			if next == "" || page > 3 {
				break
			}
			q.Cursor = next
		}
	}
}

// plainStore is a Store without an index: it stores whatever it is given,
// duplicate receipts included.
type plainStore struct {
	leaves [][]byte
	hashes []tlog.Hash
}

func (p *plainStore) Size(context.Context) (int64, error) { return int64(len(p.leaves)), nil }

func (p *plainStore) Append(_ context.Context, start int64, leaves [][]byte, hashes []tlog.Hash) error {
	if start != int64(len(p.leaves)) {
		return ErrConflict
	}
	p.leaves = append(p.leaves, leaves...)
	p.hashes = append(p.hashes, hashes...)
	return nil
}

func (p *plainStore) ReadLeaves(_ context.Context, start int64, n int) ([][]byte, error) {
	if start < 0 || n < 0 || start+int64(n) > int64(len(p.leaves)) {
		return nil, ErrOutOfRange
	}
	return p.leaves[start : start+int64(n)], nil
}

func (p *plainStore) ReadHashes(_ context.Context, indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(p.hashes)) {
			return nil, ErrOutOfRange
		}
		out[i] = p.hashes[x]
	}
	return out, nil
}

// TestScanIgnoresDuplicates checks that the scanning querier, over a store
// that stores duplicate receipts, indexes the first receipt of each
// receipt_id and (action_id, seq) only.
func TestScanIgnoresDuplicates(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ps := &plainStore{}
	l := newTestLedger(t, ps)
	leaves := [][]byte{
		queryLeaf("r1", "a1", 1, "t1", "pending_approval", at),
		queryLeaf("r1", "a2", 1, "t1", "allowed", at),   // receipt_id taken
		queryLeaf("r2", "a1", 1, "t1", "allowed", at),   // (a1, 1) taken
		queryLeaf("r3", "a1", 2, "t1", "approved", at),  // indexed
		queryLeaf("r4", "a1", 2, "t1", "executing", at), // (a1, 2) taken
	}
	_, err := l.AppendBatch(ctx, leaves)
	require.NoError(t, err)
	q := NewQuerier(ps)

	rec, err := q.ReceiptByID(ctx, "r1")
	require.NoError(t, err)
	assert.Equal(t, int64(0), rec.Index, "ReceiptByID(r1).Index")
	for _, id := range []string{"r2", "r4"} {
		_, err := q.ReceiptByID(ctx, id)
		assert.ErrorIs(t, err, ErrNotFound, "ReceiptByID(%s) of a duplicate", id)
	}
	recs, err := q.ActionReceipts(ctx, "a1")
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 3}, recordIndexes(recs), "ActionReceipts(a1)")
	recs, err = q.ActionReceipts(ctx, "a2")
	require.NoError(t, err)
	assert.Empty(t, recs, "ActionReceipts(a2): only a duplicate has it")
	recs, _, err = q.ListReceipts(ctx, Query{})
	require.NoError(t, err)
	assert.Equal(t, []int64{0, 3}, recordIndexes(recs), "ListReceipts({})")
}

func recordIndexes(recs []Record) []int64 {
	out := make([]int64, len(recs))
	for i, r := range recs {
		out[i] = r.Index
	}
	return out
}

// TestMemStoreRefusesDuplicates checks that MemStore refuses a batch with
// a duplicate receipt whole.
func TestMemStoreRefusesDuplicates(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	m := NewMemStore()
	l := newTestLedger(t, m)
	_, err := l.Append(ctx, queryLeaf("r1", "a1", 1, "t1", "pending_approval", at))
	require.NoError(t, err)
	tests := []struct {
		name  string
		batch [][]byte
	}{
		{"receipt_id stored", [][]byte{queryLeaf("r1", "a2", 1, "t1", "allowed", at)}},
		{"action seq stored", [][]byte{queryLeaf("r2", "a1", 1, "t1", "allowed", at)}},
		{"receipt_id in batch", [][]byte{queryLeaf("r3", "a3", 1, "t1", "allowed", at), queryLeaf("r3", "a4", 1, "t1", "allowed", at)}},
		{"action seq in batch", [][]byte{leafAt(9), queryLeaf("r5", "a5", 1, "t1", "allowed", at), queryLeaf("r6", "a5", 1, "t1", "denied", at)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.AppendBatch(ctx, tt.batch)
			require.ErrorIs(t, err, ErrDuplicate, "AppendBatch(%s)", tt.name)
			assert.NotErrorIs(t, err, ErrConflict)
			size, err := m.Size(ctx)
			require.NoError(t, err)
			assert.Equal(t, int64(1), size, "Size() after a refused batch")
		})
	}
	// Receipts of other actions, and the next seq, are fine.
	_, err = l.AppendBatch(ctx, [][]byte{queryLeaf("r7", "a1", 2, "t1", "approved", at), queryLeaf("r8", "a7", 1, "t1", "allowed", at)})
	require.NoError(t, err)
}

func TestScanQuerierErrors(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	at := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	l := newTestLedger(t, m)
	for i := range 3 {
		_, err := l.Append(ctx, queryLeaf(fmt.Sprintf("r%d", i), "a", int64(i+1), "t", "allowed", at))
		require.NoError(t, err)
	}

	t.Run("nil store", func(t *testing.T) {
		q := NewQuerier(nil)
		_, err := q.ReceiptByID(ctx, "r0")
		assert.Error(t, err, "ReceiptByID on nil store")
		_, err = q.ActionReceipts(ctx, "a")
		assert.Error(t, err, "ActionReceipts on nil store")
		_, _, err = q.ListReceipts(ctx, Query{})
		assert.Error(t, err, "ListReceipts on nil store")
	})

	t.Run("read error", func(t *testing.T) {
		boom := errors.New("disk on fire")
		q := NewQuerier(&countingStore{Store: m, fail: boom})
		_, err := q.ReceiptByID(ctx, "r0")
		assert.ErrorIs(t, err, boom, "ReceiptByID with failing reads")
		assert.NotErrorIs(t, err, ErrNotFound, "ReceiptByID with failing reads")
		_, err = q.ActionReceipts(ctx, "a")
		assert.ErrorIs(t, err, boom, "ActionReceipts with failing reads")
		_, _, err = q.ListReceipts(ctx, Query{})
		assert.ErrorIs(t, err, boom, "ListReceipts with failing reads")
	})

	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		q := NewQuerier(onlyStore{m})
		_, err := q.ReceiptByID(cctx, "r0")
		assert.ErrorIs(t, err, context.Canceled, "ReceiptByID")
		_, _, err = q.ListReceipts(cctx, Query{})
		assert.ErrorIs(t, err, context.Canceled, "ListReceipts")
	})

	for _, c := range []string{"-1", "+1", "01", "1.0", "x", " 1", "99999999999999999999"} {
		t.Run("cursor "+c, func(t *testing.T) {
			for name, q := range map[string]Querier{"scan": NewQuerier(onlyStore{m}), "memstore": m} {
				_, _, err := q.ListReceipts(ctx, Query{Cursor: c})
				assert.Error(t, err, "%s ListReceipts(cursor %q)", name, c)
			}
		})
	}

	t.Run("stops early", func(t *testing.T) {
		big := NewMemStore()
		bl := newTestLedger(t, big)
		leaves := make([][]byte, 3*scanChunk)
		for i := range leaves {
			leaves[i] = queryLeaf(fmt.Sprintf("r%d", i), fmt.Sprintf("a%d", i), 1, "t", "allowed", at)
		}
		_, err := bl.AppendBatch(ctx, leaves)
		require.NoError(t, err)
		cs := &countingStore{Store: big}
		q := NewQuerier(cs)
		rec, err := q.ReceiptByID(ctx, "r10")
		require.NoError(t, err)
		assert.Equal(t, int64(10), rec.Index, "ReceiptByID(r10).Index")
		assert.Equal(t, int64(1), cs.reads.Load(), "ReadLeaves calls for a receipt in the first chunk")
		recs, next, err := q.ListReceipts(ctx, Query{Limit: 5})
		require.NoError(t, err)
		assert.Len(t, recs, 5, "ListReceipts(limit 5)")
		assert.Equal(t, "4", next, "ListReceipts(limit 5) cursor")
		assert.Equal(t, int64(2), cs.reads.Load(), "ReadLeaves calls after a first page")
	})
}

func TestMemStoreQueryResultsAreCopies(t *testing.T) {
	ctx := context.Background()
	m := NewMemStore()
	leaf := queryLeaf("r1", "a1", 1, "t", "allowed", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	hs, err := tlog.StoredHashes(0, leaf, tlog.HashReaderFunc(func([]int64) ([]tlog.Hash, error) { return nil, nil }))
	require.NoError(t, err)
	require.NoError(t, m.Append(ctx, 0, [][]byte{leaf}, hs))

	rec, err := m.ReceiptByID(ctx, "r1")
	require.NoError(t, err)
	copy(rec.Leaf, strings.Repeat("X", len(rec.Leaf)))
	recs, err := m.ActionReceipts(ctx, "a1")
	require.NoError(t, err)
	require.Len(t, recs, 1)
	assert.Equal(t, leaf, recs[0].Leaf, "ActionReceipts after the caller modified a ReceiptByID result")
	stored, err := m.ReadLeaves(ctx, 0, 1)
	require.NoError(t, err)
	assert.Equal(t, leaf, stored[0], "stored leaf after the caller modified a ReceiptByID result")
}
