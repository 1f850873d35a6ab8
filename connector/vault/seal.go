package vault

import (
	"crypto/cipher"

	"github.com/oarsdev/oars/internal/sealbox"
)

// sealContext starts the associated data, so that bytes sealed by this
// package never open as anything else sealed with the same key. The format
// is sealbox's: version 0x01, the 24-byte nonce, the ciphertext and its
// 16-byte tag.
const sealContext = "oars.vault.secret.v1"

// seal returns plaintext sealed under aead for secret name and key keyID,
// with a fresh random nonce.
func seal(aead cipher.AEAD, name, keyID string, plaintext []byte) ([]byte, error) {
	return sealbox.Seal(aead, sealbox.AAD(sealContext, name, keyID), plaintext)
}

// open returns the plaintext sealed in sealed, failing with ErrUnsealable
// for anything but the output of seal under the same key for the same
// name and key id.
func open(aead cipher.AEAD, name, keyID string, sealed []byte) ([]byte, error) {
	plaintext, err := sealbox.Open(aead, sealbox.AAD(sealContext, name, keyID), sealed)
	if err != nil {
		return nil, ErrUnsealable
	}
	return plaintext, nil
}
