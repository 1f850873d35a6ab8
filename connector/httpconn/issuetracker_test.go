package httpconn_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/httpconn"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const (
	exampleTools  = "../../examples/issue-tracker/tools.yaml"
	examplePolicy = "../../examples/issue-tracker/policy"
)

// fakeTracker is the issue tracker examples/issue-tracker/tools.yaml
// describes, as far as the test needs it. It honours Idempotency-Key on
// creation, as a real tracker should.
type fakeTracker struct {
	mu      sync.Mutex
	issues  map[string]map[string]any // by idempotency key
	patches []map[string]any
}

func (f *fakeTracker) handler(t *testing.T) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer trk_live_123" || r.Header.Get("Idempotency-Key") == "" {
				http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	body := func(r *http.Request) map[string]any {
		var m map[string]any
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil {
			t.Errorf("tracker: bad body: %v", err)
		}
		return m
	}
	write := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("POST /api/v1/projects/{project}/issues", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		key := r.Header.Get("Idempotency-Key")
		issue, ok := f.issues[key]
		if !ok {
			n := len(f.issues) + 1
			issue = body(r)
			issue["id"] = fmt.Sprintf("iss_%d", n)
			issue["number"] = n
			issue["state"] = "open"
			issue["html_url"] = fmt.Sprintf("https://tracker.example.com/%s/issues/%d", r.PathValue("project"), n)
			f.issues[key] = issue
		}
		write(w, http.StatusCreated, issue)
	}))
	mux.HandleFunc("PATCH /api/v1/projects/{project}/issues/{number}", auth(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		patch := body(r)
		f.patches = append(f.patches, patch)
		write(w, http.StatusOK, map[string]any{"id": "iss_" + r.PathValue("number"), "state": patch["state"]})
	}))
	mux.HandleFunc("POST /api/v1/projects/{project}/issues/{number}/comments", auth(func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusCreated, map[string]any{"id": "cmt_1", "html_url": "https://tracker.example.com/c/1", "body": body(r)["body"]})
	}))
	return mux
}

func TestIssueTrackerExample(t *testing.T) {
	cfg, err := httpconn.Load(exampleTools)
	require.NoError(t, err)
	require.Len(t, cfg.Tools, 1)

	f := &fakeTracker{issues: map[string]map[string]any{}}
	srv := httptest.NewServer(f.handler(t))
	t.Cleanup(srv.Close)
	// The example points at the real tracker; the test points it at the
	// fake one on loopback and allows that.
	cfg.Tools[0].BaseURL = srv.URL + "/api/v1"
	cfg.Tools[0].AllowPrivate = loopback

	reg := connector.NewRegistry()
	require.NoError(t, httpconn.Register(reg, cfg, vault.Map{"tracker/token": []byte("trk_live_123")}))
	assert.False(t, reg.Idempotent("tracker", "create_issue"))
	assert.True(t, reg.Idempotent("tracker", "update_issue"))
	assert.False(t, reg.Idempotent("tracker", "add_comment"))

	run := func(op, key, input string) (*connector.Result, error) {
		return reg.Execute(context.Background(), &connector.Request{
			ActionID: key, IdempotencyKey: key, ToolID: "tracker", Operation: op, Input: json.RawMessage(input), Attempt: 1,
		})
	}

	res, err := run("create_issue", "act-1", `{"project":"web","title":"Login fails on Safari","description":"Steps: …","labels":["bug"]}`)
	require.NoError(t, err)
	assert.Equal(t, http.StatusCreated, res.UpstreamStatus)
	assert.JSONEq(t, `{"issue_id":"iss_1","number":1,"url":"https://tracker.example.com/web/issues/1"}`, string(res.Summary))
	var out map[string]any
	require.NoError(t, json.Unmarshal(res.Output, &out))
	assert.Equal(t, "Steps: …", out["body"], "description is sent as body")
	assert.NotContains(t, out, "assignee", "absent optional fields are not sent")

	// A second execution of the same action (same key) creates nothing new.
	res, err = run("create_issue", "act-1", `{"project":"web","title":"Login fails on Safari"}`)
	require.NoError(t, err)
	assert.JSONEq(t, `{"issue_id":"iss_1","number":1,"url":"https://tracker.example.com/web/issues/1"}`, string(res.Summary))
	assert.Len(t, f.issues, 1)

	res, err = run("update_issue", "act-2", `{"project":"web","number":1,"state":"closed"}`)
	require.NoError(t, err)
	assert.JSONEq(t, `{"issue_id":"iss_1","state":"closed"}`, string(res.Summary))
	assert.Equal(t, []map[string]any{{"state": "closed"}}, f.patches, "a PATCH sends only the fields given")

	res, err = run("add_comment", "act-3", `{"project":"web","number":1,"body":"Reproduced."}`)
	require.NoError(t, err)
	assert.JSONEq(t, `{"comment_id":"cmt_1","url":"https://tracker.example.com/c/1"}`, string(res.Summary))

	// The schemas refuse what the tracker should never see.
	for _, in := range []struct{ op, input string }{
		{"create_issue", `{"project":"../admin","title":"x"}`},
		{"create_issue", `{"project":"web","title":"x","token":"y"}`},
		{"update_issue", `{"project":"web","number":1}`},
		{"update_issue", `{"project":"web","number":1,"state":"deleted"}`},
		{"add_comment", `{"project":"web","number":0,"body":"x"}`},
	} {
		_, err := run(in.op, "act-x", in.input)
		assert.ErrorIs(t, err, connector.ErrInvalidInput, "%s %s", in.op, in.input)
	}
}

func TestIssueTrackerPolicy(t *testing.T) {
	set, err := policy.Load(examplePolicy + "/policy.yaml")
	require.NoError(t, err)
	cases, err := policy.LoadTests(examplePolicy)
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	for _, r := range policy.RunTests(context.Background(), set, cases) {
		assert.True(t, r.Pass, "case %q: %s", r.Case.Name, r.Diff())
	}
}

// TestIssueTrackerGuard runs the example end to end as the README
// describes: a Guard with the example policy executes allowed actions with
// the HTTP connector and holds the others.
func TestIssueTrackerGuard(t *testing.T) {
	ctx := context.Background()
	f := &fakeTracker{issues: map[string]map[string]any{}}
	srv := httptest.NewServer(f.handler(t))
	t.Cleanup(srv.Close)

	tools, err := httpconn.Load(exampleTools)
	require.NoError(t, err)
	tools.Tools[0].BaseURL = srv.URL + "/api/v1"
	tools.Tools[0].AllowPrivate = loopback
	secrets := vault.Map{"tracker/token": []byte("trk_live_123")}
	reg := connector.NewRegistry()
	require.NoError(t, httpconn.Register(reg, tools, secrets))

	set, err := policy.Load(examplePolicy + "/policy.yaml")
	require.NoError(t, err)
	signer, err := receipt.GenerateSigner()
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	log, err := ledger.New(ctx, ledger.NewMemStore())
	require.NoError(t, err)
	guard, err := oars.New(set, keys, log, oars.WithConnectors(reg))
	require.NoError(t, err)

	action := func(op, input string) *oars.Action {
		return &oars.Action{
			TenantID: "acme", AgentID: "triage-bot",
			Principal: oars.Principal{UserID: "alice"},
			Resource:  oars.Resource{ToolID: "tracker", Operation: op, Target: "project/web"},
			Input:     json.RawMessage(input),
		}
	}

	// Allowed: executed by the connector (nil exec function).
	out, err := guard.Do(ctx, action("create_issue", `{"project":"web","title":"Login fails on Safari"}`), nil)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	last := out.Receipts[len(out.Receipts)-1].Receipt
	assert.EqualValues(t, http.StatusCreated, last.UpstreamStatus)
	assert.JSONEq(t, `{"issue_id":"iss_1","number":1,"url":"https://tracker.example.com/web/issues/1"}`, string(last.OutputSummary))
	assert.NotEmpty(t, last.OutputDigest)

	// Closing needs a triager: held, nothing sent.
	out, err = guard.Decide(ctx, action("update_issue", `{"project":"web","number":1,"state":"closed"}`))
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusPendingApproval, out.Status)
	assert.Empty(t, f.patches)

	// Input outside the schema is denied before any policy.
	out, err = guard.Do(ctx, action("create_issue", `{"project":"web"}`), nil)
	assert.ErrorIs(t, err, oars.ErrDenied)
	assert.Equal(t, receipt.StatusDenied, out.Status)
}
