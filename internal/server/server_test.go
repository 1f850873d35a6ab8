package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/server"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// running is an oarsd serving on a loopback port.
type running struct {
	url  string
	stop func()
}

// start runs a server over cfg on 127.0.0.1 until stop is called (or the
// test ends); stop waits for Serve to return, which closes the store.
func start(t *testing.T, cfg *config.Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
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
	return &running{url: "http://" + ln.Addr().String(), stop: stop}
}

func devConfig(t *testing.T, dataDir string) *config.Config {
	t.Helper()
	cfg := config.Defaults()
	cfg.DataDir = dataDir
	require.NoError(t, cfg.Validate())
	return &cfg
}

func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, data
}

type actionResponse struct {
	ActionID      string            `json:"action_id"`
	Status        string            `json:"status"`
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
	Output        json.RawMessage   `json:"output"`
	Queued        bool              `json:"queued"`
}

func submit(t *testing.T, base string, amount int) actionResponse {
	t.Helper()
	code, body := call(t, "POST", base+"/v1/actions", "dev_operator_token", map[string]any{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": map[string]any{"user_id": "alice"},
		"resource":     map[string]any{"tool_id": "payments", "operation": "refund", "target": "order/" + strconv.Itoa(amount)},
		"input":        map[string]any{"amount": amount, "currency": "EUR"},
	})
	require.Equal(t, http.StatusCreated, code, string(body))
	var out actionResponse
	require.NoError(t, json.Unmarshal(body, &out))
	return out
}

// TestQuickstart is the README's quickstart against a real oarsd on a real
// SQLite file over loopback: submit, fetch, verify every receipt offline
// with the published keys, and prove the receipt is in the checkpointed
// ledger.
func TestQuickstart(t *testing.T) {
	srv := start(t, devConfig(t, t.TempDir()))

	for _, tt := range []struct {
		amount int
		status string
	}{{50, "allowed"}, {500, "pending_approval"}} {
		out := submit(t, srv.url, tt.amount)
		assert.Equal(t, tt.status, out.Status)

		code, body := call(t, "GET", srv.url+"/v1/actions/"+out.ActionID, "dev_auditor_token", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var got actionResponse
		require.NoError(t, json.Unmarshal(body, &got))
		require.Equal(t, out.Receipts, got.Receipts)

		// Offline verification with the published JWKS.
		code, jwks := call(t, "GET", srv.url+"/.well-known/oap/jwks.json", "", nil)
		require.Equal(t, http.StatusOK, code)
		keys, err := receipt.ParseJWKS(jwks)
		require.NoError(t, err)
		v, err := receipt.NewVerifier(keys)
		require.NoError(t, err)
		raws := make([][]byte, len(got.Receipts))
		for i, r := range got.Receipts {
			raws[i] = r
		}
		_, err = v.VerifyChain(raws)
		require.NoError(t, err)

		// The receipt is in the ledger the checkpoint commits to.
		code, vkey := call(t, "GET", srv.url+"/v1/ledger/verifier-key", "dev_auditor_token", nil)
		require.Equal(t, http.StatusOK, code)
		verifier, err := note.NewVerifier(string(bytes.TrimSpace(vkey)))
		require.NoError(t, err)
		code, cpText := call(t, "GET", srv.url+"/v1/ledger/checkpoint", "dev_auditor_token", nil)
		require.Equal(t, http.StatusOK, code)
		cp, err := ledger.ParseCheckpoint(cpText, verifier)
		require.NoError(t, err)

		idx := got.LedgerIndexes[0]
		code, leaf := call(t, "GET", srv.url+"/v1/ledger/entries/"+strconv.FormatInt(idx, 10), "dev_auditor_token", nil)
		require.Equal(t, http.StatusOK, code)
		assert.Equal(t, []byte(got.Receipts[0]), leaf)
		code, body = call(t, "GET", srv.url+"/v1/ledger/proofs/inclusion?index="+strconv.FormatInt(idx, 10)+"&tree_size="+strconv.FormatInt(cp.Size, 10), "dev_auditor_token", nil)
		require.Equal(t, http.StatusOK, code, string(body))
		var proof struct {
			Hashes []string `json:"hashes"`
		}
		require.NoError(t, json.Unmarshal(body, &proof))
		rp := make(tlog.RecordProof, len(proof.Hashes))
		for i, h := range proof.Hashes {
			b, err := base64.StdEncoding.DecodeString(h)
			require.NoError(t, err)
			copy(rp[i][:], b)
		}
		require.NoError(t, ledger.CheckInclusion(rp, cp.Size, cp.Root, idx, leaf))
	}
}

// TestRestartKeepsLedgerAndKey stops a server and starts another on the
// same data directory: the key, the ledger and old receipts survive, and
// new entries extend the same log.
func TestRestartKeepsLedgerAndKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "oars-data") // created by the server
	first := start(t, devConfig(t, dir))
	before := submit(t, first.url, 20)
	_, jwks1 := call(t, "GET", first.url+"/.well-known/oap/jwks.json", "", nil)
	first.stop()

	info, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), info.Mode().Perm(), "data dir")
	info, err = os.Stat(filepath.Join(dir, server.KeyFile))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "signing key")

	second := start(t, devConfig(t, dir))
	_, jwks2 := call(t, "GET", second.url+"/.well-known/oap/jwks.json", "", nil)
	assert.JSONEq(t, string(jwks1), string(jwks2), "the key is reused")
	code, body := call(t, "GET", second.url+"/v1/actions/"+before.ActionID, "dev_auditor_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	after := submit(t, second.url, 30)
	assert.Greater(t, after.LedgerIndexes[0], before.LedgerIndexes[0])
	second.stop()

	// The whole ledger verifies offline, signatures and chains included.
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, server.DBFile), sqlite.WithReadOnly())
	require.NoError(t, err)
	defer st.Close()
	keys, err := receipt.ParseJWKS(jwks2)
	require.NoError(t, err)
	v, err := receipt.NewVerifier(keys)
	require.NoError(t, err)
	rep, err := ledger.Verify(context.Background(), st, receipt.NewLogChecker(v))
	require.NoError(t, err)
	// Two policy events (one per start) and two decisions.
	assert.Equal(t, int64(4), rep.Size)
}

// TestKeyRotation replaces the signing key between two runs: receipts of
// the old key still verify with the published JWKS, which lists both.
func TestKeyRotation(t *testing.T) {
	dir := t.TempDir()
	first := start(t, devConfig(t, dir))
	old := submit(t, first.url, 10)
	first.stop()

	require.NoError(t, os.Remove(filepath.Join(dir, server.KeyFile)))
	_, key, err := receipt.GenerateKey("")
	require.NoError(t, err)
	require.NoError(t, receipt.WritePrivateKeyFile(filepath.Join(dir, server.KeyFile), "key-2", key))

	second := start(t, devConfig(t, dir))
	fresh := submit(t, second.url, 11)
	_, jwks := call(t, "GET", second.url+"/.well-known/oap/jwks.json", "", nil)
	keys, err := receipt.ParseJWKS(jwks)
	require.NoError(t, err)
	assert.Equal(t, 2, keys.Len())
	v, err := receipt.NewVerifier(keys)
	require.NoError(t, err)
	for _, r := range [][]byte{old.Receipts[0], fresh.Receipts[0]} {
		_, err := v.Verify(r)
		require.NoError(t, err)
	}
	got, err := v.Verify(fresh.Receipts[0])
	require.NoError(t, err)
	assert.Equal(t, "key-2", got.Signature.Kid)
}

// TestHotReloadBrokenPolicyFile edits the policy file under a running
// server: a broken file is refused and the old policy keeps deciding; a
// fixed file takes over.
func TestHotReloadBrokenPolicyFile(t *testing.T) {
	dir := t.TempDir()
	polDir := filepath.Join(t.TempDir(), "policies")
	require.NoError(t, os.MkdirAll(polDir, 0o700))
	polFile := filepath.Join(polDir, "p.yaml")
	require.NoError(t, os.WriteFile(polFile, server.DemoPolicy, 0o600))
	cfg := devConfig(t, dir)
	cfg.Policy = polDir
	srv := start(t, cfg)

	require.NoError(t, os.WriteFile(polFile, []byte("id: broken\nversion: \"2\"\nrules:\n  - id: r\n    when: action.nope ==\n    effect: allow\n    reason: x\n"), 0o600))
	code, body := call(t, "POST", srv.url+"/v1/policies/reload", "dev_admin_token", nil)
	require.Equal(t, http.StatusUnprocessableEntity, code, string(body))
	assert.Contains(t, string(body), "p.yaml")
	assert.Equal(t, "allowed", submit(t, srv.url, 5).Status, "the old policy still decides")

	require.NoError(t, os.WriteFile(polFile, []byte("id: strict\nversion: \"3\"\ndefault: deny\nrules:\n  - {id: none, when: 'false', effect: allow, reason: never}\n"), 0o600))
	code, body = call(t, "POST", srv.url+"/v1/policies/reload", "dev_admin_token", nil)
	require.Equal(t, http.StatusOK, code, string(body))
	assert.Equal(t, "denied", submit(t, srv.url, 5).Status, "the new policy decides")

	code, _ = call(t, "POST", srv.url+"/v1/policies/reload", "dev_operator_token", nil)
	assert.Equal(t, http.StatusForbidden, code, "only admins reload")
}

func TestProductionNeedsAnExistingKey(t *testing.T) {
	cfg := devConfig(t, t.TempDir())
	cfg.Env = config.EnvProduction
	cfg.SigningKey = filepath.Join(t.TempDir(), "missing.key")
	_, err := server.New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist), "got %v", err)
	_, statErr := os.Stat(cfg.SigningKey)
	assert.True(t, errors.Is(statErr, os.ErrNotExist), "no key was generated")
}
