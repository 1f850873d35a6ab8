package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// ErrInvalidCheckpoint is wrapped by every error [ParseCheckpoint] returns for
// a checkpoint it rejects: bad or missing signature, wrong origin, malformed
// body. Signature failures also wrap the note package's error
// (*note.UnverifiedNoteError, *note.InvalidSignatureError).
var ErrInvalidCheckpoint = errors.New("ledger: invalid checkpoint")

// Checkpoint is a parsed, verified C2SP tlog-checkpoint: the log's origin,
// its size and the root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// String returns the checkpoint's note text:
// "<origin>\n<size>\n<base64 root>\n".
func (c *Checkpoint) String() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, c.Root)
}

// VerifierKey returns the note verifier key for an Ed25519 checkpoint key,
// "<origin>+<hash>+<base64 key>", which verifiers pass to note.NewVerifier (or
// to [NewCheckpointVerifier] via origin and pub). The origin must be a valid
// note key name: non-empty UTF-8 without spaces or '+'; by convention a
// schema-less URL such as "example.com/oars". It returns an error if origin
// or pub is invalid.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", errors.New("ledger: verifier key: invalid Ed25519 public key size")
	}
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("ledger: verifier key: %w", err)
	}
	// NewEd25519VerifierKey does not check the name; NewVerifier does.
	if _, err := note.NewVerifier(vkey); err != nil {
		return "", fmt.Errorf("ledger: verifier key: invalid origin: %w", err)
	}
	return vkey, nil
}

// NewCheckpointSigner returns a note signer that signs checkpoints of the log
// named origin with key. See [VerifierKey] for what origin may be. It returns
// an error if origin or key is invalid.
func NewCheckpointSigner(origin string, key ed25519.PrivateKey) (note.Signer, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("ledger: checkpoint signer: invalid Ed25519 private key size")
	}
	seed := key.Seed()
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	if !bytes.Equal(pub, key[ed25519.SeedSize:]) {
		return nil, errors.New("ledger: checkpoint signer: private key does not match its public half")
	}
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint signer: %w", err)
	}
	// vkey is "<name>+<hash>+<key>" and the name holds no '+': reuse its
	// name and key hash rather than recomputing the hash.
	name, rest, _ := strings.Cut(vkey, "+")
	hash, _, _ := strings.Cut(rest, "+")
	skey := "PRIVATE+KEY+" + name + "+" + hash + "+" +
		base64.StdEncoding.EncodeToString(append([]byte{0x01}, seed...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint signer: %w", err)
	}
	return s, nil
}

// NewCheckpointVerifier returns the note verifier for checkpoints signed by
// [NewCheckpointSigner] with origin and the private half of pub. It returns an
// error if origin or pub is invalid.
func NewCheckpointVerifier(origin string, pub ed25519.PublicKey) (note.Verifier, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint verifier: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint verifier: %w", err)
	}
	return v, nil
}

// Checkpoint returns a signed C2SP tlog-checkpoint note for the log's current
// size: the text "<origin>\n<size>\n<base64 root hash>\n" followed by the
// signature of the signer set with [WithCheckpointSigner], whose name is the
// origin. It returns an error if no signer is configured or the store fails.
func (l *Ledger) Checkpoint(ctx context.Context) ([]byte, error) {
	if l.cfg.signer == nil {
		return nil, errors.New("ledger: checkpoint: no checkpoint signer configured")
	}
	size, err := l.store.Size(ctx)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint: read size: %w", err)
	}
	if size < 0 {
		return nil, errors.New("ledger: checkpoint: store reported a negative size")
	}
	root, err := tlog.TreeHash(size, l.reader(ctx))
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint: tree hash: %w", err)
	}
	c := Checkpoint{Origin: l.cfg.signer.Name(), Size: size, Root: root}
	msg, err := note.Sign(&note.Note{Text: c.String()}, l.cfg.signer)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint: sign: %w", err)
	}
	return msg, nil
}

// ParseCheckpoint verifies the signed checkpoint note msg with v and parses
// its text. It requires a valid signature by v (signatures by other keys,
// such as witness cosignatures, are allowed and ignored) and parses strictly:
// the origin line must equal v's name, the size must be decimal without sign
// or leading zeros, and the root hash must be the canonical standard base64
// of 32 bytes. C2SP allows further non-empty "extension lines" after the
// first three; ParseCheckpoint accepts and ignores them (OARS writes none).
// Every error it returns wraps [ErrInvalidCheckpoint]; a nil v is an error.
func ParseCheckpoint(msg []byte, v note.Verifier) (*Checkpoint, error) {
	if v == nil {
		return nil, fmt.Errorf("ledger: parse checkpoint: nil verifier: %w", ErrInvalidCheckpoint)
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("ledger: parse checkpoint: %w: %w", ErrInvalidCheckpoint, err)
	}
	c, err := parseCheckpointText(n.Text)
	if err != nil {
		return nil, fmt.Errorf("ledger: parse checkpoint: %w: %w", ErrInvalidCheckpoint, err)
	}
	if c.Origin != v.Name() {
		return nil, fmt.Errorf("ledger: parse checkpoint: origin does not match the verifier's name: %w", ErrInvalidCheckpoint)
	}
	return c, nil
}

// parseCheckpointText parses the text of a checkpoint note.
func parseCheckpointText(text string) (*Checkpoint, error) {
	body, ok := strings.CutSuffix(text, "\n")
	if !ok {
		return nil, errors.New("text does not end in a newline")
	}
	lines := strings.Split(body, "\n")
	if len(lines) < 3 {
		return nil, errors.New("fewer than three lines")
	}
	for _, ln := range lines {
		if ln == "" {
			return nil, errors.New("empty line")
		}
	}
	size, err := parseSize(lines[1])
	if err != nil {
		return nil, err
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil || root.String() != lines[2] {
		return nil, errors.New("malformed root hash")
	}
	return &Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// parseSize parses a tree size: ASCII decimal, no sign, no leading zeros.
func parseSize(s string) (int64, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, errors.New("malformed tree size")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errors.New("malformed tree size")
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, errors.New("tree size out of range")
	}
	return n, nil
}

// KeySigner is a signer whose private key the caller need not hold, such
// as a receipt.Signer backed by a KMS. It must sign with Ed25519.
type KeySigner interface {
	Public() ed25519.PublicKey
	Sign(ctx context.Context, message []byte) ([]byte, error)
}

// NewCheckpointSignerFrom returns a note signer for checkpoints of the log
// named origin that signs with s, so receipts and checkpoints can share
// one key without exposing it. Signatures are made with
// context.Background, because note signers take no context; s should bound
// its own I/O.
func NewCheckpointSignerFrom(origin string, s KeySigner) (note.Signer, error) {
	if s == nil {
		return nil, errors.New("ledger: checkpoint signer: nil signer")
	}
	vkey, err := VerifierKey(origin, s.Public())
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint signer: %w", err)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	hashHex, _, _ := strings.Cut(rest, "+")
	hash, err := strconv.ParseUint(hashHex, 16, 32)
	if err != nil {
		return nil, fmt.Errorf("ledger: checkpoint signer: %w", err)
	}
	return &keyNoteSigner{name: name, hash: uint32(hash), s: s}, nil
}

type keyNoteSigner struct {
	name string
	hash uint32
	s    KeySigner
}

func (k *keyNoteSigner) Name() string    { return k.name }
func (k *keyNoteSigner) KeyHash() uint32 { return k.hash }
func (k *keyNoteSigner) Sign(msg []byte) ([]byte, error) {
	return k.s.Sign(context.Background(), msg)
}
