package stepup

import (
	"context"
	"errors"
)

// Errors of this package. Test for them with errors.Is; messages never
// contain a code or a secret.
var (
	// ErrNotEnrolled: the approver has no second factor enrolled.
	ErrNotEnrolled = errors.New("stepup: not enrolled")

	// ErrInvalidCode: the code is not 6 decimal digits, or not the code of
	// any time step within the allowed skew.
	ErrInvalidCode = errors.New("stepup: invalid code")

	// ErrReplayed: the code is right but its time step, or a later one,
	// was already used.
	ErrReplayed = errors.New("stepup: code already used")

	// ErrRateLimited: too many recent failures for this approver; the code
	// was not checked.
	ErrRateLimited = errors.New("stepup: too many failed attempts")
)

// Verifier checks a second-factor code of an approver. Verify returns nil
// only when code is a valid, unused second factor of userID in tenantID at
// the time of the call, and consumes it: the same code is refused after.
// Implementations must be safe for concurrent use.
type Verifier interface {
	Verify(ctx context.Context, tenantID, userID, code string) error
}

// VerifierFunc adapts a function to [Verifier].
type VerifierFunc func(ctx context.Context, tenantID, userID, code string) error

// Verify calls f(ctx, tenantID, userID, code).
func (f VerifierFunc) Verify(ctx context.Context, tenantID, userID, code string) error {
	return f(ctx, tenantID, userID, code)
}

// Store keeps the sealed TOTP secret and the last used time step of each
// enrolled approver, keyed by (tenantID, userID). The store never sees a
// secret in the clear. Implementations must be safe for concurrent use,
// also by several processes sharing one database. Stores written for this
// interface should pass stepuptest.Run.
type Store interface {
	// PutEnrollment stores sealedSecret for the approver, replacing any
	// earlier enrollment, and resets the approver's last used step so that
	// any step > 0 may be used next. It keeps its own copy of sealedSecret.
	PutEnrollment(ctx context.Context, tenantID, userID string, sealedSecret []byte) error

	// GetEnrollment returns the sealed secret stored for the approver, in
	// a slice the caller may keep and modify. It fails with an error
	// wrapping ErrNotEnrolled when there is none.
	GetEnrollment(ctx context.Context, tenantID, userID string) (sealedSecret []byte, err error)

	// UseStep atomically records that the code of time step step was used
	// by the approver: it succeeds only if step is greater than the last
	// used step, and then makes step the last used step. It fails with an
	// error wrapping ErrReplayed if step is not greater (nothing changes),
	// and with ErrNotEnrolled if the approver is not enrolled. Of several
	// concurrent calls with the same step, in any process, at most one
	// succeeds.
	UseStep(ctx context.Context, tenantID, userID string, step int64) error
}
