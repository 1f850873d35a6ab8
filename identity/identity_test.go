package identity_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

func TestHashToken(t *testing.T) {
	tests := []struct {
		secret, want string
	}{
		{"abc", "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		t.Run(tt.secret, func(t *testing.T) {
			if got := identity.HashToken(tt.secret); got != tt.want {
				t.Errorf("HashToken(%q) = %s, want %s", tt.secret, got, tt.want)
			}
		})
	}
}

func TestNewToken(t *testing.T) {
	format := regexp.MustCompile(`^oars_[a-z2-7]{52}$`)
	seen := map[string]bool{}
	for range 50 {
		secret, err := identity.NewToken()
		require.NoError(t, err)
		assert.Regexp(t, format, secret)
		assert.False(t, seen[secret], "NewToken() repeated %s", secret)
		seen[secret] = true
		_, err = identity.BearerToken(bearerRequest("Bearer " + secret))
		assert.NoError(t, err, "BearerToken(NewToken()) must accept its own tokens")
	}
}

func validToken(name string) identity.Token {
	return identity.Token{
		Name:    name,
		Hash:    identity.HashToken("secret-of-" + name),
		Roles:   []identity.Role{identity.RoleOperator},
		Tenants: []string{"acme"},
	}
}

func TestNewTokenSetValidation(t *testing.T) {
	mod := func(f func(*identity.Token)) []identity.Token {
		tok := validToken("ci-bot")
		f(&tok)
		return []identity.Token{tok}
	}
	tests := []struct {
		name    string
		tokens  []identity.Token
		wantErr string // "" = valid
	}{
		{"empty set", nil, ""},
		{"valid", []identity.Token{validToken("a"), validToken("b")}, ""},
		{"email name", mod(func(t *identity.Token) { t.Name = "alice@example.com" }), ""},
		{"all tenants", mod(func(t *identity.Token) { t.Tenants = []string{"*"} }), ""},
		{"bound agent", mod(func(t *identity.Token) { t.Roles = []identity.Role{identity.RoleAgent}; t.AgentID = "bot-1" }), ""},
		{"duplicate name", []identity.Token{validToken("a"), {Name: "a", Hash: identity.HashToken("x"), Roles: []identity.Role{identity.RoleAdmin}, Tenants: []string{"*"}}}, "duplicate name"},
		{"duplicate hash", []identity.Token{validToken("a"), {Name: "b", Hash: validToken("a").Hash, Roles: []identity.Role{identity.RoleAdmin}, Tenants: []string{"*"}}}, "same hash"},
		{"empty name", mod(func(t *identity.Token) { t.Name = "" }), "name is required"},
		{"name with space", mod(func(t *identity.Token) { t.Name = "ci bot" }), "name must be"},
		{"name starting with dash", mod(func(t *identity.Token) { t.Name = "-x" }), "name must be"},
		{"name too long", mod(func(t *identity.Token) { t.Name = strings.Repeat("a", 129) }), "longer than"},
		{"hash without prefix", mod(func(t *identity.Token) { t.Hash = strings.TrimPrefix(t.Hash, "sha256:") }), `must start with "sha256:"`},
		{"hash uppercase", mod(func(t *identity.Token) { t.Hash = "sha256:" + strings.ToUpper(t.Hash[7:]) }), "lowercase hex"},
		{"hash short", mod(func(t *identity.Token) { t.Hash = t.Hash[:70] }), "64 lowercase hex"},
		{"hash not hex", mod(func(t *identity.Token) { t.Hash = "sha256:" + strings.Repeat("g", 64) }), "64 lowercase hex"},
		{"no roles", mod(func(t *identity.Token) { t.Roles = nil }), "at least one"},
		{"unknown role", mod(func(t *identity.Token) { t.Roles = []identity.Role{"root"} }), `unknown role "root"`},
		{"repeated role", mod(func(t *identity.Token) { t.Roles = []identity.Role{"admin", "admin"} }), "repeated"},
		{"no tenants", mod(func(t *identity.Token) { t.Tenants = nil }), "tenants: at least one"},
		{"empty tenant", mod(func(t *identity.Token) { t.Tenants = []string{""} }), "entry 0 is empty"},
		{"star with others", mod(func(t *identity.Token) { t.Tenants = []string{"*", "acme"} }), "only entry"},
		{"repeated tenant", mod(func(t *identity.Token) { t.Tenants = []string{"a", "a"} }), "entry 1 repeated"},
		{"control char tenant", mod(func(t *identity.Token) { t.Tenants = []string{"a\nb"} }), "control character"},
		{"agent id without agent role", mod(func(t *identity.Token) { t.AgentID = "bot-1" }), `needs role "agent"`},
		{"agent id too long", mod(func(t *identity.Token) { t.Roles = []identity.Role{"agent"}; t.AgentID = strings.Repeat("a", 257) }), "agent_id is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := identity.NewTokenSet(tt.tokens)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.Equal(t, len(tt.tokens), s.Len())
				return
			}
			require.Error(t, err, "NewTokenSet(%s) = nil error, want %q", tt.name, tt.wantErr)
			assert.Contains(t, err.Error(), tt.wantErr)
			for _, tok := range tt.tokens {
				if len(tok.Hash) > 20 {
					assert.NotContains(t, err.Error(), tok.Hash[7:20], "error leaks the hash")
				}
			}
		})
	}
}

func bearerRequest(auth ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, a := range auth {
		r.Header.Add("Authorization", a)
	}
	return r
}

func TestTokenSetAuthenticate(t *testing.T) {
	const secret = "oars_correcthorsebatterystaple"
	set, err := identity.NewTokenSet([]identity.Token{
		{Name: "ci-bot", Hash: identity.HashToken(secret), Roles: []identity.Role{identity.RoleAgent}, Tenants: []string{"acme", "globex"}, AgentID: "bot-1"},
		{Name: "root", Hash: identity.HashToken("oars_root"), Roles: []identity.Role{identity.RoleAdmin}, Tenants: []string{"*"}},
	})
	require.NoError(t, err)
	tests := []struct {
		name        string
		auth        []string
		wantSubject string
		wantErr     error
	}{
		{"valid", []string{"Bearer " + secret}, "ci-bot", nil},
		{"scheme case-insensitive", []string{"bearer " + secret}, "ci-bot", nil},
		{"several spaces", []string{"Bearer   " + secret}, "ci-bot", nil},
		{"other token", []string{"Bearer oars_root"}, "root", nil},
		{"missing", nil, "", identity.ErrNoCredentials},
		{"unknown token", []string{"Bearer oars_nope"}, "", identity.ErrInvalidCredentials},
		{"basic scheme", []string{"Basic " + secret}, "", identity.ErrInvalidCredentials},
		{"no scheme", []string{secret}, "", identity.ErrInvalidCredentials},
		{"empty bearer", []string{"Bearer "}, "", identity.ErrInvalidCredentials},
		{"bearer only", []string{"Bearer"}, "", identity.ErrInvalidCredentials},
		{"two headers", []string{"Bearer " + secret, "Bearer " + secret}, "", identity.ErrInvalidCredentials},
		{"bad chars", []string{"Bearer " + secret + "!"}, "", identity.ErrInvalidCredentials},
		{"space inside", []string{"Bearer a b"}, "", identity.ErrInvalidCredentials},
		{"only padding", []string{"Bearer ==="}, "", identity.ErrInvalidCredentials},
		{"too long", []string{"Bearer " + strings.Repeat("a", identity.MaxSecretLength+1)}, "", identity.ErrInvalidCredentials},
		{"prefix of secret", []string{"Bearer " + secret[:len(secret)-1]}, "", identity.ErrInvalidCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := set.Authenticate(context.Background(), bearerRequest(tt.auth...))
			if tt.wantErr != nil {
				require.Error(t, err)
				assert.True(t, errors.Is(err, tt.wantErr), "Authenticate() error = %v, want %v", err, tt.wantErr)
				assert.Nil(t, p)
				assert.NotContains(t, err.Error(), secret)
				assert.NotContains(t, err.Error(), "oars_")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantSubject, p.Subject)
		})
	}

	t.Run("principal is a copy", func(t *testing.T) {
		p, err := set.Authenticate(context.Background(), bearerRequest("Bearer "+secret))
		require.NoError(t, err)
		assert.Equal(t, &identity.Principal{Subject: "ci-bot", Roles: []identity.Role{"agent"}, Tenants: []string{"acme", "globex"}, AgentID: "bot-1"}, p)
		p.Tenants[0] = "evil"
		p.Roles[0] = identity.RoleAdmin
		again, err := set.Authenticate(context.Background(), bearerRequest("Bearer "+secret))
		require.NoError(t, err)
		assert.Equal(t, []string{"acme", "globex"}, again.Tenants)
		assert.Equal(t, []identity.Role{"agent"}, again.Roles)
	})
}

func TestNewTokenSetCopies(t *testing.T) {
	tokens := []identity.Token{validToken("a")}
	set, err := identity.NewTokenSet(tokens)
	require.NoError(t, err)
	tokens[0].Tenants[0] = "evil"
	tokens[0].Roles[0] = identity.RoleAdmin
	p, err := set.Authenticate(context.Background(), bearerRequest("Bearer secret-of-a"))
	require.NoError(t, err)
	assert.Equal(t, []string{"acme"}, p.Tenants)
	assert.Equal(t, []identity.Role{identity.RoleOperator}, p.Roles)
}

func TestPrincipal(t *testing.T) {
	all := &identity.Principal{Subject: "root", Roles: []identity.Role{identity.RoleAdmin}, Tenants: []string{"*"}}
	some := &identity.Principal{Subject: "ops", Roles: []identity.Role{identity.RoleOperator, identity.RoleAuditor}, Tenants: []string{"acme"}, AgentID: "bot"}
	var none *identity.Principal
	tests := []struct {
		name string
		got  bool
		want bool
	}{
		{"all.HasRole(admin)", all.HasRole(identity.RoleAdmin), true},
		{"all.HasRole(agent)", all.HasRole(identity.RoleAgent), false},
		{"some.HasAnyRole(admin, auditor)", some.HasAnyRole(identity.RoleAdmin, identity.RoleAuditor), true},
		{"some.HasAnyRole(agent)", some.HasAnyRole(identity.RoleAgent), false},
		{"nil.HasRole(admin)", none.HasRole(identity.RoleAdmin), false},
		{"all.InTenant(x)", all.InTenant("x"), true},
		{"all.InTenant(\"\")", all.InTenant(""), true},
		{"some.InTenant(acme)", some.InTenant("acme"), true},
		{"some.InTenant(globex)", some.InTenant("globex"), false},
		{"some.InTenant(\"\")", some.InTenant(""), false},
		{"some.InTenant(*)", some.InTenant("*"), false},
		{"nil.InTenant(acme)", none.InTenant("acme"), false},
		{"all.AllTenants()", all.AllTenants(), true},
		{"some.AllTenants()", some.AllTenants(), false},
		{"all.MaySeeAgent(x)", all.MaySeeAgent("x"), true},
		{"some.MaySeeAgent(bot)", some.MaySeeAgent("bot"), true},
		{"some.MaySeeAgent(other)", some.MaySeeAgent("other"), false},
		{"nil.MaySeeAgent(x)", none.MaySeeAgent("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestRoles(t *testing.T) {
	for _, r := range identity.Roles() {
		assert.True(t, r.Valid(), "Role(%q).Valid() = false, want true", r)
	}
	assert.False(t, identity.Role("root").Valid())
	assert.False(t, identity.Role("").Valid())
}

func TestAuthenticatorFunc(t *testing.T) {
	want := &identity.Principal{Subject: "x"}
	var a identity.Authenticator = identity.AuthenticatorFunc(func(ctx context.Context, r *http.Request) (*identity.Principal, error) {
		return want, nil
	})
	got, err := a.Authenticate(context.Background(), bearerRequest())
	require.NoError(t, err)
	assert.Same(t, want, got)
}

func FuzzAuthenticate(f *testing.F) {
	const secret = "oars_fuzzsecret"
	set, err := identity.NewTokenSet([]identity.Token{{Name: "a", Hash: identity.HashToken(secret), Roles: []identity.Role{"admin"}, Tenants: []string{"*"}}})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"Bearer " + secret, "bearer x", "Basic abc", "", "Bearer ", "Bearer a=b", "Bearer ===", "Bearer \xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := bearerRequest()
		r.Header["Authorization"] = []string{header}
		p, err := set.Authenticate(context.Background(), r)
		if err == nil {
			if p == nil || p.Subject != "a" {
				t.Fatalf("Authenticate(%q) = %+v, nil", header, p)
			}
			return
		}
		if !errors.Is(err, identity.ErrInvalidCredentials) && !errors.Is(err, identity.ErrNoCredentials) {
			t.Fatalf("Authenticate(%q) error = %v, want a credentials error", header, err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("Authenticate(%q) error leaks the secret", header)
		}
	})
}
