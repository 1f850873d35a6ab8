package identity

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// Chain returns an authenticator that tries auths in order and returns
// the principal of the first that accepts the request.
//
// An authenticator whose error wraps [ErrNoCredentials] found no
// credentials it understands, and the next one is tried. Any other error
// ([ErrInvalidCredentials], [ErrJWKSUnavailable], ctx's error) stops the
// chain and is returned, so that a request with bad credentials of one
// kind is never let in by another authenticator (fail closed). If every
// authenticator finds no credentials, or auths is empty, the error wraps
// [ErrNoCredentials].
//
// Order matters where two authenticators read the same header: a
// [TokenSet] treats every bearer token as one of its secrets and refuses
// unknown ones, so put a [JWTAuthenticator] (which passes on bearer
// tokens that are not JWTs) before it. A [CertAuthenticator] reads only
// the TLS connection; putting it first makes a client certificate win
// over an Authorization header.
//
// An authenticator that returns neither a principal nor an error stops
// the chain with an error wrapping [ErrInvalidCredentials].
func Chain(auths ...Authenticator) Authenticator {
	auths = append([]Authenticator(nil), auths...)
	return AuthenticatorFunc(func(ctx context.Context, r *http.Request) (*Principal, error) {
		for i, a := range auths {
			p, err := a.Authenticate(ctx, r)
			switch {
			case err == nil && p != nil:
				return p, nil
			case err == nil:
				return nil, fmt.Errorf("identity: chain: %w: authenticator %d returned no principal", ErrInvalidCredentials, i)
			case errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrInvalidCredentials):
				continue
			default:
				return nil, err
			}
		}
		return nil, fmt.Errorf("identity: chain: %w", ErrNoCredentials)
	})
}
