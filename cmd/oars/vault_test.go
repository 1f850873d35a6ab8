package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/storage/postgres"
	"github.com/oarsdev/oars/storage/sqlite"
)

func runVault(stdin string, args ...string) (code int, stdout, stderr string) {
	return cliRun(cmdVault, stdin, args...)
}

// vaultKeygenLine runs `oars vault keygen --id id` and returns the key line.
func vaultKeygenLine(t *testing.T, id string) string {
	t.Helper()
	code, stdout, stderr := runVault("", "keygen", "--id", id)
	require.Equal(t, 0, code, "oars vault keygen --id %s: %s", id, stderr)
	return strings.TrimSuffix(stdout, "\n")
}

// vaultSecret reads secret name from the SQLite store in dir with keys.
func vaultSecret(t *testing.T, dir, keys, name string) ([]byte, error) {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(dir, ledgerDBFile), sqlite.WithReadOnly())
	require.NoError(t, err)
	defer s.Close()
	return vaultOn(t, s, keys).Secret(t.Context(), name)
}

func vaultOn(t *testing.T, s vault.Store, keys string) *vault.Vault {
	t.Helper()
	kr, err := vault.ParseKeys(keys)
	require.NoError(t, err)
	v, err := vault.New(s, kr)
	require.NoError(t, err)
	return v
}

func TestCmdVaultKeygen(t *testing.T) {
	code, stdout, stderr := runVault("", "keygen")
	require.Equal(t, 0, code, "stderr %q", stderr)
	assert.Regexp(t, regexp.MustCompile(`^k\d{8}-\d{6}:[A-Za-z0-9+/]{43}=\n$`), stdout)
	_, err := vault.ParseKeys(strings.TrimSpace(stdout))
	require.NoError(t, err, "the printed key does not parse")
	assert.Contains(t, stderr, "OARS_VAULT_KEYS")
	assert.NotContains(t, stderr, strings.TrimSpace(stdout)[20:], "the key is printed to stderr too")

	line := vaultKeygenLine(t, "prod-2026.1")
	kr, err := vault.ParseKeys(line)
	require.NoError(t, err)
	assert.Equal(t, "prod-2026.1", kr.ActiveID())
	assert.NotEqual(t, line, vaultKeygenLine(t, "prod-2026.1"), "two keys are equal")

	for _, tt := range []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"bad id", []string{"keygen", "--id", "a b"}, "key id has a character outside"},
		{"extra argument", []string{"keygen", "x"}, "unexpected argument"},
		{"unknown flag", []string{"keygen", "--out", "f"}, "flag provided but not defined"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runVault("", tt.args...)
			assert.Equal(t, 2, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tt.stderrHas)
		})
	}
}

func TestCmdVault(t *testing.T) {
	t.Setenv(ledgerPostgresEnv, "")
	dir := t.TempDir()
	k1 := vaultKeygenLine(t, "k1")
	k2 := vaultKeygenLine(t, "k2")
	const token = "sk_live_canary_4e1f0a9b7c"

	// put, under k1, creating the database.
	t.Setenv(vaultKeysEnv, k1)
	code, stdout, stderr := runVault(token+"\n", "put", "stripe/api-key", "--data-dir", dir)
	require.Equal(t, 0, code, "put: stderr %q", stderr)
	assert.Equal(t, "ok: stored stripe/api-key under key k1\n", stdout)
	code, _, stderr = runVault("ghp_token\r\n", "put", "--data-dir", dir, "github/token") // NAME after the flags
	require.Equal(t, 0, code, "put: stderr %q", stderr)
	code, _, stderr = runVault("two\nlines\n\n", "put", "multi", "--data-dir", dir)
	require.Equal(t, 0, code, "put: stderr %q", stderr)
	for name, want := range map[string]string{"stripe/api-key": token, "github/token": "ghp_token", "multi": "two\nlines\n"} {
		got, err := vaultSecret(t, dir, k1, name)
		require.NoError(t, err, "Secret(%s)", name)
		assert.Equal(t, want, string(got), "Secret(%s): one trailing newline is removed", name)
	}

	// The plaintext is in no file of the data directory.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		assert.NotContains(t, string(data), token, "%s holds the plaintext", e.Name())
	}

	// list needs no keys.
	t.Setenv(vaultKeysEnv, "")
	code, stdout, stderr = runVault("", "list", "--data-dir", dir)
	require.Equal(t, 0, code, "list: stderr %q", stderr)
	assert.Regexp(t, regexp.MustCompile(`^github/token\tk1\t\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\n`+
		`multi\tk1\t\S+\n`+
		`stripe/api-key\tk1\t\S+\n$`), stdout)
	assert.NotContains(t, stdout, token)

	// rotate to k2, keeping k1 to read.
	t.Setenv(vaultKeysEnv, k2+","+k1)
	code, stdout, stderr = runVault("", "rotate", "--data-dir", dir)
	require.Equal(t, 0, code, "rotate: stderr %q", stderr)
	assert.Equal(t, "re-encrypted 3 secrets under key k2\n", stdout)
	code, stdout, _ = runVault("", "rotate", "--data-dir", dir)
	assert.Equal(t, 0, code)
	assert.Equal(t, "re-encrypted 0 secrets under key k2\n", stdout)
	_, stdout, _ = runVault("", "list", "--data-dir", dir)
	assert.Equal(t, 3, strings.Count(stdout, "\tk2\t"), "list after rotate: %q", stdout)
	got, err := vaultSecret(t, dir, k2, "stripe/api-key")
	require.NoError(t, err, "Secret with k2 only")
	assert.Equal(t, token, string(got))

	// delete needs no keys.
	t.Setenv(vaultKeysEnv, "")
	code, stdout, stderr = runVault("", "delete", "multi", "--data-dir", dir)
	require.Equal(t, 0, code, "delete: stderr %q", stderr)
	assert.Equal(t, "ok: deleted multi\n", stdout)
	code, _, stderr = runVault("", "delete", "multi", "--data-dir", dir)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no secret multi")
	_, stdout, _ = runVault("", "list", "--data-dir", dir)
	assert.NotContains(t, stdout, "multi")
	assert.Equal(t, 2, strings.Count(stdout, "\n"))

	// A secret under a key that is not in OARS_VAULT_KEYS fails rotate.
	t.Setenv(vaultKeysEnv, k1)
	code, stdout, stderr = runVault("", "rotate", "--data-dir", dir)
	assert.Equal(t, 1, code)
	assert.Equal(t, "re-encrypted 0 secrets under key k1\n", stdout)
	assert.Contains(t, stderr, `secret "github/token": sealed under key "k2": vault: key not in the keyring`)
}

func TestCmdVaultErrors(t *testing.T) {
	t.Setenv(ledgerPostgresEnv, "")
	dir := t.TempDir()
	k1 := vaultKeygenLine(t, "k1")
	t.Setenv(vaultKeysEnv, k1)
	code, _, stderr := runVault("x", "put", "a", "--data-dir", dir)
	require.Equal(t, 0, code, "put: %s", stderr)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))

	tests := []struct {
		name      string
		keys      string // OARS_VAULT_KEYS
		stdin     string
		args      []string
		wantCode  int
		stderrHas string
	}{
		{name: "no subcommand", wantCode: 2, stderrHas: "usage: oars vault"},
		{name: "unknown subcommand", args: []string{"get", "a"}, wantCode: 2, stderrHas: `unknown subcommand "get"`},
		{name: "put without name", keys: k1, args: []string{"put", "--data-dir", dir}, wantCode: 2, stderrHas: "NAME is required"},
		{name: "put two names", keys: k1, args: []string{"put", "a", "b", "--data-dir", dir}, wantCode: 2, stderrHas: `unexpected argument "b"`},
		{name: "list with a name", args: []string{"list", "a", "--data-dir", dir}, wantCode: 2, stderrHas: `unexpected argument "a"`},
		{name: "invalid name", keys: k1, stdin: "x", args: []string{"put", "a b", "--data-dir", dir}, wantCode: 2, stderrHas: "invalid secret name"},
		{name: "no store flag", keys: k1, stdin: "x", args: []string{"put", "a"}, wantCode: 2, stderrHas: "--data-dir DIR or --postgres URL is required"},
		{name: "both stores", args: []string{"list", "--data-dir", dir, "--postgres", "postgres://localhost/db"}, wantCode: 2, stderrHas: "exactly one of"},
		{name: "schema without postgres", args: []string{"list", "--data-dir", dir, "--schema", "s"}, wantCode: 2, stderrHas: "--schema goes with --postgres"},
		{name: "unknown flag", args: []string{"list", "--keys", k1}, wantCode: 2, stderrHas: "flag provided but not defined"},
		{name: "put without keys", stdin: "x", args: []string{"put", "a", "--data-dir", dir}, wantCode: 2, stderrHas: "OARS_VAULT_KEYS is not set"},
		{name: "rotate without keys", args: []string{"rotate", "--data-dir", dir}, wantCode: 2, stderrHas: "OARS_VAULT_KEYS is not set"},
		{name: "bad keys", keys: "k1:" + strings.Repeat("Q", 40), stdin: "x", args: []string{"put", "a", "--data-dir", dir}, wantCode: 2, stderrHas: "OARS_VAULT_KEYS: vault: parse keys: entry 1: key is 30 bytes"},
		{name: "empty stdin", keys: k1, args: []string{"put", "a", "--data-dir", dir}, wantCode: 1, stderrHas: "empty secret on stdin"},
		{name: "only a newline", keys: k1, stdin: "\n", args: []string{"put", "a", "--data-dir", dir}, wantCode: 1, stderrHas: "empty secret on stdin"},
		{name: "secret too large", keys: k1, stdin: strings.Repeat("x", vault.MaxSecretSize+1), args: []string{"put", "a", "--data-dir", dir}, wantCode: 1, stderrHas: "longer than 65536 bytes"},
		{name: "missing data dir", args: []string{"list", "--data-dir", filepath.Join(dir, "nope")}, wantCode: 1, stderrHas: "data dir"},
		{name: "data dir is a file", args: []string{"list", "--data-dir", file}, wantCode: 1, stderrHas: "is not a directory"},
		{name: "list without a store", args: []string{"list", "--data-dir", t.TempDir()}, wantCode: 1, stderrHas: "no store (oars.db)"},
		{name: "delete without a store", args: []string{"delete", "a", "--data-dir", t.TempDir()}, wantCode: 1, stderrHas: "no store (oars.db)"},
		{name: "rotate without a store", keys: k1, args: []string{"rotate", "--data-dir", t.TempDir()}, wantCode: 1, stderrHas: "no store (oars.db)"},
		{name: "help", args: []string{"help"}, wantCode: 0},
		{name: "put help", args: []string{"put", "-h"}, wantCode: 0, stderrHas: "usage: oars vault"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(vaultKeysEnv, tt.keys)
			code, stdout, stderr := runVault(tt.stdin, tt.args...)
			assert.Equal(t, tt.wantCode, code, "oars vault %v exit code (stdout %q, stderr %q)", tt.args, stdout, stderr)
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas, "oars vault %v stderr", tt.args)
			}
			if tt.stdin != "" && len(tt.stdin) < 100 {
				assert.NotContains(t, stdout+stderr, "\n"+tt.stdin+"\n", "the secret is echoed")
			}
			if tt.keys != "" {
				_, b64, _ := strings.Cut(tt.keys, ":")
				assert.NotContains(t, stdout+stderr, b64, "the key is echoed")
			}
		})
	}
	// The failed commands wrote nothing: one secret, still "x".
	got, err := vaultSecret(t, dir, k1, "a")
	require.NoError(t, err)
	assert.Equal(t, "x", string(got))
	_, stdout, _ := runVault("", "list", "--data-dir", dir)
	assert.Equal(t, 1, strings.Count(stdout, "\n"), "list: %q", stdout)
}

func TestCmdVaultPostgres(t *testing.T) {
	url, schema := pgTestSchema(t, "oars_cli_vault_", "oars vault")
	t.Setenv(ledgerPostgresEnv, "")
	k1 := vaultKeygenLine(t, "k1")
	k2 := vaultKeygenLine(t, "k2")
	pg := []string{"--postgres", url, "--schema", schema}

	// list does not create the schema.
	code, _, stderr := runVault("", append([]string{"list"}, pg...)...)
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "no store in schema")

	t.Setenv(vaultKeysEnv, k1)
	code, stdout, stderr := runVault("tok-1\n", append([]string{"put", "stripe/api-key"}, pg...)...)
	require.Equal(t, 0, code, "put: stderr %q", stderr)
	assert.Equal(t, "ok: stored stripe/api-key under key k1\n", stdout)
	// The URL may come from the environment.
	t.Setenv(ledgerPostgresEnv, url)
	code, _, stderr = runVault("tok-2", "put", "github/token", "--schema", schema)
	require.Equal(t, 0, code, "put: stderr %q", stderr)
	t.Setenv(ledgerPostgresEnv, "")

	code, stdout, stderr = runVault("", append([]string{"list"}, pg...)...)
	require.Equal(t, 0, code, "list: stderr %q", stderr)
	assert.Regexp(t, regexp.MustCompile(`^github/token\tk1\t\S+\nstripe/api-key\tk1\t\S+\n$`), stdout)

	t.Setenv(vaultKeysEnv, k2+","+k1)
	code, stdout, stderr = runVault("", append([]string{"rotate"}, pg...)...)
	require.Equal(t, 0, code, "rotate: stderr %q", stderr)
	assert.Equal(t, "re-encrypted 2 secrets under key k2\n", stdout)

	s, err := postgres.Open(t.Context(), url, postgres.WithSchema(schema))
	require.NoError(t, err)
	defer s.Close()
	got, err := vaultOn(t, s, k2).Secret(t.Context(), "stripe/api-key")
	require.NoError(t, err, "Secret with k2 only")
	assert.Equal(t, "tok-1", string(got))

	code, stdout, stderr = runVault("", append([]string{"delete", "stripe/api-key"}, pg...)...)
	require.Equal(t, 0, code, "delete: stderr %q", stderr)
	assert.Equal(t, "ok: deleted stripe/api-key\n", stdout)
	infos, err := s.ListSecrets(t.Context())
	require.NoError(t, err)
	require.Len(t, infos, 1)
	assert.Equal(t, "github/token", infos[0].Name)
	assert.Equal(t, "k2", infos[0].KeyID)
}
