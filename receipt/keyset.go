package receipt

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/go-jose/go-jose/v4"

	"github.com/oarsdev/oars/internal/strictjson"
)

// ErrDuplicateKeyID is returned (wrapped) when a key id is added to a
// [KeySet] that already holds it.
var ErrDuplicateKeyID = errors.New("duplicate key id")

// PublicKey is an Ed25519 verification key and its key id.
type PublicKey struct {
	// KeyID is the key id signatures name in signature.kid.
	KeyID string
	// Key is the 32-byte Ed25519 public key.
	Key ed25519.PublicKey
}

// KeySet holds the keys receipts are signed and verified with: at most one
// active [Signer], whose public key verifies too, and any number of
// retired public keys that still verify what they signed. Key ids are
// unique within a set.
//
// A KeySet is safe for concurrent use; the zero value is not usable, build
// one with [NewKeySet] or [ParseJWKS].
type KeySet struct {
	mu     sync.RWMutex
	active Signer
	keys   map[string]ed25519.PublicKey
	order  []string // key ids in the order added
}

// NewKeySet returns a key set with active as its signing key (nil for a
// set that only verifies) and the given retired keys. It fails if a key id
// is empty or repeated (wrapping [ErrDuplicateKeyID]) or a key is not a
// 32-byte Ed25519 public key.
func NewKeySet(active Signer, retired ...PublicKey) (*KeySet, error) {
	ks := &KeySet{keys: make(map[string]ed25519.PublicKey, len(retired)+1)}
	for _, k := range retired {
		if err := ks.add(k.KeyID, k.Key); err != nil {
			return nil, fmt.Errorf("receipt: new key set: %w", err)
		}
	}
	if active != nil {
		if err := ks.add(active.KeyID(), active.Public()); err != nil {
			return nil, fmt.Errorf("receipt: new key set: active key: %w", err)
		}
		ks.active = active
	}
	return ks, nil
}

// add adds a verification key; the caller holds mu or owns ks.
func (ks *KeySet) add(kid string, pub ed25519.PublicKey) error {
	if kid == "" {
		return errors.New("empty key id")
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("public key is %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	if _, ok := ks.keys[kid]; ok {
		return ErrDuplicateKeyID
	}
	ks.keys[kid] = slices.Clone(pub)
	ks.order = append(ks.order, kid)
	return nil
}

// Active returns the signing key, or nil if the set only verifies.
func (ks *KeySet) Active() Signer {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.active
}

// Rotate makes next the active signing key. The previous active key, if
// any, stays in the set as a retired key so receipts it signed still
// verify. It fails if next is nil, its key id is empty or already in the
// set (wrapping [ErrDuplicateKeyID]), or its public key is invalid; the
// set is unchanged then.
func (ks *KeySet) Rotate(next Signer) error {
	if next == nil {
		return errors.New("receipt: rotate: nil signer")
	}
	kid, pub := next.KeyID(), next.Public()
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err := ks.add(kid, pub); err != nil {
		return fmt.Errorf("receipt: rotate: %w", err)
	}
	ks.active = next
	return nil
}

// Add adds a retired verification key. It fails like [NewKeySet].
func (ks *KeySet) Add(k PublicKey) error {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if err := ks.add(k.KeyID, k.Key); err != nil {
		return fmt.Errorf("receipt: add key: %w", err)
	}
	return nil
}

// Lookup returns a copy of the public key with key id kid and true, or
// nil and false if the set has no such key.
func (ks *KeySet) Lookup(kid string) (ed25519.PublicKey, bool) {
	pub, ok := ks.lookup(kid)
	return slices.Clone(pub), ok
}

// lookup is Lookup without the copy; the result must not be modified.
func (ks *KeySet) lookup(kid string) (ed25519.PublicKey, bool) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	pub, ok := ks.keys[kid]
	return pub, ok
}

// Keys returns copies of all verification keys: the active key first, then
// the others in the order they were added.
func (ks *KeySet) Keys() []PublicKey {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	out := make([]PublicKey, 0, len(ks.order))
	var activeKid string
	if ks.active != nil {
		activeKid = ks.active.KeyID()
		out = append(out, PublicKey{KeyID: activeKid, Key: slices.Clone(ks.keys[activeKid])})
	}
	for _, kid := range ks.order {
		if ks.active != nil && kid == activeKid {
			continue
		}
		out = append(out, PublicKey{KeyID: kid, Key: slices.Clone(ks.keys[kid])})
	}
	return out
}

// Len returns the number of verification keys in the set.
func (ks *KeySet) Len() int {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return len(ks.keys)
}

// MarshalJWKS returns the set's public keys as a JSON Web Key Set
// (RFC 7517) in canonical JSON, in the order of [KeySet.Keys]. Each key is
// {"kty":"OKP","crv":"Ed25519","alg":"EdDSA","use":"sig","kid":…,"x":…};
// no private key material is ever included.
func (ks *KeySet) MarshalJWKS() ([]byte, error) {
	keys := ks.Keys()
	set := jose.JSONWebKeySet{Keys: make([]jose.JSONWebKey, len(keys))}
	for i, k := range keys {
		set.Keys[i] = jose.JSONWebKey{Key: k.Key, KeyID: k.KeyID, Algorithm: Alg, Use: "sig"}
	}
	data, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("receipt: marshal JWKS: %w", err)
	}
	return Canonicalize(data)
}

// isPrivateJWKMember reports whether a JWK member name (compared without
// case) carries secret key material (RFC 7517, RFC 7518, RFC 8037,
// RFC 9964).
func isPrivateJWKMember(name string) bool {
	switch strings.ToLower(name) {
	case "d", "p", "q", "dp", "dq", "qi", "k", "oth", "priv":
		return true
	}
	return false
}

// ParseJWKS parses a JSON Web Key Set into a verification-only [KeySet]
// (no active signer). The input must be strict JSON; every key must be an
// Ed25519 public key (kty OKP, crv Ed25519) with a unique, non-empty kid,
// and alg and use, if present, must be EdDSA and sig. A set holding any
// private key material (a "d" member, say) is refused: a public key set
// must never carry secrets. Errors never include key material.
func ParseJWKS(data []byte) (*KeySet, error) {
	if err := strictjson.Check(data); err != nil {
		return nil, fmt.Errorf("receipt: parse JWKS: %w", err)
	}
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &raw); err != nil || raw.Keys == nil {
		return nil, errors.New(`receipt: parse JWKS: not a JWK set (want {"keys":[…]})`)
	}
	ks := &KeySet{keys: make(map[string]ed25519.PublicKey, len(raw.Keys))}
	for i, rk := range raw.Keys {
		var members map[string]json.RawMessage
		if err := json.Unmarshal(rk, &members); err != nil {
			return nil, fmt.Errorf("receipt: parse JWKS: key %d: not a JSON object", i)
		}
		for name := range members {
			if isPrivateJWKMember(name) {
				return nil, fmt.Errorf("receipt: parse JWKS: key %d: holds private key material", i)
			}
		}
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(rk); err != nil {
			return nil, fmt.Errorf("receipt: parse JWKS: key %d: not a supported JSON Web Key", i)
		}
		pub, ok := jwk.Key.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("receipt: parse JWKS: key %d: not an Ed25519 public key", i)
		}
		if err := checkJWKParams(jwk); err != nil {
			return nil, fmt.Errorf("receipt: parse JWKS: key %d: %w", i, err)
		}
		if err := ks.add(jwk.KeyID, pub); err != nil {
			return nil, fmt.Errorf("receipt: parse JWKS: key %d: %w", i, err)
		}
	}
	return ks, nil
}
