// Package identity says who is calling: principals, their roles and tenants,
// and the authenticators that turn an HTTP request's credentials into a
// [Principal].
//
// # Principals
//
// A [Principal] is an authenticated caller: a Subject (a name that may be
// logged and recorded as the actor of events, never a secret), the [Role]
// values it holds, the tenants it may act in or read ("*" for all), its
// business groups (such as "finance-approver", the approver roles policies
// name; not API roles), and, for agent credentials, the agent it is bound
// to. Servers decide what a caller
// may do from its roles (which routes) and its tenants (which data); a
// tenant the caller cannot see is treated as one that does not exist.
//
// # Authenticators
//
// An [Authenticator] reads the credentials of a request. It returns an
// error wrapping [ErrNoCredentials] when the request carries none, and
// [ErrInvalidCredentials] when they are malformed or unknown; servers answer
// both with 401. [AuthenticatorFunc] adapts a function.
//
// [TokenSet] authenticates static API tokens sent as "Authorization: Bearer
// <secret>". Only the SHA-256 hash of each secret is configured (see
// [HashToken]); [NewToken] generates secrets.
//
// [JWTAuthenticator] authenticates JWT bearer tokens signed by configured
// [Issuer] values (OIDC providers, token exchange services), with keys
// configured inline or fetched from a JWKS URL, cached and refreshed when a
// token names an unknown key. Algorithms are pinned per issuer (never
// "none", never HMAC), and iss, aud, exp, nbf and iat are checked.
//
// [CertAuthenticator] maps TLS client certificates, already verified by the
// TLS layer against the client CA, to workload identities by SPIFFE ID or
// subject.
//
// [Chain] tries several authenticators in a configured order: an
// authenticator that finds no credentials it understands passes the request
// on; one that finds invalid credentials stops the chain.
//
// # Delegation
//
// An agent acting for a user presents a delegation token (OAuth 2.0 Token
// Exchange, RFC 8693): its sub is the user and its act claim the current
// actor, with nested act claims for the earlier actors. [JWTAuthenticator]
// verifies the token, checks that every hop only narrows the scope and
// lifetime granted to it, and returns a principal whose UserID is the user,
// AgentID the current actor, [Principal.Delegation] the chain of [Hop]
// values and Scopes the effective scope. A hop that widens its scope or
// lifetime is refused with [ErrDelegationWidens].
//
// # Scopes
//
// A scope is "tool:operation", either side a pattern in which "*" matches
// any run of characters, or "*" alone for everything: "payments:refund",
// "crm:*", "*:read". [ScopeAllows] checks a tool call against scopes,
// [ScopeSubset] whether scopes are within others, and [Principal.Allows]
// whether a principal's scopes allow a call.
//
// # Passports
//
// A [Passport] is the Open Agent Passport (OAP) of one agent of a tenant:
// its owner, [PassportStatus], assurance level and [Capability] values.
// A [PassportStore] keeps them ([MemPassportStore]; the SQLite and
// PostgreSQL stores of this module), with optimistic concurrency on
// Passport.Version and OAP's status machine ([CanTransition]).
// [PassportCache] caches lookups for the Guard (oars.WithPassports), and
// [PassportCache.Follow] drops cached entries as other replicas announce
// changes, so that a suspension (the kill switch) applies everywhere at
// once. Package passporttest is the stores' conformance suite.
package identity

import (
	"context"
	"errors"
	"net/http"
	"slices"
)

// Errors returned (wrapped) by authenticators. Test for them with
// errors.Is; messages never include the credentials.
var (
	// ErrNoCredentials: the request carries no credentials.
	ErrNoCredentials = errors.New("identity: no credentials")
	// ErrInvalidCredentials: the request's credentials are malformed,
	// unknown, or not accepted.
	ErrInvalidCredentials = errors.New("identity: invalid credentials")
)

// Role names what a principal may do. A server maps each of its operations
// to the roles allowed to perform it.
type Role string

// The roles.
const (
	// RoleAdmin may do everything, including reloading policies.
	RoleAdmin Role = "admin"
	// RoleOperator runs the system: submits actions, reads receipts and
	// policies, reads metrics.
	RoleOperator Role = "operator"
	// RoleAuditor reads receipts, ledger entries, proofs and policies.
	RoleAuditor Role = "auditor"
	// RoleAgent submits actions (for its bound agent, if it has one) and
	// reads their receipts.
	RoleAgent Role = "agent"
	// RoleApprover decides actions held for approval.
	RoleApprover Role = "approver"
)

// Roles returns every role, in a fixed order.
func Roles() []Role {
	return []Role{RoleAdmin, RoleOperator, RoleAuditor, RoleAgent, RoleApprover}
}

// Valid reports whether r is one of the roles of this package.
func (r Role) Valid() bool {
	return slices.Contains(Roles(), r)
}

// AllTenants is the tenant entry that grants access to every tenant.
const AllTenants = "*"

// Principal is an authenticated caller. Authenticators return a fresh
// Principal per call, which the caller may keep and modify.
type Principal struct {
	// Subject names the caller (for a token, its configured name). It goes
	// into logs and into the actor of recorded events; it is never a
	// secret.
	Subject string
	// Roles are the roles the caller holds.
	Roles []Role
	// Tenants are the tenants the caller may act in and read;
	// [AllTenants] ("*") means every tenant.
	Tenants []string
	// Groups are the caller's business groups, such as
	// "finance-approver": names that policies use for approver roles,
	// distinct from the API [Role] values. Each is a non-empty identifier
	// of at most [MaxIDLength] bytes without control characters, and none
	// repeats.
	Groups []string
	// AgentID, if not empty, is the only agent the caller may act as or
	// read the actions of. Empty means any agent of its tenants. For a
	// delegation token it is the current actor.
	AgentID string
	// Kind says what the caller is: a user, an agent or a service
	// (workload). Empty when the authenticator does not know (static API
	// tokens).
	Kind Kind
	// UserID, if not empty, is the user the caller acts for: the user
	// itself for a user's token, the token's subject for a delegation
	// token.
	UserID string
	// Delegation is the chain of actors acting for UserID, outermost
	// (current) actor first, as in RFC 8693 and in the receipt's
	// principal.delegation: Delegation[0] is the caller, the last hop the
	// actor the user delegated to directly. Empty when the caller acts
	// for itself.
	Delegation []Hop
	// Scopes, if not nil, limit the tool calls the caller may make (see
	// [Principal.Allows]); for a delegation token they are the scopes of
	// the current actor, narrowed along the chain. Nil means the caller
	// is not limited by scope; a non-nil empty slice allows nothing.
	Scopes []string
}

// Kind is the kind of a principal.
type Kind string

// The kinds of principal.
const (
	// KindUser is a person.
	KindUser Kind = "user"
	// KindAgent is an AI agent, possibly acting for a user.
	KindAgent Kind = "agent"
	// KindService is a workload: a service or job identified by its
	// credentials, such as a SPIFFE ID.
	KindService Kind = "service"
)

// Valid reports whether k is one of the kinds of this package.
func (k Kind) Valid() bool {
	return k == KindUser || k == KindAgent || k == KindService
}

// Allows reports whether p's scopes allow operation on tool toolID: true
// if p.Scopes is nil (p is not limited by scope), otherwise
// [ScopeAllows](p.Scopes, toolID, operation). A nil p allows nothing.
func (p *Principal) Allows(toolID, operation string) bool {
	if p == nil {
		return false
	}
	if p.Scopes == nil {
		return true
	}
	return ScopeAllows(p.Scopes, toolID, operation)
}

// HasRole reports whether p holds role r. A nil p holds no role.
func (p *Principal) HasRole(r Role) bool {
	return p != nil && slices.Contains(p.Roles, r)
}

// HasAnyRole reports whether p holds at least one of roles.
func (p *Principal) HasAnyRole(roles ...Role) bool {
	for _, r := range roles {
		if p.HasRole(r) {
			return true
		}
	}
	return false
}

// AllTenants reports whether p may see every tenant.
func (p *Principal) AllTenants() bool {
	return p != nil && slices.Contains(p.Tenants, AllTenants)
}

// InTenant reports whether p may act in or read tenant tenantID: whether
// its tenants include tenantID or [AllTenants]. The empty tenant id (an
// entry that belongs to no tenant) is visible only to principals of all
// tenants.
func (p *Principal) InTenant(tenantID string) bool {
	if p == nil {
		return false
	}
	if p.AllTenants() {
		return true
	}
	return tenantID != "" && slices.Contains(p.Tenants, tenantID)
}

// MaySeeAgent reports whether p may act as or read the actions of agent
// agentID: always, unless p is bound to another agent.
func (p *Principal) MaySeeAgent(agentID string) bool {
	return p != nil && (p.AgentID == "" || p.AgentID == agentID)
}

// Authenticator reads the credentials of an HTTP request.
//
// Authenticate returns the caller's principal, or an error wrapping
// [ErrNoCredentials] if r carries no credentials the authenticator
// understands, [ErrInvalidCredentials] if they are malformed or not valid,
// or another error if it could not decide (a key server unreachable, ctx
// done); servers must then refuse the request. It must not read r's body,
// must be safe for concurrent use, and must never put credentials in its
// errors.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}

// AuthenticatorFunc adapts a function to [Authenticator].
type AuthenticatorFunc func(ctx context.Context, r *http.Request) (*Principal, error)

// Authenticate returns f(ctx, r).
func (f AuthenticatorFunc) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	return f(ctx, r)
}
