package identity_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
)

func TestParseCapabilityLimits(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *identity.CapabilityLimits
		err  string // substring of the error; "" for none
	}{
		{name: "empty", in: ``, want: nil},
		{name: "empty object", in: `{}`, want: &identity.CapabilityLimits{}},
		{name: "all members", in: `{"max_per_action":5000,"daily_cap":50000,"currencies":["EUR","USD"],"amount_field":"cents","currency_field":"cur"}`,
			want: &identity.CapabilityLimits{MaxPerAction: 5000, DailyCap: 50000, Currencies: []string{"EUR", "USD"}, AmountField: "cents", CurrencyField: "cur"}},
		{name: "OAP currency limits", in: `{"currency_limits":{"USD":{"max_per_tx":5000,"daily_cap":50000}}}`,
			want: &identity.CapabilityLimits{CurrencyLimits: map[string]identity.CurrencyLimit{"USD": {MaxPerTx: 5000, DailyCap: 50000}}}},
		{name: "unknown member", in: `{"daily_cap":1,"weekly_cap":2}`, err: "weekly_cap"},
		{name: "unknown currency member", in: `{"currency_limits":{"USD":{"max":1}}}`, err: "currency_limits"},
		{name: "zero cap", in: `{"daily_cap":0}`, err: "daily_cap must be an integer of at least 1"},
		{name: "negative max", in: `{"max_per_action":-1}`, err: "max_per_action must be"},
		{name: "fractional cap", in: `{"daily_cap":1.5}`, err: "daily_cap"},
		{name: "string cap", in: `{"daily_cap":"10"}`, err: "daily_cap"},
		{name: "empty currencies", in: `{"currencies":[]}`, err: "currencies must not be empty"},
		{name: "lowercase currency", in: `{"currencies":["eur"]}`, err: "currencies[0] must be three capital letters"},
		{name: "repeated currency", in: `{"currencies":["EUR","EUR"]}`, err: "currencies[1] repeats"},
		{name: "bad currency key", in: `{"currency_limits":{"euro":{}}}`, err: "currency_limits keys"},
		{name: "zero currency cap", in: `{"currency_limits":{"EUR":{"daily_cap":0}}}`, err: "currency_limits daily_cap"},
		{name: "empty amount field", in: `{"amount_field":""}`, err: "amount_field"},
		{name: "control char field", in: `{"currency_field":"a\u0001"}`, err: "currency_field"},
		{name: "not an object", in: `[1]`, err: "must be a JSON object"},
		{name: "duplicate key", in: `{"daily_cap":1,"daily_cap":2}`, err: "not strict JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := identity.ParseCapabilityLimits(json.RawMessage(tc.in))
			if tc.err != "" {
				require.ErrorIs(t, err, identity.ErrInvalidPassport, "ParseCapabilityLimits(%s)", tc.in)
				assert.Contains(t, err.Error(), tc.err, "ParseCapabilityLimits(%s) error", tc.in)
				return
			}
			require.NoError(t, err, "ParseCapabilityLimits(%s)", tc.in)
			assert.Equal(t, tc.want, got, "ParseCapabilityLimits(%s)", tc.in)
		})
	}
}

func TestPassportValidateLimits(t *testing.T) {
	p := passporttest.Passport("acme", "bot")
	require.NoError(t, p.Validate(), "the conformance passport (OAP currency_limits) stays valid")
	p.Capabilities[0].Limits = json.RawMessage(`{"daily_cap":10,"hourly_cap":1}`)
	err := p.Validate()
	require.ErrorIs(t, err, identity.ErrInvalidPassport)
	assert.Contains(t, err.Error(), "capabilities[0].limits")
	assert.NotContains(t, err.Error(), "10", "the error does not echo values")
}

func TestCapabilityLimitsEffective(t *testing.T) {
	l, err := identity.ParseCapabilityLimits(json.RawMessage(
		`{"max_per_action":500,"daily_cap":1000,"currencies":["EUR"],"currency_limits":{"USD":{"max_per_tx":100},"GBP":{"daily_cap":5000}}}`))
	require.NoError(t, err)
	tests := []struct {
		currency string
		max, cap int64
		allowed  bool
	}{
		{currency: "EUR", max: 500, cap: 1000, allowed: true},
		{currency: "USD", max: 100, cap: 1000, allowed: true},
		{currency: "GBP", max: 500, cap: 1000, allowed: true},
		{currency: "CHF", max: 500, cap: 1000, allowed: false},
	}
	for _, tc := range tests {
		t.Run(tc.currency, func(t *testing.T) {
			maxPer, dailyCap := l.Effective(tc.currency)
			assert.Equal(t, tc.max, maxPer, "Effective(%s) max", tc.currency)
			assert.Equal(t, tc.cap, dailyCap, "Effective(%s) cap", tc.currency)
			assert.Equal(t, tc.allowed, l.AllowsCurrency(tc.currency), "AllowsCurrency(%s)", tc.currency)
		})
	}
	var none *identity.CapabilityLimits
	assert.False(t, none.Metered(), "nil limits are not metered")
	assert.Equal(t, "amount", none.AmountMember())
	assert.Equal(t, "currency", none.CurrencyMember())
}

func TestDayWindow(t *testing.T) {
	paris := time.FixedZone("CET", 3600)
	tests := []struct {
		in, want time.Time
	}{
		{time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC), time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 15, 0, 30, 0, 0, paris), time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)},
		{time.Date(2026, 3, 14, 23, 59, 59, 999, time.UTC), time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		if got := identity.DayWindow(tc.in); !got.Equal(tc.want) || got.Location() != time.UTC {
			t.Errorf("DayWindow(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func FuzzParseCapabilityLimits(f *testing.F) {
	for _, s := range []string{
		`{}`, `{"daily_cap":10}`, `{"max_per_action":1,"currencies":["EUR"]}`,
		`{"currency_limits":{"USD":{"max_per_tx":5000,"daily_cap":50000}}}`, `{"daily_cap":1e400}`, `[]`, `{"amount_field":"x"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := identity.ParseCapabilityLimits(data)
		if err != nil {
			if !errors.Is(err, identity.ErrInvalidPassport) {
				t.Fatalf("ParseCapabilityLimits error %v does not wrap ErrInvalidPassport", err)
			}
			return
		}
		if l == nil {
			if len(data) != 0 {
				t.Fatalf("ParseCapabilityLimits(%q) = nil, nil", data)
			}
			return
		}
		if l.MaxPerAction < 0 || l.DailyCap < 0 {
			t.Fatalf("ParseCapabilityLimits(%q) accepted a negative limit", data)
		}
		for c := range l.CurrencyLimits {
			if !l.AllowsCurrency(c) {
				t.Fatalf("currency %s of currency_limits not allowed", c)
			}
		}
	})
}

func ExampleParseCapabilityLimits() {
	l, err := identity.ParseCapabilityLimits(json.RawMessage(`{"max_per_action":5000,"daily_cap":20000,"currencies":["EUR"]}`))
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	maxPer, dailyCap := l.Effective("EUR")
	fmt.Println(maxPer, dailyCap, l.AllowsCurrency("EUR"), l.AllowsCurrency("USD"), l.AmountMember())
	// Output: 5000 20000 true false amount
}
