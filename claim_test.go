package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/receipt"
)

type classed struct{}

func (classed) Error() string      { return "tool broke" }
func (classed) ErrorClass() string { return "tool_error" }

// TestClaimComplete: a caller that runs the action itself claims it
// first and records the result after; the claim is exclusive.
func TestClaimComplete(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	ctx := context.Background()
	for _, tt := range []struct {
		name   string
		output json.RawMessage
		err    error
		want   receipt.Status
	}{
		{"executed", json.RawMessage(`{"refund_id":"r1"}`), nil, receipt.StatusExecuted},
		{"failed", nil, classed{}, receipt.StatusFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := refund(50, "order/"+tt.name)
			dec, err := f.guard.Decide(ctx, a)
			require.NoError(t, err)
			id := dec.ActionID

			_, err = f.guard.Complete(ctx, id, refund(50, "order/"+tt.name), tt.output, tt.err)
			require.ErrorIs(t, err, oars.ErrNotClaimed, "nothing to complete before the claim")

			claimed, err := f.guard.Claim(ctx, id, refund(50, "order/"+tt.name))
			require.NoError(t, err)
			assert.Equal(t, receipt.StatusExecuting, claimed.Status)
			_, err = f.guard.Claim(ctx, id, refund(50, "order/"+tt.name))
			require.ErrorIs(t, err, oars.ErrAlreadyClaimed)

			_, err = f.guard.Complete(ctx, id, refund(51, "order/"+tt.name), tt.output, tt.err)
			require.ErrorIs(t, err, oars.ErrApprovalMismatch, "another call")

			out, err := f.guard.Complete(ctx, id, refund(50, "order/"+tt.name), tt.output, tt.err)
			if tt.err != nil {
				require.True(t, errors.Is(err, tt.err) || err != nil)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tt.want, out.Status)
			last := out.Receipts[len(out.Receipts)-1].Receipt
			if tt.err != nil {
				assert.Equal(t, "tool_error", last.ErrorClass)
			} else {
				canon, err := receipt.Canonicalize(tt.output)
				require.NoError(t, err)
				assert.Equal(t, receipt.Digest(canon), last.OutputDigest)
			}
			_, err = f.guard.Complete(ctx, id, refund(50, "order/"+tt.name), tt.output, tt.err)
			require.ErrorIs(t, err, oars.ErrNotClaimed, "completed once")
		})
	}
	// A denied action cannot be claimed.
	denied, err := f.guard.Decide(ctx, refund(5, "order/blocked"))
	require.NoError(t, err)
	_, err = f.guard.Claim(ctx, denied.ActionID, refund(5, "order/blocked"))
	require.ErrorIs(t, err, oars.ErrNotApproved)
	verifyLedger(t, f)
}
