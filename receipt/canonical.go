package receipt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/oarsdev/oars/internal/strictjson"
)

// Errors for input that is not strict JSON, returned (wrapped) by
// [Canonicalize], [DigestJSON] and the verifiers, and by the receipt
// encoder for strings that are not valid UTF-8 and numbers out of range.
// Test for them with errors.Is.
var (
	// ErrSyntax: the input is not JSON.
	ErrSyntax = strictjson.ErrSyntax
	// ErrDuplicateKey: an object has two members with the same name (after
	// unescaping).
	ErrDuplicateKey = strictjson.ErrDuplicateKey
	// ErrInvalidUTF8: invalid UTF-8, or an escape that is not a Unicode
	// scalar value (a lone surrogate).
	ErrInvalidUTF8 = strictjson.ErrInvalidUTF8
	// ErrNumberRange: a number that is not a finite IEEE 754 double, or a
	// receipt seq beyond ±(2^53-1).
	ErrNumberRange = strictjson.ErrNumberRange
	// ErrTooDeep: nesting deeper than [MaxDepth].
	ErrTooDeep = strictjson.ErrTooDeep
	// ErrTrailingData: something other than whitespace after the value.
	ErrTrailingData = strictjson.ErrTrailingData
	// ErrEmpty: empty input.
	ErrEmpty = strictjson.ErrEmpty
)

// MaxDepth is the deepest nesting of objects and arrays [Canonicalize]
// accepts.
const MaxDepth = strictjson.MaxDepth

// maxSafeInteger is the largest integer every IEEE 754 double reader
// (and so RFC 8785) represents exactly: 2^53-1.
const maxSafeInteger = 1<<53 - 1

// Canonicalize returns the RFC 8785 (JCS) canonical form of the JSON value
// in data, in a new slice. The input must be strict: one value, no
// duplicate keys, valid UTF-8 without lone surrogates, finite numbers and
// at most [MaxDepth] levels of nesting; anything else is rejected (never
// repaired) with an error wrapping [ErrSyntax], [ErrDuplicateKey],
// [ErrInvalidUTF8], [ErrNumberRange], [ErrTooDeep], [ErrTrailingData] or
// [ErrEmpty]. Error messages give the location, never input values.
func Canonicalize(data []byte) ([]byte, error) {
	out, err := strictjson.Canonicalize(data)
	if err != nil {
		return nil, fmt.Errorf("receipt: canonicalize: %w", err)
	}
	return out, nil
}

// Digest returns "sha256:" followed by the lowercase hex SHA-256 of
// canonical. It hashes the bytes as given: canonicalize first.
func Digest(canonical []byte) string {
	sum := sha256.Sum256(canonical)
	var b [7 + 2*sha256.Size]byte
	copy(b[:], "sha256:")
	hex.Encode(b[7:], sum[:])
	return string(b[:])
}

// DigestJSON returns the [Digest] of the canonical form of the JSON value
// in data. It fails like [Canonicalize].
func DigestJSON(data []byte) (string, error) {
	c, err := Canonicalize(data)
	if err != nil {
		return "", err
	}
	return Digest(c), nil
}

// validDigest reports whether s has the form "sha256:" + 64 lowercase hex
// digits.
func validDigest(s string) bool {
	if len(s) != 7+2*sha256.Size || s[:7] != "sha256:" {
		return false
	}
	for i := 7; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// MarshalCanonical returns the RFC 8785 canonical JSON form of r, including
// its signature if set. The result is byte for byte what RFC 8785 makes of
// encoding/json's output for r, except that IssuedAt and
// Approval.ExpiresAt are written in UTC and that it fails instead of
// replacing invalid UTF-8 (error wrapping [ErrInvalidUTF8]) or rounding a
// Seq or Approval.Quorum beyond ±(2^53-1) (error wrapping
// [ErrNumberRange]). It also fails for an IssuedAt or Approval.ExpiresAt
// year outside 0–9999. It does not validate the receipt's contents; [Sign]
// does.
func (r *Receipt) MarshalCanonical() ([]byte, error) {
	return r.AppendCanonical(make([]byte, 0, r.sizeHint()))
}

// AppendCanonical appends the canonical form of r (see
// [Receipt.MarshalCanonical]) to dst and returns the extended slice. On
// error it returns dst unchanged.
func (r *Receipt) AppendCanonical(dst []byte) ([]byte, error) {
	b, _, err := appendReceipt(dst, r, true)
	if err != nil {
		return dst, fmt.Errorf("receipt: encode: %w", err)
	}
	return b, nil
}

// sizeHint estimates the length of r's canonical form with a signature.
func (r *Receipt) sizeHint() int {
	n := 400 + len(r.ActionID) + len(r.AgentID) + len(r.ErrorClass) + len(r.InputDigest) +
		len(r.OutputDigest) + len(r.PrevReceiptDigest) + len(r.ReceiptID) + len(r.TenantID) +
		len(r.Principal.UserID) + len(r.Resource.Operation) + len(r.Resource.Target) + len(r.Resource.ToolID)
	for _, s := range r.Reasons {
		n += len(s) + 3
	}
	for _, h := range r.Principal.Delegation {
		n += 30 + len(h.Issuer) + len(h.Subject)
		for _, s := range h.Scope {
			n += len(s) + 3
		}
	}
	if p := r.Policy; p != nil {
		n += 60 + len(p.Digest) + len(p.ID) + len(p.Version)
		for _, s := range p.MatchedRules {
			n += len(s) + 3
		}
		for _, sh := range p.Shadow {
			n += 70 + len(sh.Digest) + len(sh.Effect) + len(sh.ID) + len(sh.Version)
			for _, s := range sh.MatchedRules {
				n += len(s) + 3
			}
		}
	}
	if a := r.Approval; a != nil {
		n += 150 + len(a.Decision) + len(a.Reason) + len(a.StepUpMethod)
		if a.Approver != nil {
			n += 30 + len(a.Approver.UserID)
			for _, s := range a.Approver.Roles {
				n += len(s) + 3
			}
		}
		for _, list := range [][]string{a.Roles, a.Users, a.Votes} {
			for _, s := range list {
				n += len(s) + 3
			}
		}
	}
	n += n / 8
	return n
}

// encoder appends canonical JSON and keeps the first error.
type encoder struct {
	b   []byte
	err error
}

func (e *encoder) raw(s string) { e.b = append(e.b, s...) }

// str appends s as a canonical JSON string; field names the member in the
// error for invalid UTF-8.
func (e *encoder) str(field, s string) {
	var ok bool
	e.b, ok = appendString(e.b, s)
	if !ok && e.err == nil {
		e.err = fmt.Errorf("%s: %w", field, ErrInvalidUTF8)
	}
}

// strs appends a JSON array of strings.
func (e *encoder) strs(field string, ss []string) {
	e.b = append(e.b, '[')
	for i, s := range ss {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.str(field, s)
	}
	e.b = append(e.b, ']')
}

// time appends t as an RFC 3339 string in UTC with trailing zeros of the
// fraction trimmed, as encoding/json writes a UTC time.
func (e *encoder) time(field string, t time.Time) {
	t = t.UTC()
	if y := t.Year(); y < 0 || y > 9999 {
		if e.err == nil {
			e.err = fmt.Errorf("%s: year outside of range [0,9999]", field)
		}
		return
	}
	e.b = append(e.b, '"')
	e.b = t.AppendFormat(e.b, time.RFC3339Nano)
	e.b = append(e.b, '"')
}

// int appends n, which must be exactly representable as a double.
func (e *encoder) int(field string, n int64) {
	if n > maxSafeInteger || n < -maxSafeInteger {
		if e.err == nil {
			e.err = fmt.Errorf("%s: %w", field, ErrNumberRange)
		}
		return
	}
	e.b = strconv.AppendInt(e.b, n, 10)
}

// summary appends the canonical form of the output summary object.
func (e *encoder) summary(v []byte) {
	c, err := strictjson.Canonicalize(v)
	switch {
	case err != nil:
		if e.err == nil {
			e.err = fmt.Errorf("output_summary: %w", err)
		}
		return
	case len(c) == 0 || c[0] != '{':
		if e.err == nil {
			e.err = fmt.Errorf("%w: output_summary is not a JSON object", ErrInvalid)
		}
		return
	case len(c) > MaxSummaryBytes:
		if e.err == nil {
			e.err = fmt.Errorf("%w: output_summary is longer than %d bytes", ErrInvalid, MaxSummaryBytes)
		}
		return
	}
	e.b = append(e.b, c...)
}

// appendReceipt appends the canonical form of r to dst, with the signature
// member if withSig and r.Signature != nil. It also returns the offset in
// the result where the signature member sits or would be inserted: right
// after the seq value. Members are written in RFC 8785 order (all names
// are ASCII, so byte order is UTF-16 order).
func appendReceipt(dst []byte, r *Receipt, withSig bool) ([]byte, int, error) {
	e := encoder{b: dst}
	e.raw(`{"action_id":`)
	e.str("action_id", r.ActionID)
	e.raw(`,"agent_id":`)
	e.str("agent_id", r.AgentID)
	if r.Approval != nil {
		e.appendApproval(r.Approval)
	}
	if r.ErrorClass != "" {
		e.raw(`,"error_class":`)
		e.str("error_class", r.ErrorClass)
	}
	e.raw(`,"input_digest":`)
	e.str("input_digest", r.InputDigest)
	e.raw(`,"issued_at":`)
	e.time("issued_at", r.IssuedAt)
	e.raw(`,"mode":`)
	e.str("mode", string(r.Mode))
	if r.OutputDigest != "" {
		e.raw(`,"output_digest":`)
		e.str("output_digest", r.OutputDigest)
	}
	if len(r.OutputSummary) > 0 {
		e.raw(`,"output_summary":`)
		e.summary(r.OutputSummary)
	}
	if p := r.Policy; p != nil {
		e.raw(`,"policy":{"digest":`)
		e.str("policy.digest", p.Digest)
		e.raw(`,"id":`)
		e.str("policy.id", p.ID)
		if len(p.MatchedRules) > 0 {
			e.raw(`,"matched_rules":`)
			e.strs("policy.matched_rules", p.MatchedRules)
		}
		if len(p.Shadow) > 0 {
			e.raw(`,"shadow":[`)
			for i := range p.Shadow {
				s := &p.Shadow[i]
				if i > 0 {
					e.raw(",")
				}
				e.raw(`{"digest":`)
				e.str("policy.shadow.digest", s.Digest)
				e.raw(`,"effect":`)
				e.str("policy.shadow.effect", s.Effect)
				e.raw(`,"id":`)
				e.str("policy.shadow.id", s.ID)
				if len(s.MatchedRules) > 0 {
					e.raw(`,"matched_rules":`)
					e.strs("policy.shadow.matched_rules", s.MatchedRules)
				}
				e.raw(`,"version":`)
				e.str("policy.shadow.version", s.Version)
				e.raw("}")
			}
			e.raw("]")
		}
		e.raw(`,"version":`)
		e.str("policy.version", p.Version)
		e.raw("}")
	}
	if r.PrevReceiptDigest != "" {
		e.raw(`,"prev_receipt_digest":`)
		e.str("prev_receipt_digest", r.PrevReceiptDigest)
	}
	e.raw(`,"principal":{`)
	if len(r.Principal.Delegation) > 0 {
		e.raw(`"delegation":[`)
		for i := range r.Principal.Delegation {
			h := &r.Principal.Delegation[i]
			if i > 0 {
				e.raw(",")
			}
			e.raw("{")
			if h.Issuer != "" {
				e.raw(`"iss":`)
				e.str("principal.delegation.iss", h.Issuer)
				e.raw(",")
			}
			if len(h.Scope) > 0 {
				e.raw(`"scope":`)
				e.strs("principal.delegation.scope", h.Scope)
				e.raw(",")
			}
			e.raw(`"sub":`)
			e.str("principal.delegation.sub", h.Subject)
			e.raw("}")
		}
		e.raw("],")
	}
	e.raw(`"user_id":`)
	e.str("principal.user_id", r.Principal.UserID)
	e.raw("}")
	if len(r.Reasons) > 0 {
		e.raw(`,"reasons":`)
		e.strs("reasons", r.Reasons)
	}
	e.raw(`,"receipt_id":`)
	e.str("receipt_id", r.ReceiptID)
	e.raw(`,"resource":{"operation":`)
	e.str("resource.operation", r.Resource.Operation)
	if r.Resource.Target != "" {
		e.raw(`,"target":`)
		e.str("resource.target", r.Resource.Target)
	}
	e.raw(`,"tool_id":`)
	e.str("resource.tool_id", r.Resource.ToolID)
	e.raw(`},"seq":`)
	e.int("seq", r.Seq)
	sigAt := len(e.b)
	if withSig && r.Signature != nil {
		e.appendSignature(r.Signature.Alg, r.Signature.Kid, r.Signature.Sig)
	}
	e.raw(`,"spec":`)
	e.str("spec", r.Spec)
	e.raw(`,"status":`)
	e.str("status", string(r.Status))
	e.raw(`,"tenant_id":`)
	e.str("tenant_id", r.TenantID)
	if r.UpstreamStatus != 0 {
		e.raw(`,"upstream_status":`)
		e.int("upstream_status", r.UpstreamStatus)
	}
	e.raw("}")
	if e.err != nil {
		return dst, 0, e.err
	}
	return e.b, sigAt, nil
}

// appendApproval appends the approval member, with its leading comma.
// Members are written in RFC 8785 order, empty ones omitted as
// encoding/json's omitempty does.
func (e *encoder) appendApproval(a *Approval) {
	e.raw(`,"approval":{`)
	sep := ""
	member := func(name string) {
		e.raw(sep + `"` + name + `":`)
		sep = ","
	}
	if p := a.Approver; p != nil {
		member("approver")
		e.raw("{")
		if len(p.Roles) > 0 {
			e.raw(`"roles":`)
			e.strs("approval.approver.roles", p.Roles)
			e.raw(",")
		}
		e.raw(`"user_id":`)
		e.str("approval.approver.user_id", p.UserID)
		e.raw("}")
	}
	if a.Decision != "" {
		member("decision")
		e.str("approval.decision", a.Decision)
	}
	if a.ExpiresAt != nil {
		member("expires_at")
		e.time("approval.expires_at", *a.ExpiresAt)
	}
	if a.Quorum != 0 {
		member("quorum")
		e.int("approval.quorum", int64(a.Quorum))
	}
	if a.Reason != "" {
		member("reason")
		e.str("approval.reason", a.Reason)
	}
	if len(a.Roles) > 0 {
		member("roles")
		e.strs("approval.roles", a.Roles)
	}
	if a.StepUp {
		member("step_up")
		e.raw("true")
	}
	if a.StepUpMethod != "" {
		member("step_up_method")
		e.str("approval.step_up_method", a.StepUpMethod)
	}
	if len(a.Users) > 0 {
		member("users")
		e.strs("approval.users", a.Users)
	}
	if len(a.Votes) > 0 {
		member("votes")
		e.strs("approval.votes", a.Votes)
	}
	e.raw("}")
}

// appendSignature appends the signature member, with its leading comma.
func (e *encoder) appendSignature(alg, kid, sig string) {
	e.raw(`,"signature":{"alg":`)
	e.str("signature.alg", alg)
	e.raw(`,"kid":`)
	e.str("signature.kid", kid)
	e.raw(`,"sig":`)
	e.str("signature.sig", sig)
	e.raw("}")
}

// plainASCII reports the bytes a string holds as they are in RFC 8785 form
// and that need no UTF-8 check: printable ASCII but '"' and '\\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// appendString appends s as an RFC 8785 JSON string: '"' and '\' escaped,
// control characters as \b \f \n \r \t or \u00xx (lowercase hex), every
// other character (including non-ASCII, U+2028/U+2029 and <>&) as is. It
// reports false if s is not valid UTF-8.
func appendString(dst []byte, s string) ([]byte, bool) {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return dst, false
			}
			i += n
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		i++
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}
