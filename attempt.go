package oars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/receipt"
)

// ErrRetry is returned by [Guard.ExecuteAttempt] when the attempt failed
// in a way a later attempt may not (a timeout, an upstream 5xx) and was
// not the last one: nothing final was recorded, and the caller schedules
// another attempt. It wraps the execution error.
var ErrRetry = errors.New("oars: execution failed; retry later")

// Attempt is one try of an execution driven by a queue (see
// connector/queue).
type Attempt struct {
	// Number is 1 for the first try and grows by one with each try,
	// including tries whose executor died before recording anything.
	Number int
	// Final makes this the last try: a failure that could be retried is
	// recorded as dead_lettered instead of returning [ErrRetry].
	Final bool
	// PrevErrorClass and PrevUpstreamStatus say why the previous try
	// failed; both empty when it was interrupted (or this is the first).
	PrevErrorClass     string
	PrevUpstreamStatus int
}

// ExecuteAttempt runs one attempt of the execution of a decided action
// (allowed, approved, or a decision in shadow mode) with its tool's
// connector ([WithConnectors]), for a queue with at-least-once delivery.
// input is the action's input, checked against the digest its decision
// recorded; the rest of the action comes from its receipts.
//
// The attempt claims the action with an executing receipt, also when the
// action is already executing: an earlier attempt's executor died, and
// the queue's lease says it is this attempt's turn (its reasons name the
// attempt and the previous failure). The connector gets the action id as
// idempotency key on every attempt, so an upstream that honours it acts
// once. Then:
//   - success records executed (output digest, summary, upstream status);
//   - a retryable failure ([connector.Error] with Retryable set) of an
//     idempotent operation records nothing and returns an error wrapping
//     [ErrRetry], unless at.Final, when it records dead_lettered;
//   - any other failure records failed.
//
// An action already executed, failed or dead-lettered is left alone and
// its outcome returned with a nil error; the queue drops the job. An
// action that may not be executed returns [ErrNotApproved] (wrapping why)
// and records nothing.
func (g *Guard) ExecuteAttempt(ctx context.Context, actionID string, input json.RawMessage, at Attempt) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	if g.cfg.connectors == nil {
		return out, fmt.Errorf("%w: execute attempt: the Guard has no connectors", ErrInvalidAction)
	}
	if at.Number < 1 {
		at.Number = 1
	}
	digest, err := inputDigest(input)
	if err != nil {
		return out, err
	}
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	entries, err := g.Receipts(ctx, actionID)
	if err != nil {
		return out, err
	}
	first := entries[0].Receipt
	if digest != first.InputDigest {
		return out, fmt.Errorf("oars: execute attempt: input differs: %w", ErrApprovalMismatch)
	}
	a := &Action{
		ID: actionID, TenantID: first.TenantID, AgentID: first.AgentID,
		Principal: Principal{UserID: first.Principal.UserID, Delegation: first.Principal.Delegation},
		Resource:  first.Resource, Input: input,
	}

	var claim Entry
	finished := false
	claimAfter := func(last *receipt.Receipt, lastDigest string) error {
		r := g.nextAfter(last, lastDigest, receipt.StatusExecuting)
		if at.Number > 1 {
			why := "the previous attempt was interrupted"
			if at.PrevErrorClass != "" {
				why = "the previous attempt failed: " + at.PrevErrorClass
				if at.PrevUpstreamStatus != 0 {
					why += fmt.Sprintf(" (upstream status %d)", at.PrevUpstreamStatus)
				}
			}
			r.Reasons = []string{fmt.Sprintf("attempt %d; %s", at.Number, why)}
		}
		if err := g.appendTransition(ctx, out, r); err != nil {
			return err
		}
		claim = out.Receipts[len(out.Receipts)-1]
		return nil
	}
	if heldForApproval(first) {
		err = g.transition(ctx, actionID, out, func(st *approval.State) (bool, error) {
			switch st.Status {
			case receipt.StatusExecuted, receipt.StatusFailed, receipt.StatusDeadLettered:
				finished = true
				return true, nil
			case receipt.StatusApproved, receipt.StatusExecuting:
				return true, claimAfter(st.Last, st.LastDigest)
			}
			return true, executable(st)
		})
		if errors.Is(err, approval.ErrNotApproval) {
			err = fmt.Errorf("%w: %w", ErrNotApproved, err)
		}
	} else {
		err = g.transitionPlain(ctx, actionID, func(entries []Entry) (bool, error) {
			last := entries[len(entries)-1]
			out.Status = last.Receipt.Status
			switch {
			case first.Status != receipt.StatusAllowed && first.Mode != receipt.ModeShadow:
				return true, fmt.Errorf("oars: execute attempt: action is %s: %w: %w", first.Status, ErrNotApproved, ErrDenied)
			case final(last.Receipt.Status):
				finished = true
				return true, nil
			}
			return true, claimAfter(last.Receipt, receipt.Digest(last.Bytes))
		})
	}
	if err != nil {
		return out, err
	}
	if finished {
		all, err := g.Receipts(ctx, actionID)
		if err != nil {
			return out, err
		}
		out.Receipts = all
		out.Status = all[len(all)-1].Receipt.Status
		return out, nil
	}
	idempotent := g.cfg.connectors.Idempotent(a.Resource.ToolID, a.Resource.Operation)
	failure := func(err error) (receipt.Status, bool) {
		if !connector.IsRetryable(err) || !idempotent {
			return receipt.StatusFailed, true
		}
		if at.Final {
			return receipt.StatusDeadLettered, true
		}
		g.cfg.logger.InfoContext(ctx, "execution attempt failed; will retry",
			slog.String("action_id", actionID), slog.Int("attempt", at.Number), slog.String("error_class", ErrorClass(err)))
		return "", false
	}
	return g.runWith(ctx, out, a, g.connectorExec(at.Number), stateAfter(claim), failure)
}
