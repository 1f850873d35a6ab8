package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/config"
)

// authenticator builds the authenticator chain of cfg in auth_order: the
// client certificate authenticator when client_ca and client_identities
// are set, the JWT authenticator when jwt_issuers are set, and the API
// tokens (with the dev tokens in development). Entries of auth_order
// that are not configured are skipped.
func authenticator(cfg *config.Config, log *slog.Logger) (identity.Authenticator, error) {
	var auths []identity.Authenticator
	for _, name := range cfg.AuthOrderOrDefault() {
		switch name {
		case config.AuthMTLS:
			if cfg.ClientCA == "" || len(cfg.ClientIdentities) == 0 {
				continue
			}
			certs, err := identity.NewCertAuthenticator(cfg.CertIdentities())
			if err != nil {
				return nil, fmt.Errorf("server: client_identities: %w", err)
			}
			auths = append(auths, withCertGroups(certs, cfg.ClientIdentities))
		case config.AuthJWT:
			if len(cfg.JWTIssuers) == 0 {
				continue
			}
			issuers, err := cfg.Issuers()
			if err != nil {
				return nil, fmt.Errorf("server: %w", err)
			}
			jwts, err := identity.NewJWTAuthenticator(issuers, identity.WithLogger(log))
			if err != nil {
				return nil, fmt.Errorf("server: jwt_issuers: %w", err)
			}
			auths = append(auths, jwts)
		case config.AuthToken:
			tokens, err := tokenSet(cfg)
			if err != nil {
				return nil, err
			}
			auths = append(auths, tokens)
		default:
			return nil, fmt.Errorf("server: auth_order: unknown authenticator %q", name)
		}
	}
	return identity.Chain(auths...), nil
}

// withCertGroups adds the configured business groups of each client
// identity, by name, to the principals certs returns.
func withCertGroups(certs identity.Authenticator, ids []config.ClientIdentity) identity.Authenticator {
	groups := make(map[string][]string, len(ids))
	for _, id := range ids {
		if len(id.Groups) > 0 {
			groups[id.Name] = slices.Clone(id.Groups)
		}
	}
	return identity.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (*identity.Principal, error) {
		p, err := certs.Authenticate(ctx, r)
		if err != nil || p == nil {
			return p, err
		}
		p.Groups = slices.Clone(groups[p.Subject])
		return p, nil
	})
}
