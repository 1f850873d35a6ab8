package webhook_test

import (
	"strings"
	"testing"
	"time"

	"github.com/oarsdev/oars/approval/webhook"
)

// FuzzVerifySignature checks that VerifySignature never panics and accepts
// a header only if it carries the right HMAC of the body.
func FuzzVerifySignature(f *testing.F) {
	secret := []byte("fuzz-secret-0123456789")
	now := time.Unix(1_780_000_000, 0)
	body := []byte(`{"type":"approval.requested"}`)
	good := webhook.Sign(secret, body, now)
	for _, h := range []string{
		good,
		good + ",v1=00",
		"t=1780000000",
		"v1=" + strings.Repeat("0", 64),
		"t=,v1=",
		"t=1780000000,t=1780000000",
		",,,",
		"t=99999999999999999999999," + good[strings.Index(good, "v1="):],
		"",
	} {
		f.Add(h, body)
	}
	f.Add(good, []byte(`{"type":"approval.requested"} `))
	f.Fuzz(func(t *testing.T, header string, b []byte) {
		err := webhook.VerifySignature(secret, header, b, now, 5*time.Minute)
		if err != nil {
			return
		}
		// Accepted: some t in the header must sign b to a v1 it carries.
		for part := range strings.SplitSeq(header, ",") {
			k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
			if k != "t" {
				continue
			}
			var ts int64
			for _, c := range v {
				ts = ts*10 + int64(c-'0')
			}
			want := webhook.Sign(secret, b, time.Unix(ts, 0))
			if strings.Contains(strings.ToLower(header), want[strings.Index(want, "v1="):]) {
				return
			}
		}
		t.Fatalf("VerifySignature(%q, %q) = nil without a matching v1", header, b)
	})
}
