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

// Serve the API over a Guard and submit an action with an agent token.
func ExampleNew() {
	ctx := context.Background()
	pol, err := policy.Parse("refunds.yaml", []byte(`
id: refunds
version: "1"
rules:
  - id: small
    when: action.tool_id == "payments" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
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
	secret, err := identity.NewToken()
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := identity.NewTokenSet([]identity.Token{{
		Name: "support-bot", Hash: identity.HashToken(secret),
		Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{"acme"}, AgentID: "support-bot",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	handler, err := httpapi.New(httpapi.Config{Guard: guard, Keys: keys, Auth: auth})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(handler)
	defer srv.Close()

	req, err := http.NewRequest("POST", srv.URL+"/v1/actions", strings.NewReader(`{
		"tenant_id": "acme", "agent_id": "support-bot",
		"user_context": {"user_id": "alice"},
		"resource": {"tool_id": "payments", "operation": "refund", "target": "order/42"},
		"input": {"amount": 25}
	}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := srv.Client().Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var out struct {
		Status   string            `json:"status"`
		Receipts []json.RawMessage `json:"receipts"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, out.Status, len(out.Receipts), "receipt")
	// Output: 201 allowed 1 receipt
}
