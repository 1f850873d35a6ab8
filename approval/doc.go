// Package approval is the state machine of actions held for human
// approval: requirements, votes, quorum, separation of duties, expiry and
// step-up, as pure functions over an action's receipts. The Guard of
// package oars records the transitions (Vote, Cancel, Execute, Wait, the
// expiry sweeper); this package decides what they may be. It does no I/O.
//
// # The workflow
//
// When a policy rule requires approval, the Guard records a
// pending_approval receipt whose approval member is the [Requirement]
// ([RequirementFrom] the merged policy block): approver roles (any of
// them qualifies) and named users, a quorum of distinct approvers, when
// the request expires, and whether approving needs a second factor.
// Then, each a signed receipt chained to the action:
//
//	pending_approval ─┬─ vote … vote ─┬─► approved ──► executing ──► executed | failed
//	                  │               ├─► rejected
//	                  └───────────────┼─► expired
//	                                  └─► cancelled
//
// Each [Vote] becomes a vote receipt recording the approver, their roles,
// decision, reason and step-up method; a vote leaves the action pending.
// When the distinct approving approvers reach the quorum, an approved
// receipt lists the counted votes; any reject vote rejects. The requester
// or an admin may cancel while pending. When the expiry passes, the action
// is expired and can never run.
//
// # State comes from receipts
//
// [Derive] computes an action's [State] from its receipts in seq order;
// nothing else is stored, so the state can never disagree with the audit
// trail. [State.Check] decides whether a vote may be recorded:
// the action must be pending and not expired; the approver must be in the
// action's tenant ([ErrWrongTenant]), must be neither the requesting user
// nor the acting agent nor an actor of the delegation chain
// ([ErrSelfApproval]), must hold a required role or be a named approver
// ([ErrNotApprover]), counts once ([ErrAlreadyVoted]), and must present a
// second factor to approve when the requirement asks for it
// ([ErrStepUpRequired]). A refused vote is not recorded at all.
// [State.Outcome] says what the recorded votes decide.
//
// Step-up is verified by the caller (the HTTP layer checks the TOTP code,
// rate-limits failures and logs them as security events) before it calls
// the Guard; the vote records the method used. A vote, and so the approved
// receipt, commits to the action's resource and input digest: the
// receipts repeat them, and the Guard executes only a call identical to
// the recorded one.
//
// # Exactly-once execution
//
// Approval and execution are separate transitions, and every writer
// (goroutines of one Guard, several Guards, several oarsd replicas on one
// PostgreSQL database) appends them with optimistic concurrency on the
// action's chain: a receipt takes seq = last seq + 1 and the digest of
// the last receipt. The ledger's stores refuse a second receipt with an
// (action_id, seq) already stored (ledger.ErrDuplicate), atomically with
// the append, and the ledger retries the other receipts of a refused group
// commit alone, so exactly one writer wins each seq. A loser re-reads the
// action, derives its state again and re-checks: a late vote finds the
// action approved (ErrNotPending), a second executor finds it claimed.
// This needs a store that refuses duplicates, as the MemStore, SQLite and
// PostgreSQL stores do and package ledgertest checks; a plain Store behind
// the scanning querier stores duplicates and suits a single Guard only.
//
// Execution is claimed before it starts: the Guard appends an executing
// receipt right after approved, and only the writer whose claim the store
// accepted runs the action; everyone else gets oars.ErrAlreadyClaimed
// without running anything. An approval is thus used once. Within one
// Guard, a per-action lock keeps goroutines from racing each other at
// all.
//
// Crashes cannot execute twice and do not lose the execution:
//
//   - Crash after the deciding vote, before approved is recorded: the
//     votes are in the ledger, so the next reader (the sweeper, a vote,
//     Wait, LoadPending at start-up) derives the decided [State.Outcome]
//     and records approved or rejected.
//   - Crash after approved, before the claim: the action's last receipt is
//     approved; at start-up the server lists such actions
//     (Guard.ApprovedUnexecuted) and executes them; the claim makes sure
//     only one replica does.
//   - Crash after the claim, during execution: the action stays executing
//     and is never run again automatically (at most once: the Guard
//     cannot know whether the side effect happened).
//     Guard.RecoverInterrupted marks it failed ("interrupted") once a
//     lease has passed; connectors with idempotent retries can do better.
//
// Expiry is enforced when time passes, not only when someone looks:
// Guard.RunSweeper records expired for every pending action past its
// expiry, loading the pending actions from the ledger at start, so an
// expiry that passed while the server was stopped is recorded on restart;
// an expired action is never approved or executed afterwards.
package approval
