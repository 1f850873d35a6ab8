package oars_test

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// A passport capability with a daily cap of 100 (minor units): the third
// refund of 40 would exceed it and is denied before any policy runs.
func ExampleWithCounters() {
	ctx := context.Background()
	pol, err := policy.Parse("refunds.yaml", []byte(`
id: refunds
version: "1"
default: deny
rules:
  - id: refunds
    when: "\"finance.payment.refund\" in agent.capabilities"
    effect: allow
    reason: the agent may refund
`))
	check(err)
	set, err := policy.NewSet(pol)
	check(err)
	signer, err := receipt.GenerateSigner()
	check(err)
	keys, err := receipt.NewKeySet(signer)
	check(err)
	log, err := ledger.New(ctx, ledger.NewMemStore())
	check(err)

	passports := &identity.MemPassportStore{}
	check(passports.PutPassport(ctx, &identity.Passport{
		AgentID: "pay-bot", TenantID: "acme", OwnerID: "org_12345678",
		Status: identity.PassportActive, AssuranceLevel: "L2",
		Capabilities: []identity.Capability{{
			ID:     "finance.payment.refund",
			Limits: json.RawMessage(`{"max_per_action":50,"daily_cap":100,"currencies":["EUR"]}`),
		}},
	}))
	guard, err := oars.New(set, keys, log,
		oars.WithPassports(oars.PassportSourceFunc(passports.GetPassport)),
		oars.WithCounters(&identity.MemCounterStore{})) // a shared SQL store across replicas
	check(err)

	for i := range 3 {
		out, err := guard.Decide(ctx, &oars.Action{
			TenantID: "acme", AgentID: "pay-bot",
			Resource: oars.Resource{ToolID: "finance.payment", Operation: "refund", Target: fmt.Sprintf("order/%d", i)},
			Input:    json.RawMessage(`{"amount": 40, "currency": "EUR"}`),
		})
		check(err)
		fmt.Println(out.Status, out.Receipts[0].Receipt.Reasons)
	}
	// Output:
	// allowed [the agent may refund]
	// allowed [the agent may refund]
	// denied [amount exceeds what is left of the capability's daily cap oap.limit_exceeded]
}
