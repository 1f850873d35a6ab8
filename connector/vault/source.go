package vault

import "context"

// Source gives connectors their secrets by name. A [*Vault] implements
// it; tests may use a map.
type Source interface {
	// Secret returns the plaintext of secret name, or an error wrapping
	// ErrNotFound. The caller must not log, record or return it.
	Secret(ctx context.Context, name string) ([]byte, error)
}
