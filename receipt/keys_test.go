package receipt

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKeyIDFor(t *testing.T) {
	_, key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	kid := KeyIDFor(pub)
	assert.Equal(t, "oars:23e4bb144b7e6efa", kid)
	assert.Len(t, kid, len("oars:")+16)
	other, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	assert.NotEqual(t, kid, KeyIDFor(other))
}

func TestNewEd25519Signer(t *testing.T) {
	_, key := testKey(t)
	bad := append(ed25519.PrivateKey(nil), key...)
	bad[40] ^= 1 // public half no longer matches the seed
	tests := []struct {
		name string
		kid  string
		key  ed25519.PrivateKey
		ok   bool
	}{
		{"valid", "k1", key, true},
		{"empty kid", "", key, false},
		{"short key", "k1", key[:32], false},
		{"nil key", "k1", nil, false},
		{"mismatched public half", "k1", bad, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewEd25519Signer(tt.kid, tt.key)
			if !tt.ok {
				require.Error(t, err)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.kid, s.KeyID())
			sig, err := s.Sign(context.Background(), []byte("msg"))
			require.NoError(t, err)
			assert.True(t, ed25519.Verify(s.Public(), []byte("msg"), sig))
			// Public returns a copy.
			s.Public()[0] ^= 0xff
			assert.True(t, ed25519.Verify(s.Public(), []byte("msg"), sig))
		})
	}
}

func TestGenerateKey(t *testing.T) {
	s, key, err := GenerateKey("")
	require.NoError(t, err)
	assert.Equal(t, KeyIDFor(s.Public()), s.KeyID())
	assert.True(t, key.Public().(ed25519.PublicKey).Equal(s.Public()))

	s2, _, err := GenerateKey("custom")
	require.NoError(t, err)
	assert.Equal(t, "custom", s2.KeyID())

	s3, err := GenerateSigner()
	require.NoError(t, err)
	assert.NotEqual(t, s.KeyID(), s3.KeyID())
}

func TestPrivateKeyFile(t *testing.T) {
	_, key := testKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "signing.key")
	require.NoError(t, WritePrivateKeyFile(path, "k1", key))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	if runtime.GOOS != "windows" {
		assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
	}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "temporary files left behind")

	data, err := os.ReadFile(path)
	require.NoError(t, err)
	var jwk map[string]any
	require.NoError(t, json.Unmarshal(data, &jwk))
	assert.Equal(t, "OKP", jwk["kty"])
	assert.Equal(t, "Ed25519", jwk["crv"])
	assert.Equal(t, "k1", jwk["kid"])
	assert.Contains(t, jwk, "d")

	s, err := LoadSignerFile(path)
	require.NoError(t, err)
	assert.Equal(t, "k1", s.KeyID())
	assert.True(t, s.Public().Equal(key.Public()))

	err = WritePrivateKeyFile(path, "k2", key)
	require.ErrorIs(t, err, fs.ErrExist, "WritePrivateKeyFile over an existing file")
	s, err = LoadSignerFile(path)
	require.NoError(t, err)
	assert.Equal(t, "k1", s.KeyID(), "existing key file was replaced")

	_, err = LoadSignerFile(filepath.Join(dir, "missing.key"))
	assert.ErrorIs(t, err, fs.ErrNotExist)

	assert.Error(t, WritePrivateKeyFile(filepath.Join(dir, "x.key"), "", key), "empty kid")
	assert.Error(t, WritePrivateKeyFile(filepath.Join(dir, "y.key"), "k", key[:10]), "short key")
}

func TestParseSigner(t *testing.T) {
	_, key := testKey(t)
	good, err := MarshalPrivateKey("k1", key)
	require.NoError(t, err)
	seed := strings.Split(strings.Split(string(good), `"d":"`)[1], `"`)[0]

	pubOnly, err := json.Marshal(jose.JSONWebKey{Key: key.Public(), KeyID: "k1"})
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecJWK, err := json.Marshal(jose.JSONWebKey{Key: ecKey, KeyID: "k1"})
	require.NoError(t, err)

	tests := []struct {
		name string
		data string
	}{
		{"not JSON", `{`},
		{"duplicate member", strings.Replace(string(good), `{`, `{"kid":"x",`, 1)},
		{"public key only", string(pubOnly)},
		{"EC key", string(ecJWK)},
		{"no kid", strings.Replace(string(good), `"kid":"k1",`, ``, 1)},
		{"wrong alg", strings.Replace(string(good), `"alg":"EdDSA"`, `"alg":"ES256"`, 1)},
		{"wrong use", strings.Replace(string(good), `"use":"sig"`, `"use":"enc"`, 1)},
		{"x does not match d", strings.Replace(string(good), `"x":"`, `"x":"A`, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSigner([]byte(tt.data))
			require.Error(t, err)
			assert.Nil(t, s)
			assert.NotContains(t, err.Error(), seed, "error leaks the private key")
		})
	}
	s, err := ParseSigner(good)
	require.NoError(t, err)
	assert.Equal(t, "k1", s.KeyID())
}

func TestKeySet(t *testing.T) {
	s1, _ := testKey(t)
	s2, _, err := GenerateKey("k2")
	require.NoError(t, err)
	s3, _, err := GenerateKey("k3")
	require.NoError(t, err)
	old := PublicKey{KeyID: "old", Key: func() ed25519.PublicKey {
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		return pub
	}()}

	ks, err := NewKeySet(s1, old)
	require.NoError(t, err)
	assert.Equal(t, s1, ks.Active())
	assert.Equal(t, 2, ks.Len())
	got, ok := ks.Lookup(s1.KeyID())
	require.True(t, ok)
	assert.True(t, got.Equal(s1.Public()))
	got[0] ^= 0xff // a copy
	got, _ = ks.Lookup(s1.KeyID())
	assert.True(t, got.Equal(s1.Public()))
	_, ok = ks.Lookup("nope")
	assert.False(t, ok)

	require.NoError(t, ks.Rotate(s2))
	assert.Equal(t, s2, ks.Active())
	_, ok = ks.Lookup(s1.KeyID())
	assert.True(t, ok, "retired key still verifies")
	keys := ks.Keys()
	require.Len(t, keys, 3)
	assert.Equal(t, "k2", keys[0].KeyID, "active key first")
	assert.Equal(t, []string{"k2", "old", s1.KeyID()}, []string{keys[0].KeyID, keys[1].KeyID, keys[2].KeyID})

	assert.ErrorIs(t, ks.Rotate(s2), ErrDuplicateKeyID)
	assert.ErrorIs(t, ks.Rotate(stubSigner{kid: "old", pub: s3.Public()}), ErrDuplicateKeyID)
	assert.Error(t, ks.Rotate(nil))
	assert.Error(t, ks.Rotate(stubSigner{kid: "short", pub: make([]byte, 5)}))
	assert.Equal(t, s2, ks.Active(), "failed Rotate changed the active key")
	assert.Equal(t, 3, ks.Len())

	require.NoError(t, ks.Add(PublicKey{KeyID: "k3", Key: s3.Public()}))
	assert.ErrorIs(t, ks.Add(PublicKey{KeyID: "k3", Key: s3.Public()}), ErrDuplicateKeyID)

	tests := []struct {
		name    string
		active  Signer
		retired []PublicKey
	}{
		{"duplicate kid", s1, []PublicKey{{KeyID: s1.KeyID(), Key: s2.Public()}}},
		{"empty kid", nil, []PublicKey{{KeyID: "", Key: s2.Public()}}},
		{"short key", nil, []PublicKey{{KeyID: "x", Key: s2.Public()[:31]}}},
		{"active with empty kid", stubSigner{pub: s2.Public()}, nil},
	}
	for _, tt := range tests {
		_, err := NewKeySet(tt.active, tt.retired...)
		assert.Error(t, err, tt.name)
	}

	empty, err := NewKeySet(nil)
	require.NoError(t, err)
	assert.Nil(t, empty.Active())
	_, err = NewVerifier(empty)
	assert.ErrorIs(t, err, ErrNoKeys)
	_, err = NewVerifier(nil)
	assert.ErrorIs(t, err, ErrNoKeys)
}

func TestKeySetConcurrent(t *testing.T) {
	ks, s := testKeySet(t)
	v, err := NewVerifier(ks)
	require.NoError(t, err)
	signed, err := Sign(context.Background(), s, minimalReceipt())
	require.NoError(t, err)
	next := make([]Signer, 8)
	for i := range next {
		next[i], _, err = GenerateKey("")
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(next))
	for _, n := range next {
		wg.Add(2)
		go func() {
			defer wg.Done()
			errs <- ks.Rotate(n)
		}()
		go func() {
			defer wg.Done()
			_, err := v.Verify(signed)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, 1+len(next), ks.Len())
}

func TestJWKS(t *testing.T) {
	s1, _ := testKey(t)
	s2, _, err := GenerateKey("k2")
	require.NoError(t, err)
	ks, err := NewKeySet(s1)
	require.NoError(t, err)
	require.NoError(t, ks.Rotate(s2))

	data, err := ks.MarshalJWKS()
	require.NoError(t, err)
	assert.NotContains(t, string(data), `"d"`)
	var set jose.JSONWebKeySet
	require.NoError(t, json.Unmarshal(data, &set))
	require.Len(t, set.Keys, 2)
	for _, k := range set.Keys {
		assert.Equal(t, Alg, k.Algorithm)
		assert.Equal(t, "sig", k.Use)
		assert.True(t, k.IsPublic())
	}
	assert.Contains(t, string(data), `"kty":"OKP"`)
	assert.Contains(t, string(data), `"crv":"Ed25519"`)

	parsed, err := ParseJWKS(data)
	require.NoError(t, err)
	assert.Nil(t, parsed.Active(), "a parsed JWKS only verifies")
	assert.Equal(t, ks.Keys(), parsed.Keys())
	again, err := parsed.MarshalJWKS()
	require.NoError(t, err)
	assert.Equal(t, string(data), string(again))

	// A receipt signed by the retired key verifies with the parsed set.
	signed, err := Sign(context.Background(), s1, minimalReceipt())
	require.NoError(t, err)
	v, err := NewVerifier(parsed)
	require.NoError(t, err)
	_, err = v.Verify(signed)
	require.NoError(t, err)
}

func TestParseJWKSRefuses(t *testing.T) {
	s1, key := testKey(t)
	private, err := MarshalPrivateKey(s1.KeyID(), key)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	rsaPub, err := json.Marshal(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "rsa"})
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ecPub, err := json.Marshal(jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "ec"})
	require.NoError(t, err)
	pub := func(kid, extra string) string {
		k, err := json.Marshal(jose.JSONWebKey{Key: s1.Public(), KeyID: kid, Algorithm: Alg, Use: "sig"})
		require.NoError(t, err)
		return strings.Replace(string(k), "{", "{"+extra, 1)
	}
	set := func(keys ...string) string { return `{"keys":[` + strings.Join(keys, ",") + `]}` }

	tests := []struct {
		name string
		data string
	}{
		{"private key", set(string(private))},
		{"private key after public", set(pub("a", ""), string(private))},
		{"d member on a public key", set(pub("a", `"d":"AAAA",`))},
		{"D member", set(pub("a", `"D":"AAAA",`))},
		{"symmetric key", set(`{"kty":"oct","k":"c2VjcmV0","kid":"s"}`)},
		{"RSA key", set(string(rsaPub))},
		{"EC key", set(string(ecPub))},
		{"X25519 key", set(`{"kty":"OKP","crv":"X25519","kid":"x","x":"` + strings.Repeat("A", 43) + `"}`)},
		{"no kid", set(pub("", ""))},
		{"duplicate kid", set(pub("a", ""), pub("a", ""))},
		{"wrong alg", set(strings.Replace(pub("a", ""), `"alg":"EdDSA"`, `"alg":"ES256"`, 1))},
		{"wrong use", set(strings.Replace(pub("a", ""), `"use":"sig"`, `"use":"enc"`, 1))},
		{"not a set", pub("a", "")},
		{"keys not an array", `{"keys":{}}`},
		{"duplicate member", `{"keys":[],"keys":[]}`},
		{"not JSON", `{"keys":[`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseJWKS([]byte(tt.data))
			require.Error(t, err)
			assert.Nil(t, ks)
			assert.True(t, strings.HasPrefix(err.Error(), "receipt: parse JWKS: "), "error %q", err)
			assert.NotContains(t, err.Error(), "AAAA")
		})
	}

	// An empty set parses, but no verifier accepts it.
	ks, err := ParseJWKS([]byte(`{"keys":[]}`))
	require.NoError(t, err)
	_, err = NewVerifier(ks)
	assert.True(t, errors.Is(err, ErrNoKeys))
}
