package ledgertest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/oarsdev/oars/ledger"
)

// queryCases run when the store implements ledger.Querier.
var queryCases = []struct {
	name string
	run  func(t *testing.T, h Harness)
}{
	{"ReceiptByID", testReceiptByID},
	{"ActionReceipts", testActionReceipts},
	{"ListFilters", testListFilters},
	{"ListPages", testListPages},
	{"ListPageSize", testListPageSize},
	{"ListCursorAcrossAppends", testListCursorAcrossAppends},
	{"MalformedCursor", testMalformedCursor},
	{"Duplicates", testDuplicates},
	{"Cancelled", testQueryCancelled},
}

func runQueryCases(t *testing.T, h Harness) {
	probe := h.New(t)
	if _, ok := probe.(ledger.Querier); !ok {
		t.Skip("store does not implement ledger.Querier: skipping query checks")
	}
	for _, c := range queryCases {
		t.Run(c.name, func(t *testing.T) { c.run(t, h) })
	}
}

// newQuerier returns a fresh store from h and it as a Querier.
func newQuerier(t *testing.T, h Harness) (ledger.Store, ledger.Querier) {
	t.Helper()
	s := h.New(t)
	q, ok := s.(ledger.Querier)
	if !ok {
		t.Fatalf("store %T from Harness.New does not implement ledger.Querier, but an earlier one did", s)
	}
	return s, q
}

// receiptFields are the indexed fields of a fixture receipt.
type receiptFields struct {
	receiptID, actionID, status, tenantID, agentID string
	seq                                            int64
	issuedAt                                       time.Time
}

// fixtureEntry is one leaf of a fixture. rec is set for the leaves a store
// must index as receipts.
type fixtureEntry struct {
	leaf  []byte
	rec   *receiptFields
	index int64
}

// fixture is a realistic mix of receipts and other leaves.
type fixture struct {
	base    time.Time
	entries []*fixtureEntry
	// notFound are receipt ids that no indexed receipt has.
	notFound []string
	// noReceipts are action ids that no indexed receipt has.
	noReceipts []string
}

// JSON shapes of the fixture leaves: the members of receipt and event v1.
type (
	receiptJSON struct {
		ActionID          string        `json:"action_id"`
		AgentID           string        `json:"agent_id"`
		InputDigest       string        `json:"input_digest"`
		IssuedAt          string        `json:"issued_at"`
		Mode              string        `json:"mode"`
		OutputDigest      string        `json:"output_digest,omitempty"`
		Policy            policyJSON    `json:"policy"`
		PrevReceiptDigest string        `json:"prev_receipt_digest,omitempty"`
		Principal         principalJSON `json:"principal"`
		Reasons           []string      `json:"reasons,omitempty"`
		ReceiptID         string        `json:"receipt_id,omitempty"`
		Resource          resourceJSON  `json:"resource"`
		Seq               int64         `json:"seq"`
		Signature         signatureJSON `json:"signature"`
		Spec              string        `json:"spec"`
		Status            string        `json:"status"`
		TenantID          string        `json:"tenant_id"`
	}
	policyJSON struct {
		Digest       string   `json:"digest"`
		ID           string   `json:"id"`
		MatchedRules []string `json:"matched_rules,omitempty"`
		Version      string   `json:"version"`
	}
	principalJSON struct {
		UserID string `json:"user_id"`
	}
	resourceJSON struct {
		Operation string `json:"operation"`
		Target    string `json:"target,omitempty"`
		ToolID    string `json:"tool_id"`
	}
	signatureJSON struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Sig string `json:"sig"`
	}
	eventJSON struct {
		Actor     string            `json:"actor"`
		Details   map[string]string `json:"details"`
		Event     string            `json:"event"`
		EventID   string            `json:"event_id"`
		IssuedAt  string            `json:"issued_at"`
		Signature signatureJSON     `json:"signature"`
		Spec      string            `json:"spec"`
		TenantID  string            `json:"tenant_id,omitempty"`
	}
)

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// fakeSignature has the shape of an Ed25519 signature; the suite never
// verifies it (stores index without verifying).
func fakeSignature(b []byte) signatureJSON {
	sum := sha512.Sum512(b)
	return signatureJSON{Alg: "EdDSA", Kid: "ledgertest-key-1", Sig: base64.RawURLEncoding.EncodeToString(sum[:])}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Unreachable: the fixture types always marshal.
		return []byte(fmt.Sprintf("ledgertest: marshal: %v", err))
	}
	return b
}

// receiptLeaf returns the leaf bytes of a receipt with fields f, issued_at
// formatted as issuedAt (f.issuedAt must be its parsed value).
func receiptLeaf(f receiptFields, issuedAt, prev string) []byte {
	r := receiptJSON{
		ActionID:          f.actionID,
		AgentID:           f.agentID,
		InputDigest:       digest([]byte("input of " + f.actionID)),
		IssuedAt:          issuedAt,
		Mode:              "enforce",
		Policy:            policyJSON{Digest: digest([]byte("policy")), ID: "payments", MatchedRules: []string{"small-refunds"}, Version: "3"},
		PrevReceiptDigest: prev,
		Principal:         principalJSON{UserID: "user-" + f.agentID},
		ReceiptID:         f.receiptID,
		Resource:          resourceJSON{Operation: "refund", Target: "order/" + f.actionID, ToolID: "stripe"},
		Seq:               f.seq,
		Spec:              ledger.SpecReceipt,
		Status:            f.status,
		TenantID:          f.tenantID,
	}
	if f.status == "executed" {
		r.OutputDigest = digest([]byte("output of " + f.actionID))
	}
	if f.status == "denied" {
		r.Reasons = []string{"amount over limit"}
	}
	r.Signature = fakeSignature(mustJSON(r))
	return mustJSON(r)
}

func eventLeaf(id, event, tenant, issuedAt string) []byte {
	e := eventJSON{
		Actor: "admin@example.com", Details: map[string]string{"policy_digest": digest([]byte(id))},
		Event: event, EventID: id, IssuedAt: issuedAt, Spec: ledger.SpecEvent, TenantID: tenant,
	}
	e.Signature = fakeSignature(mustJSON(e))
	return mustJSON(e)
}

// newFixture returns the query fixture of generation gen; fixtures of
// different generations share no ids, so they can be appended to one store.
func newFixture(gen int) *fixture {
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).Add(time.Duration(gen) * 24 * time.Hour)
	fx := &fixture{base: base}
	id := func(kind string, n int) string { return fmt.Sprintf("%s%d-%02d", kind, gen, n) }

	type action struct {
		tenant, agent string
		statuses      []string
	}
	actions := []action{
		{"tenant-a", "agent-1", []string{"allowed", "executing", "executed"}},
		{"tenant-a", "agent-2", []string{"denied"}},
		{"tenant-b", "agent-1", []string{"pending_approval", "approved", "executing"}},
		{"tenant-b", "agent-3", []string{"allowed", "executing", "failed"}},
		{"tenant-a", "agent-3", []string{"pending_approval", "rejected"}},
		{"tenant-b", "agent-2", []string{"allowed", "executing", "executed"}},
		{"tenant-a", "agent-1", []string{"allowed", "executing", "executed"}},
		{"tenant-b", "agent-1", []string{"denied"}},
	}
	// The order receipts are logged in: round by round, each action's next
	// transition; action 4 has its seq 3 logged before its seq 2, so seq
	// order and index order differ.
	type step struct{ action, seq int }
	var steps []step
	for round := range 3 {
		for a, act := range actions {
			if round < len(act.statuses) {
				steps = append(steps, step{a, round + 1})
			}
		}
	}
	i2 := slices.Index(steps, step{3, 2})
	i3 := slices.Index(steps, step{3, 3})
	steps[i2], steps[i3] = steps[i3], steps[i2]

	zone := time.FixedZone("UTC+1", 3600)
	others := [][]byte{
		eventLeaf(id("evt", 1), "policy.reloaded", "tenant-a", base.Format(time.RFC3339)),
		[]byte("not json \x00\xff at all"),
		// Receipt-like leaves that ParseHeader rejects: indexing them is a bug.
		mustJSON(map[string]any{"spec": "oars.receipt.v2", "receipt_id": id("rv2-", 1), "action_id": id("actv2-", 1),
			"seq": 1, "status": "allowed", "tenant_id": "tenant-a", "agent_id": "agent-1", "issued_at": base.Format(time.RFC3339)}),
		mustJSON(map[string]any{"spec": ledger.SpecReceipt, "receipt_id": id("rnoaction-", 1),
			"seq": 1, "status": "allowed", "tenant_id": "tenant-a", "agent_id": "agent-1", "issued_at": base.Format(time.RFC3339)}),
		eventLeaf(id("evt", 2), "signing_key.rotated", "", base.Add(3*time.Minute).Format(time.RFC3339)),
		mustJSON(map[string]any{"spec": ledger.SpecReceipt, "receipt_id": id("rseq0-", 1), "action_id": id("actseq0-", 1),
			"seq": 0, "status": "allowed", "tenant_id": "tenant-b", "agent_id": "agent-2", "issued_at": base.Format(time.RFC3339)}),
		mustJSON(map[string]any{"spec": ledger.SpecReceipt, "receipt_id": id("rbadtime-", 1), "action_id": id("actbadtime-", 1),
			"seq": 1, "status": "allowed", "tenant_id": "tenant-b", "agent_id": "agent-2", "issued_at": "yesterday"}),
		mustJSON(map[string]any{"spec": ledger.SpecReceipt, "receipt_id": id("rnotime-", 1), "action_id": id("actnotime-", 1),
			"seq": 1, "status": "allowed", "tenant_id": "tenant-b", "agent_id": "agent-2"}),
		{},
	}
	fx.notFound = []string{id("rv2-", 1), id("rnoaction-", 1), id("rseq0-", 1), id("rbadtime-", 1), id("rnotime-", 1),
		id("evt", 1), id("evt", 2), "", "no-such-receipt", id("r", 0), fmt.Sprintf("r%d-1", gen), strings.ToUpper(id("r", 1)), "r' OR '1'='1"}
	fx.noReceipts = []string{id("actv2-", 1), id("actseq0-", 1), id("actbadtime-", 1), id("actnotime-", 1),
		"", "no-such-action", id("act", 0), strings.ToUpper(id("act", 1)), "a' OR '1'='1"}

	prev := make(map[int][]byte)
	for n, st := range steps {
		act := actions[st.action]
		at := base.Add(time.Duration(n+1) * time.Minute)
		issued := at.Format(time.RFC3339)
		switch n {
		case 5: // fractional seconds
			at = at.Add(500 * time.Millisecond)
			issued = at.Format(time.RFC3339Nano)
		case 7: // a zone offset instead of Z
			issued = at.In(zone).Format(time.RFC3339)
		case 9: // issued before receipts logged earlier
			at = base.Add(2*time.Minute + 30*time.Second)
			issued = at.Format(time.RFC3339)
		}
		f := receiptFields{
			receiptID: id("r", n+1), actionID: id("act", st.action+1), status: act.statuses[st.seq-1],
			tenantID: act.tenant, agentID: act.agent, seq: int64(st.seq), issuedAt: at,
		}
		var prevDigest string
		if p, ok := prev[st.action]; ok && st.seq > 1 {
			prevDigest = digest(p)
		}
		leaf := receiptLeaf(f, issued, prevDigest)
		prev[st.action] = leaf
		fx.entries = append(fx.entries, &fixtureEntry{leaf: leaf, rec: &f})
		if n%3 == 2 && len(others) > 0 {
			fx.entries = append(fx.entries, &fixtureEntry{leaf: others[0]})
			others = others[1:]
		}
	}
	for _, o := range others {
		fx.entries = append(fx.entries, &fixtureEntry{leaf: o})
	}
	return fx
}

func (fx *fixture) leaves() [][]byte {
	out := make([][]byte, len(fx.entries))
	for i, e := range fx.entries {
		out[i] = e.leaf
	}
	return out
}

// setIndexes records that the fixture was appended starting at index start.
func (fx *fixture) setIndexes(start int64) {
	for i, e := range fx.entries {
		e.index = start + int64(i)
	}
}

// appendTo appends the fixture to s in batches of varying sizes, so that
// indexing is exercised across batch boundaries.
func (fx *fixture) appendTo(t *testing.T, ctx context.Context, s ledger.Store, m *model) {
	t.Helper()
	fx.setIndexes(m.size())
	leaves := fx.leaves()
	sizes := []int{1, 4, 7, 2, 13}
	for i := 0; len(leaves) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(leaves))
		appendModel(t, ctx, s, m, leaves[:n])
		leaves = leaves[n:]
	}
}

func (fx *fixture) receipts() []*fixtureEntry {
	var out []*fixtureEntry
	for _, e := range fx.entries {
		if e.rec != nil {
			out = append(out, e)
		}
	}
	return out
}

// actionIDs returns the ids of the fixture's actions.
func (fx *fixture) actionIDs() []string {
	var ids []string
	for _, e := range fx.receipts() {
		if !slices.Contains(ids, e.rec.actionID) {
			ids = append(ids, e.rec.actionID)
		}
	}
	return ids
}

func record(e *fixtureEntry) ledger.Record { return ledger.Record{Index: e.index, Leaf: e.leaf} }

// matches reports whether r matches the filters of q.
func matches(r *receiptFields, q ledger.Query) bool {
	return (q.TenantID == "" || r.tenantID == q.TenantID) &&
		(q.AgentID == "" || r.agentID == q.AgentID) &&
		(q.ActionID == "" || r.actionID == q.ActionID) &&
		(q.Status == "" || r.status == q.Status) &&
		(q.Since.IsZero() || !r.issuedAt.Before(q.Since)) &&
		(q.Until.IsZero() || r.issuedAt.Before(q.Until))
}

// want returns the records ListReceipts must return for q (ignoring
// paging), from the given fixtures.
func want(q ledger.Query, fxs ...*fixture) []ledger.Record {
	var out []ledger.Record
	for _, fx := range fxs {
		for _, e := range fx.receipts() {
			if matches(e.rec, q) {
				out = append(out, record(e))
			}
		}
	}
	slices.SortFunc(out, func(a, b ledger.Record) int { return cmp.Compare(a.Index, b.Index) })
	return out
}

// describe formats the filters of q for failure messages.
func describe(q ledger.Query) string {
	var parts []string
	add := func(k, v string) {
		if v != "" {
			parts = append(parts, k+"="+v)
		}
	}
	add("tenant", q.TenantID)
	add("agent", q.AgentID)
	add("action", q.ActionID)
	add("status", q.Status)
	if !q.Since.IsZero() {
		add("since", q.Since.Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		add("until", q.Until.Format(time.RFC3339Nano))
	}
	if q.Limit != 0 {
		add("limit", fmt.Sprint(q.Limit))
	}
	if q.Cursor != "" {
		add("cursor", fmt.Sprintf("%q", q.Cursor))
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// checkRecords reports every difference between got and want.
func checkRecords(t *testing.T, call string, got, want []ledger.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s returned %d records %v, want %d %v", call, len(got), indexes(got), len(want), indexes(want))
		return
	}
	for i := range got {
		if got[i].Index != want[i].Index || !bytes.Equal(got[i].Leaf, want[i].Leaf) {
			t.Errorf("%s[%d] = index %d leaf %s, want index %d leaf %s", call, i, got[i].Index, short(got[i].Leaf), want[i].Index, short(want[i].Leaf))
		}
	}
}

func indexes(rs []ledger.Record) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.Index
	}
	return out
}

// newFixtureStore returns a fresh Querier store holding fixture gen 0.
func newFixtureStore(t *testing.T, h Harness) (ledger.Store, ledger.Querier, *fixture, *model) {
	t.Helper()
	s, q := newQuerier(t, h)
	m := newModel(t)
	fx := newFixture(0)
	fx.appendTo(t, t.Context(), s, m)
	return s, q, fx, m
}

func checkReceiptByID(t *testing.T, ctx context.Context, q ledger.Querier, fx *fixture) {
	t.Helper()
	for _, e := range fx.receipts() {
		got, err := q.ReceiptByID(ctx, e.rec.receiptID)
		if err != nil {
			t.Errorf("ReceiptByID(%q) = %v, want index %d", e.rec.receiptID, err, e.index)
			continue
		}
		checkRecords(t, fmt.Sprintf("ReceiptByID(%q)", e.rec.receiptID), []ledger.Record{got}, []ledger.Record{record(e)})
	}
	for _, id := range fx.notFound {
		if got, err := q.ReceiptByID(ctx, id); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("ReceiptByID(%q) = index %d, %v, want an error wrapping ErrNotFound", id, got.Index, err)
		}
	}
}

func checkActionReceipts(t *testing.T, ctx context.Context, q ledger.Querier, fx *fixture) {
	t.Helper()
	for _, id := range fx.actionIDs() {
		var wantRecs []*fixtureEntry
		for _, e := range fx.receipts() {
			if e.rec.actionID == id {
				wantRecs = append(wantRecs, e)
			}
		}
		slices.SortFunc(wantRecs, func(a, b *fixtureEntry) int { return cmp.Compare(a.rec.seq, b.rec.seq) })
		var recs []ledger.Record
		for _, e := range wantRecs {
			recs = append(recs, record(e))
		}
		got, err := q.ActionReceipts(ctx, id)
		if err != nil {
			t.Errorf("ActionReceipts(%q) = %v, want %d records", id, err, len(recs))
			continue
		}
		checkRecords(t, fmt.Sprintf("ActionReceipts(%q)", id), got, recs)
	}
	for _, id := range fx.noReceipts {
		got, err := q.ActionReceipts(ctx, id)
		if err != nil || len(got) != 0 {
			t.Errorf("ActionReceipts(%q) = %v, %v, want no records and nil", id, indexes(got), err)
		}
	}
}

func testReceiptByID(t *testing.T, h Harness) {
	ctx := t.Context()
	_, q, fx, _ := newFixtureStore(t, h)
	checkReceiptByID(t, ctx, q, fx)

	// The caller owns the returned leaf.
	first := fx.receipts()[0]
	got, err := q.ReceiptByID(ctx, first.rec.receiptID)
	if err != nil {
		t.Fatalf("ReceiptByID(%q) = %v, want nil error", first.rec.receiptID, err)
	}
	for i := range got.Leaf {
		got.Leaf[i] = 'X'
	}
	again, err := q.ReceiptByID(ctx, first.rec.receiptID)
	if err != nil || !bytes.Equal(again.Leaf, first.leaf) {
		t.Errorf("ReceiptByID(%q) after the caller modified an earlier result = %s, %v, want the stored leaf", first.rec.receiptID, short(again.Leaf), err)
	}
}

func testActionReceipts(t *testing.T, h Harness) {
	_, q, fx, _ := newFixtureStore(t, h)
	checkActionReceipts(t, t.Context(), q, fx)
}

// filterQueries returns the filter combinations the List cases run.
func filterQueries(fx *fixture) []struct {
	name string
	q    ledger.Query
} {
	at := func(d time.Duration) time.Time { return fx.base.Add(d) }
	fraction := fx.receipts()[5].rec.issuedAt
	zone := time.FixedZone("UTC-5", -5*3600)
	return []struct {
		name string
		q    ledger.Query
	}{
		{"all", ledger.Query{}},
		{"tenant", ledger.Query{TenantID: "tenant-b"}},
		{"agent", ledger.Query{AgentID: "agent-1"}},
		{"action", ledger.Query{ActionID: fx.receipts()[3].rec.actionID}},
		{"status", ledger.Query{Status: "executed"}},
		{"tenant and status", ledger.Query{TenantID: "tenant-a", Status: "allowed"}},
		{"tenant and agent", ledger.Query{TenantID: "tenant-b", AgentID: "agent-1"}},
		{"all filters", ledger.Query{TenantID: "tenant-a", AgentID: "agent-1", ActionID: fx.receipts()[0].rec.actionID, Status: "executing"}},
		{"since", ledger.Query{Since: at(10 * time.Minute)}},
		{"until", ledger.Query{Until: at(10 * time.Minute)}},
		{"since and until", ledger.Query{Since: at(5 * time.Minute), Until: at(12 * time.Minute)}},
		{"range in another zone", ledger.Query{Since: at(5 * time.Minute).In(zone), Until: at(12 * time.Minute).In(zone)}},
		{"since a fractional time", ledger.Query{Since: fraction}},
		{"until a fractional time", ledger.Query{Until: fraction}},
		{"tenant in range", ledger.Query{TenantID: "tenant-b", Since: at(3 * time.Minute), Until: at(15 * time.Minute)}},
		{"empty range", ledger.Query{Since: at(7 * time.Minute), Until: at(7 * time.Minute)}},
		{"unknown tenant", ledger.Query{TenantID: "tenant-z"}},
		{"unknown status", ledger.Query{Status: "vote"}},
		{"injection", ledger.Query{TenantID: "x' OR '1'='1"}},
	}
}

func testListFilters(t *testing.T, h Harness) {
	ctx := t.Context()
	_, q, fx, _ := newFixtureStore(t, h)
	for _, tt := range filterQueries(fx) {
		t.Run(tt.name, func(t *testing.T) {
			query := tt.q
			query.Limit = ledger.MaxPageSize
			got, cursor, err := q.ListReceipts(ctx, query)
			if err != nil {
				t.Fatalf("ListReceipts(%s) = %v, want nil error", describe(query), err)
			}
			checkRecords(t, fmt.Sprintf("ListReceipts(%s)", describe(query)), got, want(tt.q, fx))
			if cursor != "" {
				t.Errorf("ListReceipts(%s) cursor = %q, want \"\" (all results fit one page)", describe(query), cursor)
			}
		})
	}
}

// listAll pages through q with the given limit and returns everything, or
// fails the test. It checks page sizes, that a cursor is returned exactly
// when a non-empty page follows, and that it terminates.
func listAll(t *testing.T, ctx context.Context, qr ledger.Querier, q ledger.Query, limit, wantLen int) []ledger.Record {
	t.Helper()
	q.Limit = limit
	var all []ledger.Record
	maxPages := wantLen/max(limit, 1) + 2
	for page := 0; ; page++ {
		if page > maxPages {
			t.Fatalf("ListReceipts(%s) still returns cursors after %d pages, want at most %d pages", describe(q), page, maxPages)
		}
		got, next, err := qr.ListReceipts(ctx, q)
		if err != nil {
			t.Fatalf("ListReceipts(%s) on page %d = %v, want nil error", describe(q), page, err)
		}
		if len(got) > limit {
			t.Errorf("ListReceipts(%s) returned %d records, want at most %d", describe(q), len(got), limit)
		}
		if len(got) == 0 && page > 0 {
			t.Errorf("ListReceipts(%s) on page %d returned no records, but the previous page returned cursor %q; want \"\" on the last page", describe(q), page, q.Cursor)
		}
		all = append(all, got...)
		if next == "" {
			return all
		}
		if next == q.Cursor {
			t.Fatalf("ListReceipts(%s) returned its own cursor again", describe(q))
		}
		q.Cursor = next
	}
}

func testListPages(t *testing.T, h Harness) {
	ctx := t.Context()
	_, q, fx, _ := newFixtureStore(t, h)
	for _, tt := range filterQueries(fx) {
		wantRecs := want(tt.q, fx)
		limits := []int{1, 2, 3, 5}
		if n := len(wantRecs); n > 0 {
			limits = append(limits, n, n+1) // a last page that is exactly full
		}
		for _, limit := range limits {
			t.Run(fmt.Sprintf("%s/limit %d", tt.name, limit), func(t *testing.T) {
				got := listAll(t, ctx, q, tt.q, limit, len(wantRecs))
				checkRecords(t, fmt.Sprintf("ListReceipts(%s) over all pages of %d", describe(tt.q), limit), got, wantRecs)
			})
		}
	}
}

func testListPageSize(t *testing.T, h Harness) {
	ctx := t.Context()
	s, q := newQuerier(t, h)
	m := newModel(t)
	base := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	total := ledger.MaxPageSize + 7
	var recs []ledger.Record
	for start := 0; start < total; start += 500 {
		var batch [][]byte
		for i := start; i < min(start+500, total); i++ {
			at := base.Add(time.Duration(i) * time.Second)
			f := receiptFields{receiptID: fmt.Sprintf("rpage-%04d", i), actionID: fmt.Sprintf("actpage-%04d", i),
				status: "allowed", tenantID: "tenant-a", agentID: "agent-1", seq: 1, issuedAt: at}
			leaf := receiptLeaf(f, at.Format(time.RFC3339), "")
			batch = append(batch, leaf)
			recs = append(recs, ledger.Record{Index: int64(i), Leaf: leaf})
		}
		appendModel(t, ctx, s, m, batch)
	}

	for _, limit := range []int{0, -1} {
		got, cursor, err := q.ListReceipts(ctx, ledger.Query{Limit: limit})
		if err != nil {
			t.Fatalf("ListReceipts({limit %d}) = %v, want nil error", limit, err)
		}
		checkRecords(t, fmt.Sprintf("ListReceipts({limit %d})", limit), got, recs[:ledger.DefaultPageSize])
		if cursor == "" {
			t.Errorf("ListReceipts({limit %d}) cursor = \"\", want a cursor (more pages follow)", limit)
		}
	}

	query := ledger.Query{Limit: ledger.MaxPageSize + 500}
	got, cursor, err := q.ListReceipts(ctx, query)
	if err != nil {
		t.Fatalf("ListReceipts(%s) = %v, want nil error", describe(query), err)
	}
	checkRecords(t, fmt.Sprintf("ListReceipts(%s)", describe(query)), got, recs[:ledger.MaxPageSize])
	if cursor == "" {
		t.Fatalf("ListReceipts(%s) cursor = \"\", want a cursor (more pages follow)", describe(query))
	}
	query.Cursor = cursor
	got, cursor, err = q.ListReceipts(ctx, query)
	if err != nil {
		t.Fatalf("ListReceipts(%s) = %v, want nil error", describe(query), err)
	}
	checkRecords(t, fmt.Sprintf("ListReceipts(%s)", describe(query)), got, recs[ledger.MaxPageSize:])
	if cursor != "" {
		t.Errorf("ListReceipts(%s) on the last page: cursor = %q, want \"\"", describe(query), cursor)
	}
}

func testListCursorAcrossAppends(t *testing.T, h Harness) {
	ctx := t.Context()
	s, q, fx, m := newFixtureStore(t, h)
	first, cursor, err := q.ListReceipts(ctx, ledger.Query{Limit: 4})
	if err != nil || cursor == "" {
		t.Fatalf("ListReceipts({limit 4}) = %d records, cursor %q, %v; want a cursor and nil", len(first), cursor, err)
	}
	filtered, fcursor, err := q.ListReceipts(ctx, ledger.Query{TenantID: "tenant-b", Limit: 2})
	if err != nil || fcursor == "" {
		t.Fatalf("ListReceipts({tenant=tenant-b limit 2}) = %d records, cursor %q, %v; want a cursor and nil", len(filtered), fcursor, err)
	}

	fx1 := newFixture(1)
	fx1.appendTo(t, ctx, s, m)

	rest := listAll(t, ctx, q, ledger.Query{Cursor: cursor}, 3, len(fx.receipts())+len(fx1.receipts()))
	checkRecords(t, "ListReceipts(all, from the cursor of page 1) after appending more", append(first, rest...), want(ledger.Query{}, fx, fx1))

	fq := ledger.Query{TenantID: "tenant-b", Cursor: fcursor}
	frest := listAll(t, ctx, q, fq, 3, len(fx.receipts())+len(fx1.receipts()))
	checkRecords(t, "ListReceipts(tenant=tenant-b, from the cursor of page 1) after appending more",
		append(filtered, frest...), want(ledger.Query{TenantID: "tenant-b"}, fx, fx1))
}

func testMalformedCursor(t *testing.T, h Harness) {
	ctx := t.Context()
	_, q, _, _ := newFixtureStore(t, h)
	for _, c := range []string{"not a cursor!", "%%%", "\xff\xfe", "{\"index\":"} {
		if got, _, err := q.ListReceipts(ctx, ledger.Query{Cursor: c}); err == nil {
			t.Errorf("ListReceipts({cursor %q}) = %d records, nil, want an error", c, len(got))
		}
	}
}

func testDuplicates(t *testing.T, h Harness) {
	if h.StoresDuplicates {
		testDuplicatesStored(t, h)
		return
	}
	ctx := t.Context()
	s, q := newQuerier(t, h)
	m := newModel(t)
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	leaf := func(id, action string, seq int64, status string) []byte {
		f := receiptFields{receiptID: id, actionID: action, status: status, tenantID: "tenant-a", agentID: "agent-1", seq: seq, issuedAt: at}
		return receiptLeaf(f, at.Format(time.RFC3339), "")
	}

	a := leaf("rdup-1", "actdup-1", 1, "allowed")
	appendModel(t, ctx, s, m, [][]byte{a})
	indexed := []ledger.Record{{Index: 0, Leaf: a}}

	// refused appends batch, which the store must refuse whole with an
	// error wrapping ErrDuplicate (and not ErrConflict), storing nothing.
	refused := func(what string, batch [][]byte) {
		t.Helper()
		hs := m.next(batch)
		err := s.Append(ctx, m.size(), batch, hs)
		switch {
		case err == nil:
			t.Errorf("Append(%s) = nil, want an error wrapping ErrDuplicate", what)
			m.commit(batch, hs) // keep the model in step for the checks below
			return
		case errors.Is(err, ledger.ErrConflict):
			t.Errorf("Append(%s) = %v, want an error wrapping ErrDuplicate and not ErrConflict", what, err)
		case !errors.Is(err, ledger.ErrDuplicate):
			t.Errorf("Append(%s) = %v, want an error wrapping ErrDuplicate", what, err)
		}
		checkStore(t, ctx, s, m)
	}

	other := leaf("rdup-0", "actdup-0", 1, "allowed")
	refused("a receipt with a receipt_id already stored", [][]byte{leaf("rdup-1", "actdup-2", 1, "denied")})
	refused("a receipt with an (action_id, seq) already stored", [][]byte{leaf("rdup-3", "actdup-1", 1, "denied")})
	refused("a batch with one receipt_id twice", [][]byte{leaf("rdup-4", "actdup-4", 1, "allowed"), leaf("rdup-4", "actdup-5", 1, "denied")})
	refused("a batch with one (action_id, seq) twice", [][]byte{leaf("rdup-7", "actdup-7", 1, "allowed"), leaf("rdup-8", "actdup-7", 1, "denied")})
	refused("a batch whose last receipt is a duplicate", [][]byte{other, []byte("not a receipt"), leaf("rdup-9", "actdup-1", 1, "executing")})
	f := leaf("rdup-6", "actdup-1", 2, "executing")
	appendModel(t, ctx, s, m, [][]byte{f})
	indexed = append(indexed, ledger.Record{Index: m.size() - 1, Leaf: f})

	if got, err := q.ReceiptByID(ctx, "rdup-1"); err != nil {
		t.Errorf("ReceiptByID(%q) = %v, want the first receipt with that id", "rdup-1", err)
	} else {
		checkRecords(t, `ReceiptByID("rdup-1")`, []ledger.Record{got}, indexed[:1])
	}
	for _, id := range []string{"rdup-0", "rdup-3", "rdup-4", "rdup-7", "rdup-8", "rdup-9"} {
		if got, err := q.ReceiptByID(ctx, id); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("ReceiptByID(%q) after its batch was refused = index %d, %v, want an error wrapping ErrNotFound", id, got.Index, err)
		}
	}
	got, err := q.ActionReceipts(ctx, "actdup-1")
	if err != nil {
		t.Errorf("ActionReceipts(%q) = %v, want 2 records", "actdup-1", err)
	} else {
		checkRecords(t, `ActionReceipts("actdup-1")`, got, indexed)
	}
	for _, id := range []string{"actdup-0", "actdup-2", "actdup-4", "actdup-5", "actdup-7"} {
		if got, err := q.ActionReceipts(ctx, id); err != nil || len(got) != 0 {
			t.Errorf("ActionReceipts(%q) (only a refused batch had it) = %v, %v, want no records and nil", id, indexes(got), err)
		}
	}
	list, _, err := q.ListReceipts(ctx, ledger.Query{Limit: ledger.MaxPageSize})
	if err != nil {
		t.Fatalf("ListReceipts({}) = %v, want nil error", err)
	}
	checkRecords(t, "ListReceipts({}) (refused batches are not stored)", list, indexed)
}

// testDuplicatesStored is the Duplicates case for a store with
// [Harness.StoresDuplicates]: it may refuse a batch with a duplicate or
// store the duplicate without indexing it.
func testDuplicatesStored(t *testing.T, h Harness) {
	ctx := t.Context()
	s, q := newQuerier(t, h)
	m := newModel(t)
	at := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	leaf := func(id, action string, seq int64, status string) []byte {
		f := receiptFields{receiptID: id, actionID: action, status: status, tenantID: "tenant-a", agentID: "agent-1", seq: seq, issuedAt: at}
		return receiptLeaf(f, at.Format(time.RFC3339), "")
	}
	var indexed []ledger.Record

	a := leaf("rdup-1", "actdup-1", 1, "allowed")
	appendModel(t, ctx, s, m, [][]byte{a})
	indexed = append(indexed, ledger.Record{Index: 0, Leaf: a})

	// tryDup appends batch; a store may refuse it whole or store it and
	// index only the first of each id. It reports whether it was stored.
	tryDup := func(what string, batch [][]byte) bool {
		t.Helper()
		hs := m.next(batch)
		err := s.Append(ctx, m.size(), batch, hs)
		if err != nil {
			if errors.Is(err, ledger.ErrConflict) {
				t.Errorf("Append(%s) = %v, want nil or an error not wrapping ErrConflict", what, err)
			}
			checkStore(t, ctx, s, m)
			return false
		}
		m.commit(batch, hs)
		return true
	}

	b := leaf("rdup-1", "actdup-2", 1, "denied")
	tryDup("a receipt with a receipt_id already indexed", [][]byte{b})
	c := leaf("rdup-3", "actdup-1", 1, "denied")
	tryDup("a receipt with an (action_id, seq) already indexed", [][]byte{c})
	d := leaf("rdup-4", "actdup-4", 1, "allowed")
	e := leaf("rdup-4", "actdup-5", 1, "denied")
	dupBatch := tryDup("a batch with one receipt_id twice", [][]byte{d, e})
	if dupBatch {
		indexed = append(indexed, ledger.Record{Index: m.size() - 2, Leaf: d})
	}
	f := leaf("rdup-6", "actdup-1", 2, "executing")
	appendModel(t, ctx, s, m, [][]byte{f})
	indexed = append(indexed, ledger.Record{Index: m.size() - 1, Leaf: f})

	if got, err := q.ReceiptByID(ctx, "rdup-1"); err != nil {
		t.Errorf("ReceiptByID(%q) = %v, want the first receipt with that id", "rdup-1", err)
	} else {
		checkRecords(t, `ReceiptByID("rdup-1")`, []ledger.Record{got}, indexed[:1])
	}
	if got, err := q.ReceiptByID(ctx, "rdup-3"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReceiptByID(%q) (its action and seq were taken) = index %d, %v, want an error wrapping ErrNotFound", "rdup-3", got.Index, err)
	}
	if dupBatch {
		if got, err := q.ReceiptByID(ctx, "rdup-4"); err != nil {
			t.Errorf("ReceiptByID(%q) = %v, want the first receipt with that id", "rdup-4", err)
		} else {
			checkRecords(t, `ReceiptByID("rdup-4")`, []ledger.Record{got}, indexed[1:2])
		}
	} else if got, err := q.ReceiptByID(ctx, "rdup-4"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("ReceiptByID(%q) after its batch was refused = index %d, %v, want an error wrapping ErrNotFound", "rdup-4", got.Index, err)
	}
	got, err := q.ActionReceipts(ctx, "actdup-1")
	if err != nil {
		t.Errorf("ActionReceipts(%q) = %v, want 2 records", "actdup-1", err)
	} else {
		checkRecords(t, `ActionReceipts("actdup-1")`, got, []ledger.Record{indexed[0], indexed[len(indexed)-1]})
	}
	for _, id := range []string{"actdup-2", "actdup-5"} {
		if got, err := q.ActionReceipts(ctx, id); err != nil || len(got) != 0 {
			t.Errorf("ActionReceipts(%q) (only a duplicate has it) = %v, %v, want no records and nil", id, indexes(got), err)
		}
	}
	list, _, err := q.ListReceipts(ctx, ledger.Query{Limit: ledger.MaxPageSize})
	if err != nil {
		t.Fatalf("ListReceipts({}) = %v, want nil error", err)
	}
	checkRecords(t, "ListReceipts({}) (duplicates are not indexed)", list, indexed)
}

func testQueryCancelled(t *testing.T, h Harness) {
	_, q, fx, _ := newFixtureStore(t, h)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	id := fx.receipts()[0].rec
	if _, err := q.ReceiptByID(ctx, id.receiptID); !errors.Is(err, context.Canceled) {
		t.Errorf("ReceiptByID(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	if _, err := q.ActionReceipts(ctx, id.actionID); !errors.Is(err, context.Canceled) {
		t.Errorf("ActionReceipts(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
	if _, _, err := q.ListReceipts(ctx, ledger.Query{}); !errors.Is(err, context.Canceled) {
		t.Errorf("ListReceipts(cancelled ctx) = %v, want an error wrapping context.Canceled", err)
	}
}
