package stepup

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiterForgetsExpiredEntries(t *testing.T) {
	l := newLimiter(3, time.Minute)
	t0 := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5000 {
		k := userKey{"tenant", strconv.Itoa(i)}
		if !l.begin(k, t0) {
			t.Fatalf("begin(user %d) = false, want true", i)
		}
		l.end(k, t0, failed)
	}
	if got := len(l.m); got != 5000 {
		t.Fatalf("entries after 5000 failures within the window = %d, want 5000", got)
	}
	// Past the window, new users trigger sweeps that drop the old entries.
	later := t0.Add(2 * time.Minute)
	for i := range 20000 {
		k := userKey{"tenant", "new-" + strconv.Itoa(i)}
		if !l.begin(k, later) {
			t.Fatalf("begin(new user %d) = false, want true", i)
		}
		l.end(k, later, succeeded)
	}
	if got := len(l.m); got != 0 {
		t.Errorf("entries after the window passed and new users succeeded = %d, want 0", got)
	}

	k := userKey{"tenant", "x"}
	for i := range 3 {
		if !l.begin(k, later) {
			t.Fatalf("begin #%d = false, want true", i)
		}
		l.end(k, later, failed)
	}
	if l.begin(k, later) {
		t.Errorf("begin after 3 failures = true, want false")
	}
	if !l.begin(k, later.Add(time.Minute+time.Nanosecond)) {
		t.Errorf("begin after the window = false, want true")
	}
}
