package stepup

import (
	"crypto/cipher"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/oarsdev/oars/internal/sealbox"
)

// KeySize is the size in bytes of the key that seals secrets at rest.
const KeySize = chacha20poly1305.KeySize

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

// seal returns secret sealed for the approver with a fresh random nonce,
// in sealbox's format.
func (s sealer) seal(tenantID, userID string, secret []byte) ([]byte, error) {
	return sealbox.Seal(s.aead, sealbox.AAD(sealContext, tenantID, userID), secret)
}

// open returns the secret sealed in sealed for the approver. It fails with
// errSealed for anything but the output of seal under the same key for the
// same approver.
func (s sealer) open(tenantID, userID string, sealed []byte) ([]byte, error) {
	secret, err := sealbox.Open(s.aead, sealbox.AAD(sealContext, tenantID, userID), sealed)
	if err != nil {
		return nil, errSealed
	}
	return secret, nil
}
