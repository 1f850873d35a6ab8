package main

import (
	"context"
	"encoding/json"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// devToken is the development operator token an in-process server
// accepts.
const devToken = "dev_operator_token"

// startServer runs a development oarsd in-process on a loopback port with
// a fresh data directory and the demo policy, and stops it when the test
// ends.
func startServer(t *testing.T) *url.URL {
	t.Helper()
	_, u := startPolicyServer(t, "")
	return u
}

// benchTestConfig is a small bench of the demo policy's allowed refunds.
func benchTestConfig(base *url.URL, token string) benchConfig {
	return benchConfig{
		Base: base, Token: token, Concurrency: 8, Requests: 200,
		TenantID: "acme", AgentID: "bench-agent", UserID: "bench-user", ToolID: "payments", Operation: "refund",
		Input: json.RawMessage(`{"amount":5}`),
	}
}

func TestRunBench(t *testing.T) {
	base := startServer(t)
	cfg := benchTestConfig(base, devToken)
	res, err := runBench(t.Context(), cfg)
	require.NoError(t, err, "runBench")
	assert.Equal(t, 200, res.Requests, "Requests")
	assert.Equal(t, 200, res.Acknowledged, "Acknowledged (errors %v: %v)", res.Errors, res.ErrorSamples)
	assert.Empty(t, res.Errors, "Errors")
	assert.Equal(t, map[string]int{"allowed": 200}, res.Decisions, "Decisions")
	assert.Equal(t, 200, res.Verified, "Verified (failures %v: %v)", res.CheckFailures, res.CheckSamples)
	assert.Empty(t, res.CheckFailures, "CheckFailures")
	assert.Len(t, res.Latencies, 200, "Latencies")
	assert.True(t, res.OK(), "OK() = false, want true")
	assert.LessOrEqual(t, res.Percentile(50), res.Percentile(99), "p50 <= p99")
	assert.Equal(t, res.Latencies[len(res.Latencies)-1], res.Percentile(100), "Percentile(100) is the maximum")

	// A second run with the same run id replays every action (200 with
	// the original receipts), which still verifies.
	cfg.RunID = "fixed"
	cfg.Requests = 20
	_, err = runBench(t.Context(), cfg)
	require.NoError(t, err)
	res, err = runBench(t.Context(), cfg)
	require.NoError(t, err)
	assert.True(t, res.OK(), "replayed run: OK() = false; errors %v, check failures %v", res.Errors, res.CheckFailures)
}

func TestRunBenchFailures(t *testing.T) {
	base := startServer(t)

	t.Run("bad token", func(t *testing.T) {
		cfg := benchTestConfig(base, "not_a_token")
		cfg.Requests = 10
		res, err := runBench(t.Context(), cfg)
		require.NoError(t, err, "runBench")
		assert.Equal(t, map[string]int{"HTTP 401 unauthorized": 10}, res.Errors, "Errors")
		assert.Equal(t, 0, res.Acknowledged, "Acknowledged")
		assert.False(t, res.OK(), "OK() = true, want false")
		for _, s := range res.ErrorSamples {
			assert.NotContains(t, s, "not_a_token", "error sample repeats the token")
		}
	})

	t.Run("role may not submit", func(t *testing.T) {
		cfg := benchTestConfig(base, "dev_auditor_token")
		cfg.Requests = 3
		res, err := runBench(t.Context(), cfg)
		require.NoError(t, err, "runBench")
		assert.Equal(t, map[string]int{"HTTP 403 forbidden": 3}, res.Errors, "Errors")
	})

	t.Run("server gone", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		cfg := benchTestConfig(&url.URL{Scheme: "http", Host: addr}, devToken)
		cfg.Requests = 4
		res, err := runBench(t.Context(), cfg)
		require.NoError(t, err, "runBench")
		assert.Equal(t, map[string]int{"transport error": 4}, res.Errors, "Errors")
	})

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		res, err := runBench(ctx, benchTestConfig(base, devToken))
		assert.ErrorIs(t, err, context.Canceled, "runBench(cancelled)")
		require.NotNil(t, res, "runBench(cancelled) result")
		assert.False(t, res.OK(), "OK() after cancellation")
	})

	for _, tt := range []struct {
		name string
		mod  func(*benchConfig)
	}{
		{"no server", func(c *benchConfig) { c.Base = nil }},
		{"no workers", func(c *benchConfig) { c.Concurrency = 0 }},
		{"no requests", func(c *benchConfig) { c.Requests = 0 }},
		{"input not an object", func(c *benchConfig) { c.Input = json.RawMessage(`[1]`) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := benchTestConfig(base, devToken)
			tt.mod(&cfg)
			_, err := runBench(t.Context(), cfg)
			assert.Error(t, err, "runBench(%s)", tt.name)
		})
	}
}

// TestBenchCheckDetectsMismatch checks that the ledger check fails when
// the ledger's receipts differ from the acknowledged ones.
func TestBenchCheckDetectsMismatch(t *testing.T) {
	base := startServer(t)
	c := &apiClient{http: newHTTPClient(1, httpTimeout), base: base, token: devToken}
	t.Cleanup(c.http.CloseIdleConnections)
	cfg := benchTestConfig(base, devToken)
	cfg.RunID = "check"
	a, _, _, err := benchSubmit(t.Context(), c, c.endpoint("/v1/actions", nil), &cfg, 0)
	require.NoError(t, err, "benchSubmit")
	_, err = benchCheck(t.Context(), c, a)
	require.NoError(t, err, "benchCheck(acknowledged)")

	tests := []struct {
		name     string
		mod      func(*ack)
		wantKind string
	}{
		{"receipt altered", func(a *ack) {
			a.Receipts[0] = json.RawMessage(strings.Replace(string(a.Receipts[0]), "allowed", "denied", 1))
		}, "receipts differ"},
		{"index moved", func(a *ack) { a.LedgerIndexes[0]++ }, "indexes differ"},
		{"receipt never recorded", func(a *ack) { a.Receipts = append(a.Receipts, a.Receipts[0]) }, "receipts missing"},
		{"unknown action", func(a *ack) { a.ActionID = "act_unknown" }, "HTTP 404"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := *a
			b.Receipts = append([]json.RawMessage(nil), a.Receipts...)
			b.LedgerIndexes = append([]int64(nil), a.LedgerIndexes...)
			tt.mod(&b)
			kind, err := benchCheck(t.Context(), c, &b)
			assert.Error(t, err, "benchCheck(%s)", tt.name)
			assert.Equal(t, tt.wantKind, kind, "benchCheck(%s) kind", tt.name)
		})
	}
}

func TestCmdBench(t *testing.T) {
	base := startServer(t)
	code, stdout, stderr := cliRun(cmdBench, "", "--server", base.String(), "--token", devToken, "--concurrency", "4", "--requests", "40")
	assert.Equal(t, 0, code, "oars bench: exit code (stdout %q, stderr %q)", stdout, stderr)
	for _, want := range []string{
		"requests: 40 (40 acknowledged, 0 failed)\n",
		"decisions: allowed 40\n",
		"throughput: ",
		"latency: p50 ",
		"verified: 40/40 actions have their receipts in the ledger",
	} {
		assert.Contains(t, stdout, want, "oars bench stdout")
	}
	assert.NotContains(t, stdout+stderr, devToken, "oars bench printed the token")

	t.Setenv(tokenEnv, "wrong_token")
	code, stdout, stderr = cliRun(cmdBench, "", "--server", base.String(), "--requests", "3")
	assert.Equal(t, 1, code, "oars bench with a wrong token: exit code (stderr %q)", stderr)
	assert.Contains(t, stdout, "errors: HTTP 401 unauthorized 3\n", "oars bench stdout")
	assert.NotContains(t, stdout+stderr, "wrong_token", "oars bench printed the token")

	t.Setenv(tokenEnv, "")
	for _, tt := range []struct {
		name      string
		args      []string
		stderrHas string
	}{
		{"no server", []string{"--token", devToken}, "--server URL is required"},
		{"no token", []string{"--server", base.String()}, "an API token is required"},
		{"remote http", []string{"--server", "http://example.com", "--token", devToken}, "plain http is allowed only for loopback hosts"},
		{"zero workers", []string{"--server", base.String(), "--token", devToken, "--concurrency", "0"}, "--concurrency must be between"},
		{"bad input", []string{"--server", base.String(), "--token", devToken, "--input", "[1]"}, "--input must be a JSON object"},
		{"extra argument", []string{"--server", base.String(), "--token", devToken, "extra"}, "unexpected argument"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := cliRun(cmdBench, "", tt.args...)
			assert.Equal(t, 2, code, "oars bench %v: exit code", tt.args)
			assert.Contains(t, stderr, tt.stderrHas, "oars bench %v: stderr", tt.args)
			assert.NotContains(t, stderr, devToken, "oars bench printed the token")
		})
	}
}

func TestBenchPercentile(t *testing.T) {
	r := &benchResult{}
	for i := 1; i <= 100; i++ {
		r.Latencies = append(r.Latencies, time.Duration(i)*time.Millisecond)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {90, 90 * time.Millisecond}, {99, 99 * time.Millisecond}, {99.5, 100 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		assert.Equal(t, tt.want, r.Percentile(tt.p), "Percentile(%v)", tt.p)
	}
	assert.Equal(t, time.Duration(0), (&benchResult{}).Percentile(50), "Percentile of no latencies")
}
