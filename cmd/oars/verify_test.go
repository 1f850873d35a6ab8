package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/receipt"
)

// golden returns the path of a golden file of package receipt.
func golden(name string) string {
	return filepath.Join("..", "..", "receipt", "testdata", "golden", name)
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

func readGolden(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(golden(name))
	require.NoError(t, err)
	return data
}

func goldenChain(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	var items []json.RawMessage
	require.NoError(t, json.Unmarshal(readGolden(t, name), &items))
	return items
}

func joinArray(items ...json.RawMessage) []byte {
	parts := make([][]byte, len(items))
	for i, it := range items {
		parts[i] = it
	}
	return append(append([]byte("[\n"), bytes.Join(parts, []byte(",\n"))...), "\n]\n"...)
}

func TestCmdVerify(t *testing.T) {
	jwks := golden("jwks.json")
	const kid = "oars:23e4bb144b7e6efa"
	denied := readGolden(t, "denied.json")
	approval := goldenChain(t, "chain_approval.json")

	otherKey, _, err := receipt.GenerateKey("other")
	require.NoError(t, err)
	otherSet, err := receipt.NewKeySet(otherKey)
	require.NoError(t, err)
	otherJWKS, err := otherSet.MarshalJWKS()
	require.NoError(t, err)

	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, denied, "", "  "))

	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{
			name:       "one receipt",
			args:       []string{"receipt", golden("denied.json"), "--jwks", jwks},
			wantCode:   0,
			wantStdout: "ok: receipt rcpt_d1 (action act_denied, seq 1, status denied) signed by " + kid + "\n",
		},
		{
			name:       "flags first",
			args:       []string{"receipt", "--jwks=" + jwks, writeTemp(t, "pretty.json", pretty.Bytes())},
			wantCode:   0,
			wantStdout: "ok: receipt rcpt_d1 (action act_denied, seq 1, status denied) signed by " + kid + "\n",
		},
		{
			name:     "chain",
			args:     []string{"receipt", golden("chain_approval.json"), "--jwks", jwks},
			wantCode: 0,
			wantStdout: "ok: receipt rcpt_p1 (action act_approval, seq 1, status pending_approval) signed by " + kid + "\n" +
				"ok: receipt rcpt_p2 (action act_approval, seq 2, status vote) signed by " + kid + "\n" +
				"ok: receipt rcpt_p3 (action act_approval, seq 3, status approved) signed by " + kid + "\n",
		},
		{
			name:       "stdin",
			args:       []string{"receipt", "-", "--jwks", jwks},
			stdin:      string(denied),
			wantCode:   0,
			wantStdout: "ok: receipt rcpt_d1 (action act_denied, seq 1, status denied) signed by " + kid + "\n",
		},
		{
			name:       "tampered field",
			args:       []string{"receipt", writeTemp(t, "r.json", bytes.Replace(denied, []byte(`"denied"`), []byte(`"allowed"`), 1)), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: signature: signature does not verify\n",
		},
		{
			name:       "unknown key",
			args:       []string{"receipt", golden("denied.json"), "--jwks", writeTemp(t, "jwks.json", otherJWKS)},
			wantCode:   1,
			wantStdout: "invalid: unknown key: unknown key id\n",
		},
		{
			name:       "not JSON",
			args:       []string{"receipt", writeTemp(t, "r.json", denied[:40]), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: parse: json: syntax error at /agent_id (offset 40)\n",
		},
		{
			name:       "duplicate key",
			args:       []string{"receipt", writeTemp(t, "r.json", append([]byte(`{"seq":1,`), denied[1:]...)), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: canonical: json: duplicate key at /seq (offset " + strconv.Itoa(bytes.Index(denied, []byte(`"seq"`))+8) + ")\n",
		},
		{
			name:       "not a receipt",
			args:       []string{"receipt", golden("event_policy_reloaded.json"), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: format: not valid v1: spec is not oars.receipt.v1\n",
		},
		{
			name:       "chain out of order",
			args:       []string{"receipt", writeTemp(t, "c.json", joinArray(approval[0], approval[2], approval[1])), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: seq: receipt 2: bad seq: seq 3 follows seq 1\n",
		},
		{
			name:       "chain of two actions",
			args:       []string{"receipt", writeTemp(t, "c.json", joinArray(approval[0], goldenChain(t, "chain_allowed_executed.json")[1])), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: chain: receipt 2: broken chain: action_id differs from the previous receipt's\n",
		},
		{
			name:       "chain with a duplicate key",
			args:       []string{"receipt", writeTemp(t, "c.json", []byte(`[{"a":1,"a":2}]`)), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: canonical: json: duplicate key at /0/a (offset 8)\n",
		},
		{
			name:       "empty chain",
			args:       []string{"receipt", writeTemp(t, "c.json", []byte(`[]`)), "--jwks", jwks},
			wantCode:   1,
			wantStdout: "invalid: chain: broken chain: no receipts\n",
		},
		{name: "no kind", args: nil, wantCode: 2, stderrHas: "usage: oars verify receipt"},
		{name: "unknown kind", args: []string{"ledger"}, wantCode: 2, stderrHas: `unknown kind "ledger"`},
		{name: "no file", args: []string{"receipt", "--jwks", jwks}, wantCode: 2, stderrHas: "want exactly one receipt FILE"},
		{name: "two files", args: []string{"receipt", "a", "b", "--jwks", jwks}, wantCode: 2, stderrHas: "want exactly one receipt FILE"},
		{name: "no jwks", args: []string{"receipt", golden("denied.json")}, wantCode: 2, stderrHas: "--jwks FILE|URL is required"},
		{name: "missing receipt file", args: []string{"receipt", filepath.Join(t.TempDir(), "nope.json"), "--jwks", jwks}, wantCode: 2, stderrHas: "oars verify: read receipt: "},
		{name: "missing jwks file", args: []string{"receipt", golden("denied.json"), "--jwks", filepath.Join(t.TempDir(), "nope.json")}, wantCode: 2, stderrHas: "oars verify: read JWKS: "},
		{name: "jwks with a private key", args: []string{"receipt", golden("denied.json"), "--jwks", writeTemp(t, "jwks.json", privateJWKS(t))}, wantCode: 2, stderrHas: "holds private key material"},
		{name: "empty jwks", args: []string{"receipt", golden("denied.json"), "--jwks", writeTemp(t, "jwks.json", []byte(`{"keys":[]}`))}, wantCode: 2, stderrHas: "empty key set"},
		{name: "unknown flag", args: []string{"receipt", golden("denied.json"), "--jwks", jwks, "--fast"}, wantCode: 2, stderrHas: "flag provided but not defined"},
		{name: "help", args: []string{"--help"}, wantCode: 0, wantStdout: verifyUsageText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(cmdVerify, tt.stdin, tt.args...)
			assert.Equal(t, tt.wantCode, code, "cmdVerify(%q); stdout: %s stderr: %s", tt.args, stdout, stderr)
			assert.Equal(t, tt.wantStdout, stdout, "cmdVerify(%q) stdout", tt.args)
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas)
			} else if tt.wantCode != 2 {
				assert.Empty(t, stderr)
			}
		})
	}
}

func privateJWKS(t *testing.T) []byte {
	t.Helper()
	s, key, err := receipt.GenerateKey("k")
	require.NoError(t, err)
	priv, err := receipt.MarshalPrivateKey(s.KeyID(), key)
	require.NoError(t, err)
	return []byte(`{"keys":[` + string(priv) + `]}`)
}

func TestCmdVerifyPrintable(t *testing.T) {
	assert.Equal(t, "act_1", verifyPrintable("act_1"))
	assert.Equal(t, `"a\nb\x1b[31m"`, verifyPrintable("a\nb\x1b[31m"))
	assert.True(t, strings.HasPrefix(verifyPrintable("\u202e"), `"`))
}

// jwksServer serves the golden JWKS at /jwks.json, like oarsd's
// /.well-known/oap/jwks.json, and other answers at other paths.
func jwksServer(t *testing.T, jwks []byte) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /jwks.json", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/json" {
			http.Error(w, "want Accept: application/json", http.StatusNotAcceptable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(jwks)
	})
	mux.HandleFunc("GET /big.json", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write(bytes.Repeat([]byte(" "), httpMaxJWKS+1))
	})
	mux.HandleFunc("GET /insecure-redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/jwks.json", http.StatusFound)
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/jwks.json", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestCmdVerifyJWKSURL(t *testing.T) {
	srv := jwksServer(t, readGolden(t, "jwks.json"))
	// The same server reached as localhost, not 127.0.0.1.
	localhost := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	const okLine = "ok: receipt rcpt_d1 (action act_denied, seq 1, status denied) signed by oars:23e4bb144b7e6efa\n"
	tests := []struct {
		name       string
		jwks       string
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{name: "loopback http", jwks: srv.URL + "/jwks.json", wantStdout: okLine},
		{name: "localhost http", jwks: localhost + "/jwks.json", wantStdout: okLine},
		{name: "redirect", jwks: srv.URL + "/redirect", wantStdout: okLine},
		{name: "not found", jwks: srv.URL + "/nope.json", wantCode: 2, stderrHas: "fetch JWKS: HTTP 404 Not Found"},
		{name: "too large", jwks: srv.URL + "/big.json", wantCode: 2, stderrHas: "response larger than 1048576 bytes"},
		{name: "redirect to plain http", jwks: srv.URL + "/insecure-redirect", wantCode: 2, stderrHas: "redirect to http://example.com/jwks.json refused: plain http is allowed only for loopback hosts"},
		{name: "remote plain http", jwks: "http://example.com/jwks.json", wantCode: 2, stderrHas: "--jwks http://example.com/jwks.json: plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https"},
		{name: "other scheme", jwks: "ftp://example.com/jwks.json", wantCode: 2, stderrHas: `unsupported URL scheme "ftp"`},
		{name: "user information", jwks: "https://user:secret@example.com/jwks.json", wantCode: 2, stderrHas: "must not contain user information"},
		{name: "no host", jwks: "https:///jwks.json", wantCode: 2, stderrHas: "the URL has no host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(cmdVerify, "", "receipt", golden("denied.json"), "--jwks", tt.jwks)
			assert.Equal(t, tt.wantCode, code, "oars verify receipt --jwks %s: exit code (stderr %q)", tt.jwks, stderr)
			assert.Equal(t, tt.wantStdout, stdout, "oars verify receipt --jwks %s: stdout", tt.jwks)
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas, "oars verify receipt --jwks %s: stderr", tt.jwks)
			}
			assert.NotContains(t, stderr, "secret", "stderr repeats the URL's password")
		})
	}
}

// TestFetchJWKSTLS fetches a JWKS over https and checks that a request is
// abandoned when its context ends.
func TestFetchJWKSTLS(t *testing.T) {
	jwks := readGolden(t, "jwks.json")
	started := make(chan struct{})
	release := make(chan struct{})
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			// Answer nothing until the test ends, so the only way out for
			// the client is its cancelled context.
			close(started)
			<-release
			return
		}
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs first: lets the handler return
	c := srv.Client()
	c.CheckRedirect = checkRedirect

	got, err := fetchJWKS(t.Context(), c, srv.URL+"/.well-known/oap/jwks.json")
	require.NoError(t, err, "fetchJWKS(https)")
	assert.Equal(t, jwks, got, "fetchJWKS(https) body")

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		<-started
		cancel()
	}()
	_, err = fetchJWKS(ctx, c, srv.URL+"/slow")
	assert.ErrorIs(t, err, context.Canceled, "fetchJWKS(cancelled) error")
}
