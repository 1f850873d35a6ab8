package ledgertest

import (
	"strings"
	"testing"

	"github.com/oarsdev/oars/ledger"
)

// TestFixtureMatchesParseHeader checks the suite's own expectations: each
// fixture leaf the suite expects indexed is a receipt to ParseHeader with
// the same fields, and no other leaf is.
func TestFixtureMatchesParseHeader(t *testing.T) {
	for gen := range 2 {
		fx := newFixture(gen)
		events := 0
		for i, e := range fx.entries {
			h, ok := ledger.ParseHeader(e.leaf)
			if e.rec == nil {
				if ok && h.Spec == ledger.SpecReceipt {
					t.Errorf("ParseHeader(fixture %d leaf %d) = receipt %q, want not a receipt", gen, i, h.ReceiptID)
				}
				if ok && h.Spec == ledger.SpecEvent {
					events++
				}
				continue
			}
			r := e.rec
			want := ledger.Header{Spec: ledger.SpecReceipt, ReceiptID: r.receiptID, ActionID: r.actionID, Seq: r.seq,
				Status: r.status, TenantID: r.tenantID, AgentID: r.agentID, IssuedAt: r.issuedAt}
			if !ok || h != want {
				t.Errorf("ParseHeader(fixture %d leaf %d) = %+v, %v, want %+v, true", gen, i, h, ok, want)
			}
		}
		if events != 2 {
			t.Errorf("fixture %d has %d events, want 2", gen, events)
		}
		if n := len(fx.receipts()); n < 15 || n == len(fx.entries) {
			t.Errorf("fixture %d has %d receipts among %d leaves, want at least 15 and some other leaves", gen, n, len(fx.entries))
		}
	}
}

// TestFilterQueriesSelect checks that each filter query of the List cases
// selects something but not everything, unless it is meant to select
// nothing, so that a store ignoring a filter fails.
func TestFilterQueriesSelect(t *testing.T) {
	fx := newFixture(0)
	fx.setIndexes(0)
	all := len(fx.receipts())
	for _, tt := range filterQueries(fx) {
		n := len(want(tt.q, fx))
		switch {
		case tt.name == "all":
			if n != all {
				t.Errorf("want(%s) = %d records, want %d", tt.name, n, all)
			}
		case strings.HasPrefix(tt.name, "unknown") || tt.name == "empty range" || tt.name == "injection":
			if n != 0 {
				t.Errorf("want(%s) = %d records, want 0", tt.name, n)
			}
		case n == 0 || n == all:
			t.Errorf("want(%s) = %d of %d records, want some but not all", tt.name, n, all)
		}
	}
}
