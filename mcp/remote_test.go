package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/mcp"
	"github.com/oarsdev/oars/receipt"
)

// Tokens of the remote tests' server. alice's token is named after the
// user the proxy acts for, so that it may cancel her actions.
const (
	aliceToken   = "oars_alice_PLANTED_secret_aaaaaaaaaaaaaaaaaaaaaaaa"
	agentToken   = "oars_agent_PLANTED_secret_bbbbbbbbbbbbbbbbbbbbbbbb"
	auditorToken = "oars_auditor_PLANTED_secret_cccccccccccccccccccccc"
)

// remoteEnv is an oarsd API (httpapi over a Guard and a ledger) on
// loopback, and the Remote deciding at it.
type remoteEnv struct {
	guardEnv
	url    string
	remote *mcp.Remote
}

func newRemoteEnv(t *testing.T, executors map[string]oars.ExecFunc) *remoteEnv {
	t.Helper()
	e := &remoteEnv{guardEnv: newGuardEnv(t, proxyPolicy)}
	auth, err := identity.NewTokenSet([]identity.Token{
		{Name: "alice", Hash: identity.HashToken(aliceToken), Roles: []identity.Role{identity.RoleOperator}, Tenants: []string{"acme"}},
		{Name: "coder-token", Hash: identity.HashToken(agentToken), Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{"acme"}, AgentID: "coder"},
		{Name: "auditor", Hash: identity.HashToken(auditorToken), Roles: []identity.Role{identity.RoleAuditor}, Tenants: []string{"acme"}},
	})
	require.NoError(t, err)
	h, err := httpapi.New(httpapi.Config{Guard: e.guard, Keys: e.keys, Auth: auth, Executors: executors})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e.url = srv.URL
	e.remote, err = mcp.NewRemote(srv.URL, aliceToken, srv.Client(), mcp.WithPollInterval(5*time.Millisecond))
	require.NoError(t, err)
	return e
}

// action is a call of web's pay tool by the test caller.
func action(amount int) *oars.Action {
	in, _ := json.Marshal(map[string]any{"amount": amount})
	return &oars.Action{
		TenantID: caller.TenantID, AgentID: caller.AgentID,
		Principal: oars.Principal{UserID: caller.UserID},
		Resource:  oars.Resource{ToolID: "web", Operation: "pay"},
		Input:     in,
	}
}

// checkOutcome checks that out's receipts verify and are the server's
// ledger leaves at their indexes.
func (e *remoteEnv) checkOutcome(t *testing.T, out *oars.Outcome) {
	t.Helper()
	v, err := receipt.NewVerifier(e.keys)
	require.NoError(t, err)
	for _, en := range out.Receipts {
		r, err := v.Verify(en.Bytes)
		require.NoError(t, err)
		assert.Equal(t, r.ReceiptID, en.Receipt.ReceiptID)
		assert.Equal(t, r.Status, en.Receipt.Status)
		leaves, err := e.store.ReadLeaves(context.Background(), en.Index, 1)
		require.NoError(t, err)
		assert.Equal(t, leaves[0], en.Bytes, "receipt %s is the leaf at index %d", r.ReceiptID, en.Index)
	}
}

func TestRemoteDecideAndExecute(t *testing.T) {
	e := newRemoteEnv(t, nil)
	ctx := context.Background()

	out, err := e.remote.Decide(ctx, action(5))
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusAllowed, out.Status)
	require.Len(t, out.Receipts, 1)
	e.checkOutcome(t, out)
	assert.Equal(t, []string{"small payments"}, out.Receipts[0].Receipt.Reasons)

	// Another call than the decided one: refused before exec.
	ran := 0
	exec := func(context.Context, *oars.Action) (json.RawMessage, error) {
		ran++
		return json.RawMessage(`{"paid":true}`), nil
	}
	_, err = e.remote.Execute(ctx, out.ActionID, action(6), exec)
	require.ErrorIs(t, err, oars.ErrApprovalMismatch)
	assert.Equal(t, 0, ran)

	a := action(5)
	res, err := e.remote.Execute(ctx, out.ActionID, a, exec)
	require.NoError(t, err)
	assert.Equal(t, 1, ran)
	assert.Equal(t, out.ActionID, a.ID, "the action's id is set")
	assert.Equal(t, receipt.StatusExecuted, res.Status)
	assert.JSONEq(t, `{"paid":true}`, string(res.Output))
	require.Len(t, res.Receipts, 2)
	e.checkOutcome(t, res)
	digest, err := receipt.DigestJSON(json.RawMessage(`{"paid":true}`))
	require.NoError(t, err)
	assert.Equal(t, digest, res.Receipts[1].Receipt.OutputDigest)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, e.statuses(t, out.ActionID))

	// Used once.
	_, err = e.remote.Execute(ctx, out.ActionID, action(5), exec)
	require.ErrorIs(t, err, oars.ErrAlreadyClaimed)
	assert.Equal(t, 1, ran)

	// A failed execution records its class, never its text.
	out, err = e.remote.Decide(ctx, action(3))
	require.NoError(t, err)
	res, err = e.remote.Execute(ctx, out.ActionID, action(3), func(context.Context, *oars.Action) (json.RawMessage, error) {
		return nil, &connector.Error{Class: "tool_error", Err: errors.New("secret detail")}
	})
	require.Error(t, err)
	assert.Equal(t, receipt.StatusFailed, res.Status)
	assert.Equal(t, "tool_error", res.Receipts[1].Receipt.ErrorClass)

	// Denied: the decision comes back, and Execute refuses it.
	denied := action(5)
	denied.Resource.Operation = "delete_repo"
	out, err = e.remote.Decide(ctx, denied)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusDenied, out.Status)
	e.checkOutcome(t, out)
	_, err = e.remote.Execute(ctx, out.ActionID, denied, exec)
	require.ErrorIs(t, err, oars.ErrNotApproved)
	assert.Equal(t, 1, ran)

	// Malformed actions are ErrInvalidAction, as with a Guard.
	bad := action(5)
	bad.TenantID = ""
	_, err = e.remote.Decide(ctx, bad)
	require.ErrorIs(t, err, oars.ErrInvalidAction)
	e.verify(t)
}

func TestRemoteApproval(t *testing.T) {
	e := newRemoteEnv(t, nil)
	ctx := context.Background()
	finance := approval.Approver{UserID: "fin", Roles: []string{"finance"}, TenantIDs: []string{"acme"}}

	out, err := e.remote.Decide(ctx, action(500))
	require.NoError(t, err)
	require.Equal(t, receipt.StatusPendingApproval, out.Status)
	id := out.ActionID

	// Pending: Execute refuses; Wait ends with ctx.
	_, err = e.remote.Execute(ctx, id, action(500), func(context.Context, *oars.Action) (json.RawMessage, error) {
		t.Error("exec of a pending action")
		return nil, nil
	})
	require.ErrorIs(t, err, oars.ErrNotApproved)
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, err = e.remote.Wait(wctx, id)
	cancel()
	require.ErrorIs(t, err, oars.ErrPendingApproval)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	// The vote wakes a waiting Wait.
	done := make(chan *oars.Outcome, 1)
	go func() {
		w, err := e.remote.Wait(ctx, id)
		assert.NoError(t, err)
		done <- w
	}()
	_, err = e.guard.Vote(ctx, id, approval.Vote{Approver: finance, Decision: approval.Approve, Reason: "ok"})
	require.NoError(t, err)
	w := <-done
	assert.Equal(t, receipt.StatusApproved, w.Status)
	e.checkOutcome(t, w)

	res, err := e.remote.Execute(ctx, id, action(500), func(context.Context, *oars.Action) (json.RawMessage, error) {
		return json.RawMessage(`"paid"`), nil
	})
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusExecuted, res.Status)
	assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted}, e.statuses(t, id))

	// Cancel: by the requester's token.
	out, err = e.remote.Decide(ctx, action(700))
	require.NoError(t, err)
	c, err := e.remote.Cancel(ctx, out.ActionID, approval.Approver{}, "changed my mind")
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusCancelled, c.Status)
	require.Len(t, c.Receipts, 1)
	e.checkOutcome(t, c)
	_, err = e.remote.Cancel(ctx, out.ActionID, approval.Approver{}, "again")
	require.ErrorIs(t, err, approval.ErrNotPending)
	w, err = e.remote.Wait(ctx, out.ActionID)
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusCancelled, w.Status)

	_, err = e.remote.Wait(ctx, "no-such-action")
	require.ErrorIs(t, err, oars.ErrNotFound)
	e.verify(t)
}

func TestRemoteRefusals(t *testing.T) {
	e := newRemoteEnv(t, map[string]oars.ExecFunc{
		"files": func(context.Context, *oars.Action) (json.RawMessage, error) { return json.RawMessage(`1`), nil },
	})
	ctx := context.Background()

	// A token bound to its agent, for another agent: the server records
	// a refusal. The token may not read another agent's receipt, so
	// Decide fails with the refusal.
	agent, err := mcp.NewRemote(e.url, agentToken, nil)
	require.NoError(t, err)
	other := action(5)
	other.AgentID = "someone-else"
	_, err = agent.Decide(ctx, other)
	var re *mcp.RemoteError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusForbidden, re.StatusCode)
	assert.NotEmpty(t, re.ReceiptID)
	assert.Contains(t, re.Message, "agent_id")
	// For its own agent, the refusal is readable: a scope refusal would
	// come back as a denial with its receipt; here the call is allowed.
	out, err := agent.Decide(ctx, action(5))
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusAllowed, out.Status)

	// A token that may not submit: an error naming the status, never the
	// token.
	auditor, err := mcp.NewRemote(e.url, auditorToken, nil)
	require.NoError(t, err)
	_, err = auditor.Decide(ctx, action(5))
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusForbidden, re.StatusCode)
	assert.NotContains(t, err.Error(), auditorToken)
	bad, err := mcp.NewRemote(e.url, "oars_wrong_PLANTED_secret", nil)
	require.NoError(t, err)
	_, err = bad.Decide(ctx, action(5))
	require.ErrorAs(t, err, &re)
	assert.Equal(t, http.StatusUnauthorized, re.StatusCode)
	assert.NotContains(t, err.Error(), "PLANTED")
	assert.NotContains(t, e.remote.String(), aliceToken)

	// A tool the server executes itself must not run here too.
	read := action(5)
	read.Resource = oars.Resource{ToolID: "files", Operation: "read_file", Target: "/srv/a"}
	_, err = e.remote.Decide(ctx, read)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "executes the actions of tool")

	// Refuse records nothing.
	size, err := e.store.Size(ctx)
	require.NoError(t, err)
	out, err = e.remote.Refuse(ctx, action(5), "scope")
	require.NoError(t, err)
	assert.Equal(t, receipt.StatusDenied, out.Status)
	assert.Empty(t, out.Receipts)
	after, err := e.store.Size(ctx)
	require.NoError(t, err)
	assert.Equal(t, size, after)

	// The server names actions.
	named := action(5)
	named.ID = "mine"
	_, err = e.remote.Decide(ctx, named)
	require.ErrorIs(t, err, oars.ErrInvalidAction)
}

// TestRemoteDecideRetries: a request lost in transit is sent again with
// the same Idempotency-Key, and the action is decided once.
func TestRemoteDecideRetries(t *testing.T) {
	e := newRemoteEnv(t, nil)
	var keys []string
	var mu sync.Mutex
	var failed atomic.Bool
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		resp, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && !failed.Swap(true) {
			resp.Body.Close()
			return nil, errors.New("connection reset")
		}
		return resp, err
	})}
	r, err := mcp.NewRemote(e.url, aliceToken, client)
	require.NoError(t, err)
	out, err := r.Decide(context.Background(), action(5))
	require.NoError(t, err)
	assert.True(t, out.Replayed, "the second request replays the first decision")
	require.Len(t, keys, 2)
	assert.Equal(t, keys[0], keys[1])
	assert.Len(t, keys[0], 36, "a UUID")
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed}, e.statuses(t, out.ActionID))

	out2, err := r.Decide(context.Background(), action(5))
	require.NoError(t, err)
	assert.NotEqual(t, out.ActionID, out2.ActionID, "a fresh key per call")
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewRemote(t *testing.T) {
	tests := []struct {
		url, token, wantErr string
	}{
		{"https://oars.example.com", "t", ""},
		{"https://oars.example.com/base/", "t", ""},
		{"http://127.0.0.1:8080", "t", ""},
		{"http://[::1]:8080", "t", ""},
		{"http://localhost:8080", "t", ""},
		{"http://oars.example.com", "t", "plain http is allowed only for loopback hosts"},
		{"ftp://oars.example.com", "t", "unsupported scheme"},
		{"https://user:pw@oars.example.com", "t", "user information"},
		{"https://oars.example.com?x=1", "t", "query or fragment"},
		{"https://", "t", "no host"},
		{"https://oars.example.com", "", "token"},
		{"https://oars.example.com", "a b", "token"},
	}
	for _, tt := range tests {
		r, err := mcp.NewRemote(tt.url, tt.token, nil)
		if tt.wantErr == "" {
			assert.NoError(t, err, "NewRemote(%q)", tt.url)
			assert.NotNil(t, r)
			continue
		}
		require.Error(t, err, "NewRemote(%q)", tt.url)
		assert.Contains(t, err.Error(), tt.wantErr, "NewRemote(%q)", tt.url)
		assert.NotContains(t, err.Error(), "pw")
	}
	_, err := mcp.NewRemote("https://oars.example.com", "t", nil, mcp.WithPollInterval(0))
	require.Error(t, err)
}

// remoteProxy is a proxy deciding at the remote env, over the same
// upstreams as newEnv.
func remoteProxy(t *testing.T, e *remoteEnv, wait time.Duration) (*mcp.Proxy, *upstream) {
	t.Helper()
	up := newUpstream(t)
	px, err := mcp.New(context.Background(), testConfig(t, up), mcp.Options{
		Decider:      e.remote,
		Caller:       func(context.Context, *sdk.RequestExtra) (*mcp.Caller, error) { return caller, nil },
		StateKey:     []byte(strings.Repeat("k", 32)),
		ApprovalURL:  func(id string) string { return e.url + "/v1/approvals/" + id },
		ApprovalWait: wait,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = px.Close() })
	return px, up
}

func TestRemoteProxy(t *testing.T) {
	e := newRemoteEnv(t, nil)
	px, up := remoteProxy(t, e, time.Second)
	cs := connectTo(t, px, "", nil)

	assert.ElementsMatch(t, []string{"echo", "pay", "slow", "progress", "read_file", "delete_repo"}, toolNames(t, cs),
		"a remote decider shows no policies: every tool is listed")

	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hi"}})
	require.NoError(t, err)
	assert.False(t, res.IsError, text(res))
	assert.Equal(t, "echo: hi", text(res))
	res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/srv/a.txt"}})
	require.NoError(t, err)
	assert.Equal(t, "contents of /srv/a.txt", text(res))
	res, err = cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "delete_repo", Arguments: map[string]any{}})
	require.NoError(t, err)
	assert.True(t, res.IsError)
	assert.Contains(t, text(res), "nobody deletes repositories through agents")
	assert.Contains(t, text(res), "(receipt ")
	assert.Equal(t, []string{"echo"}, up.got())

	ids := actionsOf(t, e.store)
	require.Len(t, ids["echo"], 1)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, e.statuses(t, ids["echo"][0]))
	require.Len(t, ids["read_file"], 1)
	assert.Equal(t, []receipt.Status{receipt.StatusAllowed, receipt.StatusExecuting, receipt.StatusExecuted}, e.statuses(t, ids["read_file"][0]))
	require.Len(t, ids["delete_repo"], 1)
	assert.Equal(t, []receipt.Status{receipt.StatusDenied}, e.statuses(t, ids["delete_repo"][0]))
	e.verify(t)
}

// TestRemoteProxyApproval: approve, reject and no decision in time, with
// the decisions and receipts at the server.
func TestRemoteProxyApproval(t *testing.T) {
	finance := approval.Approver{UserID: "fin", Roles: []string{"finance"}, TenantIDs: []string{"acme"}}
	for _, tt := range []struct {
		name     string
		decision approval.Decision
		wantErr  bool
		want     []receipt.Status
	}{
		{"approve", approval.Approve, false, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusApproved, receipt.StatusExecuting, receipt.StatusExecuted}},
		{"reject", approval.Reject, true, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusRejected}},
		{"timeout", "", true, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusCancelled}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newRemoteEnv(t, nil)
			px, up := remoteProxy(t, e, 300*time.Millisecond)
			cs := connectTo(t, px, "", &sdk.ClientOptions{
				ElicitationHandler: func(ctx context.Context, req *sdk.ElicitRequest) (*sdk.ElicitResult, error) {
					assert.Equal(t, e.url+"/v1/approvals/"+req.Params.ElicitationID, req.Params.URL)
					if tt.decision != "" {
						_, err := e.guard.Vote(ctx, req.Params.ElicitationID, approval.Vote{Approver: finance, Decision: tt.decision, Reason: "checked"})
						require.NoError(t, err)
					}
					return &sdk.ElicitResult{Action: "accept"}, nil
				},
				Capabilities: &sdk.ClientCapabilities{Elicitation: &sdk.ElicitationCapabilities{URL: &sdk.URLElicitationCapabilities{}}},
			})
			res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "pay", Arguments: map[string]any{"amount": 500}})
			require.NoError(t, err)
			assert.Equal(t, tt.wantErr, res.IsError, text(res))
			ids := actionsOf(t, e.store)["pay"]
			require.Len(t, ids, 1)
			assert.Equal(t, tt.want, e.statuses(t, ids[0]))
			if tt.wantErr {
				assert.Empty(t, up.got())
			} else {
				assert.Equal(t, []string{"pay 500"}, up.got())
			}
			e.verify(t)
		})
	}
}
