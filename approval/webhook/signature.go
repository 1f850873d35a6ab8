package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of a notification request.
const (
	// SignatureHeader carries the signature; see the package doc.
	SignatureHeader = "Oars-Signature"
	// EventHeader carries the notification type, as the body's "type".
	EventHeader = "Oars-Event"
	// DeliveryHeader carries an ID shared by every attempt of one
	// notification, for receivers to drop duplicates.
	DeliveryHeader = "Oars-Delivery"
)

// Errors of [VerifySignature]. Test for them with errors.Is.
var (
	// ErrInvalidSignature: the header is missing or malformed, or no v1
	// value is the HMAC of the body under the secret.
	ErrInvalidSignature = errors.New("webhook: invalid signature")
	// ErrStaleSignature: the signature's timestamp is further from now than
	// the tolerance.
	ErrStaleSignature = errors.New("webhook: signature timestamp outside tolerance")
)

// maxHeaderLength bounds the signature header VerifySignature parses.
const maxHeaderLength = 4096

// Sign returns the value of the [SignatureHeader] for body sent at t under
// secret: "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>".
func Sign(secret, body []byte, t time.Time) string {
	ts := t.Unix()
	return "t=" + strconv.FormatInt(ts, 10) + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts int64, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write(strconv.AppendInt(nil, ts, 10))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// VerifySignature checks header, the value of the [SignatureHeader] of a
// request, against its raw body: one of its v1 values must be the
// HMAC-SHA256 of "<t>.<body>" under secret, and t must be within tolerance
// of now. Unknown keys in the header are ignored, so later schemes (v2…)
// can be added beside v1.
//
// It fails with an error wrapping [ErrInvalidSignature] if secret is
// empty, the header is malformed (no t, t not a run of decimal digits, a v1 that
// is not hex) or no v1 matches, and with [ErrStaleSignature] if t is too
// far from now; tolerance must be positive. Error messages never quote the
// header or the body.
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if len(secret) == 0 {
		return fmt.Errorf("%w: empty secret", ErrInvalidSignature)
	}
	if tolerance <= 0 {
		return fmt.Errorf("%w: tolerance must be positive", ErrInvalidSignature)
	}
	if header == "" || len(header) > maxHeaderLength {
		return fmt.Errorf("%w: missing or oversized header", ErrInvalidSignature)
	}
	var (
		ts    int64
		haveT bool
		sigs  [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return fmt.Errorf("%w: malformed header", ErrInvalidSignature)
		}
		switch k {
		case "t":
			if haveT || !isDecimal(v) {
				return fmt.Errorf("%w: malformed timestamp", ErrInvalidSignature)
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return fmt.Errorf("%w: malformed timestamp", ErrInvalidSignature)
			}
			ts, haveT = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return fmt.Errorf("%w: malformed v1 value", ErrInvalidSignature)
			}
			sigs = append(sigs, b)
		}
	}
	if !haveT || len(sigs) == 0 {
		return fmt.Errorf("%w: header lacks t or v1", ErrInvalidSignature)
	}
	// Compare in seconds; now±tolerance cannot overflow for any Duration.
	tol := int64(tolerance / time.Second)
	if ts < now.Unix()-tol || ts > now.Unix()+tol {
		return fmt.Errorf("webhook: verify signature: %w", ErrStaleSignature)
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return fmt.Errorf("%w: no matching v1", ErrInvalidSignature)
}

// isDecimal reports whether s is a non-empty run of ASCII digits.
func isDecimal(s string) bool {
	if s == "" {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
