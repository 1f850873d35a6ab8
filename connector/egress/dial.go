package egress

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"syscall"
	"time"
)

const (
	defaultDialTimeout = 10 * time.Second
	maxRedirects       = 5
)

// Transport returns an HTTP transport that dials only checked addresses
// (no proxy from the environment).
//
// Its DialContext resolves a host name with the policy's resolver, checks
// every address of the answer and refuses the connection if any is
// refused; it then dials the checked addresses in order, never resolving
// the name again, until one connects. A socket control hook checks each
// address once more just before connecting. Errors for refused
// destinations wrap [ErrRefused], also through [http.Client.Do].
//
// The transport uses HTTP/2 when the server offers it, bounds TLS
// handshakes to 10s and leaves response header timeouts to the caller.
// Callers may tune it but must not set Proxy, Dial, DialTLS or
// DialTLSContext, which would bypass the checks. The policy is copied.
func (p Policy) Transport() *http.Transport {
	p.Allow = slices.Clone(p.Allow)
	timeout := p.DialTimeout
	if timeout <= 0 {
		timeout = defaultDialTimeout
	}
	d := &dialer{
		policy: p,
		net: net.Dialer{
			Timeout:        timeout,
			KeepAlive:      30 * time.Second,
			ControlContext: p.control,
		},
	}
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: 1 * time.Second,
	}
}

// Client returns an HTTP client over [Policy.Transport] whose redirects are
// checked too (at most 5, http and https only), with the given overall
// timeout per request (0: none).
//
// A redirect's destination is checked by the transport like any other
// connection. Errors from the client's Do are *url.Error values, which
// unwrap to the transport's errors, so errors.Is(err, ErrRefused) holds
// for a refused destination; note that a *url.Error's own message holds
// the request URL, query string included, so log the [*RefusedError]
// (found with errors.As) rather than the whole error when the URL may
// carry secrets.
func (p Policy) Client(timeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     p.Transport(),
		CheckRedirect: checkRedirect,
		Timeout:       timeout,
	}
}

var errTooManyRedirects = fmt.Errorf("egress: stopped after %d redirects", maxRedirects)

func checkRedirect(req *http.Request, via []*http.Request) error {
	// via holds the requests already made, so redirect n is checked with
	// len(via) == n.
	if len(via) > maxRedirects {
		return errTooManyRedirects
	}
	switch req.URL.Scheme {
	case "http", "https":
		return nil
	}
	return fmt.Errorf("egress: redirect to scheme %q: %w", req.URL.Scheme, ErrRefused)
}

var (
	_ Resolver = (*net.Resolver)(nil)
	_ Resolver = ResolverFunc(nil)
)

type dialer struct {
	policy Policy
	net    net.Dialer
}

func (p Policy) resolver() Resolver {
	if p.Resolver == nil {
		return net.DefaultResolver
	}
	return p.Resolver
}

// DialContext is the transport's dial function; see [Policy.Transport].
func (d *dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	var family string
	switch network {
	case "tcp":
		family = "ip"
	case "tcp4":
		family = "ip4"
	case "tcp6":
		family = "ip6"
	default:
		return nil, fmt.Errorf("egress: dial: unsupported network %q", network)
	}
	host, portStr, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("egress: dial: %w", err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("egress: dial: invalid port %q", portStr)
	}

	var addrs []netip.Addr
	name := ""
	if a, err := netip.ParseAddr(host); err == nil {
		addrs = []netip.Addr{a}
	} else {
		name = host
		addrs, err = d.policy.resolver().LookupNetIP(ctx, family, host)
		if err != nil {
			return nil, fmt.Errorf("egress: resolve %q: %w", host, err)
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("egress: resolve %q: %w", host,
				&net.DNSError{Err: "no such host", Name: host, IsNotFound: true})
		}
	}
	// Every address must pass, so that the choice among them (ours or an
	// attacker's ordering) cannot matter.
	for _, a := range addrs {
		if err := d.policy.check(name, a); err != nil {
			return nil, err
		}
	}

	var firstErr error
	tried := false
	for _, a := range addrs {
		a = a.Unmap()
		if family == "ip4" && !a.Is4() || family == "ip6" && !a.Is6() {
			continue
		}
		tried = true
		c, err := d.net.DialContext(ctx, network, netip.AddrPortFrom(a, uint16(port)).String())
		if err == nil {
			return c, nil
		}
		if firstErr == nil {
			firstErr = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !tried {
		return nil, fmt.Errorf("egress: dial %q: no %s address", host, family)
	}
	return nil, firstErr
}

// control runs on every socket just before it connects, with the literal
// address being connected: a last check that nothing upstream dialled an
// address that was not checked.
func (p Policy) control(_ context.Context, _, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: control: %w", ErrRefused, err)
	}
	return p.check("", ap.Addr())
}
