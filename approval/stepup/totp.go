package stepup

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters: those of Google Authenticator and most apps.
const (
	// Period is the length of a time step.
	Period = 30 * time.Second
	// Digits is the length of a code.
	Digits = 6
	// Skew is how many time steps before and after the current one are
	// accepted too, for clocks that drift.
	Skew = 1
	// SecretSize is the size in bytes of a generated secret (160 bits, as
	// RFC 4226 recommends).
	SecretSize = 20
)

// Defaults of the options.
const (
	DefaultIssuer        = "OARS"
	DefaultFailureLimit  = 5
	DefaultFailureWindow = 15 * time.Minute
)

// MaxIDLength bounds tenant and user IDs, in bytes.
const MaxIDLength = 256

// The reason attribute of a stepup.failure security event.
const (
	reasonMalformed   = "malformed_code"
	reasonWrong       = "wrong_code"
	reasonReplayed    = "replayed_code"
	reasonNotEnrolled = "not_enrolled"
	reasonRateLimited = "rate_limited"
	reasonUnsealable  = "secret_unsealable"
)

// Option configures [New]. An invalid option makes New fail.
type Option func(*config) error

type config struct {
	issuer     string
	now        func() time.Time
	logger     *slog.Logger
	failLimit  int
	failWindow time.Duration
}

// WithIssuer sets the issuer name that authenticator apps show next to the
// account; the default is [DefaultIssuer]. It must be non-empty and hold no
// colon (the otpauth label separator).
func WithIssuer(name string) Option {
	return func(c *config) error {
		if name == "" || strings.Contains(name, ":") || !utf8.ValidString(name) {
			return errors.New("issuer must be non-empty UTF-8 without a colon")
		}
		c.issuer = name
		return nil
	}
}

// WithClock sets the clock that decides the current time step and the
// failure window; the default is time.Now. now must not be nil.
func WithClock(now func() time.Time) Option {
	return func(c *config) error {
		if now == nil {
			return errors.New("nil clock")
		}
		c.now = now
		return nil
	}
}

// WithLogger sets the logger of security events (refusals, at Warn) and
// enrollments (at Info); the default discards them. l must not be nil.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}
}

// WithFailureLimit sets the rate limit: after n failures of one approver
// within window, Verify refuses with [ErrRateLimited] until the oldest of
// them is older than window. The defaults are [DefaultFailureLimit] and
// [DefaultFailureWindow]. n must be at least 1 and window positive.
func WithFailureLimit(n int, window time.Duration) Option {
	return func(c *config) error {
		if n < 1 || window <= 0 {
			return errors.New("failure limit must be at least 1 within a positive window")
		}
		c.failLimit, c.failWindow = n, window
		return nil
	}
}

// TOTP enrolls approvers and verifies their TOTP codes (RFC 6238: SHA-1,
// 6 digits, 30-second steps, one step of skew) against secrets sealed in a
// [Store]. See the package documentation for replay protection, the rate
// limit and the security events it logs.
//
// A TOTP is safe for concurrent use by multiple goroutines, and several
// TOTP values (one per replica) may share a Store and key.
type TOTP struct {
	store   Store
	sealer  sealer
	issuer  string
	now     func() time.Time
	log     *slog.Logger
	limiter *limiter
}

var _ Verifier = (*TOTP)(nil)

// New returns a TOTP keeping enrollments in store, sealed under key, which
// must be [KeySize] bytes; New copies what it needs of key. It fails if
// store is nil, the key has the wrong size or an option is invalid.
func New(store Store, key []byte, opts ...Option) (*TOTP, error) {
	cfg := config{
		issuer:     DefaultIssuer,
		now:        time.Now,
		logger:     slog.New(slog.DiscardHandler),
		failLimit:  DefaultFailureLimit,
		failWindow: DefaultFailureWindow,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("stepup: new: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("stepup: new: %w", err)
		}
	}
	if store == nil {
		return nil, errors.New("stepup: new: nil store")
	}
	s, err := newSealer(key)
	if err != nil {
		return nil, fmt.Errorf("stepup: new: %w", err)
	}
	return &TOTP{
		store:   store,
		sealer:  s,
		issuer:  cfg.issuer,
		now:     cfg.now,
		log:     cfg.logger,
		limiter: newLimiter(cfg.failLimit, cfg.failWindow),
	}, nil
}

// Enroll creates a new random secret for userID of tenantID, stores it
// sealed (replacing any earlier enrollment of the approver, whose codes
// stop working) and returns it, base32-encoded, with the otpauth:// URL to
// show as a QR code. This is the only time the secret leaves the package:
// hand it to the approver and do not keep or log it.
//
// Enroll fails if an ID is empty, longer than [MaxIDLength], not UTF-8 or
// holds a NUL byte, or if the store fails.
func (t *TOTP) Enroll(ctx context.Context, tenantID, userID string) (secret, otpauthURL string, err error) {
	if err := checkIDs(tenantID, userID); err != nil {
		return "", "", fmt.Errorf("stepup: enroll: %w", err)
	}
	raw := make([]byte, SecretSize)
	defer clear(raw)
	if _, err := rand.Read(raw); err != nil {
		return "", "", fmt.Errorf("stepup: enroll: random secret: %w", err)
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      t.issuer,
		AccountName: userID,
		Period:      uint(Period / time.Second),
		Secret:      raw,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		// The error may quote the URL, secret and all: withhold it.
		return "", "", errors.New("stepup: enroll: cannot build the otpauth key (details withheld: they may contain the secret)")
	}
	sealed, err := t.sealer.seal(tenantID, userID, raw)
	if err != nil {
		return "", "", fmt.Errorf("stepup: enroll: seal: %w", err)
	}
	if err := t.store.PutEnrollment(ctx, tenantID, userID, sealed); err != nil {
		return "", "", fmt.Errorf("stepup: enroll: %w", err)
	}
	t.log.LogAttrs(ctx, slog.LevelInfo, "stepup: approver enrolled",
		slog.String("event", "stepup.enrolled"),
		slog.String("tenant", tenantID),
		slog.String("user", userID))
	return key.Secret(), key.URL(), nil
}

// Verify accepts code if it is the TOTP code of userID of tenantID for the
// current time step or one step either side, and no code of that step or a
// later one was accepted before; the step is then marked used in the
// store. Otherwise it fails with an error wrapping [ErrRateLimited] (too
// many recent failures: the code is not even checked), [ErrInvalidCode]
// (not exactly 6 ASCII digits, or wrong), [ErrNotEnrolled] or
// [ErrReplayed], each logged as a security event and counted toward the
// rate limit (except ErrRateLimited itself); with another error, not
// counted, if an ID is invalid, the sealed secret does not open under the
// key, or the store fails.
func (t *TOTP) Verify(ctx context.Context, tenantID, userID, code string) error {
	if err := checkIDs(tenantID, userID); err != nil {
		return fmt.Errorf("stepup: verify: %w", err)
	}
	now := t.now()
	k := userKey{tenant: tenantID, user: userID}
	if !t.limiter.begin(k, now) {
		t.securityEvent(ctx, tenantID, userID, reasonRateLimited)
		return fmt.Errorf("stepup: verify: %w", ErrRateLimited)
	}
	result := neutral
	defer func() { t.limiter.end(k, t.now(), result) }()
	refuse := func(reason string, err error) error {
		result = failed
		t.securityEvent(ctx, tenantID, userID, reason)
		return fmt.Errorf("stepup: verify: %w", err)
	}

	if !wellFormed(code) {
		return refuse(reasonMalformed, ErrInvalidCode)
	}
	sealed, err := t.store.GetEnrollment(ctx, tenantID, userID)
	switch {
	case errors.Is(err, ErrNotEnrolled):
		return refuse(reasonNotEnrolled, ErrNotEnrolled)
	case err != nil:
		return fmt.Errorf("stepup: verify: %w", err)
	}
	raw, err := t.sealer.open(tenantID, userID, sealed)
	if err != nil {
		t.securityEvent(ctx, tenantID, userID, reasonUnsealable)
		return fmt.Errorf("stepup: verify: %w", err)
	}
	step, ok := matchStep(raw, code, now)
	clear(raw)
	if !ok {
		return refuse(reasonWrong, ErrInvalidCode)
	}
	err = t.store.UseStep(ctx, tenantID, userID, step)
	switch {
	case errors.Is(err, ErrReplayed):
		return refuse(reasonReplayed, ErrReplayed)
	case errors.Is(err, ErrNotEnrolled): // withdrawn meanwhile
		return refuse(reasonNotEnrolled, ErrNotEnrolled)
	case err != nil:
		return fmt.Errorf("stepup: verify: %w", err)
	}
	result = succeeded
	return nil
}

// securityEvent logs a refusal. It never logs the code or the secret.
func (t *TOTP) securityEvent(ctx context.Context, tenantID, userID, reason string) {
	t.log.LogAttrs(ctx, slog.LevelWarn, "stepup: second factor refused",
		slog.String("event", "stepup.failure"),
		slog.String("tenant", tenantID),
		slog.String("user", userID),
		slog.String("reason", reason))
}

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// matchStep returns the time step within the skew around now whose code
// is code (the latest, should several match), and whether there is one.
func matchStep(raw []byte, code string, now time.Time) (int64, bool) {
	secret := b32.EncodeToString(raw)
	period := int64(Period / time.Second)
	current := now.Unix() / period
	if now.Unix() < 0 {
		return 0, false
	}
	opts := totp.ValidateOpts{Period: uint(period), Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	var match int64
	found := false
	// Check every step, without stopping at a match, so the time taken
	// does not tell which step matched.
	for s := current - Skew; s <= current+Skew; s++ {
		if s <= 0 {
			continue
		}
		ok, err := totp.ValidateCustom(code, secret, time.Unix(s*period, 0), opts)
		if err == nil && ok {
			match, found = s, true
		}
	}
	return match, found
}

// wellFormed reports whether code is exactly Digits ASCII digits.
func wellFormed(code string) bool {
	if len(code) != Digits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

// checkIDs checks a tenant and user ID pair.
func checkIDs(tenantID, userID string) error {
	for _, f := range []struct{ name, v string }{{"tenant id", tenantID}, {"user id", userID}} {
		switch {
		case f.v == "":
			return fmt.Errorf("%s is empty", f.name)
		case len(f.v) > MaxIDLength:
			return fmt.Errorf("%s is longer than %d bytes", f.name, MaxIDLength)
		case !utf8.ValidString(f.v) || strings.ContainsRune(f.v, 0):
			return fmt.Errorf("%s is not UTF-8 without NUL", f.name)
		}
	}
	return nil
}
