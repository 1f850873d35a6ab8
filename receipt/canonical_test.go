package receipt

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// referenceCanonical is the reference the fast encoder must match:
// RFC 8785 (gowebpki/jcs) applied to encoding/json output.
func referenceCanonical(t testing.TB, r *Receipt) []byte {
	t.Helper()
	raw, err := json.Marshal(r)
	require.NoError(t, err)
	out, err := jcs.Transform(raw)
	require.NoError(t, err)
	return out
}

func TestMarshalCanonicalMatchesJCS(t *testing.T) {
	withSig := func(r *Receipt) *Receipt {
		r.Signature = &Signature{Alg: Alg, Kid: "oars:0123456789abcdef", Sig: strings.Repeat("A", 86)}
		return r
	}
	tests := []struct {
		name string
		r    *Receipt
	}{
		{"minimal", minimalReceipt()},
		{"full", fullReceipt()},
		{"full signed", withSig(fullReceipt())},
		{"zero", &Receipt{}},
		{"output evidence", func() *Receipt {
			r := minimalReceipt()
			r.Status = StatusExecuted
			r.OutputSummary = json.RawMessage(`{ "url": "https://t.example/i/42", "id": 42, "a": [1.50, "\u00e9"] }`)
			r.UpstreamStatus = 201
			return r
		}()},
		{"empty slices", func() *Receipt {
			r := minimalReceipt()
			r.Reasons = []string{}
			r.Principal.Delegation = []DelegationHop{}
			r.Policy = &PolicyRef{MatchedRules: []string{}, Shadow: []ShadowResult{}}
			return r
		}()},
		{"empty strings in slices", func() *Receipt {
			r := minimalReceipt()
			r.Reasons = []string{"", ""}
			r.Principal.Delegation = []DelegationHop{{Scope: []string{""}}}
			return r
		}()},
		{"escapes", func() *Receipt {
			r := minimalReceipt()
			r.ActionID = "quote\" backslash\\ slash/ nl\n cr\r tab\t bs\b ff\f nul\x00 us\x1f del\x7f"
			r.AgentID = "<script>&amp;</script>"
			r.Reasons = []string{"line\u2028sep\u2029para", "\u00e9\u4e16\U0001F600", "\ufeffbom \ufffd"}
			return r
		}()},
		{"every control character", func() *Receipt {
			r := minimalReceipt()
			var b strings.Builder
			for c := 0; c < 0x20; c++ {
				b.WriteByte(byte(c))
			}
			r.TenantID = b.String()
			return r
		}()},
		{"non-UTC time", func() *Receipt {
			r := minimalReceipt()
			r.IssuedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)).UTC()
			return r
		}()},
		{"whole second", func() *Receipt {
			r := minimalReceipt()
			r.IssuedAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
			return r
		}()},
		{"trailing zero nanos", func() *Receipt {
			r := minimalReceipt()
			r.IssuedAt = time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC)
			return r
		}()},
		{"big seq", func() *Receipt {
			r := minimalReceipt()
			r.Seq = maxSafeInteger
			return r
		}()},
		{"negative seq", func() *Receipt {
			r := minimalReceipt()
			r.Seq = -maxSafeInteger
			return r
		}()},
		{"approval pending", approvalReceipt(StatusPendingApproval)},
		{"approval vote", approvalReceipt(StatusVote)},
		{"approval approved", approvalReceipt(StatusApproved)},
		{"approval cancelled", approvalReceipt(StatusCancelled)},
		{"approval every member", func() *Receipt {
			r := fullReceipt()
			expires := time.Date(2025, 3, 14, 16, 0, 0, 120000000, time.UTC)
			r.Approval = &Approval{
				Approver: &Approver{Roles: []string{"finance", "r\u00e9le"}, UserID: "bob\"\n"}, Decision: DecisionReject,
				ExpiresAt: &expires, Quorum: 3, Reason: "<too much> & \u2028", Roles: []string{"a", "b"}, StepUp: true,
				StepUpMethod: "totp", Users: []string{"carol", "dave"}, Votes: []string{"v1"},
			}
			return r
		}()},
		{"approval empty", func() *Receipt {
			r := minimalReceipt()
			r.Approval = &Approval{Approver: &Approver{Roles: []string{}}, Roles: []string{}, Users: []string{}, Votes: []string{}}
			return r
		}()},
		{"approval only step_up", func() *Receipt {
			r := minimalReceipt()
			r.Approval = &Approval{StepUp: true}
			return r
		}()},
		{"long strings", func() *Receipt {
			r := minimalReceipt()
			r.Resource.Target = longString(10000)
			return r
		}()},
	}
	for _, s := range []Status{StatusAllowed, StatusDenied, StatusPendingApproval, StatusVote, StatusApproved,
		StatusRejected, StatusExpired, StatusCancelled, StatusExecuting, StatusExecuted, StatusFailed, StatusDeadLettered} {
		r := fullReceipt()
		r.Status = s
		tests = append(tests, struct {
			name string
			r    *Receipt
		}{"status " + string(s), r})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.MarshalCanonical()
			require.NoError(t, err)
			want := referenceCanonical(t, tt.r)
			assert.Equal(t, string(want), string(got), "MarshalCanonical() vs jcs.Transform(json.Marshal())")
			// And it is a fixed point of our own canonicalizer.
			again, err := Canonicalize(got)
			require.NoError(t, err)
			assert.Equal(t, string(got), string(again))
		})
	}
}

func TestMarshalCanonicalNonUTCTime(t *testing.T) {
	r := minimalReceipt()
	r.IssuedAt = time.Date(2025, 1, 2, 4, 4, 5, 0, time.FixedZone("CET", 3600))
	got, err := r.MarshalCanonical()
	require.NoError(t, err)
	assert.Contains(t, string(got), `"issued_at":"2025-01-02T03:04:05Z"`)
}

func TestMarshalCanonicalErrors(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(r *Receipt)
		want  error
		field string
	}{
		{"invalid UTF-8", func(r *Receipt) { r.ActionID = "a\xffb" }, ErrInvalidUTF8, "action_id"},
		{"truncated rune", func(r *Receipt) { r.Reasons = []string{"ok", "\xe2\x82"} }, ErrInvalidUTF8, "reasons"},
		{"UTF-8 surrogate", func(r *Receipt) { r.Principal.UserID = "\xed\xa0\x80" }, ErrInvalidUTF8, "principal.user_id"},
		{"nested", func(r *Receipt) { r.Policy = &PolicyRef{Shadow: []ShadowResult{{MatchedRules: []string{"\xc0"}}}} }, ErrInvalidUTF8, "policy.shadow.matched_rules"},
		{"signature", func(r *Receipt) { r.Signature = &Signature{Kid: "\xff"} }, ErrInvalidUTF8, "signature.kid"},
		{"approver", func(r *Receipt) { r.Approval = &Approval{Approver: &Approver{UserID: "\xff"}} }, ErrInvalidUTF8, "approval.approver.user_id"},
		{"approval votes", func(r *Receipt) { r.Approval = &Approval{Votes: []string{"v", "\xfe"}} }, ErrInvalidUTF8, "approval.votes"},
		{"quorum too big", func(r *Receipt) { r.Approval = &Approval{Quorum: maxSafeInteger + 1} }, ErrNumberRange, "approval.quorum"},
		{"expires_at year 10000", func(r *Receipt) {
			t := time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			r.Approval = &Approval{ExpiresAt: &t}
		}, nil, "approval.expires_at"},
		{"seq too big", func(r *Receipt) { r.Seq = maxSafeInteger + 1 }, ErrNumberRange, "seq"},
		{"seq too small", func(r *Receipt) { r.Seq = -maxSafeInteger - 1 }, ErrNumberRange, "seq"},
		{"year 10000", func(r *Receipt) { r.IssuedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, "issued_at"},
		{"year -1", func(r *Receipt) { r.IssuedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }, nil, "issued_at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := minimalReceipt()
			tt.edit(r)
			dst := []byte("prefix")
			got, err := r.AppendCanonical(dst)
			require.Error(t, err)
			if tt.want != nil {
				assert.ErrorIs(t, err, tt.want)
			}
			assert.Contains(t, err.Error(), tt.field)
			assert.Equal(t, "prefix", string(got), "AppendCanonical on error returns dst unchanged")
			assert.NotContains(t, err.Error(), "\xff")
		})
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`"\`, `"\"\\"`},
		{"\b\f\n\r\t", `"\b\f\n\r\t"`},
		{"\x00\x01\x0b\x1f", `"\u0000\u0001\u000b\u001f"`},
		{"\x7f<>&/", "\"\x7f<>&/\""},
		{"\u2028\u2029", "\"\u2028\u2029\""},
		{"é😀", "\"é😀\""},
	}
	for _, tt := range tests {
		got, ok := appendString(nil, tt.in)
		assert.True(t, ok, "appendString(%q) ok", tt.in)
		assert.Equal(t, tt.want, string(got), "appendString(%q)", tt.in)
	}
	_, ok := appendString(nil, "\xff")
	assert.False(t, ok, "appendString(invalid UTF-8) ok = true, want false")
}

func TestDigest(t *testing.T) {
	assert.Equal(t, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Digest(nil))
	assert.Equal(t, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a", Digest([]byte("{}")))
	assert.True(t, validDigest(Digest([]byte("x"))))

	got, err := DigestJSON([]byte(` { "b" : 1, "a" : [1.0, "\u00e9"] } `))
	require.NoError(t, err)
	assert.Equal(t, Digest([]byte(`{"a":[1,"é"],"b":1}`)), got)

	_, err = DigestJSON([]byte(`{"a":1,"a":2}`))
	assert.ErrorIs(t, err, ErrDuplicateKey)
}

func TestValidDigest(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{digestOf("x"), true},
		{"", false},
		{"sha256:", false},
		{strings.ToUpper(digestOf("x")), false},
		{"sha512:" + digestOf("x")[7:], false},
		{digestOf("x")[:70], false},
		{digestOf("x") + "0", false},
		{"sha256:" + strings.Repeat("g", 64), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, validDigest(tt.in), "validDigest(%q)", tt.in)
	}
}

func TestCanonicalizeSentinels(t *testing.T) {
	tests := []struct {
		in   string
		want error
	}{
		{`{"a":1,"\u0061":2}`, ErrDuplicateKey},
		{"\"\xff\"", ErrInvalidUTF8},
		{`"\ud800"`, ErrInvalidUTF8},
		{`1e400`, ErrNumberRange},
		{strings.Repeat("[", 65) + strings.Repeat("]", 65), ErrTooDeep},
		{`{} x`, ErrTrailingData},
		{``, ErrEmpty},
		{`{`, ErrSyntax},
	}
	for _, tt := range tests {
		_, err := Canonicalize([]byte(tt.in))
		assert.ErrorIs(t, err, tt.want, "Canonicalize(%q)", tt.in)
		if err != nil {
			assert.True(t, strings.HasPrefix(err.Error(), "receipt: canonicalize: json: "), "Canonicalize(%q) error = %q", tt.in, err)
		}
	}
}

// receiptFromFuzz builds a receipt from fuzzed values; s is split on 0x1e
// into the string fields.
func receiptFromFuzz(s string, seq int64, sec int64, nsec int64, flags uint8) *Receipt {
	parts := strings.Split(s, "\x1e")
	get := func(i int) string {
		if i < len(parts) {
			return parts[i]
		}
		return ""
	}
	r := &Receipt{
		ActionID:          get(0),
		AgentID:           get(1),
		ErrorClass:        get(2),
		InputDigest:       get(3),
		IssuedAt:          time.Unix(sec%(250000*86400), nsec%1e9).UTC(),
		Mode:              Mode(get(4)),
		OutputDigest:      get(5),
		PrevReceiptDigest: get(6),
		Principal:         Principal{UserID: get(7)},
		ReceiptID:         get(8),
		Resource:          Resource{Operation: get(9), Target: get(10), ToolID: get(11)},
		Seq:               seq,
		Spec:              get(12),
		Status:            Status(get(13)),
		TenantID:          get(14),
	}
	if flags&1 != 0 {
		r.Reasons = parts
	}
	if flags&2 != 0 {
		r.Policy = &PolicyRef{Digest: get(15), ID: get(16), Version: get(17), MatchedRules: parts[len(parts)/2:]}
	}
	if flags&4 != 0 && r.Policy != nil {
		r.Policy.Shadow = []ShadowResult{{Digest: get(18), Effect: get(19), ID: get(0), MatchedRules: parts[:len(parts)/2], Version: get(1)}}
	}
	if flags&8 != 0 {
		r.Principal.Delegation = []DelegationHop{{Issuer: get(2), Scope: parts, Subject: get(3)}, {Subject: get(4)}}
	}
	if flags&16 != 0 {
		r.Signature = &Signature{Alg: get(5), Kid: get(6), Sig: get(7)}
	}
	if flags&32 != 0 {
		r.Approval = &Approval{Decision: get(8), Reason: get(9), StepUpMethod: get(10), Quorum: int(seq % 1000),
			Roles: parts[len(parts)/2:], Users: parts[:len(parts)/2], StepUp: flags&128 != 0}
		if flags&64 != 0 {
			expires := time.Unix(nsec%(250000*86400), sec%1e9).UTC()
			r.Approval.ExpiresAt = &expires
			r.Approval.Approver = &Approver{Roles: parts, UserID: get(11)}
			r.Approval.Votes = parts
		}
	}
	return r
}

func receiptStrings(r *Receipt) []string {
	ss := []string{r.ActionID, r.AgentID, r.ErrorClass, r.InputDigest, string(r.Mode), r.OutputDigest,
		r.PrevReceiptDigest, r.Principal.UserID, r.ReceiptID, r.Resource.Operation, r.Resource.Target,
		r.Resource.ToolID, r.Spec, string(r.Status), r.TenantID}
	ss = append(ss, r.Reasons...)
	if p := r.Policy; p != nil {
		ss = append(ss, p.Digest, p.ID, p.Version)
		ss = append(ss, p.MatchedRules...)
		for _, s := range p.Shadow {
			ss = append(ss, s.Digest, s.Effect, s.ID, s.Version)
			ss = append(ss, s.MatchedRules...)
		}
	}
	for _, h := range r.Principal.Delegation {
		ss = append(ss, h.Issuer, h.Subject)
		ss = append(ss, h.Scope...)
	}
	if s := r.Signature; s != nil {
		ss = append(ss, s.Alg, s.Kid, s.Sig)
	}
	if a := r.Approval; a != nil {
		ss = append(ss, a.Decision, a.Reason, a.StepUpMethod)
		ss = append(ss, a.Roles...)
		ss = append(ss, a.Users...)
		ss = append(ss, a.Votes...)
		if a.Approver != nil {
			ss = append(ss, a.Approver.UserID)
			ss = append(ss, a.Approver.Roles...)
		}
	}
	return ss
}

func FuzzCanonicalReceipt(f *testing.F) {
	f.Add("act\x1eagent\x1e\x1esha256:00\x1eenforce", int64(1), int64(1700000000), int64(0), uint8(0))
	f.Add("a\"b\\c\x1e\x00\x1f\x7f\x1e<>&\x1e\u2028\u2029\x1e\U0001F600é", int64(2), int64(-62135596800), int64(999999999), uint8(31))
	f.Add("bad\xffutf8\x1e", int64(3), int64(0), int64(1), uint8(1))
	f.Add("", int64(1)<<53, int64(253402300799), int64(500), uint8(7))
	f.Add("x\x1ey\x1ez", int64(-5), int64(42), int64(120000000), uint8(15))
	f.Add("act\x1eagent\x1e\x1e\x1e\x1e\x1e\x1e\x1eapprove\x1ereason\x1etotp\x1ebob", int64(2), int64(1700000000), int64(1700003600), uint8(32|64|128))
	f.Add("a\x1eb\x1ec", int64(0), int64(5), int64(-7), uint8(32))
	f.Fuzz(func(t *testing.T, s string, seq, sec, nsec int64, flags uint8) {
		r := receiptFromFuzz(s, seq, sec, nsec, flags)
		got, err := r.MarshalCanonical()
		valid := true
		for _, f := range receiptStrings(r) {
			if !utf8.ValidString(f) {
				valid = false
			}
		}
		if y := r.IssuedAt.Year(); y < 0 || y > 9999 {
			valid = false
		}
		if a := r.Approval; a != nil && a.ExpiresAt != nil {
			if y := a.ExpiresAt.Year(); y < 0 || y > 9999 {
				valid = false
			}
		}
		if seq > maxSafeInteger || seq < -maxSafeInteger {
			valid = false
		}
		if !valid {
			if err == nil {
				t.Fatalf("MarshalCanonical accepted an unencodable receipt: %q", got)
			}
			return
		}
		if err != nil {
			t.Fatalf("MarshalCanonical() error = %v", err)
		}
		raw, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("json.Marshal: %v", err)
		}
		want, err := jcs.Transform(raw)
		if err != nil {
			t.Fatalf("jcs.Transform: %v", err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("MarshalCanonical() = %q\njcs.Transform(json.Marshal()) = %q", got, want)
		}
	})
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":[1,2.5,-0,1e2],"a":{"y":null,"x":true}}`,
		`{"a":1,"\u0061":2}`,
		`["\ud83d\ude00","\u00e9","\u2028",""]`,
		`1e400`, `"\ud800"`, `[] []`, ``,
		`{"\u20ac":1,"\r":2,"\ufb33":3,"1":4}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := Canonicalize(data)
		if err != nil {
			for _, sentinel := range []error{ErrSyntax, ErrDuplicateKey, ErrInvalidUTF8, ErrNumberRange, ErrTooDeep, ErrTrailingData, ErrEmpty} {
				if errors.Is(err, sentinel) {
					return
				}
			}
			t.Fatalf("Canonicalize(%q) error %v wraps no sentinel", data, err)
		}
		want, err := jcs.Transform(data)
		if err != nil {
			t.Fatalf("Canonicalize(%q) accepted what jcs.Transform rejects: %v", data, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("Canonicalize(%q) = %q, jcs.Transform = %q", data, got, want)
		}
		again, err := Canonicalize(got)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("Canonicalize is not idempotent on %q: %q, %v", got, again, err)
		}
	})
}

// actionInput is a typical ~500 byte action input.
var actionInput = []byte(`{
  "order_id": "ord_9f8e7d6c5b4a",
  "amount": 2599,
  "currency": "EUR",
  "reason": "Customer reported the parcel arrived damaged; photos attached in ticket.",
  "customer": {"id": "cus_123456", "email": "alice@example.com", "tier": "gold"},
  "items": [
    {"sku": "SKU-001", "qty": 1, "price": 19.99},
    {"sku": "SKU-002", "qty": 2, "price": 3.00}
  ],
  "metadata": {"ticket": "T-48213", "agent": "support-bot", "locale": "de-DE", "retry": false},
  "notify": true
}`)

func BenchmarkCanonicalReceipt(b *testing.B) {
	r := fullReceipt()
	r.Signature = &Signature{Alg: Alg, Kid: "oars:0123456789abcdef", Sig: strings.Repeat("A", 86)}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		out, err := r.AppendCanonical(buf[:0])
		if err != nil {
			b.Fatal(err)
		}
		buf = out
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkCanonicalReceiptJCS(b *testing.B) {
	r := fullReceipt()
	r.Signature = &Signature{Alg: Alg, Kid: "oars:0123456789abcdef", Sig: strings.Repeat("A", 86)}
	var n int
	b.ReportAllocs()
	for b.Loop() {
		raw, err := json.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		out, err := jcs.Transform(raw)
		if err != nil {
			b.Fatal(err)
		}
		n = len(out)
	}
	b.SetBytes(int64(n))
}

func BenchmarkCanonicalize(b *testing.B) {
	b.SetBytes(int64(len(actionInput)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Canonicalize(actionInput); err != nil {
			b.Fatal(err)
		}
	}
}
