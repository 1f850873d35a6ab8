package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// postAction submits an action to the server at base and returns its
// answer.
func postAction(t *testing.T, base *url.URL, agent string, amount int) ack {
	t.Helper()
	body := fmt.Sprintf(`{"tenant_id":"acme","agent_id":%q,"user_context":{"user_id":"u1"},"resource":{"tool_id":"payments","operation":"refund"},"input":{"amount":%d}}`, agent, amount)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base.String()+"/v1/actions", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+devToken)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "POST /v1/actions")
	defer resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode, "POST /v1/actions status")
	var a ack
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a), "POST /v1/actions answer")
	return a
}

func TestCmdReceipts(t *testing.T) {
	t.Cleanup(http.DefaultClient.CloseIdleConnections)
	base := startServer(t)
	server := base.String()
	// Five actions: three of bot-a (allowed), two of bot-b (one pending).
	var all []string // every receipt, in ledger order
	var first ack
	for i, a := range []struct {
		agent  string
		amount int
	}{{"bot-a", 5}, {"bot-b", 500}, {"bot-a", 6}, {"bot-b", 7}, {"bot-a", 8}} {
		got := postAction(t, base, a.agent, a.amount)
		if i == 0 {
			first = got
		}
		for _, r := range got.Receipts {
			all = append(all, string(r))
		}
	}
	require.Len(t, all, 5, "receipts recorded")
	var firstReceipt struct {
		ReceiptID string `json:"receipt_id"`
		AgentID   string `json:"agent_id"`
	}
	require.NoError(t, json.Unmarshal(first.Receipts[0], &firstReceipt))
	lines := func(rs ...string) string {
		if len(rs) == 0 {
			return ""
		}
		return strings.Join(rs, "\n") + "\n"
	}
	byAgent := func(agent string) []string {
		var out []string
		for _, r := range all {
			if strings.Contains(r, `"agent_id":"`+agent+`"`) {
				out = append(out, r)
			}
		}
		return out
	}

	tests := []struct {
		name       string
		args       []string
		env        string // OARS_TOKEN
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{
			name:       "get",
			args:       []string{"get", firstReceipt.ReceiptID, "--server", server, "--token", devToken},
			wantStdout: lines(all[0]),
		},
		{
			name:       "get, token from the environment",
			args:       []string{"get", "--server", server, firstReceipt.ReceiptID},
			env:        devToken,
			wantStdout: lines(all[0]),
		},
		{
			name:      "get unknown",
			args:      []string{"get", "rcpt_nope", "--server", server, "--token", devToken},
			wantCode:  1,
			stderrHas: "oars receipts get: HTTP 404 Not Found: not_found: receipt not found",
		},
		{
			name:      "get with a bad token",
			args:      []string{"get", firstReceipt.ReceiptID, "--server", server, "--token", "secret_bad_token"},
			wantCode:  2,
			stderrHas: "HTTP 401 Unauthorized: unauthorized: invalid credentials",
		},
		{
			name:       "list all",
			args:       []string{"list", "--server", server, "--token", devToken, "--tenant", "acme", "--limit", "2", "--all"},
			wantStdout: lines(all...),
		},
		{
			name:       "list one page",
			args:       []string{"list", "--server", server, "--token", devToken, "--limit", "2"},
			wantStdout: lines(all[:2]...),
			stderrHas:  "more receipts: continue with --cursor ",
		},
		{
			name:       "list by agent",
			args:       []string{"list", "--server", server, "--token", devToken, "--agent", "bot-b", "--all"},
			wantStdout: lines(byAgent("bot-b")...),
		},
		{
			name:       "list by status",
			args:       []string{"list", "--server", server, "--token", devToken, "--status", "pending_approval"},
			wantStdout: lines(byAgent("bot-b")[0]),
		},
		{
			name:       "list by action",
			args:       []string{"list", "--server", server, "--token", devToken, "--action", first.ActionID},
			wantStdout: lines(all[0]),
		},
		{
			name:       "list by time",
			args:       []string{"list", "--server", server, "--token", devToken, "--since", "2000-01-01T00:00:00Z", "--until", "2001-01-01T00:00:00Z"},
			wantStdout: "",
		},
		{
			name:      "list with a control character in the tenant",
			args:      []string{"list", "--server", server, "--token", "dev_auditor_token", "--tenant", "other\x1b[31m"},
			wantCode:  2,
			stderrHas: "HTTP 400 Bad Request: validation_failed: query parameter \"tenant_id\" contains a control character",
		},
		{
			name:      "list with a bad status",
			args:      []string{"list", "--server", server, "--token", devToken, "--status", "great"},
			wantCode:  2,
			stderrHas: "HTTP 400 Bad Request: validation_failed",
		},
		{name: "bad since", args: []string{"list", "--server", server, "--token", devToken, "--since", "yesterday"}, wantCode: 2, stderrHas: "--since must be an RFC 3339 time"},
		{name: "all and cursor", args: []string{"list", "--server", server, "--token", devToken, "--all", "--cursor", "x"}, wantCode: 2, stderrHas: "at most one of --all and --cursor"},
		{name: "bad cursor", args: []string{"list", "--server", server, "--token", devToken, "--cursor", "x"}, wantCode: 2, stderrHas: `query parameter "cursor" is not valid`},
		{name: "negative limit", args: []string{"list", "--server", server, "--token", devToken, "--limit", "-1"}, wantCode: 2, stderrHas: "--limit must be positive"},
		{name: "no token", args: []string{"get", "x", "--server", server}, wantCode: 2, stderrHas: "an API token is required: --token T or the OARS_TOKEN environment variable"},
		{name: "no server", args: []string{"list", "--token", devToken}, wantCode: 2, stderrHas: "--server URL is required"},
		{name: "remote http", args: []string{"list", "--server", "http://example.com", "--token", devToken}, wantCode: 2, stderrHas: "--server http://example.com: plain http is allowed only for loopback hosts"},
		{name: "server with credentials", args: []string{"list", "--server", "https://u:" + devToken + "@example.com", "--token", devToken}, wantCode: 2, stderrHas: "must not contain user information"},
		{name: "get without ID", args: []string{"get", "--server", server, "--token", devToken}, wantCode: 2, stderrHas: "want exactly one receipt ID"},
		{name: "unknown subcommand", args: []string{"show"}, wantCode: 2, stderrHas: `unknown subcommand "show"`},
		{name: "no subcommand", wantCode: 2, stderrHas: "usage: oars receipts get"},
		{name: "help", args: []string{"help"}, wantStdout: receiptsUsageText},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(tokenEnv, tt.env)
			code, stdout, stderr := cliRun(cmdReceipts, "", tt.args...)
			assert.Equal(t, tt.wantCode, code, "oars receipts %q: exit code (stderr %q)", tt.args, stderr)
			assert.Equal(t, tt.wantStdout, stdout, "oars receipts %q: stdout", tt.args)
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas, "oars receipts %q: stderr", tt.args)
			}
			for _, secret := range []string{devToken, "secret_bad_token"} {
				assert.NotContains(t, stderr, secret, "oars receipts %q: stderr shows the token", tt.args)
			}
			assert.NotContains(t, stderr, "\x1b", "oars receipts %q: stderr holds a raw escape character", tt.args)
		})
	}

	// Every line of a list is one receipt, byte for byte as recorded.
	_, stdout, _ := cliRun(cmdReceipts, "", "list", "--server", server, "--token", devToken, "--all")
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	assert.True(t, slices.Equal(all, got), "oars receipts list --all = %q, want %q", got, all)
}

func TestCompactJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1}`, `{"a":1}`},
		{"{\n  \"a\": [1,\n 2]\n}", `{"a":[1,2]}`},
	}
	for _, tt := range tests {
		got := compactJSON(json.RawMessage(tt.in))
		assert.True(t, bytes.Equal([]byte(tt.want), got), "compactJSON(%q) = %q, want %q", tt.in, got, tt.want)
	}
}
