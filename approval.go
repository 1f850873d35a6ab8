package oars

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// Errors of the approval workflow ([Guard.Vote], [Guard.Cancel],
// [Guard.Execute], [Guard.Wait] and [Guard.Do] on an action that needs
// approval). The refusals of a vote or a cancellation are the sentinels of
// package approval (approval.ErrNotPending, approval.ErrSelfApproval, …).
var (
	// ErrRejected: an approver rejected the action; it never runs.
	ErrRejected = errors.New("oars: action rejected")
	// ErrExpired: the approval request expired before the quorum was
	// reached; the action never runs. It is approval.ErrExpired, so
	// errors.Is matches either name.
	ErrExpired = approval.ErrExpired
	// ErrCancelled: the requester or an admin cancelled the action; it
	// never runs.
	ErrCancelled = errors.New("oars: action cancelled")
	// ErrNotApproved: Execute was asked to run an action that is not
	// approved (still pending, rejected, expired, cancelled, or never
	// held for approval). Nothing was recorded.
	ErrNotApproved = errors.New("oars: action is not approved")
	// ErrAlreadyClaimed: the approved action's execution was already
	// claimed, by this or another Guard or server replica; an approval is
	// used once. Nothing was recorded and exec was not called.
	ErrAlreadyClaimed = errors.New("oars: action execution already claimed")
	// ErrApprovalMismatch: the action given to Execute is not the approved
	// call (another tenant, agent, user, delegation, resource or input).
	// A changed call needs a new action and a new approval. Nothing was
	// recorded.
	ErrApprovalMismatch = errors.New("oars: action differs from the approved call")
)

// DefaultPollInterval is how often [Guard.Wait] re-reads the ledger for
// transitions recorded by other Guards (see [WithPollInterval]).
const DefaultPollInterval = time.Second

// Bounds of the approval workflow's background work.
const (
	// notifyTimeout bounds one call of the Notifier.
	notifyTimeout = 30 * time.Second
	// maxNotifying bounds the notifications in flight; more are dropped
	// (and logged): approvers can always list pending approvals.
	maxNotifying = 64
	// maxTransitionAttempts bounds how often one call re-reads an action
	// after losing a race to another writer.
	maxTransitionAttempts = 16
	// sweepsPerReload: RunSweeper reloads the pending actions from the
	// ledger every this many sweeps.
	sweepsPerReload = 10
	// maxDoneCache bounds the set of action ids known to be final.
	maxDoneCache = 100000
)

// WithPollInterval sets how often [Guard.Wait] (and so [Guard.Do] on an
// action held for approval) re-reads the ledger for transitions that other
// Guards or server replicas recorded; transitions this Guard records wake
// waiters at once. The default is [DefaultPollInterval].
func WithPollInterval(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("oars: WithPollInterval: %v is not positive", d)
		}
		c.pollInterval = d
		return nil
	}
}

// WithNotifier makes the Guard call n after it records a pending_approval
// receipt, so approvers learn that an action waits for them. The call runs
// on its own goroutine, bounded by a 30 s timeout, and never blocks or
// fails the decision: its error is logged. At most 64 notifications are in
// flight; more are dropped and logged.
func WithNotifier(n approval.Notifier) Option {
	return func(c *config) error {
		if n == nil {
			return errors.New("oars: WithNotifier: nil notifier")
		}
		c.notifier = n
		return nil
	}
}

// approvals is the Guard's in-memory bookkeeping of approvals. The ledger
// stays the system of record: everything here is derived from receipts
// and may be lost at any time.
type approvals struct {
	// locks serialise the transitions of one action in this Guard.
	locks keyedMutex

	mu      sync.Mutex
	waiters map[string]*waiter  // action id -> waiters of the next transition
	pending map[string]struct{} // actions this Guard believes pending
	done    map[string]struct{} // actions known to be final

	notifying atomic.Int32
}

// waiter is the wake-up channel of the next transition of one action.
type waiter struct {
	ch chan struct{}
	n  int
}

// lockAction locks the transitions of action id in this Guard.
func (g *Guard) lockAction(id string) func() {
	return g.appr.locks.lock(id)
}

// subscribe returns a channel closed at the next transition of action id
// this Guard records, and a function to call when no longer waiting.
func (g *Guard) subscribe(id string) (<-chan struct{}, func()) {
	a := &g.appr
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.waiters == nil {
		a.waiters = make(map[string]*waiter)
	}
	w := a.waiters[id]
	if w == nil {
		w = &waiter{ch: make(chan struct{})}
		a.waiters[id] = w
	}
	w.n++
	return w.ch, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.waiters[id] == w {
			if w.n--; w.n == 0 {
				delete(a.waiters, id)
			}
		}
	}
}

// signal wakes the waiters of action id.
func (g *Guard) signal(id string) {
	a := &g.appr
	a.mu.Lock()
	defer a.mu.Unlock()
	if w := a.waiters[id]; w != nil {
		close(w.ch)
		delete(a.waiters, id)
	}
}

// track updates the pending index and the final-action cache from st.
func (g *Guard) track(st *approval.State) {
	a := &g.appr
	a.mu.Lock()
	defer a.mu.Unlock()
	if st.Status == receipt.StatusPendingApproval {
		if a.pending == nil {
			a.pending = make(map[string]struct{})
		}
		a.pending[st.ActionID] = struct{}{}
		return
	}
	delete(a.pending, st.ActionID)
	if final(st.Status) {
		a.markDoneLocked(st.ActionID)
	}
}

// markDone records that action id is final, or no approval at all.
func (g *Guard) markDone(id string) {
	g.appr.mu.Lock()
	defer g.appr.mu.Unlock()
	g.appr.markDoneLocked(id)
}

func (a *approvals) markDoneLocked(id string) {
	if a.done == nil || len(a.done) >= maxDoneCache {
		a.done = make(map[string]struct{}) // forget, rather than grow without bound
	}
	a.done[id] = struct{}{}
}

// knownDone reports whether action id is known to be final (or no
// approval at all).
func (g *Guard) knownDone(id string) bool {
	g.appr.mu.Lock()
	defer g.appr.mu.Unlock()
	_, ok := g.appr.done[id]
	return ok
}

// final reports whether an action with status s can never change again.
func final(s receipt.Status) bool {
	switch s {
	case receipt.StatusDenied, receipt.StatusRejected, receipt.StatusExpired, receipt.StatusCancelled,
		receipt.StatusExecuted, receipt.StatusFailed, receipt.StatusDeadLettered:
		return true
	}
	return false
}

// held is called after the Guard recorded the enforced pending_approval
// receipt r: it indexes the action and notifies approvers.
func (g *Guard) held(ctx context.Context, r *receipt.Receipt, req approval.Requirement) {
	a := &g.appr
	a.mu.Lock()
	if a.pending == nil {
		a.pending = make(map[string]struct{})
	}
	a.pending[r.ActionID] = struct{}{}
	a.mu.Unlock()

	n := g.cfg.notifier
	if n == nil {
		return
	}
	logger := g.cfg.logger
	if a.notifying.Add(1) > maxNotifying {
		a.notifying.Add(-1)
		logger.WarnContext(ctx, "approval notification dropped: too many in flight", slog.String("action_id", r.ActionID))
		return
	}
	request := approval.Request{
		ActionID: r.ActionID, TenantID: r.TenantID, AgentID: r.AgentID, RequesterUserID: r.Principal.UserID,
		Resource: r.Resource, Requirement: req, Reasons: slices.Clone(r.Reasons),
	}
	// The goroutine is owned by its timeout context.
	nctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), notifyTimeout)
	go func() {
		defer a.notifying.Add(-1)
		defer cancel()
		if err := n.Notify(nctx, request); err != nil {
			logger.WarnContext(nctx, "approval notification failed",
				slog.String("action_id", request.ActionID), slog.Any("error", err))
		}
	}()
}

// approvalState reads the receipts of action id and derives its approval
// state.
func (g *Guard) approvalState(ctx context.Context, id string) ([]Entry, *approval.State, error) {
	entries, err := g.Receipts(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ae := make([]approval.Entry, len(entries))
	for i, e := range entries {
		ae[i] = approval.Entry{Receipt: e.Receipt, Bytes: e.Bytes}
	}
	st, err := approval.Derive(ae)
	if err != nil {
		if errors.Is(err, approval.ErrNotApproval) {
			g.markDone(id) // never an approval: scans may skip it
		}
		return entries, nil, fmt.Errorf("oars: approval state: %w", err)
	}
	g.track(st)
	return entries, st, nil
}

// Approval returns the approval state of action id, derived from its
// receipts. It fails with an error wrapping [ErrNotFound] for an unknown
// action and approval.ErrNotApproval for one that was not held for
// approval.
func (g *Guard) Approval(ctx context.Context, actionID string) (*approval.State, error) {
	_, st, err := g.approvalState(ctx, actionID)
	return st, err
}

// next returns the receipt after the last one of st, with status s.
func (g *Guard) next(st *approval.State, s receipt.Status) *receipt.Receipt {
	return g.nextAfter(st.Last, st.LastDigest, s)
}

// nextAfter returns the receipt with status s that follows last, whose
// signed canonical bytes have digest lastDigest.
func (g *Guard) nextAfter(last *receipt.Receipt, lastDigest string, s receipt.Status) *receipt.Receipt {
	r := *last
	r.ReceiptID = g.cfg.newID()
	r.Seq = last.Seq + 1
	r.PrevReceiptDigest = lastDigest
	r.IssuedAt = g.cfg.clock().UTC()
	r.Status = s
	r.Approval, r.Policy, r.Reasons, r.ErrorClass, r.OutputDigest, r.Signature = nil, nil, nil, "", "", nil
	r.OutputSummary, r.UpstreamStatus = nil, 0
	return &r
}

// heldForApproval reports whether the action whose first receipt is first
// was held for approval (an enforced pending_approval decision), so that
// its transitions follow the approval workflow.
func heldForApproval(first *receipt.Receipt) bool {
	return first.Status == receipt.StatusPendingApproval && first.Mode == receipt.ModeEnforce
}

// transitionPlain runs step on the fresh receipts of action id, which was
// never held for approval, under the action's lock, until step reports it
// is done, re-reading after every race lost to another writer.
func (g *Guard) transitionPlain(ctx context.Context, id string, step func(entries []Entry) (done bool, err error)) error {
	unlock := g.lockAction(id)
	defer unlock()
	for range maxTransitionAttempts {
		entries, err := g.Receipts(ctx, id)
		if err != nil {
			return err
		}
		done, err := step(entries)
		switch {
		case errors.Is(err, errLost):
			continue
		case err != nil || done:
			return err
		}
	}
	return fmt.Errorf("oars: action changed under %d attempts in a row to record a transition: %w", maxTransitionAttempts, ErrLedger)
}

// errLost reports that another writer recorded a receipt at the place in
// the action's chain this Guard wrote to.
var errLost = errors.New("lost a race to another writer")

// appendTransition signs r, appends it and adds it to out. It returns an
// error wrapping errLost if the store refused r because another receipt
// already has its (action_id, seq): the caller re-reads the action.
func (g *Guard) appendTransition(ctx context.Context, out *Outcome, r *receipt.Receipt) error {
	signed, err := receipt.Sign(ctx, g.keys.Active(), r)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrSigning, err)
	}
	idx, err := g.ledger.Append(ctx, signed)
	if errors.Is(err, ledger.ErrDuplicate) {
		// Ours, stored by a write whose success was not reported? Then
		// it counts; otherwise another writer came first.
		if e, ok := g.findReceipt(ctx, r.ActionID, r.ReceiptID); ok {
			idx, err = e.Index, nil
		} else {
			return fmt.Errorf("oars: %s receipt: %w", r.Status, errLost)
		}
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrLedger, err)
	}
	g.signal(r.ActionID)
	out.Receipts = append(out.Receipts, Entry{Receipt: r, Bytes: signed, Index: idx})
	out.Status = r.Status
	return nil
}

// findReceipt returns the receipt of action id with receipt id rid.
func (g *Guard) findReceipt(ctx context.Context, id, rid string) (Entry, bool) {
	entries, err := g.Receipts(ctx, id)
	if err != nil {
		return Entry{}, false
	}
	for _, e := range entries {
		if e.Receipt.ReceiptID == rid {
			return e, true
		}
	}
	return Entry{}, false
}

// advance records what time and the votes already decided about a pending
// action: approved or rejected when the recorded votes decide it (a Guard
// that crashed after the deciding vote did not record it), else expired
// when its expiry has passed. It returns the status recorded, or "" when
// nothing was due. An error wrapping errLost means another writer
// recorded something first.
func (g *Guard) advance(ctx context.Context, st *approval.State, out *Outcome) (receipt.Status, error) {
	if st.Status != receipt.StatusPendingApproval {
		return "", nil
	}
	var r *receipt.Receipt
	if status, votes := st.Outcome(); status != "" {
		r = g.next(st, status)
		r.Approval = &receipt.Approval{Votes: votes}
		if status == receipt.StatusApproved {
			r.Reasons = []string{fmt.Sprintf("quorum reached: %d of %d approvals", len(votes), st.Requirement.Quorum)}
		} else {
			r.Reasons = []string{"rejected by an approver"}
		}
	} else if st.ExpiredAt(g.cfg.clock()) {
		r = g.next(st, receipt.StatusExpired)
		r.Approval = &receipt.Approval{Reason: "approval request expired before the quorum was reached"}
	} else {
		return "", nil
	}
	if err := g.appendTransition(ctx, out, r); err != nil {
		return "", err
	}
	if r.Status == receipt.StatusExpired {
		g.cfg.logger.InfoContext(ctx, "approval expired", slog.String("action_id", st.ActionID))
	}
	return r.Status, nil
}

// transition runs step on fresh approval states of action id, under the
// action's lock, until step reports it is done, re-reading after every
// recorded transition and every race lost to another writer.
func (g *Guard) transition(ctx context.Context, id string, out *Outcome,
	step func(st *approval.State) (done bool, err error)) error {
	unlock := g.lockAction(id)
	defer unlock()
	for range maxTransitionAttempts {
		_, st, err := g.approvalState(ctx, id)
		if err != nil {
			return err
		}
		out.Status = st.Status
		status, err := g.advance(ctx, st, out)
		switch {
		case errors.Is(err, errLost):
			continue
		case err != nil:
			return err
		case status != "":
			continue
		}
		done, err := step(st)
		switch {
		case errors.Is(err, errLost):
			continue
		case err != nil || done:
			return err
		}
	}
	return fmt.Errorf("oars: action changed under %d attempts in a row to record a transition: %w", maxTransitionAttempts, ErrLedger)
}

// Vote records an approver's vote on action id, which must be pending
// approval. A vote that [approval.State.Check] refuses (approval.ErrNotPending,
// ErrExpired, ErrWrongTenant, ErrSelfApproval, ErrNotApprover,
// ErrAlreadyVoted, ErrStepUpRequired, ErrInvalidVote) is returned as that
// error and records nothing. An accepted vote is recorded as a vote
// receipt chained to the action; if it completes the quorum, an approved
// receipt follows, listing the counted votes, and if it rejects, a
// rejected receipt. The Guard does not verify the second factor: the
// caller verifies it and passes the method in v.StepUpMethod.
//
// Votes from many goroutines, Guards or server replicas may race: each
// vote takes the next seq of the action, the store refuses a second
// receipt at the same seq, and the loser re-reads the action and checks
// again (so a vote arriving after the quorum gets approval.ErrNotPending).
//
// The Outcome lists the receipts this call recorded (it may also record
// an outcome the votes or the clock had already decided) and the action's
// status after it. It fails with an error wrapping [ErrNotFound] for an
// unknown action and approval.ErrNotApproval for one never held for
// approval.
func (g *Guard) Vote(ctx context.Context, actionID string, v approval.Vote) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	voted := false
	err := g.transition(ctx, actionID, out, func(st *approval.State) (bool, error) {
		if voted {
			return true, nil // re-read after the vote: nothing more was due
		}
		if err := st.Check(v, g.cfg.clock()); err != nil {
			return true, err
		}
		r := g.next(st, receipt.StatusVote)
		r.Approval = v.Receipt()
		if err := g.appendTransition(ctx, out, r); err != nil {
			return false, err
		}
		voted = true
		return false, nil // re-read: the vote may decide the action
	})
	return out, err
}

// Cancel cancels action id, which must be pending approval, on behalf of
// by: the user who requested it, or a holder of approval.AdminRole, in
// the action's tenant. It records a cancelled receipt with by and reason.
// Refusals (approval.ErrNotPending, ErrExpired, ErrWrongTenant,
// ErrNotRequester, ErrInvalidVote) record nothing.
func (g *Guard) Cancel(ctx context.Context, actionID string, by approval.Approver, reason string) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	if err := approval.CheckReason(reason); err != nil {
		return out, fmt.Errorf("oars: cancel: %w", err)
	}
	err := g.transition(ctx, actionID, out, func(st *approval.State) (bool, error) {
		if err := st.CheckCancel(by, g.cfg.clock()); err != nil {
			return true, err
		}
		r := g.next(st, receipt.StatusCancelled)
		r.Approval = approval.CancelReceipt(by, reason)
		if err := g.appendTransition(ctx, out, r); err != nil {
			return false, err
		}
		return true, nil
	})
	return out, err
}

// Execute runs the approved action id exactly once. a must be the
// approved call, byte for byte: the same tenant, agent, user, delegation,
// resource and canonical input as the action's receipts (else
// [ErrApprovalMismatch]); a.ID must be actionID or empty (it is set).
//
// Execute first appends the claim, an executing receipt at the seq right
// after approved. The claim is the exactly-once arbiter: the ledger's
// store refuses a second receipt with the same (action_id, seq), so of
// several executors racing (goroutines, Guards, replicas on one
// database) exactly one records the claim and the others get
// [ErrAlreadyClaimed] without running exec. Only then does it run exec
// and append an executed receipt (with the output's digest) or a failed
// one (with an error class), as [Guard.Do] does.
//
// Execute also runs an action that was allowed without approval (decided
// with [Guard.Decide] but not executed yet: its only receipt is the
// allowed decision, or any decision in shadow mode) the same way: it
// claims the execution with an executing receipt at seq 2 and then
// records executed or failed, so a server that decides first and executes
// later runs the action once however many requests or replicas try.
//
// It returns [ErrNotApproved] (also wrapping [ErrRejected], [ErrExpired],
// [ErrCancelled] or [ErrDenied] when that is why) for an action that is
// neither approved nor allowed, and [ErrAlreadyClaimed] once it was
// claimed: an approval or an allowed decision is used once. Those
// refusals record nothing. If the process dies after the claim, the
// action stays executing and is never run again automatically (at most
// once); see [Guard.RecoverInterrupted].
func (g *Guard) Execute(ctx context.Context, actionID string, a *Action, exec ExecFunc) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	fn, err := g.execFor(exec)
	if err != nil {
		return out, err
	}
	st, err := g.claim(ctx, out, actionID, a)
	if err != nil {
		return out, err
	}
	return g.run(ctx, out, a, fn, st)
}

// Claim claims the execution of a decided action (allowed, approved, or
// any decision in shadow mode) for a caller that runs it itself, outside
// the Guard (a client reporting to a server, say): it records the
// executing receipt, as [Guard.Execute] does before running, and returns.
// The caller then runs the action and records its result with
// [Guard.Complete]. Refusals are those of Execute and record nothing. An
// action claimed and never completed is marked failed by
// [Guard.RecoverInterrupted].
func (g *Guard) Claim(ctx context.Context, actionID string, a *Action) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	_, err := g.claim(ctx, out, actionID, a)
	return out, err
}

// Complete records the result of an action claimed with [Guard.Claim]:
// executed with the digest of output when execErr is nil, failed with
// [ErrorClass] of execErr otherwise. a must be the claimed call. It fails
// with [ErrNotClaimed] when the action's last receipt is not an
// executing claim (never claimed, or already completed).
func (g *Guard) Complete(ctx context.Context, actionID string, a *Action, output json.RawMessage, execErr error) (*Outcome, error) {
	out := &Outcome{ActionID: actionID}
	digest, err := g.checkCall(actionID, a)
	if err != nil {
		return out, err
	}
	unlock := g.lockAction(actionID)
	defer unlock()
	entries, err := g.Receipts(ctx, actionID)
	if err != nil {
		return out, err
	}
	last := entries[len(entries)-1]
	if last.Receipt.Status != receipt.StatusExecuting {
		return out, fmt.Errorf("oars: complete: action is %s: %w", last.Receipt.Status, ErrNotClaimed)
	}
	if err := sameCall(callState(entries[0].Receipt), a, digest); err != nil {
		return out, err
	}
	fn := func(context.Context, *Action) (json.RawMessage, evidence, error) {
		return output, evidence{upstreamStatus: connector.UpstreamStatusOf(execErr)}, execErr
	}
	return g.run(ctx, out, a, fn, stateAfter(last))
}

// ErrNotClaimed is returned by [Guard.Complete] for an action whose
// execution is not claimed.
var ErrNotClaimed = errors.New("oars: action execution not claimed")

// callState is the call recorded by a decision receipt, for sameCall.
func callState(first *receipt.Receipt) *approval.State {
	return &approval.State{
		TenantID: first.TenantID, AgentID: first.AgentID, RequesterUserID: first.Principal.UserID,
		Delegation: first.Principal.Delegation, Resource: first.Resource, InputDigest: first.InputDigest,
	}
}

// checkCall checks a against actionID and returns its input digest.
func (g *Guard) checkCall(actionID string, a *Action) (string, error) {
	if a == nil {
		return "", fmt.Errorf("%w: nil action", ErrInvalidAction)
	}
	if a.ID == "" {
		a.ID = actionID
	}
	if a.ID != actionID {
		return "", fmt.Errorf("%w: action id differs", ErrApprovalMismatch)
	}
	if err := g.validate(a); err != nil {
		return "", err
	}
	return inputDigest(a.Input)
}

// claim records the executing receipt of a decided action and returns
// the chain state after it.
func (g *Guard) claim(ctx context.Context, out *Outcome, actionID string, a *Action) (*chainState, error) {
	digest, err := g.checkCall(actionID, a)
	if err != nil {
		return nil, err
	}
	entries, err := g.Receipts(ctx, actionID)
	if err != nil {
		return nil, err
	}
	if !heldForApproval(entries[0].Receipt) {
		return g.claimDecided(ctx, out, a, digest)
	}
	var claim Entry
	err = g.transition(ctx, actionID, out, func(st *approval.State) (bool, error) {
		if err := executable(st); err != nil {
			return true, err
		}
		if err := sameCall(st, a, digest); err != nil {
			return true, err
		}
		if err := g.appendTransition(ctx, out, g.next(st, receipt.StatusExecuting)); err != nil {
			return false, err
		}
		claim = out.Receipts[len(out.Receipts)-1]
		return true, nil
	})
	if errors.Is(err, approval.ErrNotApproval) {
		err = fmt.Errorf("%w: %w", ErrNotApproved, err)
	}
	if err != nil {
		return nil, err
	}
	return stateAfter(claim), nil
}

// claimDecided is claim for an action never held for approval: it claims
// an allowed (or shadow) decision with an executing receipt at seq 2.
func (g *Guard) claimDecided(ctx context.Context, out *Outcome, a *Action, digest string) (*chainState, error) {
	var claim Entry
	err := g.transitionPlain(ctx, a.ID, func(entries []Entry) (bool, error) {
		first, last := entries[0].Receipt, entries[len(entries)-1]
		out.Status = last.Receipt.Status
		switch {
		case first.Status != receipt.StatusAllowed && first.Mode != receipt.ModeShadow:
			return true, fmt.Errorf("oars: execute: action is %s: %w: %w", first.Status, ErrNotApproved, ErrDenied)
		case len(entries) > 1:
			return true, fmt.Errorf("oars: execute: action is %s: %w", last.Receipt.Status, ErrAlreadyClaimed)
		}
		if err := sameCall(callState(first), a, digest); err != nil {
			return true, err
		}
		if err := g.appendTransition(ctx, out, g.nextAfter(last.Receipt, receipt.Digest(last.Bytes), receipt.StatusExecuting)); err != nil {
			return false, err
		}
		claim = out.Receipts[len(out.Receipts)-1]
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	return stateAfter(claim), nil
}

// executable returns nil if an action in state st may be claimed for
// execution, and otherwise why not.
func executable(st *approval.State) error {
	switch st.Status {
	case receipt.StatusApproved:
		return nil
	case receipt.StatusExecuting, receipt.StatusExecuted, receipt.StatusFailed, receipt.StatusDeadLettered:
		return fmt.Errorf("oars: execute: action is %s: %w", st.Status, ErrAlreadyClaimed)
	case receipt.StatusRejected:
		return fmt.Errorf("oars: execute: %w: %w", ErrNotApproved, ErrRejected)
	case receipt.StatusExpired:
		return fmt.Errorf("oars: execute: %w: %w", ErrNotApproved, ErrExpired)
	case receipt.StatusCancelled:
		return fmt.Errorf("oars: execute: %w: %w", ErrNotApproved, ErrCancelled)
	}
	return fmt.Errorf("oars: execute: action is %s: %w", st.Status, ErrNotApproved)
}

// sameCall returns nil if a, with canonical input digest, is the call
// recorded in st.
func sameCall(st *approval.State, a *Action, digest string) error {
	hopEqual := func(x, y receipt.DelegationHop) bool {
		return x.Issuer == y.Issuer && x.Subject == y.Subject && slices.Equal(x.Scope, y.Scope)
	}
	var what string
	switch {
	case a.TenantID != st.TenantID:
		what = "tenant"
	case a.AgentID != st.AgentID:
		what = "agent"
	case a.Principal.UserID != st.RequesterUserID:
		what = "user"
	case !slices.EqualFunc(a.Principal.Delegation, st.Delegation, hopEqual):
		what = "delegation"
	case a.Resource != st.Resource:
		what = "resource"
	case digest != st.InputDigest:
		what = "input"
	default:
		return nil
	}
	return fmt.Errorf("oars: execute: %s differs: %w", what, ErrApprovalMismatch)
}

// run runs exec for an allowed or claimed action and records its result
// (executed or failed) after st.
func (g *Guard) run(ctx context.Context, out *Outcome, a *Action, exec execFn, st *chainState) (*Outcome, error) {
	return g.runWith(ctx, out, a, exec, st, nil)
}

// runWith is run with a choice for failures: failure, when not nil, says
// which status a failed execution records (failed or dead_lettered), or
// record false to record nothing (the caller retries later).
func (g *Guard) runWith(ctx context.Context, out *Outcome, a *Action, exec execFn, st *chainState,
	failure func(error) (s receipt.Status, record bool)) (*Outcome, error) {
	st.base.ReceiptID, st.base.Status, st.base.Signature = "", "", nil
	st.base.ErrorClass, st.base.Reasons, st.base.OutputDigest, st.base.OutputSummary, st.base.UpstreamStatus = "", nil, "", nil, 0
	st.base.Approval, st.base.Policy = nil, nil
	output, ev, execErr := exec(ctx, a)
	var canonical []byte
	if execErr == nil {
		if len(output) == 0 {
			output = json.RawMessage("null")
		}
		var cerr error
		canonical, cerr = receipt.Canonicalize(output)
		if cerr != nil {
			execErr = fmt.Errorf("%w: %w", ErrInvalidOutput, cerr)
		}
	}
	failStatus := receipt.StatusFailed
	if execErr != nil && failure != nil {
		var record bool
		if failStatus, record = failure(execErr); !record {
			return out, fmt.Errorf("%w: %w", ErrRetry, execErr)
		}
	}
	next := st.next(g)
	next.UpstreamStatus = int64(ev.upstreamStatus)
	if next.UpstreamStatus < 0 || next.UpstreamStatus > 999 {
		next.UpstreamStatus = 0
	}
	if execErr != nil {
		next.Status = failStatus
		next.ErrorClass = ErrorClass(execErr)
	} else {
		next.Status = receipt.StatusExecuted
		next.OutputDigest = receipt.Digest(canonical)
		next.OutputSummary = g.summary(ctx, out.ActionID, ev.summary)
	}
	if err := g.record(ctx, out, next); err != nil {
		g.cfg.logger.ErrorContext(ctx, "recording execution result failed",
			slog.String("action_id", out.ActionID), slog.String("status", string(next.Status)), slog.Any("error", err))
		out.Output = output
		return out, err
	}
	if execErr != nil {
		return out, fmt.Errorf("oars: exec: %w", execErr)
	}
	out.Output = output
	return out, nil
}

// waitable reports whether an action with status s may still change
// without anyone executing it: pending (votes may come) or executing.
func waitable(s receipt.Status) bool {
	return s == receipt.StatusPendingApproval || s == receipt.StatusVote || s == receipt.StatusExecuting
}

// Wait returns when action id is final for its caller: approved (ready to
// [Guard.Execute]), rejected, expired, cancelled, executed, failed,
// allowed, denied — anything but pending approval or executing. The
// Outcome lists all the action's receipts. Transitions this Guard records
// wake Wait at once; those other Guards or replicas record are seen by
// polling the ledger (see [WithPollInterval]). When the expiry passes
// while it waits, Wait records the expiry itself.
//
// If ctx ends first, Wait returns an error wrapping [ErrPendingApproval]
// and ctx.Err(). It fails with an error wrapping [ErrNotFound] for an
// unknown action.
func (g *Guard) Wait(ctx context.Context, actionID string) (*Outcome, error) {
	for {
		ch, unsubscribe := g.subscribe(actionID)
		out, expiresIn, err := g.waitStep(ctx, actionID)
		if err != nil && ctx.Err() != nil {
			err = fmt.Errorf("oars: wait: %w: %w", ErrPendingApproval, ctx.Err())
			out = &Outcome{ActionID: actionID, Status: receipt.StatusPendingApproval}
		}
		if err != nil || out != nil {
			unsubscribe()
			return out, err
		}
		// Wake at the next transition, the next poll or the expiry,
		// whichever comes first.
		timeout := g.cfg.pollInterval
		if expiresIn > 0 {
			timeout = min(timeout, expiresIn)
		}
		timer := time.NewTimer(timeout)
		var cause error
		select {
		case <-ch:
		case <-timer.C:
		case <-ctx.Done():
			cause = ctx.Err()
		}
		timer.Stop()
		unsubscribe()
		if cause != nil {
			return &Outcome{ActionID: actionID, Status: receipt.StatusPendingApproval},
				fmt.Errorf("oars: wait: %w: %w", ErrPendingApproval, cause)
		}
	}
}

// waitStep reads action id once, records what is due (see advance), and
// returns the outcome if the action is final for Wait, or else how long
// until it expires (0 if it is not pending).
func (g *Guard) waitStep(ctx context.Context, id string) (*Outcome, time.Duration, error) {
	out := &Outcome{ActionID: id}
	var expiresIn time.Duration
	err := g.transition(ctx, id, out, func(st *approval.State) (bool, error) {
		if st.Status == receipt.StatusPendingApproval {
			expiresIn = max(st.Requirement.ExpiresAt.Sub(g.cfg.clock()), time.Millisecond)
		}
		return true, nil
	})
	if errors.Is(err, approval.ErrNotApproval) {
		err = nil // an action never held: its status is what it is
	}
	if err != nil {
		return nil, 0, fmt.Errorf("oars: wait: %w", err)
	}
	entries, err := g.Receipts(ctx, id)
	if err != nil {
		return nil, 0, fmt.Errorf("oars: wait: %w", err)
	}
	last := entries[len(entries)-1].Receipt.Status
	if waitable(last) {
		return nil, expiresIn, nil
	}
	return &Outcome{ActionID: id, Status: last, Receipts: entries}, 0, nil
}

// awaitApproval is Do's path for an action held for approval: wait, then
// execute once approved.
func (g *Guard) awaitApproval(ctx context.Context, a *Action, out *Outcome, exec ExecFunc) (*Outcome, error) {
	w, err := g.Wait(ctx, a.ID)
	if err != nil {
		return out, err
	}
	out.Receipts, out.Status = w.Receipts, w.Status
	switch w.Status {
	case receipt.StatusApproved:
	case receipt.StatusRejected:
		return out, fmt.Errorf("oars: do: %w", ErrRejected)
	case receipt.StatusExpired:
		return out, fmt.Errorf("oars: do: %w", ErrExpired)
	case receipt.StatusCancelled:
		return out, fmt.Errorf("oars: do: %w", ErrCancelled)
	default:
		return out, fmt.Errorf("oars: do: action is %s: %w", w.Status, ErrAlreadyClaimed)
	}
	e, err := g.Execute(ctx, a.ID, a, exec)
	out.Receipts = append(out.Receipts, e.Receipts...)
	if len(e.Receipts) > 0 {
		out.Status = e.Status
	}
	out.Output = e.Output
	return out, err
}

// SweepExpired records an expired receipt for every action this Guard
// knows to be pending (see [Guard.LoadPending]) whose expiry has passed,
// and the approved or rejected receipt of any whose recorded votes
// already decided it. It returns how many actions it expired. A race with
// another replica recording the same transition is not an error: the
// action is re-read. Errors of single actions are joined; the sweep goes
// on with the others.
func (g *Guard) SweepExpired(ctx context.Context) (int, error) {
	g.appr.mu.Lock()
	ids := make([]string, 0, len(g.appr.pending))
	for id := range g.appr.pending {
		ids = append(ids, id)
	}
	g.appr.mu.Unlock()
	slices.Sort(ids)
	n := 0
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("oars: sweep expired: %w", err)
		}
		out := &Outcome{ActionID: id}
		err := g.transition(ctx, id, out, func(*approval.State) (bool, error) { return true, nil })
		if err != nil {
			errs = append(errs, fmt.Errorf("oars: sweep expired: %w", err))
		}
		for _, e := range out.Receipts {
			if e.Receipt.Status == receipt.StatusExpired {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// LoadPending finds the actions pending approval in the ledger, whoever
// recorded them, and adds them to the Guard's index of pending actions,
// which [Guard.SweepExpired] visits: call it at start-up (RunSweeper
// does), so that expiry survives restarts. It reads every
// pending_approval receipt of the ledger through its store's Querier,
// then the receipts of each action not known to be final, records
// nothing, and returns the number of actions pending.
func (g *Guard) LoadPending(ctx context.Context) (int, error) {
	n := 0
	err := g.scan(ctx, receipt.StatusPendingApproval, "", func(id string) error {
		_, st, err := g.approvalState(ctx, id) // indexes it if pending
		switch {
		case errors.Is(err, approval.ErrNotApproval):
			return nil // decided in shadow mode
		case err != nil:
			return err
		}
		if st.Status == receipt.StatusPendingApproval {
			n++
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("oars: load pending: %w", err)
	}
	return n, nil
}

// scan calls visit with the action id of every receipt of status (and
// tenant, if not empty) in the ledger, once per action, skipping actions
// known to be final.
func (g *Guard) scan(ctx context.Context, status receipt.Status, tenant string, visit func(id string) error) error {
	seen := map[string]bool{}
	q := ledger.Query{Status: string(status), TenantID: tenant, Limit: ledger.MaxPageSize}
	for {
		recs, next, err := g.querier.ListReceipts(ctx, q)
		if err != nil {
			return fmt.Errorf("list %s receipts: %w", status, err)
		}
		for _, rec := range recs {
			h, ok := ledger.ParseHeader(rec.Leaf)
			if !ok || seen[h.ActionID] || g.knownDone(h.ActionID) {
				continue
			}
			seen[h.ActionID] = true
			if err := visit(h.ActionID); err != nil {
				return err
			}
		}
		if next == "" {
			return nil
		}
		q.Cursor = next
	}
}

// RunSweeper enforces expiry until ctx ends: it loads the pending actions
// ([Guard.LoadPending]) and records what is due ([Guard.SweepExpired]) at
// once and then every interval, reloading the pending actions every tenth
// sweep to pick up those other replicas recorded. The caller owns the goroutine
// it runs on (go g.RunSweeper(ctx, time.Minute)) and stops it by ending
// ctx; RunSweeper then returns ctx's error. Errors of single sweeps are
// logged, never returned. interval must be positive.
func (g *Guard) RunSweeper(ctx context.Context, interval time.Duration) error {
	if interval <= 0 {
		return fmt.Errorf("oars: run sweeper: interval %v is not positive", interval)
	}
	logger := g.cfg.logger
	load := func() {
		if _, err := g.LoadPending(ctx); err != nil && ctx.Err() == nil {
			logger.ErrorContext(ctx, "loading pending approvals failed", slog.Any("error", err))
		}
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for sweeps := 0; ; sweeps++ {
		if sweeps%sweepsPerReload == 0 {
			load()
		}
		if n, err := g.SweepExpired(ctx); err != nil && ctx.Err() == nil {
			logger.ErrorContext(ctx, "sweeping expired approvals failed", slog.Int("expired", n), slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("oars: run sweeper: %w", ctx.Err())
		case <-ticker.C:
		}
	}
}

// PendingApprovals returns the actions of tenant tenantID (all tenants if
// empty) that wait for votes, derived from their receipts, oldest first.
// Actions whose expiry has passed, or whose votes already decided them,
// are left out (a sweep records their outcome). It reads every
// pending_approval receipt of the tenant, then the receipts of each action
// not known to be final.
func (g *Guard) PendingApprovals(ctx context.Context, tenantID string) ([]*approval.State, error) {
	var out []*approval.State
	now := g.cfg.clock()
	err := g.scan(ctx, receipt.StatusPendingApproval, tenantID, func(id string) error {
		_, st, err := g.approvalState(ctx, id)
		switch {
		case errors.Is(err, approval.ErrNotApproval):
			return nil
		case err != nil:
			return err
		}
		if st.Pending() && !st.ExpiredAt(now) {
			out = append(out, st)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oars: pending approvals: %w", err)
	}
	return out, nil
}

// ApprovedUnexecuted returns the ids of the actions that are approved but
// whose execution was never claimed, in ledger order: after a crash
// between approval and execution, a server executes each with
// [Guard.Execute], whose claim makes sure that happens once even if
// several replicas try. At start-up, call [Guard.LoadPending] and
// [Guard.SweepExpired] first, so that votes that reached the quorum just
// before a crash are settled as approved.
func (g *Guard) ApprovedUnexecuted(ctx context.Context) ([]string, error) {
	var ids []string
	err := g.scan(ctx, receipt.StatusApproved, "", func(id string) error {
		_, st, err := g.approvalState(ctx, id)
		if err != nil {
			return err
		}
		if st.Status == receipt.StatusApproved {
			ids = append(ids, id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("oars: approved unexecuted: %w", err)
	}
	return ids, nil
}

// RecoverInterrupted marks as failed, with error class "interrupted", every
// action whose execution was claimed (executing) at least olderThan ago
// and never finished: the executor died. Such actions are not executed
// again (an approval is used at most once; a connector with idempotent
// retries can do better). olderThan must exceed the longest execution, or
// a slow execution still running is marked failed and its result cannot
// be recorded. It covers approved actions and allowed ones claimed by
// [Guard.Execute] alike. It returns the number of actions marked.
func (g *Guard) RecoverInterrupted(ctx context.Context, olderThan time.Duration) (int, error) {
	return g.RecoverInterruptedExcept(ctx, olderThan, nil)
}

// RecoverInterruptedExcept is [Guard.RecoverInterrupted] leaving alone the
// actions for which skip returns true: those a durable queue will deliver
// again (see connector/queue), whose next attempt claims them anew. A nil
// skip skips nothing.
func (g *Guard) RecoverInterruptedExcept(ctx context.Context, olderThan time.Duration, skip func(actionID string) bool) (int, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("oars: recover interrupted: %v is not positive", olderThan)
	}
	n := 0
	interrupted := func(ctx context.Context, out *Outcome, last *receipt.Receipt, lastDigest string) error {
		r := g.nextAfter(last, lastDigest, receipt.StatusFailed)
		r.ErrorClass = "interrupted"
		r.Reasons = []string{"execution was claimed but no result was recorded in time"}
		if err := g.appendTransition(ctx, out, r); err != nil {
			return err
		}
		n++
		return nil
	}
	err := g.scan(ctx, receipt.StatusExecuting, "", func(id string) error {
		if skip != nil && skip(id) {
			return nil
		}
		out := &Outcome{ActionID: id}
		entries, err := g.Receipts(ctx, id)
		if err != nil {
			return err
		}
		if !heldForApproval(entries[0].Receipt) {
			return g.transitionPlain(ctx, id, func(entries []Entry) (bool, error) {
				last := entries[len(entries)-1]
				if final(last.Receipt.Status) {
					g.markDone(id)
				}
				if last.Receipt.Status != receipt.StatusExecuting || g.cfg.clock().Sub(last.Receipt.IssuedAt) < olderThan {
					return true, nil
				}
				if err := interrupted(ctx, out, last.Receipt, receipt.Digest(last.Bytes)); err != nil {
					return false, err
				}
				g.markDone(id)
				return true, nil
			})
		}
		err = g.transition(ctx, id, out, func(st *approval.State) (bool, error) {
			if st.Status != receipt.StatusExecuting || g.cfg.clock().Sub(st.Last.IssuedAt) < olderThan {
				return true, nil
			}
			if err := interrupted(ctx, out, st.Last, st.LastDigest); err != nil {
				return false, err
			}
			return true, nil
		})
		if errors.Is(err, approval.ErrNotApproval) {
			return nil
		}
		return err
	})
	if err != nil {
		return n, fmt.Errorf("oars: recover interrupted: %w", err)
	}
	return n, nil
}
