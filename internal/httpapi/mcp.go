package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/oarsdev/oars/identity"
)

// PrincipalKey is the key, in auth.TokenInfo.Extra of the MCP requests
// (RequestExtra.TokenInfo in tool handlers), of the *identity.Principal
// the server authenticated.
const PrincipalKey = "oars.principal"

type principalCtxKey struct{}

// mcpHandler wraps Config.MCP so that the MCP SDK sees the principal the
// server authenticated (any authenticator: token, JWT, mTLS) as the
// request's token info. The caller's own credentials are not passed on.
func mcpHandler(h http.Handler) http.Handler {
	verify := func(ctx context.Context, _ string, r *http.Request) (*auth.TokenInfo, error) {
		p, ok := r.Context().Value(principalCtxKey{}).(*identity.Principal)
		if !ok {
			return nil, auth.ErrInvalidToken
		}
		return &auth.TokenInfo{UserID: p.Subject, Expiration: time.Now().Add(time.Hour), Extra: map[string]any{PrincipalKey: p}}, nil
	}
	return auth.RequireBearerToken(verify, nil)(h)
}

// serveMCP serves the MCP proxy (Streamable HTTP) at /mcp to an
// authenticated caller allowed to submit actions.
func (s *server) serveMCP(w http.ResponseWriter, r *http.Request, p *identity.Principal) error {
	if s.mcp == nil {
		return errorf(http.StatusNotImplemented, codeNotImplemented, "this server has no MCP proxy configured")
	}
	r = r.WithContext(context.WithValue(r.Context(), principalCtxKey{}, p))
	r.Header = r.Header.Clone()
	r.Header.Set("Authorization", "Bearer authenticated-by-oarsd")
	s.mcp.ServeHTTP(w, r)
	return nil
}
