package identity

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// Errors of delegation chains, wrapped together with
// [ErrInvalidCredentials]. Test for them with errors.Is.
var (
	// ErrDelegationWidens: an actor in a delegation chain claims a scope
	// or lifetime wider than the actor before it was granted.
	ErrDelegationWidens = errors.New("identity: delegation widens")
	// ErrDelegationTooDeep: a delegation chain has more actors than
	// allowed (see [WithMaxDelegationDepth]).
	ErrDelegationTooDeep = errors.New("identity: delegation chain too deep")
)

// Hop is one actor in a delegation chain: an agent (or service) acting
// for the user, on a grant from the actor before it.
type Hop struct {
	// Subject names the actor (the act claim's "sub").
	Subject string
	// Issuer is the act claim's "iss", if it has one.
	Issuer string
	// Scope is the scope the actor holds: its act claim's scope, or the
	// scope of the actor before it if the act has none. It is within the
	// scope of every earlier actor.
	Scope []string
	// ExpiresAt is when the actor's grant ends: its act claim's "exp", or
	// that of the actor before it (the token's exp for the first actor).
	ExpiresAt time.Time
}

// delegationGrant is what the user granted the first actor, and the
// limits of the chain.
type delegationGrant struct {
	scopeClaim string
	scope      []string
	expiresAt  time.Time
	now        time.Time
	leeway     time.Duration
	maxDepth   int
}

// delegationChain parses the act claim act (RFC 8693 §4.1) and checks
// that each actor, from the first (innermost act) to the current one
// (outermost act), only narrows the scope and lifetime of the actor
// before it. It returns the hops current actor first. Its errors name
// hops by their position from the user (hop 1 is the first actor) and
// subject.
func delegationChain(act json.RawMessage, g delegationGrant) ([]Hop, error) {
	var acts []map[string]json.RawMessage // outermost first
	for raw := act; raw != nil; {
		if len(acts) == g.maxDepth {
			return nil, fmt.Errorf("%w: more than %d actors", ErrDelegationTooDeep, g.maxDepth)
		}
		var claims map[string]json.RawMessage
		if err := json.Unmarshal(raw, &claims); err != nil || claims == nil {
			return nil, errors.New(`malformed "act" claim`)
		}
		acts = append(acts, claims)
		raw = claims["act"]
		if string(raw) == "null" {
			raw = nil
		}
	}

	hops := make([]Hop, len(acts))
	scope, exp := g.scope, g.expiresAt
	for i := len(acts) - 1; i >= 0; i-- {
		n := len(acts) - i // position from the user
		c := acts[i]
		sub, present, err := stringClaim(c, "sub")
		if err != nil || !present {
			return nil, fmt.Errorf(`delegation hop %d has no subject ("sub")`, n)
		}
		if err := validID(sub); err != nil {
			return nil, fmt.Errorf("delegation hop %d subject %w", n, err)
		}
		name := fmt.Sprintf("delegation hop %d (%q)", n, truncate(sub))
		iss, _, err := stringClaim(c, "iss")
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if iss != "" {
			if err := validID(iss); err != nil {
				return nil, fmt.Errorf("%s: issuer %w", name, err)
			}
		}
		hopScope, hasScope, err := scopeClaim(c, g.scopeClaim)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if hasScope {
			if !ScopeSubset(hopScope, scope) {
				return nil, fmt.Errorf("%w: %s: scope is not within the scope granted to it", ErrDelegationWidens, name)
			}
			scope = hopScope
		}
		if raw, ok := c["exp"]; ok && string(raw) != "null" {
			var d jwt.NumericDate
			if err := json.Unmarshal(raw, &d); err != nil {
				return nil, fmt.Errorf(`%s: malformed "exp"`, name)
			}
			t := d.Time().UTC()
			if t.After(exp) {
				return nil, fmt.Errorf("%w: %s: expires after the grant it acts on", ErrDelegationWidens, name)
			}
			exp = t
		}
		if g.now.Add(-g.leeway).After(exp) {
			return nil, fmt.Errorf("%s: expired", name)
		}
		hops[i] = Hop{Subject: sub, Issuer: iss, Scope: slices.Clone(scope), ExpiresAt: exp}
	}
	return hops, nil
}
