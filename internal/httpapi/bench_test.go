package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkPostAction measures POST /v1/actions in process: auth, strict
// decoding, the Guard's decision and the ledger append (MemStore).
func BenchmarkPostAction(b *testing.B) {
	ts := newTestServer(b, options{rateLimit: 1e9, rateBurst: 1e9})
	body := actionBody(ownTenant, boundAgent, 5)
	h := ts.srv.Config.Handler
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+secrets["agent"])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusCreated {
			b.Fatalf("POST /v1/actions = %d %s", rec.Code, rec.Body)
		}
	}
}

// BenchmarkGetReceipt measures GET /v1/receipts/{id}.
func BenchmarkGetReceipt(b *testing.B) {
	ts := newTestServer(b, options{rateLimit: 1e9, rateBurst: 1e9})
	a := ts.submit("root", ownTenant, boundAgent, 5)
	path := "/v1/receipts/" + receiptID(b, a.Receipts[0])
	h := ts.srv.Config.Handler
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("Authorization", "Bearer "+secrets["auditor"])
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusOK {
			b.Fatalf("GET %s = %d", path, rec.Code)
		}
	}
}
