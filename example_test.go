package oars_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

const refundPolicy = `
id: refunds
version: "1"
default: deny
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
`

func check(err error) {
	if err != nil {
		panic(err)
	}
}

// The README's example: wrap a tool call in-process.
func Example() {
	ctx := context.Background()
	pol, err := policy.Parse("refunds.yaml", []byte(refundPolicy))
	check(err)
	set, err := policy.NewSet(pol)
	check(err)
	signer, err := receipt.GenerateSigner()
	check(err)
	keys, err := receipt.NewKeySet(signer)
	check(err)
	log, err := ledger.New(ctx, ledger.NewMemStore())
	check(err)
	guard, err := oars.New(set, keys, log)
	check(err)

	out, err := guard.Do(ctx, &oars.Action{
		TenantID: "acme", AgentID: "support-bot",
		Principal: oars.Principal{UserID: "alice"},
		Resource:  oars.Resource{ToolID: "payments", Operation: "refund", Target: "order/42"},
		Input:     json.RawMessage(`{"amount": 25, "currency": "EUR"}`),
	}, func(ctx context.Context, a *oars.Action) (json.RawMessage, error) {
		return json.RawMessage(`{"refund_id": "re_1"}`), nil // call the real tool here
	})
	check(err)
	fmt.Println(out.Status, len(out.Receipts), "receipts")
	// Output: executed 2 receipts
}
