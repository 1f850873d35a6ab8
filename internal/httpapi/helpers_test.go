package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/internal/testutil"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// newStore returns the ledger store the tests run on. Swap this line to
// run the whole suite on another store.
// newStore returns the store under the test server: a real SQLite file,
// the oarsd default.
func newStore(t testing.TB) ledger.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "oars.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

const (
	origin = "oars.test/log"

	// The tenant every role token has, and the one none of them has.
	ownTenant   = "acme"
	otherTenant = "globex"
	boundAgent  = "bot-1"
)

// Token secrets. They are planted in requests so the tests can check that
// no response or log line ever repeats them.
var secrets = map[string]string{
	"root":     "oars_rootsecretPLANTEDaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	"admin":    "oars_adminsecretPLANTEDbbbbbbbbbbbbbbbbbbbbbbbbbbb",
	"operator": "oars_operatorsecretPLANTEDcccccccccccccccccccccccc",
	"auditor":  "oars_auditorsecretPLANTEDddddddddddddddddddddddddd",
	"agent":    "oars_agentsecretPLANTEDeeeeeeeeeeeeeeeeeeeeeeeeeee",
	"approver": "oars_approversecretPLANTEDffffffffffffffffffffffff",
	"ops2":     "oars_opstwosecretPLANTEDgggggggggggggggggggggggggg",
	// Approvers of the approval tests (see approverTokens).
	"alice": "oars_alicesecretPLANTEDiiiiiiiiiiiiiiiiiiiiiiiiiii",
	"bob":   "oars_bobsecretPLANTEDjjjjjjjjjjjjjjjjjjjjjjjjjjjjj",
	"carol": "oars_carolsecretPLANTEDkkkkkkkkkkkkkkkkkkkkkkkkkkk",
	"eve":   "oars_evesecretPLANTEDlllllllllllllllllllllllllllll",
	"gina":  "oars_ginasecretPLANTEDmmmmmmmmmmmmmmmmmmmmmmmmmmmm",
}

// badSecret is a well-formed token nobody has.
const badSecret = "oars_badsecretPLANTEDhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"

func tokens() []identity.Token {
	role := func(name string, r identity.Role, tenants []string, agent string) identity.Token {
		return identity.Token{Name: name, Hash: identity.HashToken(secrets[name]), Roles: []identity.Role{r}, Tenants: tenants, AgentID: agent}
	}
	own := []string{ownTenant}
	withGroups := func(t identity.Token, groups ...string) identity.Token {
		t.Groups = groups
		return t
	}
	return []identity.Token{
		role("root", identity.RoleAdmin, []string{"*"}, ""),
		withGroups(role("admin", identity.RoleAdmin, own, ""), "finance"),
		role("operator", identity.RoleOperator, own, ""),
		role("auditor", identity.RoleAuditor, own, ""),
		role("agent", identity.RoleAgent, own, boundAgent),
		withGroups(role("approver", identity.RoleApprover, own, ""), "finance"),
		role("ops2", identity.RoleOperator, []string{ownTenant, "initech"}, ""),
	}
}

// A policy that allows small payments, holds big ones and denies the rest.
const policyV1 = `
id: payments
version: "1"
default: deny
rules:
  - id: small
    when: action.tool_id == "payments" && has(input.amount) && input.amount <= 100
    effect: allow
    reason: small payments are allowed
  - id: big
    when: action.tool_id == "payments" && has(input.amount) && input.amount > 100
    effect: require_approval
    reason: big payments need approval
    approval:
      roles: [finance]
  - id: admins
    when: '"payments-admin" in principal.roles'
    effect: allow
    reason: payments admins may do anything
`

// policyV2 allows nothing.
const policyV2 = `
id: payments
version: "2"
default: deny
rules:
  - id: frozen
    when: action.tool_id == "payments"
    effect: deny
    reason: payments are frozen
`

func mustPolicy(t testing.TB, src string) *policy.Set {
	t.Helper()
	p, err := policy.Parse("payments.yaml", []byte(src))
	require.NoError(t, err)
	set, err := policy.NewSet(p)
	require.NoError(t, err)
	return set
}

type options struct {
	rateLimit     float64
	rateBurst     int
	maxBodyBytes  int64
	cors          []string
	publicBaseURL string
	ready         func(ctx context.Context) error
	reload        func(ctx context.Context) (*policy.Set, error)
	noRegistry    bool
	// Approvals: executors by tool, the hook told of approvals, the
	// clock of the Guard and of step-up, and extra tokens.
	executors   map[string]oars.ExecFunc
	approved    func(actionID string)
	clock       func() time.Time
	extraTokens []identity.Token
	policy      string
	// auth, if set, is tried before the test tokens.
	auth identity.Authenticator
	// passports, if set, is the Guard's passport source and the API's
	// passport store.
	passports *identity.PassportCache
}

// testServer is a real oarsd API over loopback: a Guard with real Ed25519
// keys over a real ledger.
type testServer struct {
	t           testing.TB
	srv         *httptest.Server
	guard       *oars.Guard
	ledger      *ledger.Ledger
	keys        *receipt.KeySet
	verifierKey string
	reg         *prometheus.Registry
	logs        *testutil.SyncBuffer
	inputs      *memInputs
	// responses keeps every response body and header seen, for leak
	// checks.
	mu        sync.Mutex
	responses [][]byte
}

func newTestServer(t testing.TB, opts options) *testServer {
	t.Helper()
	ctx := context.Background()
	signer, err := receipt.NewEd25519Signer("test-receipts", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)))
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	cpKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize))
	cpSigner, err := ledger.NewCheckpointSigner(origin, cpKey)
	require.NoError(t, err)
	vkey, err := ledger.VerifierKey(origin, cpKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	store := newStore(t)
	l, err := ledger.New(ctx, store, ledger.WithCheckpointSigner(cpSigner))
	require.NoError(t, err)
	clock := opts.clock
	if clock == nil {
		clock = time.Now
	}
	src := opts.policy
	if src == "" {
		src = policyV1
	}
	guardOpts := []oars.Option{oars.WithClock(clock)}
	if opts.passports != nil {
		guardOpts = append(guardOpts, oars.WithPassports(opts.passports))
	}
	guard, err := oars.New(mustPolicy(t, src), keys, l, guardOpts...)
	require.NoError(t, err)
	var auth identity.Authenticator
	auth, err = identity.NewTokenSet(append(tokens(), opts.extraTokens...))
	require.NoError(t, err)
	if opts.auth != nil {
		auth = identity.Chain(opts.auth, auth)
	}
	enrollments, ok := store.(stepup.Store)
	if !ok {
		enrollments = &stepup.MemStore{}
	}
	totp, err := stepup.New(enrollments, bytes.Repeat([]byte{3}, stepup.KeySize), stepup.WithClock(clock))
	require.NoError(t, err)

	logs := &testutil.SyncBuffer{}
	ts := &testServer{t: t, guard: guard, ledger: l, keys: keys, verifierKey: vkey, logs: logs, inputs: &memInputs{}}
	if !opts.noRegistry {
		ts.reg = prometheus.NewRegistry()
	}
	cfg := httpapi.Config{
		Guard:          guard,
		Keys:           keys,
		Auth:           auth,
		Origin:         origin,
		VerifierKey:    vkey,
		ReloadPolicies: opts.reload,
		Logger:         newJSONLogger(logs),
		Registry:       ts.reg,
		MaxBodyBytes:   opts.maxBodyBytes,
		RateLimit:      opts.rateLimit,
		RateBurst:      opts.rateBurst,
		CORSOrigins:    opts.cors,
		PublicBaseURL:  opts.publicBaseURL,
		Ready:          opts.ready,
		Version:        "test",
		StepUp:         totp,
		Executors:      opts.executors,
		Inputs:         ts.inputs,
		Approved:       opts.approved,
		Clock:          clock,
	}
	if opts.passports != nil {
		cfg.Passports = opts.passports
	}
	h, err := httpapi.New(cfg)
	require.NoError(t, err)
	ts.srv = httptest.NewServer(h)
	t.Cleanup(ts.srv.Close)
	return ts
}

// newJSONLogger logs everything, as JSON lines, to w.
func newJSONLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// request is one HTTP request of a test.
type request struct {
	method, path string
	token        string // a key of secrets, "" for none, or "bad"
	body         string
	contentType  string // default application/json when body is set
	header       map[string]string
	bodyReader   io.Reader // overrides body (unknown length)
}

// response is what came back.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (ts *testServer) do(req request) response {
	ts.t.Helper()
	var body io.Reader
	switch {
	case req.bodyReader != nil:
		body = req.bodyReader
	case req.body != "":
		body = strings.NewReader(req.body)
	}
	r, err := http.NewRequest(req.method, ts.srv.URL+req.path, body)
	require.NoError(ts.t, err)
	if req.body != "" || req.bodyReader != nil {
		ct := req.contentType
		if ct == "" {
			ct = "application/json"
		}
		if ct != "none" {
			r.Header.Set("Content-Type", ct)
		}
	}
	switch req.token {
	case "":
	case "bad":
		r.Header.Set("Authorization", "Bearer "+badSecret)
	default:
		secret, ok := secrets[req.token]
		require.True(ts.t, ok, "unknown token %q", req.token)
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	resp, err := ts.srv.Client().Do(r)
	require.NoError(ts.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(ts.t, err)
	ts.mu.Lock()
	var hdr bytes.Buffer
	_ = resp.Header.Write(&hdr)
	ts.responses = append(ts.responses, data, hdr.Bytes())
	ts.mu.Unlock()
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// errorResponse is the JSON error envelope.
type errorResponse struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Details struct {
			RequestID string `json:"request_id"`
		} `json:"details"`
	} `json:"error"`
	Timestamp string `json:"timestamp"`
}

func (r response) errorBody(t testing.TB) errorResponse {
	t.Helper()
	var e errorResponse
	require.NoError(t, json.Unmarshal(r.body, &e), "error body %s", r.body)
	return e
}

// actionResult is the body of POST /v1/actions and GET /v1/actions/{id}.
type actionResult struct {
	ActionID      string            `json:"action_id"`
	Status        string            `json:"status"`
	TenantID      string            `json:"tenant_id"`
	AgentID       string            `json:"agent_id"`
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
	Replayed      bool              `json:"replayed"`
}

func (r response) action(t testing.TB) actionResult {
	t.Helper()
	var a actionResult
	require.NoError(t, json.Unmarshal(r.body, &a), "action body %s", r.body)
	return a
}

// actionBody returns a POST /v1/actions body.
func actionBody(tenant, agent string, amount int) string {
	b, _ := json.Marshal(map[string]any{
		"tenant_id":    tenant,
		"agent_id":     agent,
		"user_context": map[string]any{"user_id": "alice"},
		"resource":     map[string]any{"tool_id": "payments", "operation": "refund", "target": "order/<42>&x"},
		"input":        map[string]any{"amount": amount, "note": "<b>&</b>"},
	})
	return string(b)
}

// submit posts an action as the token and requires success.
func (ts *testServer) submit(token, tenant, agent string, amount int) actionResult {
	ts.t.Helper()
	resp := ts.do(request{method: "POST", path: "/v1/actions", token: token, body: actionBody(tenant, agent, amount)})
	require.Equal(ts.t, http.StatusCreated, resp.status, "POST /v1/actions: %s", resp.body)
	return resp.action(ts.t)
}

func (ts *testServer) size() int64 {
	ts.t.Helper()
	n, err := ts.ledger.Size(context.Background())
	require.NoError(ts.t, err)
	return n
}

// receiptID returns the receipt_id of a raw receipt.
func receiptID(t testing.TB, raw []byte) string {
	t.Helper()
	var r struct {
		ReceiptID string `json:"receipt_id"`
	}
	require.NoError(t, json.Unmarshal(raw, &r))
	return r.ReceiptID
}

// memInputs is an httpapi.InputStore in memory.
type memInputs struct {
	mu sync.Mutex
	m  map[string][]byte
	// fail, if set, is returned by PutInput.
	fail error
}

var _ httpapi.InputStore = (*memInputs)(nil)

func (s *memInputs) PutInput(_ context.Context, actionID, _ string, input []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	if s.m == nil {
		s.m = map[string][]byte{}
	}
	if _, ok := s.m[actionID]; !ok {
		s.m[actionID] = bytes.Clone(input)
	}
	return nil
}

func (s *memInputs) get(actionID string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.m[actionID]
	return in, ok
}

func (s *memInputs) setFail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = err
}
