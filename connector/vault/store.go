package vault

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Store keeps sealed secrets by name, each with the id of the key that
// sealed it. The store never sees a secret in the clear and does not
// check names or sealed bytes: [Vault] does. Implementations must be safe
// for concurrent use, also by several processes sharing one database.
// Stores written for this interface should pass vaulttest.Run.
type Store interface {
	// PutSecret stores sealed under name with keyID, replacing any secret
	// of that name, and sets its update time to now. It keeps its own copy
	// of sealed. When it returns nil the write is durable.
	PutSecret(ctx context.Context, name, keyID string, sealed []byte) error

	// GetSecret returns the key id and sealed bytes stored under name, in
	// a slice the caller may keep and modify. It fails with an error
	// wrapping ErrNotFound when there is none.
	GetSecret(ctx context.Context, name string) (keyID string, sealed []byte, err error)

	// ListSecrets returns every stored secret's name, key id and update
	// time, sorted by name in byte order, without the sealed bytes; an
	// empty store gives an empty list and no error.
	ListSecrets(ctx context.Context) ([]SecretInfo, error)

	// DeleteSecret removes the secret stored under name. It fails with an
	// error wrapping ErrNotFound when there is none.
	DeleteSecret(ctx context.Context, name string) error
}

// Swapper is an optional ability of a [Store]: replacing a secret only if
// it has not changed since it was read. [Vault.Rotate] uses it when the
// store has it, so that a secret put or deleted while rotation runs, by
// this or another process, is never overwritten with its old value.
type Swapper interface {
	// SwapSecret stores sealed under name with keyID, as PutSecret does,
	// only if the sealed bytes stored under name are still old, and
	// reports whether it did. It returns false and no error when the
	// secret has another value or none (it never creates one). Of
	// concurrent calls with the same old value, at most one succeeds.
	SwapSecret(ctx context.Context, name string, old []byte, keyID string, sealed []byte) (bool, error)
}

// SecretInfo describes a stored secret without its value.
type SecretInfo struct {
	Name  string
	KeyID string // the id of the key that sealed it
	// UpdatedAt is when the secret was last written by a put or a
	// rotation, to the millisecond.
	UpdatedAt time.Time
}

// MemStore is a [Store] and [Swapper] in memory, for tests and
// development: secrets are lost when the process ends. The zero value is
// an empty store ready for use. A MemStore is safe for concurrent use by
// multiple goroutines.
type MemStore struct {
	mu sync.Mutex
	m  map[string]memSecret
}

type memSecret struct {
	keyID   string
	sealed  []byte
	updated time.Time
}

var (
	_ Store   = (*MemStore)(nil)
	_ Swapper = (*MemStore)(nil)
)

// nowMilli returns the current time in UTC, truncated to the millisecond
// as the database stores keep it.
func nowMilli() time.Time { return time.UnixMilli(time.Now().UnixMilli()).UTC() }

// PutSecret stores a copy of sealed under name, replacing any earlier
// secret of that name; see [Store].
func (s *MemStore) PutSecret(ctx context.Context, name, keyID string, sealed []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault: memstore: put: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]memSecret)
	}
	s.m[name] = memSecret{keyID: keyID, sealed: bytes.Clone(sealed), updated: nowMilli()}
	return nil
}

// GetSecret returns the key id and a copy of the sealed bytes of name, or
// an error wrapping [ErrNotFound]; see [Store].
func (s *MemStore) GetSecret(ctx context.Context, name string) (string, []byte, error) {
	if err := ctx.Err(); err != nil {
		return "", nil, fmt.Errorf("vault: memstore: get: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[name]
	if !ok {
		return "", nil, fmt.Errorf("vault: memstore: get: %w", ErrNotFound)
	}
	return e.keyID, append([]byte{}, e.sealed...), nil
}

// ListSecrets returns the stored secrets sorted by name; see [Store].
func (s *MemStore) ListSecrets(ctx context.Context) ([]SecretInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("vault: memstore: list: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]SecretInfo, 0, len(s.m))
	for name, e := range s.m {
		out = append(out, SecretInfo{Name: name, KeyID: e.keyID, UpdatedAt: e.updated})
	}
	slices.SortFunc(out, func(a, b SecretInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteSecret removes name, or fails with an error wrapping
// [ErrNotFound]; see [Store].
func (s *MemStore) DeleteSecret(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("vault: memstore: delete: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[name]; !ok {
		return fmt.Errorf("vault: memstore: delete: %w", ErrNotFound)
	}
	delete(s.m, name)
	return nil
}

// SwapSecret replaces name only if its sealed bytes are still old; see
// [Swapper].
func (s *MemStore) SwapSecret(ctx context.Context, name string, old []byte, keyID string, sealed []byte) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, fmt.Errorf("vault: memstore: swap: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[name]
	if !ok || !bytes.Equal(e.sealed, old) {
		return false, nil
	}
	s.m[name] = memSecret{keyID: keyID, sealed: bytes.Clone(sealed), updated: nowMilli()}
	return true, nil
}
