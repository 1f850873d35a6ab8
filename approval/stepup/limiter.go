package stepup

import (
	"slices"
	"sync"
	"time"
)

// userKey names one approver.
type userKey struct{ tenant, user string }

// limiter counts recent verification failures per approver. An attempt
// reserves a slot with begin and releases it with end, so that concurrent
// attempts cannot together exceed the limit.
type limiter struct {
	limit  int
	window time.Duration

	mu        sync.Mutex
	m         map[userKey]*attempts
	sweepAt   int       // sweep expired entries once the map is this large
	lastSweep time.Time // or once a window has passed since this
}

// attempts are the failures within the window and the attempts in flight
// of one approver.
type attempts struct {
	fails    []time.Time
	inflight int
}

// minSweep is the smallest map size at which the limiter sweeps.
const minSweep = 1024

func newLimiter(limit int, window time.Duration) *limiter {
	return &limiter{limit: limit, window: window, m: make(map[userKey]*attempts), sweepAt: minSweep}
}

// begin reserves an attempt for k at now and reports whether it may
// proceed: false when the failures within the window and the attempts in
// flight reach the limit. A true result must be followed by end.
func (l *limiter) begin(k userKey, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.m) >= l.sweepAt || now.Sub(l.lastSweep) >= l.window {
		l.sweep(now)
	}
	a := l.m[k]
	if a == nil {
		a = &attempts{}
		l.m[k] = a
	}
	a.prune(now, l.window)
	if len(a.fails)+a.inflight >= l.limit {
		return false
	}
	a.inflight++
	return true
}

// outcome is how an attempt ended, for the limiter.
type outcome int

const (
	// neutral attempts (store errors) leave the failures as they are.
	neutral outcome = iota
	// failed attempts count toward the limit.
	failed
	// succeeded attempts forget the earlier failures.
	succeeded
)

// end releases the attempt begun for k, recording a failure at now or
// forgetting the earlier failures as the outcome says.
func (l *limiter) end(k userKey, now time.Time, o outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	a := l.m[k]
	if a == nil {
		return
	}
	a.inflight--
	switch o {
	case failed:
		a.fails = append(a.fails, now)
		if n := len(a.fails) - l.limit; n > 0 {
			a.fails = slices.Delete(a.fails, 0, n)
		}
	case succeeded:
		a.fails = nil
	}
	if a.inflight <= 0 && len(a.fails) == 0 {
		delete(l.m, k)
	}
}

// sweep drops the entries with no failure in the window and no attempt in
// flight, and sets when to sweep next: once the map doubles, or a window
// later, so that memory is bounded by the approvers who failed within
// about two windows. l.mu must be held.
func (l *limiter) sweep(now time.Time) {
	for k, a := range l.m {
		a.prune(now, l.window)
		if a.inflight <= 0 && len(a.fails) == 0 {
			delete(l.m, k)
		}
	}
	l.sweepAt = max(minSweep, 2*len(l.m))
	l.lastSweep = now
}

// prune drops the failures older than window before now.
func (a *attempts) prune(now time.Time, window time.Duration) {
	cutoff := now.Add(-window)
	a.fails = slices.DeleteFunc(a.fails, func(f time.Time) bool { return !f.After(cutoff) })
}
