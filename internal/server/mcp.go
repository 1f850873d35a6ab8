package server

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/internal/textcheck"
	"github.com/oarsdev/oars/mcp"
	"github.com/oarsdev/oars/receipt"
)

// Headers an MCP client may send to name the tenant, agent and user of
// its calls when its credential does not fix them.
const (
	HeaderTenant = "X-OARS-Tenant"
	HeaderAgent  = "X-OARS-Agent"
	HeaderUser   = "X-OARS-User"
)

// mcpStateKey derives the key authenticating MCP approval request states
// from the step-up key, which every replica shares.
func mcpStateKey(stepUpKey []byte) ([]byte, error) {
	return hkdf.Key(sha256.New, stepUpKey, nil, "oars mcp request state v1", 32)
}

// newMCP starts the MCP proxy of cfg.MCPConfig, or returns nil.
func (s *Server) newMCP(ctx context.Context, cfg *config.Config, stateKey []byte) (*mcp.Proxy, http.Handler, error) {
	if cfg.MCPConfig == "" {
		return nil, nil, nil
	}
	mc, err := mcp.LoadConfig(cfg.MCPConfig)
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	v, err := openVault(ctx, cfg, s.store, s.log)
	if err != nil {
		return nil, nil, err
	}
	base := apiBase(cfg)
	px, err := mcp.New(ctx, mc, mcp.Options{
		Guard:        s.guard,
		Caller:       mcpCaller,
		Secrets:      v,
		StateKey:     stateKey,
		ApprovalURL:  func(id string) string { return base + "/v1/approvals/" + id },
		ApprovalWait: cfg.MCPApprovalWait,
		Logger:       s.log,
		Version:      Version,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	s.log.InfoContext(ctx, "MCP proxy serving at /mcp", slog.Int("upstreams", len(mc.Upstreams)))
	h := px.Handler(mcp.HandlerOptions{AllowedOrigins: cfg.MCPAllowedOrigins, MaxBodyBytes: cfg.MaxBodyBytes})
	s.mcpStop = make(chan struct{})
	stop := s.mcpStop
	// Standalone SSE streams (GET) last as long as the client wants; they
	// end when shutdown starts, so that it is not held up by them.
	return px, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			sctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			go func() {
				select {
				case <-stop:
					cancel()
				case <-sctx.Done():
				}
			}()
			r = r.WithContext(sctx)
		}
		h.ServeHTTP(w, r)
	}), nil
}

// mcpCaller is the caller of an MCP request: the principal oarsd
// authenticated, in the tenant, agent and user its credential fixes or
// the X-OARS-* headers name (within what the credential allows).
func mcpCaller(_ context.Context, extra *sdk.RequestExtra) (*mcp.Caller, error) {
	if extra == nil || extra.TokenInfo == nil {
		return nil, errors.New("unauthenticated")
	}
	p, ok := extra.TokenInfo.Extra[httpapi.PrincipalKey].(*identity.Principal)
	if !ok {
		return nil, errors.New("unauthenticated")
	}
	h := extra.Header
	tenant := h.Get(HeaderTenant)
	if tenant == "" && len(p.Tenants) == 1 && p.Tenants[0] != identity.AllTenants {
		tenant = p.Tenants[0]
	}
	agent := p.AgentID
	if agent == "" {
		agent = h.Get(HeaderAgent)
	}
	if agent == "" {
		agent = p.Subject
	}
	user := p.UserID
	if user == "" {
		user = h.Get(HeaderUser)
	}
	if user == "" {
		user = p.Subject
	}
	for _, f := range []struct{ name, value, header string }{
		{"tenant", tenant, HeaderTenant}, {"agent", agent, HeaderAgent}, {"user", user, HeaderUser},
	} {
		if pr := textcheck.Problem(f.value, true, oars.MaxIDLength); pr != "" {
			return nil, fmt.Errorf("%s %s (send the %s header)", f.name, pr, f.header)
		}
	}
	switch {
	case !p.InTenant(tenant):
		return nil, errors.New("the credential does not allow this tenant")
	case !p.MaySeeAgent(agent):
		return nil, errors.New("the credential is bound to another agent")
	case p.UserID != "" && user != p.UserID:
		return nil, errors.New("the credential acts for another user")
	}
	c := &mcp.Caller{TenantID: tenant, AgentID: agent, UserID: user, Allows: p.Allows}
	if p.UserID != "" {
		c.Roles = slices.Clone(p.Groups)
	}
	for _, hop := range p.Delegation {
		c.Delegation = append(c.Delegation, receipt.DelegationHop{Subject: hop.Subject, Issuer: hop.Issuer, Scope: slices.Clone(hop.Scope)})
	}
	return c, nil
}
