package identity_test

import (
	"context"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

// newDelegationAuth returns an authenticator trusting the token exchange
// service sts (inline key) on a fake clock.
func newDelegationAuth(t *testing.T, sts signingKey, opts ...identity.JWTOption) *identity.JWTAuthenticator {
	t.Helper()
	opts = append([]identity.JWTOption{identity.WithClock(newFakeClock().Now)}, opts...)
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: issB, Audience: "oars",
		Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{sts.pub}},
	}}, opts...)
	require.NoError(t, err)
	return auth
}

// act builds an act claim: the current actor first, each later argument
// the actor before it.
func act(actors ...map[string]any) map[string]any {
	var out map[string]any
	for i := len(actors) - 1; i >= 0; i-- {
		a := map[string]any{}
		for k, v := range actors[i] {
			a[k] = v
		}
		if out != nil {
			a["act"] = out
		}
		out = a
	}
	return out
}

func TestDelegationThreeHops(t *testing.T) {
	sts := newEd25519Key(t, "sts-1")
	auth := newDelegationAuth(t, sts)
	exp := t0.Add(time.Hour)
	tok := sts.sign(t, claims(issB, func(c map[string]any) {
		c["sub"] = "alice"
		c["exp"] = exp.Unix()
		c["scope"] = "payments:* crm:read"
		c["roles"] = []string{"agent"}
		c["tenants"] = []string{"acme"}
		// user alice → agent-1 → sub-agent → sub-sub-agent
		c["act"] = act(
			map[string]any{"sub": "sub-sub-agent", "scope": "payments:refund"},
			map[string]any{"sub": "sub-agent", "scope": "payments:*", "exp": t0.Add(30 * time.Minute).Unix()},
			map[string]any{"sub": "agent-1", "iss": "https://agents.example.com"},
		)
	}))
	p, err := auth.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)

	want := identity.Principal{
		Subject: "sub-sub-agent",
		Roles:   []identity.Role{identity.RoleAgent},
		Tenants: []string{"acme"},
		AgentID: "sub-sub-agent",
		Kind:    identity.KindAgent,
		UserID:  "alice",
		Delegation: []identity.Hop{
			{Subject: "sub-sub-agent", Scope: []string{"payments:refund"}, ExpiresAt: t0.Add(30 * time.Minute)},
			{Subject: "sub-agent", Scope: []string{"payments:*"}, ExpiresAt: t0.Add(30 * time.Minute)},
			{Subject: "agent-1", Issuer: "https://agents.example.com", Scope: []string{"payments:*", "crm:read"}, ExpiresAt: exp},
		},
		Scopes: []string{"payments:refund"},
	}
	assert.Equal(t, want, *p)

	tests := []struct {
		tool, op string
		want     bool
	}{
		{"payments", "refund", true},
		{"payments", "charge", false},
		{"crm", "read", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, p.Allows(tt.tool, tt.op), "Allows(%s, %s)", tt.tool, tt.op)
	}
}

func TestDelegationRefused(t *testing.T) {
	sts := newEd25519Key(t, "sts-1")
	auth := newDelegationAuth(t, sts)
	token := func(scope any, a map[string]any, mods ...func(map[string]any)) map[string]any {
		return claims(issB, append([]func(map[string]any){func(c map[string]any) {
			if scope != nil {
				c["scope"] = scope
			}
			c["act"] = a
		}}, mods...)...)
	}
	hops := func(n int) map[string]any {
		actors := make([]map[string]any, n)
		for i := range actors {
			actors[i] = map[string]any{"sub": "agent-" + string(rune('a'+i))}
		}
		return act(actors...)
	}
	tests := []struct {
		name    string
		claims  map[string]any
		opts    []identity.JWTOption
		wantIs  error
		wantMsg string // "" = accepted
	}{
		{"five hops allowed", token("x:*", hops(5)), nil, nil, ""},
		{"widening hop", token("payments:*", act(
			map[string]any{"sub": "sub-agent", "scope": "payments:*"},
			map[string]any{"sub": "agent-1", "scope": "payments:refund"},
		)), nil, identity.ErrDelegationWidens, `hop 2 ("sub-agent"): scope`},
		{"first hop widens the user's grant", token("payments:refund", act(
			map[string]any{"sub": "agent-1", "scope": "*"},
		)), nil, identity.ErrDelegationWidens, `hop 1 ("agent-1"): scope`},
		{"extra scope", token("payments:refund", act(
			map[string]any{"sub": "agent-1", "scope": "payments:refund crm:read"},
		)), nil, identity.ErrDelegationWidens, "scope"},
		{"hop outlives token", token("a:*", act(
			map[string]any{"sub": "agent-1", "exp": t0.Add(11 * time.Minute).Unix()},
		)), nil, identity.ErrDelegationWidens, `hop 1 ("agent-1"): expires after`},
		{"later hop outlives earlier", token("a:*", act(
			map[string]any{"sub": "sub-agent", "exp": t0.Add(5 * time.Minute).Unix()},
			map[string]any{"sub": "agent-1", "exp": t0.Add(3 * time.Minute).Unix()},
		)), nil, identity.ErrDelegationWidens, `hop 2 ("sub-agent"): expires after`},
		{"expired hop", token("a:*", act(
			map[string]any{"sub": "agent-1", "exp": t0.Add(-5 * time.Minute).Unix()},
		)), nil, identity.ErrInvalidCredentials, "expired"},
		{"six hops", token("x:*", hops(6)), nil, identity.ErrDelegationTooDeep, "more than 5"},
		{"depth option", token("x:*", hops(3)), []identity.JWTOption{identity.WithMaxDelegationDepth(2)}, identity.ErrDelegationTooDeep, "more than 2"},
		{"no scope", token(nil, hops(1)), nil, identity.ErrInvalidCredentials, `no "scope" claim`},
		{"act without sub", token("a:*", act(map[string]any{"scope": "a:b"})), nil, identity.ErrInvalidCredentials, "hop 1 has no subject"},
		{"act not an object", claims(issB, func(c map[string]any) { c["scope"] = "a:*"; c["act"] = "agent-1" }), nil, identity.ErrInvalidCredentials, `malformed "act"`},
		{"act null", claims(issB, func(c map[string]any) { c["scope"] = "a:*"; c["act"] = nil }), nil, identity.ErrInvalidCredentials, `malformed "act"`},
		{"bad hop exp", token("a:*", act(map[string]any{"sub": "agent-1", "exp": "soon"})), nil, identity.ErrInvalidCredentials, `malformed "exp"`},
		{"agent claim disagrees", token("a:*", hops(1), func(c map[string]any) { c["agent_id"] = "someone-else" }), nil, identity.ErrInvalidCredentials, "current actor"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := auth
			if tt.opts != nil {
				a = newDelegationAuth(t, sts, tt.opts...)
			}
			p, err := a.AuthenticateToken(context.Background(), sts.sign(t, tt.claims))
			if tt.wantMsg == "" {
				require.NoError(t, err)
				assert.Len(t, p.Delegation, 5)
				assert.Equal(t, "agent-a", p.AgentID)
				assert.Equal(t, "agent-e", p.Delegation[4].Subject)
				return
			}
			require.Error(t, err, "AuthenticateToken(%s) = %+v, want error", tt.name, p)
			assert.ErrorIs(t, err, tt.wantIs)
			assert.ErrorIs(t, err, identity.ErrInvalidCredentials)
			assert.ErrorContains(t, err, tt.wantMsg)
		})
	}
}
