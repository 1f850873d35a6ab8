package egress_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/oarsdev/oars/connector/egress"
)

func TestCheckAddr(t *testing.T) {
	tests := []struct {
		name      string
		addr      string
		wantRange string // "" means allowed
		embedded  string // embedded IPv4 reported, if any
	}{
		// Public addresses.
		{name: "google dns", addr: "8.8.8.8"},
		{name: "cloudflare dns", addr: "1.1.1.1"},
		{name: "public v6", addr: "2606:4700::1111"},
		{name: "google dns v6", addr: "2001:4860:4860::8888"},
		{name: "mapped public", addr: "::ffff:8.8.8.8"},
		{name: "nat64 public", addr: "64:ff9b::808:808"},
		{name: "6to4 public", addr: "2002:808:808::1"},
		{name: "below shared", addr: "100.63.255.255"},
		{name: "above shared", addr: "100.128.0.0"},
		{name: "below 172.16", addr: "172.15.255.255"},
		{name: "above 172.31", addr: "172.32.0.0"},
		{name: "below 192.168", addr: "192.167.255.255"},
		{name: "above 192.168", addr: "192.169.0.0"},
		{name: "below link-local", addr: "169.253.255.255"},
		{name: "below benchmarking", addr: "198.17.255.255"},
		{name: "above benchmarking", addr: "198.20.0.0"},
		{name: "below multicast", addr: "223.255.255.255"},
		{name: "below 192.0.0", addr: "191.255.255.255"},
		{name: "above 192.0.0", addr: "192.0.1.1"},

		// Unspecified.
		{name: "0.0.0.0", addr: "0.0.0.0", wantRange: "unspecified"},
		{name: "this network", addr: "0.1.2.3", wantRange: "unspecified"},
		{name: "v6 unspecified", addr: "::", wantRange: "unspecified"},
		{name: "mapped unspecified", addr: "::ffff:0.0.0.0", wantRange: "unspecified"},

		// Loopback.
		{name: "127.0.0.1", addr: "127.0.0.1", wantRange: "loopback"},
		{name: "127 top", addr: "127.255.255.254", wantRange: "loopback"},
		{name: "v6 loopback", addr: "::1", wantRange: "loopback"},
		{name: "mapped loopback", addr: "::ffff:127.0.0.1", wantRange: "loopback"},
		{name: "nat64 loopback", addr: "64:ff9b::7f00:1", wantRange: "loopback", embedded: "127.0.0.1"},
		{name: "6to4 loopback", addr: "2002:7f00:1::1", wantRange: "loopback", embedded: "127.0.0.1"},

		// Private.
		{name: "10/8", addr: "10.0.0.1", wantRange: "private"},
		{name: "10/8 top", addr: "10.255.255.255", wantRange: "private"},
		{name: "172.16/12", addr: "172.16.0.1", wantRange: "private"},
		{name: "172.16/12 top", addr: "172.31.255.255", wantRange: "private"},
		{name: "192.168/16", addr: "192.168.1.1", wantRange: "private"},
		{name: "ula fc", addr: "fc00::1", wantRange: "private"},
		{name: "ula fd", addr: "fd12:3456::1", wantRange: "private"},
		{name: "site-local", addr: "fec0::1", wantRange: "private"},
		{name: "mapped private", addr: "::ffff:10.0.0.1", wantRange: "private"},
		{name: "6to4 private", addr: "2002:a00:1::1", wantRange: "private", embedded: "10.0.0.1"},
		{name: "nat64 private", addr: "64:ff9b::c0a8:101", wantRange: "private", embedded: "192.168.1.1"},

		// Link-local and metadata.
		{name: "link-local", addr: "169.254.0.1", wantRange: "link-local"},
		{name: "v6 link-local", addr: "fe80::1", wantRange: "link-local"},
		{name: "v6 link-local zone", addr: "fe80::1%eth0", wantRange: "link-local"},
		{name: "metadata", addr: "169.254.169.254", wantRange: "metadata"},
		{name: "v6 metadata", addr: "fd00:ec2::254", wantRange: "metadata"},
		{name: "alibaba metadata", addr: "100.100.100.200", wantRange: "metadata"},
		{name: "mapped metadata", addr: "::ffff:169.254.169.254", wantRange: "metadata"},
		{name: "nat64 metadata", addr: "64:ff9b::a9fe:a9fe", wantRange: "metadata", embedded: "169.254.169.254"},
		{name: "6to4 metadata", addr: "2002:a9fe:a9fe::", wantRange: "metadata", embedded: "169.254.169.254"},

		// Other special-purpose ranges.
		{name: "shared", addr: "100.64.0.1", wantRange: "shared"},
		{name: "shared top", addr: "100.127.255.255", wantRange: "shared"},
		{name: "ietf protocol", addr: "192.0.0.1", wantRange: "ietf-protocol"},
		{name: "benchmarking", addr: "198.18.0.1", wantRange: "benchmarking"},
		{name: "benchmarking top", addr: "198.19.255.255", wantRange: "benchmarking"},
		{name: "v6 benchmarking", addr: "2001:2::1", wantRange: "benchmarking"},
		{name: "multicast", addr: "224.0.0.1", wantRange: "multicast"},
		{name: "ssdp", addr: "239.255.255.250", wantRange: "multicast"},
		{name: "v6 multicast", addr: "ff02::1", wantRange: "multicast"},
		{name: "v6 multicast site", addr: "ff05::1:3", wantRange: "multicast"},
		{name: "reserved", addr: "240.0.0.1", wantRange: "reserved"},
		{name: "reserved top", addr: "255.255.255.254", wantRange: "reserved"},
		{name: "broadcast", addr: "255.255.255.255", wantRange: "broadcast"},
		{name: "test-net-1", addr: "192.0.2.1", wantRange: "documentation"},
		{name: "test-net-2", addr: "198.51.100.7", wantRange: "documentation"},
		{name: "test-net-3", addr: "203.0.113.9", wantRange: "documentation"},
		{name: "v6 documentation", addr: "2001:db8::1", wantRange: "documentation"},
		{name: "v6 documentation 3fff", addr: "3fff::1", wantRange: "documentation"},
		{name: "discard", addr: "100::1", wantRange: "discard"},
		{name: "ipv4-compatible", addr: "::127.0.0.1", wantRange: "ipv4-compatible"},
		{name: "nat64 local-use", addr: "64:ff9b:1::a00:1", wantRange: "nat64-local"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := netip.MustParseAddr(tt.addr)
			err := egress.Policy{}.CheckAddr(a)
			if tt.wantRange == "" {
				if err != nil {
					t.Fatalf("CheckAddr(%s) = %v, want nil", a, err)
				}
				return
			}
			if !errors.Is(err, egress.ErrRefused) {
				t.Fatalf("CheckAddr(%s) = %v, want ErrRefused", a, err)
			}
			var re *egress.RefusedError
			if !errors.As(err, &re) {
				t.Fatalf("CheckAddr(%s) = %T, want *RefusedError", a, err)
			}
			if re.Range != tt.wantRange {
				t.Errorf("CheckAddr(%s).Range = %q, want %q", a, re.Range, tt.wantRange)
			}
			if re.Addr != a {
				t.Errorf("CheckAddr(%s).Addr = %s, want %s", a, re.Addr, a)
			}
			var wantEmb netip.Addr
			if tt.embedded != "" {
				wantEmb = netip.MustParseAddr(tt.embedded)
			}
			if re.Embedded != wantEmb {
				t.Errorf("CheckAddr(%s).Embedded = %s, want %s", a, re.Embedded, wantEmb)
			}
			if !re.Prefix.Contains(a.WithZone("").Unmap()) && !re.Prefix.Contains(re.Embedded) {
				t.Errorf("CheckAddr(%s).Prefix = %s, which contains neither the address nor an embedded one", a, re.Prefix)
			}
			for _, want := range []string{tt.wantRange, re.Prefix.String(), a.String()} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("CheckAddr(%s) = %q, want it to mention %q", a, err, want)
				}
			}
		})
	}
}

func TestCheckAddrInvalid(t *testing.T) {
	err := egress.Policy{}.CheckAddr(netip.Addr{})
	var re *egress.RefusedError
	if !errors.As(err, &re) || re.Range != "invalid" {
		t.Fatalf("CheckAddr(zero Addr) = %v, want a refusal for range invalid", err)
	}
}

func TestCheckAddrAllow(t *testing.T) {
	allow, err := egress.ParseAllow([]string{"127.0.0.1", "10.0.0.0/8", "::1", "fe80::/10"})
	if err != nil {
		t.Fatal(err)
	}
	p := egress.Policy{Allow: allow}
	tests := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"127.0.0.2", false},
		{"10.1.2.3", true},
		{"::ffff:10.1.2.3", true},
		{"::1", true},
		{"fe80::1%eth0", true},
		{"172.16.0.1", false},
		{"169.254.169.254", false},
		// Allowing an IPv4 range does not allow NAT64/6to4 forms of it.
		{"64:ff9b::7f00:1", false},
		{"2002:a00:1::1", false},
		{"8.8.8.8", true},
	}
	for _, tt := range tests {
		a := netip.MustParseAddr(tt.addr)
		err := p.CheckAddr(a)
		if got := err == nil; got != tt.want {
			t.Errorf("CheckAddr(%s) = %v, want allowed %v", a, err, tt.want)
		}
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr bool
	}{
		{name: "none", in: nil, want: nil},
		{name: "addresses and prefixes", in: []string{"127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"},
			want: []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128", "fd00::/8"}},
		{name: "empty", in: []string{""}, wantErr: true},
		{name: "host bits", in: []string{"10.0.0.1/8"}, wantErr: true},
		{name: "bad bits", in: []string{"10.0.0.0/33"}, wantErr: true},
		{name: "zone", in: []string{"fe80::1%eth0"}, wantErr: true},
		{name: "mapped", in: []string{"::ffff:127.0.0.1"}, wantErr: true},
		{name: "mapped prefix", in: []string{"::ffff:0:0/96"}, wantErr: true},
		{name: "name", in: []string{"localhost"}, wantErr: true},
		{name: "one bad among good", in: []string{"127.0.0.1", "nope"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := egress.ParseAllow(tt.in)
			if tt.wantErr {
				if err == nil || got != nil {
					t.Fatalf("ParseAllow(%q) = %v, %v, want nil and an error", tt.in, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseAllow(%q) = %v", tt.in, err)
			}
			var gotS []string
			for _, p := range got {
				gotS = append(gotS, p.String())
			}
			if !slices.Equal(gotS, tt.want) {
				t.Errorf("ParseAllow(%q) = %q, want %q", tt.in, gotS, tt.want)
			}
		})
	}
}

func FuzzParseAllow(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "10.0.0.0/8", "::1", "fe80::1%eth0", "10.0.0.1/8", "::ffff:1.2.3.4", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := egress.ParseAllow([]string{s})
		if err != nil {
			return
		}
		if len(got) != 1 {
			t.Fatalf("ParseAllow(%q) = %v, want one prefix", s, got)
		}
		again, err := egress.ParseAllow([]string{got[0].String()})
		if err != nil || len(again) != 1 || again[0] != got[0] {
			t.Fatalf("ParseAllow(%q) = %v, %v; want round trip to %v", got[0].String(), again, err, got[0])
		}
	})
}

func TestTransportNoProxy(t *testing.T) {
	tr := egress.Policy{}.Transport()
	if tr.Proxy != nil {
		t.Error("Transport().Proxy != nil, want nil so that proxies from the environment are never used")
	}
	if !tr.ForceAttemptHTTP2 {
		t.Error("Transport().ForceAttemptHTTP2 = false, want true")
	}
	if tr.DialContext == nil {
		t.Error("Transport().DialContext = nil")
	}
}

// server is an httptest server listening on a given loopback address that
// counts the connections it accepts.
type server struct {
	*httptest.Server
	conns atomic.Int32
}

func newServer(t *testing.T, ip string, h http.Handler) *server {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := &server{Server: httptest.NewUnstartedServer(h)}
	s.Listener.Close()
	s.Listener = ln
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *server) port() string {
	return strconv.Itoa(s.Listener.Addr().(*net.TCPAddr).Port)
}

func hello(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello") }

func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	return string(body), nil
}

func mustAllow(t *testing.T, entries ...string) []netip.Prefix {
	t.Helper()
	allow, err := egress.ParseAllow(entries)
	if err != nil {
		t.Fatal(err)
	}
	return allow
}

// wantRefused checks that err wraps ErrRefused with a *RefusedError for
// addr in range rng, and returns it.
func wantRefused(t *testing.T, err error, addr, rng string) *egress.RefusedError {
	t.Helper()
	if !errors.Is(err, egress.ErrRefused) {
		t.Fatalf("error = %v, want ErrRefused", err)
	}
	var re *egress.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("error = %v, want a *RefusedError", err)
	}
	if re.Addr != netip.MustParseAddr(addr) || re.Range != rng {
		t.Fatalf("refused %s in %q, want %s in %q", re.Addr, re.Range, addr, rng)
	}
	return re
}

func TestClientLoopback(t *testing.T) {
	s := newServer(t, "127.0.0.1", http.HandlerFunc(hello))

	_, err := get(t, egress.Policy{}.Client(0), s.URL)
	wantRefused(t, err, "127.0.0.1", "loopback")
	if n := s.conns.Load(); n != 0 {
		t.Errorf("server saw %d connections after a refusal, want 0", n)
	}

	p := egress.Policy{Allow: mustAllow(t, "127.0.0.1/32")}
	body, err := get(t, p.Client(0), s.URL)
	if err != nil || body != "hello" {
		t.Fatalf("GET with 127.0.0.1 allowed = %q, %v, want hello", body, err)
	}
}

func TestClientRedirectToOtherLoopback(t *testing.T) {
	b := newServer(t, "127.0.0.2", http.HandlerFunc(hello))
	a := newServer(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, b.URL+"/next?token=s3cret", http.StatusFound)
	}))

	p := egress.Policy{Allow: mustAllow(t, "127.0.0.1/32")}
	_, err := get(t, p.Client(0), a.URL)
	re := wantRefused(t, err, "127.0.0.2", "loopback")
	if strings.Contains(re.Error(), "s3cret") {
		t.Errorf("refusal %q holds the query string", re)
	}
	if n := b.conns.Load(); n != 0 {
		t.Errorf("redirect target saw %d connections, want 0", n)
	}

	// Control: the target is reachable when allowed.
	p = egress.Policy{Allow: mustAllow(t, "127.0.0.1/32", "127.0.0.2/32")}
	if body, err := get(t, p.Client(0), a.URL); err != nil || body != "hello" {
		t.Fatalf("GET with both allowed = %q, %v, want hello", body, err)
	}
}

func TestClientRedirectLimit(t *testing.T) {
	s := newServer(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		if n == 0 {
			io.WriteString(w, "done")
			return
		}
		http.Redirect(w, r, "/"+strconv.Itoa(n-1), http.StatusFound)
	}))
	c := egress.Policy{Allow: mustAllow(t, "127.0.0.1")}.Client(0)

	if body, err := get(t, c, s.URL+"/5"); err != nil || body != "done" {
		t.Fatalf("GET after 5 redirects = %q, %v, want done", body, err)
	}
	_, err := get(t, c, s.URL+"/6")
	if err == nil || !strings.Contains(err.Error(), "stopped after 5 redirects") {
		t.Fatalf("GET after 6 redirects = %v, want stopped after 5", err)
	}
}

func TestClientRedirectScheme(t *testing.T) {
	for _, target := range []string{"ftp://127.0.0.1/x", "file:///etc/passwd", "gopher://127.0.0.1/"} {
		s := newServer(t, "127.0.0.1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target, http.StatusFound)
		}))
		c := egress.Policy{Allow: mustAllow(t, "127.0.0.1")}.Client(0)
		_, err := get(t, c, s.URL)
		if !errors.Is(err, egress.ErrRefused) {
			t.Errorf("GET redirecting to %s = %v, want ErrRefused", target, err)
		}
	}
}

// resolver is a fake Resolver answering from a list of answers, one per
// call (the last one repeats), and counting calls.
type resolver struct {
	answers [][]string
	calls   atomic.Int32
}

func (r *resolver) LookupNetIP(_ context.Context, _, _ string) ([]netip.Addr, error) {
	n := int(r.calls.Add(1)) - 1
	ans := r.answers[min(n, len(r.answers)-1)]
	var out []netip.Addr
	for _, s := range ans {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

func TestClientMetadataName(t *testing.T) {
	r := &resolver{answers: [][]string{{"169.254.169.254"}}}
	c := egress.Policy{Resolver: r}.Client(0)
	_, err := get(t, c, "http://user:hunter2@metadata.test/latest/meta-data/?token=s3cret")
	re := wantRefused(t, err, "169.254.169.254", "metadata")
	if re.Host != "metadata.test" {
		t.Errorf("RefusedError.Host = %q, want metadata.test", re.Host)
	}
	msg := re.Error()
	if !strings.Contains(msg, "metadata") || !strings.Contains(msg, "169.254.169.254") {
		t.Errorf("refusal %q does not name the range and address", msg)
	}
	for _, secret := range []string{"hunter2", "s3cret", "user"} {
		if strings.Contains(msg, secret) {
			t.Errorf("refusal %q holds %q from the URL", msg, secret)
		}
	}
	// Refused before dialling: a dial error would be a *net.OpError.
	if _, ok := errors.AsType[*net.OpError](err); ok {
		t.Errorf("error %v comes from a dial, want a refusal before any connection", err)
	}
	if n := r.calls.Load(); n != 1 {
		t.Errorf("resolver called %d times, want 1", n)
	}
}

func TestClientDNSRebinding(t *testing.T) {
	s := newServer(t, "127.0.0.1", http.HandlerFunc(hello))
	r := &resolver{answers: [][]string{{"127.0.0.1"}, {"127.0.0.2"}}}
	c := egress.Policy{Allow: mustAllow(t, "127.0.0.1/32"), Resolver: r}.Client(0)
	// Without keep-alives every request dials, hence resolves, again.
	c.Transport.(*http.Transport).DisableKeepAlives = true
	url := "http://rebind.test:" + s.port() + "/"

	if body, err := get(t, c, url); err != nil || body != "hello" {
		t.Fatalf("first GET = %q, %v, want hello", body, err)
	}
	_, err := get(t, c, url)
	re := wantRefused(t, err, "127.0.0.2", "loopback")
	if re.Host != "rebind.test" {
		t.Errorf("RefusedError.Host = %q, want rebind.test", re.Host)
	}
	if n := r.calls.Load(); n != 2 {
		t.Errorf("resolver called %d times, want 2", n)
	}
	if n := s.conns.Load(); n != 1 {
		t.Errorf("server saw %d connections, want 1", n)
	}
}

func TestClientMixedAnswer(t *testing.T) {
	for _, ans := range [][]string{{"8.8.8.8", "10.0.0.1"}, {"10.0.0.1", "8.8.8.8"}} {
		r := &resolver{answers: [][]string{ans}}
		_, err := get(t, egress.Policy{Resolver: r}.Client(0), "https://mixed.test/")
		wantRefused(t, err, "10.0.0.1", "private")
		if _, ok := errors.AsType[*net.OpError](err); ok {
			t.Errorf("answer %v: error %v comes from a dial, want a refusal before any connection", ans, err)
		}
	}
}

func TestClientTriesAddressesInOrder(t *testing.T) {
	// Nothing listens on 127.0.0.2 at the server's port, so the first
	// address fails at once and the second one is used.
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.2: %v", err)
	}
	probe.Close()
	s := newServer(t, "127.0.0.1", http.HandlerFunc(hello))
	r := &resolver{answers: [][]string{{"127.0.0.2", "127.0.0.1"}}}
	c := egress.Policy{Allow: mustAllow(t, "127.0.0.0/8"), Resolver: r}.Client(0)
	if body, err := get(t, c, "http://two.test:"+s.port()+"/"); err != nil || body != "hello" {
		t.Fatalf("GET = %q, %v, want hello from the second address", body, err)
	}
}

func TestDialContext(t *testing.T) {
	r := &resolver{answers: [][]string{{"127.0.0.1"}}}
	tr := egress.Policy{Allow: mustAllow(t, "127.0.0.1"), Resolver: r}.Transport()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	tests := []struct {
		name, network, address string
	}{
		{"udp", "udp", "8.8.8.8:53"},
		{"no port", "tcp", "8.8.8.8"},
		{"bad port", "tcp", "8.8.8.8:http"},
		{"no v6 address", "tcp6", "v4only.test:80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tr.DialContext(ctx, tt.network, tt.address)
			if err == nil {
				c.Close()
				t.Fatalf("DialContext(%q, %q) succeeded, want an error", tt.network, tt.address)
			}
		})
	}
	_, err := tr.DialContext(ctx, "tcp", "169.254.169.254:80")
	wantRefused(t, err, "169.254.169.254", "metadata")
}
