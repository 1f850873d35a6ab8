package vault

import (
	"context"
	"fmt"
)

// Source gives connectors their secrets by name. A [*Vault] implements
// it; tests may use a map.
type Source interface {
	// Secret returns the plaintext of secret name, or an error wrapping
	// [ErrNotFound]. The caller must not log, record or return it.
	Secret(ctx context.Context, name string) ([]byte, error)
}

// SourceFunc adapts a function to [Source].
type SourceFunc func(ctx context.Context, name string) ([]byte, error)

// Secret calls f(ctx, name).
func (f SourceFunc) Secret(ctx context.Context, name string) ([]byte, error) {
	return f(ctx, name)
}

// Map is a [Source] holding plaintext secrets in memory, for tests and
// examples. It must not be modified while in use.
type Map map[string][]byte

// Secret returns a copy of m[name], or an error wrapping [ErrNotFound].
func (m Map) Secret(ctx context.Context, name string) ([]byte, error) {
	v, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("vault: secret %q: %w", name, ErrNotFound)
	}
	return append([]byte{}, v...), nil
}
