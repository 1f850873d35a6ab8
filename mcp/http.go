package mcp

import (
	"net/http"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// HandlerOptions configure [Proxy.Handler].
type HandlerOptions struct {
	// AllowedOrigins are the browser origins (scheme://host[:port]) that
	// may call the proxy; a request with any other Origin header is
	// refused with 403 (DNS-rebinding defence). Requests without an
	// Origin header (non-browser clients) are not affected.
	AllowedOrigins []string
	// MaxBodyBytes bounds a request body; 0 means 4 MiB.
	MaxBodyBytes int64
}

// Handler returns the Streamable HTTP handler of the proxy. Mount it
// behind authentication that puts the caller's token info in the request
// context (auth.RequireBearerToken of the SDK, as oarsd does), so that
// the Caller function finds it in RequestExtra.TokenInfo.
func (p *Proxy) Handler(o HandlerOptions) http.Handler {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 4 << 20
	}
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return p.server }, &sdk.StreamableHTTPOptions{
		Logger: p.log, MaxRequestBodyBytes: o.MaxBodyBytes,
		// The Origin allowlist below replaces the SDK's own localhost
		// protection, which would refuse proxies on other hosts.
		DisableLocalhostProtection: true,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if origin := r.Header.Get("Origin"); origin != "" && !slices.Contains(o.AllowedOrigins, strings.TrimSuffix(origin, "/")) {
			http.Error(w, `{"error":{"code":"forbidden_origin","message":"this Origin may not call the MCP endpoint"}}`, http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}
