package receipt

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// The decoders here read the canonical form of an already strictly checked
// document. They accept unknown members (the signature covers them) but
// require known members to have exactly the type and form the encoder
// writes: no nulls, no empty optional strings or arrays, integers for seq,
// issued_at in the canonical UTC form. So a receipt that verifies encodes
// back to the same canonical bytes, unknown members aside.

// decoder reads JSON values with type checks; errors wrap ErrInvalid.
type decoder struct {
	d *jsontext.Decoder
	// memberStart is the input offset where the member being read by an
	// object callback begins: after the previous value or the '{'.
	memberStart int64
}

func newDecoder(canonical []byte) *decoder {
	return &decoder{d: jsontext.NewDecoder(bytes.NewBuffer(canonical))}
}

// object reads an object, calling member for each member name; member
// must read or skip the value. field names the object in errors.
func (x *decoder) object(field string, member func(name string) error) error {
	tok, err := x.d.ReadToken()
	if err != nil || tok.Kind() != '{' {
		return invalid("%s is not an object", orTop(field))
	}
	for {
		switch x.d.PeekKind() {
		case '}':
			_, err := x.d.ReadToken()
			if err != nil {
				return invalid("%s is not an object", orTop(field))
			}
			return nil
		case '"':
		default:
			return invalid("%s is not an object", orTop(field))
		}
		x.memberStart = x.d.InputOffset()
		name, err := x.d.ReadToken()
		if err != nil {
			return invalid("%s is not an object", orTop(field))
		}
		if err := member(name.String()); err != nil {
			return err
		}
	}
}

func orTop(field string) string {
	if field == "" {
		return "document"
	}
	return field
}

// skip skips the next value.
func (x *decoder) skip(field string) error {
	if err := x.d.SkipValue(); err != nil {
		return invalid("%s is not valid", field)
	}
	return nil
}

// str reads a string.
func (x *decoder) str(field string) (string, error) {
	if x.d.PeekKind() != '"' {
		_ = x.d.SkipValue()
		return "", invalid("%s is not a string", field)
	}
	tok, err := x.d.ReadToken()
	if err != nil {
		return "", invalid("%s is not a string", field)
	}
	return tok.String(), nil
}

// optStr reads a string that, being omitted when empty, must not be empty.
func (x *decoder) optStr(field string) (string, error) {
	s, err := x.str(field)
	if err == nil && s == "" {
		return "", invalid("%s is present but empty", field)
	}
	return s, err
}

// strs reads a non-empty array of strings (arrays are omitted when empty).
func (x *decoder) strs(field string) ([]string, error) {
	tok, err := x.d.ReadToken()
	if err != nil || tok.Kind() != '[' {
		return nil, invalid("%s is not an array", field)
	}
	var out []string
	for x.d.PeekKind() != ']' {
		s, err := x.str(field + " element")
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if _, err := x.d.ReadToken(); err != nil {
		return nil, invalid("%s is not an array", field)
	}
	if len(out) == 0 {
		return nil, invalid("%s is present but empty", field)
	}
	return out, nil
}

// array reads a non-empty array, calling elem for each element; elem must
// read the value.
func (x *decoder) array(field string, elem func() error) error {
	tok, err := x.d.ReadToken()
	if err != nil || tok.Kind() != '[' {
		return invalid("%s is not an array", field)
	}
	n := 0
	for x.d.PeekKind() != ']' {
		if x.d.PeekKind() == 0 {
			return invalid("%s is not an array", field)
		}
		if err := elem(); err != nil {
			return err
		}
		n++
	}
	if _, err := x.d.ReadToken(); err != nil {
		return invalid("%s is not an array", field)
	}
	if n == 0 {
		return invalid("%s is present but empty", field)
	}
	return nil
}

// time reads a time in the canonical form: RFC 3339, UTC ("Z"), fraction
// without trailing zeros.
func (x *decoder) time(field string) (time.Time, error) {
	s, err := x.str(field)
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.UTC().Format(time.RFC3339Nano) != s {
		return time.Time{}, invalid("%s is not an RFC 3339 UTC time in canonical form", field)
	}
	return t.UTC(), nil
}

// int reads an integer within ±(2^53-1).
func (x *decoder) int(field string) (int64, error) {
	if x.d.PeekKind() != '0' {
		_ = x.d.SkipValue()
		return 0, invalid("%s is not a number", field)
	}
	v, err := x.d.ReadValue()
	if err != nil {
		return 0, invalid("%s is not a number", field)
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n > maxSafeInteger || n < -maxSafeInteger {
		return 0, invalid("%s is not an integer between -(2^53-1) and 2^53-1", field)
	}
	return n, nil
}

// rawObject reads an object and returns a copy of its canonical bytes.
func (x *decoder) rawObject(field string) (json.RawMessage, error) {
	if x.d.PeekKind() != '{' {
		_ = x.d.SkipValue()
		return nil, invalid("%s is not an object", field)
	}
	v, err := x.d.ReadValue()
	if err != nil {
		return nil, invalid("%s is not an object", field)
	}
	return json.RawMessage(bytes.Clone(v)), nil
}

// required tracks which required members an object had.
type required struct {
	names []string
	seen  uint32
}

func (q *required) see(name string) {
	for i, n := range q.names {
		if n == name {
			q.seen |= 1 << i
		}
	}
}

// check returns an error naming the first missing member.
func (q *required) check(prefix string) error {
	for i, n := range q.names {
		if q.seen&(1<<i) == 0 {
			return invalid("missing %s%s", prefix, n)
		}
	}
	return nil
}

// span is the byte range of the signature member in a canonical document,
// including the comma that separates it from its neighbours.
type span struct{ start, end int }

// decodeReceipt decodes the canonical bytes of a receipt and returns the
// span of its signature member.
func decodeReceipt(canonical []byte) (*Receipt, span, error) {
	x := newDecoder(canonical)
	r := new(Receipt)
	var sigSpan span
	req := required{names: []string{"action_id", "agent_id", "input_digest", "issued_at", "mode",
		"principal", "receipt_id", "resource", "seq", "signature", "spec", "status", "tenant_id"}}
	err := x.object("", func(name string) (err error) {
		req.see(name)
		switch name {
		case "action_id":
			r.ActionID, err = x.str(name)
		case "agent_id":
			r.AgentID, err = x.str(name)
		case "approval":
			r.Approval, err = x.approval()
		case "error_class":
			r.ErrorClass, err = x.optStr(name)
		case "input_digest":
			r.InputDigest, err = x.str(name)
		case "issued_at":
			r.IssuedAt, err = x.time(name)
		case "mode":
			var s string
			s, err = x.str(name)
			r.Mode = Mode(s)
		case "output_digest":
			r.OutputDigest, err = x.optStr(name)
		case "output_summary":
			r.OutputSummary, err = x.rawObject(name)
		case "policy":
			r.Policy, err = x.policy()
		case "prev_receipt_digest":
			r.PrevReceiptDigest, err = x.optStr(name)
		case "principal":
			err = x.principal(&r.Principal)
		case "reasons":
			r.Reasons, err = x.strs(name)
		case "receipt_id":
			r.ReceiptID, err = x.str(name)
		case "resource":
			err = x.resource(&r.Resource)
		case "seq":
			r.Seq, err = x.int(name)
		case "signature":
			start := x.memberStart
			r.Signature, err = x.signature()
			sigSpan = span{start: int(start), end: int(x.d.InputOffset())}
		case "spec":
			r.Spec, err = x.str(name)
		case "status":
			var s string
			s, err = x.str(name)
			r.Status = Status(s)
		case "tenant_id":
			r.TenantID, err = x.str(name)
		case "upstream_status":
			r.UpstreamStatus, err = x.int(name)
		default:
			err = x.skip(name)
		}
		return err
	})
	if err != nil {
		return nil, span{}, err
	}
	if r.Spec != Spec {
		return nil, span{}, invalid("spec is not %s", Spec) // before naming missing members
	}
	if err := req.check(""); err != nil {
		return nil, span{}, err
	}
	return r, sigSpan, nil
}

// trueLit reads the literal true (a boolean member omitted when false must
// not be false).
func (x *decoder) trueLit(field string) (bool, error) {
	if x.d.PeekKind() != 't' {
		_ = x.d.SkipValue()
		return false, invalid("%s is not true", field)
	}
	if _, err := x.d.ReadToken(); err != nil {
		return false, invalid("%s is not true", field)
	}
	return true, nil
}

func (x *decoder) approval() (*Approval, error) {
	a := new(Approval)
	err := x.object("approval", func(name string) (err error) {
		switch name {
		case "approver":
			a.Approver, err = x.approver()
		case "decision":
			a.Decision, err = x.optStr("approval.decision")
		case "expires_at":
			var t time.Time
			t, err = x.time("approval.expires_at")
			a.ExpiresAt = &t
		case "quorum":
			var n int64
			n, err = x.int("approval.quorum")
			if err == nil && n == 0 {
				err = invalid("approval.quorum is present but zero")
			}
			a.Quorum = int(n)
		case "reason":
			a.Reason, err = x.optStr("approval.reason")
		case "roles":
			a.Roles, err = x.strs("approval.roles")
		case "step_up":
			a.StepUp, err = x.trueLit("approval.step_up")
		case "step_up_method":
			a.StepUpMethod, err = x.optStr("approval.step_up_method")
		case "users":
			a.Users, err = x.strs("approval.users")
		case "votes":
			a.Votes, err = x.strs("approval.votes")
		default:
			err = x.skip("approval." + name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

func (x *decoder) approver() (*Approver, error) {
	p := new(Approver)
	req := required{names: []string{"user_id"}}
	err := x.object("approval.approver", func(name string) (err error) {
		req.see(name)
		switch name {
		case "roles":
			p.Roles, err = x.strs("approval.approver.roles")
		case "user_id":
			p.UserID, err = x.str("approval.approver.user_id")
		default:
			err = x.skip("approval.approver." + name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, req.check("approval.approver.")
}

func (x *decoder) policy() (*PolicyRef, error) {
	p := new(PolicyRef)
	req := required{names: []string{"digest", "id", "version"}}
	err := x.object("policy", func(name string) (err error) {
		req.see(name)
		switch name {
		case "digest":
			p.Digest, err = x.str("policy.digest")
		case "id":
			p.ID, err = x.str("policy.id")
		case "matched_rules":
			p.MatchedRules, err = x.strs("policy.matched_rules")
		case "shadow":
			err = x.array("policy.shadow", func() error {
				s, err := x.shadow()
				if err == nil {
					p.Shadow = append(p.Shadow, s)
				}
				return err
			})
		case "version":
			p.Version, err = x.str("policy.version")
		default:
			err = x.skip("policy." + name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return p, req.check("policy.")
}

func (x *decoder) shadow() (ShadowResult, error) {
	var s ShadowResult
	req := required{names: []string{"digest", "effect", "id", "version"}}
	err := x.object("policy.shadow element", func(name string) (err error) {
		req.see(name)
		switch name {
		case "digest":
			s.Digest, err = x.str("policy.shadow.digest")
		case "effect":
			s.Effect, err = x.str("policy.shadow.effect")
		case "id":
			s.ID, err = x.str("policy.shadow.id")
		case "matched_rules":
			s.MatchedRules, err = x.strs("policy.shadow.matched_rules")
		case "version":
			s.Version, err = x.str("policy.shadow.version")
		default:
			err = x.skip("policy.shadow." + name)
		}
		return err
	})
	if err != nil {
		return s, err
	}
	return s, req.check("policy.shadow.")
}

func (x *decoder) principal(p *Principal) error {
	req := required{names: []string{"user_id"}}
	err := x.object("principal", func(name string) (err error) {
		req.see(name)
		switch name {
		case "delegation":
			err = x.array("principal.delegation", func() error {
				h, err := x.hop()
				if err == nil {
					p.Delegation = append(p.Delegation, h)
				}
				return err
			})
		case "user_id":
			p.UserID, err = x.str("principal.user_id")
		default:
			err = x.skip("principal." + name)
		}
		return err
	})
	if err != nil {
		return err
	}
	return req.check("principal.")
}

func (x *decoder) hop() (DelegationHop, error) {
	var h DelegationHop
	req := required{names: []string{"sub"}}
	err := x.object("principal.delegation element", func(name string) (err error) {
		req.see(name)
		switch name {
		case "iss":
			h.Issuer, err = x.optStr("principal.delegation.iss")
		case "scope":
			h.Scope, err = x.strs("principal.delegation.scope")
		case "sub":
			h.Subject, err = x.str("principal.delegation.sub")
		default:
			err = x.skip("principal.delegation." + name)
		}
		return err
	})
	if err != nil {
		return h, err
	}
	return h, req.check("principal.delegation.")
}

func (x *decoder) resource(r *Resource) error {
	req := required{names: []string{"operation", "tool_id"}}
	err := x.object("resource", func(name string) (err error) {
		req.see(name)
		switch name {
		case "operation":
			r.Operation, err = x.str("resource.operation")
		case "target":
			r.Target, err = x.optStr("resource.target")
		case "tool_id":
			r.ToolID, err = x.str("resource.tool_id")
		default:
			err = x.skip("resource." + name)
		}
		return err
	})
	if err != nil {
		return err
	}
	return req.check("resource.")
}

func (x *decoder) signature() (*Signature, error) {
	s := new(Signature)
	req := required{names: []string{"alg", "kid", "sig"}}
	err := x.object("signature", func(name string) (err error) {
		req.see(name)
		switch name {
		case "alg":
			s.Alg, err = x.str("signature.alg")
		case "kid":
			s.Kid, err = x.str("signature.kid")
		case "sig":
			s.Sig, err = x.str("signature.sig")
		default:
			err = x.skip("signature." + name)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, req.check("signature.")
}

// withoutMember returns a copy of canonical with the member at sp removed,
// keeping the result canonical (members stay sorted, commas balanced).
// sp.start is where the previous value ended (or just after '{').
func withoutMember(canonical []byte, sp span) []byte {
	start, end := sp.start, sp.end
	if canonical[start] != ',' {
		// First member: drop the comma after it instead, if any.
		if end < len(canonical) && canonical[end] == ',' {
			end++
		}
	}
	out := make([]byte, 0, len(canonical)-(end-start))
	out = append(out, canonical[:start]...)
	return append(out, canonical[end:]...)
}
