package oars

import (
	"context"
	"fmt"

	"github.com/oarsdev/oars/receipt"
)

// MaxRefusalReasonLength bounds the reason given to [Guard.Refuse], in
// bytes.
const MaxRefusalReasonLength = 1024

// RefusalErrorClass is the error class of the denied receipts
// [Guard.Refuse] records.
const RefusalErrorClass = "forbidden"

// Refuse records that a was refused before any policy was evaluated, for
// example because the caller's credentials do not allow the agent, user
// or tool it names: a signed denied receipt with seq 1, mode enforce (a
// refusal is never in shadow mode), error class [RefusalErrorClass],
// reason as its only reason and no policy reference. Nothing is
// executed; the Guard's identity check and policies are not consulted.
//
// If a.ID is empty a fresh id is generated; a.IdempotencyKey is ignored,
// so a refused request never takes over the key of a legitimate one. It
// returns the outcome (status denied) or an error wrapping
// [ErrInvalidAction] when a or reason is malformed (reason must be
// non-empty, at most [MaxRefusalReasonLength] bytes, without control
// characters, and is recorded as given: it must not contain secrets),
// [ErrSigning] or [ErrLedger] when the receipt could not be recorded. The
// caller must refuse the action in every case (fail closed).
func (g *Guard) Refuse(ctx context.Context, a *Action, reason string) (*Outcome, error) {
	if a == nil {
		return nil, fmt.Errorf("%w: nil action", ErrInvalidAction)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("oars: refuse: %w", err)
	}
	if err := checkField(reason, true, MaxRefusalReasonLength); err != nil {
		return nil, fmt.Errorf("%w: refusal reason %s", ErrInvalidAction, err)
	}
	if a.ID == "" {
		a.ID = g.cfg.newID()
	}
	if err := g.validate(a); err != nil {
		return nil, err
	}
	digest, err := inputDigest(a.Input)
	if err != nil {
		return nil, err
	}
	start := g.decisionStart()
	out := &Outcome{ActionID: a.ID}
	base := baseReceipt(a, digest, receipt.ModeEnforce)
	if err := g.denyBeforePolicy(ctx, out, base, RefusalErrorClass, []string{reason}); err != nil {
		return out, err
	}
	g.metrics.observe(out, start)
	return out, nil
}
