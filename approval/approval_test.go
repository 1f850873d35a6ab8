package approval_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

func testSigner(t testing.TB) receipt.Signer {
	t.Helper()
	seed := make([]byte, ed25519.SeedSize)
	copy(seed, "approval package test key")
	s, err := receipt.NewEd25519Signer("approval-test", ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	return s
}

// chain builds the signed receipts of one action.
type chain struct {
	t       testing.TB
	signer  receipt.Signer
	entries []approval.Entry
}

func newChain(t testing.TB, req approval.Requirement) *chain {
	c := &chain{t: t, signer: testSigner(t)}
	c.add(receipt.StatusPendingApproval, func(r *receipt.Receipt) {
		r.Approval = req.Receipt()
		r.Reasons = []string{"refunds over 100 need approval"}
		r.Policy = &receipt.PolicyRef{ID: "payments", Version: "1", Digest: receipt.Digest([]byte("p"))}
	})
	return c
}

// add appends a receipt of status, edited by edit, and returns its id.
func (c *chain) add(status receipt.Status, edit func(r *receipt.Receipt)) string {
	c.t.Helper()
	n := len(c.entries)
	r := &receipt.Receipt{
		Spec: receipt.Spec, ActionID: "act-1", TenantID: "acme", AgentID: "support-bot",
		Principal:   receipt.Principal{UserID: "alice", Delegation: []receipt.DelegationHop{{Subject: "orchestrator"}}},
		Resource:    receipt.Resource{ToolID: "payments", Operation: "refund", Target: "order/7"},
		InputDigest: receipt.Digest([]byte(`{"amount":500}`)),
		Mode:        receipt.ModeEnforce, Status: status, Seq: int64(n + 1),
		ReceiptID: "rcpt-" + string(rune('a'+n)), IssuedAt: t0.Add(time.Duration(n) * time.Minute),
	}
	if n > 0 {
		r.PrevReceiptDigest = receipt.Digest(c.entries[n-1].Bytes)
	}
	if edit != nil {
		edit(r)
	}
	b, err := receipt.Sign(context.Background(), c.signer, r)
	require.NoError(c.t, err, "Sign(%s)", status)
	c.entries = append(c.entries, approval.Entry{Receipt: r, Bytes: b})
	return r.ReceiptID
}

// vote appends a vote receipt.
func (c *chain) vote(user string, d approval.Decision, roles ...string) string {
	c.t.Helper()
	return c.add(receipt.StatusVote, func(r *receipt.Receipt) {
		r.Approval = approval.Vote{Approver: approval.Approver{UserID: user, Roles: roles}, Decision: d, StepUpMethod: approval.StepUpTOTP}.Receipt()
	})
}

func (c *chain) derive() *approval.State {
	c.t.Helper()
	st, err := approval.Derive(c.entries)
	require.NoError(c.t, err, "Derive()")
	return st
}

func requirement() approval.Requirement {
	return approval.Requirement{Roles: []string{"finance"}, Users: []string{"carol"}, Quorum: 2, ExpiresAt: t0.Add(time.Hour)}
}

func approver(user string, roles ...string) approval.Approver {
	return approval.Approver{UserID: user, Roles: roles, TenantIDs: []string{"acme"}}
}

func TestRequirementFrom(t *testing.T) {
	tests := []struct {
		name string
		in   policy.Approval
		want approval.Requirement
	}{
		{"policy block", policy.Approval{Roles: []string{"finance"}, Users: []string{"carol"}, Quorum: 2, Expiry: 30 * time.Minute, StepUp: true},
			approval.Requirement{Roles: []string{"finance"}, Users: []string{"carol"}, Quorum: 2, ExpiresAt: t0.Add(30 * time.Minute), StepUp: true}},
		{"zero value gets defaults", policy.Approval{},
			approval.Requirement{Roles: []string{approval.DefaultApproverRole}, Quorum: 1, ExpiresAt: t0.Add(policy.DefaultApprovalExpiry)}},
		{"named users only", policy.Approval{Users: []string{"bob"}, Quorum: 1, Expiry: time.Hour},
			approval.Requirement{Users: []string{"bob"}, Quorum: 1, ExpiresAt: t0.Add(time.Hour)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := approval.RequirementFrom(tt.in, t0.In(time.FixedZone("CET", 3600)))
			assert.Equal(t, tt.want, got, "RequirementFrom(%+v)", tt.in)
			assert.Equal(t, time.UTC, got.ExpiresAt.Location(), "ExpiresAt is UTC")
			ra := got.Receipt()
			assert.Equal(t, got.Quorum, ra.Quorum)
			assert.True(t, ra.ExpiresAt.Equal(got.ExpiresAt))
		})
	}
	// The requirement does not share the policy's slices.
	in := policy.Approval{Roles: []string{"finance"}}
	got := approval.RequirementFrom(in, t0)
	in.Roles[0] = "intern"
	assert.Equal(t, []string{"finance"}, got.Roles)
}

func TestDerive(t *testing.T) {
	c := newChain(t, requirement())
	st := c.derive()
	assert.Equal(t, receipt.StatusPendingApproval, st.Status)
	assert.True(t, st.Pending())
	assert.Equal(t, "act-1", st.ActionID)
	assert.Equal(t, "acme", st.TenantID)
	assert.Equal(t, "support-bot", st.AgentID)
	assert.Equal(t, "alice", st.RequesterUserID)
	assert.Equal(t, requirement(), st.Requirement)
	assert.Equal(t, int64(1), st.LastSeq)
	assert.Equal(t, receipt.Digest(c.entries[0].Bytes), st.LastDigest)
	assert.Equal(t, []string{"refunds over 100 need approval"}, st.Reasons)

	v1 := c.vote("bob", approval.Approve, "finance")
	st = c.derive()
	assert.Equal(t, receipt.StatusPendingApproval, st.Status, "a vote leaves the action pending")
	require.Len(t, st.Votes, 1)
	assert.Equal(t, approval.RecordedVote{ReceiptID: v1, Seq: 2, UserID: "bob", Roles: []string{"finance"}, Decision: approval.Approve,
		StepUpMethod: approval.StepUpTOTP, At: t0.Add(time.Minute)}, st.Votes[0])
	assert.False(t, st.QuorumReached())
	status, _ := st.Outcome()
	assert.Empty(t, status)

	v2 := c.vote("carol", approval.Approve)
	st = c.derive()
	assert.True(t, st.QuorumReached())
	status, votes := st.Outcome()
	assert.Equal(t, receipt.StatusApproved, status)
	assert.Equal(t, []string{v1, v2}, votes)
	assert.False(t, st.Pending(), "votes decided it: no longer pending")
	assert.Equal(t, receipt.StatusPendingApproval, st.Status, "until approved is recorded")

	c.add(receipt.StatusApproved, func(r *receipt.Receipt) { r.Approval = &receipt.Approval{Votes: votes} })
	c.add(receipt.StatusExecuting, nil)
	c.add(receipt.StatusExecuted, func(r *receipt.Receipt) { r.OutputDigest = receipt.Digest([]byte("null")) })
	st = c.derive()
	assert.Equal(t, receipt.StatusExecuted, st.Status)
	assert.Equal(t, int64(6), st.LastSeq)
	assert.Equal(t, receipt.StatusExecuted, st.Last.Status)
	assert.Equal(t, t0.Add(5*time.Minute), st.UpdatedAt)
}

func TestDeriveErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func(t *testing.T) []approval.Entry
		want  error
	}{
		{"no receipts", func(*testing.T) []approval.Entry { return nil }, approval.ErrInvalidHistory},
		{"allowed action", func(t *testing.T) []approval.Entry {
			c := &chain{t: t, signer: testSigner(t)}
			c.add(receipt.StatusAllowed, nil)
			return c.entries
		}, approval.ErrNotApproval},
		{"shadow mode", func(t *testing.T) []approval.Entry {
			c := &chain{t: t, signer: testSigner(t)}
			c.add(receipt.StatusPendingApproval, func(r *receipt.Receipt) { r.Mode = receipt.ModeShadow; r.Approval = requirement().Receipt() })
			return c.entries
		}, approval.ErrNotApproval},
		{"pending without requirement", func(t *testing.T) []approval.Entry {
			c := &chain{t: t, signer: testSigner(t)}
			c.add(receipt.StatusPendingApproval, nil)
			return c.entries
		}, approval.ErrInvalidHistory},
		{"seq gap", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.vote("bob", approval.Approve, "finance")
			c.vote("carol", approval.Approve)
			return append(c.entries[:1], c.entries[2])
		}, approval.ErrInvalidHistory},
		{"broken digest", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusVote, func(r *receipt.Receipt) {
				r.PrevReceiptDigest = receipt.Digest([]byte("other"))
				r.Approval = approval.Vote{Approver: approver("bob"), Decision: approval.Approve}.Receipt()
			})
			return c.entries
		}, approval.ErrInvalidHistory},
		{"other tenant", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusExpired, func(r *receipt.Receipt) { r.TenantID = "globex" })
			return c.entries
		}, approval.ErrInvalidHistory},
		{"vote after approved", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusApproved, nil)
			c.vote("bob", approval.Approve, "finance")
			return c.entries
		}, approval.ErrInvalidHistory},
		{"executing while pending", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusExecuting, nil)
			return c.entries
		}, approval.ErrInvalidHistory},
		{"executed without claim", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusApproved, nil)
			c.add(receipt.StatusExecuted, nil)
			return c.entries
		}, approval.ErrInvalidHistory},
		{"expired twice", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusExpired, nil)
			c.add(receipt.StatusExpired, nil)
			return c.entries
		}, approval.ErrInvalidHistory},
		{"legacy vote without approval", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusVote, nil)
			return c.entries
		}, approval.ErrInvalidHistory},
		{"second decision receipt", func(t *testing.T) []approval.Entry {
			c := newChain(t, requirement())
			c.add(receipt.StatusPendingApproval, func(r *receipt.Receipt) { r.Approval = requirement().Receipt() })
			return c.entries
		}, approval.ErrInvalidHistory},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := approval.Derive(tt.build(t))
			assert.ErrorIs(t, err, tt.want, "Derive() = %v, %v", st, err)
			assert.Nil(t, st)
		})
	}
}

func TestCheck(t *testing.T) {
	c := newChain(t, requirement())
	c.vote("dave", approval.Approve, "finance")
	pending := c.derive()

	stepUp := requirement()
	stepUp.StepUp = true
	stepUpState := newChain(t, stepUp).derive()

	now := t0.Add(30 * time.Minute)
	approve := func(a approval.Approver) approval.Vote {
		return approval.Vote{Approver: a, Decision: approval.Approve, Reason: "looks right"}
	}
	tests := []struct {
		name string
		st   *approval.State
		v    approval.Vote
		now  time.Time
		want error
	}{
		{"role holder", pending, approve(approver("bob", "support", "finance")), now, nil},
		{"named user", pending, approve(approver("carol")), now, nil},
		{"all tenants", pending, approve(approval.Approver{UserID: "bob", Roles: []string{"finance"}, TenantIDs: []string{"*"}}), now, nil},
		{"reject", pending, approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Reject}, now, nil},
		{"requesting user", pending, approve(approver("alice", "finance")), now, approval.ErrSelfApproval},
		{"acting agent", pending, approve(approver("support-bot", "finance")), now, approval.ErrSelfApproval},
		{"delegation actor", pending, approve(approver("orchestrator", "finance")), now, approval.ErrSelfApproval},
		{"wrong role", pending, approve(approver("bob", "support")), now, approval.ErrNotApprover},
		{"no role", pending, approve(approver("bob")), now, approval.ErrNotApprover},
		{"role name as user", pending, approve(approver("finance")), now, approval.ErrNotApprover},
		{"other tenant", pending, approve(approval.Approver{UserID: "bob", Roles: []string{"finance"}, TenantIDs: []string{"globex"}}), now, approval.ErrWrongTenant},
		{"no tenant", pending, approve(approval.Approver{UserID: "bob", Roles: []string{"finance"}}), now, approval.ErrWrongTenant},
		{"same approver twice", pending, approve(approver("dave", "finance")), now, approval.ErrAlreadyVoted},
		{"same approver rejects after approving", pending, approval.Vote{Approver: approver("dave", "finance"), Decision: approval.Reject}, now, approval.ErrAlreadyVoted},
		{"expired", pending, approve(approver("bob", "finance")), t0.Add(time.Hour), approval.ErrExpired},
		{"long expired", pending, approve(approver("bob", "finance")), t0.Add(48 * time.Hour), approval.ErrExpired},
		{"step-up missing", stepUpState, approve(approver("bob", "finance")), now, approval.ErrStepUpRequired},
		{"step-up present", stepUpState, approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Approve, StepUpMethod: approval.StepUpTOTP}, now, nil},
		{"reject without step-up", stepUpState, approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Reject}, now, nil},
		{"no user", pending, approve(approver("", "finance")), now, approval.ErrInvalidVote},
		{"bad decision", pending, approval.Vote{Approver: approver("bob", "finance"), Decision: "maybe"}, now, approval.ErrInvalidVote},
		{"control character", pending, approve(approver("bob\x00", "finance")), now, approval.ErrInvalidVote},
		{"long reason", pending, approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Approve, Reason: strings.Repeat("x", approval.MaxReasonLength+1)}, now, approval.ErrInvalidVote},
		{"invalid UTF-8 reason", pending, approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Approve, Reason: "\xff"}, now, approval.ErrInvalidVote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.st.Check(tt.v, tt.now)
			if tt.want == nil {
				assert.NoError(t, err, "Check(%s)", tt.name)
				return
			}
			assert.ErrorIs(t, err, tt.want, "Check(%s) = %v, want %v", tt.name, err, tt.want)
			assert.NotContains(t, err.Error(), "\xff")
			assert.NotContains(t, err.Error(), "looks right", "errors do not echo the vote")
		})
	}
}

func TestCheckNotPending(t *testing.T) {
	for _, final := range []receipt.Status{receipt.StatusApproved, receipt.StatusRejected, receipt.StatusExpired, receipt.StatusCancelled} {
		t.Run(string(final), func(t *testing.T) {
			c := newChain(t, requirement())
			c.add(final, nil)
			st := c.derive()
			err := st.Check(approval.Vote{Approver: approver("bob", "finance"), Decision: approval.Approve}, t0)
			assert.ErrorIs(t, err, approval.ErrNotPending, "Check() on a %s action", final)
			if final == receipt.StatusExpired {
				assert.ErrorIs(t, err, approval.ErrExpired, "Check() on an expired action")
			}
			assert.ErrorIs(t, st.CheckCancel(approver("alice"), t0), approval.ErrNotPending, "CheckCancel() on a %s action", final)
		})
	}
	// Votes that decided the action, before approved is recorded.
	c := newChain(t, requirement())
	c.vote("bob", approval.Approve, "finance")
	c.vote("carol", approval.Approve)
	err := c.derive().Check(approval.Vote{Approver: approver("dave", "finance"), Decision: approval.Approve}, t0)
	assert.ErrorIs(t, err, approval.ErrNotPending, "Check() after the quorum")
}

func TestOutcome(t *testing.T) {
	tests := []struct {
		name   string
		quorum int
		votes  []struct {
			user string
			d    approval.Decision
		}
		want      receipt.Status
		wantVotes []int // positions of the counted votes
	}{
		{"no votes", 1, nil, "", nil},
		{"one of two", 2, []struct {
			user string
			d    approval.Decision
		}{{"bob", approval.Approve}}, "", nil},
		{"two of two", 2, []struct {
			user string
			d    approval.Decision
		}{{"bob", approval.Approve}, {"carol", approval.Approve}}, receipt.StatusApproved, []int{0, 1}},
		{"same user twice counts once", 2, []struct {
			user string
			d    approval.Decision
		}{{"bob", approval.Approve}, {"bob", approval.Approve}}, "", nil},
		{"reject wins", 1, []struct {
			user string
			d    approval.Decision
		}{{"bob", approval.Reject}}, receipt.StatusRejected, []int{0}},
		{"reject after an approval", 2, []struct {
			user string
			d    approval.Decision
		}{{"bob", approval.Approve}, {"carol", approval.Reject}}, receipt.StatusRejected, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := requirement()
			req.Quorum = tt.quorum
			c := newChain(t, req)
			var ids []string
			for _, v := range tt.votes {
				ids = append(ids, c.vote(v.user, v.d, "finance"))
			}
			st := c.derive()
			got, votes := st.Outcome()
			assert.Equal(t, tt.want, got, "Outcome()")
			var want []string
			for _, p := range tt.wantVotes {
				want = append(want, ids[p])
			}
			assert.Equal(t, want, votes, "Outcome() votes")
			assert.Equal(t, tt.want == receipt.StatusApproved, st.QuorumReached(), "QuorumReached()")
		})
	}
}

func TestCheckCancel(t *testing.T) {
	st := newChain(t, requirement()).derive()
	tests := []struct {
		name string
		by   approval.Approver
		now  time.Time
		want error
	}{
		{"requester", approver("alice"), t0, nil},
		{"admin", approver("root", approval.AdminRole), t0, nil},
		{"approver", approver("bob", "finance"), t0, approval.ErrNotRequester},
		{"requester of another tenant", approval.Approver{UserID: "alice", TenantIDs: []string{"globex"}}, t0, approval.ErrWrongTenant},
		{"admin of another tenant", approval.Approver{UserID: "root", Roles: []string{approval.AdminRole}, TenantIDs: []string{"globex"}}, t0, approval.ErrWrongTenant},
		{"after expiry", approver("alice"), t0.Add(time.Hour), approval.ErrExpired},
		{"no user", approver(""), t0, approval.ErrInvalidVote},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := st.CheckCancel(tt.by, tt.now)
			if tt.want == nil {
				assert.NoError(t, err, "CheckCancel(%s)", tt.name)
				return
			}
			assert.ErrorIs(t, err, tt.want, "CheckCancel(%s) = %v, want %v", tt.name, err, tt.want)
		})
	}
	// An action on no user's behalf can be cancelled only by an admin.
	c := &chain{t: t, signer: testSigner(t)}
	c.add(receipt.StatusPendingApproval, func(r *receipt.Receipt) { r.Principal = receipt.Principal{}; r.Approval = requirement().Receipt() })
	nobody := c.derive()
	assert.ErrorIs(t, nobody.CheckCancel(approver(""), t0), approval.ErrInvalidVote)
	assert.ErrorIs(t, nobody.CheckCancel(approver("bob"), t0), approval.ErrNotRequester)
	assert.NoError(t, nobody.CheckCancel(approver("root", approval.AdminRole), t0))
	assert.ErrorIs(t, approval.CheckReason("\x01"), approval.ErrInvalidVote)
	assert.NoError(t, approval.CheckReason("wrong order\nsee ticket"))
}

func TestRequest(t *testing.T) {
	st := newChain(t, requirement()).derive()
	got := st.Request()
	assert.Equal(t, approval.Request{
		ActionID: "act-1", TenantID: "acme", AgentID: "support-bot", RequesterUserID: "alice",
		Resource:    receipt.Resource{ToolID: "payments", Operation: "refund", Target: "order/7"},
		Requirement: requirement(), Reasons: []string{"refunds over 100 need approval"},
	}, got)
	var called approval.Request
	n := approval.NotifierFunc(func(_ context.Context, r approval.Request) error { called = r; return errors.New("webhook down") })
	assert.EqualError(t, n.Notify(context.Background(), got), "webhook down")
	assert.Equal(t, got, called)
}

// FuzzDerive builds chains of receipts from fuzzed transitions and votes:
// Derive and the checks must never panic, and their results must agree.
func FuzzDerive(f *testing.F) {
	f.Add([]byte{1, 1, 2}, uint8(2), "bob")
	f.Add([]byte{1, 1, 1, 3, 4, 5}, uint8(2), "carol")
	f.Add([]byte{0, 6, 1}, uint8(1), "alice")
	f.Add([]byte{7}, uint8(0), "")
	f.Add([]byte{1, 9, 4, 5, 8}, uint8(3), "x\xff")
	statuses := []receipt.Status{receipt.StatusVote, receipt.StatusVote, receipt.StatusApproved, receipt.StatusRejected,
		receipt.StatusExecuting, receipt.StatusExecuted, receipt.StatusExpired, receipt.StatusCancelled, receipt.StatusFailed,
		receipt.StatusAllowed}
	users := []string{"bob", "carol", "dave", "alice", "support-bot"}
	signer := testSigner(f)
	f.Fuzz(func(t *testing.T, steps []byte, quorum uint8, voter string) {
		if len(steps) > 20 {
			steps = steps[:20]
		}
		req := requirement()
		req.Quorum = int(quorum%4) + 1
		c := newChain(t, req)
		c.signer = signer
		for i, b := range steps {
			status := statuses[int(b)%len(statuses)]
			if status == receipt.StatusVote {
				d := approval.Approve
				if b&0x80 != 0 {
					d = approval.Reject
				}
				c.vote(users[(int(b)+i)%len(users)], d, "finance")
				continue
			}
			c.add(status, nil)
		}
		st, err := approval.Derive(c.entries)
		if err != nil {
			if !errors.Is(err, approval.ErrInvalidHistory) {
				t.Fatalf("Derive() = %v, want nil or ErrInvalidHistory", err)
			}
			return
		}
		status, votes := st.Outcome()
		if status == receipt.StatusApproved && len(votes) < st.Requirement.Quorum {
			t.Fatalf("Outcome() = approved with %d votes, quorum %d", len(votes), st.Requirement.Quorum)
		}
		err = st.Check(approval.Vote{Approver: approver(voter, "finance"), Decision: approval.Approve}, t0)
		if err == nil && !st.Pending() {
			t.Fatalf("Check() accepted a vote on a %s action", st.Status)
		}
		_ = st.CheckCancel(approver(voter), t0)
	})
}
