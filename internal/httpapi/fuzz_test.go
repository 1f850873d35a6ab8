package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// FuzzPostAction sends arbitrary bodies to POST /v1/actions: the server
// never fails (5xx) or panics, and always answers JSON.
func FuzzPostAction(f *testing.F) {
	ts := newTestServer(f, options{rateLimit: 1e9, rateBurst: 1e9})
	for _, seed := range []string{
		actionBody(ownTenant, boundAgent, 5),
		actionBody(otherTenant, boundAgent, 5),
		actionBody(ownTenant, "bot-2", 500),
		`{"tenant_id":"acme","tenant_id":"acme"}`,
		`{"input":{"a":[[[[[[]]]]]]}}`,
		`{"tenant_id":"\ud800"}`,
		`[]`, `null`, `"x"`, `{}`, ``, `{"resource":{"tool_id":1}}`,
		"{\"tenant_id\":\"\xff\"}",
	} {
		f.Add(seed)
	}
	ok := []int{http.StatusCreated, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusRequestEntityTooLarge}
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest("POST", "/v1/actions", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+secrets["agent"])
		rec := httptest.NewRecorder()
		ts.srv.Config.Handler.ServeHTTP(rec, r)
		if !slices.Contains(ok, rec.Code) {
			t.Fatalf("POST /v1/actions %q = %d %s", body, rec.Code, rec.Body)
		}
		if !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST /v1/actions %q answered invalid JSON %q", body, rec.Body)
		}
	})
}

// FuzzProofQuery sends arbitrary query strings to the proof endpoints.
func FuzzProofQuery(f *testing.F) {
	ts := newTestServer(f, options{rateLimit: 1e9, rateBurst: 1e9})
	ts.submit("root", ownTenant, boundAgent, 1)
	ts.submit("root", ownTenant, boundAgent, 2)
	for _, seed := range []string{"index=0", "index=1&tree_size=2", "from=1&to=2", "index=-1", "index=%zz", "from=9223372036854775807", "index=1&index=2"} {
		f.Add(seed)
	}
	ok := []int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound}
	f.Fuzz(func(t *testing.T, query string) {
		for _, path := range []string{"/v1/ledger/proofs/inclusion", "/v1/ledger/proofs/consistency", "/v1/receipts"} {
			r, err := http.NewRequest("GET", "http://oars.test"+path+"?"+query, nil)
			if err != nil {
				return // not a request a client could send
			}
			r.Header.Set("Authorization", "Bearer "+secrets["root"])
			rec := httptest.NewRecorder()
			ts.srv.Config.Handler.ServeHTTP(rec, r)
			if !slices.Contains(ok, rec.Code) {
				t.Fatalf("GET %s?%s = %d %s", path, query, rec.Code, rec.Body)
			}
		}
	})
}

// FuzzApprovals sends arbitrary query strings to GET /v1/approvals
// (opaque cursors included) and arbitrary bodies to the decision route:
// the server never fails (5xx) or panics.
func FuzzApprovals(f *testing.F) {
	ts := newTestServer(f, options{rateLimit: 1e9, rateBurst: 1e9})
	held := ts.submit("root", ownTenant, boundAgent, 500).ActionID
	ts.submit("root", ownTenant, boundAgent, 600)
	first := ts.do(request{method: "GET", path: "/v1/approvals?limit=1", token: "approver"})
	var page struct {
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal(first.body, &page); err != nil {
		f.Fatal(err)
	}
	for _, seed := range []struct{ query, body string }{
		{"limit=1&cursor=" + page.NextCursor, `{"decision":"reject"}`},
		{"status=rejected&cursor=" + page.NextCursor, `{"decision":"approve","totp":"123456"}`},
		{"cursor=eyJzIjoicGVuZGluZyJ9", `{"decision":"approve","reason":"\u0000"}`},
		{"cursor=eyJzIjoicmVqZWN0ZWQiLCJjIjoiISEifQ&status=rejected", `{"decision":1}`},
		{"status=approved&limit=100", `{"decision":"approve","totp":null,"x":1}`},
		{"tenant_id=globex", `[]`},
		{"cursor=%zz", ``},
	} {
		f.Add(seed.query, seed.body)
	}
	okList := []int{http.StatusOK, http.StatusBadRequest, http.StatusNotFound}
	okDecide := []int{http.StatusOK, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound, http.StatusConflict, http.StatusRequestEntityTooLarge}
	f.Fuzz(func(t *testing.T, query, body string) {
		r, err := http.NewRequest("GET", "http://oars.test/v1/approvals?"+query, nil)
		if err == nil {
			r.Header.Set("Authorization", "Bearer "+secrets["approver"])
			rec := httptest.NewRecorder()
			ts.srv.Config.Handler.ServeHTTP(rec, r)
			if !slices.Contains(okList, rec.Code) {
				t.Fatalf("GET /v1/approvals?%s = %d %s", query, rec.Code, rec.Body)
			}
		}
		r = httptest.NewRequest("POST", "/v1/approvals/"+held+"/decision", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+secrets["operator"]) // not allowed to vote: nothing changes
		rec := httptest.NewRecorder()
		ts.srv.Config.Handler.ServeHTTP(rec, r)
		if rec.Code != http.StatusForbidden {
			t.Fatalf("decision as operator = %d %s", rec.Code, rec.Body)
		}
		r = httptest.NewRequest("POST", "/v1/approvals/"+held+"/decision", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+secrets["approver"])
		rec = httptest.NewRecorder()
		ts.srv.Config.Handler.ServeHTTP(rec, r)
		if !slices.Contains(okDecide, rec.Code) || !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("POST decision %q = %d %s", body, rec.Code, rec.Body)
		}
	})
}
