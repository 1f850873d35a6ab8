// Package egress makes outbound connections for connectors safe: every
// connection's address is checked just before it is dialled, so loopback,
// private, link-local, metadata and other internal ranges are refused
// unless a tool is explicitly allowed to reach them, including after
// redirects and DNS rebinding.
package egress

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"time"
)

// ErrRefused is wrapped by every error for a destination the policy
// refuses.
var ErrRefused = errors.New("egress: destination refused")

// Resolver looks up the addresses of a host name; *net.Resolver
// implements it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Policy says where outbound connections may go. The zero value refuses
// every internal range and resolves with net.DefaultResolver.
type Policy struct {
	// Allow lists prefixes reachable even though they are in a refused
	// range (for example 127.0.0.1/32 for a tool on the same host).
	Allow []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds one connection attempt; 0 means 10s.
	DialTimeout time.Duration
}

// CheckAddr returns nil if a may be dialled, or an error wrapping
// [ErrRefused] that names the refused range.
func (p Policy) CheckAddr(a netip.Addr) error { panic("egress: not implemented yet") }

// Transport returns an HTTP transport that dials only checked addresses
// (no proxy from the environment).
func (p Policy) Transport() *http.Transport { panic("egress: not implemented yet") }

// Client returns an HTTP client over [Policy.Transport] whose redirects are
// checked too (at most 5, http and https only), with the given overall
// timeout per request (0: none).
func (p Policy) Client(timeout time.Duration) *http.Client { panic("egress: not implemented yet") }
