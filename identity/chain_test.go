package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

func TestChain(t *testing.T) {
	// fake returns an authenticator that records its calls and answers
	// with a principal named name, or err.
	type fake struct {
		name string
		err  error
		nil_ bool // return nil, nil
	}
	errDown := errors.New("key server down")
	tests := []struct {
		name      string
		auths     []fake
		wantSub   string
		wantErr   error
		wantCalls string
	}{
		{"first wins", []fake{{name: "a"}, {name: "b"}}, "a", nil, "a"},
		{"falls through on no credentials", []fake{{name: "a", err: identity.ErrNoCredentials}, {name: "b"}}, "b", nil, "ab"},
		{"stops on invalid", []fake{{name: "a", err: identity.ErrInvalidCredentials}, {name: "b"}}, "", identity.ErrInvalidCredentials, "a"},
		{"stops on other errors", []fake{{name: "a", err: errDown}, {name: "b"}}, "", errDown, "a"},
		{"all without credentials", []fake{{name: "a", err: identity.ErrNoCredentials}, {name: "b", err: identity.ErrNoCredentials}}, "", identity.ErrNoCredentials, "ab"},
		{"empty", nil, "", identity.ErrNoCredentials, ""},
		{"no principal and no error", []fake{{name: "a", nil_: true}, {name: "b"}}, "", identity.ErrInvalidCredentials, "a"},
		{"invalid that also wraps no credentials", []fake{{name: "a", err: fmt.Errorf("%w: %w", identity.ErrInvalidCredentials, identity.ErrNoCredentials)}, {name: "b"}}, "", identity.ErrInvalidCredentials, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls string
			var auths []identity.Authenticator
			for _, f := range tt.auths {
				auths = append(auths, identity.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (*identity.Principal, error) {
					calls += f.name
					switch {
					case f.nil_:
						return nil, nil
					case f.err != nil:
						return nil, fmt.Errorf("fake %s: %w", f.name, f.err)
					}
					return &identity.Principal{Subject: f.name}, nil
				}))
			}
			p, err := identity.Chain(auths...).Authenticate(context.Background(), bearerRequest())
			assert.Equal(t, tt.wantCalls, calls, "authenticators called")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSub, p.Subject)
		})
	}
}

func TestChainJWTThenTokens(t *testing.T) {
	key := newEd25519Key(t, "k1")
	jwtAuth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: issA, Audience: "oars", Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.pub}},
	}}, identity.WithClock(newFakeClock().Now))
	require.NoError(t, err)
	const secret = "oars_statictoken"
	tokens, err := identity.NewTokenSet([]identity.Token{{
		Name: "ci-bot", Hash: identity.HashToken(secret), Roles: []identity.Role{identity.RoleOperator}, Tenants: []string{"acme"},
	}})
	require.NoError(t, err)
	certs, err := identity.NewCertAuthenticator(nil)
	require.NoError(t, err)
	chain := identity.Chain(certs, jwtAuth, tokens)

	tests := []struct {
		name    string
		auth    []string
		wantSub string
		wantErr error
		wantMsg string
	}{
		{"jwt", []string{"Bearer " + key.sign(t, claims(issA))}, "alice", nil, ""},
		{"static token", []string{"Bearer " + secret}, "ci-bot", nil, ""},
		{"unknown static token", []string{"Bearer oars_nope"}, "", identity.ErrInvalidCredentials, "identity: token:"},
		{"expired jwt is not tried as a static token", []string{"Bearer " + key.sign(t, claims(issA, func(c map[string]any) { c["exp"] = t0.Add(-10 * time.Minute).Unix() }))}, "", identity.ErrInvalidCredentials, "identity: jwt: identity: invalid credentials: expired"},
		{"nothing", nil, "", identity.ErrNoCredentials, "identity: chain:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := chain.Authenticate(context.Background(), bearerRequest(tt.auth...))
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, tt.wantMsg)
				assert.Nil(t, p)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSub, p.Subject)
		})
	}
}

func TestTokenSetPassesJWTsOn(t *testing.T) {
	ts, err := identity.NewTokenSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2ln")
	if _, err := ts.Authenticate(context.Background(), r); !errors.Is(err, identity.ErrNoCredentials) {
		t.Errorf("TokenSet.Authenticate(JWT) = %v, want identity.ErrNoCredentials so a Chain tries the next authenticator", err)
	}
	r.Header.Set("Authorization", "Bearer not-a-known-token")
	if _, err := ts.Authenticate(context.Background(), r); !errors.Is(err, identity.ErrInvalidCredentials) {
		t.Errorf("TokenSet.Authenticate(unknown) = %v, want identity.ErrInvalidCredentials", err)
	}
}
