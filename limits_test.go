package oars_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// limitsPolicy allows refunds through finance.payment except on the
// frozen order, and holds those of the order "order/approval".
const limitsPolicy = `
id: limits
version: "1"
default: deny
rules:
  - id: refunds
    when: action.tool_id == "finance.payment" && action.operation == "refund"
    effect: allow
    reason: refunds are allowed
  - id: frozen
    when: action.target == "order/frozen"
    effect: deny
    reason: this order is frozen
  - id: held
    when: action.target == "order/approval"
    effect: require_approval
    reason: this order needs approval
    approval:
      roles: [finance]
      quorum: 1
      expiry: 1h
`

var limitsDay = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// cappedPassport returns the active passport of acme/pay-bot with the
// capability finance.payment.refund limited by limits.
func cappedPassport(limits string) *identity.Passport {
	return &identity.Passport{
		AgentID: "pay-bot", TenantID: "acme", OwnerID: "org_12345678",
		Status: identity.PassportActive, AssuranceLevel: "L2",
		Capabilities: []identity.Capability{
			{ID: "finance.payment.refund", Limits: json.RawMessage(limits)},
			{ID: "data.export"},
		},
	}
}

func staticPassport(p *identity.Passport) oars.PassportSource {
	return oars.PassportSourceFunc(func(_ context.Context, tenantID, agentID string) (*identity.Passport, error) {
		if tenantID == p.TenantID && agentID == p.AgentID {
			return p.Clone(), nil
		}
		return nil, identity.ErrPassportNotFound
	})
}

func payment(input, target string) *oars.Action {
	return &oars.Action{
		TenantID:  "acme",
		AgentID:   "pay-bot",
		Principal: oars.Principal{UserID: "alice"},
		Resource:  oars.Resource{ToolID: "finance.payment", Operation: "refund", Target: target},
		Input:     json.RawMessage(input),
	}
}

const capKey = "pay-bot/finance.payment.refund"

func TestLimits(t *testing.T) {
	const limits = `{"max_per_action":500,"daily_cap":1000,"currencies":["EUR","USD"],"currency_limits":{"USD":{"max_per_tx":100}}}`
	tests := []struct {
		name     string
		used     int64 // consumed from the EUR counter before the call
		input    string
		limits   string
		tool     string
		status   receipt.Status
		reasons  []string
		eurAfter int64
	}{
		{name: "allowed", input: `{"amount":400,"currency":"EUR"}`, status: receipt.StatusAllowed, eurAfter: 400},
		{name: "exactly the cap", used: 600, input: `{"amount":400,"currency":"EUR"}`, status: receipt.StatusAllowed, eurAfter: 1000},
		{name: "over the cap", used: 601, input: `{"amount":400,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonDailyCap, oars.ReasonLimitExceededCode}, eurAfter: 601},
		{name: "over max per action", input: `{"amount":501,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonMaxPerAction, oars.ReasonLimitExceededCode}},
		{name: "per-currency max", input: `{"amount":101,"currency":"USD"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonMaxPerAction, oars.ReasonLimitExceededCode}},
		{name: "other currency counted apart", used: 1000, input: `{"amount":100,"currency":"USD"}`, status: receipt.StatusAllowed, eurAfter: 1000},
		{name: "currency not allowed", input: `{"amount":1,"currency":"GBP"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonCurrencyUnsupported, oars.ReasonCurrencyUnsupportedCode}},
		{name: "no currency", input: `{"amount":1}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonCurrencyInvalid, oars.ReasonInvalidContextCode}},
		{name: "currency not a string", input: `{"amount":1,"currency":978}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonCurrencyInvalid, oars.ReasonInvalidContextCode}},
		{name: "no amount", input: `{"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "fractional amount", input: `{"amount":1.5,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "zero amount", input: `{"amount":0,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "negative amount", input: `{"amount":-5,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "string amount", input: `{"amount":"5","currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "huge amount", input: `{"amount":1e300,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "amount just over int64", input: `{"amount":9223372036854775808,"currency":"EUR"}`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "whole amount with an exponent", input: `{"amount":4e2,"currency":"EUR"}`, status: receipt.StatusAllowed, eurAfter: 400},
		{name: "input not an object", input: `[1]`, status: receipt.StatusDenied,
			reasons: []string{oars.ReasonAmountInvalid, oars.ReasonInvalidContextCode}},
		{name: "custom fields", limits: `{"daily_cap":10,"amount_field":"cents","currency_field":"cur","currencies":["EUR"]}`,
			input: `{"cents":10,"cur":"EUR","amount":"ignored"}`, status: receipt.StatusAllowed, eurAfter: 10},
		{name: "no limits: not metered", limits: `{}`, input: `{}`, status: receipt.StatusAllowed},
		{name: "capability not in passport: policy decides", tool: "finance.payout", input: `{}`, status: receipt.StatusDenied,
			reasons: []string{"policy limits: default deny"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			lim := limits
			if tc.limits != "" {
				lim = tc.limits
			}
			counters := &identity.MemCounterStore{}
			window := identity.DayWindow(limitsDay)
			if tc.used > 0 {
				_, ok, err := counters.Consume(ctx, "acme", capKey+"/EUR", window, tc.used, 1000)
				require.NoError(t, err)
				require.True(t, ok)
			}
			f := newFixture(t, nil, []string{limitsPolicy},
				oars.WithPassports(staticPassport(cappedPassport(lim))), oars.WithCounters(counters),
				oars.WithClock(func() time.Time { return limitsDay }))
			a := payment(tc.input, "order/1")
			if tc.tool != "" {
				a.Resource.ToolID = tc.tool
			}
			out, err := f.guard.Decide(ctx, a)
			require.NoError(t, err)
			assert.Equal(t, tc.status, out.Status, "Decide(%s).Status", tc.input)
			if tc.reasons != nil {
				assert.Equal(t, tc.reasons, out.Receipts[0].Receipt.Reasons, "Decide(%s) reasons", tc.input)
			}
			key := capKey + "/EUR"
			if tc.limits != "" {
				key = capKey
				if tc.name == "custom fields" {
					key = capKey + "/EUR"
				}
			}
			assert.Equal(t, tc.eurAfter, counters.Used("acme", key, window), "EUR counter after Decide(%s)", tc.input)
			verifyLedger(t, f)
		})
	}
}

func TestLimitsDeniedReceiptHasNoPolicy(t *testing.T) {
	f := newFixture(t, nil, []string{limitsPolicy},
		oars.WithPassports(staticPassport(cappedPassport(`{"max_per_action":5}`))), oars.WithShadowMode())
	out, err := f.guard.Do(context.Background(), payment(`{"amount":6}`, "order/1"), func(context.Context, *oars.Action) (json.RawMessage, error) {
		t.Error("exec ran for an action over its limit")
		return nil, nil
	})
	require.ErrorIs(t, err, oars.ErrDenied, "Do over the limit in shadow mode")
	r := out.Receipts[0].Receipt
	assert.Equal(t, receipt.StatusDenied, r.Status)
	assert.Equal(t, receipt.ModeEnforce, r.Mode, "limits are enforced in shadow mode")
	assert.Nil(t, r.Policy, "no policy evaluated")
	assert.Nil(t, out.Decision.Matched)
}

func TestLimitsReleasedWhenNotRun(t *testing.T) {
	ctx := context.Background()
	window := identity.DayWindow(limitsDay)
	tests := []struct {
		name   string
		target string
		opts   []oars.Option
		status receipt.Status
		used   int64
	}{
		{name: "policy deny releases", target: "order/frozen", status: receipt.StatusDenied, used: 0},
		{name: "allow keeps", target: "order/1", status: receipt.StatusAllowed, used: 7},
		{name: "pending approval keeps", target: "order/approval", status: receipt.StatusPendingApproval, used: 7},
		{name: "shadow deny keeps (it runs)", target: "order/frozen", opts: []oars.Option{oars.WithShadowMode()}, status: receipt.StatusDenied, used: 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counters := &identity.MemCounterStore{}
			opts := append([]oars.Option{
				oars.WithPassports(staticPassport(cappedPassport(`{"daily_cap":10}`))), oars.WithCounters(counters),
				oars.WithClock(func() time.Time { return limitsDay }),
			}, tc.opts...)
			f := newFixture(t, nil, []string{limitsPolicy}, opts...)
			out, err := f.guard.Decide(ctx, payment(`{"amount":7}`, tc.target))
			require.NoError(t, err)
			assert.Equal(t, tc.status, out.Status)
			assert.Equal(t, tc.used, counters.Used("acme", capKey, window), "counter after Decide")
		})
	}
}

func TestLimitsReleasedOnLedgerFailure(t *testing.T) {
	counters := &identity.MemCounterStore{}
	f := newFixture(t, failingStore{ledger.NewMemStore()}, []string{limitsPolicy},
		oars.WithPassports(staticPassport(cappedPassport(`{"daily_cap":10}`))), oars.WithCounters(counters),
		oars.WithClock(func() time.Time { return limitsDay }))
	_, err := f.guard.Decide(context.Background(), payment(`{"amount":7}`, "order/1"))
	require.ErrorIs(t, err, oars.ErrLedger)
	assert.Equal(t, int64(0), counters.Used("acme", capKey, identity.DayWindow(limitsDay)), "counter after a failed append")
}

var errDisk = errors.New("disk on fire")

// brokenCounters fails every call.
type brokenCounters struct{}

func (brokenCounters) Consume(context.Context, string, string, time.Time, int64, int64) (int64, bool, error) {
	return 0, false, errDisk
}
func (brokenCounters) Release(context.Context, string, string, time.Time, int64) error {
	return errDisk
}

func TestLimitsFailClosed(t *testing.T) {
	tests := []struct {
		name string
		opts []oars.Option
	}{
		{name: "counter store error", opts: []oars.Option{oars.WithCounters(brokenCounters{})}},
		{name: "daily cap without counter store"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := append([]oars.Option{oars.WithPassports(staticPassport(cappedPassport(`{"daily_cap":10}`)))}, tc.opts...)
			f := newFixture(t, nil, []string{limitsPolicy}, opts...)
			_, err := f.guard.Do(context.Background(), payment(`{"amount":1}`, "order/1"), func(context.Context, *oars.Action) (json.RawMessage, error) {
				t.Error("exec ran although the limits could not be checked")
				return nil, nil
			})
			require.ErrorIs(t, err, oars.ErrLimits)
			size, err := f.store.Size(context.Background())
			require.NoError(t, err)
			assert.Equal(t, int64(0), size, "ledger size after a refused check")
		})
	}
}

func TestWithCapabilityFor(t *testing.T) {
	counters := &identity.MemCounterStore{}
	f := newFixture(t, nil, []string{limitsPolicy},
		oars.WithPassports(staticPassport(cappedPassport(`{"max_per_action":5}`))), oars.WithCounters(counters),
		oars.WithCapabilityFor(func(r oars.Resource) string { return "finance.payment." + r.Target }))
	a := payment(`{"amount":6}`, "refund")
	out, err := f.guard.Decide(context.Background(), a)
	require.NoError(t, err)
	assert.Equal(t, []string{oars.ReasonMaxPerAction, oars.ReasonLimitExceededCode}, out.Receipts[0].Receipt.Reasons)
	_, err = oars.New(f.guard.Policies(), f.keys, f.ledger, oars.WithCapabilityFor(nil))
	assert.Error(t, err, "WithCapabilityFor(nil)")
	_, err = oars.New(f.guard.Policies(), f.keys, f.ledger, oars.WithCounters(nil))
	assert.Error(t, err, "WithCounters(nil)")
}

// raceCap runs n concurrent Decide calls of amount 1, spread over guards,
// against a daily cap of capN and checks that exactly capN are allowed.
func raceCap(t *testing.T, guards []*oars.Guard, n, capN int, counter func() int64) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, limited := 0, 0
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := guards[i%len(guards)].Decide(context.Background(), payment(`{"amount":1}`, fmt.Sprintf("order/%d", i)))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case out.Status == receipt.StatusAllowed:
				allowed++
			case out.Status == receipt.StatusDenied && len(out.Receipts[0].Receipt.Reasons) == 2 &&
				out.Receipts[0].Receipt.Reasons[1] == oars.ReasonLimitExceededCode:
				limited++
			default:
				errs <- fmt.Errorf("unexpected outcome %s %v", out.Status, out.Receipts[0].Receipt.Reasons)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	assert.Equal(t, capN, allowed, "allowed actions")
	assert.Equal(t, n-capN, limited, "actions denied with %s", oars.ReasonLimitExceededCode)
	assert.Equal(t, int64(capN), counter(), "counter after the race")
}

func TestDailyCapConcurrentSQLite(t *testing.T) {
	store := openSQLite(t, filepath.Join(t.TempDir(), "oars.db"))
	f := newFixture(t, store, []string{limitsPolicy},
		oars.WithPassports(staticPassport(cappedPassport(`{"daily_cap":10,"max_per_action":1}`))), oars.WithCounters(store),
		oars.WithClock(func() time.Time { return limitsDay }))
	raceCap(t, []*oars.Guard{f.guard}, 50, 10, func() int64 {
		used, err := store.Counter(context.Background(), "acme", capKey, identity.DayWindow(limitsDay))
		require.NoError(t, err)
		return used
	})
	verifyLedger(t, f)
}

func TestDailyCapConcurrentTwoGuardsPostgres(t *testing.T) {
	url, schema := postgresSchema(t)
	passports := staticPassport(cappedPassport(`{"daily_cap":10,"max_per_action":1}`))
	var guards []*oars.Guard
	var first interface {
		Counter(ctx context.Context, tenantID, key string, window time.Time) (int64, error)
	}
	for i := range 2 {
		store := openPostgres(t, url, schema)
		if i == 0 {
			first = store
		}
		f := newFixture(t, store, []string{limitsPolicy}, oars.WithPassports(passports), oars.WithCounters(store),
			oars.WithClock(func() time.Time { return limitsDay }))
		guards = append(guards, f.guard)
	}
	raceCap(t, guards, 50, 10, func() int64 {
		used, err := first.Counter(context.Background(), "acme", capKey, identity.DayWindow(limitsDay))
		require.NoError(t, err)
		return used
	})
}
