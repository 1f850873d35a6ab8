package sqlite_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/connector/vault/vaulttest"
	"github.com/oarsdev/oars/storage/sqlite"
)

var (
	_ vault.Store   = (*sqlite.Store)(nil)
	_ vault.Swapper = (*sqlite.Store)(nil)
)

func TestVaultConformance(t *testing.T) {
	vaulttest.Run(t, func(t *testing.T) vault.Store {
		s, _ := openTemp(t)
		return s
	})
}

// vaultKey returns a key with the given id and bytes all tag.
func vaultKey(id string, tag byte) vault.Key {
	k := vault.Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = tag
	}
	return k
}

// newVaultOn returns a Vault over s with the given keys, the first active.
func newVaultOn(t *testing.T, s vault.Store, keys ...vault.Key) *vault.Vault {
	t.Helper()
	kr, err := vault.NewKeyring(keys[0], keys[1:]...)
	if err != nil {
		t.Fatalf("NewKeyring = %v", err)
	}
	v, err := vault.New(s, kr)
	if err != nil {
		t.Fatalf("vault.New = %v", err)
	}
	return v
}

func TestVaultSecrets(t *testing.T) {
	ctx := context.Background()
	k1, k2 := vaultKey("k1", 1), vaultKey("k2", 2)
	s, path := openTemp(t)
	v1 := newVaultOn(t, s, k1)
	for name, plain := range map[string]string{"stripe/api-key": "sk_live_1", "github.token": "ghp_2"} {
		if err := v1.Put(ctx, name, []byte(plain)); err != nil {
			t.Fatalf("Put(%s) = %v, want nil", name, err)
		}
	}

	// Another store on the file reads them, with k1 as an old key.
	other := openAt(t, path)
	v21 := newVaultOn(t, other, k2, k1)
	if got, err := v21.Secret(ctx, "stripe/api-key"); err != nil || string(got) != "sk_live_1" {
		t.Errorf("Secret(stripe/api-key) on a second store = %q, %v, want sk_live_1", got, err)
	}
	n, err := v21.Rotate(ctx)
	if err != nil || n != 2 {
		t.Fatalf("Rotate() = %d, %v, want 2, nil", n, err)
	}
	var keyIDs []string
	rows, err := rawDB(t, path).Query(`SELECT key_id FROM secrets ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		keyIDs = append(keyIDs, id)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(keyIDs) != 2 || keyIDs[0] != "k2" || keyIDs[1] != "k2" {
		t.Errorf("key_id of the rows after Rotate = %q, want [k2 k2]", keyIDs)
	}
	v2 := newVaultOn(t, s, k2)
	if got, err := v2.Secret(ctx, "github.token"); err != nil || string(got) != "ghp_2" {
		t.Errorf("Secret(github.token) with k2 only = %q, %v, want ghp_2", got, err)
	}
	if _, err := v1.Secret(ctx, "github.token"); !errors.Is(err, vault.ErrUnknownKey) {
		t.Errorf("Secret(github.token) with k1 only = %v, want ErrUnknownKey", err)
	}

	// A read-only store reads but does not write.
	ro := openAt(t, path, sqlite.WithReadOnly())
	if _, err := newVaultOn(t, ro, k2).Secret(ctx, "stripe/api-key"); err != nil {
		t.Errorf("Secret on a read-only store = %v, want nil", err)
	}
	if infos, err := ro.ListSecrets(ctx); err != nil || len(infos) != 2 {
		t.Errorf("ListSecrets on a read-only store = %v, %v, want 2 secrets", infos, err)
	}
	for op, err := range map[string]error{
		"PutSecret":    ro.PutSecret(ctx, "a", "k2", []byte{1}),
		"DeleteSecret": ro.DeleteSecret(ctx, "stripe/api-key"),
		"SwapSecret":   second(ro.SwapSecret(ctx, "stripe/api-key", nil, "k2", []byte{1})),
	} {
		if !errors.Is(err, sqlite.ErrReadOnly) {
			t.Errorf("%s on a read-only store = %v, want ErrReadOnly", op, err)
		}
	}

	// After Close.
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, getErr := other.GetSecret(ctx, "stripe/api-key")
	_, listErr := other.ListSecrets(ctx)
	for op, err := range map[string]error{
		"PutSecret":    other.PutSecret(ctx, "a", "k2", []byte{1}),
		"GetSecret":    getErr,
		"ListSecrets":  listErr,
		"DeleteSecret": other.DeleteSecret(ctx, "stripe/api-key"),
		"SwapSecret":   second(other.SwapSecret(ctx, "stripe/api-key", nil, "k2", []byte{1})),
	} {
		if !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", op, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestVaultPlaintextNotInFile plants a secret and looks for its plaintext
// in every file of the data directory: the WAL while the store is open,
// then the database once Close has checkpointed it.
func TestVaultPlaintextNotInFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "oars.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("canary-sk_live_5f2b7c1e9d0a4386")
	v := newVaultOn(t, s, vaultKey("k1", 7))
	if err := v.Put(ctx, "stripe/api-key", plain); err != nil {
		t.Fatalf("Put = %v, want nil", err)
	}
	// The name is stored in the clear: finding it shows the search works.
	checkFiles(t, dir, []byte("stripe/api-key"), true)
	checkFiles(t, dir, plain, false)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, []byte("stripe/api-key"), true)
	checkFiles(t, dir, plain, false)
}

// checkFiles reports whether the bytes of the files in dir contain b as
// wanted.
func checkFiles(t *testing.T, dir string, b []byte, want bool) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, b) {
			found = true
			if !want {
				t.Errorf("%s contains %q", e.Name(), b)
			}
		}
	}
	if want && !found {
		t.Errorf("no file of %d in %s contains %q", len(entries), dir, b)
	}
}
