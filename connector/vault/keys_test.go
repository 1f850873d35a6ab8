package vault_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/vault"
)

// keyBytes returns 32 key bytes that start with tag.
func keyBytes(tag byte) [vault.KeySize]byte {
	var k [vault.KeySize]byte
	for i := range k {
		k[i] = tag + byte(i)
	}
	return k
}

func TestParseKeys(t *testing.T) {
	k1, k2 := keyBytes(1), keyBytes(100)
	std := base64.StdEncoding.EncodeToString
	url := base64.URLEncoding.EncodeToString
	rawStd := base64.RawStdEncoding.EncodeToString
	rawURL := base64.RawURLEncoding.EncodeToString
	// A key whose base64 differs between the standard and URL alphabets.
	var k3 [vault.KeySize]byte
	for i := range k3 {
		k3[i] = 0xFB
	}
	long := make([]byte, vault.KeySize+1)
	tests := []struct {
		name    string
		in      string
		wantIDs []string
		wantErr string // substring of the error; "" for success
	}{
		{name: "one", in: "k1:" + std(k1[:]), wantIDs: []string{"k1"}},
		{name: "two, first active", in: "k2:" + std(k2[:]) + ",k1:" + std(k1[:]), wantIDs: []string{"k2", "k1"}},
		{name: "url", in: "k3:" + url(k3[:]), wantIDs: []string{"k3"}},
		{name: "std", in: "k3:" + std(k3[:]), wantIDs: []string{"k3"}},
		{name: "raw std", in: "k3:" + rawStd(k3[:]), wantIDs: []string{"k3"}},
		{name: "raw url", in: "k3:" + rawURL(k3[:]), wantIDs: []string{"k3"}},
		{name: "id characters", in: "Key_2026.01-a:" + std(k1[:]), wantIDs: []string{"Key_2026.01-a"}},
		{name: "longest id", in: strings.Repeat("i", vault.MaxKeyIDLength) + ":" + std(k1[:]), wantIDs: []string{strings.Repeat("i", vault.MaxKeyIDLength)}},

		{name: "empty", in: "", wantErr: "no keys"},
		{name: "empty entry", in: "k1:" + std(k1[:]) + ",", wantErr: "entry 2 is empty"},
		{name: "leading comma", in: ",k1:" + std(k1[:]), wantErr: "entry 1 is empty"},
		{name: "no colon", in: std(k1[:]), wantErr: "entry 1: want ID:BASE64KEY"},
		{name: "empty id", in: ":" + std(k1[:]), wantErr: "entry 1: id is empty"},
		{name: "id too long", in: strings.Repeat("i", vault.MaxKeyIDLength+1) + ":" + std(k1[:]), wantErr: "longer than 64 bytes"},
		{name: "bad id character", in: "k 1:" + std(k1[:]), wantErr: "entry 1: id has a character outside"},
		{name: "id with colon-free slash", in: "k/1:" + std(k1[:]), wantErr: "id has a character outside"},
		{name: "duplicate id", in: "k1:" + std(k1[:]) + ",k1:" + std(k2[:]), wantErr: "entries 1 and 2 have the same id"},
		{name: "empty key", in: "k1:", wantErr: "entry 1: key is empty"},
		{name: "short key", in: "k1:" + std(k1[:16]), wantErr: "key is 16 bytes, want 32"},
		{name: "long key", in: "k1:" + std(long), wantErr: "key is 33 bytes, want 32"},
		{name: "very long key", in: "k1:" + std(bytes.Repeat([]byte{7}, 300)), wantErr: "longer than 32 bytes"},
		{name: "not base64", in: "k1:" + strings.Repeat("*", 44), wantErr: "not base64"},
		{name: "space around key", in: "k1: " + std(k1[:]), wantErr: "not base64"},
		{name: "trailing newline", in: "k1:" + std(k1[:]) + "\n", wantErr: "not base64"},
		{name: "space after comma", in: "k2:" + std(k2[:]) + ", k1:" + std(k1[:]), wantErr: "entry 2: id has a character outside"},
		{name: "second colon", in: "k1:" + std(k1[:]) + ":x", wantErr: "not base64"},
		{name: "non-canonical padding bits", in: "k1:" + std(k1[:])[:42] + "B=", wantErr: "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := vault.ParseKeys(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err, "ParseKeys(%q)", tt.in)
				assert.Contains(t, err.Error(), tt.wantErr, "ParseKeys(%q)", tt.in)
				assert.Nil(t, kr)
				assertNoKeyMaterial(t, err.Error(), tt.in)
				return
			}
			require.NoError(t, err, "ParseKeys(%q)", tt.in)
			assert.Equal(t, tt.wantIDs, kr.IDs())
			assert.Equal(t, tt.wantIDs[0], kr.ActiveID())
		})
	}
}

// assertNoKeyMaterial checks that msg repeats no part of the keys of in
// longer than a few characters, nor any part of an entry without a colon.
func assertNoKeyMaterial(t *testing.T, msg, in string) {
	t.Helper()
	for e := range strings.SplitSeq(in, ",") {
		_, b64, ok := strings.Cut(e, ":")
		if !ok {
			b64 = e
		}
		for i := 0; i+8 <= len(b64); i++ {
			if sub := b64[i : i+8]; strings.Contains(msg, sub) && strings.Trim(sub, "*i") != "" {
				t.Errorf("error %q repeats key material %q", msg, sub)
				return
			}
		}
	}
}

func TestParseKeysOpensWithEachKey(t *testing.T) {
	// A keyring parsed from the printed keys works like the keys: a secret
	// sealed under k1 opens with the keyring "k2,k1".
	k1, err := vault.GenerateKey("k1")
	require.NoError(t, err)
	k2, err := vault.GenerateKey("k2")
	require.NoError(t, err)
	ring1, err := vault.ParseKeys(k1.String())
	require.NoError(t, err)
	ring21, err := vault.ParseKeys(k2.String() + "," + k1.String())
	require.NoError(t, err)
	assert.True(t, ring21.Has("k1"))
	assert.False(t, ring1.Has("k2"))

	store := &vault.MemStore{}
	v1 := newVault(t, store, ring1)
	require.NoError(t, v1.Put(t.Context(), "a", []byte("secret-a")))
	got, err := newVault(t, store, ring21).Secret(t.Context(), "a")
	require.NoError(t, err)
	assert.Equal(t, "secret-a", string(got))
}

func TestGenerateKey(t *testing.T) {
	a, err := vault.GenerateKey("k1")
	require.NoError(t, err)
	b, err := vault.GenerateKey("k1")
	require.NoError(t, err)
	assert.NotEqual(t, a.Secret, b.Secret, "two generated keys are equal")
	assert.NotEqual(t, [vault.KeySize]byte{}, a.Secret)

	s := a.String()
	id, b64, ok := strings.Cut(s, ":")
	require.True(t, ok, "Key.String() = %q, want id:base64", s)
	assert.Equal(t, "k1", id)
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	assert.Equal(t, a.Secret[:], raw)

	for _, id := range []string{"", "k 1", "k:1", "k,1", strings.Repeat("k", vault.MaxKeyIDLength+1)} {
		_, err := vault.GenerateKey(id)
		assert.Error(t, err, "GenerateKey(%q)", id)
	}
}

func TestKeyRedaction(t *testing.T) {
	k := vault.Key{ID: "k1", Secret: keyBytes(1)}
	b64 := base64.StdEncoding.EncodeToString(k.Secret[:])
	kr, err := vault.NewKeyring(k)
	require.NoError(t, err)

	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	log.Info("keys", "key", k, "keyring", kr)
	log.Info("json", slog.Any("key", k))
	jl := slog.New(slog.NewJSONHandler(&logs, nil))
	jl.Info("keys", "key", k, "keyring", kr)

	for _, out := range []string{
		logs.String(),
		fmt.Sprintf("%#v", k),
		fmt.Sprintf("%v %+v %s", kr, kr, kr),
		fmt.Sprintf("%v %+v %#v", *kr, *kr, *kr),
	} {
		assert.NotContains(t, out, b64[:20], "key bytes printed")
		assert.NotContains(t, out, string(k.Secret[:8]), "raw key bytes printed")
		assert.Contains(t, out, "k1")
	}
}

func TestNewKeyring(t *testing.T) {
	k1 := vault.Key{ID: "k1", Secret: keyBytes(1)}
	k2 := vault.Key{ID: "k2", Secret: keyBytes(2)}
	kr, err := vault.NewKeyring(k2, k1)
	require.NoError(t, err)
	assert.Equal(t, []string{"k2", "k1"}, kr.IDs())
	ids := kr.IDs()
	ids[0] = "changed"
	assert.Equal(t, "k2", kr.ActiveID(), "IDs returns a copy")

	_, err = vault.NewKeyring(k1, k2, vault.Key{ID: "k1"})
	assert.ErrorContains(t, err, "keys 1 and 3 have the same id")
	_, err = vault.NewKeyring(vault.Key{ID: "bad id"})
	assert.ErrorContains(t, err, "key 1: id has a character outside")
	assert.True(t, slices.Equal(kr.IDs(), []string{"k2", "k1"}))
}
