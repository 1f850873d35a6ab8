package receipt

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"

	"github.com/oarsdev/oars/internal/strictjson"
)

// Sentinel errors of verification, wrapped by [*VerifyError]. Test for
// them with errors.Is.
var (
	// ErrUnknownKey: the signature's kid is not in the verifier's key set.
	ErrUnknownKey = errors.New("unknown key id")
	// ErrBadSignature: the Ed25519 signature does not verify.
	ErrBadSignature = errors.New("signature does not verify")
	// ErrBrokenChain: a receipt does not chain to the previous receipt of
	// its action (prev_receipt_digest, action or tenant differ).
	ErrBrokenChain = errors.New("broken chain")
	// ErrBadSeq: a receipt's seq is not the next number of its action.
	ErrBadSeq = errors.New("bad seq")
	// ErrNoKeys: a verifier was asked for with an empty key set.
	ErrNoKeys = errors.New("empty key set")
)

// Check names a verification step; [*VerifyError] says which one failed.
type Check int

// The verification checks, in the order they run.
const (
	// CheckParse: the input is not JSON (syntax error, empty, trailing
	// data).
	CheckParse Check = iota + 1
	// CheckCanonical: the input is JSON but not strict (duplicate keys,
	// invalid UTF-8 or surrogates, numbers out of range, too deep), or a
	// ledger leaf is not exactly in canonical form.
	CheckCanonical
	// CheckFormat: not a v1 receipt or event: a member missing or of the
	// wrong type or form, wrong spec, alg other than EdDSA, malformed sig.
	CheckFormat
	// CheckUnknownKey: no key with the signature's kid.
	CheckUnknownKey
	// CheckSignature: the Ed25519 signature does not verify.
	CheckSignature
	// CheckChain: prev_receipt_digest, action_id or tenant_id do not match
	// the previous receipt of the action.
	CheckChain
	// CheckSeq: seq is not the next number of the action (gap, repeat, or
	// a first receipt with seq other than 1).
	CheckSeq
)

// String returns the check's name as printed in error messages: "parse",
// "canonical", "format", "unknown key", "signature", "chain" or "seq".
func (c Check) String() string {
	switch c {
	case CheckParse:
		return "parse"
	case CheckCanonical:
		return "canonical"
	case CheckFormat:
		return "format"
	case CheckUnknownKey:
		return "unknown key"
	case CheckSignature:
		return "signature"
	case CheckChain:
		return "chain"
	case CheckSeq:
		return "seq"
	}
	return "check(" + strconv.Itoa(int(c)) + ")"
}

// VerifyError reports which check failed verifying a receipt or event.
// Err wraps the cause: a strict JSON sentinel (such as [ErrDuplicateKey])
// for CheckParse and CheckCanonical, [ErrInvalid] for CheckFormat,
// [ErrUnknownKey], [ErrBadSignature], [ErrBrokenChain] or [ErrBadSeq].
type VerifyError struct {
	// Check is the check that failed.
	Check Check
	// Err is the cause.
	Err error
	// Position is the 1-based position, in the input of
	// [Verifier.VerifyChain], of the receipt that failed; 0 for errors of
	// other functions.
	Position int
	// op is the operation in the message: "verify", "entry 17", …
	op string
}

// Error returns a message naming the operation and the failing check, as
// in "receipt: verify: signature: signature does not verify". It never
// includes values from the input.
func (e *VerifyError) Error() string {
	op := e.op
	if op == "" {
		op = "verify"
	}
	return "receipt: " + op + ": " + e.Check.String() + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *VerifyError) Unwrap() error { return e.Err }

func verifyErr(c Check, err error) *VerifyError { return &VerifyError{Check: c, Err: err} }

// Verifier verifies signed receipts and events against a [KeySet]. It is
// safe for concurrent use; keys rotated into the set later are used.
type Verifier struct {
	keys *KeySet
}

// NewVerifier returns a verifier trusting exactly the keys in keys. It
// fails with [ErrNoKeys] if keys is nil or empty.
func NewVerifier(keys *KeySet) (*Verifier, error) {
	if keys == nil || keys.Len() == 0 {
		return nil, fmt.Errorf("receipt: new verifier: %w", ErrNoKeys)
	}
	return &Verifier{keys: keys}, nil
}

// canonicalize checks data strictly and returns its canonical form, or a
// CheckParse or CheckCanonical error.
func canonicalize(data []byte) ([]byte, *VerifyError) {
	canon, err := strictjson.Canonicalize(data)
	if err != nil {
		c := CheckCanonical
		if errors.Is(err, ErrSyntax) || errors.Is(err, ErrEmpty) || errors.Is(err, ErrTrailingData) {
			c = CheckParse
		}
		return nil, verifyErr(c, err)
	}
	return canon, nil
}

// Verify checks one signed receipt: data must be strict JSON (any
// whitespace layout), a v1 receipt with every required member of the
// right type and valid as [Sign] requires, signed with alg EdDSA by a key
// of the verifier's set over the RFC 8785 form of the receipt without its
// signature member. Unknown members are accepted: the signature covers
// them. It returns the decoded receipt, or a [*VerifyError] naming the
// failed check. Verify does not check chaining; see
// [Verifier.VerifyChain] and [LogChecker].
func (v *Verifier) Verify(data []byte) (*Receipt, error) {
	r, _, err := v.verifyReceipt(data)
	if err != nil {
		return nil, err
	}
	return r, nil
}

// verifyReceipt verifies data and returns the receipt and its canonical
// form.
func (v *Verifier) verifyReceipt(data []byte) (*Receipt, []byte, *VerifyError) {
	canon, verr := canonicalize(data)
	if verr != nil {
		return nil, nil, verr
	}
	r, verr := v.verifyCanonicalReceipt(canon)
	if verr != nil {
		return nil, nil, verr
	}
	return r, canon, nil
}

// verifyCanonicalReceipt verifies the canonical form of a receipt.
func (v *Verifier) verifyCanonicalReceipt(canon []byte) (*Receipt, *VerifyError) {
	r, sp, err := decodeReceipt(canon)
	if err != nil {
		return nil, verifyErr(CheckFormat, err)
	}
	if err := r.validate(); err != nil {
		return nil, verifyErr(CheckFormat, err)
	}
	if verr := v.checkSignature(r.Signature, withoutMember(canon, sp)); verr != nil {
		return nil, verr
	}
	return r, nil
}

// checkSignature verifies sig over message.
func (v *Verifier) checkSignature(sig *Signature, message []byte) *VerifyError {
	if sig.Alg != Alg {
		return verifyErr(CheckFormat, invalid("signature.alg is not %s", Alg))
	}
	if sig.Kid == "" {
		return verifyErr(CheckFormat, invalid("signature.kid is empty"))
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(sig.Sig)
	if err != nil || len(raw) != ed25519.SignatureSize {
		return verifyErr(CheckFormat, invalid("signature.sig is not a base64url (unpadded) Ed25519 signature"))
	}
	pub, ok := v.keys.lookup(sig.Kid)
	if !ok {
		return verifyErr(CheckUnknownKey, ErrUnknownKey)
	}
	if !ed25519.Verify(pub, message, raw) {
		return verifyErr(CheckSignature, ErrBadSignature)
	}
	return nil
}

// VerifyChain verifies the receipts of one action, in order: each with
// [Verifier.Verify], and that they chain: seq is 1, 2, 3, … (else
// [CheckSeq]), and every receipt has the action_id and tenant_id of the
// first and a prev_receipt_digest equal to the [Digest] of the canonical
// form of the receipt before it (else [CheckChain]). It returns the
// decoded receipts, or a [*VerifyError] whose message names the position
// (from 1) of the first receipt that failed.
func (v *Verifier) VerifyChain(receipts [][]byte) ([]*Receipt, error) {
	if len(receipts) == 0 {
		return nil, &VerifyError{Check: CheckChain, Err: fmt.Errorf("%w: no receipts", ErrBrokenChain), op: "verify chain"}
	}
	out := make([]*Receipt, 0, len(receipts))
	var prevDigest string
	for i, data := range receipts {
		r, canon, verr := v.verifyReceipt(data)
		if verr == nil {
			if i == 0 {
				verr = checkFirst(r)
			} else {
				verr = checkNext(r, out[i-1], prevDigest)
			}
		}
		if verr != nil {
			verr.Position = i + 1
			verr.op = "verify chain: receipt " + strconv.Itoa(i+1)
			return nil, verr
		}
		out = append(out, r)
		prevDigest = Digest(canon)
	}
	return out, nil
}

// checkFirst checks that r can start a chain.
func checkFirst(r *Receipt) *VerifyError {
	if r.Seq != 1 {
		return verifyErr(CheckSeq, fmt.Errorf("%w: first receipt of the action has seq %d, want 1", ErrBadSeq, r.Seq))
	}
	return nil
}

// checkNext checks that r follows prev, whose canonical form has digest
// prevDigest.
func checkNext(r, prev *Receipt, prevDigest string) *VerifyError {
	switch {
	case r.ActionID != prev.ActionID:
		return verifyErr(CheckChain, fmt.Errorf("%w: action_id differs from the previous receipt's", ErrBrokenChain))
	case r.TenantID != prev.TenantID:
		return verifyErr(CheckChain, fmt.Errorf("%w: tenant_id differs from the previous receipt's", ErrBrokenChain))
	case r.Seq != prev.Seq+1:
		return verifyErr(CheckSeq, fmt.Errorf("%w: seq %d follows seq %d", ErrBadSeq, r.Seq, prev.Seq))
	case r.PrevReceiptDigest != prevDigest:
		return verifyErr(CheckChain, fmt.Errorf("%w: prev_receipt_digest is not the digest of the previous receipt", ErrBrokenChain))
	}
	return nil
}
