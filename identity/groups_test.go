package identity_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

func TestTokenGroups(t *testing.T) {
	const secret = "oars_groupsecretaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	base := identity.Token{Name: "bob", Hash: identity.HashToken(secret), Roles: []identity.Role{identity.RoleApprover}, Tenants: []string{"acme"}}
	tests := []struct {
		name    string
		groups  []string
		wantErr string
	}{
		{"none", nil, ""},
		{"two", []string{"finance-approver", "cfo-office"}, ""},
		{"empty entry", []string{""}, "groups: entry 0 is empty"},
		{"repeated", []string{"finance", "finance"}, "groups: entry 1 repeated"},
		{"control character", []string{"fin\x01"}, "groups: entry 0 contains a control character"},
		{"too long", []string{strings.Repeat("g", identity.MaxIDLength+1)}, "groups: entry 0 is longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := base
			tok.Groups = tt.groups
			set, err := identity.NewTokenSet([]identity.Token{tok})
			if tt.wantErr != "" {
				require.Error(t, err, "NewTokenSet(groups %q) = nil error, want %q", tt.groups, tt.wantErr)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			r, err := http.NewRequest("GET", "/", nil)
			require.NoError(t, err)
			r.Header.Set("Authorization", "Bearer "+secret)
			p, err := set.Authenticate(context.Background(), r)
			require.NoError(t, err)
			assert.Equal(t, tt.groups, p.Groups, "Authenticate().Groups")
			if len(tt.groups) > 0 {
				// The set keeps its own copy.
				tt.groups[0] = "changed"
				p2, err := set.Authenticate(context.Background(), r)
				require.NoError(t, err)
				assert.NotEqual(t, "changed", p2.Groups[0], "NewTokenSet must copy Groups")
			}
		})
	}
}

func TestJWTGroupsClaim(t *testing.T) {
	f := newJWTFixture(t)
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	tests := []struct {
		name       string
		claims     map[string]any
		wantGroups []string
		wantErr    string
	}{
		{"absent", claims(issA), nil, ""},
		{"array", claims(issA, set("groups", []string{"finance-approver", "ops"})), []string{"finance-approver", "ops"}, ""},
		{"string", claims(issA, set("groups", "finance-approver")), []string{"finance-approver"}, ""},
		{"empty array", claims(issA, set("groups", []string{})), nil, ""},
		{"repeated", claims(issA, set("groups", []string{"a", "a"})), nil, `claim "groups"`},
		{"not strings", claims(issA, set("groups", 3)), nil, `claim "groups"`},
		{"empty entry", claims(issA, set("groups", []string{""})), nil, `claim "groups"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := f.auth.AuthenticateToken(context.Background(), f.a1.sign(t, tt.claims))
			if tt.wantErr != "" {
				require.Error(t, err, "AuthenticateToken(%s) = %+v, want error", tt.name, p)
				assert.ErrorIs(t, err, identity.ErrInvalidCredentials)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantGroups, p.Groups, "AuthenticateToken(%s).Groups", tt.name)
		})
	}
}

func TestJWTGroupsClaimRenamed(t *testing.T) {
	k := newEd25519Key(t, "k1")
	clock := newFakeClock()
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: issB, Audience: "oars", GroupsClaim: "https://example.com/groups",
		Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.pub}},
	}}, identity.WithClock(clock.Now))
	require.NoError(t, err)
	c := claims(issB)
	c["https://example.com/groups"] = []string{"finance-approver"}
	c["groups"] = []string{"ignored"}
	p, err := auth.AuthenticateToken(context.Background(), k.sign(t, c))
	require.NoError(t, err)
	assert.Equal(t, []string{"finance-approver"}, p.Groups)
}
