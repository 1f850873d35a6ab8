package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// MaxJWTLength bounds the JWTs [JWTAuthenticator] accepts, in bytes;
// longer ones are refused without being parsed.
const MaxJWTLength = 16 << 10

// Defaults of [Issuer] fields left zero.
const (
	DefaultLeeway       = 60 * time.Second
	DefaultMinRefresh   = 5 * time.Minute
	DefaultCacheTTL     = time.Hour
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMaxDelegationDepth is the number of actors a delegation
	// chain may have unless [WithMaxDelegationDepth] says otherwise.
	DefaultMaxDelegationDepth = 5
)

// Issuer configures one JWT issuer (an OIDC provider, a token exchange
// service) that [JWTAuthenticator] trusts.
type Issuer struct {
	// Issuer is the exact "iss" of its tokens. Required.
	Issuer string
	// Audience must be in the "aud" of its tokens: the name this server
	// has at the issuer. Required, so that tokens meant for other
	// services are refused.
	Audience string
	// JWKSURL, if set, is where the issuer publishes its keys (RFC 7517
	// key set): https, or http to a loopback host. The set is fetched
	// when a token names a key not yet known, and when it is older than
	// CacheTTL.
	JWKSURL string
	// Keys, if set, are keys of the issuer configured inline. At least one
	// of JWKSURL and Keys is required. Keys must be public, asymmetric and
	// have a key id.
	Keys *jose.JSONWebKeySet
	// Algorithms are the signature algorithms accepted from the issuer;
	// default EdDSA, ES256 and RS256. Only asymmetric algorithms (EdDSA,
	// ES*, RS*, PS*) may be configured: never "none" or HMAC.
	Algorithms []jose.SignatureAlgorithm
	// Leeway is the clock skew allowed when checking exp, nbf and iat;
	// zero means [DefaultLeeway].
	Leeway time.Duration
	// MinRefresh is the least time between two fetches of JWKSURL, however
	// many unknown keys tokens name; zero means [DefaultMinRefresh].
	MinRefresh time.Duration
	// CacheTTL is how long a fetched key set is used before it is fetched
	// again (to drop retired keys); zero means [DefaultCacheTTL]. A
	// failed refresh keeps the old keys.
	CacheTTL time.Duration
	// FetchTimeout bounds one fetch of JWKSURL; zero means
	// [DefaultFetchTimeout].
	FetchTimeout time.Duration
	// HTTPClient fetches JWKSURL; nil means a client with default
	// settings. Its redirect policy is replaced by one that follows at
	// most five redirects, each to a URL allowed for JWKSURL.
	HTTPClient *http.Client
	// RolesClaim names the claim holding the principal's roles (a string
	// or an array of strings); default "roles". Values that are not a
	// [Role] of this package are ignored.
	RolesClaim string
	// TenantsClaim names the claim holding the principal's tenants (a
	// string or an array of strings, [AllTenants] alone for all); default
	// "tenants".
	TenantsClaim string
	// AgentClaim names the claim holding the agent the principal is
	// bound to; default "agent_id".
	AgentClaim string
	// ScopeClaim names the claim holding the principal's scopes (a
	// space-separated string as in RFC 8693 §4.2, or an array of
	// strings), at the top level and in act claims; default "scope".
	ScopeClaim string
	// KindClaim names the claim holding the principal's [Kind] ("user",
	// "agent" or "service"); default "kind".
	KindClaim string
	// GroupsClaim names the claim holding the principal's business
	// groups (a string or an array of strings, see [Principal].Groups);
	// default "groups". A token whose groups are invalid or repeated is
	// refused.
	GroupsClaim string
	// DefaultKind is the kind of principals whose token has no KindClaim;
	// default [KindUser].
	DefaultKind Kind
}

// JWTOption configures a [JWTAuthenticator].
type JWTOption func(*jwtConfig) error

type jwtConfig struct {
	now      func() time.Time
	maxDepth int
	log      *slog.Logger
}

// WithClock makes the authenticator read the time from now instead of
// time.Now, for checking token times and pacing key set fetches.
func WithClock(now func() time.Time) JWTOption {
	return func(c *jwtConfig) error {
		if now == nil {
			return errors.New("clock is nil")
		}
		c.now = now
		return nil
	}
}

// WithMaxDelegationDepth sets the most actors a delegation token's chain
// may have (default [DefaultMaxDelegationDepth]); n must be at least 1.
func WithMaxDelegationDepth(n int) JWTOption {
	return func(c *jwtConfig) error {
		if n < 1 {
			return errors.New("max delegation depth must be at least 1")
		}
		c.maxDepth = n
		return nil
	}
}

// WithLogger makes the authenticator log key set fetches to l (default:
// discard). It never logs tokens.
func WithLogger(l *slog.Logger) JWTOption {
	return func(c *jwtConfig) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		c.log = l
		return nil
	}
}

// JWTAuthenticator authenticates JWT bearer tokens of configured issuers,
// including RFC 8693 delegation tokens. It is safe for concurrent use; it
// starts no goroutines.
type JWTAuthenticator struct {
	issuers  map[string]*jwtIssuer
	algs     []jose.SignatureAlgorithm // union of all issuers' algorithms
	now      func() time.Time
	maxDepth int
}

var _ Authenticator = (*JWTAuthenticator)(nil)

// jwtIssuer is an Issuer with its defaults applied.
type jwtIssuer struct {
	cfg  Issuer
	keys *keySource
}

// asymmetricAlgs are the algorithms an Issuer may accept.
var asymmetricAlgs = []jose.SignatureAlgorithm{
	jose.EdDSA,
	jose.ES256, jose.ES384, jose.ES512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
}

// NewJWTAuthenticator returns an authenticator for tokens of issuers. It
// fails, naming the issuer, when there is none, an Issuer or Audience is
// empty, an issuer is repeated, neither JWKSURL nor Keys is set, JWKSURL
// is not https (or http to a loopback host) or has credentials, an
// inline key is not a public asymmetric signature key with a key id, an
// algorithm is not asymmetric, a duration is negative, DefaultKind is
// unknown, or an option fails. Issuers are copied; no key set is fetched
// until a token needs it.
func NewJWTAuthenticator(issuers []Issuer, opts ...JWTOption) (*JWTAuthenticator, error) {
	cfg := jwtConfig{now: time.Now, maxDepth: DefaultMaxDelegationDepth, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("identity: jwt: %w", err)
		}
	}
	if len(issuers) == 0 {
		return nil, errors.New("identity: jwt: at least one issuer is required")
	}
	a := &JWTAuthenticator{issuers: make(map[string]*jwtIssuer, len(issuers)), now: cfg.now, maxDepth: cfg.maxDepth}
	for i, is := range issuers {
		ji, err := newJWTIssuer(is, cfg)
		if err != nil {
			return nil, fmt.Errorf("identity: jwt: issuer %d (%q): %w", i, truncate(is.Issuer), err)
		}
		if _, dup := a.issuers[is.Issuer]; dup {
			return nil, fmt.Errorf("identity: jwt: issuer %d (%q): repeated", i, truncate(is.Issuer))
		}
		a.issuers[is.Issuer] = ji
		for _, alg := range ji.cfg.Algorithms {
			if !slices.Contains(a.algs, alg) {
				a.algs = append(a.algs, alg)
			}
		}
	}
	return a, nil
}

func newJWTIssuer(is Issuer, cfg jwtConfig) (*jwtIssuer, error) {
	if is.Issuer == "" {
		return nil, errors.New("issuer is required")
	}
	if is.Audience == "" {
		return nil, errors.New("audience is required")
	}
	if is.JWKSURL == "" && (is.Keys == nil || len(is.Keys.Keys) == 0) {
		return nil, errors.New("jwks url or inline keys are required")
	}
	if is.JWKSURL != "" {
		if err := checkKeyURL(is.JWKSURL); err != nil {
			return nil, fmt.Errorf("jwks url %w", err)
		}
	}
	var inline []jose.JSONWebKey
	if is.Keys != nil {
		for i, k := range is.Keys.Keys {
			if err := checkVerifyKey(k); err != nil {
				return nil, fmt.Errorf("key %d: %w", i, err)
			}
			if k.Use == "enc" {
				return nil, fmt.Errorf("key %d: is an encryption key", i)
			}
			inline = append(inline, k)
		}
	}
	if len(is.Algorithms) == 0 {
		is.Algorithms = []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256}
	} else {
		is.Algorithms = slices.Clone(is.Algorithms)
	}
	for _, alg := range is.Algorithms {
		if !slices.Contains(asymmetricAlgs, alg) {
			return nil, fmt.Errorf("algorithm %q is not allowed (only EdDSA, ES*, RS*, PS*)", truncate(string(alg)))
		}
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"leeway", &is.Leeway, DefaultLeeway},
		{"min refresh", &is.MinRefresh, DefaultMinRefresh},
		{"cache ttl", &is.CacheTTL, DefaultCacheTTL},
		{"fetch timeout", &is.FetchTimeout, DefaultFetchTimeout},
	} {
		if *d.v < 0 {
			return nil, fmt.Errorf("%s is negative", d.name)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	for _, c := range []struct {
		v   *string
		def string
	}{
		{&is.RolesClaim, "roles"},
		{&is.TenantsClaim, "tenants"},
		{&is.AgentClaim, "agent_id"},
		{&is.ScopeClaim, "scope"},
		{&is.KindClaim, "kind"},
		{&is.GroupsClaim, "groups"},
	} {
		if *c.v == "" {
			*c.v = c.def
		}
	}
	if is.DefaultKind == "" {
		is.DefaultKind = KindUser
	}
	if !is.DefaultKind.Valid() {
		return nil, fmt.Errorf("default kind %q is unknown", truncate(string(is.DefaultKind)))
	}
	is.Keys = nil // copied into inline
	src := &keySource{
		issuer:     is.Issuer,
		url:        is.JWKSURL,
		client:     keyClient(is.HTTPClient),
		timeout:    is.FetchTimeout,
		minRefresh: is.MinRefresh,
		ttl:        is.CacheTTL,
		now:        cfg.now,
		log:        cfg.log,
		inline:     inline,
	}
	is.HTTPClient = src.client
	return &jwtIssuer{cfg: is, keys: src}, nil
}

// Authenticate authenticates r by a JWT in its "Authorization: Bearer"
// header; see [JWTAuthenticator.AuthenticateToken].
//
// It returns an error wrapping [ErrNoCredentials] when r has no
// Authorization header, its scheme is not Bearer, or the bearer token is
// not shaped like a JWT (three dot-separated parts), so that a [Chain]
// moves on to the next authenticator (such as a [TokenSet] for static
// tokens); and [ErrInvalidCredentials] when r has several Authorization
// headers.
func (a *JWTAuthenticator) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return nil, fmt.Errorf("identity: jwt: %w", ErrNoCredentials)
	case 1:
	default:
		return nil, fmt.Errorf("identity: jwt: %w: several Authorization headers", ErrInvalidCredentials)
	}
	scheme, rest, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil, fmt.Errorf("identity: jwt: %w: not a bearer token", ErrNoCredentials)
	}
	token := strings.TrimLeft(rest, " ")
	if strings.Count(token, ".") != 2 {
		return nil, fmt.Errorf("identity: jwt: %w: bearer token is not a JWT", ErrNoCredentials)
	}
	return a.AuthenticateToken(ctx, token)
}

// AuthenticateToken verifies a JWT in compact form and returns its
// principal.
//
// The issuer is chosen by the token's "iss", then the token is verified
// against it: its "alg" must be one of the issuer's Algorithms, its "kid"
// must name a key of the issuer (the JWKS is fetched again, at most once
// per MinRefresh, when it does not), the signature must verify, "aud" must
// contain Audience, "exp" must be present and not past, "nbf" and "iat"
// not in the future (each with Leeway), and "sub" must be present.
//
// The principal's Subject is "sub"; Roles, Tenants, Groups, AgentID, Kind
// and Scopes come from the issuer's claims (Scopes stay nil when the token
// has no scope claim); UserID is "sub" when Kind is [KindUser]; AgentID
// is "sub" when Kind is [KindAgent] and the token has no agent claim.
//
// A token with an "act" claim is an RFC 8693 delegation token: "sub" is
// the user and "act" the current actor, each nested "act" the actor
// before it. Such a token needs a scope claim (what the user granted the
// first actor). An act may carry "sub" (required), "iss", a scope claim
// and "exp"; an act without scope or exp inherits those of the actor
// before it. Each actor's scope must be within ([ScopeSubset]) and its exp
// no later than that of the actor before it, the first actor's within the
// token's; otherwise the error wraps [ErrDelegationWidens]. A chain of
// more actors than the maximum depth wraps [ErrDelegationTooDeep]. The
// principal's Subject and AgentID are the current actor, Kind
// [KindAgent], UserID the user, Delegation the chain (current actor
// first) and Scopes the current actor's scopes. If the token also has an
// agent claim it must name the current actor.
//
// Errors wrap [ErrInvalidCredentials] with the reason (malformed token,
// disallowed algorithm, unknown issuer, unknown key, bad signature,
// wrong audience, expired, not yet valid, issued in the future, …), or
// [ErrJWKSUnavailable] when the issuer's keys could not be fetched or ctx
// ended while waiting for another request's fetch. They never contain the
// token. A fetch is bounded by FetchTimeout, not cancelled with ctx, so
// that a client going away does not leave the issuer without keys.
func (a *JWTAuthenticator) AuthenticateToken(ctx context.Context, token string) (*Principal, error) {
	invalid := func(reason string) error {
		return fmt.Errorf("identity: jwt: %w: %s", ErrInvalidCredentials, reason)
	}
	if len(token) > MaxJWTLength {
		return nil, invalid(fmt.Sprintf("token longer than %d bytes", MaxJWTLength))
	}
	sig, err := jose.ParseSignedCompact(token, a.algs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, invalid("disallowed algorithm")
		}
		return nil, invalid("malformed token")
	}
	if len(sig.Signatures) != 1 {
		return nil, invalid("malformed token")
	}
	hdr := sig.Signatures[0].Header
	var unverified struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(sig.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, invalid("malformed claims")
	}
	is, ok := a.issuers[unverified.Issuer]
	if !ok {
		return nil, invalid("unknown issuer")
	}
	alg := jose.SignatureAlgorithm(hdr.Algorithm)
	if !slices.Contains(is.cfg.Algorithms, alg) {
		return nil, invalid("disallowed algorithm")
	}
	if hdr.KeyID == "" {
		return nil, invalid(`no key id ("kid")`)
	}
	keys, err := is.keys.keys(ctx, hdr.KeyID)
	if errors.Is(err, errUnknownKey) {
		return nil, invalid("unknown key")
	}
	if err != nil {
		return nil, fmt.Errorf("identity: jwt: %w", err)
	}
	var payload []byte
	for _, k := range keys {
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue // the key is pinned to another algorithm
		}
		if p, err := sig.Verify(k.Key); err == nil {
			payload = p
			break
		}
	}
	if payload == nil {
		return nil, invalid("bad signature")
	}

	var std jwt.Claims
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, invalid("malformed claims")
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, invalid("malformed claims")
	}
	now := a.now()
	err = std.ValidateWithLeeway(jwt.Expected{
		Issuer:      is.cfg.Issuer,
		AnyAudience: jwt.Audience{is.cfg.Audience},
		Time:        now,
	}, is.cfg.Leeway)
	switch {
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, invalid("wrong issuer")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalid("wrong audience")
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalid("expired")
	case errors.Is(err, jwt.ErrNotValidYet):
		return nil, invalid("not yet valid")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, invalid("issued in the future")
	case err != nil:
		return nil, invalid("invalid claims")
	}
	if std.Expiry == nil {
		return nil, invalid(`no expiry ("exp")`)
	}
	if std.Subject == "" {
		return nil, invalid(`no subject ("sub")`)
	}
	if err := validID(std.Subject); err != nil {
		return nil, invalid("subject " + err.Error())
	}
	p, err := a.principal(is, std, claims, now)
	if err != nil {
		return nil, fmt.Errorf("identity: jwt: %w: %w", ErrInvalidCredentials, err)
	}
	return p, nil
}

// principal maps verified claims to a Principal.
func (a *JWTAuthenticator) principal(is *jwtIssuer, std jwt.Claims, claims map[string]json.RawMessage, now time.Time) (*Principal, error) {
	c := is.cfg
	p := &Principal{Subject: std.Subject, Kind: c.DefaultKind}

	roles, _, err := stringsClaim(claims, c.RolesClaim)
	if err != nil {
		return nil, err
	}
	for _, r := range roles {
		if role := Role(r); role.Valid() && !slices.Contains(p.Roles, role) {
			p.Roles = append(p.Roles, role)
		}
	}
	tenants, present, err := stringsClaim(claims, c.TenantsClaim)
	if err != nil {
		return nil, err
	}
	if present {
		if err := validTenants(tenants); err != nil {
			return nil, fmt.Errorf("claim %q: %w", c.TenantsClaim, err)
		}
		p.Tenants = tenants
	}
	groups, present, err := stringsClaim(claims, c.GroupsClaim)
	if err != nil {
		return nil, err
	}
	if present && len(groups) > 0 {
		if err := validGroups(groups); err != nil {
			return nil, fmt.Errorf("claim %q: %w", c.GroupsClaim, err)
		}
		p.Groups = groups
	}
	kind, present, err := stringClaim(claims, c.KindClaim)
	if err != nil {
		return nil, err
	}
	if present {
		if !Kind(kind).Valid() {
			return nil, fmt.Errorf("claim %q: unknown kind", c.KindClaim)
		}
		p.Kind = Kind(kind)
	}
	agent, hasAgent, err := stringClaim(claims, c.AgentClaim)
	if err != nil {
		return nil, err
	}
	if hasAgent {
		if err := validID(agent); err != nil {
			return nil, fmt.Errorf("claim %q %w", c.AgentClaim, err)
		}
		p.AgentID = agent
	}
	scopes, hasScope, err := scopeClaim(claims, c.ScopeClaim)
	if err != nil {
		return nil, err
	}
	if hasScope {
		p.Scopes = scopes
	}

	act, delegated := claims["act"]
	if !delegated {
		switch p.Kind {
		case KindUser:
			p.UserID = std.Subject
		case KindAgent:
			if p.AgentID == "" {
				p.AgentID = std.Subject
			}
		}
		return p, nil
	}
	if !hasScope {
		return nil, fmt.Errorf("delegation token has no %q claim", c.ScopeClaim)
	}
	hops, err := delegationChain(act, delegationGrant{
		scopeClaim: c.ScopeClaim,
		scope:      scopes,
		expiresAt:  std.Expiry.Time().UTC(),
		now:        now,
		leeway:     c.Leeway,
		maxDepth:   a.maxDepth,
	})
	if err != nil {
		return nil, err
	}
	actor := hops[0]
	if hasAgent && agent != actor.Subject {
		return nil, fmt.Errorf("claim %q does not name the current actor", c.AgentClaim)
	}
	p.Subject = actor.Subject
	p.AgentID = actor.Subject
	p.Kind = KindAgent
	p.UserID = std.Subject
	p.Delegation = hops
	p.Scopes = slices.Clone(actor.Scope)
	return p, nil
}

// stringClaim reads a string claim; present is false if the claim is
// absent or null.
func stringClaim(claims map[string]json.RawMessage, name string) (v string, present bool, err error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return "", false, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return "", false, fmt.Errorf("claim %q is not a string", name)
	}
	return v, true, nil
}

// stringsClaim reads a claim that is a string (one value) or an array of
// strings; present is false if the claim is absent or null.
func stringsClaim(claims map[string]json.RawMessage, name string) (v []string, present bool, err error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, true, nil
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false, fmt.Errorf("claim %q is not a string or an array of strings", name)
	}
	if v == nil {
		v = []string{}
	}
	return v, true, nil
}

// scopeClaim reads a scope claim: a space-separated string or an array of
// strings, each scope checked by validScope. A present claim yields a
// non-nil slice.
func scopeClaim(claims map[string]json.RawMessage, name string) ([]string, bool, error) {
	raw, ok := claims[name]
	if !ok || string(raw) == "null" {
		return nil, false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		scopes, err := parseScopeString(s)
		if err != nil {
			return nil, false, fmt.Errorf("claim %q: %w", name, err)
		}
		return scopes, true, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, false, fmt.Errorf("claim %q is not a string or an array of strings", name)
	}
	if err := validScopes(list); err != nil {
		return nil, false, fmt.Errorf("claim %q: %w", name, err)
	}
	if list == nil {
		list = []string{}
	}
	return list, true, nil
}
