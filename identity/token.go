package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/oarsdev/oars/internal/textcheck"
)

// Limits on configured token fields.
const (
	// MaxTokenNameLength bounds Token.Name.
	MaxTokenNameLength = 128
	// MaxIDLength bounds tenant and agent ids, as the Guard does.
	MaxIDLength = 256
	// MaxSecretLength bounds the secrets Authenticate accepts; longer
	// bearer tokens are refused without being hashed.
	MaxSecretLength = 512
)

// TokenPrefix starts every secret [NewToken] generates, so that leaked
// tokens are easy to find with secret scanners.
const TokenPrefix = "oars_"

// Token is one configured API token: its name, the hash of its secret and
// what it grants. The secret itself is never configured or stored, only
// its [HashToken].
type Token struct {
	// Name identifies the token in logs and as the actor of events (the
	// [Principal] Subject): 1 to [MaxTokenNameLength] characters from
	// A-Z a-z 0-9 and . _ @ : + -, starting with a letter or digit.
	Name string `json:"name" yaml:"name"`
	// Hash is [HashToken] of the secret: "sha256:" and 64 lowercase hex
	// digits.
	Hash string `json:"hash" yaml:"hash"`
	// Roles are the roles the token grants; at least one, each valid, no
	// repeats.
	Roles []Role `json:"roles" yaml:"roles"`
	// Tenants are the tenants the token may act in and read: at least one,
	// no repeats, or exactly [AllTenants].
	Tenants []string `json:"tenants" yaml:"tenants"`
	// AgentID optionally binds an agent token to one agent. It requires
	// [RoleAgent].
	AgentID string `json:"agent_id,omitempty" yaml:"agent_id,omitempty"`
	// Groups are the business groups of the token's holder (see
	// [Principal].Groups): optional, each a valid identifier, no
	// repeats.
	Groups []string `json:"groups,omitempty" yaml:"groups,omitempty"`
}

// HashToken returns the hash under which a token secret is configured:
// "sha256:" and the lowercase hex SHA-256 of the secret.
//
// A fast, unsalted hash is the right choice here, unlike for passwords:
// token secrets are high-entropy random strings ([NewToken] makes 256-bit
// ones), so the hash cannot be reversed by guessing, and a fast hash keeps
// authenticating every request cheap.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// tokenEncoding is lowercase base32 without padding: URL- and header-safe,
// unambiguous to read aloud, and valid in an RFC 6750 bearer token.
var tokenEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewToken returns a new random token secret: [TokenPrefix] followed by 32
// bytes from crypto/rand in lowercase base32 (57 characters in all). Give
// the secret to its user once and configure only its [HashToken]. It fails
// only if the system's random source fails.
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("identity: new token: %w", err)
	}
	return TokenPrefix + tokenEncoding.EncodeToString(b[:]), nil
}

// TokenSet authenticates requests by API token. It is immutable and safe
// for concurrent use.
type TokenSet struct {
	byHash map[[sha256.Size]byte]*Token
}

var _ Authenticator = (*TokenSet)(nil)

// NewTokenSet validates tokens and returns a set that authenticates them.
// It fails, naming the token (by position and name, never by hash), when a
// name is invalid or repeated, a hash is malformed or repeated (two tokens
// with one secret), a role is unknown or repeated, the tenants are empty,
// repeated, or mix [AllTenants] with others, an AgentID is invalid or
// set on a token without [RoleAgent], or a group is invalid or repeated.
// The tokens are copied.
func NewTokenSet(tokens []Token) (*TokenSet, error) {
	s := &TokenSet{byHash: make(map[[sha256.Size]byte]*Token, len(tokens))}
	names := make(map[string]bool, len(tokens))
	for i, t := range tokens {
		if err := validName(t.Name); err != nil {
			return nil, fmt.Errorf("identity: token %d: name %w", i, err)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("identity: token %d (%s): duplicate name", i, t.Name)
		}
		names[t.Name] = true
		sum, err := parseHash(t.Hash)
		if err != nil {
			return nil, fmt.Errorf("identity: token %d (%s): hash %w", i, t.Name, err)
		}
		if _, dup := s.byHash[sum]; dup {
			return nil, fmt.Errorf("identity: token %d (%s): same hash (secret) as another token", i, t.Name)
		}
		if err := validRoles(t.Roles); err != nil {
			return nil, fmt.Errorf("identity: token %d (%s): roles: %w", i, t.Name, err)
		}
		if err := validTenants(t.Tenants); err != nil {
			return nil, fmt.Errorf("identity: token %d (%s): tenants: %w", i, t.Name, err)
		}
		if t.AgentID != "" {
			if err := validID(t.AgentID); err != nil {
				return nil, fmt.Errorf("identity: token %d (%s): agent_id %w", i, t.Name, err)
			}
			if !slices.Contains(t.Roles, RoleAgent) {
				return nil, fmt.Errorf("identity: token %d (%s): agent_id needs role %q", i, t.Name, RoleAgent)
			}
		}
		if err := validGroups(t.Groups); err != nil {
			return nil, fmt.Errorf("identity: token %d (%s): groups: %w", i, t.Name, err)
		}
		s.byHash[sum] = &Token{
			Name:    t.Name,
			Hash:    t.Hash,
			Roles:   slices.Clone(t.Roles),
			Tenants: slices.Clone(t.Tenants),
			AgentID: t.AgentID,
			Groups:  slices.Clone(t.Groups),
		}
	}
	return s, nil
}

// Len returns the number of tokens in the set.
func (s *TokenSet) Len() int { return len(s.byHash) }

// Authenticate authenticates r by its "Authorization: Bearer <secret>"
// header (the scheme is case-insensitive, RFC 7235) and returns the
// principal of the matching token: Subject is the token's name.
//
// It returns an error wrapping [ErrNoCredentials] when r has no
// Authorization header, and [ErrInvalidCredentials] when there are several,
// the scheme is not Bearer, the secret is not an RFC 6750 token of at most
// [MaxSecretLength] characters, or no token has that secret. The secret is
// looked up by its hash and compared in constant time; it never appears in
// errors.
func (s *TokenSet) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	secret, err := BearerToken(r)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(secret))
	t, ok := s.byHash[sum]
	if !ok {
		if looksLikeJWT(secret) {
			// Not a static token: let a JWT authenticator later in a
			// Chain have it.
			return nil, fmt.Errorf("identity: token: %w: a JWT, not an API token", ErrNoCredentials)
		}
		return nil, fmt.Errorf("identity: token: %w: unknown token", ErrInvalidCredentials)
	}
	want, err := parseHash(t.Hash)
	if err != nil || subtle.ConstantTimeCompare(want[:], sum[:]) != 1 {
		return nil, fmt.Errorf("identity: token: %w: unknown token", ErrInvalidCredentials)
	}
	return &Principal{
		Subject: t.Name,
		Roles:   slices.Clone(t.Roles),
		Tenants: slices.Clone(t.Tenants),
		AgentID: t.AgentID,
		Groups:  slices.Clone(t.Groups),
	}, nil
}

// looksLikeJWT reports whether a bearer token has the compact JWS form
// (three dot-separated parts, a JSON header first); API tokens never
// contain dots.
func looksLikeJWT(token string) bool {
	return strings.Count(token, ".") == 2 && strings.HasPrefix(token, "eyJ")
}

// BearerToken returns the token of r's "Authorization: Bearer <token>"
// header. It fails like [TokenSet.Authenticate] for a missing or
// malformed header; it does not check the token against anything.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", fmt.Errorf("identity: token: %w", ErrNoCredentials)
	case 1:
	default:
		return "", fmt.Errorf("identity: token: %w: several Authorization headers", ErrInvalidCredentials)
	}
	scheme, rest, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("identity: token: %w: authorization scheme is not Bearer", ErrInvalidCredentials)
	}
	secret := strings.TrimLeft(rest, " ")
	if !validBearer(secret) {
		return "", fmt.Errorf("identity: token: %w: malformed bearer token", ErrInvalidCredentials)
	}
	return secret, nil
}

// validBearer reports whether s is an RFC 6750 b64token of at most
// MaxSecretLength bytes: 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" /
// "/" ) *"=".
func validBearer(s string) bool {
	if s == "" || len(s) > MaxSecretLength {
		return false
	}
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

func parseHash(h string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	hexPart, ok := strings.CutPrefix(h, "sha256:")
	if !ok {
		return sum, errors.New(`must start with "sha256:"`)
	}
	if len(hexPart) != 2*sha256.Size || strings.ToLower(hexPart) != hexPart {
		return sum, errors.New(`must be "sha256:" and 64 lowercase hex digits`)
	}
	if _, err := hex.Decode(sum[:], []byte(hexPart)); err != nil {
		return sum, errors.New(`must be "sha256:" and 64 lowercase hex digits`)
	}
	return sum, nil
}

func validName(n string) error {
	if n == "" {
		return errors.New("is required")
	}
	if len(n) > MaxTokenNameLength {
		return fmt.Errorf("is longer than %d characters", MaxTokenNameLength)
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '@' || c == ':' || c == '+' || c == '-'):
		default:
			return errors.New("must be letters, digits and . _ @ : + -, starting with a letter or digit")
		}
	}
	return nil
}

func validRoles(roles []Role) error {
	if len(roles) == 0 {
		return errors.New("at least one is required")
	}
	for i, r := range roles {
		if !r.Valid() {
			return fmt.Errorf("unknown role %q", truncate(string(r)))
		}
		if slices.Contains(roles[:i], r) {
			return fmt.Errorf("role %q repeated", r)
		}
	}
	return nil
}

func validTenants(tenants []string) error {
	if len(tenants) == 0 {
		return errors.New("at least one is required (use \"*\" for all)")
	}
	if slices.Contains(tenants, AllTenants) && len(tenants) > 1 {
		return errors.New(`"*" must be the only entry`)
	}
	for i, t := range tenants {
		if err := validID(t); err != nil {
			return fmt.Errorf("entry %d %w", i, err)
		}
		if slices.Contains(tenants[:i], t) {
			return fmt.Errorf("entry %d repeated", i)
		}
	}
	return nil
}

// validGroups checks business groups: each a valid id, no repeats. None
// is fine.
func validGroups(groups []string) error {
	for i, g := range groups {
		if err := validID(g); err != nil {
			return fmt.Errorf("entry %d %w", i, err)
		}
		if slices.Contains(groups[:i], g) {
			return fmt.Errorf("entry %d repeated", i)
		}
	}
	return nil
}

// validID checks a tenant or agent id as the Guard does: non-empty, at most
// MaxIDLength bytes, no control characters.
func validID(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if msg := textcheck.Problem(s, true, MaxIDLength); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// truncate shortens a configured value quoted in an error.
func truncate(s string) string {
	const max = 32
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
