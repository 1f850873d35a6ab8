package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// An agent's refund is held for a finance approver, who approves it over
// the API; the host is told so that it can execute the action.
func ExampleNew_approval() {
	ctx := context.Background()
	pol, err := policy.Parse("refunds.yaml", []byte(`
id: refunds
version: "1"
rules:
  - id: big
    when: action.tool_id == "payments" && input.amount > 100
    effect: require_approval
    reason: big refunds need a finance approver
    approval:
      roles: [finance-approver]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := policy.NewSet(pol)
	if err != nil {
		fmt.Println(err)
		return
	}
	signer, err := receipt.GenerateSigner()
	if err != nil {
		fmt.Println(err)
		return
	}
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		fmt.Println(err)
		return
	}
	l, err := ledger.New(ctx, ledger.NewMemStore())
	if err != nil {
		fmt.Println(err)
		return
	}
	guard, err := oars.New(set, keys, l)
	if err != nil {
		fmt.Println(err)
		return
	}
	agentSecret, err := identity.NewToken()
	if err != nil {
		fmt.Println(err)
		return
	}
	bobSecret, err := identity.NewToken()
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := identity.NewTokenSet([]identity.Token{
		{Name: "support-bot", Hash: identity.HashToken(agentSecret), Roles: []identity.Role{identity.RoleAgent},
			Tenants: []string{"acme"}, AgentID: "support-bot"},
		// Bob approves: an API approver in the business group the policy names.
		{Name: "bob", Hash: identity.HashToken(bobSecret), Roles: []identity.Role{identity.RoleApprover},
			Tenants: []string{"acme"}, Groups: []string{"finance-approver"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	handler, err := httpapi.New(httpapi.Config{
		Guard: guard, Keys: keys, Auth: auth,
		Approved: func(id string) { fmt.Println("approved: the host executes it now") },
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	post := func(path, secret, body string, out any) (int, error) {
		req, err := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := srv.Client().Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, json.NewDecoder(resp.Body).Decode(out)
	}
	var action struct {
		ActionID string `json:"action_id"`
		Status   string `json:"status"`
	}
	code, err := post("/v1/actions", agentSecret, `{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": {"user_id": "alice"},
		"resource": {"tool_id": "payments", "operation": "refund", "target": "order/42"},
		"input": {"amount": 500}
	}`, &action)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(code, action.Status)

	var view struct {
		Status string `json:"status"`
		Votes  []struct {
			Approver string `json:"approver"`
		} `json:"votes"`
	}
	code, err = post("/v1/approvals/"+action.ActionID+"/decision", bobSecret,
		`{"decision": "approve", "reason": "order checked"}`, &view)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(code, view.Status, "by", view.Votes[0].Approver)
	// Output:
	// 201 pending_approval
	// approved: the host executes it now
	// 200 approved by bob
}
