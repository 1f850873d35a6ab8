package config

import (
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/textcheck"
)

// Authenticator names of auth_order.
const (
	AuthMTLS  = "mtls"
	AuthJWT   = "jwt"
	AuthToken = "token"
)

// DefaultAuthOrder is the order authenticators are tried in when
// auth_order is not set: client certificates first (they come from the
// TLS layer and win over an Authorization header), then JWTs, then
// static tokens (which refuse every bearer token they do not know).
func DefaultAuthOrder() []string { return []string{AuthMTLS, AuthJWT, AuthToken} }

// JWTIssuer is an entry of jwt_issuers (config file only): an issuer of
// JWT bearer tokens oarsd trusts. See [identity.Issuer] for the meaning
// and defaults of each field.
type JWTIssuer struct {
	Issuer     string        `yaml:"issuer"`
	Audience   string        `yaml:"audience"`
	JWKSURL    string        `yaml:"jwks_url"`
	Algorithms []string      `yaml:"algorithms,omitempty"`
	Leeway     time.Duration `yaml:"leeway,omitempty"`
	MinRefresh time.Duration `yaml:"min_refresh,omitempty"`
	// The claims holding roles, tenants, the bound agent, the scopes and
	// the business groups; empty means the identity package's default.
	RolesClaim   string `yaml:"roles_claim,omitempty"`
	TenantsClaim string `yaml:"tenants_claim,omitempty"`
	AgentClaim   string `yaml:"agent_claim,omitempty"`
	ScopeClaim   string `yaml:"scope_claim,omitempty"`
	GroupsClaim  string `yaml:"groups_claim,omitempty"`
}

// ClientIdentity is an entry of client_identities (config file only): the
// workload identity of a TLS client certificate, matched by exactly one of
// SPIFFEID and Subject (see [identity.CertIdentity]).
type ClientIdentity struct {
	SPIFFEID string   `yaml:"spiffe_id,omitempty"`
	Subject  string   `yaml:"subject,omitempty"`
	Name     string   `yaml:"name"`
	Roles    []string `yaml:"roles"`
	Tenants  []string `yaml:"tenants"`
	AgentID  string   `yaml:"agent_id,omitempty"`
	// Groups are the workload's business groups (see [Token].Groups).
	Groups []string `yaml:"groups,omitempty"`
}

// Issuers returns the configured JWT issuers as the identity package
// takes them. Its error names the key and the issuer's position when an
// algorithm is not a JOSE signature algorithm name.
func (c *Config) Issuers() ([]identity.Issuer, error) {
	out := make([]identity.Issuer, 0, len(c.JWTIssuers))
	for i, is := range c.JWTIssuers {
		algs := make([]jose.SignatureAlgorithm, len(is.Algorithms))
		for j, a := range is.Algorithms {
			if a == "" {
				return nil, fmt.Errorf("config: jwt_issuers[%d]: algorithms[%d]: empty", i, j)
			}
			algs[j] = jose.SignatureAlgorithm(a)
		}
		out = append(out, identity.Issuer{
			Issuer:       is.Issuer,
			Audience:     is.Audience,
			JWKSURL:      is.JWKSURL,
			Algorithms:   algs,
			Leeway:       is.Leeway,
			MinRefresh:   is.MinRefresh,
			RolesClaim:   is.RolesClaim,
			TenantsClaim: is.TenantsClaim,
			AgentClaim:   is.AgentClaim,
			ScopeClaim:   is.ScopeClaim,
			GroupsClaim:  is.GroupsClaim,
		})
	}
	return out, nil
}

// CertIdentities returns the configured client identities as the
// identity package takes them (without their groups: see
// [ClientIdentity].Groups).
func (c *Config) CertIdentities() []identity.CertIdentity {
	out := make([]identity.CertIdentity, 0, len(c.ClientIdentities))
	for _, ci := range c.ClientIdentities {
		roles := make([]identity.Role, len(ci.Roles))
		for j, r := range ci.Roles {
			roles[j] = identity.Role(r)
		}
		out = append(out, identity.CertIdentity{
			SPIFFEID: ci.SPIFFEID,
			Subject:  ci.Subject,
			Name:     ci.Name,
			Roles:    roles,
			Tenants:  slices.Clone(ci.Tenants),
			AgentID:  ci.AgentID,
		})
	}
	return out
}

// AuthOrderOrDefault returns auth_order, or [DefaultAuthOrder] when it is
// not set.
func (c *Config) AuthOrderOrDefault() []string {
	if len(c.AuthOrder) == 0 {
		return DefaultAuthOrder()
	}
	return slices.Clone(c.AuthOrder)
}

// validateIdentity checks auth_order, jwt_issuers and client_identities,
// with errors naming the key. The issuers and identities are checked by
// building their authenticators, which fetch nothing.
func (c *Config) validateIdentity() error {
	seen := map[string]bool{}
	for i, a := range c.AuthOrder {
		switch a {
		case AuthMTLS, AuthJWT, AuthToken:
		default:
			return fmt.Errorf("config: auth_order[%d]: want %s, %s or %s, got %q", i, AuthMTLS, AuthJWT, AuthToken, truncate(a))
		}
		if seen[a] {
			return fmt.Errorf("config: auth_order: %s is repeated", a)
		}
		seen[a] = true
	}
	order := c.AuthOrderOrDefault()
	if len(c.JWTIssuers) > 0 {
		if !slices.Contains(order, AuthJWT) {
			return fmt.Errorf("config: auth_order: jwt_issuers are configured but %s is not in auth_order", AuthJWT)
		}
		issuers, err := c.Issuers()
		if err != nil {
			return err
		}
		if _, err := identity.NewJWTAuthenticator(issuers); err != nil {
			return fmt.Errorf("config: jwt_issuers: %w", err)
		}
	}
	if len(c.ClientIdentities) > 0 {
		if c.ClientCA == "" {
			return errors.New("config: client_identities: need client_ca (and tls_cert, tls_key) to verify client certificates")
		}
		if !slices.Contains(order, AuthMTLS) {
			return fmt.Errorf("config: auth_order: client_identities are configured but %s is not in auth_order", AuthMTLS)
		}
		if _, err := identity.NewCertAuthenticator(c.CertIdentities()); err != nil {
			return fmt.Errorf("config: client_identities: %w", err)
		}
		for i, ci := range c.ClientIdentities {
			if err := validGroups(ci.Groups); err != nil {
				return fmt.Errorf("config: client_identities[%d] (%s): groups: %w", i, ci.Name, err)
			}
		}
	}
	return nil
}

// validGroups checks business group names as the identity package does
// for tokens: non-empty, at most identity.MaxIDLength bytes, valid UTF-8
// without control characters, none repeated.
func validGroups(groups []string) error {
	seen := make(map[string]bool, len(groups))
	for i, g := range groups {
		switch {
		case g == "":
			return fmt.Errorf("group %d is empty", i)
		case seen[g]:
			return fmt.Errorf("group %d is repeated", i)
		}
		if msg := textcheck.Problem(g, true, identity.MaxIDLength); msg != "" {
			return fmt.Errorf("group %d %s", i, msg)
		}
		seen[g] = true
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
