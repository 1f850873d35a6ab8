package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"sync"
	"time"

	jsonv2 "github.com/go-json-experiment/json"

	"github.com/oarsdev/oars/internal/strictjson"
)

// The limits of a capability (its JSON "limits" member) are an object
// with these optional members, amounts being integers in minor units
// (cents for EUR):
//
//	{
//	  "max_per_action": 5000,          // most one action may move
//	  "daily_cap": 50000,              // most all actions may move per UTC day
//	  "currencies": ["EUR", "USD"],    // the currencies allowed
//	  "amount_field": "amount",        // input member holding the amount (default "amount")
//	  "currency_field": "currency",    // input member holding the currency (default "currency")
//	  "currency_limits": {             // OAP's per-currency form
//	    "USD": {"max_per_tx": 5000, "daily_cap": 50000}
//	  }
//	}
//
// Unknown members are refused. Limits and caps, when present, are
// integers of at least 1. A currency is three capital letters; the
// currencies allowed are those of "currencies" and the keys of
// "currency_limits" (none of either: any currency, and the currency is
// not read). When a currency has its own limits and the top-level ones
// are also set, the smaller applies. Daily caps are counted per agent,
// capability and, when currencies are restricted, currency.

// MaxCurrencies bounds the currencies of one capability's limits.
const MaxCurrencies = 64

// maxFieldLength bounds amount_field and currency_field.
const maxFieldLength = 64

var currencyCode = regexp.MustCompile(`^[A-Z]{3}$`)

// CurrencyLimit is OAP's limit of one currency: the most one action may
// move and the daily cap, in minor units; 0 means none.
type CurrencyLimit struct {
	MaxPerTx int64 `json:"max_per_tx,omitzero"`
	DailyCap int64 `json:"daily_cap,omitzero"`
}

// CapabilityLimits are the parsed limits of a [Capability] (see the
// schema above). Zero values mean "no limit"; the zero value limits
// nothing.
type CapabilityLimits struct {
	// MaxPerAction is the most one action may move; 0 means no limit.
	MaxPerAction int64 `json:"max_per_action,omitzero"`
	// DailyCap is the most all actions of the agent under this
	// capability may move per UTC day; 0 means no cap.
	DailyCap int64 `json:"daily_cap,omitzero"`
	// Currencies are the currencies allowed, besides the keys of
	// CurrencyLimits.
	Currencies []string `json:"currencies,omitempty"`
	// AmountField and CurrencyField name the top-level input members
	// holding the amount and the currency; empty means "amount" and
	// "currency".
	AmountField   string `json:"amount_field,omitempty"`
	CurrencyField string `json:"currency_field,omitempty"`
	// CurrencyLimits are OAP's per-currency limits.
	CurrencyLimits map[string]CurrencyLimit `json:"currency_limits,omitempty"`
}

// limitsJSON is the decoding form of CapabilityLimits: pointers tell an
// explicit 0 from an absent member.
type limitsJSON struct {
	MaxPerAction   *int64                       `json:"max_per_action"`
	DailyCap       *int64                       `json:"daily_cap"`
	Currencies     []string                     `json:"currencies"`
	AmountField    *string                      `json:"amount_field"`
	CurrencyField  *string                      `json:"currency_field"`
	CurrencyLimits map[string]currencyLimitJSON `json:"currency_limits"`
}

type currencyLimitJSON struct {
	MaxPerTx *int64 `json:"max_per_tx"`
	DailyCap *int64 `json:"daily_cap"`
}

// ParseCapabilityLimits decodes a capability's limits strictly: strict
// JSON, an object with only the members of the schema, positive integer
// limits, valid currency codes and field names. Empty raw gives nil and
// no error. Errors wrap [ErrInvalidPassport], name the offending member
// and never echo the input.
func ParseCapabilityLimits(raw json.RawMessage) (*CapabilityLimits, error) {
	l, msg := parseLimits(raw)
	if msg != "" {
		return nil, fmt.Errorf("%w: limits: %s", ErrInvalidPassport, msg)
	}
	return l, nil
}

// parseLimits decodes raw, or says what is wrong with it.
func parseLimits(raw json.RawMessage) (*CapabilityLimits, string) {
	if len(raw) == 0 {
		return nil, ""
	}
	if len(raw) > MaxLimitsBytes {
		return nil, fmt.Sprintf("larger than %d bytes", MaxLimitsBytes)
	}
	if err := strictjson.Check(raw); err != nil {
		return nil, "not strict JSON"
	}
	var obj map[string]json.RawMessage
	if err := jsonv2.Unmarshal(raw, &obj); err != nil || obj == nil {
		return nil, "must be a JSON object"
	}
	var j limitsJSON
	if err := jsonv2.Unmarshal(raw, &j, jsonv2.RejectUnknownMembers(true)); err != nil {
		return nil, decodeField(err)
	}
	l := &CapabilityLimits{}
	if !setLimit(&l.MaxPerAction, j.MaxPerAction) {
		return nil, "max_per_action must be an integer of at least 1"
	}
	if !setLimit(&l.DailyCap, j.DailyCap) {
		return nil, "daily_cap must be an integer of at least 1"
	}
	if j.Currencies != nil && len(j.Currencies) == 0 {
		return nil, "currencies must not be empty"
	}
	if len(j.Currencies)+len(j.CurrencyLimits) > MaxCurrencies {
		return nil, fmt.Sprintf("more than %d currencies", MaxCurrencies)
	}
	for i, c := range j.Currencies {
		if !currencyCode.MatchString(c) {
			return nil, fmt.Sprintf("currencies[%d] must be three capital letters", i)
		}
		if slices.Contains(j.Currencies[:i], c) {
			return nil, fmt.Sprintf("currencies[%d] repeats an earlier currency", i)
		}
	}
	l.Currencies = j.Currencies
	for _, f := range []struct {
		name string
		v    *string
		dst  *string
	}{
		{"amount_field", j.AmountField, &l.AmountField},
		{"currency_field", j.CurrencyField, &l.CurrencyField},
	} {
		if f.v == nil {
			continue
		}
		if msg := checkID(*f.v); msg != "" || len(*f.v) > maxFieldLength {
			return nil, fmt.Sprintf("%s must be a member name of 1 to %d bytes without control characters", f.name, maxFieldLength)
		}
		*f.dst = *f.v
	}
	if j.CurrencyLimits != nil {
		l.CurrencyLimits = make(map[string]CurrencyLimit, len(j.CurrencyLimits))
		codes := make([]string, 0, len(j.CurrencyLimits))
		for c := range j.CurrencyLimits {
			codes = append(codes, c)
		}
		sort.Strings(codes) // the first error is deterministic
		for _, c := range codes {
			if !currencyCode.MatchString(c) {
				return nil, "currency_limits keys must be three capital letters"
			}
			cj := j.CurrencyLimits[c]
			var cl CurrencyLimit
			if !setLimit(&cl.MaxPerTx, cj.MaxPerTx) {
				return nil, "currency_limits max_per_tx must be integers of at least 1"
			}
			if !setLimit(&cl.DailyCap, cj.DailyCap) {
				return nil, "currency_limits daily_cap must be integers of at least 1"
			}
			l.CurrencyLimits[c] = cl
		}
	}
	return l, ""
}

// setLimit stores a limit decoded as v (nil when absent) in dst and
// reports whether it is valid: absent, or at least 1.
func setLimit(dst, v *int64) bool {
	if v == nil {
		return true
	}
	*dst = *v
	return *v >= 1
}

// ParseLimits returns c's parsed limits, nil when it has none; see
// [ParseCapabilityLimits].
func (c Capability) ParseLimits() (*CapabilityLimits, error) {
	return ParseCapabilityLimits(c.Limits)
}

// Capability returns p's capability with id id and true, or the zero
// Capability and false when p does not grant it.
func (p *Passport) Capability(id string) (Capability, bool) {
	i := slices.IndexFunc(p.Capabilities, func(c Capability) bool { return c.ID == id })
	if i < 0 {
		return Capability{}, false
	}
	return p.Capabilities[i], true
}

// Metered reports whether l limits amounts at all: a maximum, a cap, or
// a currency restriction. Only then is the amount of an action read.
func (l *CapabilityLimits) Metered() bool {
	return l != nil && (l.MaxPerAction > 0 || l.DailyCap > 0 || l.RestrictsCurrency())
}

// RestrictsCurrency reports whether l allows only some currencies.
func (l *CapabilityLimits) RestrictsCurrency() bool {
	return l != nil && (len(l.Currencies) > 0 || len(l.CurrencyLimits) > 0)
}

// AllowsCurrency reports whether currency c is allowed (always, when l
// does not restrict currencies).
func (l *CapabilityLimits) AllowsCurrency(c string) bool {
	if !l.RestrictsCurrency() {
		return true
	}
	_, ok := l.CurrencyLimits[c]
	return ok || slices.Contains(l.Currencies, c)
}

// AmountMember returns the input member holding the amount.
func (l *CapabilityLimits) AmountMember() string {
	if l == nil || l.AmountField == "" {
		return "amount"
	}
	return l.AmountField
}

// CurrencyMember returns the input member holding the currency.
func (l *CapabilityLimits) CurrencyMember() string {
	if l == nil || l.CurrencyField == "" {
		return "currency"
	}
	return l.CurrencyField
}

// Effective returns the maximum per action and the daily cap that apply
// to currency c (empty when currencies are not restricted): the smaller
// of the top-level and per-currency values that are set, 0 for none.
func (l *CapabilityLimits) Effective(c string) (maxPerAction, dailyCap int64) {
	if l == nil {
		return 0, 0
	}
	maxPerAction, dailyCap = l.MaxPerAction, l.DailyCap
	if cl, ok := l.CurrencyLimits[c]; ok {
		maxPerAction = minSet(maxPerAction, cl.MaxPerTx)
		dailyCap = minSet(dailyCap, cl.DailyCap)
	}
	return maxPerAction, dailyCap
}

// minSet returns the smaller of a and b, ignoring zeros (unset).
func minSet(a, b int64) int64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	}
	return min(a, b)
}

// DayWindow returns the UTC day that t falls in, as its first instant:
// the window of daily caps.
func DayWindow(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// ErrInvalidCounter: a counter call has a non-positive amount or cap, or
// an empty tenant or key.
var ErrInvalidCounter = errors.New("identity: invalid counter request")

// CounterStore keeps the counters of daily caps: for each tenant, key
// (agent, capability, currency) and window (the first instant of a UTC
// day, see [DayWindow]), the amount used. Implementations must be safe
// for concurrent use, and Consume must be atomic across every process
// sharing the store: the SQLite and PostgreSQL stores of this module
// implement it.
type CounterStore interface {
	// Consume adds amount to the counter if the result stays at most
	// cap, and reports the counter's value after the call and whether
	// the amount was added. A refusal is not an error. It fails with
	// [ErrInvalidCounter] for an amount or cap below 1 or an empty
	// tenant or key, and with the store's error otherwise, in which
	// case the counter may or may not have changed only if the error
	// says so (the stores of this module change nothing on error).
	Consume(ctx context.Context, tenantID, key string, window time.Time, amount, cap int64) (used int64, ok bool, err error)
	// Release takes amount back from the counter (not below 0), for an
	// action that consumed it and was then not run. Releasing a counter
	// that does not exist does nothing.
	Release(ctx context.Context, tenantID, key string, window time.Time, amount int64) error
}

// CheckCounterArgs returns an error wrapping [ErrInvalidCounter] unless
// tenantID and key are non-empty, amount is at least 1 and, when checkCap
// is true, cap is at least 1. Counter stores call it first.
func CheckCounterArgs(tenantID, key string, amount, cap int64, checkCap bool) error {
	switch {
	case tenantID == "" || key == "":
		return fmt.Errorf("%w: empty tenant or key", ErrInvalidCounter)
	case amount < 1:
		return fmt.Errorf("%w: amount below 1", ErrInvalidCounter)
	case checkCap && cap < 1:
		return fmt.Errorf("%w: cap below 1", ErrInvalidCounter)
	}
	return nil
}

// MemCounterStore is a [CounterStore] in memory, for tests and
// single-process hosts: its counters are not shared with other processes.
// The zero value is ready to use; it is safe for concurrent use.
type MemCounterStore struct {
	mu sync.Mutex
	m  map[counterKey]int64
}

type counterKey struct {
	tenant, key string
	window      int64
}

var _ CounterStore = (*MemCounterStore)(nil)

// Consume implements [CounterStore].
func (s *MemCounterStore) Consume(ctx context.Context, tenantID, key string, window time.Time, amount, cap int64) (int64, bool, error) {
	if err := CheckCounterArgs(tenantID, key, amount, cap, true); err != nil {
		return 0, false, fmt.Errorf("identity: consume: %w", err)
	}
	k := counterKey{tenantID, key, window.Unix()}
	s.mu.Lock()
	defer s.mu.Unlock()
	used := s.m[k]
	if amount > cap || used > cap-amount {
		return used, false, nil
	}
	if s.m == nil {
		s.m = make(map[counterKey]int64)
	}
	s.m[k] = used + amount
	return used + amount, true, nil
}

// Release implements [CounterStore].
func (s *MemCounterStore) Release(ctx context.Context, tenantID, key string, window time.Time, amount int64) error {
	if err := CheckCounterArgs(tenantID, key, amount, 0, false); err != nil {
		return fmt.Errorf("identity: release: %w", err)
	}
	k := counterKey{tenantID, key, window.Unix()}
	s.mu.Lock()
	defer s.mu.Unlock()
	used, ok := s.m[k]
	if !ok {
		return nil
	}
	s.m[k] = max(used-amount, 0)
	return nil
}

// Used returns the value of a counter (0 when it does not exist).
func (s *MemCounterStore) Used(tenantID, key string, window time.Time) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[counterKey{tenantID, key, window.Unix()}]
}
