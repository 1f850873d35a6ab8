package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

func testSignerVerifier(t testing.TB, origin string) (note.Signer, note.Verifier) {
	t.Helper()
	key := testKey()
	s, err := NewCheckpointSigner(origin, key)
	require.NoError(t, err, "NewCheckpointSigner")
	v, err := NewCheckpointVerifier(origin, key.Public().(ed25519.PublicKey))
	require.NoError(t, err, "NewCheckpointVerifier")
	return s, v
}

func TestCheckpointRoundTrip(t *testing.T) {
	ctx := context.Background()
	s, v := testSignerVerifier(t, testOrigin)
	l := newTestLedger(t, NewMemStore(), WithCheckpointSigner(s))

	for _, n := range []int{0, 1, 5, 40} {
		size, err := l.Size(ctx)
		require.NoError(t, err)
		for i := int(size); i < n; i++ {
			_, err := l.Append(ctx, leafAt(i))
			require.NoError(t, err)
		}
		msg, err := l.Checkpoint(ctx)
		require.NoError(t, err, "Checkpoint() at size %d", n)
		c, err := ParseCheckpoint(msg, v)
		require.NoError(t, err, "ParseCheckpoint(Checkpoint()) at size %d", n)
		root, err := l.TreeHash(ctx, int64(n))
		require.NoError(t, err)
		require.Equal(t, &Checkpoint{Origin: testOrigin, Size: int64(n), Root: root}, c, "ParseCheckpoint at size %d", n)

		// The body is exactly the C2SP tlog-checkpoint text.
		body := testOrigin + "\n" + strconv.Itoa(n) + "\n" + root.String() + "\n"
		require.True(t, strings.HasPrefix(string(msg), body+"\n— "+testOrigin+" "), "Checkpoint() = %q, want body %q then signature", msg, body)
		require.Equal(t, body, c.String(), "Checkpoint.String()")
	}
}

func TestCheckpointGolden(t *testing.T) {
	ctx := context.Background()
	s, v := testSignerVerifier(t, testOrigin)
	l := newTestLedger(t, NewMemStore(), WithCheckpointSigner(s))
	for _, leaf := range []string{"alpha", "beta", "gamma"} {
		_, err := l.Append(ctx, []byte(leaf))
		require.NoError(t, err)
	}
	msg, err := l.Checkpoint(ctx)
	require.NoError(t, err)

	path := filepath.Join("testdata", "checkpoint.golden")
	if *update {
		require.NoError(t, os.WriteFile(path, msg, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "read golden file (run with -update to create it)")
	require.Equal(t, string(want), string(msg), "Checkpoint() vs %s", path)

	// The golden root is the RFC 6962 root computed from scratch.
	root := refRoot([][]byte{[]byte("alpha"), []byte("beta"), []byte("gamma")})
	require.True(t, bytes.HasPrefix(want, []byte(testOrigin+"\n3\n"+root.String()+"\n\n")), "golden body")

	// The golden file also parses with a verifier built only from the
	// published verifier key string, as an outside auditor would.
	vkey, err := VerifierKey(testOrigin, testKey().Public().(ed25519.PublicKey))
	require.NoError(t, err)
	nv, err := note.NewVerifier(vkey)
	require.NoError(t, err)
	c, err := ParseCheckpoint(want, nv)
	require.NoError(t, err)
	require.Equal(t, int64(3), c.Size)
	c2, err := ParseCheckpoint(want, v)
	require.NoError(t, err)
	require.Equal(t, c, c2)
}

func TestCheckpointNoSigner(t *testing.T) {
	l := newTestLedger(t, NewMemStore())
	_, err := l.Checkpoint(context.Background())
	require.Error(t, err, "Checkpoint() without a signer")
}

// signText signs an arbitrary note text with s.
func signText(t *testing.T, text string, s note.Signer) []byte {
	t.Helper()
	msg, err := note.Sign(&note.Note{Text: text}, s)
	require.NoError(t, err)
	return msg
}

func TestParseCheckpointRejects(t *testing.T) {
	ctx := context.Background()
	s, v := testSignerVerifier(t, testOrigin)
	l := newTestLedger(t, NewMemStore(), WithCheckpointSigner(s))
	appendN(t, l, 5)
	good, err := l.Checkpoint(ctx)
	require.NoError(t, err)
	root, err := l.TreeHash(ctx, 5)
	require.NoError(t, err)
	r := root.String()

	otherKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	otherSigner, err := NewCheckpointSigner(testOrigin, otherKey)
	require.NoError(t, err)
	renamedSigner, err := NewCheckpointSigner("example.com/other", testKey())
	require.NoError(t, err)
	otherOriginV, err := NewCheckpointVerifier("example.com/other", testKey().Public().(ed25519.PublicKey))
	require.NoError(t, err)

	nonCanonical := []byte(r)
	// The last data character of a canonical 32-byte hash has its two low
	// (padding) bits clear; setting one spells the same bytes non-canonically.
	nonCanonical[len(nonCanonical)-2]++

	tests := []struct {
		name string
		msg  []byte
		v    note.Verifier
	}{
		{"tampered size", bytes.Replace(good, []byte("\n5\n"), []byte("\n6\n"), 1), v},
		{"tampered root", bytes.Replace(good, []byte(r), []byte(tlog.Hash{}.String()), 1), v},
		{"tampered origin", bytes.Replace(good, []byte(testOrigin+"\n"), []byte("example.com/oars-tesT\n"), 1), v},
		{"tampered signature", tamperSig(good), v},
		{"signed by another key", signText(t, testOrigin+"\n5\n"+r+"\n", otherSigner), v},
		{"verifier for another origin", good, otherOriginV},
		{"origin differs from key name", signText(t, "example.com/elsewhere\n5\n"+r+"\n", s), v},
		{"other key name", signText(t, testOrigin+"\n5\n"+r+"\n", renamedSigner), v},
		{"nil verifier", good, nil},
		{"no signature", []byte(testOrigin + "\n5\n" + r + "\n"), v},
		{"empty", nil, v},
		{"two lines", signText(t, testOrigin+"\n5\n", s), v},
		{"leading zero", signText(t, testOrigin+"\n05\n"+r+"\n", s), v},
		{"plus sign", signText(t, testOrigin+"\n+5\n"+r+"\n", s), v},
		{"negative size", signText(t, testOrigin+"\n-5\n"+r+"\n", s), v},
		{"space in size", signText(t, testOrigin+"\n 5\n"+r+"\n", s), v},
		{"empty size", signText(t, testOrigin+"\n\n"+r+"\n", s), v},
		{"hex size", signText(t, testOrigin+"\n0x5\n"+r+"\n", s), v},
		{"size overflows int64", signText(t, testOrigin+"\n9223372036854775808\n"+r+"\n", s), v},
		{"short root", signText(t, testOrigin+"\n5\nAAAA\n", s), v},
		{"unpadded root", signText(t, testOrigin+"\n5\n"+strings.TrimRight(r, "=")+"\n", s), v},
		{"url-safe root", signText(t, testOrigin+"\n5\n"+strings.NewReplacer("+", "-", "/", "_").Replace(tlog.Hash{0xfb, 0xff}.String())+"\n", s), v},
		{"non-canonical root", signText(t, testOrigin+"\n5\n"+string(nonCanonical)+"\n", s), v},
		{"empty extension line", signText(t, testOrigin+"\n5\n"+r+"\n\nextension\n", s), v},
		{"trailing space", signText(t, testOrigin+"\n5 \n"+r+"\n", s), v},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCheckpoint(tt.msg, tt.v)
			assert.ErrorIs(t, err, ErrInvalidCheckpoint, "ParseCheckpoint(%s)", tt.name)
			assert.Nil(t, c, "ParseCheckpoint(%s) result", tt.name)
		})
	}

	t.Run("signature errors keep the note error", func(t *testing.T) {
		_, err := ParseCheckpoint(signText(t, testOrigin+"\n5\n"+r+"\n", otherSigner), v)
		var unverified *note.UnverifiedNoteError
		assert.ErrorAs(t, err, &unverified, "ParseCheckpoint(signed by unknown key)")
		_, err = ParseCheckpoint(tamperSig(good), v)
		var invalid *note.InvalidSignatureError
		assert.ErrorAs(t, err, &invalid, "ParseCheckpoint(bad signature)")
	})
}

// tamperSig flips a bit in the signature bytes of a signed note.
func tamperSig(msg []byte) []byte {
	out := bytes.Clone(msg)
	// The signature line ends "<base64>\n"; change a character well inside
	// the base64 that encodes the Ed25519 signature (after the 4-byte key hash).
	i := len(out) - 20
	if out[i] == 'A' {
		out[i] = 'B'
	} else {
		out[i] = 'A'
	}
	return out
}

func TestParseCheckpointAccepts(t *testing.T) {
	s, v := testSignerVerifier(t, testOrigin)
	r := refRoot([][]byte{[]byte("x")}).String()
	witness, err := NewCheckpointSigner("witness.example", ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32)))
	require.NoError(t, err)

	tests := []struct {
		name string
		msg  []byte
		want Checkpoint
	}{
		{"extension lines", signText(t, testOrigin+"\n1\n"+r+"\nextension one\nextension two\n", s), Checkpoint{testOrigin, 1, mustHash(t, r)}},
		{"size zero", signText(t, testOrigin+"\n0\n"+refRoot(nil).String()+"\n", s), Checkpoint{testOrigin, 0, refRoot(nil)}},
		{"max size", signText(t, testOrigin+"\n9223372036854775807\n"+r+"\n", s), Checkpoint{testOrigin, 1<<63 - 1, mustHash(t, r)}},
		{"cosigned by a witness", func() []byte {
			msg, err := note.Sign(&note.Note{Text: testOrigin + "\n1\n" + r + "\n"}, s, witness)
			require.NoError(t, err)
			return msg
		}(), Checkpoint{testOrigin, 1, mustHash(t, r)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCheckpoint(tt.msg, v)
			require.NoError(t, err, "ParseCheckpoint(%s)", tt.name)
			assert.Equal(t, tt.want, *c, "ParseCheckpoint(%s)", tt.name)
		})
	}
}

func mustHash(t *testing.T, s string) tlog.Hash {
	t.Helper()
	h, err := tlog.ParseHash(s)
	require.NoError(t, err)
	return h
}

func TestCheckpointKeys(t *testing.T) {
	key := testKey()
	pub := key.Public().(ed25519.PublicKey)

	vkey, err := VerifierKey(testOrigin, pub)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(vkey, testOrigin+"+"), "VerifierKey() = %q, want origin prefix", vkey)
	nv, err := note.NewVerifier(vkey)
	require.NoError(t, err, "note.NewVerifier(VerifierKey())")

	s, err := NewCheckpointSigner(testOrigin, key)
	require.NoError(t, err)
	require.Equal(t, testOrigin, s.Name(), "signer Name()")
	require.Equal(t, nv.KeyHash(), s.KeyHash(), "signer KeyHash() vs verifier key")

	// A signer built from note's own private key format agrees.
	skey, vkey2, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{3}, 64)), testOrigin)
	require.NoError(t, err)
	ns, err := note.NewSigner(skey)
	require.NoError(t, err)
	genKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	ours, err := NewCheckpointSigner(testOrigin, genKey)
	require.NoError(t, err)
	require.Equal(t, ns.KeyHash(), ours.KeyHash(), "KeyHash() vs note.GenerateKey")
	vk, err := VerifierKey(testOrigin, genKey.Public().(ed25519.PublicKey))
	require.NoError(t, err)
	require.Equal(t, vkey2, vk, "VerifierKey() vs note.GenerateKey")

	bad := []struct {
		name   string
		origin string
		key    ed25519.PrivateKey
	}{
		{"empty origin", "", key},
		{"space in origin", "example.com/a log", key},
		{"plus in origin", "example.com/a+b", key},
		{"newline in origin", "example.com\n5", key},
		{"invalid utf-8", "example.com/\xff", key},
		{"short key", testOrigin, key[:32]},
		{"nil key", testOrigin, nil},
		{"mismatched halves", testOrigin, append(append(ed25519.PrivateKey{}, key[:32]...), make([]byte, 32)...)},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewCheckpointSigner(tt.origin, tt.key)
			assert.Error(t, err, "NewCheckpointSigner(%s)", tt.name)
			if len(tt.key) == ed25519.PrivateKeySize {
				pub := ed25519.PublicKey(tt.key[32:])
				_, err = VerifierKey(tt.origin, pub)
				if tt.name != "mismatched halves" {
					assert.Error(t, err, "VerifierKey(%s)", tt.name)
					_, err = NewCheckpointVerifier(tt.origin, pub)
					assert.Error(t, err, "NewCheckpointVerifier(%s)", tt.name)
				}
			}
		})
	}
	_, err = VerifierKey(testOrigin, pub[:31])
	assert.Error(t, err, "VerifierKey(short public key)")
}

// funcSigner signs like a KMS would: the caller never sees the private key.
type funcSigner struct{ key ed25519.PrivateKey }

func (f funcSigner) Public() ed25519.PublicKey { return f.key.Public().(ed25519.PublicKey) }
func (f funcSigner) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(f.key, msg), nil
}

func TestCheckpointSignerFrom(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	s, err := NewCheckpointSignerFrom("example.com/log", funcSigner{key})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := NewCheckpointSigner("example.com/log", key)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != direct.Name() || s.KeyHash() != direct.KeyHash() {
		t.Fatalf("NewCheckpointSignerFrom = (%s, %08x), want (%s, %08x)", s.Name(), s.KeyHash(), direct.Name(), direct.KeyHash())
	}
	ctx := context.Background()
	l, err := New(ctx, NewMemStore(), WithCheckpointSigner(s))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(ctx, []byte("leaf")); err != nil {
		t.Fatal(err)
	}
	msg, err := l.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewCheckpointVerifier("example.com/log", funcSigner{key}.Public())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ParseCheckpoint(msg, v)
	if err != nil {
		t.Fatalf("ParseCheckpoint: %v", err)
	}
	if cp.Size != 1 {
		t.Errorf("checkpoint size = %d, want 1", cp.Size)
	}
	if _, err := NewCheckpointSignerFrom("bad origin", funcSigner{key}); err == nil {
		t.Error("NewCheckpointSignerFrom with a space in the origin succeeded")
	}
}
