// Package stepuptest is the conformance suite for implementations of
// [stepup.Store]. A store's tests call [Run] with a function returning a
// fresh, empty store:
//
//	func TestStepupConformance(t *testing.T) {
//		stepuptest.Run(t, func(t *testing.T) stepup.Store { return openEmptyStore(t) })
//	}
//
// It uses only the standard library and package stepup.
package stepuptest

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/oarsdev/oars/approval/stepup"
)

// Run runs every conformance case as a subtest, each on a fresh store made
// by newStore, which should register the store's cleanup with t.Cleanup.
// Every failure is reported; Run does not stop at the first.
func Run(t *testing.T, newStore func(t *testing.T) stepup.Store) {
	t.Helper()
	cases := []struct {
		name string
		fn   func(t *testing.T, s stepup.Store)
	}{
		{"GetNotEnrolled", testGetNotEnrolled},
		{"PutGet", testPutGet},
		{"Copies", testCopies},
		{"Replace", testReplace},
		{"Isolation", testIsolation},
		{"UseStepNotEnrolled", testUseStepNotEnrolled},
		{"UseStepMonotonic", testUseStepMonotonic},
		{"UseStepPerUser", testUseStepPerUser},
		{"ReenrollResetsStep", testReenrollResetsStep},
		{"ConcurrentUseStep", testConcurrentUseStep},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.fn(t, newStore(t))
		})
	}
}

// secret returns distinct opaque bytes standing for a sealed secret, with
// every byte value in it.
func secret(tag byte) []byte {
	b := make([]byte, 0, 300)
	b = append(b, tag)
	for i := range 256 {
		b = append(b, byte(i))
	}
	return append(b, tag, 0, tag)
}

func put(t *testing.T, s stepup.Store, tenantID, userID string, sealed []byte) {
	t.Helper()
	if err := s.PutEnrollment(context.Background(), tenantID, userID, sealed); err != nil {
		t.Fatalf("PutEnrollment(%q, %q) = %v, want nil", tenantID, userID, err)
	}
}

func checkGet(t *testing.T, s stepup.Store, tenantID, userID string, want []byte) {
	t.Helper()
	got, err := s.GetEnrollment(context.Background(), tenantID, userID)
	if err != nil {
		t.Errorf("GetEnrollment(%q, %q) error = %v, want nil", tenantID, userID, err)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("GetEnrollment(%q, %q) = %x, want %x", tenantID, userID, got, want)
	}
}

func useStep(t *testing.T, s stepup.Store, tenantID, userID string, step int64, want error) {
	t.Helper()
	err := s.UseStep(context.Background(), tenantID, userID, step)
	switch {
	case want == nil && err != nil:
		t.Errorf("UseStep(%q, %q, %d) = %v, want nil", tenantID, userID, step, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("UseStep(%q, %q, %d) = %v, want an error wrapping %v", tenantID, userID, step, err, want)
	}
}

func testGetNotEnrolled(t *testing.T, s stepup.Store) {
	got, err := s.GetEnrollment(context.Background(), "tenant-a", "alice")
	if !errors.Is(err, stepup.ErrNotEnrolled) {
		t.Errorf("GetEnrollment(unknown) = %x, %v, want an error wrapping ErrNotEnrolled", got, err)
	}
}

func testPutGet(t *testing.T, s stepup.Store) {
	for i, id := range []struct{ tenant, user string }{
		{"tenant-a", "alice"},
		{"tenant-a", "bob@example.com"},
		{"ténant-ü", "用户"},
		{"t", "a user with spaces and 'quotes'"},
	} {
		sealed := secret(byte(i))
		put(t, s, id.tenant, id.user, sealed)
		checkGet(t, s, id.tenant, id.user, sealed)
	}
	big := bytes.Repeat([]byte{0xAB, 0x00}, 2048)
	put(t, s, "tenant-a", "big", big)
	checkGet(t, s, "tenant-a", "big", big)
}

func testCopies(t *testing.T, s stepup.Store) {
	sealed := secret(1)
	want := bytes.Clone(sealed)
	put(t, s, "tenant-a", "alice", sealed)
	sealed[0] ^= 0xFF // the store must have kept its own copy
	checkGet(t, s, "tenant-a", "alice", want)

	got, err := s.GetEnrollment(context.Background(), "tenant-a", "alice")
	if err != nil {
		t.Fatalf("GetEnrollment = %v, want nil", err)
	}
	if len(got) > 0 {
		got[0] ^= 0xFF // the caller may modify the result
	}
	checkGet(t, s, "tenant-a", "alice", want)
}

func testReplace(t *testing.T, s stepup.Store) {
	put(t, s, "tenant-a", "alice", secret(1))
	put(t, s, "tenant-a", "alice", secret(2))
	checkGet(t, s, "tenant-a", "alice", secret(2))
}

func testIsolation(t *testing.T, s stepup.Store) {
	ids := []struct{ tenant, user string }{
		{"tenant-a", "alice"},
		{"tenant-b", "alice"},
		{"tenant-a", "alice2"},
		{"ab", "c"},
		{"a", "bc"},
	}
	for i, id := range ids {
		put(t, s, id.tenant, id.user, secret(byte(i)))
	}
	for i, id := range ids {
		checkGet(t, s, id.tenant, id.user, secret(byte(i)))
	}
	if got, err := s.GetEnrollment(context.Background(), "tenant-c", "alice"); !errors.Is(err, stepup.ErrNotEnrolled) {
		t.Errorf("GetEnrollment(other tenant) = %x, %v, want an error wrapping ErrNotEnrolled", got, err)
	}
}

func testUseStepNotEnrolled(t *testing.T, s stepup.Store) {
	useStep(t, s, "tenant-a", "alice", 100, stepup.ErrNotEnrolled)
	put(t, s, "tenant-b", "alice", secret(1))
	useStep(t, s, "tenant-a", "alice", 100, stepup.ErrNotEnrolled)
}

func testUseStepMonotonic(t *testing.T, s stepup.Store) {
	put(t, s, "tenant-a", "alice", secret(1))
	useStep(t, s, "tenant-a", "alice", 0, stepup.ErrReplayed) // a fresh enrollment accepts steps > 0
	useStep(t, s, "tenant-a", "alice", 1, nil)
	useStep(t, s, "tenant-a", "alice", 1, stepup.ErrReplayed)
	useStep(t, s, "tenant-a", "alice", 59_000_000, nil)
	useStep(t, s, "tenant-a", "alice", 59_000_000, stepup.ErrReplayed)
	useStep(t, s, "tenant-a", "alice", 58_999_999, stepup.ErrReplayed)
	useStep(t, s, "tenant-a", "alice", 59_000_001, nil) // a refusal changed nothing
	useStep(t, s, "tenant-a", "alice", 59_000_000, stepup.ErrReplayed)
	// Using steps leaves the secret alone.
	checkGet(t, s, "tenant-a", "alice", secret(1))
}

func testUseStepPerUser(t *testing.T, s stepup.Store) {
	put(t, s, "tenant-a", "alice", secret(1))
	put(t, s, "tenant-a", "bob", secret(2))
	put(t, s, "tenant-b", "alice", secret(3))
	useStep(t, s, "tenant-a", "alice", 1000, nil)
	useStep(t, s, "tenant-a", "bob", 1000, nil)
	useStep(t, s, "tenant-b", "alice", 1000, nil)
	useStep(t, s, "tenant-a", "alice", 1000, stepup.ErrReplayed)
}

func testReenrollResetsStep(t *testing.T, s stepup.Store) {
	put(t, s, "tenant-a", "alice", secret(1))
	useStep(t, s, "tenant-a", "alice", 1000, nil)
	put(t, s, "tenant-a", "alice", secret(2))
	useStep(t, s, "tenant-a", "alice", 1000, nil)
	useStep(t, s, "tenant-a", "alice", 1000, stepup.ErrReplayed)
}

func testConcurrentUseStep(t *testing.T, s stepup.Store) {
	put(t, s, "tenant-a", "alice", secret(1))
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.UseStep(context.Background(), "tenant-a", "alice", 5000)
		}()
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, stepup.ErrReplayed):
			t.Errorf("concurrent UseStep #%d = %v, want nil or an error wrapping ErrReplayed", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("concurrent UseStep(same step) succeeded %d times, want exactly 1", ok)
	}
	if t.Failed() {
		t.Logf("errors: %v", errs)
	}
}
