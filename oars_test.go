package oars_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const testPolicy = `
id: payments
version: "7"
default: deny
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && action.operation == "refund" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
  - id: big-refunds
    when: action.tool_id == "payments" && action.operation == "refund" && input.amount > 100
    effect: require_approval
    reason: refunds over 100 need approval
    approval:
      roles: [finance]
      quorum: 2
      expiry: 1h
  - id: blocked-target
    when: action.target == "order/blocked"
    effect: deny
    reason: this order is frozen
  - id: needs-field
    when: action.tool_id == "strict" && input.required_field == "x"
    effect: allow
    reason: strict tool
`

type fixture struct {
	guard  *oars.Guard
	ledger *ledger.Ledger
	store  ledger.Store
	keys   *receipt.KeySet
}

func newFixture(t testing.TB, store ledger.Store, policies []string, opts ...oars.Option) *fixture {
	t.Helper()
	ctx := context.Background()
	var docs []*policy.Policy
	for i, src := range policies {
		p, err := policy.Parse(fmt.Sprintf("policy%d.yaml", i), []byte(src))
		require.NoError(t, err)
		docs = append(docs, p)
	}
	set, err := policy.NewSet(docs...)
	require.NoError(t, err)
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	signer, err := receipt.NewEd25519Signer("test-key", ed25519.NewKeyFromSeed(seed))
	require.NoError(t, err)
	keys, err := receipt.NewKeySet(signer)
	require.NoError(t, err)
	if store == nil {
		store = ledger.NewMemStore()
	}
	l, err := ledger.New(ctx, store)
	require.NoError(t, err)
	g, err := oars.New(set, keys, l, opts...)
	require.NoError(t, err)
	return &fixture{guard: g, ledger: l, store: store, keys: keys}
}

// holdCanceller ends the context of a Do call as soon as its action is held
// for approval, so that Do returns ErrPendingApproval without waiting. It
// is the Guard's notifier; contexts are keyed by the action's target,
// which must be unique to the Do call.
type holdCanceller struct {
	mu      sync.Mutex
	cancels map[string]context.CancelFunc
}

func newHoldCanceller() *holdCanceller {
	return &holdCanceller{cancels: map[string]context.CancelFunc{}}
}

// ctx returns the context for the Do call on target.
func (h *holdCanceller) ctx(t testing.TB, target string) context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancels[target] = cancel
	return ctx
}

func (h *holdCanceller) Notify(_ context.Context, r approval.Request) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if cancel := h.cancels[r.Resource.Target]; cancel != nil {
		cancel()
	}
	return nil
}

func refund(amount int, target string) *oars.Action {
	return &oars.Action{
		TenantID:  "acme",
		AgentID:   "support-bot",
		Principal: oars.Principal{UserID: "alice", Roles: []string{"support"}},
		Resource:  oars.Resource{ToolID: "payments", Operation: "refund", Target: target},
		Input:     json.RawMessage(fmt.Sprintf(`{"amount": %d, "currency": "EUR"}`, amount)),
	}
}

// verifyLedger checks the whole ledger: tree, signatures and chains.
func verifyLedger(t *testing.T, f *fixture) *ledger.Report {
	t.Helper()
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	rep, err := ledger.Verify(context.Background(), f.store, receipt.NewLogChecker(v))
	require.NoError(t, err)
	return rep
}

func TestDoAllowedExecutesAndRecords(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	calls := 0
	out, err := f.guard.Do(context.Background(), refund(25, "order/1"), func(ctx context.Context, a *oars.Action) (json.RawMessage, error) {
		calls++
		return json.RawMessage(`{"refund_id":"re_1", "amount": 25}`), nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, calls)
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	require.Len(t, out.Receipts, 2)

	first, second := out.Receipts[0].Receipt, out.Receipts[1].Receipt
	assert.Equal(t, receipt.StatusAllowed, first.Status)
	assert.Equal(t, int64(1), first.Seq)
	assert.Empty(t, first.PrevReceiptDigest)
	assert.Equal(t, []string{"payments/small-refunds"}, first.Policy.MatchedRules)
	assert.Equal(t, []string{"small refunds are allowed"}, first.Reasons)
	assert.Equal(t, "payments", first.Policy.ID)
	assert.Equal(t, "7", first.Policy.Version)
	assert.Equal(t, f.guard.Policies().Digest(), first.Policy.Digest)
	assert.Equal(t, receipt.ModeEnforce, first.Mode)

	wantInput, err := receipt.DigestJSON([]byte(`{"currency":"EUR","amount":25}`))
	require.NoError(t, err)
	assert.Equal(t, wantInput, first.InputDigest, "input digest is over the canonical form")

	assert.Equal(t, receipt.StatusExecuted, second.Status)
	assert.Equal(t, int64(2), second.Seq)
	assert.Equal(t, receipt.Digest(out.Receipts[0].Bytes), second.PrevReceiptDigest)
	wantOutput, err := receipt.DigestJSON([]byte(`{"amount":25,"refund_id":"re_1"}`))
	require.NoError(t, err)
	assert.Equal(t, wantOutput, second.OutputDigest)
	assert.Equal(t, first.ActionID, second.ActionID)
	assert.Equal(t, out.ActionID, first.ActionID)
	assert.Equal(t, int64(0), out.Receipts[0].Index)
	assert.Equal(t, int64(1), out.Receipts[1].Index)

	// The receipts verify as a chain and the ledger holds exactly their bytes.
	v, err := receipt.NewVerifier(f.keys)
	require.NoError(t, err)
	_, err = v.VerifyChain([][]byte{out.Receipts[0].Bytes, out.Receipts[1].Bytes})
	require.NoError(t, err)
	for _, e := range out.Receipts {
		leaf, err := f.ledger.Leaf(context.Background(), e.Index)
		require.NoError(t, err)
		assert.Equal(t, e.Bytes, leaf)
	}
	rep := verifyLedger(t, f)
	assert.Equal(t, int64(2), rep.Size)
}

// TestDefaultIDsAreIncreasingUUIDv7 checks the default action and receipt
// ids: version 7, RFC 9562 variant, current time, unique and increasing in
// the order they were made.
func TestDefaultIDsAreIncreasingUUIDv7(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	ctx := context.Background()
	before := time.Now().Add(-time.Millisecond)
	var ids []string
	for range 50 {
		out, err := f.guard.Decide(ctx, refund(10, "order/1"))
		require.NoError(t, err)
		ids = append(ids, out.ActionID, out.Receipts[0].Receipt.ReceiptID)
	}
	after := time.Now().Add(time.Millisecond)
	for i, id := range ids {
		u, err := uuid.Parse(id)
		require.NoError(t, err, id)
		assert.Equal(t, id, u.String(), "canonical form")
		assert.Equal(t, uuid.Version(7), u.Version(), id)
		assert.Equal(t, uuid.RFC4122, u.Variant(), id)
		ts := time.Unix(u.Time().UnixTime())
		assert.False(t, ts.Before(before.Truncate(time.Millisecond)) || ts.After(after), "%s: time %v not in [%v, %v]", id, ts, before, after)
		if i > 0 {
			assert.Less(t, ids[i-1], id, "ids must increase")
		}
	}
}

func TestDecideOutcomes(t *testing.T) {
	hc := newHoldCanceller()
	f := newFixture(t, nil, []string{testPolicy}, oars.WithNotifier(hc))
	tests := []struct {
		name    string
		action  *oars.Action
		status  receipt.Status
		matched []string
		doErr   error
	}{
		{"allowed", refund(10, "order/1"), receipt.StatusAllowed, []string{"payments/small-refunds"}, nil},
		{"approval", refund(500, "order/2"), receipt.StatusPendingApproval, []string{"payments/big-refunds"}, oars.ErrPendingApproval},
		{"deny overrides allow", refund(10, "order/blocked"), receipt.StatusDenied, []string{"payments/small-refunds", "payments/blocked-target"}, oars.ErrDenied},
		{"default deny", &oars.Action{TenantID: "acme", AgentID: "a", Resource: oars.Resource{ToolID: "shell", Operation: "exec"}}, receipt.StatusDenied, nil, oars.ErrDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.guard.Decide(context.Background(), tt.action)
			require.NoError(t, err)
			assert.Equal(t, tt.status, out.Status)
			require.Len(t, out.Receipts, 1)
			assert.Equal(t, tt.matched, out.Receipts[0].Receipt.Policy.MatchedRules)
			assert.NotEmpty(t, out.Receipts[0].Receipt.Reasons)

			// Do behaves the same and executes only the allowed action;
			// the one held for approval returns when its ctx ends.
			a := *tt.action
			a.ID = ""
			if tt.status == receipt.StatusPendingApproval {
				// Not the target of the Decide above, whose notification
				// must not end this call's ctx.
				a.Resource.Target += "-do"
			}
			ran := false
			dout, err := f.guard.Do(hc.ctx(t, a.Resource.Target), &a, func(context.Context, *oars.Action) (json.RawMessage, error) {
				ran = true
				return nil, nil
			})
			if tt.doErr != nil {
				require.ErrorIs(t, err, tt.doErr)
				assert.False(t, ran, "exec must not run")
				assert.Equal(t, tt.status, dout.Status)
			} else {
				require.NoError(t, err)
				assert.True(t, ran)
				assert.Equal(t, receipt.StatusExecuted, dout.Status)
			}
		})
	}
	verifyLedger(t, f)
}

func TestPendingApprovalCarriesRequirement(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	out, err := f.guard.Decide(context.Background(), refund(1000, "order/9"))
	require.NoError(t, err)
	require.NotNil(t, out.Decision)
	require.NotNil(t, out.Decision.Approval)
	assert.Equal(t, 2, out.Decision.Approval.Quorum)
	assert.Equal(t, []string{"finance"}, out.Decision.Approval.Roles)
	assert.Equal(t, time.Hour, out.Decision.Approval.Expiry)
}

// failingSigner is a Signer whose signing always fails, like an unreachable KMS.
type failingSigner struct{ pub ed25519.PublicKey }

func (s failingSigner) KeyID() string             { return "kms-key" }
func (s failingSigner) Public() ed25519.PublicKey { return s.pub }
func (failingSigner) Sign(context.Context, []byte) ([]byte, error) {
	return nil, errors.New("kms unreachable")
}

// failingStore fails every append.
type failingStore struct{ ledger.Store }

func (failingStore) Append(context.Context, int64, [][]byte, []tlog.Hash) error {
	return errors.New("disk full")
}

func TestFailClosed(t *testing.T) {
	execCalled := func(t *testing.T) (oars.ExecFunc, *atomic.Int32) {
		var n atomic.Int32
		return func(context.Context, *oars.Action) (json.RawMessage, error) {
			n.Add(1)
			return json.RawMessage(`{}`), nil
		}, &n
	}

	t.Run("identity", func(t *testing.T) {
		f := newFixture(t, nil, []string{testPolicy}, oars.WithIdentityCheck(func(ctx context.Context, a *oars.Action) error {
			return errors.New("token does not match agent")
		}))
		exec, n := execCalled(t)
		_, err := f.guard.Do(context.Background(), refund(1, "order/1"), exec)
		require.ErrorIs(t, err, oars.ErrIdentity)
		assert.Zero(t, n.Load())
		size, err := f.ledger.Size(context.Background())
		require.NoError(t, err)
		assert.Zero(t, size)
	})

	t.Run("policy evaluation error", func(t *testing.T) {
		f := newFixture(t, nil, []string{testPolicy})
		exec, n := execCalled(t)
		a := refund(1, "order/1")
		a.Resource.ToolID = "strict" // its rule reads input.required_field, which is absent
		out, err := f.guard.Do(context.Background(), a, exec)
		require.ErrorIs(t, err, oars.ErrPolicy)
		assert.Zero(t, n.Load())
		require.NotNil(t, out)
		require.Len(t, out.Receipts, 1, "the refusal is recorded")
		r := out.Receipts[0].Receipt
		assert.Equal(t, receipt.StatusDenied, r.Status)
		assert.Equal(t, "policy_error", r.ErrorClass)
		verifyLedger(t, f)
	})

	t.Run("signing", func(t *testing.T) {
		f := newFixture(t, nil, []string{testPolicy})
		pub, _, err := ed25519.GenerateKey(nil)
		require.NoError(t, err)
		keys, err := receipt.NewKeySet(failingSigner{pub})
		require.NoError(t, err)
		g, err := oars.New(f.guard.Policies(), keys, f.ledger)
		require.NoError(t, err)
		exec, n := execCalled(t)
		_, err = g.Do(context.Background(), refund(1, "order/1"), exec)
		require.ErrorIs(t, err, oars.ErrSigning)
		assert.NotContains(t, err.Error(), "order/1")
		assert.Zero(t, n.Load())
		size, err := f.ledger.Size(context.Background())
		require.NoError(t, err)
		assert.Zero(t, size)
	})

	t.Run("ledger", func(t *testing.T) {
		f := newFixture(t, failingStore{ledger.NewMemStore()}, []string{testPolicy})
		exec, n := execCalled(t)
		_, err := f.guard.Do(context.Background(), refund(1, "order/1"), exec)
		require.ErrorIs(t, err, oars.ErrLedger)
		assert.Zero(t, n.Load())
	})

	t.Run("cancelled context", func(t *testing.T) {
		f := newFixture(t, nil, []string{testPolicy})
		exec, n := execCalled(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := f.guard.Do(ctx, refund(1, "order/1"), exec)
		require.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, n.Load())
	})
}

func TestInvalidActions(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy}, oars.WithMaxInputBytes(1024))
	tests := []struct {
		name   string
		mutate func(a *oars.Action)
		want   string
	}{
		{"no tenant", func(a *oars.Action) { a.TenantID = "" }, "tenant_id is required"},
		{"no agent", func(a *oars.Action) { a.AgentID = "" }, "agent_id is required"},
		{"no tool", func(a *oars.Action) { a.Resource.ToolID = "" }, "resource.tool_id is required"},
		{"no operation", func(a *oars.Action) { a.Resource.Operation = "" }, "resource.operation is required"},
		{"long tenant", func(a *oars.Action) { a.TenantID = strings.Repeat("t", oars.MaxIDLength+1) }, "tenant_id is longer"},
		{"control char", func(a *oars.Action) { a.AgentID = "bot\n" }, "agent_id contains a control character"},
		{"invalid utf8", func(a *oars.Action) { a.Principal.UserID = "\xff" }, "principal.user_id is not valid UTF-8"},
		{"duplicate key", func(a *oars.Action) { a.Input = json.RawMessage(`{"amount":1,"amount":2}`) }, "input"},
		{"trailing data", func(a *oars.Action) { a.Input = json.RawMessage(`{} {}`) }, "input"},
		{"not json", func(a *oars.Action) { a.Input = json.RawMessage(`{amount:1}`) }, "input"},
		{"huge number", func(a *oars.Action) { a.Input = json.RawMessage(`{"amount":1e400}`) }, "input"},
		{"too deep", func(a *oars.Action) {
			a.Input = json.RawMessage(strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100))
		}, "input"},
		{"too big", func(a *oars.Action) {
			a.Input = json.RawMessage(`{"s":"` + strings.Repeat("x", 2000) + `"}`)
		}, "more than the limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := refund(1, "order/1")
			tt.mutate(a)
			_, err := f.guard.Decide(context.Background(), a)
			require.ErrorIs(t, err, oars.ErrInvalidAction)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
	size, err := f.ledger.Size(context.Background())
	require.NoError(t, err)
	assert.Zero(t, size, "invalid actions record nothing")
}

type classifiedError struct{}

func (classifiedError) Error() string      { return "upstream said: password=hunter2" }
func (classifiedError) ErrorClass() string { return "upstream_5xx" }

func TestExecFailureRecordsClassNotMessage(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy})
	tests := []struct {
		name    string
		err     error
		output  json.RawMessage
		class   string
		wantErr error
	}{
		{"plain error", errors.New("secret=hunter2"), nil, "error", nil},
		{"classified", fmt.Errorf("call: %w", classifiedError{}), nil, "upstream_5xx", classifiedError{}},
		{"timeout", context.DeadlineExceeded, nil, "timeout", context.DeadlineExceeded},
		{"invalid output", nil, json.RawMessage(`{"a":1,"a":2}`), "invalid_output", oars.ErrInvalidOutput},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := f.guard.Do(context.Background(), refund(5, "order/1"), func(context.Context, *oars.Action) (json.RawMessage, error) {
				return tt.output, tt.err
			})
			require.Error(t, err)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
			}
			assert.Equal(t, receipt.StatusFailed, out.Status)
			last := out.Receipts[len(out.Receipts)-1]
			assert.Equal(t, tt.class, last.Receipt.ErrorClass)
			assert.Empty(t, last.Receipt.OutputDigest)
			assert.NotContains(t, string(last.Bytes), "hunter2")
		})
	}
	verifyLedger(t, f)
}

func TestShadowGuardNeverBlocks(t *testing.T) {
	f := newFixture(t, nil, []string{testPolicy}, oars.WithShadowMode())
	ran := 0
	out, err := f.guard.Do(context.Background(), refund(10, "order/blocked"), func(context.Context, *oars.Action) (json.RawMessage, error) {
		ran++
		return json.RawMessage(`{"ok":true}`), nil
	})
	require.NoError(t, err)
	assert.Equal(t, 1, ran, "shadow mode executes even denied actions")
	require.Len(t, out.Receipts, 2)
	assert.Equal(t, receipt.StatusDenied, out.Receipts[0].Receipt.Status, "the would-be decision is recorded")
	assert.Equal(t, receipt.ModeShadow, out.Receipts[0].Receipt.Mode)
	assert.Equal(t, receipt.StatusExecuted, out.Receipts[1].Receipt.Status)
	verifyLedger(t, f)
}

func TestShadowPolicyRecordedBesideEnforced(t *testing.T) {
	shadow := `
id: strict-payments
version: "1"
mode: shadow
default: allow
rules:
  - id: no-refunds-over-5
    when: action.operation == "refund" && input.amount > 5
    effect: deny
    reason: would deny refunds over 5
`
	f := newFixture(t, nil, []string{testPolicy, shadow})
	out, err := f.guard.Decide(context.Background(), refund(10, "order/1"))
	require.NoError(t, err)
	r := out.Receipts[0].Receipt
	assert.Equal(t, receipt.StatusAllowed, r.Status, "the shadow policy does not enforce")
	assert.Equal(t, receipt.ModeEnforce, r.Mode)
	require.Len(t, r.Policy.Shadow, 1)
	assert.Equal(t, "strict-payments", r.Policy.Shadow[0].ID)
	assert.Equal(t, "deny", r.Policy.Shadow[0].Effect)
	assert.Equal(t, []string{"strict-payments/no-refunds-over-5"}, r.Policy.Shadow[0].MatchedRules)
}

func TestConcurrentDo(t *testing.T) {
	hc := newHoldCanceller()
	f := newFixture(t, nil, []string{testPolicy}, oars.WithNotifier(hc))
	const workers, each = 32, 25
	var wg sync.WaitGroup
	var executed atomic.Int32
	errs := make(chan error, workers*each)
	ids := make(chan string, workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				amount := 10
				if i%5 == 0 {
					amount = 1000 // needs approval: one receipt only
				}
				target := fmt.Sprintf("order/%d-%d", w, i)
				out, err := f.guard.Do(hc.ctx(t, target), refund(amount, target),
					func(context.Context, *oars.Action) (json.RawMessage, error) {
						executed.Add(1)
						return json.RawMessage(`{"ok":true}`), nil
					})
				if err != nil && !errors.Is(err, oars.ErrPendingApproval) {
					errs <- err
					continue
				}
				ids <- out.ActionID
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	close(ids)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for id := range ids {
		assert.False(t, seen[id], "duplicate action id %s", id)
		seen[id] = true
	}
	approvals := workers * ((each + 4) / 5)
	allowed := workers*each - approvals
	assert.Equal(t, int32(allowed), executed.Load())
	rep := verifyLedger(t, f)
	assert.Equal(t, int64(2*allowed+approvals), rep.Size, "exactly the expected receipts")
}
