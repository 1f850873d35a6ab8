// Package egress makes outbound connections for connectors safe: every
// connection's address is checked just before it is dialled, so loopback,
// private, link-local, metadata and other internal ranges are refused
// unless a tool is explicitly allowed to reach them, including after
// redirects and DNS rebinding.
//
// # Policy
//
// A [Policy] lists the prefixes a tool may reach even though they are
// internal ([Policy.Allow], parsed with [ParseAllow]); everything else in a
// refused range fails with an error wrapping [ErrRefused], in practice a
// [*RefusedError] naming the host, the address and the range.
// [Policy.CheckAddr] checks one address.
//
// # Refused ranges
//
// Unspecified (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1), private
// (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7, fec0::/10),
// link-local (169.254.0.0/16, fe80::/10), cloud metadata endpoints
// (169.254.169.254, 100.100.100.200, fd00:ec2::254), shared address space
// (100.64.0.0/10), IETF protocol assignments (192.0.0.0/24), benchmarking
// (198.18.0.0/15, 2001:2::/48), multicast (224.0.0.0/4, ff00::/8),
// reserved (240.0.0.0/4) and broadcast, documentation (192.0.2.0/24,
// 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32, 3fff::/20), discard-only
// (100::/64), deprecated IPv4-compatible (::/96) and local-use NAT64
// (64:ff9b:1::/48) addresses. An IPv4-mapped IPv6 address is checked as
// its IPv4 address; a NAT64 (64:ff9b::/96) or 6to4 (2002::/16) address is
// refused as well when the IPv4 address it embeds is in a refused range.
//
// # HTTP
//
// [Policy.Transport] resolves host names itself, checks every address of
// the answer, and dials only the checked addresses, so a name cannot be
// re-resolved to a different address between the check and the
// connection (DNS rebinding). A socket control hook checks the address
// being connected once more. [Policy.Client] adds redirect checks. The
// transport never uses a proxy, since a proxy would make the connection
// on our behalf to an unchecked destination.
package egress

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// ErrRefused is wrapped by every error for a destination the policy
// refuses.
var ErrRefused = errors.New("egress: destination refused")

// Resolver looks up the addresses of a host name; *net.Resolver
// implements it. LookupNetIP is called with network "ip", "ip4" or "ip6"
// and a host name (never an address literal); it returns the addresses in
// preference order, or an error. It may be called concurrently.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// ResolverFunc adapts a function to [Resolver].
type ResolverFunc func(ctx context.Context, network, host string) ([]netip.Addr, error)

// LookupNetIP returns f(ctx, network, host).
func (f ResolverFunc) LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error) {
	return f(ctx, network, host)
}

// Policy says where outbound connections may go. The zero value refuses
// every internal range and resolves with net.DefaultResolver.
//
// A Policy is a plain value: it is safe for concurrent use as long as
// nobody modifies it (or the Allow slice) meanwhile.
type Policy struct {
	// Allow lists prefixes reachable even though they are in a refused
	// range (for example 127.0.0.1/32 for a tool on the same host).
	// An entry matches the address actually dialled: IPv4-mapped
	// prefixes (::ffff:0:0/96) never match, since mapped addresses are
	// checked as IPv4, and allowing an IPv4 prefix does not allow the
	// NAT64 or 6to4 addresses that embed it.
	Allow []netip.Prefix
	// Resolver resolves host names; nil means net.DefaultResolver.
	Resolver Resolver
	// DialTimeout bounds one connection attempt; 0 means 10s.
	DialTimeout time.Duration
}

// RefusedError reports a destination the policy refuses. It wraps
// [ErrRefused]. Its message names the host, the address and the range,
// never a URL, so it carries no query string or userinfo.
type RefusedError struct {
	// Host is the host name whose resolution gave Addr, or "" when the
	// destination was an address literal.
	Host string
	// Addr is the refused address, as resolved or given.
	Addr netip.Addr
	// Embedded is the IPv4 address embedded in a NAT64 or 6to4 Addr when
	// that embedded address is what falls in the refused range; it is the
	// zero Addr otherwise.
	Embedded netip.Addr
	// Range names the refused range: "unspecified", "loopback",
	// "private", "link-local", "metadata", "shared" (carrier-grade NAT),
	// "ietf-protocol", "benchmarking", "multicast", "reserved",
	// "broadcast", "documentation", "discard", "ipv4-compatible",
	// "nat64-local" or "invalid".
	Range string
	// Prefix is the refused prefix containing Addr (or Embedded); it is
	// the zero Prefix for an invalid address.
	Prefix netip.Prefix
}

// Error describes the refusal.
func (e *RefusedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrRefused.Error())
	b.WriteString(": ")
	if e.Host != "" {
		fmt.Fprintf(&b, "host %q ", e.Host)
	}
	if !e.Addr.IsValid() {
		b.WriteString("invalid address")
		return b.String()
	}
	fmt.Fprintf(&b, "address %s ", e.Addr)
	if e.Embedded.IsValid() {
		fmt.Fprintf(&b, "embeds %s ", e.Embedded)
	}
	fmt.Fprintf(&b, "in %s range %s", e.Range, e.Prefix)
	return b.String()
}

// Unwrap returns [ErrRefused].
func (e *RefusedError) Unwrap() error { return ErrRefused }

type namedPrefix struct {
	prefix netip.Prefix
	name   string
}

func mustRanges(pairs ...string) []namedPrefix {
	r := make([]namedPrefix, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		r = append(r, namedPrefix{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return r
}

// refused lists the refused ranges, more specific prefixes first so that
// the most telling name wins.
var refused = mustRanges(
	// Cloud metadata endpoints, inside link-local, shared and ULA ranges.
	"169.254.169.254/32", "metadata", // AWS, GCP, Azure, OpenStack, …
	"100.100.100.200/32", "metadata", // Alibaba Cloud
	"fd00:ec2::254/128", "metadata", // AWS IPv6

	// IPv4.
	"0.0.0.0/8", "unspecified",
	"10.0.0.0/8", "private",
	"100.64.0.0/10", "shared",
	"127.0.0.0/8", "loopback",
	"169.254.0.0/16", "link-local",
	"172.16.0.0/12", "private",
	"192.0.0.0/24", "ietf-protocol",
	"192.0.2.0/24", "documentation",
	"192.168.0.0/16", "private",
	"198.18.0.0/15", "benchmarking",
	"198.51.100.0/24", "documentation",
	"203.0.113.0/24", "documentation",
	"224.0.0.0/4", "multicast",
	"255.255.255.255/32", "broadcast",
	"240.0.0.0/4", "reserved",

	// IPv6.
	"::/128", "unspecified",
	"::1/128", "loopback",
	"::/96", "ipv4-compatible",
	"64:ff9b:1::/48", "nat64-local",
	"100::/64", "discard",
	"2001:2::/48", "benchmarking",
	"2001:db8::/32", "documentation",
	"3fff::/20", "documentation",
	"fc00::/7", "private",
	"fe80::/10", "link-local",
	"fec0::/10", "private",
	"ff00::/8", "multicast",
)

var (
	nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour   = netip.MustParsePrefix("2002::/16")
)

func refusedRange(a netip.Addr) (namedPrefix, bool) {
	for _, r := range refused {
		if r.prefix.Contains(a) {
			return r, true
		}
	}
	return namedPrefix{}, false
}

// embeddedIPv4 returns the IPv4 address that a NAT64 or 6to4 address
// carries.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case nat64Prefix.Contains(a):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// CheckAddr returns nil if a may be dialled, or an error wrapping
// [ErrRefused] that names the refused range (a [*RefusedError]). An
// IPv6 zone is ignored; the zero Addr is refused.
func (p Policy) CheckAddr(a netip.Addr) error {
	return p.check("", a)
}

func (p Policy) check(host string, orig netip.Addr) error {
	if !orig.IsValid() {
		return &RefusedError{Host: host, Range: "invalid"}
	}
	a := orig.WithZone("").Unmap()
	for _, allow := range p.Allow {
		if allow.Contains(a) {
			return nil
		}
	}
	if r, ok := refusedRange(a); ok {
		return &RefusedError{Host: host, Addr: orig, Range: r.name, Prefix: r.prefix}
	}
	if v4, ok := embeddedIPv4(a); ok {
		if r, ok := refusedRange(v4); ok {
			return &RefusedError{Host: host, Addr: orig, Embedded: v4, Range: r.name, Prefix: r.prefix}
		}
	}
	return nil
}

// ParseAllow parses allow-list entries for [Policy.Allow]: each is an IP
// address ("127.0.0.1", "::1"), allowing just that address, or a prefix
// in CIDR notation ("10.0.0.0/8"). It rejects, without repairing,
// entries with host bits set ("10.0.0.1/8"), zones, and IPv4-mapped IPv6
// forms (write the IPv4 form instead). It returns nil for no entries.
func ParseAllow(entries []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range entries {
		p, err := parseAllowEntry(s)
		if err != nil {
			return nil, fmt.Errorf("egress: allow entry %d: %w", i, err)
		}
		out = append(out, p)
	}
	return out, nil
}

func parseAllowEntry(s string) (netip.Prefix, error) {
	var p netip.Prefix
	if strings.Contains(s, "/") {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return netip.Prefix{}, err
		}
		if p != p.Masked() {
			return netip.Prefix{}, fmt.Errorf("prefix %s has host bits set (want %s)", p, p.Masked())
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		if a.Zone() != "" {
			return netip.Prefix{}, errors.New("address has a zone")
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, errors.New("IPv4-mapped IPv6 prefix never matches; use the IPv4 form")
	}
	return p, nil
}
