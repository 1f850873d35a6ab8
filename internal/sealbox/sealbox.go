// Package sealbox seals small secrets at rest with an AEAD (in OARS,
// XChaCha20-Poly1305) in one versioned format, shared by the connector
// vault and the approval step-up store.
//
// A sealed value is the format version 0x01, the random nonce, and the
// ciphertext with its tag. The associated data binds it to a context
// string (one per kind of secret, so that one kind never opens as another
// under the same key) and to two strings naming what it belongs to, each
// prefixed with its length so that no two pairs give the same bytes.
package sealbox

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// version is the first byte of every sealed value.
const version byte = 0x01

// ErrUnsealable is returned by [Open] for anything but the output of
// [Seal] under the same key with the same associated data.
var ErrUnsealable = errors.New("sealed value does not open")

// AAD returns the associated data for a value of kind context that
// belongs to (a, b): context, then a and b, each prefixed with its length
// as a big-endian uint32.
func AAD(context, a, b string) []byte {
	out := make([]byte, 0, len(context)+8+len(a)+len(b))
	out = append(out, context...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(a)))
	out = append(out, a...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
	out = append(out, b...)
	return out
}

// Seal returns plaintext sealed under aead with associated data aad and a
// fresh random nonce.
func Seal(aead cipher.AEAD, aad, plaintext []byte) ([]byte, error) {
	ns := aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, aad), nil
}

// Open returns the plaintext sealed in sealed (never nil on success). It
// fails with [ErrUnsealable] for anything but the output of Seal under the
// same aead key with the same aad.
func Open(aead cipher.AEAD, aad, sealed []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < 1+ns+aead.Overhead() || sealed[0] != version {
		return nil, ErrUnsealable
	}
	plaintext, err := aead.Open([]byte{}, sealed[1:1+ns], sealed[1+ns:], aad)
	if err != nil {
		return nil, ErrUnsealable
	}
	return plaintext, nil
}
