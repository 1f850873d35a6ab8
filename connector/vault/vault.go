package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// Errors of this package. Test for them with errors.Is; messages name
// secrets and key ids but never contain plaintext or key bytes.
var (
	// ErrNotFound: no secret is stored under the name.
	ErrNotFound = errors.New("vault: secret not found")

	// ErrInvalidName: the secret name breaks the rule of [CheckName].
	ErrInvalidName = errors.New("vault: invalid secret name")

	// ErrUnknownKey: the secret is sealed under a key id the keyring does
	// not hold. The error wrapping it names the key id.
	ErrUnknownKey = errors.New("vault: key not in the keyring")

	// ErrUnsealable: the sealed secret does not open under the key its
	// key id names: another key with the same id, tampered bytes, or bytes
	// sealed for another name or key id.
	ErrUnsealable = errors.New("vault: sealed secret does not open")
)

// MaxNameLength is the longest secret name, in bytes.
const MaxNameLength = 200

// MaxSecretSize is the largest secret [Vault.Put] stores, in bytes.
const MaxSecretSize = 64 << 10

// CheckName returns nil if name is a valid secret name: 1 to
// [MaxNameLength] bytes of A-Z, a-z, 0-9, '.', '_', '/' and '-'.
// Otherwise it returns an error wrapping [ErrInvalidName] that says what
// is wrong without repeating name.
func CheckName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidName)
	case len(name) > MaxNameLength:
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalidName, MaxNameLength)
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; !idByte(c) && c != '/' {
			return fmt.Errorf("%w: a character outside A-Z, a-z, 0-9, '.', '_', '/', '-'", ErrInvalidName)
		}
	}
	return nil
}

// Option configures [New]. An invalid option makes New fail.
type Option func(*config) error

type config struct {
	logger *slog.Logger
}

// WithLogger makes the vault log to l: at Info each secret that
// [Vault.Rotate] re-encrypts, at Warn (event=vault.unsealable) each
// secret that does not open. Logs name secrets and key ids only. The
// default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		c.logger = l
		return nil
	}
}

// Vault seals secrets under the keys of a [Keyring] and keeps them in a
// [Store]. It is safe for concurrent use by multiple goroutines if its
// store is.
type Vault struct {
	store Store
	keys  *Keyring
	log   *slog.Logger
	// writeMu serializes Put, Delete and the read-then-write of Rotate
	// when the store is no Swapper, so that within this process Rotate
	// never overwrites a newer value.
	writeMu sync.Mutex
}

var _ Source = (*Vault)(nil)

// New returns a vault keeping secrets in store, sealed under keys. It
// fails if store or keys is nil, keys holds no key or an option is
// invalid.
func New(store Store, keys *Keyring, opts ...Option) (*Vault, error) {
	cfg := config{logger: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("vault: new: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("vault: new: %w", err)
		}
	}
	switch {
	case store == nil:
		return nil, errors.New("vault: new: nil store")
	case keys == nil || len(keys.ids) == 0:
		return nil, errors.New("vault: new: no keys")
	}
	return &Vault{store: store, keys: keys, log: cfg.logger}, nil
}

// Put seals plaintext under the active key and stores it as secret name,
// replacing any earlier value. The vault keeps no reference to
// plaintext. Put fails with an error wrapping [ErrInvalidName] for an
// invalid name (see [CheckName]), if plaintext is longer than
// [MaxSecretSize], and if the store fails.
func (v *Vault) Put(ctx context.Context, name string, plaintext []byte) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("vault: put: %w", err)
	}
	if len(plaintext) > MaxSecretSize {
		return fmt.Errorf("vault: put %q: secret is longer than %d bytes", name, MaxSecretSize)
	}
	keyID := v.keys.ActiveID()
	sealed, err := seal(v.keys.aeads[keyID], name, keyID, plaintext)
	if err != nil {
		return fmt.Errorf("vault: put %q: %w", name, err)
	}
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	if err := v.store.PutSecret(ctx, name, keyID, sealed); err != nil {
		return fmt.Errorf("vault: put %q: %w", name, err)
	}
	return nil
}

// Secret returns the plaintext of secret name, in a new slice the caller
// owns and must not log, record or return; clear it after use. It fails
// with an error wrapping [ErrInvalidName] for an invalid name,
// [ErrNotFound] when no secret has the name, [ErrUnknownKey] (naming the
// key id) when the secret is sealed under a key the keyring lacks,
// [ErrUnsealable] when it does not open, and the store's error otherwise.
func (v *Vault) Secret(ctx context.Context, name string) ([]byte, error) {
	if err := CheckName(name); err != nil {
		return nil, fmt.Errorf("vault: secret: %w", err)
	}
	keyID, sealed, err := v.store.GetSecret(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("vault: secret %q: %w", name, err)
	}
	plaintext, err := v.open(ctx, name, keyID, sealed)
	if err != nil {
		return nil, fmt.Errorf("vault: secret %q: %w", name, err)
	}
	return plaintext, nil
}

// open opens the sealed bytes of secret name under key keyID.
func (v *Vault) open(ctx context.Context, name, keyID string, sealed []byte) ([]byte, error) {
	aead, ok := v.keys.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("sealed under key %q: %w", keyID, ErrUnknownKey)
	}
	plaintext, err := open(aead, name, keyID, sealed)
	if err != nil {
		v.log.WarnContext(ctx, "vault: sealed secret does not open",
			slog.String("event", "vault.unsealable"), slog.String("secret", name), slog.String("key_id", keyID))
		return nil, fmt.Errorf("sealed under key %q: %w", keyID, err)
	}
	return plaintext, nil
}

// List returns the names, key ids and update times of the stored
// secrets, sorted by name, without their values.
func (v *Vault) List(ctx context.Context) ([]SecretInfo, error) {
	infos, err := v.store.ListSecrets(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: list: %w", err)
	}
	slices.SortFunc(infos, func(a, b SecretInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos, nil
}

// Delete removes secret name. It fails with an error wrapping
// [ErrInvalidName] for an invalid name, [ErrNotFound] when no secret has
// the name, and the store's error otherwise.
func (v *Vault) Delete(ctx context.Context, name string) error {
	if err := CheckName(name); err != nil {
		return fmt.Errorf("vault: delete: %w", err)
	}
	v.writeMu.Lock()
	defer v.writeMu.Unlock()
	if err := v.store.DeleteSecret(ctx, name); err != nil {
		return fmt.Errorf("vault: delete %q: %w", name, err)
	}
	return nil
}

// rotateAttempts bounds how often Rotate retries a secret that keeps
// changing under it.
const rotateAttempts = 3

// Rotate re-encrypts under the active key every stored secret sealed
// under another key, and returns how many it re-encrypted. Until it has
// finished, secrets sealed under the older keys of the keyring still
// open; once it returns a nil error, every secret is sealed under the
// active key and the others may leave the keyring.
//
// Rotate goes on past a secret it cannot re-encrypt and then returns the
// count with the errors joined: one wrapping [ErrUnknownKey] and naming
// the key id for a secret sealed under a key the keyring lacks,
// [ErrUnsealable] for one that does not open. A secret deleted meanwhile
// is skipped. When the store is a [Swapper], a secret put while Rotate
// runs keeps its new value; otherwise only puts through this Vault are
// safe, and other writers must wait for Rotate to finish.
func (v *Vault) Rotate(ctx context.Context) (int, error) {
	infos, err := v.store.ListSecrets(ctx)
	if err != nil {
		return 0, fmt.Errorf("vault: rotate: list: %w", err)
	}
	active := v.keys.ActiveID()
	n := 0
	var errs []error
	for _, info := range infos {
		if info.KeyID == active {
			continue
		}
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("vault: rotate: %w", err))
			break
		}
		done, err := v.rotate(ctx, info.Name)
		if err != nil {
			errs = append(errs, fmt.Errorf("vault: rotate: secret %q: %w", info.Name, err))
			continue
		}
		if done {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// rotate re-encrypts secret name under the active key and reports
// whether it did; false with no error means the secret is gone or already
// sealed under the active key.
func (v *Vault) rotate(ctx context.Context, name string) (bool, error) {
	swapper, canSwap := v.store.(Swapper)
	if !canSwap {
		v.writeMu.Lock()
		defer v.writeMu.Unlock()
	}
	active := v.keys.ActiveID()
	for range rotateAttempts {
		keyID, sealed, err := v.store.GetSecret(ctx, name)
		switch {
		case errors.Is(err, ErrNotFound):
			return false, nil
		case err != nil:
			return false, err
		case keyID == active:
			return false, nil
		}
		plaintext, err := v.open(ctx, name, keyID, sealed)
		if err != nil {
			return false, err
		}
		resealed, err := seal(v.keys.aeads[active], name, active, plaintext)
		clear(plaintext)
		if err != nil {
			return false, err
		}
		if !canSwap {
			if err := v.store.PutSecret(ctx, name, active, resealed); err != nil {
				return false, err
			}
		} else if ok, err := swapper.SwapSecret(ctx, name, sealed, active, resealed); err != nil {
			return false, err
		} else if !ok {
			continue // changed meanwhile: look again
		}
		v.log.InfoContext(ctx, "vault: secret re-encrypted",
			slog.String("secret", name), slog.String("from_key", keyID), slog.String("to_key", active))
		return true, nil
	}
	return false, fmt.Errorf("changed %d times while rotating; run Rotate again", rotateAttempts)
}
