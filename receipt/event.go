package receipt

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/oarsdev/oars/internal/strictjson"
)

// EventSpec is the value of the spec member of every v1 event.
const EventSpec = "oars.event.v1"

// Event is a signed change to what governs actions (format v1): a policy
// loaded or reloaded, a signing key rotated, a passport suspended, a token
// or role granted or revoked, approval settings changed. Events are ledger
// entries beside receipts and share their canonical form and signature.
// Field order follows the RFC 8785 order of the JSON names.
type Event struct {
	// Actor is who made the change.
	Actor string `json:"actor"`
	// Details describes the change: a JSON object (for example the old and
	// new policy digests). [SignEvent] replaces it with its canonical form;
	// empty means {}.
	Details json.RawMessage `json:"details"`
	// Event names the change, for example "policy.reloaded".
	Event string `json:"event"`
	// EventID identifies the event.
	EventID string `json:"event_id"`
	// IssuedAt is when the event was issued; encoded as RFC 3339 in UTC.
	IssuedAt time.Time `json:"issued_at"`
	// Signature is set by [SignEvent]; it covers every other member.
	Signature *Signature `json:"signature,omitempty"`
	// Spec is always [EventSpec].
	Spec string `json:"spec"`
	// TenantID is the tenant the change applies to, if any.
	TenantID string `json:"tenant_id,omitempty"`
}

// validate checks e for SignEvent and the verifiers; details must already
// be canonical.
func (e *Event) validate() error {
	switch {
	case e.Spec != EventSpec:
		return invalid("spec is not %s", EventSpec)
	case e.EventID == "":
		return invalid("missing event_id")
	case e.Event == "":
		return invalid("missing event")
	case e.Actor == "":
		return invalid("missing actor")
	case e.IssuedAt.IsZero():
		return invalid("missing issued_at")
	case len(e.Details) == 0 || e.Details[0] != '{':
		return invalid("details is not a JSON object")
	}
	return nil
}

// appendEvent appends the canonical form of e (whose Details must be
// canonical) and returns the offset of the signature member (after
// issued_at), like appendReceipt.
func appendEvent(dst []byte, e *Event, withSig bool) ([]byte, int, error) {
	enc := encoder{b: dst}
	enc.raw(`{"actor":`)
	enc.str("actor", e.Actor)
	enc.raw(`,"details":`)
	enc.b = append(enc.b, e.Details...)
	enc.raw(`,"event":`)
	enc.str("event", e.Event)
	enc.raw(`,"event_id":`)
	enc.str("event_id", e.EventID)
	enc.raw(`,"issued_at":`)
	enc.time("issued_at", e.IssuedAt)
	sigAt := len(enc.b)
	if withSig && e.Signature != nil {
		enc.appendSignature(e.Signature.Alg, e.Signature.Kid, e.Signature.Sig)
	}
	enc.raw(`,"spec":`)
	enc.str("spec", e.Spec)
	if e.TenantID != "" {
		enc.raw(`,"tenant_id":`)
		enc.str("tenant_id", e.TenantID)
	}
	enc.raw("}")
	if enc.err != nil {
		return dst, 0, enc.err
	}
	return enc.b, sigAt, nil
}

// canonicalDetails returns the canonical form of details ({} if empty),
// which must be a strict JSON object.
func canonicalDetails(details json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(details)) == 0 {
		return json.RawMessage("{}"), nil
	}
	c, err := strictjson.Canonicalize(details)
	if err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	if c[0] != '{' {
		return nil, invalid("details is not a JSON object")
	}
	return c, nil
}

// MarshalCanonical returns the RFC 8785 canonical form of e, including
// its signature if set. Details must be a strict JSON object. It fails
// for invalid UTF-8 (wrapping [ErrInvalidUTF8]), details that are not a
// strict JSON object, or an IssuedAt year outside 0–9999.
func (e *Event) MarshalCanonical() ([]byte, error) {
	c := *e
	var err error
	if c.Details, err = canonicalDetails(e.Details); err != nil {
		return nil, fmt.Errorf("receipt: encode event: %w", err)
	}
	b, _, err := appendEvent(nil, &c, true)
	if err != nil {
		return nil, fmt.Errorf("receipt: encode event: %w", err)
	}
	return b, nil
}

// SignEvent validates e, replaces e.Details with its canonical form, signs
// the canonical form of e without its signature member with s, sets
// e.Signature, and returns the canonical bytes of the signed event (the
// ledger leaf).
//
// e is valid when Spec is [EventSpec], EventID, Event and Actor are
// non-empty, IssuedAt is set, Details is a strict JSON object (or empty,
// meaning {}), and every string is valid UTF-8. SignEvent fails with an
// error wrapping [ErrInvalid] (or a strict JSON sentinel for Details) for
// an invalid event, and with the signer's error if signing fails; e is
// unchanged then.
func SignEvent(ctx context.Context, s Signer, e *Event) ([]byte, error) {
	if s == nil {
		return nil, errors.New("receipt: sign event: nil signer")
	}
	if e == nil {
		return nil, errors.New("receipt: sign event: nil event")
	}
	c := *e
	var err error
	if c.Details, err = canonicalDetails(e.Details); err != nil {
		return nil, fmt.Errorf("receipt: sign event: %w", err)
	}
	if err := c.validate(); err != nil {
		return nil, fmt.Errorf("receipt: sign event: %w", err)
	}
	kid := s.KeyID()
	if kid == "" || !utf8.ValidString(kid) {
		return nil, fmt.Errorf("receipt: sign event: signer's key id is empty or not valid UTF-8: %w", ErrInvalid)
	}
	b, sigAt, err := appendEvent(make([]byte, 0, 300+len(c.Details)+len(c.Actor)+len(c.Event)+len(c.EventID)+len(c.TenantID)+len(kid)), &c, false)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign event: %w", err)
	}
	sig, err := s.Sign(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign event: %w", err)
	}
	if len(sig) != ed25519.SignatureSize {
		return nil, fmt.Errorf("receipt: sign event: signer returned %d bytes, want an Ed25519 signature of %d", len(sig), ed25519.SignatureSize)
	}
	b, signature, err := spliceSignature(b, sigAt, kid, sig)
	if err != nil {
		return nil, fmt.Errorf("receipt: sign event: %w", err)
	}
	e.Details = c.Details
	e.Signature = signature
	return b, nil
}

// VerifyEvent checks one signed event like [Verifier.Verify] checks a
// receipt: strict JSON, a v1 event with every required member of the
// right type (details a JSON object), signed with EdDSA by a key of the
// set over the RFC 8785 form without the signature member. Unknown members
// are accepted. It returns the decoded event (Details in canonical form)
// or a [*VerifyError].
func (v *Verifier) VerifyEvent(data []byte) (*Event, error) {
	canon, verr := canonicalize(data)
	if verr != nil {
		return nil, verr
	}
	e, verr := v.verifyCanonicalEvent(canon)
	if verr != nil {
		return nil, verr
	}
	return e, nil
}

func (v *Verifier) verifyCanonicalEvent(canon []byte) (*Event, *VerifyError) {
	e, sp, err := decodeEvent(canon)
	if err != nil {
		return nil, verifyErr(CheckFormat, err)
	}
	if err := e.validate(); err != nil {
		return nil, verifyErr(CheckFormat, err)
	}
	if verr := v.checkSignature(e.Signature, withoutMember(canon, sp)); verr != nil {
		return nil, verr
	}
	return e, nil
}

// decodeEvent decodes the canonical bytes of an event and returns the span
// of its signature member.
func decodeEvent(canonical []byte) (*Event, span, error) {
	x := newDecoder(canonical)
	e := new(Event)
	var sigSpan span
	req := required{names: []string{"actor", "details", "event", "event_id", "issued_at", "signature", "spec"}}
	err := x.object("", func(name string) (err error) {
		req.see(name)
		switch name {
		case "actor":
			e.Actor, err = x.str(name)
		case "details":
			e.Details, err = x.rawObject(name)
		case "event":
			e.Event, err = x.str(name)
		case "event_id":
			e.EventID, err = x.str(name)
		case "issued_at":
			e.IssuedAt, err = x.time(name)
		case "signature":
			start := x.memberStart
			e.Signature, err = x.signature()
			sigSpan = span{start: int(start), end: int(x.d.InputOffset())}
		case "spec":
			e.Spec, err = x.str(name)
		case "tenant_id":
			e.TenantID, err = x.optStr(name)
		default:
			err = x.skip(name)
		}
		return err
	})
	if err != nil {
		return nil, span{}, err
	}
	if e.Spec != EventSpec {
		return nil, span{}, invalid("spec is not %s", EventSpec) // before naming missing members
	}
	if err := req.check(""); err != nil {
		return nil, span{}, err
	}
	return e, sigSpan, nil
}
