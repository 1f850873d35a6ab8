package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

func refusedAction() *oars.Action {
	return &oars.Action{
		TenantID: "acme", AgentID: "bot-2",
		Principal: oars.Principal{UserID: "alice", Delegation: []receipt.DelegationHop{
			{Subject: "executor", Scope: []string{"payments:read"}}, {Subject: "planner"},
		}},
		Resource:       oars.Resource{ToolID: "payments", Operation: "refund"},
		Input:          json.RawMessage(`{"amount": 5}`),
		IdempotencyKey: "key-1",
	}
}

func TestRefuse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, nil, []string{testPolicy})
	a := refusedAction()
	out, err := f.guard.Refuse(ctx, a, "delegated scope does not allow payments:refund")
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusDenied, out.Status)
	assert.False(t, out.Allowed())
	require.Len(t, out.Receipts, 1)
	r := out.Receipts[0].Receipt
	assert.Equal(t, int64(1), r.Seq)
	assert.Equal(t, receipt.ModeEnforce, r.Mode)
	assert.Equal(t, oars.RefusalErrorClass, r.ErrorClass)
	assert.Equal(t, []string{"delegated scope does not allow payments:refund"}, r.Reasons)
	assert.Nil(t, r.Policy, "no policy was evaluated")
	assert.Equal(t, a.Principal.Delegation, r.Principal.Delegation)
	assert.NotEqual(t, oars.IdempotentActionID("acme", "key-1"), out.ActionID, "the idempotency key is not taken")

	// The receipt is in the ledger, signed, and readable by action.
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	leaf, err := f.ledger.Leaf(ctx, out.Receipts[0].Index)
	require.NoError(t, err)
	got, err := v.Verify(leaf)
	require.NoError(t, err)
	assert.Equal(t, r.ReceiptID, got.ReceiptID)
	entries, err := f.guard.Receipts(ctx, out.ActionID)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// The legitimate request with the same key is decided normally.
	a2 := refusedAction()
	a2.AgentID = "bot-1"
	a2.Principal.Delegation = nil
	dec, err := f.guard.Decide(ctx, a2)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusAllowed, dec.Status)
	assert.False(t, dec.Replayed)
}

func TestRefuseErrors(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		store  ledger.Store
		action func() *oars.Action
		reason string
		want   error
	}{
		{"nil action", nil, func() *oars.Action { return nil }, "r", oars.ErrInvalidAction},
		{"empty reason", nil, refusedAction, "", oars.ErrInvalidAction},
		{"control character in reason", nil, refusedAction, "a\nb", oars.ErrInvalidAction},
		{"long reason", nil, refusedAction, strings.Repeat("r", oars.MaxRefusalReasonLength+1), oars.ErrInvalidAction},
		{"missing tenant", nil, func() *oars.Action { a := refusedAction(); a.TenantID = ""; return a }, "r", oars.ErrInvalidAction},
		{"input not JSON", nil, func() *oars.Action { a := refusedAction(); a.Input = json.RawMessage(`{`); return a }, "r", oars.ErrInvalidAction},
		{"ledger fails", failingStore{ledger.NewMemStore()}, refusedAction, "r", oars.ErrLedger},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.store, []string{testPolicy})
			_, err := f.guard.Refuse(ctx, tt.action(), tt.reason)
			assert.True(t, errors.Is(err, tt.want), "Refuse() = %v, want %v", err, tt.want)
		})
	}
}
