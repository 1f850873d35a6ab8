package receipt

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/go-jose/go-jose/v4"

	"github.com/oarsdev/oars/internal/strictjson"
)

// Alg is the value of signature.alg: Ed25519 signatures (RFC 8037 names
// the algorithm EdDSA).
const Alg = "EdDSA"

// Signer signs receipts and events with an Ed25519 key. Implementations
// may keep the private key elsewhere (a KMS or HSM).
type Signer interface {
	// KeyID returns the non-empty key id written to signature.kid; it
	// names Public in key sets and JWKS.
	KeyID() string
	// Public returns the Ed25519 public key that verifies the signatures.
	Public() ed25519.PublicKey
	// Sign returns the 64-byte Ed25519 signature of message, or an error
	// if signing failed or ctx is done. It must be safe for concurrent
	// use and must not retain message.
	Sign(ctx context.Context, message []byte) ([]byte, error)
}

// ed25519Signer is a Signer holding the private key in memory.
type ed25519Signer struct {
	kid string
	key ed25519.PrivateKey
	pub ed25519.PublicKey
}

// NewEd25519Signer returns a [Signer] with key id kid that signs with key
// in memory. It fails if kid is empty or key is not a 64-byte Ed25519
// private key. The signer keeps a copy of key and is safe for concurrent
// use.
func NewEd25519Signer(kid string, key ed25519.PrivateKey) (Signer, error) {
	s, err := newEd25519Signer(kid, key)
	if err != nil {
		return nil, fmt.Errorf("receipt: new signer: %w", err)
	}
	return s, nil
}

func newEd25519Signer(kid string, key ed25519.PrivateKey) (*ed25519Signer, error) {
	if kid == "" {
		return nil, errors.New("empty key id")
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("private key is %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	k := ed25519.NewKeyFromSeed(key.Seed())
	if !k.Equal(key) {
		return nil, errors.New("private key does not match its public half")
	}
	return &ed25519Signer{kid: kid, key: k, pub: k.Public().(ed25519.PublicKey)}, nil
}

func (s *ed25519Signer) KeyID() string { return s.kid }

func (s *ed25519Signer) Public() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), s.pub...)
}

func (s *ed25519Signer) Sign(ctx context.Context, message []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ed25519.Sign(s.key, message), nil
}

// KeyIDFor returns the default key id of pub: "oars:" followed by the
// first 16 lowercase hex digits of the SHA-256 of the raw public key.
func KeyIDFor(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "oars:" + hex.EncodeToString(sum[:8])
}

// GenerateKey generates an Ed25519 key from crypto/rand and returns a
// [Signer] for it with key id kid ([KeyIDFor] of the public key if kid is
// empty), and the private key so it can be stored (see
// [WritePrivateKeyFile]).
func GenerateKey(kid string) (Signer, ed25519.PrivateKey, error) {
	pub, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("receipt: generate key: %w", err)
	}
	if kid == "" {
		kid = KeyIDFor(pub)
	}
	s, err := NewEd25519Signer(kid, key)
	if err != nil {
		return nil, nil, err
	}
	return s, key, nil
}

// GenerateSigner returns a [Signer] for a new random Ed25519 key with the
// key id [KeyIDFor] of its public key. The private key exists only in
// memory; use [GenerateKey] to store it.
func GenerateSigner() (Signer, error) {
	s, _, err := GenerateKey("")
	return s, err
}

// MarshalPrivateKey returns the private key file form of key with key id
// kid: a JSON Web Key (RFC 8037) {"kty":"OKP","crv":"Ed25519","alg":"EdDSA",
// "use":"sig","kid":…,"x":…,"d":…} in canonical JSON. The result holds the
// secret key: keep it out of logs. It fails for an empty kid or a key that
// is not a valid Ed25519 private key.
func MarshalPrivateKey(kid string, key ed25519.PrivateKey) ([]byte, error) {
	if _, err := newEd25519Signer(kid, key); err != nil {
		return nil, fmt.Errorf("receipt: marshal private key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: key, KeyID: kid, Algorithm: Alg, Use: "sig"}
	data, err := jwk.MarshalJSON()
	if err != nil {
		return nil, errors.New("receipt: marshal private key: cannot encode JWK")
	}
	out, err := Canonicalize(data)
	if err != nil {
		return nil, errors.New("receipt: marshal private key: cannot canonicalize JWK")
	}
	return out, nil
}

// ParseSigner parses a private key in the form [MarshalPrivateKey] writes
// and returns its in-memory [Signer]. The JWK must be strict JSON of type
// OKP / Ed25519 with d, x and a non-empty kid, x must match d, and alg and
// use, if present, must be EdDSA and sig. Errors never include key
// material.
func ParseSigner(data []byte) (Signer, error) {
	s, err := parseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("receipt: parse signer: %w", err)
	}
	return s, nil
}

func parseSigner(data []byte) (*ed25519Signer, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, err
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(data); err != nil {
		// The input is a secret: do not pass on messages about it.
		return nil, errors.New("not a valid JSON Web Key")
	}
	key, ok := jwk.Key.(ed25519.PrivateKey)
	if !ok {
		return nil, errors.New("not an Ed25519 private key")
	}
	if err := checkJWKParams(jwk); err != nil {
		return nil, err
	}
	return newEd25519Signer(jwk.KeyID, key)
}

// checkJWKParams checks the kid, alg and use members of an Ed25519 JWK.
func checkJWKParams(jwk jose.JSONWebKey) error {
	switch {
	case jwk.KeyID == "":
		return errors.New("key has no kid")
	case jwk.Algorithm != "" && jwk.Algorithm != Alg:
		return errors.New("key alg is not EdDSA")
	case jwk.Use != "" && jwk.Use != "sig":
		return errors.New("key use is not sig")
	}
	return nil
}

// WritePrivateKeyFile writes key with key id kid to a new file at path in
// the [MarshalPrivateKey] form, readable only by its owner (mode 0600). The
// write is atomic: the file appears complete or not at all. It never
// replaces an existing file: if path exists it fails with an error
// wrapping fs.ErrExist.
func WritePrivateKeyFile(path string, kid string, key ed25519.PrivateKey) (err error) {
	data, err := MarshalPrivateKey(kid, key)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("receipt: write key file: %w", os.ErrExist)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".oars-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if rerr := os.Remove(tmpName); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = fmt.Errorf("receipt: write key file: %w", rerr)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	// A hard link publishes the complete file atomically and, unlike
	// rename, fails if path already exists.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("receipt: write key file: %w", os.ErrExist)
		}
		return fmt.Errorf("receipt: write key file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: persist the new directory entry
		d.Close()
	}
	return nil
}

// LoadSignerFile reads a private key file written by [WritePrivateKeyFile]
// (or [MarshalPrivateKey]) and returns its [Signer]. It fails like
// [ParseSigner].
func LoadSignerFile(path string) (Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("receipt: load key file: %w", err)
	}
	s, err := parseSigner(data)
	if err != nil {
		return nil, fmt.Errorf("receipt: load key file: %w", err)
	}
	return s, nil
}
