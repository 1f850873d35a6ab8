package receipt

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testSeed is the fixed seed of the golden test key.
var testSeed = []byte("oars receipt golden test key 001") // 32 bytes

func testKey(t testing.TB) (Signer, ed25519.PrivateKey) {
	t.Helper()
	require.Len(t, testSeed, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(testSeed)
	s, err := NewEd25519Signer(KeyIDFor(key.Public().(ed25519.PublicKey)), key)
	require.NoError(t, err)
	return s, key
}

func testKeySet(t testing.TB) (*KeySet, Signer) {
	t.Helper()
	s, _ := testKey(t)
	ks, err := NewKeySet(s)
	require.NoError(t, err)
	return ks, s
}

func testVerifier(t testing.TB) (*Verifier, Signer) {
	t.Helper()
	ks, s := testKeySet(t)
	v, err := NewVerifier(ks)
	require.NoError(t, err)
	return v, s
}

// fixedTime is the clock of the golden receipts.
var fixedTime = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

func digestOf(s string) string {
	return Digest([]byte(s))
}

// minimalReceipt returns a valid receipt with only the required members.
func minimalReceipt() *Receipt {
	return &Receipt{
		ActionID:    "act_1",
		AgentID:     "agent",
		InputDigest: digestOf("{}"),
		IssuedAt:    fixedTime,
		Mode:        ModeEnforce,
		ReceiptID:   "rcpt_1",
		Resource:    Resource{Operation: "op", ToolID: "tool"},
		Seq:         1,
		Spec:        Spec,
		Status:      StatusAllowed,
		TenantID:    "acme",
	}
}

// fullReceipt returns a valid receipt with every member set, about 1 KB
// when signed.
func fullReceipt() *Receipt {
	return &Receipt{
		ActionID:     "018f6c2e-7b1a-7cc3-9d2e-5f4a3b2c1d0e",
		AgentID:      "support-bot",
		ErrorClass:   "timeout",
		InputDigest:  digestOf(`{"amount":25,"currency":"EUR"}`),
		IssuedAt:     fixedTime,
		Mode:         ModeEnforce,
		OutputDigest: digestOf(`{"refund_id":"re_1"}`),
		Policy: &PolicyRef{
			Digest:       digestOf("policy"),
			ID:           "payments",
			MatchedRules: []string{"payments/small-refunds", "payments/eu-only"},
			Shadow: []ShadowResult{{
				Digest: digestOf("shadow"), Effect: "deny", ID: "payments-next",
				MatchedRules: []string{"payments-next/strict"}, Version: "8",
			}, {
				Digest: digestOf("shadow2"), Effect: "allow", ID: "audit", Version: "1",
			}},
			Version: "7",
		},
		PrevReceiptDigest: digestOf("previous"),
		Principal: Principal{
			Delegation: []DelegationHop{
				{Issuer: "https://idp.example.com", Scope: []string{"payments:refund", "orders:read"}, Subject: "support-bot"},
				{Subject: "orchestrator"},
			},
			UserID: "alice@example.com",
		},
		Reasons:   []string{"small refunds are allowed", "customer is in the EU"},
		ReceiptID: "018f6c2e-7b1a-7cc3-9d2e-5f4a3b2c1d0f",
		Resource:  Resource{Operation: "refund", Target: "order/42", ToolID: "payments"},
		Seq:       2,
		Spec:      Spec,
		Status:    StatusExecuted,
		TenantID:  "acme",
	}
}

// longString returns a string of n bytes.
func longString(n int) string { return strings.Repeat("x", n) }

// approvalReceipt returns a valid receipt of status with the approval
// member that status carries, every member of it set.
func approvalReceipt(status Status) *Receipt {
	r := minimalReceipt()
	r.Status = status
	r.Seq, r.PrevReceiptDigest = 2, digestOf("previous")
	expires := fixedTime.Add(time.Hour)
	switch status {
	case StatusPendingApproval:
		r.Seq, r.PrevReceiptDigest = 1, ""
		r.Approval = &Approval{ExpiresAt: &expires, Quorum: 2, Roles: []string{"finance", "cfo"}, StepUp: true, Users: []string{"carol"}}
	case StatusVote:
		r.Approval = &Approval{Approver: &Approver{Roles: []string{"finance"}, UserID: "bob"}, Decision: DecisionApprove,
			Reason: "customer is known", StepUpMethod: "totp"}
	case StatusApproved, StatusRejected:
		r.Approval = &Approval{Reason: "quorum reached", Votes: []string{"rcpt_v1", "rcpt_v2"}}
	case StatusCancelled:
		r.Approval = &Approval{Approver: &Approver{UserID: "alice"}, Reason: "no longer needed"}
	case StatusExpired:
		r.Approval = &Approval{Reason: "approval request expired"}
	}
	return r
}
