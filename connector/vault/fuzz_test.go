package vault_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/oarsdev/oars/connector/vault"
)

// FuzzParseKeys checks that ParseKeys never panics, never repeats key
// material in its errors, and that a parsed keyring prints back to a list
// that parses to the same ids.
func FuzzParseKeys(f *testing.F) {
	k1 := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, vault.KeySize))
	k2 := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, vault.KeySize))
	for _, s := range []string{
		"", ",", ":", "k1:" + k1, "k2:" + k2 + ",k1:" + k1, "k1:" + k1 + ",k1:" + k1, k1, "k1:" + k1[:20],
		"k 1:" + k1, "k1:" + k1 + "=", "k1:" + k1 + ",", "k1::" + k1,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kr, err := vault.ParseKeys(s)
		if err != nil {
			for e := range strings.SplitSeq(s, ",") {
				_, b64, ok := strings.Cut(e, ":")
				if !ok {
					b64 = e
				}
				if len(b64) >= 16 && strings.Contains(err.Error(), b64) {
					t.Fatalf("ParseKeys error %q repeats its input", err)
				}
			}
			return
		}
		ids := kr.IDs()
		if len(ids) == 0 || ids[0] != kr.ActiveID() {
			t.Fatalf("ParseKeys(%q): IDs() = %q, ActiveID() = %q", s, ids, kr.ActiveID())
		}
		if len(ids) != strings.Count(s, ",")+1 {
			t.Fatalf("ParseKeys(%q) gave %d keys", s, len(ids))
		}
	})
}

// FuzzOpen checks that a vault never panics on whatever bytes the store
// holds and never opens bytes it did not seal.
func FuzzOpen(f *testing.F) {
	ctx := context.Background()
	seedStore := &vault.MemStore{}
	kr, err := vault.NewKeyring(key1)
	if err != nil {
		f.Fatal(err)
	}
	v, err := vault.New(seedStore, kr)
	if err != nil {
		f.Fatal(err)
	}
	if err := v.Put(ctx, "b", []byte("secret")); err != nil {
		f.Fatal(err)
	}
	_, sealed, err := seedStore.GetSecret(ctx, "b")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add([]byte{})
	f.Add([]byte{1})
	f.Add(make([]byte, 1+24+16))
	f.Add(append([]byte{2}, sealed[1:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := &vault.MemStore{}
		if err := s.PutSecret(ctx, "a", "k1", b); err != nil {
			t.Fatal(err)
		}
		v, err := vault.New(s, kr)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := v.Secret(ctx, "a"); err == nil {
			t.Fatalf("Secret(a) with stored bytes %x = %q, want an error", b, got)
		}
	})
}
