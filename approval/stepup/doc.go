// Package stepup checks the second factor that critical approvals demand:
// a time-based one-time password (TOTP, RFC 6238) enrolled per approver and
// verified at decision time.
//
// # Model
//
// A [Verifier] answers one question: is this code, typed now by this
// approver of this tenant, a valid second factor? [TOTP] is the verifier
// shipped here. [TOTP.Enroll] creates a fresh random secret for an
// approver and returns it once, with the otpauth:// URL authenticator apps
// scan; afterwards the secret exists only sealed in a [Store].
// [TOTP.Verify] accepts a 6-digit code of the current 30-second time step
// or of one step either side (clock skew), SHA-1, as Google Authenticator
// and most apps produce.
//
// # Replay protection
//
// A code is good for one use only. After a code of time step s is accepted,
// no code of step s or earlier is accepted for that approver again. The
// [Store] keeps the last used step per approver and advances it with one
// conditional write ([Store.UseStep]), so several replicas sharing a store
// never accept the same code twice.
//
// # Rate limit and security events
//
// Every refusal (reasons wrong_code, replayed_code, malformed_code,
// not_enrolled, rate_limited, and secret_unsealable for a sealed secret
// that does not open) is logged at Warn as a security event with the
// attributes event=stepup.failure, tenant, user and reason; never the code
// or the secret. After [DefaultFailureLimit] failures of one approver within
// [DefaultFailureWindow] (see [WithFailureLimit]), Verify refuses with
// [ErrRateLimited] without looking at the code, even a right one, until the
// oldest of those failures leaves the window. The failure count is kept in
// the memory of each TOTP value, so with N replicas an attacker gets at
// most N times the limit.
//
// # Secrets at rest
//
// Secrets are sealed with XChaCha20-Poly1305 under the 32-byte key given to
// [New], with the tenant and user as associated data: a sealed secret
// copied to another approver's row does not open. The key management is
// the caller's; losing the key means every approver must enroll again.
//
// # Stores
//
// [MemStore] keeps enrollments in memory (tests, development). The SQLite
// and PostgreSQL stores of this module (storage/sqlite, storage/postgres)
// implement [Store] on their databases. Package stepuptest holds the
// conformance suite every Store passes.
package stepup
