package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
	"github.com/oarsdev/oars/receipt"
)

// erroringPolicy fails to evaluate for every action: input.nope is absent.
const erroringPolicy = `
id: broken
version: "1"
rules:
  - id: errs
    when: input.nope > 1
    effect: allow
    reason: never evaluates
`

// capabilityPolicy allows refunds to agents whose passport grants them.
const capabilityPolicy = `
id: caps
version: "1"
rules:
  - id: refund-capability
    when: action.operation == "refund" && "finance.payment.refund" in agent.capabilities && agent.assurance_level == "L2"
    effect: allow
    reason: the passport grants refunds
`

func TestPassportKillSwitch(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		status      identity.PassportStatus // "" for no passport
		require     bool
		shadow      bool
		wantReasons []string // nil: policy evaluated (and fails)
	}{
		{name: "active goes to policy", status: identity.PassportActive},
		{name: "suspended", status: identity.PassportSuspended, wantReasons: []string{oars.ReasonPassportSuspended, oars.ReasonPassportCode}},
		{name: "suspended in shadow mode", status: identity.PassportSuspended, shadow: true, wantReasons: []string{oars.ReasonPassportSuspended, oars.ReasonPassportCode}},
		{name: "revoked", status: identity.PassportRevoked, wantReasons: []string{oars.ReasonPassportRevoked, oars.ReasonPassportCode}},
		{name: "draft", status: identity.PassportDraft, wantReasons: []string{oars.ReasonPassportInactive, oars.ReasonPassportCode}},
		{name: "no passport goes to policy"},
		{name: "no passport, required", require: true, wantReasons: []string{oars.ReasonPassportMissing, oars.ReasonPassportCode}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &identity.MemPassportStore{}
			if tt.status != "" {
				p := passporttest.Passport("acme", "support-bot")
				p.Status = tt.status
				require.NoError(t, store.PutPassport(ctx, p))
			}
			opts := []oars.Option{oars.WithPassports(oars.PassportSourceFunc(store.GetPassport))}
			if tt.require {
				opts = append(opts, oars.WithRequirePassport())
			}
			if tt.shadow {
				opts = append(opts, oars.WithShadowMode())
			}
			f := newFixture(t, nil, []string{erroringPolicy}, opts...)
			ran := false
			out, err := f.guard.Do(ctx, refund(50, "order/1"), func(context.Context, *oars.Action) (json.RawMessage, error) {
				ran = true
				return nil, nil
			})
			if tt.wantReasons == nil {
				require.ErrorIs(t, err, oars.ErrPolicy, "Do(%s): the policy must be evaluated", tt.name)
				return
			}
			require.ErrorIs(t, err, oars.ErrDenied, "Do(%s)", tt.name)
			assert.False(t, ran, "Do(%s) ran exec", tt.name)
			require.Len(t, out.Receipts, 1)
			r := out.Receipts[0].Receipt
			assert.Equal(t, receipt.StatusDenied, r.Status)
			assert.Equal(t, int64(1), r.Seq)
			assert.Equal(t, receipt.ModeEnforce, r.Mode, "the kill switch is never in shadow mode")
			assert.Equal(t, tt.wantReasons, r.Reasons)
			assert.Nil(t, r.Policy, "no policy was evaluated")
			assert.False(t, out.Allowed())
			verifyLedger(t, f)
		})
	}
}

func TestPassportStoreErrorFailsClosed(t *testing.T) {
	src := oars.PassportSourceFunc(func(context.Context, string, string) (*identity.Passport, error) {
		return nil, errors.New("registry unreachable")
	})
	f := newFixture(t, nil, []string{testPolicy}, oars.WithPassports(src))
	out, err := f.guard.Decide(context.Background(), refund(50, "order/1"))
	require.ErrorIs(t, err, oars.ErrIdentity)
	assert.Nil(t, out)
	size, err := f.ledger.Size(context.Background())
	require.NoError(t, err)
	assert.Equal(t, int64(0), size, "receipts recorded after a passport store error")
}

func TestPassportCapabilitiesInCEL(t *testing.T) {
	ctx := context.Background()
	store := &identity.MemPassportStore{}
	withCap := passporttest.Passport("acme", "support-bot") // grants finance.payment.refund, L2
	require.NoError(t, store.PutPassport(ctx, withCap))
	without := passporttest.Passport("acme", "other-bot")
	without.Capabilities = without.Capabilities[1:]
	require.NoError(t, store.PutPassport(ctx, without))

	f := newFixture(t, nil, []string{capabilityPolicy}, oars.WithPassports(oars.PassportSourceFunc(store.GetPassport)))
	tests := []struct {
		agent string
		want  receipt.Status
	}{
		{"support-bot", receipt.StatusAllowed},
		{"other-bot", receipt.StatusDenied},
		{"no-passport-bot", receipt.StatusDenied},
	}
	for _, tt := range tests {
		t.Run(tt.agent, func(t *testing.T) {
			a := refund(50, "order/"+tt.agent)
			a.AgentID = tt.agent
			out, err := f.guard.Decide(ctx, a)
			require.NoError(t, err)
			assert.Equal(t, tt.want, out.Status, "Decide(agent %s).Status", tt.agent)
		})
	}
}
