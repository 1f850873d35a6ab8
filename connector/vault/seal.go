package vault

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// sealVersion is the first byte of every sealed secret: the format
// version 0x01, followed by the 24-byte nonce and the ciphertext with its
// 16-byte tag.
const sealVersion byte = 0x01

// sealContext starts the associated data, so that bytes sealed by this
// package never open as anything else sealed with the same key.
const sealContext = "oars.vault.secret.v1"

// sealAAD returns the associated data binding a sealed secret to its name
// and key id: the context string, then the name and the key id, each
// prefixed with its length so that no two pairs give the same bytes.
func sealAAD(name, keyID string) []byte {
	b := make([]byte, 0, len(sealContext)+8+len(name)+len(keyID))
	b = append(b, sealContext...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(name)))
	b = append(b, name...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keyID)))
	b = append(b, keyID...)
	return b
}

// seal returns plaintext sealed under aead for secret name and key keyID,
// with a fresh random nonce.
func seal(aead cipher.AEAD, name, keyID string, plaintext []byte) ([]byte, error) {
	ns := aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(out, out[1:], plaintext, sealAAD(name, keyID)), nil
}

// open returns the plaintext sealed in sealed, failing with ErrUnsealable
// for anything but the output of seal under the same key for the same
// name and key id.
func open(aead cipher.AEAD, name, keyID string, sealed []byte) ([]byte, error) {
	ns := aead.NonceSize()
	if len(sealed) < 1+ns+aead.Overhead() || sealed[0] != sealVersion {
		return nil, ErrUnsealable
	}
	plaintext, err := aead.Open([]byte{}, sealed[1:1+ns], sealed[1+ns:], sealAAD(name, keyID))
	if err != nil {
		return nil, ErrUnsealable
	}
	return plaintext, nil
}
