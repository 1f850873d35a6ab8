package oars_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"testing"
	"time"

	"github.com/gowebpki/jcs"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// The benchmarks of the Guard's hot path. BenchmarkEd25519Sign is the
// baseline: one signature is the irreducible cost of a signed receipt, and
// BenchmarkGuardDecide (a whole decision: input canonicalization, policy,
// receipt, signature, ledger append) should cost at most 1.5× as much.
//
//	go test -run '^$' -bench . -benchmem

const benchPolicy = `
id: bench
version: "1"
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
    approval: {roles: [finance], quorum: 2, expiry: 1h}
  - id: frozen-orders
    when: action.target.startsWith("order/frozen")
    effect: deny
    reason: frozen orders cannot be refunded
  - id: support-only
    when: action.tool_id == "payments" && !("support" in principal.roles)
    effect: deny
    reason: only support may refund
  - id: delegation-depth
    when: size(principal.delegation) > 2
    effect: deny
    reason: delegation chains longer than 2 are refused
`

var benchInput = json.RawMessage(`{"amount": 42, "currency": "EUR", "order_id": "ord_8f3a2c", "reason_code": "damaged", "note": "customer sent photos of the broken item"}`)

func benchAction() *oars.Action {
	return &oars.Action{
		TenantID:  "acme",
		AgentID:   "support-bot",
		Principal: oars.Principal{UserID: "alice", Roles: []string{"support"}},
		Resource:  oars.Resource{ToolID: "payments", Operation: "refund", Target: "order/1234"},
		Input:     benchInput,
	}
}

func BenchmarkEd25519Sign(b *testing.B) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 1024)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	for b.Loop() {
		ed25519.Sign(key, msg)
	}
}

func typicalReceipt() *receipt.Receipt {
	return &receipt.Receipt{
		Spec: receipt.Spec, ReceiptID: "0193b4c2-7d1e-7a3b-9c4d-5e6f7a8b9c0d", ActionID: "0193b4c2-7d1e-7a3b-9c4d-5e6f7a8b9c0e",
		Seq: 2, PrevReceiptDigest: "sha256:4f53cda18c2baa0c0354bb5f9a3ecbe5ed12ab4d8e11ba873c2f11161202b945",
		Status: receipt.StatusExecuted, TenantID: "acme", AgentID: "support-bot",
		Principal:    receipt.Principal{UserID: "alice", Delegation: []receipt.DelegationHop{{Subject: "support-bot", Issuer: "https://id.example.com", Scope: []string{"payments:refund"}}}},
		Resource:     receipt.Resource{ToolID: "payments", Operation: "refund", Target: "order/1234"},
		InputDigest:  "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		OutputDigest: "sha256:60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752",
		Policy:       &receipt.PolicyRef{ID: "payments", Version: "7", Digest: "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", MatchedRules: []string{"payments/small-refunds"}},
		Reasons:      []string{"small refunds are allowed"},
		Mode:         receipt.ModeEnforce,
		IssuedAt:     time.Date(2026, 11, 22, 11, 13, 0, 123456000, time.UTC),
		Signature:    &receipt.Signature{Alg: "EdDSA", Kid: "oars:0123456789abcdef", Sig: "c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlcw"},
	}
}

// BenchmarkCanonicalize encodes a typical signed receipt to its RFC 8785
// canonical form with the fast encoder.
func BenchmarkCanonicalize(b *testing.B) {
	r := typicalReceipt()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.MarshalCanonical(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCanonicalizeJCS is the generic path the fast encoder replaces:
// encoding/json followed by gowebpki/jcs.
func BenchmarkCanonicalizeJCS(b *testing.B) {
	r := typicalReceipt()
	b.ReportAllocs()
	for b.Loop() {
		data, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := jcs.Transform(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPolicyEval(b *testing.B) {
	p, err := policy.Parse("bench.yaml", []byte(benchPolicy))
	if err != nil {
		b.Fatal(err)
	}
	set, err := policy.NewSet(p)
	if err != nil {
		b.Fatal(err)
	}
	var input any
	if err := json.Unmarshal(benchInput, &input); err != nil {
		b.Fatal(err)
	}
	in := &policy.Input{
		ToolID: "payments", Operation: "refund", Target: "order/1234", Input: input,
		UserID: "alice", Roles: []string{"support"}, AgentID: "support-bot", TenantID: "acme", Time: time.Now(),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		d, err := set.Evaluate(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		if d.Effect != policy.EffectAllow {
			b.Fatalf("effect = %s, want allow", d.Effect)
		}
	}
}

func BenchmarkGuardDecide(b *testing.B) {
	f := newFixture(b, nil, []string{benchPolicy})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		out, err := f.guard.Decide(ctx, benchAction())
		if err != nil {
			b.Fatal(err)
		}
		if out.Status != receipt.StatusAllowed {
			b.Fatalf("status = %s, want allowed", out.Status)
		}
	}
}

func BenchmarkGuardDecideParallel(b *testing.B) {
	f := newFixture(b, nil, []string{benchPolicy})
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			out, err := f.guard.Decide(ctx, benchAction())
			if err != nil {
				b.Error(err)
				return
			}
			if out.Status != receipt.StatusAllowed {
				b.Errorf("status = %s, want allowed", out.Status)
				return
			}
		}
	})
}

// BenchmarkGuardDecideVsSign measures the ratio the target is about on a
// shared machine whose speed drifts: it alternates blocks of 256
// BenchmarkEd25519Sign operations and 256 BenchmarkGuardDecide operations
// (long enough for each to run with its own working set in cache, short
// enough that both see the same machine) and reports the time per op of
// each and decide/sign, the ratio the target bounds at 1.5.
func BenchmarkGuardDecideVsSign(b *testing.B) {
	f := newFixture(b, nil, []string{benchPolicy})
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	msg := make([]byte, 1024)
	const block = 256
	var sign, decide time.Duration
	var n int
	for b.Loop() {
		t0 := time.Now()
		for range block {
			ed25519.Sign(key, msg)
		}
		t1 := time.Now()
		for range block {
			out, err := f.guard.Decide(ctx, benchAction())
			if err != nil {
				b.Fatal(err)
			}
			if out.Status != receipt.StatusAllowed {
				b.Fatalf("status = %s, want allowed", out.Status)
			}
		}
		sign += t1.Sub(t0)
		decide += time.Since(t1)
		n += block
	}
	b.ReportMetric(float64(sign.Nanoseconds())/float64(n), "sign-ns/op")
	b.ReportMetric(float64(decide.Nanoseconds())/float64(n), "decide-ns/op")
	b.ReportMetric(float64(decide)/float64(sign), "decide/sign")
}
