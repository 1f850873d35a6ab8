package receipt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chain signs n receipts of one action with s and returns their bytes.
func chain(t *testing.T, s Signer, action string, statuses ...Status) [][]byte {
	t.Helper()
	var out [][]byte
	prev := ""
	for i, st := range statuses {
		r := minimalReceipt()
		r.ActionID = action
		r.ReceiptID = action + "_" + string(rune('a'+i))
		r.Seq = int64(i + 1)
		r.Status = st
		r.PrevReceiptDigest = prev
		b, err := Sign(context.Background(), s, r)
		require.NoError(t, err)
		out = append(out, b)
		prev = Digest(b)
	}
	return out
}

// signWith signs a receipt with explicit chain members.
func signWith(t *testing.T, s Signer, action string, seq int64, prev, tenant string) []byte {
	t.Helper()
	r := minimalReceipt()
	r.ActionID, r.Seq, r.PrevReceiptDigest = action, seq, prev
	if tenant != "" {
		r.TenantID = tenant
	}
	b, err := Sign(context.Background(), s, r)
	require.NoError(t, err)
	return b
}

func checkOf(t *testing.T, err error) Check {
	t.Helper()
	var verr *VerifyError
	require.ErrorAs(t, err, &verr)
	return verr.Check
}

func TestVerifyKeys(t *testing.T) {
	s1, _ := testKey(t)
	s2, _, err := GenerateKey("k2")
	require.NoError(t, err)
	old, err := Sign(context.Background(), s1, minimalReceipt())
	require.NoError(t, err)

	ks, err := NewKeySet(s1)
	require.NoError(t, err)
	require.NoError(t, ks.Rotate(s2))
	v, err := NewVerifier(ks)
	require.NoError(t, err)
	fresh, err := Sign(context.Background(), ks.Active(), minimalReceipt())
	require.NoError(t, err)

	r, err := v.Verify(old)
	require.NoError(t, err, "a receipt of the retired key verifies")
	assert.Equal(t, s1.KeyID(), r.Signature.Kid)
	r, err = v.Verify(fresh)
	require.NoError(t, err)
	assert.Equal(t, "k2", r.Signature.Kid)

	only2, err := NewKeySet(s2)
	require.NoError(t, err)
	v2, err := NewVerifier(only2)
	require.NoError(t, err)
	_, err = v2.Verify(old)
	assert.Equal(t, CheckUnknownKey, checkOf(t, err))
	assert.ErrorIs(t, err, ErrUnknownKey)
	assert.Equal(t, "receipt: verify: unknown key: unknown key id", err.Error())

	// The same kid with another key: the signature fails.
	impostor, _, err := GenerateKey(s1.KeyID())
	require.NoError(t, err)
	forged, err := Sign(context.Background(), impostor, minimalReceipt())
	require.NoError(t, err)
	_, err = v.Verify(forged)
	assert.Equal(t, CheckSignature, checkOf(t, err))
	assert.ErrorIs(t, err, ErrBadSignature)
}

func TestVerifyChain(t *testing.T) {
	v, s := testVerifier(t)
	good := chain(t, s, "act", StatusPendingApproval, StatusVote, StatusApproved, StatusExecuting, StatusExecuted)
	rs, err := v.VerifyChain(good)
	require.NoError(t, err)
	require.Len(t, rs, 5)
	assert.Equal(t, StatusExecuted, rs[4].Status)

	first := good[0]
	other := chain(t, s, "other", StatusAllowed, StatusExecuted)
	tests := []struct {
		name     string
		receipts [][]byte
		want     Check
		sentinel error
		pos      string
	}{
		{"empty", nil, CheckChain, ErrBrokenChain, ""},
		{"starts at seq 2", good[1:], CheckSeq, ErrBadSeq, "receipt 1"},
		{"gap", [][]byte{good[0], good[1], good[3]}, CheckSeq, ErrBadSeq, "receipt 3"},
		{"repeat", [][]byte{good[0], good[1], good[1]}, CheckSeq, ErrBadSeq, "receipt 3"},
		{"reordered", [][]byte{good[0], good[2], good[1]}, CheckSeq, ErrBadSeq, "receipt 2"},
		{"other action", [][]byte{first, other[1]}, CheckChain, ErrBrokenChain, "receipt 2"},
		{"wrong prev digest", [][]byte{first, signWith(t, s, "act", 2, digestOf("x"), "")}, CheckChain, ErrBrokenChain, "receipt 2"},
		{"other tenant", [][]byte{first, signWith(t, s, "act", 2, Digest(first), "globex")}, CheckChain, ErrBrokenChain, "receipt 2"},
		{"bad signature", [][]byte{first, bytes.Replace(good[1], []byte(`"vote"`), []byte(`"approved"`), 1)}, CheckSignature, ErrBadSignature, "receipt 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := v.VerifyChain(tt.receipts)
			require.Error(t, err)
			assert.Nil(t, rs)
			assert.Equal(t, tt.want, checkOf(t, err), "VerifyChain() = %v", err)
			assert.ErrorIs(t, err, tt.sentinel)
			assert.Contains(t, err.Error(), "receipt: verify chain: "+tt.pos)
			var verr *VerifyError
			require.ErrorAs(t, err, &verr)
			if tt.pos != "" {
				assert.Equal(t, "receipt "+strconv.Itoa(verr.Position), tt.pos)
			}
		})
	}

	// prev_receipt_digest is over the canonical form, so a re-formatted
	// earlier receipt still chains.
	var generic map[string]any
	require.NoError(t, json.Unmarshal(good[0], &generic))
	pretty, err := json.MarshalIndent(generic, "", "  ")
	require.NoError(t, err)
	_, err = v.VerifyChain([][]byte{pretty, good[1]})
	require.NoError(t, err)
}

func TestLogChecker(t *testing.T) {
	v, s := testVerifier(t)
	a := chain(t, s, "a", StatusAllowed, StatusExecuting, StatusExecuted)
	b := chain(t, s, "b", StatusPendingApproval, StatusRejected)
	ev, err := SignEvent(context.Background(), s, &Event{Actor: "admin", Event: "policy.loaded", EventID: "e1", IssuedAt: fixedTime, Spec: EventSpec})
	require.NoError(t, err)

	lc := NewLogChecker(v)
	for i, leaf := range [][]byte{ev, a[0], b[0], a[1], b[1], a[2], ev} {
		require.NoError(t, lc.CheckEntry(int64(i), leaf), "entry %d", i)
	}

	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, a[0], "", " "))
	unknownSpec := editJSON(t, ev, func(m map[string]any) { m["spec"] = "oars.other.v1" })
	noSpec := editJSON(t, ev, func(m map[string]any) { delete(m, "spec") })
	tests := []struct {
		name   string
		leaves [][]byte
		want   Check
	}{
		{"not canonical", [][]byte{pretty.Bytes()}, CheckCanonical},
		{"not JSON", [][]byte{[]byte("not json")}, CheckParse},
		{"duplicate key", [][]byte{append([]byte(`{"seq":1,`), a[0][1:]...)}, CheckCanonical},
		{"unknown spec", [][]byte{unknownSpec}, CheckFormat},
		{"no spec", [][]byte{noSpec}, CheckFormat},
		{"not an object", [][]byte{[]byte(`[]`)}, CheckFormat},
		{"first seq 2", [][]byte{a[1]}, CheckSeq},
		{"gap", [][]byte{a[0], a[2]}, CheckSeq},
		{"duplicate seq", [][]byte{a[0], a[1], a[1]}, CheckSeq},
		{"duplicate first", [][]byte{a[0], a[0]}, CheckSeq},
		{"wrong prev", [][]byte{a[0], signWith(t, s, "a", 2, digestOf("x"), "")}, CheckChain},
		{"other tenant", [][]byte{a[0], signWith(t, s, "a", 2, Digest(a[0]), "globex")}, CheckChain},
		{"bad event signature", [][]byte{bytes.Replace(ev, []byte("policy.loaded"), []byte("policy.deleted"), 1)}, CheckSignature},
		{"bad receipt signature", [][]byte{bytes.Replace(a[0], []byte(`"allowed"`), []byte(`"denied"`), 1)}, CheckSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := NewLogChecker(v)
			var err error
			last := len(tt.leaves) - 1
			for i, leaf := range tt.leaves {
				err = lc.CheckEntry(int64(10+i), leaf)
				if i < last {
					require.NoError(t, err, "entry %d", 10+i)
				}
			}
			require.Error(t, err)
			assert.Equal(t, tt.want, checkOf(t, err), "CheckEntry() = %v", err)
			prefix := fmt.Sprintf("receipt: entry %d: %s: ", 10+last, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), prefix), "CheckEntry() = %q, want prefix %q", err, prefix)
		})
	}

	// The checker does not retain leaves: scribbling over a checked leaf
	// does not change the chain state.
	lc = NewLogChecker(v)
	leaf := bytes.Clone(a[0])
	require.NoError(t, lc.CheckEntry(0, leaf))
	for i := range leaf {
		leaf[i] = 'x'
	}
	require.NoError(t, lc.CheckEntry(1, a[1]))
}

func TestEvents(t *testing.T) {
	v, s := testVerifier(t)
	ctx := context.Background()
	e := &Event{
		Actor:    "admin@example.com",
		Details:  json.RawMessage(` {"to": "b", "from": "a", "n": 1.0, "nested": {"z": [], "y": "\u00e9"}} `),
		Event:    "policy.reloaded",
		EventID:  "evt_42",
		IssuedAt: time.Date(2025, 5, 6, 7, 8, 9, 100, time.FixedZone("x", -3600)),
		Spec:     EventSpec,
	}
	signed, err := SignEvent(ctx, s, e)
	require.NoError(t, err)
	assert.Equal(t, `{"from":"a","n":1,"nested":{"y":"é","z":[]},"to":"b"}`, string(e.Details), "details canonicalized")
	require.NotNil(t, e.Signature)

	// Byte-identical to RFC 8785 of encoding/json output.
	raw, err := json.Marshal(struct {
		*Event
		IssuedAt time.Time `json:"issued_at"`
	}{e, e.IssuedAt.UTC()})
	require.NoError(t, err)
	want, err := jcs.Transform(raw)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(signed))
	mc, err := e.MarshalCanonical()
	require.NoError(t, err)
	assert.Equal(t, string(signed), string(mc))

	got, err := v.VerifyEvent(signed)
	require.NoError(t, err)
	assert.Equal(t, e.IssuedAt.UTC(), got.IssuedAt)
	got.IssuedAt = e.IssuedAt
	assert.Equal(t, e, got)

	// A receipt is not an event and vice versa.
	_, err = v.Verify(signed)
	assert.Equal(t, CheckFormat, checkOf(t, err))
	rb, err := Sign(ctx, s, minimalReceipt())
	require.NoError(t, err)
	_, err = v.VerifyEvent(rb)
	assert.Equal(t, CheckFormat, checkOf(t, err))

	// Empty details mean {}; tenant_id is optional.
	e2 := &Event{Actor: "a", Event: "key.rotated", EventID: "e2", IssuedAt: fixedTime, Spec: EventSpec, TenantID: "acme"}
	signed2, err := SignEvent(ctx, s, e2)
	require.NoError(t, err)
	assert.Contains(t, string(signed2), `"details":{}`)
	assert.Contains(t, string(signed2), `"tenant_id":"acme"`)
	_, err = v.VerifyEvent(signed2)
	require.NoError(t, err)

	invalidEvents := []struct {
		name string
		edit func(e *Event)
		want error
	}{
		{"wrong spec", func(e *Event) { e.Spec = Spec }, ErrInvalid},
		{"no id", func(e *Event) { e.EventID = "" }, ErrInvalid},
		{"no event", func(e *Event) { e.Event = "" }, ErrInvalid},
		{"no actor", func(e *Event) { e.Actor = "" }, ErrInvalid},
		{"no time", func(e *Event) { e.IssuedAt = time.Time{} }, ErrInvalid},
		{"details array", func(e *Event) { e.Details = json.RawMessage(`[1]`) }, ErrInvalid},
		{"details duplicate key", func(e *Event) { e.Details = json.RawMessage(`{"a":1,"a":2}`) }, ErrDuplicateKey},
		{"details not JSON", func(e *Event) { e.Details = json.RawMessage(`{`) }, ErrSyntax},
		{"invalid UTF-8", func(e *Event) { e.Actor = "\xff" }, ErrInvalidUTF8},
	}
	for _, tt := range invalidEvents {
		t.Run(tt.name, func(t *testing.T) {
			e := &Event{Actor: "a", Event: "x", EventID: "e", IssuedAt: fixedTime, Spec: EventSpec}
			tt.edit(e)
			_, err := SignEvent(ctx, s, e)
			assert.ErrorIs(t, err, tt.want)
			assert.Nil(t, e.Signature)
		})
	}

	tampered := []struct {
		name string
		edit func(m map[string]any)
		want Check
	}{
		{"actor", func(m map[string]any) { m["actor"] = "mallory" }, CheckSignature},
		{"details", func(m map[string]any) { m["details"].(map[string]any)["to"] = "c" }, CheckSignature},
		{"tenant added", func(m map[string]any) { m["tenant_id"] = "acme" }, CheckSignature},
		{"details not an object", func(m map[string]any) { m["details"] = "x" }, CheckFormat},
		{"tenant empty", func(m map[string]any) { m["tenant_id"] = "" }, CheckFormat},
		{"no details", func(m map[string]any) { delete(m, "details") }, CheckFormat},
		{"kid", func(m map[string]any) { m["signature"].(map[string]any)["kid"] = "x" }, CheckUnknownKey},
	}
	for _, tt := range tampered {
		t.Run("tampered "+tt.name, func(t *testing.T) {
			_, err := v.VerifyEvent(editJSON(t, signed, tt.edit))
			assert.Equal(t, tt.want, checkOf(t, err), "VerifyEvent() = %v", err)
		})
	}
}

func TestVerifyErrorMessage(t *testing.T) {
	tests := []struct {
		err  *VerifyError
		want string
	}{
		{verifyErr(CheckSignature, ErrBadSignature), "receipt: verify: signature: signature does not verify"},
		{&VerifyError{Check: CheckSeq, Err: ErrBadSeq, op: "entry 17"}, "receipt: entry 17: seq: bad seq"},
		{verifyErr(CheckFormat, invalid("missing action_id")), "receipt: verify: format: not valid v1: missing action_id"},
		{verifyErr(Check(99), errors.New("x")), "receipt: verify: check(99): x"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.err.Error())
	}
	for c := CheckParse; c <= CheckSeq; c++ {
		assert.NotContains(t, c.String(), "check(", "Check(%d).String()", int(c))
	}
}

func TestVerifyErrorsDoNotEchoInput(t *testing.T) {
	v, s := testVerifier(t)
	r := minimalReceipt()
	r.Resource.Target = "secret-target-value"
	signed, err := Sign(context.Background(), s, r)
	require.NoError(t, err)
	for _, data := range [][]byte{
		bytes.Replace(signed, []byte(`"acme"`), []byte(`"secret-tenant-value"`), 1),
		bytes.Replace(signed, []byte(`"oars.receipt.v1"`), []byte(`"secret-spec-value"`), 1),
		bytes.Replace(signed, []byte(s.KeyID()), []byte("secret-kid-value"), 1),
		bytes.Replace(signed, []byte(`"enforce"`), []byte(`"secret-mode-value"`), 1),
		append([]byte(`{"secret-target-value":1,`), signed[1:]...),
	} {
		_, err := v.Verify(data)
		require.Error(t, err)
		assert.NotContains(t, err.Error(), "secret-")
	}
}

func FuzzVerify(f *testing.F) {
	for _, name := range []string{"denied.json", "event_policy_reloaded.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, name := range []string{"chain_allowed_executed.json", "chain_approval.json", "chain_approval_quorum.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "golden", name))
		if err != nil {
			f.Fatal(err)
		}
		var leaves []json.RawMessage
		if err := json.Unmarshal(data, &leaves); err != nil {
			f.Fatal(err)
		}
		for _, l := range leaves {
			f.Add([]byte(l))
		}
	}
	f.Add([]byte(`{"spec":"oars.receipt.v1","signature":{"alg":"EdDSA","kid":"k","sig":""}}`))
	f.Add([]byte(`{"spec":"oars.event.v1","details":[],"signature":null}`))
	f.Add([]byte(`[{"a":1}]`))
	f.Add([]byte{})

	s, _ := testKey(f)
	ks, err := NewKeySet(s)
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewVerifier(ks)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		orig := bytes.Clone(data)
		r, err := v.Verify(data)
		if err == nil {
			// A receipt that verifies encodes back to its canonical form.
			canon, cerr := Canonicalize(data)
			if cerr != nil {
				t.Fatalf("Verify accepted what Canonicalize rejects: %v", cerr)
			}
			again, merr := r.MarshalCanonical()
			if merr != nil || !bytes.Equal(again, canon) {
				t.Fatalf("verified receipt re-encodes to %q (%v), want %q", again, merr, canon)
			}
		} else {
			var verr *VerifyError
			if !errors.As(err, &verr) || verr.Check < CheckParse || verr.Check > CheckSeq {
				t.Fatalf("Verify error %v is not a *VerifyError with a check", err)
			}
		}
		e, err := v.VerifyEvent(data)
		if err == nil {
			again, merr := e.MarshalCanonical()
			canon, _ := Canonicalize(data)
			if merr != nil || !bytes.Equal(again, canon) {
				t.Fatalf("verified event re-encodes to %q (%v), want %q", again, merr, canon)
			}
		}
		lc := NewLogChecker(v)
		_ = lc.CheckEntry(0, data)
		_ = lc.CheckEntry(1, data)
		if !bytes.Equal(orig, data) {
			t.Fatal("input modified")
		}
	})
}

func TestWithoutMember(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a":1,"signature":{"x":[1]},"z":2}`, `{"a":1,"z":2}`},
		{`{"signature":{},"z":2}`, `{"z":2}`},
		{`{"a":1,"signature":"s"}`, `{"a":1}`},
		{`{"signature":"s"}`, `{}`},
	}
	for _, tt := range tests {
		x := newDecoder([]byte(tt.in))
		var sp span
		found := false
		err := x.object("", func(name string) error {
			if name != "signature" {
				return x.skip(name)
			}
			start := x.memberStart
			err := x.skip(name)
			sp = span{start: int(start), end: int(x.d.InputOffset())}
			found = true
			return err
		})
		require.NoError(t, err)
		require.True(t, found)
		assert.Equal(t, tt.want, string(withoutMember([]byte(tt.in), sp)), "withoutMember(%s)", tt.in)
	}
}
