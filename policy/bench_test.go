package policy

import (
	"context"
	"testing"
	"time"
)

// benchPolicy is a realistic five-rule policy.
const benchPolicy = `
id: payments
version: "3"
default: deny
rules:
  - id: small-refunds
    when: action.tool_id == "payments" && action.operation == "refund" && input.amount <= 100
    effect: allow
    reason: small refunds are allowed
  - id: big-refunds
    when: action.tool_id == "payments" && action.operation == "refund" && input.amount > 100
    effect: require_approval
    reason: refunds over 100 need a second person
    approval:
      roles: [finance-approver]
      quorum: 2
      expiry: 30m
  - id: admins-read
    when: action.operation == "read" && "admin" in principal.roles
    effect: allow
    reason: admins may read
  - id: deep-delegation
    when: size(principal.delegation) > 2
    effect: deny
    reason: delegation chains longer than two are not trusted
  - id: office-hours
    when: context.time.getHours() < 6 && tenant.id == "acme" && context.request["ip"].startsWith("10.")
    effect: deny
    reason: no payments at night from the office network
`

func benchSet(b *testing.B) (*Set, *Input) {
	b.Helper()
	p, err := Parse("bench.yaml", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	s, err := NewSet(p)
	if err != nil {
		b.Fatal(err)
	}
	in := &Input{
		ToolID: "payments", Operation: "refund", Target: "order/1",
		Input:  map[string]any{"amount": 50.0, "currency": "EUR", "order": map[string]any{"id": "1"}},
		UserID: "bob", Roles: []string{"support"},
		Delegation: []Delegation{{Subject: "agent-1", Issuer: "bob", Scope: []string{"payments"}}},
		AgentID:    "agent-1", TenantID: "acme",
		Time:    time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC),
		Request: map[string]string{"ip": "10.0.0.1"},
	}
	return s, in
}

func BenchmarkPolicyEval(b *testing.B) {
	s, in := benchSet(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := s.Evaluate(ctx, in)
		if err != nil || d.Effect != EffectAllow {
			b.Fatalf("Evaluate = %v, %v", d, err)
		}
	}
}

func BenchmarkPolicyEvalParallel(b *testing.B) {
	s, in := benchSet(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			d, err := s.Evaluate(ctx, in)
			if err != nil || d.Effect != EffectAllow {
				b.Errorf("Evaluate = %v, %v", d, err)
				return
			}
		}
	})
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("bench.yaml", []byte(benchPolicy)); err != nil {
			b.Fatal(err)
		}
	}
}
