package oars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/receipt"
)

// Error classes of the denied receipts recorded for actions a Guard with
// connectors ([WithConnectors]) refuses before any policy.
const (
	// ClassUnknownTool: no connector serves the action's tool.
	ClassUnknownTool = "unknown_tool"
	// ClassUnknownOperation: the tool's connector has no such operation.
	ClassUnknownOperation = "unknown_operation"
	// ClassInvalidInput: the input does not match the operation's schema.
	ClassInvalidInput = "invalid_input"
)

// WithConnectors makes reg the Guard's connectors. Every action is then
// checked against it before its passport and policies: an action whose
// tool is not served (not registered, or not in the registry's
// allowlist), whose operation the tool does not offer, or whose input
// does not match the operation's input schema gets a denied receipt with
// error class [ClassUnknownTool], [ClassUnknownOperation] or
// [ClassInvalidInput] and the reason, and is never executed.
//
// [Guard.Do] and [Guard.Execute] with a nil exec function run the action
// with its tool's connector: the executed receipt records the output
// digest, the connector's redacted output summary and the upstream
// status; a failed one records the error class and upstream status.
func WithConnectors(reg *connector.Registry) Option {
	return func(c *config) error {
		if reg == nil {
			return errors.New("oars: WithConnectors: nil registry")
		}
		c.connectors = reg
		return nil
	}
}

// Connectors returns the Guard's connector registry, or nil.
func (g *Guard) Connectors() *connector.Registry { return g.cfg.connectors }

// evidence is what an execution adds to its receipt besides the output
// digest.
type evidence struct {
	summary        json.RawMessage
	upstreamStatus int
}

// execFn is the internal form of an execution: an [ExecFunc] or a
// connector.
type execFn func(ctx context.Context, a *Action) (json.RawMessage, evidence, error)

// execFor returns the execution for a: exec, or the tool's connector when
// exec is nil.
func (g *Guard) execFor(exec ExecFunc) (execFn, error) {
	if exec != nil {
		return func(ctx context.Context, a *Action) (json.RawMessage, evidence, error) {
			out, err := exec(ctx, a)
			return out, evidence{upstreamStatus: connector.UpstreamStatusOf(err)}, err
		}, nil
	}
	if g.cfg.connectors == nil {
		return nil, fmt.Errorf("%w: nil exec function and no connectors", ErrInvalidAction)
	}
	return g.connectorExec(0), nil
}

// connectorExec runs the action with its tool's connector as attempt
// attempt (0: 1, the synchronous path).
func (g *Guard) connectorExec(attempt int) execFn {
	if attempt < 1 {
		attempt = 1
	}
	return func(ctx context.Context, a *Action) (json.RawMessage, evidence, error) {
		key := a.ID
		req := &connector.Request{
			ActionID: a.ID, IdempotencyKey: key,
			TenantID: a.TenantID, AgentID: a.AgentID, UserID: a.Principal.UserID,
			ToolID: a.Resource.ToolID, Operation: a.Resource.Operation, Target: a.Resource.Target,
			Input: a.Input, Attempt: attempt,
		}
		res, err := g.cfg.connectors.Execute(ctx, req)
		if err != nil {
			return nil, evidence{upstreamStatus: connector.UpstreamStatusOf(err)}, err
		}
		return res.Output, evidence{summary: res.Summary, upstreamStatus: res.UpstreamStatus}, nil
	}
}

// checkConnector returns the denied receipt's error class and reason if
// the Guard has connectors and they refuse a, or "" when a may proceed.
func (g *Guard) checkConnector(a *Action, input any) (class, reason string) {
	if g.cfg.connectors == nil {
		return "", ""
	}
	err := g.cfg.connectors.CheckValue(a.Resource.ToolID, a.Resource.Operation, input)
	switch {
	case err == nil:
		return "", ""
	case errors.Is(err, connector.ErrUnknownTool):
		return ClassUnknownTool, fmt.Sprintf("tool %q is not served here (not registered or not allowed)", a.Resource.ToolID)
	case errors.Is(err, connector.ErrUnknownOperation):
		return ClassUnknownOperation, fmt.Sprintf("tool %q has no operation %q", a.Resource.ToolID, a.Resource.Operation)
	}
	return ClassInvalidInput, truncateReason(err.Error())
}

func truncateReason(s string) string {
	const max = 512
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// denyByConnector records the denied receipt of an action, with
// receipts' base fields base, that the connector check refused.
func (g *Guard) denyByConnector(ctx context.Context, base receipt.Receipt, class, reason string) (*Outcome, error) {
	out := &Outcome{ActionID: base.ActionID}
	if err := g.denyBeforePolicy(ctx, out, base, class, []string{reason}); err != nil {
		return out, err
	}
	g.cfg.logger.InfoContext(ctx, "action refused before policy",
		slog.String("action_id", base.ActionID), slog.String("error_class", class))
	return out, nil
}

// summary returns s in canonical form if it is a valid output summary
// (a JSON object of at most receipt.MaxSummaryBytes canonical bytes) and
// nil otherwise: a bad summary is dropped and logged, never allowed to
// make an executed action look failed.
func (g *Guard) summary(ctx context.Context, actionID string, s json.RawMessage) json.RawMessage {
	if len(s) == 0 || string(s) == "null" {
		return nil
	}
	c, err := receipt.Canonicalize(s)
	if err == nil && (c[0] != '{' || len(c) > receipt.MaxSummaryBytes) {
		err = errors.New("not a JSON object within the size limit")
	}
	if err != nil {
		g.cfg.logger.WarnContext(ctx, "output summary dropped", slog.String("action_id", actionID), slog.Any("error", err))
		return nil
	}
	if string(c) == "{}" {
		return nil
	}
	return c
}
