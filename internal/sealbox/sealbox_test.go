package sealbox

import (
	"bytes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func newAEAD(t *testing.T) cipher.AEAD {
	t.Helper()
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	aead, err := chacha20poly1305.NewX(k)
	if err != nil {
		t.Fatal(err)
	}
	return aead
}

func TestSealOpen(t *testing.T) {
	aead, other := newAEAD(t), newAEAD(t)
	aad := AAD("ctx.v1", "name", "key-1")
	sealed, err := Seal(aead, aad, []byte("s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	if sealed[0] != version || len(sealed) != 1+aead.NonceSize()+len("s3cret")+aead.Overhead() {
		t.Fatalf("sealed = %x: not version, nonce, ciphertext and tag", sealed)
	}
	if bytes.Contains(sealed, []byte("s3cret")) {
		t.Fatal("plaintext visible in the sealed bytes")
	}
	got, err := Open(aead, aad, sealed)
	if err != nil || string(got) != "s3cret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	empty, err := Seal(aead, aad, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Open(aead, aad, empty); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Open(empty) = %#v, %v; want a non-nil empty slice", got, err)
	}

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 0x02
	for name, tc := range map[string]struct {
		aead   cipher.AEAD
		aad    []byte
		sealed []byte
	}{
		"other key":     {other, aad, sealed},
		"other context": {aead, AAD("ctx.v2", "name", "key-1"), sealed},
		"other name":    {aead, AAD("ctx.v1", "nam", "ekey-1"), sealed},
		"tampered":      {aead, aad, flipped},
		"other version": {aead, aad, badVersion},
		"truncated":     {aead, aad, sealed[:1+aead.NonceSize()+aead.Overhead()-1]},
		"empty":         {aead, aad, nil},
	} {
		a := aead
		if tc.aead == other {
			a = other
		}
		if _, err := Open(a, tc.aad, tc.sealed); !errors.Is(err, ErrUnsealable) {
			t.Errorf("%s: Open err = %v, want ErrUnsealable", name, err)
		}
	}
}

func TestAADLengthPrefixed(t *testing.T) {
	// Moving bytes between the two strings must change the AAD.
	if bytes.Equal(AAD("c", "ab", "c"), AAD("c", "a", "bc")) {
		t.Fatal("AAD does not separate its strings")
	}
	want := append([]byte("c"), 0, 0, 0, 1, 'a', 0, 0, 0, 2, 'b', 'c')
	if got := AAD("c", "a", "bc"); !bytes.Equal(got, want) {
		t.Fatalf("AAD = %x, want %x", got, want)
	}
}
