// Package vault keeps the credentials of connectors (API tokens,
// passwords) encrypted at rest, in the same store as the ledger, and hands
// them to connectors by name through [Source].
//
// # Model
//
// A [Vault] seals each secret under the active [Key] of a [Keyring] and
// keeps it in a [Store] by name. [Vault.Put] stores a secret,
// [Vault.Secret] returns its plaintext (the [Source] connectors use),
// [Vault.List] and [Vault.Delete] manage names, and [Vault.Rotate]
// re-encrypts every secret under the active key. A Vault never logs or
// returns plaintext or key bytes in errors.
//
// # Keys
//
// A key is 32 random bytes with an id, written id:BASE64 ([Key.String],
// [GenerateKey]). A [Keyring] holds one active key, which seals, and older
// keys, which only open. Hosts read it with [ParseKeys] from a list such as
//
//	OARS_VAULT_KEYS=k2:BASE64KEY,k1:BASE64KEY
//
// whose first key is the active one. The keys are the caller's to keep:
// losing every key that sealed a secret loses the secret.
//
// # Rotation
//
// To retire key k1, generate k2 and restart with the keyring "k2,k1":
// new and replaced secrets are sealed under k2, and secrets sealed under
// k1 still open. [Vault.Rotate] then re-encrypts every secret not sealed
// under k2; once it returns with no error, k1 may be dropped from the
// keyring. A secret sealed under a key missing from the keyring fails to
// open with an error wrapping [ErrUnknownKey] that names the key id.
//
// # Sealing
//
// Secrets are sealed with XChaCha20-Poly1305 and a random 24-byte nonce:
// a sealed value is the version byte 0x01, the nonce, then the ciphertext
// with its 16-byte tag. The associated data binds the secret's name and
// the key id, so sealed bytes copied to another name, or relabelled with
// another key id, fail to open with [ErrUnsealable].
//
// # Stores
//
// A [Store] keeps sealed bytes and never sees a secret in the clear.
// [MemStore] keeps them in memory (tests, development); the SQLite and
// PostgreSQL stores of this module (storage/sqlite, storage/postgres)
// keep them in their databases. A Store may also implement the optional
// interface [Swapper], which [Vault.Rotate] uses so that a secret
// replaced while rotation runs is never overwritten with its old value.
// Package vaulttest holds the conformance suite every Store passes.
package vault
