// Package receipt defines OARS receipts and events (format v1), their
// RFC 8785 canonical form, Ed25519 signing, key sets and JWKS, and offline
// verification.
//
// # Receipts
//
// Every transition of an action (allowed, denied, pending_approval, vote,
// executing, executed, …) is one [Receipt]. [Sign] validates a receipt,
// signs the canonical JSON of the receipt without its signature member,
// and returns the canonical bytes of the signed receipt: the exact ledger
// leaf. Receipts of one action chain: each carries the [Digest] of the
// previous signed receipt's bytes in prev_receipt_digest.
//
// # Approvals
//
// Receipts of an approval workflow carry an [Approval] member: the
// pending_approval receipt records the requirement (approver roles and
// users, quorum, expires_at, step-up), each vote receipt who voted with
// which roles, their decision, reason and step-up method, the approved or
// rejected receipt the receipt ids of the deciding votes, and a cancelled
// receipt who cancelled. The member is optional and additive: a receipt
// without it encodes exactly as before. [Sign] checks that each status
// carries only its own members.
//
// Changes to what governs actions (policy reloads, key rotations, …) are
// [Event] values, signed with [SignEvent] in the same way.
//
// # Canonical form
//
// The canonical form is RFC 8785 (JCS). Receipts have a hand-written
// encoder ([Receipt.MarshalCanonical]) that is tested to be byte-identical
// to RFC 8785 applied to encoding/json output; arbitrary JSON such as
// action input goes through [Canonicalize], which first checks the input
// strictly: duplicate keys, invalid UTF-8, lone surrogates, numbers that
// are not finite doubles, nesting beyond [MaxDepth] and trailing data are
// rejected, never repaired. [Digest] and [DigestJSON] give the
// "sha256:<hex>" digests receipts carry.
//
// # Keys
//
// A [Signer] holds an Ed25519 key, possibly in a KMS or HSM; key ids
// default to [KeyIDFor] of the public key. [GenerateKey],
// [WritePrivateKeyFile] and [LoadSignerFile] manage in-memory keys. A
// [KeySet] holds the active signer and the retired public keys that still
// verify old receipts; [KeySet.Rotate] retires the active key, and
// [KeySet.MarshalJWKS] / [ParseJWKS] exchange the public keys as a JWKS.
//
// # Verification
//
// A [Verifier] trusts exactly the keys of a KeySet. [Verifier.Verify]
// checks one receipt, [Verifier.VerifyChain] the receipts of one action,
// [Verifier.VerifyEvent] an event, and a [LogChecker] every entry of a
// ledger in order, including the chains. Failures are [*VerifyError]
// values naming the failed [Check].
package receipt
