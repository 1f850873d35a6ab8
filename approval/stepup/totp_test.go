package stepup_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/internal/testutil"
)

// t0 is a fixed time in the middle of a 30-second step.
var t0 = time.Date(2026, 5, 1, 9, 0, 15, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, stepup.KeySize) }

type fixture struct {
	store *stepup.MemStore
	clock *fakeClock
	totp  *stepup.TOTP
	logs  *testutil.SyncBuffer // shared by the replicas' handlers
}

// newFixture returns a TOTP on a fresh MemStore with a fake clock at t0
// and a JSON log captured in a buffer.
func newFixture(t testing.TB, opts ...stepup.Option) *fixture {
	t.Helper()
	f := &fixture{store: &stepup.MemStore{}, clock: &fakeClock{t: t0}, logs: &testutil.SyncBuffer{}}
	f.totp = f.replica(t, opts...)
	return f
}

// replica returns another TOTP on the fixture's store, key and clock, as
// a second server replica would have.
func (f *fixture) replica(t testing.TB, opts ...stepup.Option) *stepup.TOTP {
	t.Helper()
	h := slog.NewJSONHandler(f.logs, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{} // no timestamps: they hold digits
			}
			return a
		},
	})
	all := append([]stepup.Option{stepup.WithClock(f.clock.now), stepup.WithLogger(slog.New(h))}, opts...)
	tp, err := stepup.New(f.store, testKey(7), all...)
	require.NoError(t, err, "New")
	return tp
}

func (f *fixture) enroll(t *testing.T, tenantID, userID string) string {
	t.Helper()
	secret, _, err := f.totp.Enroll(context.Background(), tenantID, userID)
	require.NoError(t, err, "Enroll(%q, %q)", tenantID, userID)
	return secret
}

func code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	require.NoError(t, err, "GenerateCode")
	return c
}

// otherCode returns a well-formed code that is none of the codes of the
// steps around at.
func otherCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for _, d := range []time.Duration{-stepup.Period, 0, stepup.Period} {
		near[code(t, secret, at.Add(d))] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333"} {
		if !near[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func TestVerify(t *testing.T) {
	tests := []struct {
		name string
		code func(t *testing.T, secret string) string
		want error
	}{
		{"current step", func(t *testing.T, s string) string { return code(t, s, t0) }, nil},
		{"previous step", func(t *testing.T, s string) string { return code(t, s, t0.Add(-stepup.Period)) }, nil},
		{"next step", func(t *testing.T, s string) string { return code(t, s, t0.Add(stepup.Period)) }, nil},
		{"two steps back", func(t *testing.T, s string) string { return code(t, s, t0.Add(-2*stepup.Period)) }, stepup.ErrInvalidCode},
		{"two steps ahead", func(t *testing.T, s string) string { return code(t, s, t0.Add(2*stepup.Period)) }, stepup.ErrInvalidCode},
		{"wrong", func(t *testing.T, s string) string { return otherCode(t, s, t0) }, stepup.ErrInvalidCode},
		{"empty", func(*testing.T, string) string { return "" }, stepup.ErrInvalidCode},
		{"five digits", func(t *testing.T, s string) string { return code(t, s, t0)[:5] }, stepup.ErrInvalidCode},
		{"seven digits", func(t *testing.T, s string) string { return code(t, s, t0) + "0" }, stepup.ErrInvalidCode},
		{"leading space", func(t *testing.T, s string) string { return " " + code(t, s, t0)[1:] }, stepup.ErrInvalidCode},
		{"trailing newline", func(t *testing.T, s string) string { return code(t, s, t0)[:5] + "\n" }, stepup.ErrInvalidCode},
		{"letters", func(*testing.T, string) string { return "12345a" }, stepup.ErrInvalidCode},
		{"fullwidth digits", func(*testing.T, string) string { return "１２３４５６" }, stepup.ErrInvalidCode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			secret := f.enroll(t, "tenant-a", "alice")
			c := tt.code(t, secret)
			err := f.totp.Verify(context.Background(), "tenant-a", "alice", c)
			if tt.want == nil {
				assert.NoError(t, err, "Verify(%s) = %v, want nil", tt.name, err)
				return
			}
			assert.ErrorIs(t, err, tt.want, "Verify(%s)", tt.name)
		})
	}
}

func TestVerifyReplay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := f.enroll(t, "tenant-a", "alice")
	c := code(t, secret, t0)
	require.NoError(t, f.totp.Verify(ctx, "tenant-a", "alice", c), "Verify(right code), first use")

	err := f.totp.Verify(ctx, "tenant-a", "alice", c)
	assert.ErrorIs(t, err, stepup.ErrReplayed, "Verify(same code again)")

	second := f.replica(t)
	err = second.Verify(ctx, "tenant-a", "alice", c)
	assert.ErrorIs(t, err, stepup.ErrReplayed, "Verify(same code) on a second replica")

	// Later, within the skew, the code of the used step is still refused.
	f.clock.advance(stepup.Period)
	err = second.Verify(ctx, "tenant-a", "alice", c)
	assert.ErrorIs(t, err, stepup.ErrReplayed, "Verify(same code) one step later")
}

func TestVerifyReplayAcrossReplicasConcurrently(t *testing.T) {
	f := newFixture(t)
	secret := f.enroll(t, "tenant-a", "alice")
	c := code(t, secret, t0)
	replicas := []*stepup.TOTP{f.totp, f.replica(t), f.replica(t), f.replica(t)}
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, r := range replicas {
		wg.Go(func() { errs[i] = r.Verify(context.Background(), "tenant-a", "alice", c) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, stepup.ErrReplayed, "Verify on replica %d", i)
	}
	assert.Equal(t, 1, ok, "successful Verify calls of one code across replicas")
}

func TestVerifySkewNeverTwice(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	secret := f.enroll(t, "tenant-a", "alice")
	prev := code(t, secret, t0.Add(-stepup.Period))
	cur := code(t, secret, t0)
	next := code(t, secret, t0.Add(stepup.Period))

	steps := []struct {
		name string
		code string
		want error
	}{
		{"previous step", prev, nil},
		{"previous step again", prev, stepup.ErrReplayed},
		{"current step", cur, nil},
		{"current step again", cur, stepup.ErrReplayed},
		{"previous step after current", prev, stepup.ErrReplayed},
		{"next step", next, nil},
		{"next step again", next, stepup.ErrReplayed},
		{"current step after next", cur, stepup.ErrReplayed},
	}
	for _, s := range steps {
		err := f.totp.Verify(ctx, "tenant-a", "alice", s.code)
		if s.want == nil {
			assert.NoError(t, err, "Verify(%s)", s.name)
			continue
		}
		assert.ErrorIs(t, err, s.want, "Verify(%s)", s.name)
	}
}

func TestVerifyRateLimit(t *testing.T) {
	const limit, window = 3, 15 * time.Minute
	f := newFixture(t, stepup.WithFailureLimit(limit, window))
	ctx := context.Background()
	secret := f.enroll(t, "tenant-a", "alice")
	bobSecret := f.enroll(t, "tenant-a", "bob")

	for i := range limit {
		err := f.totp.Verify(ctx, "tenant-a", "alice", otherCode(t, secret, f.clock.now()))
		require.ErrorIs(t, err, stepup.ErrInvalidCode, "Verify(wrong code) #%d", i)
		f.clock.advance(time.Minute)
	}
	// Locked: even the right code is refused, and not consumed.
	right := code(t, secret, f.clock.now())
	err := f.totp.Verify(ctx, "tenant-a", "alice", right)
	assert.ErrorIs(t, err, stepup.ErrRateLimited, "Verify(right code) after %d failures", limit)
	assert.NotErrorIs(t, err, stepup.ErrInvalidCode, "Verify(right code) after %d failures", limit)

	// Another approver is not affected.
	assert.NoError(t, f.totp.Verify(ctx, "tenant-a", "bob", code(t, bobSecret, f.clock.now())), "Verify(bob) while alice is locked")
	// Nor is the same user name in another tenant.
	err = f.totp.Verify(ctx, "tenant-b", "alice", "123456")
	assert.ErrorIs(t, err, stepup.ErrNotEnrolled, "Verify(tenant-b alice) while tenant-a alice is locked")

	// Still locked until the first failure leaves the window.
	f.clock.advance(window - time.Duration(limit)*time.Minute - time.Second)
	err = f.totp.Verify(ctx, "tenant-a", "alice", code(t, secret, f.clock.now()))
	assert.ErrorIs(t, err, stepup.ErrRateLimited, "Verify(right code) just before the window passes")

	f.clock.advance(time.Second)
	err = f.totp.Verify(ctx, "tenant-a", "alice", code(t, secret, f.clock.now()))
	assert.NoError(t, err, "Verify(right code) once the first failure left the window")

	// A success forgets the failures: limit-1 new failures do not lock.
	f.clock.advance(stepup.Period)
	for i := range limit - 1 {
		err := f.totp.Verify(ctx, "tenant-a", "alice", otherCode(t, secret, f.clock.now()))
		require.ErrorIs(t, err, stepup.ErrInvalidCode, "Verify(wrong code) #%d after a success", i)
	}
	err = f.totp.Verify(ctx, "tenant-a", "alice", code(t, secret, f.clock.now()))
	assert.NoError(t, err, "Verify(right code) after %d new failures", limit-1)
}

func TestVerifyRateLimitConcurrent(t *testing.T) {
	const limit, n = 3, 12
	f := newFixture(t, stepup.WithFailureLimit(limit, time.Hour))
	secret := f.enroll(t, "tenant-a", "alice")
	wrong := otherCode(t, secret, t0)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = f.totp.Verify(context.Background(), "tenant-a", "alice", wrong) })
	}
	wg.Wait()
	var checked, limited int
	for i, err := range errs {
		switch {
		case errors.Is(err, stepup.ErrInvalidCode):
			checked++
		case errors.Is(err, stepup.ErrRateLimited):
			limited++
		default:
			t.Errorf("concurrent Verify #%d = %v, want ErrInvalidCode or ErrRateLimited", i, err)
		}
	}
	assert.Equal(t, limit, checked, "codes checked among %d concurrent wrong attempts", n)
	assert.Equal(t, n-limit, limited, "attempts refused by the rate limit")
}

func TestVerifyNotEnrolled(t *testing.T) {
	f := newFixture(t)
	err := f.totp.Verify(context.Background(), "tenant-a", "nobody", "123456")
	assert.ErrorIs(t, err, stepup.ErrNotEnrolled, "Verify(not enrolled)")
}

func TestSealedSecretMoved(t *testing.T) {
	ctx := context.Background()
	// The victim is alice of tenant-a; her sealed secret is copied into
	// another approver's row.
	tests := []struct{ name, tenant, user string }{
		{"to another user", "tenant-a", "mallory"},
		{"to another tenant", "tenant-b", "alice"},
		{"ambiguous concatenation", "tenant-aa", "lice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			secret := f.enroll(t, "tenant-a", "alice")
			f.enroll(t, tt.tenant, tt.user)
			sealed, err := f.store.GetEnrollment(ctx, "tenant-a", "alice")
			require.NoError(t, err, "GetEnrollment(victim)")
			require.NoError(t, f.store.PutEnrollment(ctx, tt.tenant, tt.user, sealed), "PutEnrollment(copied secret)")

			err = f.totp.Verify(ctx, tt.tenant, tt.user, code(t, secret, t0))
			assert.Error(t, err, "Verify(victim's code) with the victim's sealed secret moved to %s/%s", tt.tenant, tt.user)
			assert.NotContains(t, f.logs.String(), secret, "log after a failed unseal")
			// The victim's own enrollment still works.
			assert.NoError(t, f.totp.Verify(ctx, "tenant-a", "alice", code(t, secret, t0)), "Verify(victim)")
		})
	}

	t.Run("other key", func(t *testing.T) {
		f := newFixture(t)
		secret := f.enroll(t, "tenant-a", "alice")
		other, err := stepup.New(f.store, testKey(8), stepup.WithClock(f.clock.now))
		require.NoError(t, err, "New(other key)")
		err = other.Verify(ctx, "tenant-a", "alice", code(t, secret, t0))
		assert.Error(t, err, "Verify under another key")
	})

	t.Run("tampered", func(t *testing.T) {
		f := newFixture(t)
		secret := f.enroll(t, "tenant-a", "alice")
		sealed, err := f.store.GetEnrollment(ctx, "tenant-a", "alice")
		require.NoError(t, err, "GetEnrollment")
		sealed[len(sealed)-1] ^= 1
		require.NoError(t, f.store.PutEnrollment(ctx, "tenant-a", "alice", sealed), "PutEnrollment(tampered)")
		err = f.totp.Verify(ctx, "tenant-a", "alice", code(t, secret, t0))
		assert.Error(t, err, "Verify with a tampered sealed secret")
	})
}

func TestSealedSecretIsNotPlain(t *testing.T) {
	f := newFixture(t)
	secret := f.enroll(t, "tenant-a", "alice")
	sealed, err := f.store.GetEnrollment(context.Background(), "tenant-a", "alice")
	require.NoError(t, err, "GetEnrollment")
	raw, err := b32decode(secret)
	require.NoError(t, err, "decode secret")
	assert.False(t, bytes.Contains(sealed, raw), "sealed secret contains the raw secret")
	assert.False(t, bytes.Contains(sealed, []byte(secret)), "sealed secret contains the base32 secret")
	assert.Len(t, sealed, 1+24+stepup.SecretSize+16, "sealed secret length")
}

func TestEnroll(t *testing.T) {
	f := newFixture(t, stepup.WithIssuer("Acme Approvals"))
	ctx := context.Background()
	secret, u, err := f.totp.Enroll(ctx, "tenant-a", "alice@example.com")
	require.NoError(t, err, "Enroll")
	raw, err := b32decode(secret)
	require.NoError(t, err, "Enroll secret is base32")
	assert.Len(t, raw, stepup.SecretSize, "secret size")

	parsed, err := url.Parse(u)
	require.NoError(t, err, "parse otpauth URL")
	assert.Equal(t, "otpauth", parsed.Scheme, "URL scheme")
	assert.Equal(t, "totp", parsed.Host, "URL host")
	assert.Equal(t, "/Acme Approvals:alice@example.com", parsed.Path, "URL label")
	q := parsed.Query()
	assert.Equal(t, secret, q.Get("secret"), "URL secret")
	assert.Equal(t, "Acme Approvals", q.Get("issuer"), "URL issuer")
	assert.Equal(t, "30", q.Get("period"), "URL period")
	assert.Equal(t, "6", q.Get("digits"), "URL digits")
	assert.Equal(t, "SHA1", q.Get("algorithm"), "URL algorithm")

	// Re-enrolling replaces the secret: the old codes stop working.
	secret2, _, err := f.totp.Enroll(ctx, "tenant-a", "alice@example.com")
	require.NoError(t, err, "Enroll again")
	assert.NotEqual(t, secret, secret2, "secret after re-enrolling")
	err = f.totp.Verify(ctx, "tenant-a", "alice@example.com", code(t, secret, t0))
	if code(t, secret, t0) != code(t, secret2, t0) {
		assert.ErrorIs(t, err, stepup.ErrInvalidCode, "Verify(old secret's code) after re-enrolling")
	}
	assert.NoError(t, f.totp.Verify(ctx, "tenant-a", "alice@example.com", code(t, secret2, t0.Add(stepup.Period))), "Verify(new secret's code)")
}

func TestInvalidIDs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	tests := []struct{ name, tenant, user string }{
		{"empty tenant", "", "alice"},
		{"empty user", "tenant-a", ""},
		{"long user", "tenant-a", strings.Repeat("u", stepup.MaxIDLength+1)},
		{"NUL", "tenant-a", "al\x00ice"},
		{"invalid UTF-8", "tenant-\xff", "alice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.totp.Enroll(ctx, tt.tenant, tt.user)
			assert.Error(t, err, "Enroll(%q, %q)", tt.tenant, tt.user)
			err = f.totp.Verify(ctx, tt.tenant, tt.user, "123456")
			assert.Error(t, err, "Verify(%q, %q)", tt.tenant, tt.user)
			assert.NotErrorIs(t, err, stepup.ErrNotEnrolled, "Verify(%q, %q)", tt.tenant, tt.user)
		})
	}
}

func TestNew(t *testing.T) {
	store := &stepup.MemStore{}
	tests := []struct {
		name  string
		store stepup.Store
		key   []byte
		opts  []stepup.Option
	}{
		{"nil store", nil, testKey(1), nil},
		{"short key", store, testKey(1)[:31], nil},
		{"long key", store, append(testKey(1), 0), nil},
		{"nil key", store, nil, nil},
		{"nil option", store, testKey(1), []stepup.Option{nil}},
		{"empty issuer", store, testKey(1), []stepup.Option{stepup.WithIssuer("")}},
		{"issuer with colon", store, testKey(1), []stepup.Option{stepup.WithIssuer("a:b")}},
		{"nil clock", store, testKey(1), []stepup.Option{stepup.WithClock(nil)}},
		{"nil logger", store, testKey(1), []stepup.Option{stepup.WithLogger(nil)}},
		{"zero failure limit", store, testKey(1), []stepup.Option{stepup.WithFailureLimit(0, time.Minute)}},
		{"zero window", store, testKey(1), []stepup.Option{stepup.WithFailureLimit(5, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := stepup.New(tt.store, tt.key, tt.opts...)
			assert.Error(t, err, "New(%s)", tt.name)
			assert.Nil(t, got, "New(%s)", tt.name)
		})
	}
	got, err := stepup.New(store, testKey(1))
	assert.NoError(t, err, "New(valid)")
	assert.NotNil(t, got, "New(valid)")
}

// logRecord is one line of the captured JSON log.
type logRecord struct {
	Level  string `json:"level"`
	Msg    string `json:"msg"`
	Event  string `json:"event"`
	Tenant string `json:"tenant"`
	User   string `json:"user"`
	Reason string `json:"reason"`
}

func TestSecurityEventLogs(t *testing.T) {
	f := newFixture(t, stepup.WithFailureLimit(5, time.Hour))
	ctx := context.Background()
	secret, u, err := f.totp.Enroll(ctx, "tenant-a", "alice")
	require.NoError(t, err, "Enroll")
	right := code(t, secret, t0)
	wrong := otherCode(t, secret, t0)
	codes := []string{right, wrong}

	require.NoError(t, f.totp.Verify(ctx, "tenant-a", "alice", right), "Verify(right)")
	attempts := []struct {
		code, reason string
	}{
		{right, "replayed_code"},
		{wrong, "wrong_code"},
		{"12345x", "malformed_code"},
		{wrong, "wrong_code"},
		{wrong, "wrong_code"},
		{right, "rate_limited"},
	}
	for _, a := range attempts {
		assert.Error(t, f.totp.Verify(ctx, "tenant-a", "alice", a.code), "Verify(%s attempt)", a.reason)
	}
	assert.ErrorIs(t, f.totp.Verify(ctx, "tenant-a", "bob", wrong), stepup.ErrNotEnrolled, "Verify(bob)")

	out := f.logs.String()
	raw, err := b32decode(secret)
	require.NoError(t, err, "decode secret")
	for _, s := range append(codes, secret, strings.ToLower(secret), u, string(raw), "12345x") {
		assert.NotContains(t, out, s, "log output contains a secret or a code")
	}

	var failures []logRecord
	for line := range strings.SplitSeq(strings.TrimSpace(out), "\n") {
		var r logRecord
		require.NoError(t, json.Unmarshal([]byte(line), &r), "log line %q", line)
		if r.Event == "stepup.failure" {
			failures = append(failures, r)
		}
	}
	want := []logRecord{}
	for _, a := range attempts {
		want = append(want, logRecord{Level: "WARN", Event: "stepup.failure", Tenant: "tenant-a", User: "alice", Reason: a.reason})
	}
	want = append(want, logRecord{Level: "WARN", Event: "stepup.failure", Tenant: "tenant-a", User: "bob", Reason: "not_enrolled"})
	for i := range failures {
		failures[i].Msg = ""
	}
	assert.Equal(t, want, failures, "stepup.failure security events")
}

func TestVerifierFunc(t *testing.T) {
	var got []string
	var v stepup.Verifier = stepup.VerifierFunc(func(_ context.Context, tenantID, userID, code string) error {
		got = append(got, tenantID, userID, code)
		return stepup.ErrInvalidCode
	})
	err := v.Verify(context.Background(), "t", "u", "123456")
	assert.ErrorIs(t, err, stepup.ErrInvalidCode, "VerifierFunc.Verify")
	assert.Equal(t, []string{"t", "u", "123456"}, got, "VerifierFunc arguments")
}

// flakyStore is a MemStore whose GetEnrollment fails while broken is set.
type flakyStore struct {
	stepup.MemStore
	broken atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *flakyStore) GetEnrollment(ctx context.Context, tenantID, userID string) ([]byte, error) {
	if s.broken.Load() {
		return nil, errStoreDown
	}
	return s.MemStore.GetEnrollment(ctx, tenantID, userID)
}

func TestStoreErrorNeitherCountsNorResets(t *testing.T) {
	ctx := context.Background()
	store := &flakyStore{}
	now := func() time.Time { return t0 }
	tp, err := stepup.New(store, testKey(1), stepup.WithClock(now), stepup.WithFailureLimit(2, time.Hour))
	require.NoError(t, err, "New")
	secret, _, err := tp.Enroll(ctx, "tenant-a", "alice")
	require.NoError(t, err, "Enroll")
	wrong := otherCode(t, secret, t0)

	require.ErrorIs(t, tp.Verify(ctx, "tenant-a", "alice", wrong), stepup.ErrInvalidCode, "Verify(wrong) #1")
	store.broken.Store(true)
	for i := range 3 {
		err := tp.Verify(ctx, "tenant-a", "alice", code(t, secret, t0))
		assert.ErrorIs(t, err, errStoreDown, "Verify while the store is down #%d", i)
	}
	store.broken.Store(false)
	require.ErrorIs(t, tp.Verify(ctx, "tenant-a", "alice", wrong), stepup.ErrInvalidCode, "Verify(wrong) #2")
	err = tp.Verify(ctx, "tenant-a", "alice", code(t, secret, t0))
	assert.ErrorIs(t, err, stepup.ErrRateLimited, "Verify(right) after 2 failures around store errors")
}
