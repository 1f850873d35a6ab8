// Package netutil holds small network helpers shared by OARS packages.
package netutil

import (
	"net"
	"strings"
)

// IsLoopbackHost reports whether host (a URL's Hostname, without port or
// brackets) names the local machine: localhost in any case, with or
// without the trailing dot of a fully qualified name (RFC 6761 reserves
// it for loopback), or a loopback address (127.0.0.0/8, ::1, and IPv4
// loopback mapped into IPv6). Plain http is allowed only to such hosts.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
