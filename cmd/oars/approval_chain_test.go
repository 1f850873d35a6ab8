package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const approvalChainPolicy = `
id: payments
version: "1"
default: deny
rules:
  - id: big-refunds
    when: action.tool_id == "payments" && input.amount > 100
    effect: require_approval
    reason: refunds over 100 need two approvals
    approval:
      roles: [finance]
      quorum: 2
      expiry: 1h
      step_up: true
`

// TestVerifyApprovedChain records an approval with a real Guard —
// pending_approval, two votes, approved, executing, executed — and checks
// that oars verify receipt accepts the chain.
func TestVerifyApprovedChain(t *testing.T) {
	ctx := context.Background()
	pol, err := policy.Parse("payments.yaml", []byte(approvalChainPolicy))
	require.NoError(t, err)
	set, err := policy.NewSet(pol)
	require.NoError(t, err)
	signer, _, err := receipt.GenerateKey("approval-test")
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	l, err := ledger.New(ctx, ledger.NewMemStore())
	require.NoError(t, err)
	g, err := oars.New(set, keys, l)
	require.NoError(t, err)

	a := &oars.Action{
		TenantID: "acme", AgentID: "support-bot", Principal: oars.Principal{UserID: "alice"},
		Resource: oars.Resource{ToolID: "payments", Operation: "refund", Target: "order/42"},
		Input:    json.RawMessage(`{"amount": 500}`),
	}
	out, err := g.Decide(ctx, a)
	require.NoError(t, err)
	require.Equal(t, receipt.StatusPendingApproval, out.Status)
	for _, user := range []string{"bob", "carol"} {
		_, err := g.Vote(ctx, out.ActionID, approval.Vote{
			Approver: approval.Approver{UserID: user, Roles: []string{"finance"}, TenantIDs: []string{"acme"}},
			Decision: approval.Approve, StepUpMethod: approval.StepUpTOTP,
		})
		require.NoError(t, err)
	}
	_, err = g.Execute(ctx, out.ActionID, a, func(context.Context, *oars.Action) (json.RawMessage, error) {
		return json.RawMessage(`{"refund_id":"re_1"}`), nil
	})
	require.NoError(t, err)
	entries, err := g.Receipts(ctx, out.ActionID)
	require.NoError(t, err)
	leaves := make([][]byte, len(entries))
	for i, e := range entries {
		leaves[i] = e.Bytes
	}

	dir := t.TempDir()
	chainFile := filepath.Join(dir, "chain.json")
	require.NoError(t, os.WriteFile(chainFile, append(append([]byte("["), bytes.Join(leaves, []byte(","))...), ']'), 0o644))
	jwksFile := filepath.Join(dir, "jwks.json")
	writeJWKS(t, jwksFile, signer)

	var stdout, stderr bytes.Buffer
	code := run(ctx, []string{"verify", "receipt", chainFile, "--jwks", jwksFile}, strings.NewReader(""), &stdout, &stderr)
	require.Equal(t, 0, code, "oars verify receipt: stdout %q, stderr %q", stdout.String(), stderr.String())
	for i, s := range []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote,
		receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted} {
		assert.Contains(t, stdout.String(), fmt.Sprintf("seq %d, status %s)", i+1, s))
	}

	// A vote taken out of the chain breaks it.
	broken := filepath.Join(dir, "broken.json")
	require.NoError(t, os.WriteFile(broken, append(append([]byte("["), bytes.Join(append(leaves[:1:1], leaves[2:]...), []byte(","))...), ']'), 0o644))
	stdout.Reset()
	code = run(ctx, []string{"verify", "receipt", broken, "--jwks", jwksFile}, strings.NewReader(""), &stdout, &stderr)
	assert.Equal(t, 1, code, "oars verify receipt (a vote removed): stdout %q", stdout.String())
}
