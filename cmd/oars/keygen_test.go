package main

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/receipt"
)

// keygenOutput splits keygen's stdout into its labelled lines.
func keygenOutput(t *testing.T, stdout string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(stdout, "\n"), "\n") {
		label, value, ok := strings.Cut(line, ": ")
		require.True(t, ok, "keygen output line %q", line)
		out[label] = value
	}
	return out
}

func TestCmdKeygen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	code, stdout, stderr := cliRun(cmdKeygen, "", "--out", path)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	out := keygenOutput(t, stdout)
	assert.NotContains(t, out, "private key")
	assert.NotContains(t, stdout, `"d"`, "the private key was printed")
	assert.Contains(t, stderr, "wrote the private key to "+path)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	}
	signer, err := receipt.LoadSignerFile(path)
	require.NoError(t, err)
	assert.Equal(t, out["kid"], signer.KeyID())
	assert.Equal(t, receipt.KeyIDFor(signer.Public()), signer.KeyID())

	// The printed JWKS verifies what the key file signs.
	keys, err := receipt.ParseJWKS([]byte(out["jwks"]))
	require.NoError(t, err)
	pub, ok := keys.Lookup(signer.KeyID())
	require.True(t, ok)
	assert.True(t, pub.Equal(signer.Public()))
	sig, err := signer.Sign(context.Background(), []byte("m"))
	require.NoError(t, err)
	assert.True(t, ed25519.Verify(pub, []byte("m"), sig))

	// Never overwrites.
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	code, stdout, stderr = cliRun(cmdKeygen, "", "--out", path)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "already exists; refusing to overwrite it")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)
}

func TestCmdKeygenPrintPrivate(t *testing.T) {
	code, stdout, stderr := cliRun(cmdKeygen, "", "--print-private", "--kid", "prod-2025")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	out := keygenOutput(t, stdout)
	assert.Equal(t, "prod-2025", out["kid"])
	signer, err := receipt.ParseSigner([]byte(out["private key"]))
	require.NoError(t, err)
	assert.Equal(t, "prod-2025", signer.KeyID())
	keys, err := receipt.ParseJWKS([]byte(out["jwks"]))
	require.NoError(t, err)
	pub, ok := keys.Lookup("prod-2025")
	require.True(t, ok)
	assert.True(t, pub.Equal(signer.Public()))
}

func TestCmdKeygenUsage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name      string
		args      []string
		wantCode  int
		stderrHas string
	}{
		{"no output", nil, 2, "--out FILE is required"},
		{"positional", []string{"--out", filepath.Join(dir, "a.key"), "extra"}, 2, "unexpected arguments"},
		{"kid with space", []string{"--print-private", "--kid", "a b"}, 2, "--kid must be printable"},
		{"kid with control", []string{"--print-private", "--kid", "a\nb"}, 2, "--kid must be printable"},
		{"unknown flag", []string{"--bits", "256"}, 2, "flag provided but not defined"},
		{"missing dir", []string{"--out", filepath.Join(dir, "no", "such", "dir", "k.key")}, 1, "oars keygen: receipt: write key file"},
		{"help", []string{"--help"}, 0, "usage: oars keygen"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(cmdKeygen, "", tt.args...)
			assert.Equal(t, tt.wantCode, code, "cmdKeygen(%q); stderr: %s", tt.args, stderr)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tt.stderrHas)
		})
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "a failed keygen left files behind")
}
