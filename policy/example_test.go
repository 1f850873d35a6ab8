package policy_test

import (
	"context"
	"fmt"

	"github.com/oarsdev/oars/policy"
)

func Example() {
	doc := []byte(`
id: payments
version: "1"
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && has(input.amount) && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
  - id: big-refunds
    when: action.tool_id == "payments" && has(input.amount) && input.amount > 100
    effect: require_approval
    reason: refunds over 100 need a finance approver
    approval:
      roles: [finance-approver]
      expiry: 30m
`)
	p, err := policy.Parse("payments.yaml", doc)
	if err != nil {
		fmt.Println("parse:", err)
		return
	}
	set, err := policy.NewSet(p)
	if err != nil {
		fmt.Println("new set:", err)
		return
	}
	for _, amount := range []float64{40, 250} {
		d, err := set.Evaluate(context.Background(), &policy.Input{
			ToolID:    "payments",
			Operation: "refund",
			Input:     map[string]any{"amount": amount},
			TenantID:  "acme",
		})
		if err != nil {
			fmt.Println("evaluate:", err)
			return
		}
		fmt.Println(amount, d.Effect, d.MatchedRules(), d.Reasons)
		if d.Approval != nil {
			fmt.Println("  approvers:", d.Approval.Roles, "quorum", d.Approval.Quorum, "expiry", d.Approval.Expiry)
		}
	}
	// Output:
	// 40 allow [payments/small-refunds] [small refunds are allowed]
	// 250 require_approval [payments/big-refunds] [refunds over 100 need a finance approver]
	//   approvers: [finance-approver] quorum 1 expiry 30m0s
}

func ExampleParse_error() {
	_, err := policy.Parse("payments.yaml", []byte(`
id: payments
version: "1"
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && input.amount <= 100 && principal.role == "support"
    effect: allow
    reason: small refunds are allowed
`))
	fmt.Println(err)
	// Output:
	// policy: payments.yaml:6: rule "small-refunds": when: 1:65: undefined field 'role'
}
