package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/postgres"
	"github.com/oarsdev/oars/storage/sqlite"
)

// ledgerDir is a data directory holding a SQLite ledger of signed entries
// and the JWKS of their key.
type ledgerDir struct {
	dir    string
	root   string // base64 root hash of the whole ledger
	size   int
	signer receipt.Signer
}

// newLedgerDir builds a data directory with a ledger of two actions (three
// and two receipts) and one event, all signed with a fresh key, and writes
// the key's JWKS to DIR/jwks.json if withJWKS.
func newLedgerDir(t *testing.T, withJWKS bool) *ledgerDir {
	t.Helper()
	ctx := t.Context()
	signer, _, err := receipt.GenerateKey("ledger-test")
	require.NoError(t, err, "GenerateKey")
	ld := &ledgerDir{dir: t.TempDir(), signer: signer}
	if withJWKS {
		writeJWKS(t, filepath.Join(ld.dir, ledgerJWKSFile), signer)
	}

	s, err := sqlite.Open(ctx, filepath.Join(ld.dir, ledgerDBFile))
	require.NoError(t, err, "sqlite.Open")
	defer func() { require.NoError(t, s.Close(), "Close") }()
	l, err := ledger.New(ctx, s)
	require.NoError(t, err, "ledger.New")

	appendLeaf := func(leaf []byte) {
		_, err := l.Append(ctx, leaf)
		require.NoError(t, err, "Append")
		ld.size++
	}
	ev, err := receipt.SignEvent(ctx, signer, &receipt.Event{
		Spec: receipt.EventSpec, EventID: "evt_1", Event: "policy.loaded", Actor: "oarsd",
		Details: []byte(`{"digest":"sha256:00"}`), IssuedAt: time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC),
	})
	require.NoError(t, err, "SignEvent")
	appendLeaf(ev)
	c := chains{}
	for i, a := range []struct {
		action string
		status receipt.Status
	}{
		{"act_1", receipt.StatusPendingApproval}, {"act_2", receipt.StatusAllowed},
		{"act_1", receipt.StatusApproved}, {"act_2", receipt.StatusExecuted}, {"act_1", receipt.StatusExecuted},
	} {
		leaf := signReceipt(t, signer, fmt.Sprintf("rcpt_%d", i), a.action, a.status, c)
		appendLeaf(leaf)
	}
	root, err := l.TreeHash(ctx, int64(ld.size))
	require.NoError(t, err, "TreeHash")
	ld.root = root.String()
	return ld
}

// writeJWKS writes the JWKS of signer's public key to path.
func writeJWKS(t *testing.T, path string, signer receipt.Signer) {
	t.Helper()
	ks, err := receipt.NewKeySet(signer)
	require.NoError(t, err, "NewKeySet")
	jwks, err := ks.MarshalJWKS()
	require.NoError(t, err, "MarshalJWKS")
	require.NoError(t, os.WriteFile(path, jwks, 0o644))
}

// chains tracks the last receipt of each action, so the next one chains
// to it.
type chains map[string]struct {
	seq    int64
	digest string
}

// signReceipt signs the next receipt of action, chained to the previous one
// in c.
func signReceipt(t *testing.T, signer receipt.Signer, id, action string, status receipt.Status, c chains) []byte {
	t.Helper()
	last := c[action]
	r := &receipt.Receipt{
		Spec: receipt.Spec, ReceiptID: id, ActionID: action, Seq: last.seq + 1, PrevReceiptDigest: last.digest,
		Status: status, Mode: receipt.ModeEnforce, TenantID: "acme", AgentID: "billing-bot",
		Resource:    receipt.Resource{ToolID: "stripe", Operation: "refund"},
		InputDigest: receipt.Digest([]byte(`{"amount":5}`)),
		IssuedAt:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	leaf, err := receipt.Sign(t.Context(), signer, r)
	require.NoError(t, err, "Sign(%s)", id)
	last.seq, last.digest = r.Seq, receipt.Digest(leaf)
	c[action] = last
	return leaf
}

// execSQL runs statements on the ledger database of dir, bypassing the
// store, as someone with write access to the file could.
func execSQL(t *testing.T, dir string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, ledgerDBFile))
	require.NoError(t, err)
	defer db.Close()
	for _, q := range stmts {
		_, err := db.Exec(q)
		require.NoError(t, err, "Exec(%q)", q)
	}
}

func runLedger(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = cmdLedger(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCmdLedgerVerify(t *testing.T) {
	t.Setenv(ledgerPostgresEnv, "") // "no data dir flag" must not find a database
	signed := newLedgerDir(t, true)
	unsignedDir := newLedgerDir(t, false)

	// The JWKS of the unsigned dir's key, kept elsewhere.
	unsignedJWKS := filepath.Join(t.TempDir(), "keys.json")
	writeJWKS(t, unsignedJWKS, unsignedDir.signer)
	// A JWKS of another key: every signature fails.
	other, _, err := receipt.GenerateKey("other")
	require.NoError(t, err)
	otherPath := filepath.Join(t.TempDir(), "other.json")
	writeJWKS(t, otherPath, other)

	okOut := func(ld *ledgerDir, sig string) string {
		return fmt.Sprintf("ok: %d entries, root %s\n%s\n", ld.size, ld.root, sig)
	}
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{
			name:       "signed ledger, JWKS in data dir",
			args:       []string{"verify", "--data-dir", signed.dir},
			wantStdout: okOut(signed, "signatures: checked with 1 key"),
		},
		{
			name:       "no JWKS",
			args:       []string{"verify", "--data-dir", unsignedDir.dir},
			wantStdout: okOut(unsignedDir, "signatures: not checked (no JWKS)"),
		},
		{
			name:       "explicit JWKS",
			args:       []string{"verify", "--jwks", unsignedJWKS, "--data-dir", unsignedDir.dir},
			wantStdout: okOut(unsignedDir, "signatures: checked with 1 key"),
		},
		{
			name:       "wrong keys",
			args:       []string{"verify", "--data-dir", signed.dir, "--jwks", otherPath},
			wantCode:   1,
			wantStdout: "invalid: entry 0: unknown key: unknown key id\n",
		},
		{
			name:      "missing data dir",
			args:      []string{"verify", "--data-dir", filepath.Join(t.TempDir(), "nope")},
			wantCode:  2,
			stderrHas: "data dir",
		},
		{
			name:      "no ledger in data dir",
			args:      []string{"verify", "--data-dir", t.TempDir()},
			wantCode:  2,
			stderrHas: "no ledger (oars.db)",
		},
		{
			name:      "missing JWKS file",
			args:      []string{"verify", "--data-dir", signed.dir, "--jwks", filepath.Join(t.TempDir(), "none.json")},
			wantCode:  2,
			stderrHas: "read JWKS",
		},
		{name: "no subcommand", args: nil, wantCode: 2, stderrHas: "usage: oars ledger verify"},
		{name: "unknown subcommand", args: []string{"check"}, wantCode: 2, stderrHas: "unknown subcommand"},
		{name: "no data dir flag", args: []string{"verify"}, wantCode: 2, stderrHas: "--data-dir DIR or --postgres URL is required"},
		{name: "both stores", args: []string{"verify", "--data-dir", signed.dir, "--postgres", "postgres://localhost/db"}, wantCode: 2, stderrHas: "exactly one of --data-dir DIR and --postgres URL"},
		{name: "schema without postgres", args: []string{"verify", "--data-dir", signed.dir, "--schema", "s"}, wantCode: 2, stderrHas: "--schema goes with --postgres"},
		{name: "extra argument", args: []string{"verify", "--data-dir", signed.dir, "extra"}, wantCode: 2, stderrHas: "unexpected argument"},
		{name: "unknown flag", args: []string{"verify", "--bogus"}, wantCode: 2, stderrHas: "flag provided but not defined"},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStdout: ledgerUsageText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runLedger(tt.args...)
			assert.Equal(t, tt.wantCode, code, "oars ledger %v exit code (stderr %q)", tt.args, stderr)
			if tt.wantStdout != "" || tt.wantCode == 0 {
				assert.Equal(t, tt.wantStdout, stdout, "oars ledger %v stdout", tt.args)
			}
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas, "oars ledger %v stderr", tt.args)
			}
		})
	}

	// Verifying never creates a database in a directory without one.
	empty := t.TempDir()
	runLedger("verify", "--data-dir", empty)
	_, err = os.Stat(filepath.Join(empty, ledgerDBFile))
	assert.True(t, os.IsNotExist(err), "oars ledger verify created %s: Stat = %v", ledgerDBFile, err)
}

func TestCmdLedgerVerifyTampered(t *testing.T) {
	tests := []struct {
		name       string
		sql        string
		wantStdout string
	}{
		{
			name:       "leaf rewritten",
			sql:        `UPDATE leaves SET data = CAST('{"spec":"oars.receipt.v1","receipt_id":"forged"}' AS BLOB) WHERE idx = 3`,
			wantStdout: "invalid: entry 3: leaf hash mismatch\n",
		},
		{
			name:       "short hash",
			sql:        `UPDATE leaves SET hashes = x'00' WHERE idx = 0`,
			wantStdout: "invalid: damaged database",
		},
		{
			name:       "leaf deleted",
			sql:        `DELETE FROM leaves WHERE idx = 2`,
			wantStdout: "invalid: damaged database",
		},
		{
			// Storage index 2, the hash of leaves 0 and 1, is the second
			// hash in leaf 1's row.
			name:       "interior hash rewritten",
			sql:        `UPDATE leaves SET hashes = substr(hashes, 1, 32) || zeroblob(32) WHERE idx = 1`,
			wantStdout: "invalid: entry 1: stored hash mismatch\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ld := newLedgerDir(t, true)
			execSQL(t, ld.dir, tt.sql)
			code, stdout, stderr := runLedger("verify", "--data-dir", ld.dir)
			assert.Equal(t, 1, code, "exit code (stdout %q, stderr %q)", stdout, stderr)
			if strings.HasPrefix(tt.wantStdout, "invalid: damaged") {
				assert.True(t, strings.HasPrefix(stdout, "invalid: ") && strings.Contains(stdout, "database corrupt"),
					"stdout = %q, want an invalid line saying the database is corrupt", stdout)
				return
			}
			assert.Equal(t, tt.wantStdout, stdout, "stdout")
		})
	}
}

// TestCmdLedgerVerifyForgedEntry replaces a receipt with another that is
// well formed and correctly hashed but not signed by the ledger's key: only
// the signature check can catch it.
func TestCmdLedgerVerifyForgedEntry(t *testing.T) {
	ctx := t.Context()
	ld := newLedgerDir(t, true)
	forger, _, err := receipt.GenerateKey(ld.signer.KeyID())
	require.NoError(t, err)
	forged := signReceipt(t, forger, "rcpt_forged", "act_9", receipt.StatusAllowed, chains{})

	// Rebuild the whole ledger with the forged entry appended, hashes and
	// all, as an operator with write access could.
	s, err := sqlite.Open(ctx, filepath.Join(ld.dir, ledgerDBFile))
	require.NoError(t, err)
	l, err := ledger.New(ctx, s)
	require.NoError(t, err)
	idx, err := l.Append(ctx, forged)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	code, stdout, _ := runLedger("verify", "--data-dir", ld.dir)
	assert.Equal(t, 1, code, "exit code")
	assert.Equal(t, fmt.Sprintf("invalid: entry %d: signature: signature does not verify\n", idx), stdout, "stdout")

	// Without keys the forgery goes unnoticed: the hashes are consistent.
	require.NoError(t, os.Remove(filepath.Join(ld.dir, ledgerJWKSFile)))
	code, stdout, _ = runLedger("verify", "--data-dir", ld.dir)
	assert.Equal(t, 0, code, "exit code without JWKS (stdout %q)", stdout)
	assert.Contains(t, stdout, "signatures: not checked (no JWKS)")
}

// pgLedger is a ledger of signed receipts in a fresh PostgreSQL schema,
// dropped when the test ends.
type pgLedger struct {
	url    string
	schema string
	jwks   string // path of the JWKS of the signing key
	size   int
	root   string
}

// pgTestSchema returns the test database URL and a fresh schema named
// prefix and random hex digits, dropped at the end of the test; it skips
// the test (the PostgreSQL tests of what) when OARS_TEST_POSTGRES_URL is
// unset.
func pgTestSchema(t *testing.T, prefix, what string) (url, schema string) {
	t.Helper()
	url = os.Getenv("OARS_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("OARS_TEST_POSTGRES_URL not set: skipping the PostgreSQL tests of " + what)
	}
	var rnd [8]byte
	_, err := rand.Read(rnd[:])
	require.NoError(t, err)
	schema = prefix + hex.EncodeToString(rnd[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cleanup: connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return url, schema
}

// newPGLedger seeds a random schema of the database at
// OARS_TEST_POSTGRES_URL with five signed receipts of two actions, through
// a ledger.Ledger, and skips the test when the variable is unset.
func newPGLedger(t *testing.T) *pgLedger {
	t.Helper()
	url, schema := pgTestSchema(t, "oars_cli_test_", "oars ledger verify")
	ctx := t.Context()
	pl := &pgLedger{url: url, schema: schema}

	signer, _, err := receipt.GenerateKey("pg-test")
	require.NoError(t, err)
	pl.jwks = filepath.Join(t.TempDir(), "jwks.json")
	writeJWKS(t, pl.jwks, signer)

	s, err := postgres.Open(ctx, url, postgres.WithSchema(pl.schema))
	require.NoError(t, err, "postgres.Open")
	defer func() { require.NoError(t, s.Close(), "Close") }()
	l, err := ledger.New(ctx, s)
	require.NoError(t, err, "ledger.New")
	c := chains{}
	for i, a := range []struct {
		action string
		status receipt.Status
	}{
		{"act_1", receipt.StatusPendingApproval}, {"act_2", receipt.StatusAllowed},
		{"act_1", receipt.StatusApproved}, {"act_2", receipt.StatusExecuted}, {"act_1", receipt.StatusExecuted},
	} {
		_, err := l.Append(ctx, signReceipt(t, signer, fmt.Sprintf("rcpt_%d", i), a.action, a.status, c))
		require.NoError(t, err, "Append")
		pl.size++
	}
	root, err := l.TreeHash(ctx, int64(pl.size))
	require.NoError(t, err, "TreeHash")
	pl.root = root.String()
	return pl
}

// exec runs sql on the test database with the quoted schema name in place
// of every %s, bypassing the store.
func (pl *pgLedger) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pl.url)
	require.NoError(t, err, "connect")
	defer conn.Close(ctx)
	q := strings.ReplaceAll(sql, "%s", pgx.Identifier{pl.schema}.Sanitize())
	_, err = conn.Exec(ctx, q, args...)
	require.NoError(t, err, "Exec(%q)", q)
}

func TestCmdLedgerVerifyPostgres(t *testing.T) {
	pl := newPGLedger(t)
	ok := fmt.Sprintf("ok: %d entries, root %s\n", pl.size, pl.root)
	tests := []struct {
		name       string
		args       []string
		env        string // OARS_POSTGRES_URL
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{
			name:       "signed",
			args:       []string{"verify", "--postgres", pl.url, "--schema", pl.schema, "--jwks", pl.jwks},
			wantStdout: ok + "signatures: checked with 1 key\n",
		},
		{
			name:       "no keys",
			args:       []string{"verify", "--postgres", pl.url, "--schema", pl.schema},
			wantStdout: ok + "signatures: not checked (no JWKS)\n",
		},
		{
			name:       "URL from the environment",
			args:       []string{"verify", "--schema", pl.schema, "--jwks", pl.jwks},
			env:        pl.url,
			wantStdout: ok + "signatures: checked with 1 key\n",
		},
		{
			name:      "absent schema",
			args:      []string{"verify", "--postgres", pl.url, "--schema", pl.schema + "_absent"},
			wantCode:  2,
			stderrHas: "no ledger in schema",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(ledgerPostgresEnv, tt.env)
			code, stdout, stderr := runLedger(tt.args...)
			assert.Equal(t, tt.wantCode, code, "oars ledger %v exit code (stdout %q, stderr %q)", tt.args, stdout, stderr)
			if tt.wantCode == 0 {
				assert.Equal(t, tt.wantStdout, stdout, "oars ledger %v stdout", tt.args)
			}
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas, "oars ledger %v stderr", tt.args)
			}
		})
	}

	// Verifying an absent schema did not create it.
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, pl.url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	var exists bool
	require.NoError(t, conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, pl.schema+"_absent").Scan(&exists))
	assert.False(t, exists, "oars ledger verify created schema %s_absent", pl.schema)
}

func TestCmdLedgerVerifyPostgresTampered(t *testing.T) {
	tests := []struct {
		name       string
		sql        string
		args       []any
		wantStdout string
	}{
		{
			name:       "leaf rewritten",
			sql:        `UPDATE %s.oars_leaves SET data = $1 WHERE idx = 3`,
			args:       []any{[]byte(`{"spec":"oars.receipt.v1","receipt_id":"forged"}`)},
			wantStdout: "invalid: entry 3: leaf hash mismatch\n",
		},
		{
			name:       "interior hash rewritten",
			sql:        `UPDATE %s.oars_hashes SET hash = $1 WHERE idx = 2`,
			args:       []any{make([]byte, 32)},
			wantStdout: "invalid: entry 1: stored hash mismatch\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pl := newPGLedger(t)
			pl.exec(t, tt.sql, tt.args...)
			code, stdout, stderr := runLedger("verify", "--postgres", pl.url, "--schema", pl.schema, "--jwks", pl.jwks)
			assert.Equal(t, 1, code, "exit code (stdout %q, stderr %q)", stdout, stderr)
			assert.Equal(t, tt.wantStdout, stdout, "stdout")
		})
	}

	t.Run("leaf deleted", func(t *testing.T) {
		pl := newPGLedger(t)
		pl.exec(t, `DELETE FROM %s.oars_receipts WHERE idx = 4`)
		pl.exec(t, `DELETE FROM %s.oars_leaves WHERE idx = 4`)
		code, stdout, stderr := runLedger("verify", "--postgres", pl.url, "--schema", pl.schema)
		assert.Equal(t, 1, code, "exit code (stdout %q, stderr %q)", stdout, stderr)
		assert.True(t, strings.HasPrefix(stdout, "invalid: ") && strings.Contains(stdout, "corrupt"),
			"stdout = %q, want an invalid line saying the store is corrupt", stdout)
	})
}

func TestReadOnlyConnString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"postgres://u:p@h/db", "postgres://u:p@h/db?default_transaction_read_only=on"},
		{"postgresql://h/db?sslmode=require", "postgresql://h/db?sslmode=require&default_transaction_read_only=on"},
		{"host=h dbname=db", "host=h dbname=db default_transaction_read_only=on"},
		{"", "default_transaction_read_only=on"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, readOnlyConnString(tt.in), "readOnlyConnString(%q)", tt.in)
	}
}
