package stepup

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// KeySize is the size in bytes of the key that seals secrets at rest.
const KeySize = chacha20poly1305.KeySize

// sealVersion is the first byte of every sealed secret: the format
// version 0x01 followed by the 24-byte nonce and the ciphertext with its
// 16-byte tag.
const sealVersion byte = 0x01

// sealContext starts the associated data, so that a sealed secret of this
// package never opens as anything else.
const sealContext = "oars.stepup.totp.v1"

// errSealed is the cause when a sealed secret cannot be opened: wrong key,
// tampered bytes, or bytes sealed for another approver.
var errSealed = errors.New("sealed secret does not open")

// sealer seals and opens TOTP secrets under one key, binding each to its
// tenant and user.
type sealer struct {
	aead cipher.AEAD
}

func newSealer(key []byte) (sealer, error) {
	if len(key) != KeySize {
		return sealer{}, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return sealer{}, err
	}
	return sealer{aead: aead}, nil
}

// sealAAD returns the associated data binding a sealed secret to its
// approver: the context string, then the tenant and the user, each
// prefixed with its length so that no two pairs give the same bytes.
func sealAAD(tenantID, userID string) []byte {
	b := make([]byte, 0, len(sealContext)+8+len(tenantID)+len(userID))
	b = append(b, sealContext...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(tenantID)))
	b = append(b, tenantID...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(userID)))
	b = append(b, userID...)
	return b
}

// seal returns secret sealed for the approver with a fresh random nonce.
func (s sealer) seal(tenantID, userID string, secret []byte) ([]byte, error) {
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(secret)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:], secret, sealAAD(tenantID, userID)), nil
}

// open returns the secret sealed in sealed for the approver. It fails with
// errSealed for anything but the output of seal under the same key for the
// same approver.
func (s sealer) open(tenantID, userID string, sealed []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() || sealed[0] != sealVersion {
		return nil, errSealed
	}
	secret, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], sealAAD(tenantID, userID))
	if err != nil {
		return nil, errSealed
	}
	return secret, nil
}
