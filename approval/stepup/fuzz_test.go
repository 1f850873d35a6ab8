package stepup_test

import (
	"context"
	"testing"
	"time"

	"github.com/oarsdev/oars/approval/stepup"
)

// FuzzVerifyCode checks that Verify never panics on any code and accepts
// nothing but the right code.
func FuzzVerifyCode(f *testing.F) {
	for _, c := range []string{"", "000000", "123456", "12345", "1234567", "12345a", " 12345", "１２３４５６", "\x00\x00\x00\x00\x00\x00"} {
		f.Add(c)
	}
	f.Fuzz(func(t *testing.T, c string) {
		fx := newFixture(t, stepup.WithFailureLimit(1<<20, time.Hour))
		secret := fx.enroll(t, "tenant-a", "alice")
		err := fx.totp.Verify(context.Background(), "tenant-a", "alice", c)
		right := map[string]bool{}
		for _, d := range []time.Duration{-stepup.Period, 0, stepup.Period} {
			right[code(t, secret, t0.Add(d))] = true
		}
		if err == nil && !right[c] {
			t.Fatalf("Verify(%q) = nil for a code of no step within the skew", c)
		}
	})
}

// FuzzSealedSecret checks that Verify never panics on whatever bytes the
// store holds and never opens bytes it did not seal.
func FuzzSealedSecret(f *testing.F) {
	seed := newFixture(f)
	if _, _, err := seed.totp.Enroll(context.Background(), "tenant-a", "alice"); err != nil {
		f.Fatalf("Enroll = %v", err)
	}
	sealed, err := seed.store.GetEnrollment(context.Background(), "tenant-a", "alice")
	if err != nil {
		f.Fatalf("GetEnrollment = %v", err)
	}
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(make([]byte, 1+24+16))
	f.Add(append([]byte{2}, sealed[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		fx := newFixture(t)
		if err := fx.store.PutEnrollment(context.Background(), "tenant-a", "alice", b); err != nil {
			t.Fatalf("PutEnrollment = %v", err)
		}
		if err := fx.totp.Verify(context.Background(), "tenant-a", "alice", "123456"); err == nil {
			t.Fatalf("Verify with stored bytes %x = nil, want an error", b)
		}
	})
}
