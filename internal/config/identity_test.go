package config

import (
	"io"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

const identityYAML = `
client_ca: ca.pem
tls_cert: cert.pem
tls_key: key.pem
auth_order: [jwt, mtls, token]
jwt_issuers:
  - issuer: https://idp.example.com
    audience: oars
    jwks_url: https://idp.example.com/jwks.json
    algorithms: [EdDSA, ES256]
    leeway: 30s
    min_refresh: 10m
    roles_claim: oars_roles
    tenants_claim: oars_tenants
    agent_claim: oars_agent
    scope_claim: scp
    groups_claim: oars_groups
client_identities:
  - spiffe_id: spiffe://example.org/ns/billing
    name: billing
    roles: [agent]
    tenants: [acme]
    agent_id: billing-bot
    groups: [finance]
  - subject: CN=reporter,O=Acme
    name: reporter
    roles: [auditor]
    tenants: ["*"]
`

func TestIdentityKeysLoad(t *testing.T) {
	cfg, err := Load([]string{"--config", writeFile(t, "oarsd.yaml", identityYAML)}, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{AuthJWT, AuthMTLS, AuthToken}, cfg.AuthOrderOrDefault())

	issuers, err := cfg.Issuers()
	require.NoError(t, err)
	require.Len(t, issuers, 1)
	want := identity.Issuer{
		Issuer: "https://idp.example.com", Audience: "oars", JWKSURL: "https://idp.example.com/jwks.json",
		Algorithms: []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256}, Leeway: 30 * time.Second, MinRefresh: 10 * time.Minute,
		RolesClaim: "oars_roles", TenantsClaim: "oars_tenants", AgentClaim: "oars_agent", ScopeClaim: "scp", GroupsClaim: "oars_groups",
	}
	assert.Equal(t, want, issuers[0])

	ids := cfg.CertIdentities()
	require.Len(t, ids, 2)
	assert.Equal(t, identity.CertIdentity{
		SPIFFEID: "spiffe://example.org/ns/billing", Name: "billing", Roles: []identity.Role{identity.RoleAgent},
		Tenants: []string{"acme"}, AgentID: "billing-bot",
	}, ids[0])
	assert.Equal(t, "CN=reporter,O=Acme", ids[1].Subject)
	assert.Equal(t, []string{"finance"}, cfg.ClientIdentities[0].Groups)
}

func TestAuthOrderDefaultAndFlag(t *testing.T) {
	cfg, err := Load(nil, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{AuthMTLS, AuthJWT, AuthToken}, cfg.AuthOrderOrDefault())

	cfg, err = Load([]string{"--auth-order", "token,jwt"}, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{AuthToken, AuthJWT}, cfg.AuthOrderOrDefault())

	cfg, err = Load(nil, []string{"OARS_AUTH_ORDER=jwt,token"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, []string{AuthJWT, AuthToken}, cfg.AuthOrderOrDefault())
}

func TestIdentityValidation(t *testing.T) {
	issuer := func(mod func(*JWTIssuer)) []JWTIssuer {
		is := JWTIssuer{Issuer: "https://idp.example.com", Audience: "oars", JWKSURL: "https://idp.example.com/jwks.json"}
		if mod != nil {
			mod(&is)
		}
		return []JWTIssuer{is}
	}
	client := func(mod func(*ClientIdentity)) []ClientIdentity {
		ci := ClientIdentity{SPIFFEID: "spiffe://example.org/billing", Name: "billing", Roles: []string{"agent"}, Tenants: []string{"acme"}}
		if mod != nil {
			mod(&ci)
		}
		return []ClientIdentity{ci}
	}
	withTLS := func(c *Config) { c.TLSCert, c.TLSKey, c.ClientCA = "cert.pem", "key.pem", "ca.pem" }

	for _, tt := range []struct {
		name    string
		mod     func(*Config)
		wantErr string
	}{
		{"valid issuer", func(c *Config) { c.JWTIssuers = issuer(nil) }, ""},
		{"valid client identity", func(c *Config) { withTLS(c); c.ClientIdentities = client(nil) }, ""},
		{"unknown authenticator", func(c *Config) { c.AuthOrder = []string{"jwt", "saml"} }, "config: auth_order[1]: want mtls, jwt or token"},
		{"repeated authenticator", func(c *Config) { c.AuthOrder = []string{"jwt", "jwt"} }, "config: auth_order: jwt is repeated"},
		{"issuer not in order", func(c *Config) { c.JWTIssuers = issuer(nil); c.AuthOrder = []string{"token"} }, "config: auth_order: jwt_issuers are configured"},
		{"no audience", func(c *Config) { c.JWTIssuers = issuer(func(i *JWTIssuer) { i.Audience = "" }) }, "config: jwt_issuers: identity: jwt: issuer 0"},
		{"plain http jwks", func(c *Config) {
			c.JWTIssuers = issuer(func(i *JWTIssuer) { i.JWKSURL = "http://idp.example.com/jwks" })
		}, "config: jwt_issuers:"},
		{"hmac algorithm", func(c *Config) { c.JWTIssuers = issuer(func(i *JWTIssuer) { i.Algorithms = []string{"HS256"} }) }, "not allowed"},
		{"empty algorithm", func(c *Config) { c.JWTIssuers = issuer(func(i *JWTIssuer) { i.Algorithms = []string{""} }) }, "config: jwt_issuers[0]: algorithms[0]: empty"},
		{"negative leeway", func(c *Config) { c.JWTIssuers = issuer(func(i *JWTIssuer) { i.Leeway = -time.Second }) }, "leeway is negative"},
		{"client identities without client_ca", func(c *Config) { c.ClientIdentities = client(nil) }, "config: client_identities: need client_ca"},
		{"client identity not in order", func(c *Config) {
			withTLS(c)
			c.ClientIdentities = client(nil)
			c.AuthOrder = []string{"token"}
		}, "config: auth_order: client_identities are configured"},
		{"client identity with both matchers", func(c *Config) {
			withTLS(c)
			c.ClientIdentities = client(func(ci *ClientIdentity) { ci.Subject = "CN=x" })
		}, "config: client_identities: identity: cert: identity 0 (billing): exactly one of spiffe_id and subject"},
		{"bad spiffe id", func(c *Config) {
			withTLS(c)
			c.ClientIdentities = client(func(ci *ClientIdentity) { ci.SPIFFEID = "https://example.org/x" })
		}, "spiffe_id must start with"},
		{"unknown role", func(c *Config) {
			withTLS(c)
			c.ClientIdentities = client(func(ci *ClientIdentity) { ci.Roles = []string{"root"} })
		}, "config: client_identities:"},
		{"repeated group", func(c *Config) {
			withTLS(c)
			c.ClientIdentities = client(func(ci *ClientIdentity) { ci.Groups = []string{"finance", "finance"} })
		}, "config: client_identities[0] (billing): groups: group 1 is repeated"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			tt.mod(&cfg)
			err := cfg.Validate()
			if tt.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestUnknownIdentityKeysRefused(t *testing.T) {
	_, err := Load([]string{"--config", writeFile(t, "oarsd.yaml", "jwt_issuers:\n  - issuer: x\n    audiences: [oars]\n")}, nil, io.Discard)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "jwt_issuers")
	assert.Contains(t, err.Error(), "audiences")
}
