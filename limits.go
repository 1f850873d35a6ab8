package oars

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/oarsdev/oars/identity"
)

// ErrLimits: the capability limits of the agent's passport could not be
// checked (the counter store failed, or a daily cap is set and no counter
// store is configured). Nothing was recorded or executed.
var ErrLimits = errors.New("oars: capability limits check failed")

// Reasons of a decision receipt denied by a capability's limits. Each
// denial records a human reason followed by an OAP code.
const (
	// ReasonLimitExceededCode: the amount is over the capability's
	// maximum per action, or over what is left of its daily cap.
	ReasonLimitExceededCode = "oap.limit_exceeded"
	// ReasonInvalidContextCode: the input has no integer amount of at
	// least 1 (or no currency when currencies are restricted).
	ReasonInvalidContextCode = "oap.invalid_context"
	// ReasonCurrencyUnsupportedCode: the currency is not allowed.
	ReasonCurrencyUnsupportedCode = "oap.currency_unsupported"

	// ReasonMaxPerAction, ReasonDailyCap, ReasonAmountInvalid,
	// ReasonCurrencyInvalid and ReasonCurrencyUnsupported say why.
	ReasonMaxPerAction        = "amount exceeds the capability's limit per action"
	ReasonDailyCap            = "amount exceeds what is left of the capability's daily cap"
	ReasonAmountInvalid       = "input has no integer amount of at least 1"
	ReasonCurrencyInvalid     = "input has no currency"
	ReasonCurrencyUnsupported = "currency not allowed by the capability"
)

// WithCounters makes the Guard enforce the limits of passport
// capabilities (see [identity.CapabilityLimits]) with the daily-cap
// counters of store, which must be shared by every replica (the SQLite
// and PostgreSQL stores of this module are counter stores). It needs
// [WithPassports].
//
// After the passport check and before policy, when the agent's passport
// grants the capability the action falls under (see [WithCapabilityFor])
// and that capability has limits, the Guard reads the amount (an integer
// of at least 1, in minor units) and the currency from the action's
// input, and denies the action (a denied decision receipt with a reason
// and an OAP code, no policy evaluated, even in shadow mode) when the
// amount is missing ([ReasonInvalidContextCode]), the currency is not
// allowed ([ReasonCurrencyUnsupportedCode]), the amount exceeds the
// maximum per action or what is left of the daily cap
// ([ReasonLimitExceededCode]). The daily cap is consumed atomically
// before policy runs; the amount is released when the action is then
// denied by policy (in enforce mode) or a later step of the decision
// fails (policy error, signing, ledger). An action held for approval
// keeps its reservation, even if it is later rejected, expires or is
// cancelled. A counter store error refuses the action with [ErrLimits].
//
// An agent whose passport lacks the capability is not denied by this
// check: policies decide, with agent.capabilities. Without WithCounters,
// limits other than daily caps are still enforced, and an action under a
// capability with a daily cap is refused with [ErrLimits].
func WithCounters(store identity.CounterStore) Option {
	return func(c *config) error {
		if store == nil {
			return errors.New("oars: WithCounters: nil store")
		}
		c.counters = store
		return nil
	}
}

// WithCapabilityFor sets how the Guard names the capability an action
// falls under. The default is "<tool_id>.<operation>" (tool
// "finance.payment", operation "refund": "finance.payment.refund"). An
// empty name means the action falls under no capability.
func WithCapabilityFor(f func(Resource) string) Option {
	return func(c *config) error {
		if f == nil {
			return errors.New("oars: WithCapabilityFor: nil function")
		}
		c.capabilityFor = f
		return nil
	}
}

// DefaultCapabilityFor returns "<tool_id>.<operation>".
func DefaultCapabilityFor(r Resource) string {
	return r.ToolID + "." + r.Operation
}

// reservation is an amount consumed from a daily counter by a decision
// in progress.
type reservation struct {
	tenantID, key string
	window        time.Time
	amount        int64
}

// checkLimits enforces the limits of a's capability in passport p over
// the decoded input (as receipt.CanonicalizeValue returns it). It returns
// the reasons of a denial (nil to go on to policy) and the reservation
// made (nil when none).
func (g *Guard) checkLimits(ctx context.Context, a *Action, p *identity.Passport, input any, now time.Time) ([]string, *reservation, error) {
	if p == nil {
		return nil, nil, nil
	}
	capFor := g.cfg.capabilityFor
	if capFor == nil {
		capFor = DefaultCapabilityFor
	}
	id := capFor(a.Resource)
	if id == "" {
		return nil, nil, nil
	}
	c, ok := p.Capability(id)
	if !ok {
		return nil, nil, nil
	}
	lim, err := c.ParseLimits()
	if err != nil {
		return nil, nil, fmt.Errorf("capability limits: %w", err)
	}
	if !lim.Metered() {
		return nil, nil, nil
	}
	members, _ := input.(map[string]any) // nil, without members, if not an object
	// The amount must be a whole number from 1 to the largest int64: the
	// integer the canonical form of the input writes for it.
	f, isNumber := members[lim.AmountMember()].(float64)
	if !isNumber || f != math.Trunc(f) || f < 1 || f >= 1<<63 {
		return []string{ReasonAmountInvalid, ReasonInvalidContextCode}, nil, nil
	}
	amount := int64(f)
	currency := ""
	if lim.RestrictsCurrency() {
		var isString bool
		if currency, isString = members[lim.CurrencyMember()].(string); !isString {
			return []string{ReasonCurrencyInvalid, ReasonInvalidContextCode}, nil, nil
		}
		if !lim.AllowsCurrency(currency) {
			return []string{ReasonCurrencyUnsupported, ReasonCurrencyUnsupportedCode}, nil, nil
		}
	}
	maxPerAction, dailyCap := lim.Effective(currency)
	if maxPerAction > 0 && amount > maxPerAction {
		return []string{ReasonMaxPerAction, ReasonLimitExceededCode}, nil, nil
	}
	if dailyCap == 0 {
		return nil, nil, nil
	}
	if g.cfg.counters == nil {
		return nil, nil, errors.New("capability has a daily cap but no counter store is configured")
	}
	key := a.AgentID + "/" + id
	if currency != "" {
		key += "/" + currency
	}
	res := &reservation{tenantID: a.TenantID, key: key, window: identity.DayWindow(now), amount: amount}
	_, ok, err = g.cfg.counters.Consume(ctx, res.tenantID, res.key, res.window, amount, dailyCap)
	if err != nil {
		return nil, nil, fmt.Errorf("daily cap: %w", err)
	}
	if !ok {
		return []string{ReasonDailyCap, ReasonLimitExceededCode}, nil, nil
	}
	return nil, res, nil
}

// release gives back a reservation of an action that will not run. It
// runs even when ctx is cancelled; a failure is logged (the counter then
// stays high until the window ends: failing safe).
func (g *Guard) release(ctx context.Context, actionID string, res *reservation) {
	if res == nil {
		return
	}
	if err := g.cfg.counters.Release(context.WithoutCancel(ctx), res.tenantID, res.key, res.window, res.amount); err != nil {
		g.cfg.logger.ErrorContext(ctx, "releasing a daily cap reservation failed",
			slog.String("action_id", actionID), slog.Any("error", err))
	}
}
