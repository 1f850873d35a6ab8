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
