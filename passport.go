package oars

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// PassportSource looks up agent passports (OAP) for the Guard.
// *identity.PassportCache is one.
//
// Passport returns the passport of agent agentID of tenant tenantID, or an
// error wrapping identity.ErrPassportNotFound when the agent has none; any
// other error makes the Guard refuse the action (fail closed). It must be
// safe for concurrent use.
type PassportSource interface {
	Passport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error)
}

// PassportSourceFunc adapts a function to [PassportSource].
type PassportSourceFunc func(ctx context.Context, tenantID, agentID string) (*identity.Passport, error)

// Passport returns f(ctx, tenantID, agentID).
func (f PassportSourceFunc) Passport(ctx context.Context, tenantID, agentID string) (*identity.Passport, error) {
	return f(ctx, tenantID, agentID)
}

// Reasons of a decision receipt denied by the passport check.
const (
	// ReasonPassportCode is the OAP reason code recorded with every
	// passport denial.
	ReasonPassportCode = "oap.passport_suspended"
	// ReasonPassportSuspended, ReasonPassportRevoked,
	// ReasonPassportInactive and ReasonPassportMissing say why.
	ReasonPassportSuspended = "passport suspended"
	ReasonPassportRevoked   = "passport revoked"
	ReasonPassportInactive  = "passport not active"
	ReasonPassportMissing   = "passport not found"
)

// WithPassports makes the Guard check the agent's passport before policy:
// the action of an agent whose passport is suspended, revoked or still a
// draft is denied at once (a denied decision receipt with the reason and
// [ReasonPassportCode]; no policy is evaluated), even in shadow mode: it is
// the kill switch of an agent. An agent without a passport goes on to
// policy unless [WithRequirePassport] is given. An error of src refuses
// the action with [ErrIdentity] and records nothing. The passport's
// capabilities and assurance level are given to policies
// (agent.capabilities, agent.assurance_level).
func WithPassports(src PassportSource) Option {
	return func(c *config) error {
		if src == nil {
			return errors.New("oars: WithPassports: nil source")
		}
		c.passports = src
		return nil
	}
}

// WithRequirePassport makes the Guard deny the actions of agents without
// a passport (reason [ReasonPassportMissing]). It needs [WithPassports].
func WithRequirePassport() Option {
	return func(c *config) error {
		c.requirePassport = true
		return nil
	}
}

// checkPassport looks up a's passport. It returns the passport of an
// active agent (nil when the agent has none or no source is configured),
// the reasons of a denial (nil to go on), and fills in's capabilities and
// assurance level.
func (g *Guard) checkPassport(ctx context.Context, a *Action, in *policy.Input) (*identity.Passport, []string, error) {
	if g.cfg.passports == nil {
		if g.cfg.requirePassport {
			return nil, nil, errors.New("a passport is required but no passport source is configured")
		}
		return nil, nil, nil
	}
	p, err := g.cfg.passports.Passport(ctx, a.TenantID, a.AgentID)
	switch {
	case errors.Is(err, identity.ErrPassportNotFound):
		if g.cfg.requirePassport {
			return nil, []string{ReasonPassportMissing, ReasonPassportCode}, nil
		}
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("passport: %w", err)
	case p == nil:
		return nil, nil, errors.New("passport: source returned no passport and no error")
	}
	switch p.Status {
	case identity.PassportActive:
	case identity.PassportSuspended:
		return nil, []string{ReasonPassportSuspended, ReasonPassportCode}, nil
	case identity.PassportRevoked:
		return nil, []string{ReasonPassportRevoked, ReasonPassportCode}, nil
	default:
		return nil, []string{ReasonPassportInactive, ReasonPassportCode}, nil
	}
	in.Capabilities = p.CapabilityIDs()
	in.AssuranceLevel = p.AssuranceLevel
	return p, nil, nil
}

// denyByPassport records the denied receipt of an action, with receipts'
// base fields base, refused by its passport or its capability's limits.
// Like every refusal before policy, it is never in shadow mode: the
// passport check is the kill switch of an agent.
func (g *Guard) denyByPassport(ctx context.Context, base receipt.Receipt, reasons []string) (*Outcome, error) {
	out := &Outcome{ActionID: base.ActionID, Decision: &policy.Decision{Effect: policy.EffectDeny, Reasons: reasons}}
	if err := g.denyBeforePolicy(ctx, out, base, "", reasons); err != nil {
		return out, err
	}
	g.cfg.logger.InfoContext(ctx, "action denied by passport",
		slog.String("action_id", base.ActionID), slog.String("reason", reasons[0]))
	return out, nil
}
