package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size in bytes of a vault key.
const KeySize = chacha20poly1305.KeySize

// MaxKeyIDLength is the longest key id, in bytes.
const MaxKeyIDLength = 64

// Key is a vault key: 32 secret bytes and the id recorded with every
// secret sealed under it. Its String method returns the key material;
// LogValue and GoString do not.
type Key struct {
	ID     string
	Secret [KeySize]byte
}

// GenerateKey returns a new random key with the given id. It fails if id
// is not a valid key id (see [ParseKeys]).
func GenerateKey(id string) (Key, error) {
	if p := idProblem(id); p != "" {
		return Key{}, fmt.Errorf("vault: generate key: key id %s", p)
	}
	k := Key{ID: id}
	if _, err := rand.Read(k.Secret[:]); err != nil {
		return Key{}, fmt.Errorf("vault: generate key: %w", err)
	}
	return k, nil
}

// String returns the key in the form [ParseKeys] reads: the id, a colon
// and the key in padded standard base64. It is the key material: print it
// only to hand the key over once, never to a log.
func (k Key) String() string {
	return k.ID + ":" + base64.StdEncoding.EncodeToString(k.Secret[:])
}

// GoString returns the key with its secret bytes withheld, so that %#v
// does not print them.
func (k Key) GoString() string {
	return fmt.Sprintf("vault.Key{ID: %q, Secret: REDACTED}", k.ID)
}

// LogValue returns the key's id only, so that logging a Key with slog
// never logs its secret bytes.
func (k Key) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.ID))
}

// Keyring is the set of keys a [Vault] uses: one active key, which seals,
// and older keys, which only open secrets sealed before a rotation. Make
// one with [NewKeyring] or [ParseKeys]; the zero Keyring holds no key and
// is not usable. A Keyring is immutable and safe for concurrent use;
// printing or logging it shows its key ids only.
type Keyring struct {
	ids   []string // the active key first, then the others in order
	aeads map[string]cipher.AEAD
}

// NewKeyring returns a keyring whose active key is active and which also
// opens secrets sealed under old. It fails if a key id is invalid (see
// [ParseKeys]) or two keys share an id.
func NewKeyring(active Key, old ...Key) (*Keyring, error) {
	keys := append([]Key{active}, old...)
	kr := &Keyring{aeads: make(map[string]cipher.AEAD, len(keys))}
	for i, k := range keys {
		if p := idProblem(k.ID); p != "" {
			return nil, fmt.Errorf("vault: keyring: key %d: id %s", i+1, p)
		}
		if j := slices.Index(kr.ids, k.ID); j >= 0 {
			return nil, fmt.Errorf("vault: keyring: keys %d and %d have the same id", j+1, i+1)
		}
		aead, err := chacha20poly1305.NewX(k.Secret[:])
		if err != nil {
			return nil, fmt.Errorf("vault: keyring: key %d: %w", i+1, err)
		}
		kr.ids = append(kr.ids, k.ID)
		kr.aeads[k.ID] = aead
	}
	return kr, nil
}

// ParseKeys parses a keyring written as a comma-separated list of keys,
// each an id, a colon and the 32 key bytes in base64:
//
//	id1:BASE64KEY,id2:BASE64KEY
//
// The first key is the active one. An id is 1 to [MaxKeyIDLength] bytes
// of A-Z, a-z, 0-9, '.', '_' and '-', and ids are unique. The key is
// standard or URL-safe base64, padded or not, of exactly [KeySize] bytes.
// Nothing is trimmed or repaired: spaces and empty entries are errors.
// Error messages name entries by position and never repeat the input,
// which may hold key material.
func ParseKeys(s string) (*Keyring, error) {
	if s == "" {
		return nil, errors.New("vault: parse keys: no keys")
	}
	entries := strings.Split(s, ",")
	keys := make([]Key, len(entries))
	defer func() {
		for i := range keys {
			clear(keys[i].Secret[:])
		}
	}()
	seen := make(map[string]int, len(entries))
	for i, e := range entries {
		id, b64, ok := strings.Cut(e, ":")
		switch {
		case e == "":
			return nil, fmt.Errorf("vault: parse keys: entry %d is empty", i+1)
		case !ok:
			return nil, fmt.Errorf("vault: parse keys: entry %d: want ID:BASE64KEY", i+1)
		}
		if p := idProblem(id); p != "" {
			return nil, fmt.Errorf("vault: parse keys: entry %d: id %s", i+1, p)
		}
		if j, dup := seen[id]; dup {
			return nil, fmt.Errorf("vault: parse keys: entries %d and %d have the same id", j, i+1)
		}
		seen[id] = i + 1
		if err := decodeKey(&keys[i].Secret, b64); err != nil {
			return nil, fmt.Errorf("vault: parse keys: entry %d: %w", i+1, err)
		}
		keys[i].ID = id
	}
	return NewKeyring(keys[0], keys[1:]...)
}

// keyEncodings are the base64 forms ParseKeys accepts, tried in order.
var keyEncodings = []*base64.Encoding{
	base64.StdEncoding.Strict(),
	base64.URLEncoding.Strict(),
	base64.RawStdEncoding.Strict(),
	base64.RawURLEncoding.Strict(),
}

// decodeKey decodes b64 into dst, failing unless it is the base64 of
// exactly KeySize bytes. Its errors never quote b64.
func decodeKey(dst *[KeySize]byte, b64 string) error {
	if b64 == "" {
		return errors.New("key is empty")
	}
	// The decoders skip '\r' and '\n'; nothing is skipped here.
	for i := 0; i < len(b64); i++ {
		if !base64Byte(b64[i]) {
			return errors.New("key is not base64")
		}
	}
	var buf [KeySize + 3]byte // room to see a key that is too long
	defer clear(buf[:])
	for _, enc := range keyEncodings {
		if enc.DecodedLen(len(b64)) > len(buf) {
			return fmt.Errorf("key is longer than %d bytes", KeySize)
		}
		n, err := enc.Decode(buf[:], []byte(b64))
		if err != nil {
			continue
		}
		if n != KeySize {
			return fmt.Errorf("key is %d bytes, want %d", n, KeySize)
		}
		copy(dst[:], buf[:n])
		return nil
	}
	return errors.New("key is not base64")
}

// base64Byte reports whether c is in the standard or URL-safe base64
// alphabet or is the padding '='.
func base64Byte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '+' || c == '/' || c == '-' || c == '_' || c == '='
}

// idProblem returns what is wrong with a key id, or "". It never repeats
// id, which may be key material pasted in the wrong place.
func idProblem(id string) string {
	switch {
	case id == "":
		return "is empty"
	case len(id) > MaxKeyIDLength:
		return fmt.Sprintf("is longer than %d bytes", MaxKeyIDLength)
	}
	for i := 0; i < len(id); i++ {
		if !idByte(id[i]) {
			return "has a character outside A-Z, a-z, 0-9, '.', '_', '-'"
		}
	}
	return ""
}

func idByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

// ActiveID returns the id of the active key.
func (kr *Keyring) ActiveID() string { return kr.ids[0] }

// IDs returns the ids of the keys, the active one first.
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.ids...) }

// Has reports whether the keyring holds a key with the given id.
func (kr *Keyring) Has(id string) bool {
	_, ok := kr.aeads[id]
	return ok
}

// String describes the keyring by its key ids, the active one first.
func (kr *Keyring) String() string {
	return "vault.Keyring{" + strings.Join(kr.ids, ", ") + "}"
}

// LogValue returns the key ids, so that logging a Keyring with slog never
// logs key bytes.
func (kr *Keyring) LogValue() slog.Value {
	return slog.GroupValue(slog.String("active", kr.ids[0]), slog.Any("ids", kr.ids))
}
