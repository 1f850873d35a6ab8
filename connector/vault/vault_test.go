package vault_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/connector/vault/vaulttest"
	"github.com/oarsdev/oars/internal/testutil"
)

func TestMemStoreConformance(t *testing.T) {
	vaulttest.Run(t, func(*testing.T) vault.Store { return &vault.MemStore{} })
}

// plainStore is a Store without the Swapper ability.
type plainStore struct{ vault.Store }

func TestPlainStoreConformance(t *testing.T) {
	vaulttest.Run(t, func(*testing.T) vault.Store { return plainStore{&vault.MemStore{}} })
}

// ring returns a keyring of the given keys, the first active.
func ring(t testing.TB, keys ...vault.Key) *vault.Keyring {
	t.Helper()
	kr, err := vault.NewKeyring(keys[0], keys[1:]...)
	require.NoError(t, err, "NewKeyring")
	return kr
}

func newVault(t testing.TB, s vault.Store, kr *vault.Keyring, opts ...vault.Option) *vault.Vault {
	t.Helper()
	v, err := vault.New(s, kr, opts...)
	require.NoError(t, err, "vault.New")
	return v
}

var (
	key1 = vault.Key{ID: "k1", Secret: keyBytes(1)}
	key2 = vault.Key{ID: "k2", Secret: keyBytes(2)}
	// key1b has key1's id and another secret.
	key1b = vault.Key{ID: "k1", Secret: keyBytes(3)}
)

func TestRoundTrip(t *testing.T) {
	ctx := t.Context()
	v := newVault(t, &vault.MemStore{}, ring(t, key1))
	tests := []struct {
		name      string
		plaintext []byte
	}{
		{"stripe/api-key", []byte("sk_live_0123456789")},
		{"a", []byte{}},
		{"binary", []byte{0, 1, 2, 0xff, '\n'}},
		{"max", bytes.Repeat([]byte("x"), vault.MaxSecretSize)},
		{strings.Repeat("n", vault.MaxNameLength), []byte("long name")},
		{"A-Z_a-z.0-9/x", []byte("all name characters")},
	}
	for _, tt := range tests {
		require.NoError(t, v.Put(ctx, tt.name, tt.plaintext), "Put(%s)", tt.name)
		got, err := v.Secret(ctx, tt.name)
		require.NoError(t, err, "Secret(%s)", tt.name)
		assert.Equal(t, tt.plaintext, got, "Secret(%s)", tt.name)
		assert.NotNil(t, got)
	}

	// Replacing a secret; the result belongs to the caller.
	require.NoError(t, v.Put(ctx, "stripe/api-key", []byte("sk_live_new")))
	got, err := v.Secret(ctx, "stripe/api-key")
	require.NoError(t, err)
	assert.Equal(t, "sk_live_new", string(got))
	got[0] = 'X'
	again, err := v.Secret(ctx, "stripe/api-key")
	require.NoError(t, err)
	assert.Equal(t, "sk_live_new", string(again))

	_, err = v.Secret(ctx, "missing")
	assert.ErrorIs(t, err, vault.ErrNotFound)
	assert.ErrorContains(t, v.Put(ctx, "big", make([]byte, vault.MaxSecretSize+1)), "longer than 65536 bytes", "Put(too large)")
}

func TestSealedIsNotPlaintext(t *testing.T) {
	ctx := t.Context()
	s := &vault.MemStore{}
	v := newVault(t, s, ring(t, key1))
	plain := []byte("sk_live_canary_0123456789")
	require.NoError(t, v.Put(ctx, "a", plain))
	require.NoError(t, v.Put(ctx, "b", plain))
	keyID, sa, err := s.GetSecret(ctx, "a")
	require.NoError(t, err)
	_, sb, err := s.GetSecret(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "k1", keyID)
	assert.NotContains(t, string(sa), string(plain))
	assert.Len(t, sa, 1+24+len(plain)+16, "version, nonce, ciphertext, tag")
	assert.Equal(t, byte(1), sa[0], "version byte")
	assert.NotEqual(t, sa[1:25], sb[1:25], "two seals share a nonce")
}

func TestOpenFailures(t *testing.T) {
	ctx := t.Context()
	plain := []byte("sk_live_canary_0123456789")
	tests := []struct {
		name string
		// damage changes the stored row of secret "a" (sealed under key1,
		// while "b" holds the same plaintext) through s.
		damage  func(t *testing.T, s *vault.MemStore)
		keys    []vault.Key // the reading vault's keys
		wantErr error
		wantMsg string
	}{
		{
			name:    "wrong key with the same id",
			keys:    []vault.Key{key1b},
			wantErr: vault.ErrUnsealable,
			wantMsg: `vault: secret "a": sealed under key "k1": vault: sealed secret does not open`,
		},
		{
			name:    "key not in the keyring",
			keys:    []vault.Key{key2},
			wantErr: vault.ErrUnknownKey,
			wantMsg: `vault: secret "a": sealed under key "k1": vault: key not in the keyring`,
		},
		{
			name: "tampered ciphertext",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(keyID string, b []byte) (string, []byte) {
					b[len(b)-20] ^= 1
					return keyID, b
				})
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "tampered nonce",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(keyID string, b []byte) (string, []byte) {
					b[3] ^= 0x80
					return keyID, b
				})
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "unknown version",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(keyID string, b []byte) (string, []byte) {
					b[0] = 2
					return keyID, b
				})
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "truncated",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(keyID string, b []byte) (string, []byte) { return keyID, b[:30] })
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "empty",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(keyID string, b []byte) (string, []byte) { return keyID, nil })
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "sealed bytes of another name",
			damage: func(t *testing.T, s *vault.MemStore) {
				_, sb, err := s.GetSecret(t.Context(), "b")
				require.NoError(t, err)
				rewrite(t, s, "a", func(keyID string, _ []byte) (string, []byte) { return keyID, sb })
			},
			wantErr: vault.ErrUnsealable,
		},
		{
			name: "relabelled key id",
			damage: func(t *testing.T, s *vault.MemStore) {
				rewrite(t, s, "a", func(_ string, b []byte) (string, []byte) { return "k2", b })
			},
			// k2 holds k1's bytes: only the key id in the associated data
			// tells them apart.
			keys:    []vault.Key{key1, {ID: "k2", Secret: key1.Secret}},
			wantErr: vault.ErrUnsealable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &vault.MemStore{}
			writer := newVault(t, s, ring(t, key1))
			require.NoError(t, writer.Put(ctx, "a", plain))
			require.NoError(t, writer.Put(ctx, "b", plain))
			if tt.damage != nil {
				tt.damage(t, s)
			}
			keys := tt.keys
			if keys == nil {
				keys = []vault.Key{key1}
			}
			var logs testutil.SyncBuffer
			reader := newVault(t, s, ring(t, keys...), vault.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			got, err := reader.Secret(ctx, "a")
			require.ErrorIs(t, err, tt.wantErr, "Secret(a) = %q", got)
			assert.Nil(t, got)
			if tt.wantMsg != "" {
				assert.EqualError(t, err, tt.wantMsg)
			}
			assert.NotContains(t, err.Error(), string(plain))
			assert.NotContains(t, logs.String(), string(plain))
			if errors.Is(err, vault.ErrUnsealable) {
				assert.Contains(t, logs.String(), "event=vault.unsealable secret=a key_id=")
			}
		})
	}
}

// rewrite replaces the stored row of name with what f makes of it.
func rewrite(t *testing.T, s *vault.MemStore, name string, f func(keyID string, sealed []byte) (string, []byte)) {
	t.Helper()
	keyID, sealed, err := s.GetSecret(t.Context(), name)
	require.NoError(t, err)
	keyID, sealed = f(keyID, sealed)
	require.NoError(t, s.PutSecret(t.Context(), name, keyID, sealed))
}

func TestInvalidNames(t *testing.T) {
	ctx := t.Context()
	v := newVault(t, &vault.MemStore{}, ring(t, key1))
	for _, name := range []string{"", "a b", "a:b", "a\x00", "é", "a\\b", "a,b", strings.Repeat("n", vault.MaxNameLength+1)} {
		assert.ErrorIs(t, vault.CheckName(name), vault.ErrInvalidName, "CheckName(%q)", name)
		assert.ErrorIs(t, v.Put(ctx, name, []byte("x")), vault.ErrInvalidName, "Put(%q)", name)
		_, err := v.Secret(ctx, name)
		assert.ErrorIs(t, err, vault.ErrInvalidName, "Secret(%q)", name)
		assert.ErrorIs(t, v.Delete(ctx, name), vault.ErrInvalidName, "Delete(%q)", name)
		if len(name) > 2 {
			assert.NotContains(t, vault.CheckName(name).Error(), name, "CheckName repeats the name")
		}
	}
	for _, name := range []string{"a", "stripe/api-key", "A.b_c-d/e/0", strings.Repeat("n", vault.MaxNameLength)} {
		assert.NoError(t, vault.CheckName(name), "CheckName(%q)", name)
	}
}

func TestListDelete(t *testing.T) {
	ctx := t.Context()
	v := newVault(t, &vault.MemStore{}, ring(t, key1))
	for _, name := range []string{"github/token", "stripe/api-key", "aws/secret"} {
		require.NoError(t, v.Put(ctx, name, []byte("value of "+name)))
	}
	infos, err := v.List(ctx)
	require.NoError(t, err)
	require.Len(t, infos, 3)
	assert.Equal(t, []string{"aws/secret", "github/token", "stripe/api-key"}, []string{infos[0].Name, infos[1].Name, infos[2].Name})
	for _, info := range infos {
		assert.Equal(t, "k1", info.KeyID)
		assert.False(t, info.UpdatedAt.IsZero())
	}

	require.NoError(t, v.Delete(ctx, "github/token"))
	_, err = v.Secret(ctx, "github/token")
	assert.ErrorIs(t, err, vault.ErrNotFound)
	assert.ErrorIs(t, v.Delete(ctx, "github/token"), vault.ErrNotFound)
	infos, err = v.List(ctx)
	require.NoError(t, err)
	assert.Len(t, infos, 2)
}

func TestRotate(t *testing.T) {
	for _, tt := range []struct {
		name  string
		store func() vault.Store
	}{
		{"swapper", func() vault.Store { return &vault.MemStore{} }},
		{"plain store", func() vault.Store { return plainStore{&vault.MemStore{}} }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			s := tt.store()
			v1 := newVault(t, s, ring(t, key1))
			secrets := map[string]string{"a": "secret-a", "b": "secret-b", "c/d": "secret-cd"}
			for name, plain := range secrets {
				require.NoError(t, v1.Put(ctx, name, []byte(plain)))
			}

			var logs testutil.SyncBuffer
			v21 := newVault(t, s, ring(t, key2, key1), vault.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
			// Before rotation: old secrets still open, new ones go under k2.
			got, err := v21.Secret(ctx, "a")
			require.NoError(t, err)
			assert.Equal(t, "secret-a", string(got))
			require.NoError(t, v21.Put(ctx, "b", []byte("secret-b2")))
			secrets["b"] = "secret-b2"
			assertKeyIDs(t, s, map[string]string{"a": "k1", "b": "k2", "c/d": "k1"})

			n, err := v21.Rotate(ctx)
			require.NoError(t, err)
			assert.Equal(t, 2, n, "Rotate() count")
			assertKeyIDs(t, s, map[string]string{"a": "k2", "b": "k2", "c/d": "k2"})
			assert.Contains(t, logs.String(), "secret=a from_key=k1 to_key=k2")
			for _, plain := range secrets {
				assert.NotContains(t, logs.String(), plain)
			}

			// Rotating again has nothing to do; k1 may now go.
			n, err = v21.Rotate(ctx)
			require.NoError(t, err)
			assert.Equal(t, 0, n, "second Rotate() count")
			v2 := newVault(t, s, ring(t, key2))
			for name, plain := range secrets {
				got, err := v2.Secret(ctx, name)
				require.NoError(t, err, "Secret(%s) with k2 only", name)
				assert.Equal(t, plain, string(got), "Secret(%s) with k2 only", name)
			}
			_, err = v1.Secret(ctx, "a")
			assert.ErrorIs(t, err, vault.ErrUnknownKey, "Secret with k1 only after rotation")
		})
	}
}

func TestRotateFailures(t *testing.T) {
	ctx := t.Context()
	s := &vault.MemStore{}
	key0 := vault.Key{ID: "k0", Secret: keyBytes(9)}
	require.NoError(t, newVault(t, s, ring(t, key0)).Put(ctx, "old", []byte("secret-old")))
	require.NoError(t, newVault(t, s, ring(t, key1)).Put(ctx, "a", []byte("secret-a")))
	require.NoError(t, newVault(t, s, ring(t, key1)).Put(ctx, "bad", []byte("secret-bad")))
	rewrite(t, s, "bad", func(keyID string, b []byte) (string, []byte) {
		b[len(b)-1] ^= 1
		return keyID, b
	})

	// k0 is missing from the keyring and "bad" does not open: Rotate
	// re-encrypts "a" and reports the two others.
	v := newVault(t, s, ring(t, key2, key1))
	n, err := v.Rotate(ctx)
	assert.Equal(t, 1, n)
	require.Error(t, err)
	assert.ErrorIs(t, err, vault.ErrUnknownKey)
	assert.ErrorIs(t, err, vault.ErrUnsealable)
	assert.Contains(t, err.Error(), `vault: rotate: secret "old": sealed under key "k0": vault: key not in the keyring`)
	assert.Contains(t, err.Error(), `vault: rotate: secret "bad": sealed under key "k1"`)
	assertKeyIDs(t, s, map[string]string{"a": "k2", "bad": "k1", "old": "k0"})

	// A cancelled context stops it.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = v.Rotate(cctx)
	assert.ErrorIs(t, err, context.Canceled)
}

// racyStore runs hook once, between the first GetSecret and the next
// write, standing for another process writing while Rotate runs.
type racyStore struct {
	*vault.MemStore
	once sync.Once
	hook func()
}

func (s *racyStore) GetSecret(ctx context.Context, name string) (string, []byte, error) {
	keyID, sealed, err := s.MemStore.GetSecret(ctx, name)
	s.once.Do(s.hook)
	return keyID, sealed, err
}

func TestRotateKeepsConcurrentWrites(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name   string
		write  func(other *vault.Vault) error
		wantID string // "" for deleted
		want   string
	}{
		{"put under the new key", func(o *vault.Vault) error { return o.Put(ctx, "a", []byte("newer")) }, "k2", "newer"},
		{"delete", func(o *vault.Vault) error { return o.Delete(ctx, "a") }, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := &vault.MemStore{}
			require.NoError(t, newVault(t, mem, ring(t, key1)).Put(ctx, "a", []byte("older")))
			s := &racyStore{MemStore: mem}
			// Another process with its own Vault writes between Rotate's read
			// and its write.
			other := newVault(t, mem, ring(t, key2, key1))
			s.hook = func() { require.NoError(t, tt.write(other)) }
			n, err := newVault(t, s, ring(t, key2, key1)).Rotate(ctx)
			require.NoError(t, err)
			assert.Equal(t, 0, n, "Rotate() count")
			if tt.wantID == "" {
				_, _, err := mem.GetSecret(ctx, "a")
				assert.ErrorIs(t, err, vault.ErrNotFound, "a deleted secret came back")
				return
			}
			got, err := other.Secret(ctx, "a")
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got), "Rotate overwrote a concurrent put")
		})
	}
}

func TestNew(t *testing.T) {
	kr := ring(t, key1)
	_, err := vault.New(nil, kr)
	assert.ErrorContains(t, err, "nil store")
	_, err = vault.New(&vault.MemStore{}, nil)
	assert.ErrorContains(t, err, "no keys")
	_, err = vault.New(&vault.MemStore{}, &vault.Keyring{})
	assert.ErrorContains(t, err, "no keys")
	_, err = vault.New(&vault.MemStore{}, kr, vault.WithLogger(nil))
	assert.ErrorContains(t, err, "nil logger")
	_, err = vault.New(&vault.MemStore{}, kr, nil)
	assert.ErrorContains(t, err, "nil option")
}

func TestSources(t *testing.T) {
	ctx := t.Context()
	m := vault.Map{"a": []byte("secret-a")}
	var src vault.Source = m
	got, err := src.Secret(ctx, "a")
	require.NoError(t, err)
	got[0] = 'X'
	assert.Equal(t, "secret-a", string(m["a"]), "Map.Secret returns a copy")
	_, err = src.Secret(ctx, "b")
	assert.ErrorIs(t, err, vault.ErrNotFound)

	src = vault.SourceFunc(func(_ context.Context, name string) ([]byte, error) { return []byte("for " + name), nil })
	got, err = src.Secret(ctx, "x")
	require.NoError(t, err)
	assert.Equal(t, "for x", string(got))
}

// assertKeyIDs checks the key id of each stored secret.
func assertKeyIDs(t *testing.T, s vault.Store, want map[string]string) {
	t.Helper()
	infos, err := s.ListSecrets(t.Context())
	require.NoError(t, err)
	got := map[string]string{}
	for _, info := range infos {
		got[info.Name] = info.KeyID
	}
	assert.Equal(t, want, got, "key ids of the stored secrets")
}
