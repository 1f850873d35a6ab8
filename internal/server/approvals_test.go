package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval/webhook"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/server"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// approvalPolicyYAML holds refunds over 100 for two of the finance
// approvers, and refunds over 10000 for one with step-up.
const approvalPolicyYAML = `
id: refunds
version: "1"
default: deny
rules:
  - id: small
    when: action.tool_id == "payments" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
  - id: big
    when: action.tool_id == "payments" && input.amount > 100 && input.amount <= 10000
    effect: require_approval
    reason: refunds over 100 need two finance approvers
    approval:
      roles: [finance-approver]
      quorum: 2
      expiry: 1h
  - id: huge
    when: action.tool_id == "payments" && input.amount > 10000
    effect: require_approval
    reason: refunds over 10000 need a second factor
    approval:
      roles: [finance-approver]
      quorum: 1
      expiry: 1h
      step_up: true
`

// people are the API tokens of the approval tests: alice requests (and
// is a finance approver too), bob, carol and dan approve, erin is an
// approver outside the group, and gus approves for another tenant.
var people = []struct {
	name    string
	roles   []string
	tenants []string
	groups  []string
}{
	{"alice", []string{"operator", "approver"}, []string{"acme"}, []string{"finance-approver"}},
	{"bob", []string{"approver"}, []string{"acme"}, []string{"finance-approver"}},
	{"carol", []string{"approver"}, []string{"acme"}, []string{"finance-approver"}},
	{"dan", []string{"approver"}, []string{"acme"}, []string{"finance-approver"}},
	{"erin", []string{"approver"}, []string{"acme"}, []string{"support"}},
	{"gus", []string{"approver"}, []string{"globex"}, []string{"finance-approver"}},
}

// secretOf is the API token secret of person name.
func secretOf(name string) string { return "oars_test_" + name + "_secret" }

// approvalConfig is a development config over dataDir with the approval
// policy and the people's tokens (by hash, as a config file holds them).
func approvalConfig(t testing.TB, dataDir string) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	require.NoError(t, os.MkdirAll(dataDir, 0o700))
	cfg.Policy = filepath.Join(dataDir, "refunds.yaml")
	require.NoError(t, os.WriteFile(cfg.Policy, []byte(approvalPolicyYAML), 0o600))
	for _, p := range people {
		cfg.Tokens = append(cfg.Tokens, config.Token{
			Name: p.name, TokenSHA256: identity.HashToken(secretOf(p.name)), Roles: p.roles, Tenants: p.tenants, Groups: p.groups,
		})
	}
	require.NoError(t, cfg.Validate())
	return &cfg
}

// live is a server running in this process.
type live struct {
	*running
	srv *server.Server
}

// startWith runs a server over cfg with opts on a loopback port until
// stop (or the end of the test).
func startWith(t *testing.T, cfg *config.Config, opts ...server.Option) *live {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts...)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		require.NoError(t, <-done)
	}
	t.Cleanup(stop)
	return &live{running: &running{url: "http://" + ln.Addr().String(), stop: stop}, srv: srv}
}

// executions counts the runs of the payments executor and reports each.
type executions struct {
	n    atomic.Int32
	runs chan string
}

func newExecutions() *executions { return &executions{runs: make(chan string, 16)} }

func (e *executions) exec(_ context.Context, a *oars.Action) (json.RawMessage, error) {
	e.n.Add(1)
	e.runs <- a.ID
	return json.RawMessage(`{"refund_id":"re_1"}`), nil
}

// next waits for the next run and returns its action id.
func (e *executions) next(t *testing.T) string {
	t.Helper()
	select {
	case id := <-e.runs:
		return id
	case <-time.After(time.Minute): // a safety net against a hang, not a timing assertion
		t.Fatal("the executor was never called")
		return ""
	}
}

// refund submits a refund of amount as alice and returns the answer.
func refund(t *testing.T, base string, amount int) actionResponse {
	t.Helper()
	code, body := call(t, "POST", base+"/v1/actions", secretOf("alice"), map[string]any{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": map[string]any{"user_id": "alice"},
		"resource":     map[string]any{"tool_id": "payments", "operation": "refund", "target": fmt.Sprintf("order/%d", amount)},
		"input":        map[string]any{"amount": amount, "currency": "EUR"},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var out actionResponse
	require.NoError(t, json.Unmarshal(body, &out))
	return out
}

// approvalView is the part of GET /v1/approvals/{id} the tests read.
type approvalView struct {
	Status   string            `json:"status"`
	Receipts []json.RawMessage `json:"receipts"`
	Votes    []struct {
		Approver string `json:"approver"`
	} `json:"votes"`
}

func getApproval(t *testing.T, base, id string) approvalView {
	t.Helper()
	code, body := call(t, "GET", base+"/v1/approvals/"+id, "dev_auditor_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var v approvalView
	require.NoError(t, json.Unmarshal(body, &v))
	return v
}

func decide(t *testing.T, base, who, id string, body map[string]any) (int, string) {
	t.Helper()
	code, resp := call(t, "POST", base+"/v1/approvals/"+id+"/decision", secretOf(who), body)
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(resp, &e)
	return code, e.Error.Code
}

// statuses returns the statuses of raw receipts.
func statuses(t *testing.T, raws []json.RawMessage) []string {
	t.Helper()
	out := make([]string, len(raws))
	for i, r := range raws {
		var h struct {
			Status string `json:"status"`
		}
		require.NoError(t, json.Unmarshal(r, &h))
		out[i] = h.Status
	}
	return out
}

// verifyChain verifies raw receipts offline with the server's published
// JWKS, as `oars verify` does.
func verifyChain(t *testing.T, base string, raws []json.RawMessage) {
	t.Helper()
	code, jwks := call(t, "GET", base+"/.well-known/oap/jwks.json", "", nil)
	require.Equal(t, http.StatusOK, code)
	keys, err := receipt.ParseJWKS(jwks)
	require.NoError(t, err)
	v, err := receipt.NewVerifier(keys)
	require.NoError(t, err)
	chain := make([][]byte, len(raws))
	for i, r := range raws {
		chain[i] = r
	}
	_, err = v.VerifyChain(chain)
	require.NoError(t, err, "the action's receipts verify as a chain")
}

// verifyLedgerFile verifies the whole SQLite ledger of dataDir offline:
// tree, signatures, chains.
func verifyLedgerFile(t *testing.T, dataDir string) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(dataDir, server.DBFile), sqlite.WithReadOnly())
	require.NoError(t, err)
	defer st.Close()
	jwks, err := os.ReadFile(filepath.Join(dataDir, server.JWKSFile))
	require.NoError(t, err)
	keys, err := receipt.ParseJWKS(jwks)
	require.NoError(t, err)
	v, err := receipt.NewVerifier(keys)
	require.NoError(t, err)
	_, err = ledger.Verify(context.Background(), st, receipt.NewLogChecker(v))
	require.NoError(t, err, "the ledger verifies")
}

// TestApprovalQuorumConcurrentVotes: three approvers vote at once on a
// 2-of-3 approval over HTTP; the action is approved once and the server
// executes it once, and its receipts verify.
func TestApprovalQuorumConcurrentVotes(t *testing.T) {
	dir := t.TempDir()
	ex := newExecutions()
	s := startWith(t, approvalConfig(t, dir), server.WithExecutor("payments", ex.exec))
	id := refund(t, s.url, 500).ActionID

	voters := []string{"bob", "carol", "dan"}
	codes := make([]int, len(voters))
	errCodes := make([]string, len(voters))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, who := range voters {
		wg.Go(func() {
			<-start
			codes[i], errCodes[i] = decide(t, s.url, who, id, map[string]any{"decision": "approve", "reason": "ok"})
		})
	}
	close(start)
	wg.Wait()
	ok, late := 0, 0
	for i := range voters {
		switch codes[i] {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			late++
			assert.Equal(t, "not_pending", errCodes[i])
		default:
			t.Errorf("vote by %s = %d %s", voters[i], codes[i], errCodes[i])
		}
	}
	assert.Equal(t, 2, ok, "votes counted")
	assert.Equal(t, 1, late, "votes after the quorum")

	assert.Equal(t, id, ex.next(t), "the executed action")
	out, err := s.srv.Guard().Wait(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	v := getApproval(t, s.url, id)
	assert.Equal(t, []string{"pending_approval", "vote", "vote", "approved", "executing", "executed"}, statuses(t, v.Receipts))
	verifyChain(t, s.url, v.Receipts)
	s.stop()
	assert.Equal(t, int32(1), ex.n.Load(), "executions")
	verifyLedgerFile(t, dir)
}

// TestApprovalRefusals: the requester, an approver of another tenant and
// an approver outside the group cannot vote, and nothing is recorded.
func TestApprovalRefusals(t *testing.T) {
	s := startWith(t, approvalConfig(t, t.TempDir()))
	id := refund(t, s.url, 500).ActionID
	for _, tt := range []struct {
		who    string
		status int
		code   string
	}{
		{"alice", http.StatusForbidden, "self_approval"},
		{"gus", http.StatusNotFound, "not_found"},
		{"erin", http.StatusForbidden, "not_approver"},
	} {
		t.Run(tt.who, func(t *testing.T) {
			status, code := decide(t, s.url, tt.who, id, map[string]any{"decision": "approve"})
			assert.Equal(t, tt.status, status, "vote by %s", tt.who)
			assert.Equal(t, tt.code, code)
			v := getApproval(t, s.url, id)
			assert.Empty(t, v.Votes, "nothing recorded")
			assert.Len(t, v.Receipts, 1)
		})
	}
}

// TestApprovalStepUp: TOTP enrolled through the admin endpoint; approving
// needs a right code, used once.
func TestApprovalStepUp(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	s := startWith(t, approvalConfig(t, dir), server.WithClock(clock))
	info, err := os.Stat(filepath.Join(dir, server.StepUpKeyFile))
	require.NoError(t, err, "a development step-up key is generated")
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	code, body := call(t, "POST", s.url+"/v1/approvers/bob/totp?tenant_id=acme", "dev_admin_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	var enrolled struct {
		Secret string `json:"secret"`
	}
	require.NoError(t, json.Unmarshal(body, &enrolled))
	good, err := totp.GenerateCode(enrolled.Secret, clock())
	require.NoError(t, err)
	bad := "000000"
	if good == bad {
		bad = "111111"
	}

	first := refund(t, s.url, 20000).ActionID
	status, errCode := decide(t, s.url, "bob", first, map[string]any{"decision": "approve"})
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "step_up_required", errCode)
	status, errCode = decide(t, s.url, "bob", first, map[string]any{"decision": "approve", "totp": bad})
	assert.Equal(t, http.StatusForbidden, status)
	assert.Equal(t, "invalid_code", errCode)
	assert.Len(t, getApproval(t, s.url, first).Receipts, 1, "refused step-ups record nothing")
	status, errCode = decide(t, s.url, "bob", first, map[string]any{"decision": "approve", "totp": good})
	require.Equal(t, http.StatusOK, status, errCode)
	assert.Equal(t, "approved", getApproval(t, s.url, first).Status)

	second := refund(t, s.url, 30000).ActionID
	status, errCode = decide(t, s.url, "bob", second, map[string]any{"decision": "approve", "totp": good})
	assert.Equal(t, http.StatusForbidden, status, "the same code again")
	assert.Equal(t, "code_replayed", errCode)
	assert.Len(t, getApproval(t, s.url, second).Receipts, 1)
}

// TestApprovalExpiresWhileStopped: a request whose expiry passes while
// the server is stopped is expired at the next start, never executed.
func TestApprovalExpiresWhileStopped(t *testing.T) {
	dir := t.TempDir()
	var now atomic.Pointer[time.Time]
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	now.Store(&t0)
	clock := func() time.Time { return *now.Load() }
	never := func(context.Context, *oars.Action) (json.RawMessage, error) {
		t.Error("an expired action was executed")
		return nil, nil
	}

	first := startWith(t, approvalConfig(t, dir), server.WithClock(clock), server.WithExecutor("payments", never))
	id := refund(t, first.url, 500).ActionID
	status, _ := decide(t, first.url, "bob", id, map[string]any{"decision": "approve"})
	require.Equal(t, http.StatusOK, status, "one of two votes")
	first.stop()

	later := t0.Add(2 * time.Hour)
	now.Store(&later)
	second := startWith(t, approvalConfig(t, dir), server.WithClock(clock), server.WithExecutor("payments", never))
	v := getApproval(t, second.url, id)
	assert.Equal(t, "expired", v.Status, "status after the restart")
	assert.Equal(t, []string{"pending_approval", "vote", "expired"}, statuses(t, v.Receipts))
	status, code := decide(t, second.url, "carol", id, map[string]any{"decision": "approve"})
	assert.Equal(t, http.StatusConflict, status)
	assert.Equal(t, "expired", code)
	verifyChain(t, second.url, v.Receipts)
}

// TestExecutorRunsAllowedActions: an allowed action of a tool with an
// executor is executed before POST /v1/actions answers.
func TestExecutorRunsAllowedActions(t *testing.T) {
	ex := newExecutions()
	s := startWith(t, approvalConfig(t, t.TempDir()), server.WithExecutor("payments", ex.exec))
	out := refund(t, s.url, 50)
	assert.Equal(t, "executed", out.Status)
	assert.Equal(t, []string{"allowed", "executing", "executed"}, statuses(t, out.Receipts))
	assert.Equal(t, out.ActionID, ex.next(t))
	verifyChain(t, s.url, out.Receipts)
}

func TestServerOptions(t *testing.T) {
	fn := func(context.Context, *oars.Action) (json.RawMessage, error) { return nil, nil }
	for _, tt := range []struct {
		name string
		opts []server.Option
	}{
		{"empty tool", []server.Option{server.WithExecutor("", fn)}},
		{"nil function", []server.Option{server.WithExecutor("payments", nil)}},
		{"tool twice", []server.Option{server.WithExecutor("payments", fn), server.WithExecutor("payments", fn)}},
		{"nil clock", []server.Option{server.WithClock(nil)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := server.New(context.Background(), approvalConfig(t, t.TempDir()), slog.New(slog.DiscardHandler), tt.opts...)
			require.Error(t, err, "New(%s)", tt.name)
		})
	}
}

// crashChildEnv names the data directory of the crash child.
const crashChildEnv = "OARS_TEST_APPROVAL_CRASH_DIR"

// TestApprovalCrashChild is not a test on its own: TestApprovalCrashBeforeExecution
// runs the test binary again with only this test selected. The child
// serves the data directory without an executor for payments, prints its
// URL and waits to be killed.
func TestApprovalCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("runs only as the child process of TestApprovalCrashBeforeExecution")
	}
	// Bound the child's life in case the parent dies without killing it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := server.New(ctx, approvalConfig(t, dir), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fmt.Printf("listening http://%s\n", ln.Addr())
	_ = srv.Serve(ctx, ln)
}

// startChild runs the test named run of this binary as a child process,
// with env ("NAME=value") added to its environment, and returns the URL
// it prints on a line "listening URL" and a function that SIGKILLs it
// and waits for it to end. The child is killed at cleanup if still
// running.
func startChild(t *testing.T, run, env string) (base string, kill func()) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+run+"$", "-test.count=1")
	cmd.Env = append(os.Environ(), env)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	killed := false
	t.Cleanup(func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
			base = rest
			break
		}
	}
	require.NotEmpty(t, base, "the child's URL")
	return base, func() {
		t.Helper()
		require.NoError(t, cmd.Process.Kill(), "SIGKILL the child")
		_ = cmd.Wait()
		killed = true
	}
}

// TestApprovalCrashBeforeExecution approves an action on a server that
// cannot execute it, kills that server (SIGKILL) and starts one that can
// on the same data directory: the action is executed exactly once, at
// start-up, and a further restart executes nothing.
func TestApprovalCrashBeforeExecution(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	dir := t.TempDir()
	base, kill := startChild(t, "TestApprovalCrashChild", crashChildEnv+"="+dir)

	id := refund(t, base, 700).ActionID
	for _, who := range []string{"bob", "carol"} {
		status, code := decide(t, base, who, id, map[string]any{"decision": "approve"})
		require.Equal(t, http.StatusOK, status, "vote by %s: %s", who, code)
	}
	require.Equal(t, "approved", getApproval(t, base, id).Status)
	kill()

	ex := newExecutions()
	s := startWith(t, approvalConfig(t, dir), server.WithExecutor("payments", ex.exec))
	assert.Equal(t, id, ex.next(t), "executed at start-up")
	out, err := s.srv.Guard().Wait(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	s.stop()

	again := startWith(t, approvalConfig(t, dir), server.WithExecutor("payments", ex.exec))
	ids, err := again.srv.Guard().ApprovedUnexecuted(t.Context())
	require.NoError(t, err)
	assert.Empty(t, ids, "nothing left to execute")
	v := getApproval(t, again.url, id)
	assert.Equal(t, []string{"pending_approval", "vote", "vote", "approved", "executing", "executed"}, statuses(t, v.Receipts))
	verifyChain(t, again.url, v.Receipts)
	again.stop()
	assert.Equal(t, int32(1), ex.n.Load(), "executions")
	verifyLedgerFile(t, dir)
}

// TestWebhookNotification: with webhook_url set, an action held for
// approval is announced by a signed POST linking to the API.
func TestWebhookNotification(t *testing.T) {
	const secret = "webhook-secret-0123456789"
	type delivery struct {
		body      []byte
		signature string
	}
	got := make(chan delivery, 4)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got <- delivery{body: body, signature: r.Header.Get("Oars-Signature")}
	}))
	defer hook.Close()

	cfg := approvalConfig(t, t.TempDir())
	cfg.WebhookURL = hook.URL + "/oars"
	cfg.WebhookSecret = secret
	cfg.PublicBaseURL = "https://oars.example.com"
	require.NoError(t, cfg.Validate())
	s := startWith(t, cfg)
	id := refund(t, s.url, 500).ActionID

	var d delivery
	select {
	case d = <-got:
	case <-time.After(time.Minute): // a safety net against a hang, not a timing assertion
		t.Fatal("no webhook notification")
	}
	require.NoError(t, webhook.VerifySignature([]byte(secret), d.signature, d.body, time.Now(), time.Hour))
	var p webhook.Payload
	require.NoError(t, json.Unmarshal(d.body, &p))
	assert.Equal(t, id, p.ActionID)
	assert.Equal(t, "https://oars.example.com/v1/approvals/"+id+"/decision", p.Links.Decision)
	assert.Equal(t, []string{"finance-approver"}, p.Requirement.Roles)
	assert.Equal(t, 2, p.Requirement.Quorum)
}

// TestShutdownWaitsForExecution: an approved action under way when the
// server stops is finished and recorded before the store closes.
func TestShutdownWaitsForExecution(t *testing.T) {
	dir := t.TempDir()
	started, release := make(chan string, 1), make(chan struct{})
	slow := func(ctx context.Context, a *oars.Action) (json.RawMessage, error) {
		started <- a.ID
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return json.RawMessage(`{"refund_id":"re_slow"}`), nil
	}
	s := startWith(t, approvalConfig(t, dir), server.WithExecutor("payments", slow))
	id := refund(t, s.url, 800).ActionID
	for _, who := range []string{"bob", "carol"} {
		status, code := decide(t, s.url, who, id, map[string]any{"decision": "approve"})
		require.Equal(t, http.StatusOK, status, code)
	}
	require.Equal(t, id, <-started)
	stopped := make(chan struct{})
	go func() { s.stop(); close(stopped) }()
	close(release)
	<-stopped

	st, err := sqlite.Open(context.Background(), filepath.Join(dir, server.DBFile), sqlite.WithReadOnly())
	require.NoError(t, err)
	defer st.Close()
	recs, err := ledger.NewQuerier(st).ActionReceipts(context.Background(), id)
	require.NoError(t, err)
	var last struct {
		Status string `json:"status"`
	}
	require.NoError(t, json.Unmarshal(recs[len(recs)-1].Leaf, &last))
	assert.Equal(t, "executed", last.Status, "the execution under way was recorded before shutdown")
}
