package receipt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/internal/strictjson"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func TestSignValidation(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *Receipt)
		want error
	}{
		{"wrong spec", func(r *Receipt) { r.Spec = "oars.receipt.v2" }, ErrInvalid},
		{"no spec", func(r *Receipt) { r.Spec = "" }, ErrInvalid},
		{"no receipt_id", func(r *Receipt) { r.ReceiptID = "" }, ErrInvalid},
		{"no action_id", func(r *Receipt) { r.ActionID = "" }, ErrInvalid},
		{"no tenant_id", func(r *Receipt) { r.TenantID = "" }, ErrInvalid},
		{"no agent_id", func(r *Receipt) { r.AgentID = "" }, ErrInvalid},
		{"no tool_id", func(r *Receipt) { r.Resource.ToolID = "" }, ErrInvalid},
		{"no operation", func(r *Receipt) { r.Resource.Operation = "" }, ErrInvalid},
		{"bad status", func(r *Receipt) { r.Status = "done" }, ErrInvalid},
		{"no status", func(r *Receipt) { r.Status = "" }, ErrInvalid},
		{"bad mode", func(r *Receipt) { r.Mode = "audit" }, ErrInvalid},
		{"no mode", func(r *Receipt) { r.Mode = "" }, ErrInvalid},
		{"seq 0", func(r *Receipt) { r.Seq = 0 }, ErrInvalid},
		{"seq negative", func(r *Receipt) { r.Seq = -1 }, ErrInvalid},
		{"seq too big", func(r *Receipt) { r.Seq = maxSafeInteger + 1; r.PrevReceiptDigest = digestOf("p") }, ErrInvalid},
		{"prev with seq 1", func(r *Receipt) { r.PrevReceiptDigest = digestOf("p") }, ErrInvalid},
		{"no prev with seq 2", func(r *Receipt) { r.Seq = 2 }, ErrInvalid},
		{"bad prev", func(r *Receipt) { r.Seq = 2; r.PrevReceiptDigest = "sha256:abc" }, ErrInvalid},
		{"uppercase prev", func(r *Receipt) { r.Seq = 2; r.PrevReceiptDigest = strings.ToUpper(digestOf("p")) }, ErrInvalid},
		{"no input digest", func(r *Receipt) { r.InputDigest = "" }, ErrInvalid},
		{"bad input digest", func(r *Receipt) { r.InputDigest = "md5:00" }, ErrInvalid},
		{"bad output digest", func(r *Receipt) { r.OutputDigest = "sha256:" }, ErrInvalid},
		{"no issued_at", func(r *Receipt) { r.IssuedAt = time.Time{} }, ErrInvalid},
		{"negative upstream status", func(r *Receipt) { r.UpstreamStatus = -1 }, ErrInvalid},
		{"upstream status 1000", func(r *Receipt) { r.UpstreamStatus = 1000 }, ErrInvalid},
		{"summary on allowed", func(r *Receipt) { r.OutputSummary = json.RawMessage(`{"id":1}`) }, ErrInvalid},
		{"summary not an object", func(r *Receipt) { r.Status = StatusExecuted; r.OutputSummary = json.RawMessage(`[1]`) }, ErrInvalid},
		{"summary not JSON", func(r *Receipt) { r.Status = StatusExecuted; r.OutputSummary = json.RawMessage(`{"id":`) }, ErrSyntax},
		{"summary duplicate key", func(r *Receipt) { r.Status = StatusExecuted; r.OutputSummary = json.RawMessage(`{"a":1,"a":2}`) }, ErrDuplicateKey},
		{"summary too big", func(r *Receipt) {
			r.Status = StatusExecuted
			r.OutputSummary = json.RawMessage(`{"a":"` + strings.Repeat("x", MaxSummaryBytes) + `"}`)
		}, ErrInvalid},
		{"hop without sub", func(r *Receipt) { r.Principal.Delegation = []DelegationHop{{Issuer: "x"}} }, ErrInvalid},
		{"policy without id", func(r *Receipt) { r.Policy = &PolicyRef{Digest: digestOf("p")} }, ErrInvalid},
		{"shadow without id", func(r *Receipt) { r.Policy = &PolicyRef{ID: "p", Shadow: []ShadowResult{{Effect: "deny"}}} }, ErrInvalid},
		{"shadow without effect", func(r *Receipt) { r.Policy = &PolicyRef{ID: "p", Shadow: []ShadowResult{{ID: "s"}}} }, ErrInvalid},
		{"invalid UTF-8", func(r *Receipt) { r.Reasons = []string{"\xff"} }, ErrInvalidUTF8},
		{"year 10000", func(r *Receipt) { r.IssuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, nil},
		{"approval on allowed", func(r *Receipt) { r.Approval = &Approval{Reason: "x"} }, ErrInvalid},
		{"approval empty", func(r *Receipt) { *r = *approvalReceipt(StatusExpired); r.Approval = &Approval{} }, ErrInvalid},
		{"approval empty lists", func(r *Receipt) {
			*r = *approvalReceipt(StatusExpired)
			r.Approval = &Approval{Roles: []string{}, Votes: []string{}}
		}, ErrInvalid},
		{"pending without quorum", func(r *Receipt) { *r = *approvalReceipt(StatusPendingApproval); r.Approval.Quorum = 0 }, ErrInvalid},
		{"pending negative quorum", func(r *Receipt) { *r = *approvalReceipt(StatusPendingApproval); r.Approval.Quorum = -1 }, ErrInvalid},
		{"pending without expiry", func(r *Receipt) { *r = *approvalReceipt(StatusPendingApproval); r.Approval.ExpiresAt = nil }, ErrInvalid},
		{"pending zero expiry", func(r *Receipt) {
			*r = *approvalReceipt(StatusPendingApproval)
			r.Approval.ExpiresAt = &time.Time{}
		}, ErrInvalid},
		{"pending with votes", func(r *Receipt) { *r = *approvalReceipt(StatusPendingApproval); r.Approval.Votes = []string{"v"} }, ErrInvalid},
		{"pending with approver", func(r *Receipt) {
			*r = *approvalReceipt(StatusPendingApproval)
			r.Approval.Approver = &Approver{UserID: "bob"}
		}, ErrInvalid},
		{"pending with empty role", func(r *Receipt) { *r = *approvalReceipt(StatusPendingApproval); r.Approval.Roles = []string{""} }, ErrInvalid},
		{"vote without approver", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Approver = nil }, ErrInvalid},
		{"vote without decision", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Decision = "" }, ErrInvalid},
		{"vote with bad decision", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Decision = "maybe" }, ErrInvalid},
		{"vote approver without user", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Approver.UserID = "" }, ErrInvalid},
		{"vote approver empty role", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Approver.Roles = []string{""} }, ErrInvalid},
		{"vote with quorum", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Quorum = 2 }, ErrInvalid},
		{"vote with votes", func(r *Receipt) { *r = *approvalReceipt(StatusVote); r.Approval.Votes = []string{"v"} }, ErrInvalid},
		{"approved with decision", func(r *Receipt) { *r = *approvalReceipt(StatusApproved); r.Approval.Decision = DecisionApprove }, ErrInvalid},
		{"approved with empty vote id", func(r *Receipt) { *r = *approvalReceipt(StatusApproved); r.Approval.Votes = []string{""} }, ErrInvalid},
		{"approved with approver", func(r *Receipt) {
			*r = *approvalReceipt(StatusApproved)
			r.Approval.Approver = &Approver{UserID: "bob"}
		}, ErrInvalid},
		{"expired with step_up", func(r *Receipt) { *r = *approvalReceipt(StatusExpired); r.Approval.StepUp = true }, ErrInvalid},
		{"cancelled with step_up_method", func(r *Receipt) {
			*r = *approvalReceipt(StatusCancelled)
			r.Approval.StepUpMethod = "totp"
		}, ErrInvalid},
		{"executing with approval", func(r *Receipt) {
			*r = *approvalReceipt(StatusApproved)
			r.Status = StatusExecuting
		}, ErrInvalid},
		{"approval invalid UTF-8", func(r *Receipt) { *r = *approvalReceipt(StatusExpired); r.Approval.Reason = "\xff" }, ErrInvalidUTF8},
	}
	s, _ := testKey(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := minimalReceipt()
			tt.edit(r)
			out, err := Sign(context.Background(), s, r)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.True(t, strings.HasPrefix(err.Error(), "receipt: sign: "), "Sign() error = %q", err)
			assert.Nil(t, out)
			assert.Nil(t, r.Signature, "Sign() set a signature on an invalid receipt")
		})
	}
}

func TestSignAcceptsOptionalEmpties(t *testing.T) {
	s, _ := testKey(t)
	r := minimalReceipt()
	r.Principal.UserID = "" // an action on no user's behalf
	r.Policy = &PolicyRef{ID: "p"}
	_, err := Sign(context.Background(), s, r)
	require.NoError(t, err)
}

func TestSignAcceptsApprovals(t *testing.T) {
	v, s := testVerifier(t)
	for _, status := range []Status{StatusPendingApproval, StatusVote, StatusApproved, StatusRejected, StatusExpired, StatusCancelled} {
		t.Run(string(status), func(t *testing.T) {
			r := approvalReceipt(status)
			signed, err := Sign(context.Background(), s, r)
			require.NoError(t, err, "Sign(%s with approval)", status)
			got, err := v.Verify(signed)
			require.NoError(t, err, "Verify(%s with approval)", status)
			assert.Equal(t, r, got, "Verify(Sign(r)) = got, want r")
			again, err := got.MarshalCanonical()
			require.NoError(t, err)
			assert.Equal(t, string(signed), string(again), "re-encoding a verified receipt")
		})
	}
	// Approval receipts without the member stay valid.
	r := approvalReceipt(StatusVote)
	r.Approval = nil
	_, err := Sign(context.Background(), s, r)
	require.NoError(t, err, "Sign(vote without approval)")
}

func TestSignOutput(t *testing.T) {
	v, s := testVerifier(t)
	evidence := minimalReceipt()
	evidence.Status, evidence.UpstreamStatus = StatusExecuted, 201
	evidence.OutputSummary = json.RawMessage(`{"id":42,"url":"https://t.example/i/42"}`)
	for name, r := range map[string]*Receipt{"minimal": minimalReceipt(), "full": fullReceipt(), "approval": approvalReceipt(StatusPendingApproval), "evidence": evidence} {
		t.Run(name, func(t *testing.T) {
			r.Signature = &Signature{Alg: "old", Kid: "old", Sig: "old"} // replaced
			signed, err := Sign(context.Background(), s, r)
			require.NoError(t, err)
			require.NotNil(t, r.Signature)
			assert.Equal(t, Alg, r.Signature.Alg)
			assert.Equal(t, s.KeyID(), r.Signature.Kid)

			// The result is the canonical form of the signed receipt...
			want, err := r.MarshalCanonical()
			require.NoError(t, err)
			assert.Equal(t, string(want), string(signed))
			assert.Equal(t, string(referenceCanonical(t, r)), string(signed))

			// ... and the signature covers the canonical form without it.
			unsigned := *r
			unsigned.Signature = nil
			msg, err := unsigned.MarshalCanonical()
			require.NoError(t, err)
			sig, err := base64.RawURLEncoding.DecodeString(r.Signature.Sig)
			require.NoError(t, err)
			assert.True(t, ed25519.Verify(s.Public(), msg, sig), "signature does not verify over the unsigned canonical form")
			assert.NotContains(t, r.Signature.Sig, "=")

			got, err := v.Verify(signed)
			require.NoError(t, err)
			assert.Equal(t, r, got)
		})
	}
}

type stubSigner struct {
	kid string
	pub ed25519.PublicKey
	sig []byte
	err error
}

func (s stubSigner) KeyID() string             { return s.kid }
func (s stubSigner) Public() ed25519.PublicKey { return s.pub }
func (s stubSigner) Sign(context.Context, []byte) ([]byte, error) {
	return s.sig, s.err
}

func TestSignSignerFailures(t *testing.T) {
	kmsDown := errors.New("kms unreachable")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	good, _ := testKey(t)
	tests := []struct {
		name string
		ctx  context.Context
		s    Signer
		want error
	}{
		{"signer error", context.Background(), stubSigner{kid: "k", err: kmsDown}, kmsDown},
		{"short signature", context.Background(), stubSigner{kid: "k", sig: make([]byte, 10)}, nil},
		{"empty kid", context.Background(), stubSigner{sig: make([]byte, 64)}, nil},
		{"invalid UTF-8 kid", context.Background(), stubSigner{kid: "\xff", sig: make([]byte, 64)}, ErrInvalid},
		{"cancelled", cancelled, good, context.Canceled},
		{"nil signer", context.Background(), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := minimalReceipt()
			out, err := Sign(tt.ctx, tt.s, r)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Nil(t, out)
			assert.Nil(t, r.Signature)
		})
	}
	_, err := Sign(context.Background(), good, nil)
	assert.Error(t, err, "Sign(nil receipt)")
}

// goldenSet builds the golden receipts and event with the fixed key.
func goldenSet(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	s, _ := testKey(t)
	sign := func(r *Receipt) []byte {
		b, err := Sign(ctx, s, r)
		require.NoError(t, err)
		return b
	}
	array := func(leaves ...[]byte) []byte {
		return append(append([]byte("["), bytes.Join(leaves, []byte(","))...), ']')
	}
	at := func(sec int) time.Time { return fixedTime.Add(time.Duration(sec) * time.Second) }
	policy := &PolicyRef{Digest: digestOf("payments v7"), ID: "payments", Version: "7"}
	base := func(action string) Receipt {
		return Receipt{
			ActionID: action, AgentID: "support-bot", InputDigest: digestOf(`{"amount":25,"currency":"EUR"}`),
			Mode: ModeEnforce, Principal: Principal{UserID: "alice"}, Spec: Spec, TenantID: "acme",
			Resource: Resource{Operation: "refund", Target: "order/42", ToolID: "payments"},
		}
	}
	files := map[string][]byte{}

	// allowed → executed
	r1 := base("act_allowed")
	r1.ReceiptID, r1.Seq, r1.Status, r1.IssuedAt = "rcpt_a1", 1, StatusAllowed, at(0)
	r1.Policy = &PolicyRef{Digest: policy.Digest, ID: policy.ID, Version: policy.Version, MatchedRules: []string{"payments/small-refunds"}}
	r1.Reasons = []string{"small refunds are allowed"}
	l1 := sign(&r1)
	r2 := base("act_allowed")
	r2.ReceiptID, r2.Seq, r2.Status, r2.IssuedAt = "rcpt_a2", 2, StatusExecuted, at(1)
	r2.PrevReceiptDigest = Digest(l1)
	r2.OutputDigest = digestOf(`{"refund_id":"re_1"}`)
	files["chain_allowed_executed.json"] = array(l1, sign(&r2))

	// pending_approval → vote → approved
	p1 := base("act_approval")
	p1.Resource.Target = "order/43"
	p1.ReceiptID, p1.Seq, p1.Status, p1.IssuedAt = "rcpt_p1", 1, StatusPendingApproval, at(10)
	p1.Policy = &PolicyRef{Digest: policy.Digest, ID: policy.ID, Version: policy.Version, MatchedRules: []string{"payments/big-refunds"}}
	p1.Reasons = []string{"refunds over 100 need approval"}
	lp1 := sign(&p1)
	p2 := p1
	p2.ReceiptID, p2.Seq, p2.Status, p2.IssuedAt, p2.PrevReceiptDigest = "rcpt_p2", 2, StatusVote, at(20), Digest(lp1)
	p2.Principal = Principal{UserID: "bob", Delegation: []DelegationHop{{Issuer: "https://idp.example.com", Scope: []string{"approvals:vote"}, Subject: "approval-ui"}}}
	p2.Reasons = []string{"approve: customer is known"}
	lp2 := sign(&p2)
	p3 := p1
	p3.ReceiptID, p3.Seq, p3.Status, p3.IssuedAt, p3.PrevReceiptDigest = "rcpt_p3", 3, StatusApproved, at(21), Digest(lp2)
	p3.Reasons = []string{"quorum reached (1 of 1)"}
	files["chain_approval.json"] = array(lp1, lp2, sign(&p3))

	// pending_approval (quorum 2) → vote → vote → approved → executing →
	// executed, with the approval member.
	expires := at(50).Add(time.Hour)
	q := base("act_quorum")
	q.Resource.Target = "order/44"
	q.InputDigest = digestOf(`{"amount":5000,"currency":"EUR"}`)
	var quorum [][]byte
	add := func(id string, status Status, sec int, edit func(r *Receipt)) {
		r := q
		r.ReceiptID, r.Status, r.IssuedAt, r.Seq = id, status, at(sec), int64(len(quorum)+1)
		if len(quorum) > 0 {
			r.PrevReceiptDigest = Digest(quorum[len(quorum)-1])
		}
		if edit != nil {
			edit(&r)
		}
		quorum = append(quorum, sign(&r))
	}
	add("rcpt_q1", StatusPendingApproval, 50, func(r *Receipt) {
		r.Policy = &PolicyRef{Digest: policy.Digest, ID: policy.ID, Version: policy.Version, MatchedRules: []string{"payments/huge-refunds"}}
		r.Reasons = []string{"refunds over 1000 need two approvals"}
		r.Approval = &Approval{ExpiresAt: &expires, Quorum: 2, Roles: []string{"finance"}, StepUp: true}
	})
	add("rcpt_q2", StatusVote, 60, func(r *Receipt) {
		r.Approval = &Approval{Approver: &Approver{Roles: []string{"finance"}, UserID: "bob"}, Decision: DecisionApprove,
			Reason: "customer is known", StepUpMethod: "totp"}
	})
	add("rcpt_q3", StatusVote, 70, func(r *Receipt) {
		r.Approval = &Approval{Approver: &Approver{Roles: []string{"finance", "cfo"}, UserID: "carol"}, Decision: DecisionApprove,
			StepUpMethod: "totp"}
	})
	add("rcpt_q4", StatusApproved, 70, func(r *Receipt) {
		r.Reasons = []string{"quorum reached: 2 of 2 approvals"}
		r.Approval = &Approval{Votes: []string{"rcpt_q2", "rcpt_q3"}}
	})
	add("rcpt_q5", StatusExecuting, 71, nil)
	add("rcpt_q6", StatusExecuted, 72, func(r *Receipt) { r.OutputDigest = digestOf(`{"refund_id":"re_2"}`) })
	files["chain_approval_quorum.json"] = array(quorum...)

	// A denial with escapes and unicode, in shadow mode with a shadow result.
	d := base("act_denied")
	d.ReceiptID, d.Seq, d.Status, d.IssuedAt, d.Mode = "rcpt_d1", 1, StatusDenied, at(30), ModeShadow
	d.Resource.Target = "order/\"frozen\"\n€"
	d.Policy = &PolicyRef{Digest: policy.Digest, ID: policy.ID, Version: policy.Version, MatchedRules: []string{"payments/blocked-target"},
		Shadow: []ShadowResult{{Digest: digestOf("strict"), Effect: "deny", ID: "strict", Version: "1"}}}
	d.Reasons = []string{"this order is frozen", "größer als 100 € <>&"}
	files["denied.json"] = sign(&d)

	// A failed execution.
	f1 := base("act_failed")
	f1.ReceiptID, f1.Seq, f1.Status, f1.IssuedAt = "rcpt_f1", 1, StatusAllowed, at(40)
	f1.Policy = policy
	lf1 := sign(&f1)
	f2 := base("act_failed")
	f2.ReceiptID, f2.Seq, f2.Status, f2.IssuedAt, f2.PrevReceiptDigest, f2.ErrorClass = "rcpt_f2", 2, StatusFailed, at(41), Digest(lf1), "timeout"
	files["chain_failed.json"] = array(lf1, sign(&f2))

	ev := &Event{Actor: "admin@example.com", Details: json.RawMessage(`{"to":"` + digestOf("payments v7") + `","from":"` + digestOf("payments v6") + `","policy":"payments"}`),
		Event: "policy.reloaded", EventID: "evt_1", IssuedAt: at(-60), Spec: EventSpec, TenantID: "acme"}
	evb, err := SignEvent(ctx, s, ev)
	require.NoError(t, err)
	files["event_policy_reloaded.json"] = evb

	ks, err := NewKeySet(s)
	require.NoError(t, err)
	jwks, err := ks.MarshalJWKS()
	require.NoError(t, err)
	files["jwks.json"] = jwks
	return files
}

func TestGolden(t *testing.T) {
	files := goldenSet(t)
	dir := filepath.Join("testdata", "golden")
	if *update {
		require.NoError(t, os.MkdirAll(dir, 0o755))
		for name, data := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
		}
	}
	onDisk, err := filepath.Glob(filepath.Join(dir, "*.json"))
	require.NoError(t, err)
	assert.Len(t, onDisk, len(files), "golden files on disk")
	for name, want := range files {
		t.Run(name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err, "run go test ./receipt -update to create it")
			assert.Equal(t, string(want), string(got), "golden file differs; run go test ./receipt -update if the change is intended")
		})
	}

	// The golden files verify with the golden JWKS alone.
	ks, err := ParseJWKS(files["jwks.json"])
	require.NoError(t, err)
	v, err := NewVerifier(ks)
	require.NoError(t, err)
	lc := NewLogChecker(v)
	var index int64
	for _, name := range []string{"event_policy_reloaded.json", "chain_allowed_executed.json", "chain_approval.json", "denied.json", "chain_failed.json", "chain_approval_quorum.json"} {
		data := files[name]
		var leaves [][]byte
		if data[0] == '[' {
			var raws []json.RawMessage
			require.NoError(t, json.Unmarshal(data, &raws))
			for _, r := range raws {
				leaves = append(leaves, r)
			}
			_, err := v.VerifyChain(leaves)
			require.NoError(t, err, name)
		} else {
			leaves = [][]byte{data}
		}
		for _, leaf := range leaves {
			require.NoError(t, lc.CheckEntry(index, leaf), "%s entry %d", name, index)
			index++
		}
	}
	_, err = v.VerifyEvent(files["event_policy_reloaded.json"])
	require.NoError(t, err)
}

// tamper re-encodes a signed receipt after edit, keeping its signature.
func tamper(t *testing.T, signed *Receipt, edit func(r *Receipt)) []byte {
	t.Helper()
	r := cloneReceipt(t, signed)
	edit(r)
	b, err := r.MarshalCanonical()
	require.NoError(t, err)
	return b
}

func cloneReceipt(t *testing.T, r *Receipt) *Receipt {
	t.Helper()
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	var c Receipt
	require.NoError(t, json.Unmarshal(raw, &c))
	return &c
}

// editJSON decodes a canonical receipt into a generic map, edits it and
// returns the canonical form.
func editJSON(t *testing.T, canonical []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(canonical, &m))
	edit(m)
	raw, err := json.Marshal(m)
	require.NoError(t, err)
	out, err := Canonicalize(raw)
	require.NoError(t, err)
	return out
}

func TestTamper(t *testing.T) {
	v, s := testVerifier(t)
	r := fullReceipt()
	signed, err := Sign(context.Background(), s, r)
	require.NoError(t, err)
	_, err = v.Verify(signed)
	require.NoError(t, err)

	other := minimalReceipt()
	_, err = Sign(context.Background(), s, other)
	require.NoError(t, err)

	type edit = func(r *Receipt)
	fields := []struct {
		name string
		edit edit
		want Check
	}{
		{"action_id", func(r *Receipt) { r.ActionID += "x" }, CheckSignature},
		{"agent_id", func(r *Receipt) { r.AgentID = "evil-bot" }, CheckSignature},
		{"error_class", func(r *Receipt) { r.ErrorClass = "error" }, CheckSignature},
		{"error_class removed", func(r *Receipt) { r.ErrorClass = "" }, CheckSignature},
		{"input_digest", func(r *Receipt) { r.InputDigest = digestOf("other") }, CheckSignature},
		{"issued_at", func(r *Receipt) { r.IssuedAt = r.IssuedAt.Add(time.Nanosecond) }, CheckSignature},
		{"mode", func(r *Receipt) { r.Mode = ModeShadow }, CheckSignature},
		{"output_digest", func(r *Receipt) { r.OutputDigest = digestOf("other") }, CheckSignature},
		{"output_digest removed", func(r *Receipt) { r.OutputDigest = "" }, CheckSignature},
		{"policy removed", func(r *Receipt) { r.Policy = nil }, CheckSignature},
		{"policy.digest", func(r *Receipt) { r.Policy.Digest = digestOf("other") }, CheckSignature},
		{"policy.id", func(r *Receipt) { r.Policy.ID = "other" }, CheckSignature},
		{"policy.version", func(r *Receipt) { r.Policy.Version = "8" }, CheckSignature},
		{"policy.matched_rules", func(r *Receipt) { r.Policy.MatchedRules[0] = "payments/other" }, CheckSignature},
		{"policy.matched_rules added", func(r *Receipt) { r.Policy.MatchedRules = append(r.Policy.MatchedRules, "x") }, CheckSignature},
		{"policy.matched_rules removed", func(r *Receipt) { r.Policy.MatchedRules = nil }, CheckSignature},
		{"policy.shadow.effect", func(r *Receipt) { r.Policy.Shadow[0].Effect = "allow" }, CheckSignature},
		{"policy.shadow.digest", func(r *Receipt) { r.Policy.Shadow[0].Digest = digestOf("x") }, CheckSignature},
		{"policy.shadow.id", func(r *Receipt) { r.Policy.Shadow[1].ID = "x" }, CheckSignature},
		{"policy.shadow.version", func(r *Receipt) { r.Policy.Shadow[1].Version = "2" }, CheckSignature},
		{"policy.shadow.matched_rules", func(r *Receipt) { r.Policy.Shadow[0].MatchedRules = nil }, CheckSignature},
		{"policy.shadow removed", func(r *Receipt) { r.Policy.Shadow = r.Policy.Shadow[:1] }, CheckSignature},
		{"prev_receipt_digest", func(r *Receipt) { r.PrevReceiptDigest = digestOf("other") }, CheckSignature},
		{"principal.user_id", func(r *Receipt) { r.Principal.UserID = "mallory" }, CheckSignature},
		{"principal.user_id empty", func(r *Receipt) { r.Principal.UserID = "" }, CheckSignature},
		{"principal.delegation.iss", func(r *Receipt) { r.Principal.Delegation[0].Issuer = "https://evil" }, CheckSignature},
		{"principal.delegation.scope", func(r *Receipt) { r.Principal.Delegation[0].Scope = []string{"*"} }, CheckSignature},
		{"principal.delegation.sub", func(r *Receipt) { r.Principal.Delegation[1].Subject = "x" }, CheckSignature},
		{"principal.delegation removed", func(r *Receipt) { r.Principal.Delegation = nil }, CheckSignature},
		{"reasons", func(r *Receipt) { r.Reasons[1] = "customer is rich" }, CheckSignature},
		{"reasons removed", func(r *Receipt) { r.Reasons = nil }, CheckSignature},
		{"receipt_id", func(r *Receipt) { r.ReceiptID = "x" }, CheckSignature},
		{"resource.operation", func(r *Receipt) { r.Resource.Operation = "charge" }, CheckSignature},
		{"resource.target", func(r *Receipt) { r.Resource.Target = "order/43" }, CheckSignature},
		{"resource.target removed", func(r *Receipt) { r.Resource.Target = "" }, CheckSignature},
		{"resource.tool_id", func(r *Receipt) { r.Resource.ToolID = "shell" }, CheckSignature},
		{"seq", func(r *Receipt) { r.Seq = 3 }, CheckSignature},
		{"status", func(r *Receipt) { r.Status = StatusFailed }, CheckSignature},
		{"status invalid", func(r *Receipt) { r.Status = "done" }, CheckFormat},
		{"spec", func(r *Receipt) { r.Spec = "oars.receipt.v2" }, CheckFormat},
		{"tenant_id", func(r *Receipt) { r.TenantID = "globex" }, CheckSignature},
		{"signature.kid", func(r *Receipt) { r.Signature.Kid = "oars:ffffffffffffffff" }, CheckUnknownKey},
		{"signature.sig of another receipt", func(r *Receipt) { r.Signature.Sig = other.Signature.Sig }, CheckSignature},
		{"signature.sig truncated", func(r *Receipt) { r.Signature.Sig = r.Signature.Sig[:85] }, CheckFormat},
		{"signature.sig padded", func(r *Receipt) { r.Signature.Sig += "==" }, CheckFormat},
		{"signature.sig std base64", func(r *Receipt) {
			raw, _ := base64.RawURLEncoding.DecodeString(r.Signature.Sig)
			r.Signature.Sig = base64.StdEncoding.EncodeToString(raw)
		}, CheckFormat},
		{"signature.alg", func(r *Receipt) { r.Signature.Alg = "Ed25519" }, CheckFormat},
		{"signature removed", func(r *Receipt) { r.Signature = nil }, CheckFormat},
	}
	for _, tt := range fields {
		t.Run(tt.name, func(t *testing.T) {
			data := tamper(t, r, tt.edit)
			_, err := v.Verify(data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, "Verify(tampered %s) = %v", tt.name, err)
			assert.Equal(t, tt.want, verr.Check, "Verify(tampered %s) check = %v (%v), want %v", tt.name, verr.Check, err, tt.want)
			assert.Contains(t, err.Error(), ": "+tt.want.String()+": ")
		})
	}

	jsonEdits := []struct {
		name string
		edit func(m map[string]any)
		want Check
	}{
		{"unknown member added", func(m map[string]any) { m["zz_extra"] = "x" }, CheckSignature},
		{"unknown member before signature", func(m map[string]any) { m["seq_note"] = 1 }, CheckSignature},
		{"unknown nested member", func(m map[string]any) { m["resource"].(map[string]any)["extra"] = true }, CheckSignature},
		{"action_id removed", func(m map[string]any) { delete(m, "action_id") }, CheckFormat},
		{"principal removed", func(m map[string]any) { delete(m, "principal") }, CheckFormat},
		{"user_id removed", func(m map[string]any) { delete(m["principal"].(map[string]any), "user_id") }, CheckFormat},
		{"seq as string", func(m map[string]any) { m["seq"] = "2" }, CheckFormat},
		{"seq fractional", func(m map[string]any) { m["seq"] = 2.5 }, CheckFormat},
		{"action_id null", func(m map[string]any) { m["action_id"] = nil }, CheckFormat},
		{"error_class null", func(m map[string]any) { m["error_class"] = nil }, CheckFormat},
		{"reasons empty", func(m map[string]any) { m["reasons"] = []any{} }, CheckFormat},
		{"reasons of numbers", func(m map[string]any) { m["reasons"] = []any{1} }, CheckFormat},
		{"policy as string", func(m map[string]any) { m["policy"] = "payments" }, CheckFormat},
		{"issued_at with offset", func(m map[string]any) { m["issued_at"] = "2025-03-14T16:09:26.535897+01:00" }, CheckFormat},
		{"issued_at trailing zeros", func(m map[string]any) { m["issued_at"] = "2025-03-14T15:09:26.535897000Z" }, CheckFormat},
		{"issued_at not a time", func(m map[string]any) { m["issued_at"] = "yesterday" }, CheckFormat},
		{"target empty", func(m map[string]any) { m["resource"].(map[string]any)["target"] = "" }, CheckFormat},
		{"signature not an object", func(m map[string]any) { m["signature"] = "sig" }, CheckFormat},
		{"signature without kid", func(m map[string]any) { delete(m["signature"].(map[string]any), "kid") }, CheckFormat},
		{"signature.kid empty", func(m map[string]any) { m["signature"].(map[string]any)["kid"] = "" }, CheckFormat},
	}
	for _, tt := range jsonEdits {
		t.Run(tt.name, func(t *testing.T) {
			data := editJSON(t, signed, tt.edit)
			_, err := v.Verify(data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, "Verify(%s) = %v", tt.name, err)
			assert.Equal(t, tt.want, verr.Check, "Verify(%s) check = %v (%v), want %v", tt.name, verr.Check, err, tt.want)
		})
	}

	t.Run("approval", func(t *testing.T) {
		pending := approvalReceipt(StatusPendingApproval)
		pendingSigned, err := Sign(context.Background(), s, pending)
		require.NoError(t, err)
		vote := approvalReceipt(StatusVote)
		voteSigned, err := Sign(context.Background(), s, vote)
		require.NoError(t, err)
		approved := approvalReceipt(StatusApproved)
		approvedSigned, err := Sign(context.Background(), s, approved)
		require.NoError(t, err)
		edits := []struct {
			name string
			r    *Receipt
			edit edit
			want Check
		}{
			{"quorum", pending, func(r *Receipt) { r.Approval.Quorum = 1 }, CheckSignature},
			{"expires_at", pending, func(r *Receipt) { t := r.Approval.ExpiresAt.Add(time.Hour); r.Approval.ExpiresAt = &t }, CheckSignature},
			{"roles", pending, func(r *Receipt) { r.Approval.Roles = []string{"intern"} }, CheckSignature},
			{"users", pending, func(r *Receipt) { r.Approval.Users = append(r.Approval.Users, "mallory") }, CheckSignature},
			{"step_up removed", pending, func(r *Receipt) { r.Approval.StepUp = false }, CheckSignature},
			{"approval removed", pending, func(r *Receipt) { r.Approval = nil }, CheckSignature},
			{"quorum zero", pending, func(r *Receipt) { r.Approval.Quorum = 0 }, CheckFormat},
			{"approver", vote, func(r *Receipt) { r.Approval.Approver.UserID = "mallory" }, CheckSignature},
			{"approver roles", vote, func(r *Receipt) { r.Approval.Approver.Roles = []string{"cfo"} }, CheckSignature},
			{"decision", vote, func(r *Receipt) { r.Approval.Decision = DecisionReject }, CheckSignature},
			{"decision invalid", vote, func(r *Receipt) { r.Approval.Decision = "yes" }, CheckFormat},
			{"step_up_method removed", vote, func(r *Receipt) { r.Approval.StepUpMethod = "" }, CheckSignature},
			{"reason", vote, func(r *Receipt) { r.Approval.Reason = "because" }, CheckSignature},
			{"votes", approved, func(r *Receipt) { r.Approval.Votes = r.Approval.Votes[:1] }, CheckSignature},
		}
		signedOf := map[*Receipt][]byte{pending: pendingSigned, vote: voteSigned, approved: approvedSigned}
		for _, tt := range edits {
			_, err := v.Verify(signedOf[tt.r])
			require.NoError(t, err)
			data := tamper(t, tt.r, tt.edit)
			_, err = v.Verify(data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, "Verify(tampered approval.%s) = %v", tt.name, err)
			assert.Equal(t, tt.want, verr.Check, "Verify(tampered approval.%s) check = %v (%v), want %v", tt.name, verr.Check, err, tt.want)
		}
		jsonEdits := []struct {
			name string
			edit func(m map[string]any)
		}{
			{"step_up false", func(m map[string]any) { m["approval"].(map[string]any)["step_up"] = false }},
			{"step_up as string", func(m map[string]any) { m["approval"].(map[string]any)["step_up"] = "true" }},
			{"quorum as string", func(m map[string]any) { m["approval"].(map[string]any)["quorum"] = "2" }},
			{"quorum fractional", func(m map[string]any) { m["approval"].(map[string]any)["quorum"] = 1.5 }},
			{"roles empty", func(m map[string]any) { m["approval"].(map[string]any)["roles"] = []any{} }},
			{"expires_at with offset", func(m map[string]any) {
				m["approval"].(map[string]any)["expires_at"] = "2025-03-14T17:09:26.535897+01:00"
			}},
			{"approval not an object", func(m map[string]any) { m["approval"] = []any{"x"} }},
			{"approval empty", func(m map[string]any) { m["approval"] = map[string]any{} }},
		}
		for _, tt := range jsonEdits {
			data := editJSON(t, pendingSigned, tt.edit)
			_, err := v.Verify(data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, "Verify(%s) = %v", tt.name, err)
			assert.Equal(t, CheckFormat, verr.Check, "Verify(%s) check = %v (%v), want format", tt.name, verr.Check, err)
		}
		for name, edit := range map[string]func(m map[string]any){
			"approver without user_id": func(m map[string]any) { delete(m["approval"].(map[string]any)["approver"].(map[string]any), "user_id") },
			"decision empty":           func(m map[string]any) { m["approval"].(map[string]any)["decision"] = "" },
		} {
			data := editJSON(t, voteSigned, edit)
			_, err := v.Verify(data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, "Verify(%s) = %v", name, err)
			assert.Equal(t, CheckFormat, verr.Check, "Verify(%s) check = %v (%v), want format", name, verr.Check, err)
		}
	})

	t.Run("not an object", func(t *testing.T) {
		for _, in := range []string{`[]`, `"receipt"`, `null`, `1`} {
			_, err := v.Verify([]byte(in))
			var verr *VerifyError
			require.ErrorAs(t, err, &verr)
			assert.Equal(t, CheckFormat, verr.Check, "Verify(%s)", in)
		}
	})

	t.Run("byte flips", func(t *testing.T) {
		for i := range signed {
			for _, mask := range []byte{0x01, 0x20, 0x80} {
				data := bytes.Clone(signed)
				data[i] ^= mask
				_, err := v.Verify(data)
				var verr *VerifyError
				require.ErrorAs(t, err, &verr, "Verify(flip byte %d by %#x) = %v", i, mask, err)
				if strictjson.Check(data) != nil {
					assert.Contains(t, []Check{CheckParse, CheckCanonical}, verr.Check, "flip byte %d by %#x: %v", i, mask, err)
				} else {
					assert.Contains(t, []Check{CheckFormat, CheckUnknownKey, CheckSignature}, verr.Check, "flip byte %d by %#x: %v", i, mask, err)
				}
			}
		}
	})

	t.Run("broken JSON", func(t *testing.T) {
		tests := []struct {
			name string
			data []byte
			want Check
		}{
			{"truncated", signed[:len(signed)-1], CheckParse},
			{"empty", nil, CheckParse},
			{"trailing data", append(bytes.Clone(signed), '1'), CheckParse},
			{"duplicate key", append([]byte(`{"seq":2,`), signed[1:]...), CheckCanonical},
			{"invalid UTF-8", bytes.Replace(signed, []byte("alice"), []byte("al\xffce"), 1), CheckCanonical},
			{"lone surrogate", bytes.Replace(signed, []byte("alice"), []byte(`al\ud800e`), 1), CheckCanonical},
		}
		for _, tt := range tests {
			_, err := v.Verify(tt.data)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr, tt.name)
			assert.Equal(t, tt.want, verr.Check, "%s: %v", tt.name, err)
		}
	})
}

func TestVerifyAcceptsAnyLayout(t *testing.T) {
	v, s := testVerifier(t)
	r := fullReceipt()
	signed, err := Sign(context.Background(), s, r)
	require.NoError(t, err)

	var generic map[string]any
	require.NoError(t, json.Unmarshal(signed, &generic))
	pretty, err := json.MarshalIndent(generic, "", "\t") // escapes <>&, reorders nothing important
	require.NoError(t, err)
	escaped := bytes.Replace(pretty, []byte(`"acme"`), []byte(`"\u0061cme"`), 1)
	for name, data := range map[string][]byte{"pretty": pretty, "escaped": escaped} {
		got, err := v.Verify(data)
		require.NoError(t, err, name)
		assert.Equal(t, r, got, name)
	}
}

func BenchmarkSign(b *testing.B) {
	s, key := testKey(b)
	r := fullReceipt()
	signed, err := Sign(context.Background(), s, r)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("Sign", func(b *testing.B) {
		b.SetBytes(int64(len(signed))) // about 1 KB
		b.ReportAllocs()
		ctx := context.Background()
		for b.Loop() {
			if _, err := Sign(ctx, s, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Sign with a signer that costs nothing: the overhead of Sign itself.
	b.Run("overhead", func(b *testing.B) {
		b.ReportAllocs()
		stub := stubSigner{kid: s.KeyID(), pub: s.Public(), sig: make([]byte, ed25519.SignatureSize)}
		ctx := context.Background()
		for b.Loop() {
			if _, err := Sign(ctx, stub, r); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The ed25519 signature alone, for the overhead of Sign.
	b.Run("ed25519", func(b *testing.B) {
		unsigned := *r
		unsigned.Signature = nil
		msg, err := unsigned.MarshalCanonical()
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(msg)))
		b.ReportAllocs()
		for b.Loop() {
			ed25519.Sign(key, msg)
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	v, s := testVerifier(b)
	signed, err := Sign(context.Background(), s, fullReceipt())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(signed)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(signed); err != nil {
			b.Fatal(err)
		}
	}
}
