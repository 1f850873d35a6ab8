package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/oarsdev/oars/identity"
)

// exampleIssuer stands in for an identity provider: it signs tokens with
// an Ed25519 key and publishes the public key.
type exampleIssuer struct {
	signer jose.Signer
	public jose.JSONWebKey
}

func newExampleIssuer(kid string) (*exampleIssuer, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &exampleIssuer{signer: signer, public: jose.JSONWebKey{Key: pub, KeyID: kid, Use: "sig"}}, nil
}

func (is *exampleIssuer) token(claims map[string]any) (string, error) {
	return jwt.Signed(is.signer).Claims(claims).Serialize()
}

// Verify JWT bearer tokens of an OIDC provider. Here its key is configured
// inline; with JWKSURL it is fetched and kept fresh.
func ExampleJWTAuthenticator() {
	idp, err := newExampleIssuer("idp-2026-01")
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer:   "https://idp.example.com",
		Audience: "oars",
		Keys:     &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{idp.public}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}

	now := time.Now()
	token, err := idp.token(map[string]any{
		"iss":     "https://idp.example.com",
		"aud":     "oars",
		"sub":     "alice@example.com",
		"iat":     now.Unix(),
		"exp":     now.Add(5 * time.Minute).Unix(),
		"roles":   []string{"approver"},
		"tenants": []string{"acme"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	r := httptest.NewRequest("GET", "/v1/approvals", nil)
	r.Header.Set("Authorization", "Bearer "+token)
	p, err := auth.Authenticate(context.Background(), r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Subject, p.Kind, p.HasRole(identity.RoleApprover), p.InTenant("acme"))

	// A token for another service is refused.
	other, err := idp.token(map[string]any{
		"iss": "https://idp.example.com", "aud": "billing", "sub": "alice@example.com",
		"exp": now.Add(5 * time.Minute).Unix(),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = auth.AuthenticateToken(context.Background(), other)
	fmt.Println(err)
	// Output:
	// alice@example.com user true true
	// identity: jwt: identity: invalid credentials: wrong audience
}

// An agent acting for a user presents an RFC 8693 delegation token: sub
// is the user, act the current actor, nested act the actors before it.
// Each actor may only narrow what the one before it was granted.
func ExampleJWTAuthenticator_delegation() {
	sts, err := newExampleIssuer("sts-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer:   "https://sts.example.com",
		Audience: "oars",
		Keys:     &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sts.public}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Now()
	delegation := func(innerScope string) (string, error) {
		return sts.token(map[string]any{
			"iss":   "https://sts.example.com",
			"aud":   "oars",
			"sub":   "alice",                    // the user
			"scope": "payments:refund crm:read", // what alice granted the first agent
			"exp":   now.Add(10 * time.Minute).Unix(),
			"act": map[string]any{ // the current actor
				"sub":   "refund-worker",
				"scope": "payments:refund",
				"act": map[string]any{ // the actor before it
					"sub":   "assistant",
					"scope": innerScope,
				},
			},
		})
	}

	token, err := delegation("payments:refund crm:read")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := auth.AuthenticateToken(context.Background(), token)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("user:", p.UserID, "agent:", p.AgentID)
	for _, hop := range p.Delegation {
		fmt.Println("hop:", hop.Subject, hop.Scope)
	}
	fmt.Println(p.Allows("payments", "refund"), p.Allows("crm", "read"))

	// The assistant claims more than alice granted: refused.
	token, err = delegation("payments:*")
	if err != nil {
		fmt.Println(err)
		return
	}
	_, err = auth.AuthenticateToken(context.Background(), token)
	fmt.Println(errors.Is(err, identity.ErrDelegationWidens))
	// Output:
	// user: alice agent: refund-worker
	// hop: refund-worker [payments:refund]
	// hop: assistant [payments:refund crm:read]
	// true false
	// true
}

// Scopes name tool calls as "tool:operation" patterns.
func ExampleScopeSubset() {
	parent := []string{"payments:*", "crm:read"}
	fmt.Println(identity.ScopeSubset([]string{"payments:refund"}, parent))
	fmt.Println(identity.ScopeSubset([]string{"crm:*"}, parent))
	fmt.Println(identity.ScopeAllows(parent, "payments", "charge"))
	// Output:
	// true
	// false
	// true
}

// Try a client certificate first, then JWTs, then static API tokens.
func ExampleChain() {
	certs, err := identity.NewCertAuthenticator([]identity.CertIdentity{{
		SPIFFEID: "spiffe://example.org/ns/payments/sa/billing",
		Name:     "billing",
		Roles:    []identity.Role{identity.RoleOperator},
		Tenants:  []string{"acme"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	idp, err := newExampleIssuer("idp-1")
	if err != nil {
		fmt.Println(err)
		return
	}
	jwts, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: "https://idp.example.com", Audience: "oars",
		Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{idp.public}},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	tokens, err := identity.NewTokenSet([]identity.Token{{
		Name: "ci-bot", Hash: identity.HashToken("oars_example"),
		Roles: []identity.Role{identity.RoleOperator}, Tenants: []string{"acme"},
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	auth := identity.Chain(certs, jwts, tokens)

	r := httptest.NewRequest("GET", "/v1/receipts", nil)
	r.Header.Set("Authorization", "Bearer oars_example")
	p, err := auth.Authenticate(context.Background(), r)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(p.Subject)

	r.Header.Set("Authorization", "Bearer oars_wrong")
	_, err = auth.Authenticate(context.Background(), r)
	fmt.Println(errors.Is(err, identity.ErrInvalidCredentials))
	// Output:
	// ci-bot
	// true
}
