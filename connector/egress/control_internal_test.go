package egress

import (
	"errors"
	"net/netip"
	"testing"
)

// The control hook cannot be reached through the transport, whose dialer
// only dials checked addresses, so it is tested directly.
func TestControl(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	tests := []struct {
		name    string
		allow   []netip.Prefix
		address string
		want    bool
	}{
		{"loopback", nil, "127.0.0.1:80", false},
		{"allowed loopback", allow, "127.0.0.1:80", true},
		{"other loopback", allow, "127.0.0.2:80", false},
		{"mapped loopback", nil, "[::ffff:127.0.0.1]:80", false},
		{"zoned link-local", nil, "[fe80::1%lo]:80", false},
		{"metadata", nil, "169.254.169.254:80", false},
		{"public", nil, "8.8.8.8:443", true},
		{"public v6", nil, "[2606:4700::1111]:443", true},
		{"unparsable", nil, "example.com:80", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Policy{Allow: tt.allow}.control(t.Context(), "tcp", tt.address, nil)
			if got := err == nil; got != tt.want {
				t.Fatalf("control(%q) = %v, want allowed %v", tt.address, err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrRefused) {
				t.Errorf("control(%q) = %v, want ErrRefused", tt.address, err)
			}
		})
	}
}
