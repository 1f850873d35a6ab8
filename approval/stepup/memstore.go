package stepup

import (
	"context"
	"fmt"
	"sync"
)

// MemStore is a [Store] in memory, for tests and development: enrollments
// are lost when the process ends. The zero value is an empty store ready
// for use. A MemStore is safe for concurrent use by multiple goroutines.
type MemStore struct {
	mu sync.Mutex
	m  map[userKey]*memEnrollment
}

type memEnrollment struct {
	sealed   []byte
	lastStep int64
}

var _ Store = (*MemStore)(nil)

// PutEnrollment stores a copy of sealedSecret for the approver, replacing
// any earlier enrollment and resetting its last used step; see [Store].
func (s *MemStore) PutEnrollment(ctx context.Context, tenantID, userID string, sealedSecret []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stepup: memstore: put enrollment: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[userKey]*memEnrollment)
	}
	s.m[userKey{tenantID, userID}] = &memEnrollment{sealed: append([]byte(nil), sealedSecret...)}
	return nil
}

// GetEnrollment returns a copy of the approver's sealed secret, or an
// error wrapping [ErrNotEnrolled]; see [Store].
func (s *MemStore) GetEnrollment(ctx context.Context, tenantID, userID string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("stepup: memstore: get enrollment: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[userKey{tenantID, userID}]
	if !ok {
		return nil, fmt.Errorf("stepup: memstore: get enrollment: %w", ErrNotEnrolled)
	}
	return append([]byte(nil), e.sealed...), nil
}

// UseStep makes step the approver's last used step if it is greater than
// the current one, failing with [ErrReplayed] otherwise and with
// [ErrNotEnrolled] for an unknown approver; see [Store].
func (s *MemStore) UseStep(ctx context.Context, tenantID, userID string, step int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stepup: memstore: use step: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[userKey{tenantID, userID}]
	switch {
	case !ok:
		return fmt.Errorf("stepup: memstore: use step: %w", ErrNotEnrolled)
	case step <= e.lastStep:
		return fmt.Errorf("stepup: memstore: use step: %w", ErrReplayed)
	}
	e.lastStep = step
	return nil
}
