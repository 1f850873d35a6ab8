package stepup_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/oarsdev/oars/approval/stepup"
)

func ExampleTOTP() {
	ctx := context.Background()
	// The sealing key comes from the host's secret management.
	key := make([]byte, stepup.KeySize)
	if _, err := rand.Read(key); err != nil {
		fmt.Println("key:", err)
		return
	}
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	verifier, err := stepup.New(&stepup.MemStore{}, key,
		stepup.WithIssuer("Acme"),
		stepup.WithClock(func() time.Time { return now }))
	if err != nil {
		fmt.Println("new:", err)
		return
	}

	// Enrollment: show the URL to the approver as a QR code, once.
	secret, otpauthURL, err := verifier.Enroll(ctx, "acme", "alice")
	if err != nil {
		fmt.Println("enroll:", err)
		return
	}
	fmt.Println("scan:", strings.HasPrefix(otpauthURL, "otpauth://totp/Acme:alice?"))

	// Decision time: alice types the code her authenticator app shows.
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		fmt.Println("code:", err)
		return
	}
	fmt.Println("first use:", verifier.Verify(ctx, "acme", "alice", code))
	err = verifier.Verify(ctx, "acme", "alice", code)
	fmt.Println("replayed:", errors.Is(err, stepup.ErrReplayed))
	// Output:
	// scan: true
	// first use: <nil>
	// replayed: true
}
