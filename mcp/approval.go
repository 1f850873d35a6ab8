package mcp

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/receipt"
)

// approvalKey is the input request id of the approval elicitation.
const approvalKey = "oars_approval"

// stateTTL bounds how long a requestState may be presented.
const stateTTL = time.Hour

// requestState is what the proxy hands the client with an input_required
// result and checks on the retry: bound to the action, the caller, the
// tool and the input, single-use, and authenticated with StateKey.
type requestState struct {
	ActionID string `json:"a"`
	Caller   string `json:"c"` // callerKey
	Tool     string `json:"t"`
	Input    string `json:"i"` // input digest
	Nonce    string `json:"n"`
	Expires  int64  `json:"e"`
}

func callerKey(c *Caller) string {
	h := sha256.New()
	for _, s := range []string{c.TenantID, c.AgentID, c.UserID} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func (p *Proxy) seal(st requestState) (string, error) {
	body, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, p.opts.StateKey)
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), nil
}

var errBadState = errors.New("the request state is invalid, expired or already used")

func (p *Proxy) open(s string) (*requestState, error) {
	if len(p.opts.StateKey) == 0 {
		return nil, errBadState
	}
	b64, sig64, ok := strings.Cut(s, ".")
	if !ok {
		return nil, errBadState
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64)
	sig, err2 := base64.RawURLEncoding.DecodeString(sig64)
	if err1 != nil || err2 != nil {
		return nil, errBadState
	}
	mac := hmac.New(sha256.New, p.opts.StateKey)
	mac.Write(body)
	if !hmac.Equal(sig, mac.Sum(nil)) {
		return nil, errBadState
	}
	var st requestState
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, errBadState
	}
	if time.Now().Unix() > st.Expires {
		return nil, errBadState
	}
	return &st, nil
}

// usedStates remembers the nonces of request states already presented,
// until they expire: a state is single-use.
type usedStates struct {
	mu   sync.Mutex
	used map[string]int64
}

func (u *usedStates) use(nonce string, expires int64) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	now := time.Now().Unix()
	if u.used == nil {
		u.used = map[string]int64{}
	}
	for n, e := range u.used {
		if e < now {
			delete(u.used, n)
		}
	}
	if _, seen := u.used[nonce]; seen {
		return false
	}
	u.used[nonce] = expires
	return true
}

// askApproval answers a call held for approval with an input_required
// result: a URL elicitation pointing at the approval page and a
// requestState for the retry. Clients on protocol 2026-07-28 retry the
// call themselves; for older clients the SDK elicits and re-runs the
// handler once. Accepting the elicitation only means the user opened
// the link: only an OARS approval approves.
func (p *Proxy) askApproval(caller *Caller, r *route, out *oars.Outcome) (*sdk.CallToolResult, error) {
	first := out.Receipts[0].Receipt
	if len(p.opts.StateKey) == 0 || p.opts.ApprovalURL == nil {
		return deniedBy(out, "requires an approval, which this proxy cannot ask for"), nil
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	state, err := p.seal(requestState{
		ActionID: out.ActionID, Caller: callerKey(caller), Tool: r.name, Input: first.InputDigest,
		Nonce: hex.EncodeToString(nonce), Expires: time.Now().Add(stateTTL).Unix(),
	})
	if err != nil {
		return nil, fmt.Errorf("mcp: approval state: %w", err)
	}
	msg := "This call needs a person's approval"
	if len(first.Reasons) > 0 {
		msg += " (" + strings.Join(first.Reasons, "; ") + ")"
	}
	msg += ". Open the link to review it; the call continues once an approver decides. Action " + out.ActionID + "."
	return &sdk.CallToolResult{
		InputRequests: sdk.InputRequestMap{approvalKey: &sdk.ElicitParams{
			Mode: "url", Message: msg, URL: p.opts.ApprovalURL(out.ActionID), ElicitationID: out.ActionID,
		}},
		RequestState: state,
	}, nil
}

// resume handles the retry of a call held for approval: it checks the
// request state, waits for the decision within ApprovalWait, and then
// runs the call (approved) or denies it; when the wait runs out the
// action is cancelled and the call denied.
func (p *Proxy) resume(ctx context.Context, req *sdk.CallToolRequest, r *route, caller *Caller, a *oars.Action) (*sdk.CallToolResult, error) {
	st, err := p.open(req.Params.RequestState)
	if err == nil {
		digest, derr := receipt.DigestJSON(a.Input)
		switch {
		case derr != nil || digest != st.Input || st.Tool != r.name || st.Caller != callerKey(caller):
			err = errBadState
		case !p.states.use(st.Nonce, st.Expires):
			err = errBadState
		}
	}
	if err != nil {
		p.log.Warn("mcp: approval retry refused", slog.String("tool", r.name), slog.String("reason", err.Error()))
		return denied("OARS refused the retry: " + err.Error()), nil
	}
	a.ID = st.ActionID
	wctx, cancel := context.WithTimeout(ctx, p.opts.ApprovalWait)
	out, err := p.decider.Wait(wctx, st.ActionID)
	cancel()
	switch {
	case errors.Is(err, oars.ErrPendingApproval) && ctx.Err() == nil:
		by := approval.Approver{UserID: "oars-mcp-proxy", Roles: []string{approval.AdminRole}, TenantIDs: []string{a.TenantID}}
		cout, cerr := p.decider.Cancel(context.WithoutCancel(ctx), st.ActionID, by, "no approval within the MCP proxy's wait budget")
		if cerr != nil {
			p.log.Error("mcp: cancelling an unapproved action failed", slog.String("action_id", st.ActionID), slog.Any("error", cerr))
		}
		return deniedBy(cout, "denied this call: no approval in time"), nil
	case err != nil:
		return nil, fmt.Errorf("mcp: waiting for approval: %w", err)
	}
	if out.Status != receipt.StatusApproved {
		return deniedBy(out, "denied this call: it was "+string(out.Status)), nil
	}
	return p.execute(ctx, req, r, a, st.ActionID)
}
