package identity_test

import (
	"context"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oarsdev/oars/identity"
)

func BenchmarkJWTAuthenticateToken(b *testing.B) {
	ed := newEd25519Key(b, "ed")
	es := newES256Key(b, "es")
	auth, err := identity.NewJWTAuthenticator([]identity.Issuer{{
		Issuer: issA, Audience: "oars",
		Keys: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{ed.pub, es.pub}},
	}}, identity.WithClock(newFakeClock().Now))
	if err != nil {
		b.Fatal(err)
	}
	delegation := claims(issA, func(c map[string]any) {
		c["scope"] = "payments:* crm:read"
		c["act"] = act(
			map[string]any{"sub": "sub-sub-agent", "scope": "payments:refund"},
			map[string]any{"sub": "sub-agent", "scope": "payments:*"},
			map[string]any{"sub": "agent-1"},
		)
	})
	for _, bb := range []struct {
		name  string
		token string
	}{
		{"EdDSA", ed.sign(b, claims(issA))},
		{"ES256", es.sign(b, claims(issA))},
		{"EdDSA-delegation-3-hops", ed.sign(b, delegation)},
	} {
		b.Run(bb.name, func(b *testing.B) {
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := auth.AuthenticateToken(ctx, bb.token); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
