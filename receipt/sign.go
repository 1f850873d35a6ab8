package receipt

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"
)

// ErrInvalid is returned (wrapped) by [Sign], [SignEvent] and the
// verifiers when a receipt or event is not valid v1: a required member is
// missing or empty, a value has the wrong type or form, or the spec is
// not the expected one.
var ErrInvalid = errors.New("not valid v1")

// Sign validates r, signs its canonical form without the signature member
// with s, sets r.Signature to {Alg: "EdDSA", Kid: s.KeyID(), Sig: base64url
// without padding}, and returns the canonical bytes of the signed receipt.
// Those exact bytes are the ledger leaf, and their [Digest] is the
// prev_receipt_digest of the next receipt of the action.
//
// r is valid when: Spec is [Spec]; ReceiptID, ActionID, TenantID, AgentID,
// Resource.ToolID and Resource.Operation are non-empty; Status and Mode
// are values of format v1; Seq is at least 1 (and at most 2^53-1);
// PrevReceiptDigest is present exactly when Seq > 1; InputDigest,
// and OutputDigest and PrevReceiptDigest when present, have the form
// "sha256:" + 64 lowercase hex digits; IssuedAt is set; every delegation
// hop has a Subject; a Policy, if set, has an ID and every shadow result
// an ID and an Effect; every string is valid UTF-8. Principal.UserID may
// be empty (an action on no user's behalf). A signature already in r is
// ignored and replaced.
//
// Approval, if set, must not be empty and is allowed only on the statuses
// pending_approval, vote, approved, rejected, expired and cancelled, each
// with only the members [Approval] lists for it: on pending_approval a
// Quorum of at least 1 and an ExpiresAt are required; on vote an Approver
// and a Decision ([DecisionApprove] or [DecisionReject]); an Approver
// needs a UserID; list elements must be non-empty. (A receipt of those
// statuses without Approval stays valid: the member was added to format
// v1 later.)
//
// Sign fails with an error wrapping [ErrInvalid] (or [ErrInvalidUTF8],
// [ErrNumberRange]) for an invalid receipt, and with the signer's error if
// signing fails; r is unchanged then.
func Sign(ctx context.Context, s Signer, r *Receipt) ([]byte, error) {
	if s == nil {
		return nil, errors.New("receipt: sign: nil signer")
	}
	if r == nil {
		return nil, errors.New("receipt: sign: nil receipt")
	}
	if err := r.validate(); err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	kid := s.KeyID()
	if kid == "" || !utf8.ValidString(kid) {
		return nil, fmt.Errorf("receipt: sign: signer's key id is empty or not valid UTF-8: %w", ErrInvalid)
	}
	// Encode once, with room for the signature member, which is spliced in
	// at its sorted place (after seq) once the signature is known.
	b, sigAt, err := appendReceipt(make([]byte, 0, r.sizeHint()+len(kid)), r, false)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	sig, err := s.Sign(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("receipt: sign: signer returned %d bytes, want an Ed25519 signature of %d", len(sig), ed25519.SignatureSize)
	}
	b, signature, err := spliceSignature(b, sigAt, kid, sig)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign: %w", err)
	}
	r.Signature = signature
	return b, nil
}

// spliceSignature inserts the signature member (with its leading comma) at
// offset at of the canonical bytes b, in place when b has the capacity.
func spliceSignature(b []byte, at int, kid string, sig []byte) ([]byte, *Signature, error) {
	// What follows the signature member is short (spec, status,
	// tenant_id): move it aside, append the member, put it back.
	var tailBuf [128]byte
	tail := append(tailBuf[:0], b[at:]...)
	e := encoder{b: b[:at]}
	e.raw(`,"signature":{"alg":"` + Alg + `","kid":`)
	e.str("signature.kid", kid)
	e.raw(`,"sig":"`)
	start := len(e.b)
	e.b = base64.RawURLEncoding.AppendEncode(e.b, sig)
	sigText := string(e.b[start:])
	e.raw(`"}`)
	e.b = append(e.b, tail...)
	if e.err != nil {
		return nil, nil, e.err
	}
	return e.b, &Signature{Alg: Alg, Kid: kid, Sig: sigText}, nil
}

// invalid returns an error wrapping ErrInvalid.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)
}

// validate checks everything Sign documents except UTF-8 and number
// ranges, which the encoder checks.
func (r *Receipt) validate() error {
	switch {
	case r.Spec != Spec:
		return invalid("spec is not %s", Spec)
	case r.ReceiptID == "":
		return invalid("missing receipt_id")
	case r.ActionID == "":
		return invalid("missing action_id")
	case r.TenantID == "":
		return invalid("missing tenant_id")
	case r.AgentID == "":
		return invalid("missing agent_id")
	case r.Resource.ToolID == "":
		return invalid("missing resource.tool_id")
	case r.Resource.Operation == "":
		return invalid("missing resource.operation")
	case !r.Status.Valid():
		return invalid("status is not a v1 status")
	case r.Mode != ModeEnforce && r.Mode != ModeShadow:
		return invalid("mode is not enforce or shadow")
	case r.Seq < 1 || r.Seq > maxSafeInteger:
		return invalid("seq is not between 1 and 2^53-1")
	case r.Seq == 1 && r.PrevReceiptDigest != "":
		return invalid("prev_receipt_digest is present with seq 1")
	case r.Seq > 1 && r.PrevReceiptDigest == "":
		return invalid("missing prev_receipt_digest with seq > 1")
	case r.PrevReceiptDigest != "" && !validDigest(r.PrevReceiptDigest):
		return invalid("prev_receipt_digest is not sha256:<64 hex digits>")
	case !validDigest(r.InputDigest):
		return invalid("input_digest is not sha256:<64 hex digits>")
	case r.OutputDigest != "" && !validDigest(r.OutputDigest):
		return invalid("output_digest is not sha256:<64 hex digits>")
	case r.IssuedAt.IsZero():
		return invalid("missing issued_at")
	case r.UpstreamStatus < 0 || r.UpstreamStatus > 999:
		return invalid("upstream_status is not between 0 and 999")
	case len(r.OutputSummary) > 0 && r.Status != StatusExecuted:
		return invalid("output_summary on a %s receipt", r.Status)
	}
	for i, h := range r.Principal.Delegation {
		if h.Subject == "" {
			return invalid("principal.delegation[%d]: missing sub", i)
		}
	}
	if err := r.validateApproval(); err != nil {
		return err
	}
	if p := r.Policy; p != nil {
		if p.ID == "" {
			return invalid("missing policy.id")
		}
		for i, s := range p.Shadow {
			if s.ID == "" {
				return invalid("policy.shadow[%d]: missing id", i)
			}
			if s.Effect == "" {
				return invalid("policy.shadow[%d]: missing effect", i)
			}
		}
	}
	return nil
}

// validateApproval checks the approval member against the status.
func (r *Receipt) validateApproval() error {
	a := r.Approval
	if a == nil {
		return nil
	}
	var requirement, approver, vote, votes bool
	switch r.Status {
	case StatusPendingApproval:
		requirement = true
	case StatusVote:
		approver, vote = true, true
	case StatusApproved, StatusRejected:
		votes = true
	case StatusCancelled:
		approver = true
	case StatusExpired:
	default:
		return invalid("approval is present with status %s", r.Status)
	}
	switch {
	case a.Approver == nil && a.Decision == "" && a.ExpiresAt == nil && a.Quorum == 0 && a.Reason == "" &&
		len(a.Roles) == 0 && !a.StepUp && a.StepUpMethod == "" && len(a.Users) == 0 && len(a.Votes) == 0:
		return invalid("approval is present but empty")
	case !requirement && (a.ExpiresAt != nil || a.Quorum != 0 || len(a.Roles) > 0 || a.StepUp || len(a.Users) > 0):
		return invalid("approval requirement members are present with status %s", r.Status)
	case !approver && a.Approver != nil:
		return invalid("approval.approver is present with status %s", r.Status)
	case !vote && (a.Decision != "" || a.StepUpMethod != ""):
		return invalid("approval.decision or approval.step_up_method is present with status %s", r.Status)
	case !votes && len(a.Votes) > 0:
		return invalid("approval.votes is present with status %s", r.Status)
	case requirement && a.Quorum < 1:
		return invalid("approval.quorum is not at least 1")
	case requirement && (a.ExpiresAt == nil || a.ExpiresAt.IsZero()):
		return invalid("missing approval.expires_at")
	case vote && a.Approver == nil:
		return invalid("missing approval.approver")
	case vote && a.Decision != DecisionApprove && a.Decision != DecisionReject:
		return invalid("approval.decision is not approve or reject")
	case a.Approver != nil && a.Approver.UserID == "":
		return invalid("missing approval.approver.user_id")
	}
	for _, list := range []struct {
		name string
		ss   []string
	}{{"approval.roles", a.Roles}, {"approval.users", a.Users}, {"approval.votes", a.Votes}} {
		if slices.Contains(list.ss, "") {
			return invalid("%s has an empty element", list.name)
		}
	}
	if a.Approver != nil && slices.Contains(a.Approver.Roles, "") {
		return invalid("approval.approver.roles has an empty element")
	}
	return nil
}
