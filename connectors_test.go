package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/receipt"
)

// paymentsConnector is a Func connector for the payments tool of
// testPolicy whose refund operation requires an integer amount.
func paymentsConnector(t *testing.T, calls *atomic.Int64, fail error) *connector.Registry {
	t.Helper()
	fn, err := connector.NewFunc(connector.FuncOp{
		Operation: connector.Operation{
			Name:        "refund",
			InputSchema: json.RawMessage(`{"type":"object","required":["amount"],"properties":{"amount":{"type":"integer","minimum":1},"currency":{"type":"string"}},"additionalProperties":false}`),
		},
		Run: func(_ context.Context, req *connector.Request) (json.RawMessage, error) {
			calls.Add(1)
			if fail != nil {
				return nil, fail
			}
			return json.RawMessage(`{"refund_id":"rf_1","card":"4111111111111111","idempotency_key":"` + req.IdempotencyKey + `"}`), nil
		},
		Summary: func(out json.RawMessage) json.RawMessage {
			var v struct {
				ID string `json:"refund_id"`
			}
			if json.Unmarshal(out, &v) != nil {
				return nil
			}
			b, _ := json.Marshal(map[string]string{"refund_id": v.ID})
			return b
		},
	})
	require.NoError(t, err)
	reg := connector.NewRegistry()
	require.NoError(t, reg.Register("payments", fn))
	return reg
}

func TestConnectorRefusesBeforePolicy(t *testing.T) {
	var calls atomic.Int64
	reg := paymentsConnector(t, &calls, nil)
	f := newFixture(t, nil, []string{testPolicy}, oars.WithConnectors(reg))
	tests := []struct {
		name  string
		edit  func(a *oars.Action)
		class string
	}{
		{"unknown tool", func(a *oars.Action) { a.Resource.ToolID = "shell" }, oars.ClassUnknownTool},
		{"unknown operation", func(a *oars.Action) { a.Resource.Operation = "charge" }, oars.ClassUnknownOperation},
		{"wrong type", func(a *oars.Action) { a.Input = json.RawMessage(`{"amount":"50"}`) }, oars.ClassInvalidInput},
		{"missing field", func(a *oars.Action) { a.Input = json.RawMessage(`{"currency":"EUR"}`) }, oars.ClassInvalidInput},
		{"unknown field", func(a *oars.Action) { a.Input = json.RawMessage(`{"amount":5,"to":"x"}`) }, oars.ClassInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := refund(50, "order/1") // allowed by policy as given
			tt.edit(a)
			out, err := f.guard.Do(context.Background(), a, nil)
			require.ErrorIs(t, err, oars.ErrDenied)
			require.Len(t, out.Receipts, 1)
			r := out.Receipts[0].Receipt
			assert.Equal(t, receipt.StatusDenied, r.Status)
			assert.Equal(t, tt.class, r.ErrorClass)
			assert.Nil(t, r.Policy, "refused before any policy")
			require.Len(t, r.Reasons, 1)
		})
	}
	assert.Zero(t, calls.Load(), "the connector was called for a refused action")

	// A registered tool outside the allowlist is unknown too.
	reg.Allow([]string{"tickets"})
	out, err := f.guard.Do(context.Background(), refund(50, "order/2"), nil)
	require.ErrorIs(t, err, oars.ErrDenied)
	assert.Equal(t, oars.ClassUnknownTool, out.Receipts[0].Receipt.ErrorClass)
	reg.Allow(nil)
	verifyLedger(t, f)
}

func TestConnectorExecutesWithEvidence(t *testing.T) {
	var calls atomic.Int64
	f := newFixture(t, nil, []string{testPolicy}, oars.WithConnectors(paymentsConnector(t, &calls, nil)))
	a := refund(50, "order/1")
	out, err := f.guard.Do(context.Background(), a, nil)
	require.NoError(t, err)
	require.Equal(t, receipt.StatusExecuted, out.Status)
	assert.EqualValues(t, 1, calls.Load())
	last := out.Receipts[len(out.Receipts)-1]
	canon, err := receipt.Canonicalize(out.Output)
	require.NoError(t, err)
	assert.Equal(t, receipt.Digest(canon), last.Receipt.OutputDigest)
	assert.JSONEq(t, `{"refund_id":"rf_1"}`, string(last.Receipt.OutputSummary))
	assert.NotContains(t, string(last.Bytes), "4111111111111111", "raw output must not be in the receipt")
	assert.Contains(t, string(out.Output), `"idempotency_key":"`+out.ActionID+`"`, "the connector gets the action id as idempotency key")
	verifyLedger(t, f)
}

func TestConnectorFailureRecordsClassAndUpstreamStatus(t *testing.T) {
	var calls atomic.Int64
	fail := &connector.Error{Class: "upstream_5xx", UpstreamStatus: 503, Retryable: true, Err: errors.New("token=s3cret rejected")}
	f := newFixture(t, nil, []string{testPolicy}, oars.WithConnectors(paymentsConnector(t, &calls, fail)))
	out, err := f.guard.Do(context.Background(), refund(50, "order/1"), nil)
	require.Error(t, err)
	require.ErrorIs(t, err, fail)
	last := out.Receipts[len(out.Receipts)-1]
	assert.Equal(t, receipt.StatusFailed, last.Receipt.Status)
	assert.Equal(t, "upstream_5xx", last.Receipt.ErrorClass)
	assert.EqualValues(t, 503, last.Receipt.UpstreamStatus)
	assert.NotContains(t, string(last.Bytes), "s3cret")
	verifyLedger(t, f)
}

func TestNilExecWithoutConnectors(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	_, err := f.guard.Do(context.Background(), refund(50, "order/1"), nil)
	require.ErrorIs(t, err, oars.ErrInvalidAction)
	_, err = oars.New(nil, nil, nil, oars.WithConnectors(nil))
	require.Error(t, err)
}
