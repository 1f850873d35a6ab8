package identity_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

const (
	issA = "https://idp.example.com" // keys from a JWKS URL
	issB = "https://sts.example.com" // inline keys, EdDSA only
)

// jwtFixture is an authenticator for two issuers, A with a JWKS server
// and B with inline keys, on a fake clock.
type jwtFixture struct {
	auth  *identity.JWTAuthenticator
	clock *fakeClock
	srv   *jwksServer
	a1    signingKey // Ed25519, served by A
	a2    signingKey // ES256, served by A
	b1    signingKey // Ed25519, inline for B
}

func newJWTFixture(t *testing.T, opts ...identity.JWTOption) *jwtFixture {
	t.Helper()
	f := &jwtFixture{
		clock: newFakeClock(),
		a1:    newEd25519Key(t, "a1"),
		a2:    newES256Key(t, "a2"),
		b1:    newEd25519Key(t, "b1"),
	}
	f.srv = newJWKSServer(t, jwks(t, f.a1, f.a2))
	opts = append([]identity.JWTOption{identity.WithClock(f.clock.Now)}, opts...)
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{
		{Issuer: issA, Audience: "oars", JWKSURL: f.srv.URL + "/jwks.json"},
		{
			Issuer: issB, Audience: "oars",
			Keys:       &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.b1.pub}},
			Algorithms: []jose.SignatureAlgorithm{jose.EdDSA},
		},
	}, opts...)
	require.NoError(t, err)
	f.auth = auth
	return f
}

func TestJWTAuthenticateToken(t *testing.T) {
	f := newJWTFixture(t)
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	del := func(k string) func(map[string]any) { return func(c map[string]any) { delete(c, k) } }
	other := newEd25519Key(t, "a1") // same kid as a1, other key
	hmac := func(t *testing.T) string {
		// HMAC confusion: HS256 keyed with the issuer's public key.
		pub, err := json.Marshal(f.a1.pub)
		require.NoError(t, err)
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: pub},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "a1"))
		require.NoError(t, err)
		tok, err := jwt.Signed(signer).Claims(claims(issA)).Serialize()
		require.NoError(t, err)
		return tok
	}
	none := func(t *testing.T) string {
		payload, err := json.Marshal(claims(issA))
		require.NoError(t, err)
		return b64(`{"alg":"none","kid":"a1","typ":"JWT"}`) + "." + b64(string(payload)) + "."
	}
	noKid := func(t *testing.T) string {
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: f.a1.priv}, nil)
		require.NoError(t, err)
		tok, err := jwt.Signed(signer).Claims(claims(issA)).Serialize()
		require.NoError(t, err)
		return tok
	}
	signed := func(k signingKey, c map[string]any) func(*testing.T) string {
		return func(t *testing.T) string { return k.sign(t, c) }
	}

	tests := []struct {
		name    string
		token   func(*testing.T) string
		want    identity.Principal // checked if wantErr is ""
		wantErr string
	}{
		{"ed25519 via jwks", signed(f.a1, claims(issA)), identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser}, ""},
		{"es256 via jwks", signed(f.a2, claims(issA)), identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser}, ""},
		{"inline key", signed(f.b1, claims(issB)), identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser}, ""},
		{"audience array", signed(f.a1, claims(issA, set("aud", []string{"other", "oars"}))), identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser}, ""},
		{"expired within leeway", signed(f.a1, claims(issA, set("exp", t0.Add(-30*time.Second).Unix()))), identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser}, ""},
		{"claims mapped", signed(f.a1, claims(issA,
			set("roles", []string{"operator", "root", "approver", "operator"}),
			set("tenants", []string{"acme", "globex"}),
			set("scope", "crm:* payments:refund"),
		)), identity.Principal{
			Subject: "alice", UserID: "alice", Kind: identity.KindUser,
			Roles:   []identity.Role{identity.RoleOperator, identity.RoleApprover},
			Tenants: []string{"acme", "globex"},
			Scopes:  []string{"crm:*", "payments:refund"},
		}, ""},
		{"single role and tenant strings", signed(f.a1, claims(issA, set("roles", "auditor"), set("tenants", "*"))),
			identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser, Roles: []identity.Role{identity.RoleAuditor}, Tenants: []string{"*"}}, ""},
		{"agent kind", signed(f.a1, claims(issA, set("sub", "bot-7"), set("kind", "agent"), set("roles", []string{"agent"}))),
			identity.Principal{Subject: "bot-7", AgentID: "bot-7", Kind: identity.KindAgent, Roles: []identity.Role{identity.RoleAgent}}, ""},
		{"service kind with agent claim", signed(f.a1, claims(issA, set("sub", "ci"), set("kind", "service"), set("agent_id", "bot-1"))),
			identity.Principal{Subject: "ci", AgentID: "bot-1", Kind: identity.KindService}, ""},
		{"empty scope allows nothing", signed(f.a1, claims(issA, set("scope", ""))),
			identity.Principal{Subject: "alice", UserID: "alice", Kind: identity.KindUser, Scopes: []string{}}, ""},

		{"expired", signed(f.a1, claims(issA, set("exp", t0.Add(-2*time.Minute).Unix()))), identity.Principal{}, "expired"},
		{"not yet valid", signed(f.a1, claims(issA, set("nbf", t0.Add(2*time.Minute).Unix()))), identity.Principal{}, "not yet valid"},
		{"issued in the future", signed(f.a1, claims(issA, set("iat", t0.Add(2*time.Minute).Unix()))), identity.Principal{}, "issued in the future"},
		{"wrong audience", signed(f.a1, claims(issA, set("aud", "other"))), identity.Principal{}, "wrong audience"},
		{"no audience", signed(f.a1, claims(issA, del("aud"))), identity.Principal{}, "wrong audience"},
		{"unknown issuer", signed(f.a1, claims("https://evil.example.com")), identity.Principal{}, "unknown issuer"},
		{"no issuer", signed(f.a1, claims(issA, del("iss"))), identity.Principal{}, "unknown issuer"},
		{"wrong issuer's key", signed(f.b1, claims(issA)), identity.Principal{}, "unknown key"},
		{"other issuer's key with claimed kid", signed(signingKey{alg: jose.EdDSA, priv: f.b1.priv, pub: jose.JSONWebKey{KeyID: "a1"}}, claims(issA)), identity.Principal{}, "bad signature"},
		{"bad signature", signed(other, claims(issA)), identity.Principal{}, "bad signature"},
		{"alg none", none, identity.Principal{}, "disallowed algorithm"},
		{"hmac with public key", hmac, identity.Principal{}, "disallowed algorithm"},
		{"algorithm not pinned for issuer", signed(newES256Key(t, "b1"), claims(issB)), identity.Principal{}, "disallowed algorithm"},
		{"key pinned to other algorithm", signed(signingKey{alg: jose.EdDSA, priv: f.a1.priv, pub: jose.JSONWebKey{KeyID: "a2"}}, claims(issA)), identity.Principal{}, "bad signature"},
		{"no kid", noKid, identity.Principal{}, "no key id"},
		{"no expiry", signed(f.a1, claims(issA, del("exp"))), identity.Principal{}, "no expiry"},
		{"no subject", signed(f.a1, claims(issA, del("sub"))), identity.Principal{}, "no subject"},
		{"unknown kind", signed(f.a1, claims(issA, set("kind", "robot"))), identity.Principal{}, "unknown kind"},
		{"bad tenants", signed(f.a1, claims(issA, set("tenants", []string{"*", "acme"}))), identity.Principal{}, `claim "tenants"`},
		{"roles not strings", signed(f.a1, claims(issA, set("roles", 7))), identity.Principal{}, `claim "roles"`},
		{"scope with control char", signed(f.a1, claims(issA, set("scope", []string{"a:\x01"}))), identity.Principal{}, "control character"},
		{"malformed", func(*testing.T) string { return "abc.def.ghi" }, identity.Principal{}, "malformed token"},
		{"payload not an object", func(t *testing.T) string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: f.a1.priv, KeyID: "a1"}}, nil)
			require.NoError(t, err)
			jws, err := signer.Sign([]byte(`[1,2]`))
			require.NoError(t, err)
			s, err := jws.CompactSerialize()
			require.NoError(t, err)
			return s
		}, identity.Principal{}, "malformed claims"},
		{"too long", func(*testing.T) string { return strings.Repeat("a", identity.MaxJWTLength) + ".b.c" }, identity.Principal{}, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.token(t)
			p, err := f.auth.AuthenticateToken(context.Background(), tok)
			if tt.wantErr != "" {
				require.Error(t, err, "AuthenticateToken(%s) = %+v, want error %q", tt.name, p, tt.wantErr)
				assert.ErrorIs(t, err, identity.ErrInvalidCredentials)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NotContains(t, err.Error(), tok)
				for _, part := range strings.Split(tok, ".") {
					if len(part) > 8 {
						assert.NotContains(t, err.Error(), part, "error leaks part of the token")
					}
				}
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, *p)
		})
	}
}

func TestJWTAuthenticateHeader(t *testing.T) {
	f := newJWTFixture(t)
	tok := f.a1.sign(t, claims(issA))
	tests := []struct {
		name    string
		auth    []string
		wantErr error
	}{
		{"valid", []string{"Bearer " + tok}, nil},
		{"scheme case", []string{"bearer  " + tok}, nil},
		{"no header", nil, identity.ErrNoCredentials},
		{"basic", []string{"Basic dXNlcjpwYXNz"}, identity.ErrNoCredentials},
		{"static token", []string{"Bearer oars_abcdef"}, identity.ErrNoCredentials},
		{"jwe shaped", []string{"Bearer a.b.c.d.e"}, identity.ErrNoCredentials},
		{"two headers", []string{"Bearer " + tok, "Bearer " + tok}, identity.ErrInvalidCredentials},
		{"jwt shaped garbage", []string{"Bearer a.b.c"}, identity.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.auth.Authenticate(context.Background(), bearerRequest(tt.auth...))
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr, "Authenticate() error")
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, "alice", p.Subject)
		})
	}
}

func TestJWKSUnknownKidRespectsMinRefresh(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	unknown := newEd25519Key(t, "nope")

	_, err := f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA)))
	require.NoError(t, err)
	require.EqualValues(t, 1, f.srv.requests.Load(), "first token fetches the JWKS")

	check := func(wantRequests int64) {
		t.Helper()
		_, err := f.auth.AuthenticateToken(ctx, unknown.sign(t, claims(issA)))
		assert.ErrorIs(t, err, identity.ErrInvalidCredentials)
		assert.ErrorContains(t, err, "unknown key")
		assert.Equal(t, wantRequests, f.srv.requests.Load(), "JWKS requests")
	}
	check(1) // fetched just now: no refetch
	f.clock.Advance(identity.DefaultMinRefresh - time.Second)
	check(1) // still too soon
	f.clock.Advance(time.Second)
	check(2) // refetched, still unknown
	for range 10 {
		check(2) // a burst of unknown kids fetches nothing
	}
	_, err = f.auth.AuthenticateToken(ctx, f.a2.sign(t, claims(issA)))
	require.NoError(t, err, "known keys still work")
	assert.EqualValues(t, 2, f.srv.requests.Load())
}

func TestJWKSRotation(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	_, err := f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA)))
	require.NoError(t, err)

	// The issuer rotates: a3 replaces a1 and a2.
	a3 := newES256Key(t, "a3")
	f.srv.set(http.StatusOK, jwks(t, a3))

	_, err = f.auth.AuthenticateToken(ctx, a3.sign(t, claims(issA)))
	assert.ErrorContains(t, err, "unknown key", "new key before MinRefresh has passed")

	f.clock.Advance(identity.DefaultMinRefresh)
	p, err := f.auth.AuthenticateToken(ctx, a3.sign(t, claims(issA, func(c map[string]any) {
		c["exp"] = t0.Add(time.Hour).Unix()
	})))
	require.NoError(t, err, "new key after refetch")
	assert.Equal(t, "alice", p.Subject)
	assert.EqualValues(t, 2, f.srv.requests.Load())

	_, err = f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA, func(c map[string]any) {
		c["exp"] = t0.Add(time.Hour).Unix()
	})))
	assert.ErrorContains(t, err, "unknown key", "retired key after rotation")
}

func TestJWKSCacheTTL(t *testing.T) {
	f := newJWTFixture(t)
	ctx := context.Background()
	long := func(c map[string]any) { c["exp"] = t0.Add(3 * time.Hour).Unix() }
	_, err := f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA, long)))
	require.NoError(t, err)
	f.clock.Advance(identity.DefaultCacheTTL - time.Second)
	_, err = f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA, long)))
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.srv.requests.Load(), "fresh cache is not refetched")

	// After the TTL, a known key triggers a refresh; if it fails, the
	// stale keys are still used.
	f.srv.set(http.StatusInternalServerError, nil)
	f.clock.Advance(time.Second)
	_, err = f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA, long)))
	require.NoError(t, err, "stale key after a failed refresh")
	assert.EqualValues(t, 2, f.srv.requests.Load())

	// A successful refresh drops keys the issuer retired.
	f.srv.set(http.StatusOK, jwks(t, f.a2))
	f.clock.Advance(identity.DefaultMinRefresh)
	_, err = f.auth.AuthenticateToken(ctx, f.a1.sign(t, claims(issA, long)))
	assert.ErrorContains(t, err, "unknown key")
	assert.EqualValues(t, 3, f.srv.requests.Load())
}

func TestJWKSConcurrentFetchCoalesces(t *testing.T) {
	f := newJWTFixture(t)
	tok := f.a1.sign(t, claims(issA))
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = f.auth.AuthenticateToken(context.Background(), tok)
		})
	}
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "goroutine %d", i)
	}
	assert.EqualValues(t, 1, f.srv.requests.Load(), "JWKS requests")
}

func TestJWKSRefused(t *testing.T) {
	good := newEd25519Key(t, "k1")
	goodSet := string(jwks(t, good))
	goodKey := strings.TrimSuffix(strings.TrimPrefix(goodSet, `{"keys":[`), `]}`)
	oversized := goodSet[:len(goodSet)-1] + strings.Repeat(" ", identity.MaxJWKSSize) + "}"
	private, err := json.Marshal(jose.JSONWebKey{Key: good.priv, KeyID: "k1"})
	require.NoError(t, err)
	tests := []struct {
		name    string
		status  int
		body    string
		wantErr string // "" = accepted
	}{
		{"valid", 200, goodSet, ""},
		{"unsupported key type skipped", 200, `{"keys":[{"kty":"XYZ","kid":"x"},` + goodKey + `]}`, ""},
		{"encryption key skipped", 200, `{"keys":[` + strings.Replace(goodKey, `"use":"sig"`, `"use":"enc"`, 1) + `]}`, "unknown key"},
		{"symmetric key", 200, `{"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]}`, "symmetric"},
		{"symmetric key beside a good one", 200, `{"keys":[` + goodKey + `,{"kty":"oct","kid":"k2","k":"c2VjcmV0"}]}`, "symmetric"},
		{"private key", 200, `{"keys":[` + string(private) + `]}`, "private"},
		{"key without kid", 200, `{"keys":[` + strings.Replace(goodKey, `"kid":"k1",`, ``, 1) + `]}`, "no key id"},
		{"oversized", 200, oversized, "larger than"},
		{"status 500", 500, goodSet, "status 500"},
		{"not json", 200, "<html>", "malformed jwks"},
		{"no keys", 200, `{}`, "no \"keys\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newJWKSServer(t, []byte(tt.body))
			srv.set(tt.status, []byte(tt.body))
			auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{Issuer: issA, Audience: "oars", JWKSURL: srv.URL}},
				identity.WithClock(newFakeClock().Now))
			require.NoError(t, err)
			tok := good.sign(t, claims(issA))
			p, err := auth.AuthenticateToken(context.Background(), tok)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, "alice", p.Subject)
				return
			}
			require.Error(t, err)
			assert.ErrorContains(t, err, tt.wantErr)
			if tt.wantErr != "unknown key" {
				assert.ErrorIs(t, err, identity.ErrJWKSUnavailable)
				assert.NotErrorIs(t, err, identity.ErrInvalidCredentials, "the token may be fine; the key set is not")
			}
			// Within MinRefresh the failure is remembered, not refetched.
			_, err2 := auth.AuthenticateToken(context.Background(), tok)
			assert.Error(t, err2)
			assert.EqualValues(t, 1, srv.requests.Load())
		})
	}
}

func TestJWKSRedirectToPlainHTTPRefused(t *testing.T) {
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://keys.example.com/jwks.json", http.StatusFound)
	}))
	t.Cleanup(redirect.Close)
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{Issuer: issA, Audience: "oars", JWKSURL: redirect.URL}})
	require.NoError(t, err)
	_, err = auth.AuthenticateToken(context.Background(), newEd25519Key(t, "k").sign(t, claims(issA, func(c map[string]any) {
		now := time.Now()
		c["iat"], c["nbf"], c["exp"] = now.Unix(), now.Unix(), now.Add(time.Minute).Unix()
	})))
	assert.ErrorIs(t, err, identity.ErrJWKSUnavailable)
	assert.ErrorContains(t, err, "redirect target")
}

func TestNewJWTAuthenticatorValidation(t *testing.T) {
	key := newEd25519Key(t, "k")
	keys := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.pub}}
	valid := func(mods ...func(*identity.Issuer)) []identity.Issuer {
		is := identity.Issuer{Issuer: issA, Audience: "oars", Keys: keys}
		for _, m := range mods {
			m(&is)
		}
		return []identity.Issuer{is}
	}
	tests := []struct {
		name    string
		issuers []identity.Issuer
		opts    []identity.JWTOption
		wantErr string
	}{
		{"valid inline", valid(), nil, ""},
		{"valid https url", valid(func(i *identity.Issuer) { i.Keys = nil; i.JWKSURL = "https://idp.example.com/jwks" }), nil, ""},
		{"valid loopback http", valid(func(i *identity.Issuer) { i.JWKSURL = "http://127.0.0.1:8080/jwks" }), nil, ""},
		{"valid localhost http", valid(func(i *identity.Issuer) { i.JWKSURL = "http://localhost/jwks" }), nil, ""},
		{"valid options", valid(), []identity.JWTOption{identity.WithMaxDelegationDepth(2), identity.WithLogger(discardLogger())}, ""},
		{"no issuers", nil, nil, "at least one issuer"},
		{"no issuer name", valid(func(i *identity.Issuer) { i.Issuer = "" }), nil, "issuer is required"},
		{"no audience", valid(func(i *identity.Issuer) { i.Audience = "" }), nil, "audience is required"},
		{"no keys", valid(func(i *identity.Issuer) { i.Keys = nil }), nil, "jwks url or inline keys"},
		{"empty key set", valid(func(i *identity.Issuer) { i.Keys = &jose.JSONWebKeySet{} }), nil, "jwks url or inline keys"},
		{"plain http", valid(func(i *identity.Issuer) { i.JWKSURL = "http://idp.example.com/jwks" }), nil, "must be https"},
		{"credentials in url", valid(func(i *identity.Issuer) { i.JWKSURL = "https://u:p@idp.example.com/jwks" }), nil, "credentials"},
		{"relative url", valid(func(i *identity.Issuer) { i.JWKSURL = "/jwks" }), nil, "no host"},
		{"hmac algorithm", valid(func(i *identity.Issuer) { i.Algorithms = []jose.SignatureAlgorithm{jose.HS256} }), nil, "not allowed"},
		{"none algorithm", valid(func(i *identity.Issuer) { i.Algorithms = []jose.SignatureAlgorithm{"none"} }), nil, "not allowed"},
		{"symmetric inline key", valid(func(i *identity.Issuer) {
			i.Keys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: []byte("secret"), KeyID: "s"}}}
		}), nil, "symmetric"},
		{"private inline key", valid(func(i *identity.Issuer) {
			i.Keys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.priv, KeyID: "p"}}}
		}), nil, "private"},
		{"inline key without kid", valid(func(i *identity.Issuer) {
			i.Keys = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.pub.Key}}}
		}), nil, "no key id"},
		{"negative leeway", valid(func(i *identity.Issuer) { i.Leeway = -time.Second }), nil, "leeway is negative"},
		{"bad default kind", valid(func(i *identity.Issuer) { i.DefaultKind = "robot" }), nil, "default kind"},
		{"repeated issuer", append(valid(), valid()...), nil, "repeated"},
		{"nil clock", valid(), []identity.JWTOption{identity.WithClock(nil)}, "clock"},
		{"zero depth", valid(), []identity.JWTOption{identity.WithMaxDelegationDepth(0)}, "at least 1"},
		{"nil logger", valid(), []identity.JWTOption{identity.WithLogger(nil)}, "logger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := identity.NewJWTAuthenticator(tt.issuers, tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.NotNil(t, a)
				return
			}
			require.Error(t, err, "NewJWTAuthenticator(%s) = nil error, want %q", tt.name, tt.wantErr)
			assert.ErrorContains(t, err, tt.wantErr)
			assert.NotContains(t, err.Error(), "u:p@")
		})
	}
}

func FuzzJWTAuthenticateToken(f *testing.F) {
	key := newEd25519Key(f, "k")
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: issA, Audience: "oars", Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.pub}},
	}}, identity.WithClock(newFakeClock().Now))
	if err != nil {
		f.Fatal(err)
	}
	valid := key.sign(f, claims(issA))
	delegated := key.sign(f, claims(issA, func(c map[string]any) {
		c["scope"] = "a:*"
		c["act"] = map[string]any{"sub": "x", "scope": "a:b", "act": map[string]any{"sub": "y"}}
	}))
	for _, s := range []string{valid, delegated, "a.b.c", "..", "", b64(`{"alg":"none"}`) + "." + b64(`{}`) + ".", valid[:len(valid)-3] + "AAA"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := auth.AuthenticateToken(context.Background(), token)
		if err == nil {
			if p == nil || p.Subject == "" {
				t.Fatalf("AuthenticateToken() = %+v, nil", p)
			}
			return
		}
		if !errors.Is(err, identity.ErrInvalidCredentials) {
			t.Fatalf("AuthenticateToken() error = %v, want ErrInvalidCredentials", err)
		}
		if len(token) >= 16 && strings.Contains(err.Error(), token) {
			t.Fatalf("AuthenticateToken() error leaks the token")
		}
	})
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestJWTNeverLogsTokens(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newJWTFixture(t, identity.WithLogger(logger))
	good := f.a1.sign(t, claims(issA))
	unknown := newEd25519Key(t, "zz").sign(t, claims(issA))
	_, err := f.auth.AuthenticateToken(context.Background(), good)
	require.NoError(t, err)
	f.srv.set(http.StatusBadGateway, nil)
	f.clock.Advance(identity.DefaultMinRefresh)
	_, err = f.auth.AuthenticateToken(context.Background(), unknown)
	assert.ErrorIs(t, err, identity.ErrJWKSUnavailable)

	mu.Lock()
	defer mu.Unlock()
	out := buf.String()
	assert.Contains(t, out, "jwks fetched")
	assert.Contains(t, out, "jwks fetch failed")
	for _, tok := range []string{good, unknown} {
		for _, part := range strings.Split(tok, ".") {
			assert.NotContains(t, out, part, "log leaks part of a token")
		}
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
