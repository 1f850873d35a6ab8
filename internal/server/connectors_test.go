package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/server"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// plantedToken is the tracker's API token, kept in the vault; the leak
// test looks for it everywhere the server writes.
const plantedToken = "tkn_PLANTED_9f8e7d6c5b4a"

// testVaultKeys is a fixed vault key for the tests.
var testVaultKeys = "t1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))

const trackerPolicyYAML = `
id: tracker
version: "1"
default: deny
rules:
  - id: issues
    when: action.tool_id == "tracker"
    effect: allow
    reason: agents may use the tracker
  - id: prod
    when: action.tool_id == "tracker" && input.project == "prod"
    effect: require_approval
    reason: issues in prod need an approver
    approval:
      roles: [finance-approver]
      quorum: 1
      expiry: 1h
`

const trackerToolsYAML = `
tools:
  - id: tracker
    base_url: %s/api
    allow_private: ["127.0.0.1/32"]
    timeout: 5s
    auth: {type: bearer, secret: tracker/token}
    operations:
      create_issue:
        method: POST
        path: /projects/{project}/issues
        body: {title: "{title}"}
        input_schema:
          type: object
          required: [project, title]
          additionalProperties: false
          properties:
            project: {type: string}
            title: {type: string, maxLength: 50}
        success: [201]
        summary: {issue_id: /id}
`

// tracker is a fake issue tracker that honours Idempotency-Key: a
// repeated key gets the first answer and creates nothing.
type tracker struct {
	mu      sync.Mutex
	created map[string][]byte // by idempotency key
	calls   int
	auth    []string
	fail    int // answer this status instead, when set
	// hold, when set, is closed by the test to let the first request
	// finish; arrived receives each request's idempotency key.
	hold    chan struct{}
	arrived chan string
}

func newTracker() *tracker { return &tracker{created: map[string][]byte{}} }

func (tr *tracker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("Idempotency-Key")
	tr.mu.Lock()
	tr.calls++
	tr.auth = append(tr.auth, r.Header.Get("Authorization"))
	fail, hold, arrived := tr.fail, tr.hold, tr.arrived
	body, seen := tr.created[key]
	if !seen && fail == 0 {
		body = []byte(fmt.Sprintf(`{"id":"ISS-%d","number":%d,"html_url":"https://tracker.test/i/%d"}`, len(tr.created)+1, len(tr.created)+1, len(tr.created)+1))
		tr.created[key] = body
	}
	tr.mu.Unlock()
	if arrived != nil {
		arrived <- key
	}
	if hold != nil {
		<-hold
	}
	if fail != 0 {
		http.Error(w, `{"error":"boom"}`, fail)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write(body)
}

// trackerConfig is approvalConfig with the tracker tool served by the
// HTTP connector, its token planted in the vault of dir's store.
func trackerConfig(t testing.TB, dir, upstream string) *config.Config {
	t.Helper()
	cfg := approvalConfig(t, dir)
	cfg.Policy = filepath.Join(dir, "tracker.yaml")
	require.NoError(t, os.WriteFile(cfg.Policy, []byte(trackerPolicyYAML), 0o600))
	cfg.Connectors = filepath.Join(dir, "tools.yaml")
	require.NoError(t, os.WriteFile(cfg.Connectors, []byte(fmt.Sprintf(trackerToolsYAML, upstream)), 0o600))
	cfg.VaultKeys = testVaultKeys
	require.NoError(t, cfg.Validate())

	st, err := sqlite.Open(context.Background(), filepath.Join(dir, server.DBFile))
	require.NoError(t, err)
	defer st.Close()
	keys, err := vault.ParseKeys(testVaultKeys)
	require.NoError(t, err)
	v, err := vault.New(st, keys)
	require.NoError(t, err)
	require.NoError(t, v.Put(context.Background(), "tracker/token", []byte(plantedToken)))
	return cfg
}

func createIssue(t *testing.T, base, title string, wantCode int) actionResponse {
	t.Helper()
	code, body := call(t, "POST", base+"/v1/actions", secretOf("alice"), map[string]any{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": map[string]any{"user_id": "alice"},
		"resource":     map[string]any{"tool_id": "tracker", "operation": "create_issue", "target": "project/ops"},
		"input":        map[string]any{"project": "ops", "title": title},
	})
	require.Equal(t, wantCode, code, string(body))
	var out actionResponse
	require.NoError(t, json.Unmarshal(body, &out))
	return out
}

func lastReceipt(t *testing.T, raws []json.RawMessage) *receipt.Receipt {
	t.Helper()
	var r receipt.Receipt
	require.NoError(t, json.Unmarshal(raws[len(raws)-1], &r))
	return &r
}

// TestConnectorThroughAPI drives the HTTP connector through POST
// /v1/actions against a real upstream on loopback.
func TestConnectorThroughAPI(t *testing.T) {
	tr := newTracker()
	up := httptest.NewServer(tr)
	defer up.Close()
	dir := t.TempDir()
	s := startWith(t, trackerConfig(t, dir, up.URL))

	// Allowed: executed, with the output's digest and summary.
	out := createIssue(t, s.url, "printer on fire", http.StatusCreated)
	require.Equal(t, []string{"allowed", "executing", "executed"}, statuses(t, out.Receipts))
	last := lastReceipt(t, out.Receipts)
	canon, err := receipt.Canonicalize(out.Output)
	require.NoError(t, err)
	assert.Equal(t, receipt.Digest(canon), last.OutputDigest)
	assert.JSONEq(t, `{"issue_id":"ISS-1"}`, string(last.OutputSummary))
	assert.EqualValues(t, 201, last.UpstreamStatus)
	assert.Equal(t, []string{"Bearer " + plantedToken}, tr.auth, "the connector authenticates with the vault's token")
	assert.Contains(t, tr.created, out.ActionID, "the idempotency key is the action id")
	verifyChain(t, s.url, out.Receipts)

	// Schema-invalid input and unknown tools are denied before any call.
	bad := createIssue(t, s.url, strings.Repeat("x", 51), http.StatusCreated)
	assert.Equal(t, "denied", bad.Status)
	assert.Equal(t, "invalid_input", lastReceipt(t, bad.Receipts).ErrorClass)
	code, body := call(t, "POST", s.url+"/v1/actions", secretOf("alice"), map[string]any{
		"tenant_id": "acme", "agent_id": "support-bot", "user_context": map[string]any{"user_id": "alice"},
		"resource": map[string]any{"tool_id": "shell", "operation": "run"}, "input": map[string]any{},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var unknown actionResponse
	require.NoError(t, json.Unmarshal(body, &unknown))
	assert.Equal(t, "unknown_tool", lastReceipt(t, unknown.Receipts).ErrorClass)
	assert.Equal(t, 1, tr.calls, "refused actions never reach the upstream")

	// A 5xx on a POST fails once, never retried, with the status recorded.
	tr.mu.Lock()
	tr.fail = http.StatusBadGateway
	tr.mu.Unlock()
	failed := createIssue(t, s.url, "again", http.StatusCreated)
	assert.Equal(t, "failed", failed.Status)
	fr := lastReceipt(t, failed.Receipts)
	assert.Equal(t, "upstream_5xx", fr.ErrorClass)
	assert.EqualValues(t, 502, fr.UpstreamStatus)
	assert.Equal(t, 2, tr.calls, "a non-idempotent operation is attempted once")
	s.stop()
	verifyLedgerFile(t, dir)
}

// TestPlantedSecretNeverLeaks looks for the vault's planted token in
// everything the server writes: logs (debug level), metrics, API
// responses, receipts and the ledger file.
func TestPlantedSecretNeverLeaks(t *testing.T) {
	tr := newTracker()
	up := httptest.NewServer(tr)
	defer up.Close()
	dir := t.TempDir()
	cfg := trackerConfig(t, dir, up.URL)
	var logs bytes.Buffer
	var logMu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()

	var seen bytes.Buffer
	record := func(code int, body []byte) { seen.Write(body) }
	record(0, mustJSON(t, createIssue(t, base, "ok", http.StatusCreated)))
	tr.mu.Lock()
	tr.fail = http.StatusUnauthorized
	tr.mu.Unlock()
	record(0, mustJSON(t, createIssue(t, base, "denied upstream", http.StatusCreated)))
	record(call(t, "POST", base+"/v1/actions", secretOf("alice"), map[string]any{"tenant_id": "acme"}))
	for _, path := range []string{"/metrics", "/v1/receipts?tenant_id=acme&limit=100", "/.well-known/oap/jwks.json", "/v1/ledger/checkpoint"} {
		record(call(t, "GET", base+path, "dev_auditor_token", nil))
	}
	cancel()
	require.NoError(t, <-done)
	ledgerFile, err := os.ReadFile(filepath.Join(dir, server.DBFile))
	require.NoError(t, err)
	wal, _ := os.ReadFile(filepath.Join(dir, server.DBFile+"-wal"))

	logMu.Lock()
	defer logMu.Unlock()
	require.NotZero(t, logs.Len(), "logs were captured")
	for name, b := range map[string][]byte{"logs": logs.Bytes(), "responses": seen.Bytes(), "ledger file": ledgerFile, "wal": wal} {
		assert.NotContains(t, string(b), plantedToken, "the planted secret leaked into the %s", name)
		assert.NotContains(t, string(b), base64.StdEncoding.EncodeToString([]byte(plantedToken)), "the planted secret leaked (base64) into the %s", name)
		_, vaultKey, _ := strings.Cut(testVaultKeys, ":")
		assert.NotContains(t, string(b), vaultKey, "the vault key leaked into the %s", name)
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return b
}

const queueChildEnv = "OARS_TEST_QUEUE_CHILD"

// queuedConfig is trackerConfig with queued execution and a short lease.
func queuedConfig(t testing.TB, dir, upstream string) *config.Config {
	cfg := trackerConfig(t, dir, upstream)
	cfg.Execution = config.ExecutionQueued
	cfg.ExecutionLease = 2 * time.Second
	require.NoError(t, cfg.Validate())
	return cfg
}

// TestQueueCrashChild is the worker killed by TestQueuedExecutionSurvivesKill.
func TestQueueCrashChild(t *testing.T) {
	env := os.Getenv(queueChildEnv)
	if env == "" {
		t.Skip("runs only as the child process of TestQueuedExecutionSurvivesKill")
	}
	dir, upstream, _ := strings.Cut(env, "|")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := queuedConfig(t, dir, upstream)
	srv, err := server.New(ctx, cfg, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fmt.Printf("listening http://%s\n", ln.Addr())
	_ = srv.Serve(ctx, ln)
}

// TestQueuedExecutionSurvivesKill: with execution queued, the worker is
// SIGKILLed while the upstream handles the action; a new server on the
// same data directory claims the job again once its lease has run out,
// the upstream sees the same idempotency key and creates the issue once,
// and the action ends executed with verifiable receipts.
func TestQueuedExecutionSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	tr := newTracker()
	hold := make(chan struct{})
	tr.hold = hold
	tr.arrived = make(chan string, 4)
	up := httptest.NewServer(tr)
	defer up.Close()
	defer close(hold) // lets the killed worker's request end before up.Close
	dir := t.TempDir()
	base, kill := startChild(t, "TestQueueCrashChild", queueChildEnv+"="+dir+"|"+up.URL)

	out := createIssue(t, base, "queued", http.StatusAccepted)
	assert.Equal(t, "allowed", out.Status)
	assert.Equal(t, out.ActionID, <-tr.arrived, "the worker reached the upstream")
	kill() // SIGKILL the worker mid-execution
	tr.mu.Lock()
	tr.hold = nil // the next attempt is answered at once
	tr.mu.Unlock()

	s := startWith(t, queuedConfig(t, dir, up.URL))
	assert.Equal(t, out.ActionID, <-tr.arrived, "redelivered with the same idempotency key")
	final, err := s.srv.Guard().Wait(t.Context(), out.ActionID)
	require.NoError(t, err)
	require.Equal(t, receipt.StatusExecuted, final.Status)
	var st []string
	for _, e := range final.Receipts {
		st = append(st, string(e.Receipt.Status))
	}
	assert.Equal(t, []string{"allowed", "executing", "executing", "executed"}, st)
	assert.Equal(t, []string{"attempt 2; the previous attempt was interrupted"}, final.Receipts[2].Receipt.Reasons)
	tr.mu.Lock()
	assert.Len(t, tr.created, 1, "the upstream created the issue once")
	assert.Equal(t, 2, tr.calls)
	tr.mu.Unlock()
	s.stop()
	verifyLedgerFile(t, dir)
}

// TestQueuedApprovedAction: with execution queued, an action held for
// approval is executed through the queue once approved.
func TestQueuedApprovedAction(t *testing.T) {
	tr := newTracker()
	tr.arrived = make(chan string, 4)
	up := httptest.NewServer(tr)
	defer up.Close()
	dir := t.TempDir()
	s := startWith(t, queuedConfig(t, dir, up.URL))
	code, body := call(t, "POST", s.url+"/v1/actions", secretOf("alice"), map[string]any{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": map[string]any{"user_id": "alice"},
		"resource":     map[string]any{"tool_id": "tracker", "operation": "create_issue", "target": "project/prod"},
		"input":        map[string]any{"project": "prod", "title": "outage"},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var held actionResponse
	require.NoError(t, json.Unmarshal(body, &held))
	require.Equal(t, "pending_approval", held.Status)
	status, errCode := decide(t, s.url, "bob", held.ActionID, map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusOK, status, errCode)
	assert.Equal(t, held.ActionID, <-tr.arrived)
	final, err := s.srv.Guard().Wait(t.Context(), held.ActionID)
	require.NoError(t, err)
	require.Equal(t, receipt.StatusExecuted, final.Status)
	v := getApproval(t, s.url, held.ActionID)
	assert.Equal(t, []string{"pending_approval", "vote", "approved", "executing", "executed"}, statuses(t, v.Receipts))
	verifyChain(t, s.url, v.Receipts)
	s.stop()
	verifyLedgerFile(t, dir)
}
