package identity_test

import (
	"strings"
	"testing"

	"github.com/oarsdev/oars/identity"
)

func TestScopeAllows(t *testing.T) {
	tests := []struct {
		scopes   []string
		tool, op string
		want     bool
	}{
		{[]string{"*"}, "payments", "refund", true},
		{[]string{"*:*"}, "payments", "refund", true},
		{[]string{"payments:refund"}, "payments", "refund", true},
		{[]string{"payments:refund"}, "payments", "charge", false},
		{[]string{"payments:refund"}, "payment", "refund", false},
		{[]string{"payments:*"}, "payments", "charge", true},
		{[]string{"payments:*"}, "payments-eu", "charge", false},
		{[]string{"*:read"}, "crm", "read", true},
		{[]string{"*:read"}, "crm", "read-all", false},
		{[]string{"git*:push*"}, "github", "push_tags", true},
		{[]string{"git*:push*"}, "gitlab", "pull", false},
		{[]string{"a*b*c:x"}, "aXXbYYc", "x", true},
		{[]string{"a*b*c:x"}, "aXXbYY", "x", false},
		{[]string{"crm:read", "payments:*"}, "payments", "refund", true},
		{[]string{"openid", "profile"}, "openid", "read", false},
		{[]string{"payments"}, "payments", "refund", false},
		{[]string{"crm:*"}, "crm", "", true},
		{[]string{"crm:"}, "crm", "", true},
		{[]string{"crm:"}, "crm", "read", false},
		{nil, "crm", "read", false},
		{[]string{}, "crm", "read", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.scopes, " ")+"/"+tt.tool+":"+tt.op, func(t *testing.T) {
			if got := identity.ScopeAllows(tt.scopes, tt.tool, tt.op); got != tt.want {
				t.Errorf("ScopeAllows(%q, %q, %q) = %v, want %v", tt.scopes, tt.tool, tt.op, got, tt.want)
			}
		})
	}
}

func TestScopeSubset(t *testing.T) {
	tests := []struct {
		child, parent []string
		want          bool
	}{
		{[]string{"payments:refund"}, []string{"payments:*"}, true},
		{[]string{"payments:refund"}, []string{"*"}, true},
		{[]string{"payments:refund"}, []string{"payments:refund"}, true},
		{[]string{"payments:*"}, []string{"payments:refund"}, false},
		{[]string{"payments:*"}, []string{"payments:*"}, true},
		{[]string{"payments:*"}, []string{"*:*"}, true},
		{[]string{"*"}, []string{"*"}, true},
		{[]string{"*"}, []string{"*:*"}, true},
		{[]string{"*"}, []string{"payments:*"}, false},
		{[]string{"*:refund"}, []string{"payments:*"}, false},
		{[]string{"pay*:refund"}, []string{"p*:refund"}, true},
		{[]string{"p*:refund"}, []string{"pay*:refund"}, false},
		{[]string{"a*b:x"}, []string{"a*:x"}, true},
		{[]string{"crm:read", "payments:refund"}, []string{"payments:*", "crm:*"}, true},
		{[]string{"crm:read", "payments:refund"}, []string{"payments:*"}, false},
		{[]string{"openid"}, []string{"openid", "payments:*"}, true},
		{[]string{"openid"}, []string{"*"}, false},
		{nil, nil, true},
		{nil, []string{"payments:*"}, true},
		{[]string{"payments:refund"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.child, " ")+"⊆"+strings.Join(tt.parent, " "), func(t *testing.T) {
			if got := identity.ScopeSubset(tt.child, tt.parent); got != tt.want {
				t.Errorf("ScopeSubset(%q, %q) = %v, want %v", tt.child, tt.parent, got, tt.want)
			}
		})
	}
}

func TestPrincipalAllows(t *testing.T) {
	var none *identity.Principal
	tests := []struct {
		name string
		p    *identity.Principal
		want bool
	}{
		{"nil principal", none, false},
		{"unscoped", &identity.Principal{Subject: "a"}, true},
		{"empty scopes", &identity.Principal{Subject: "a", Scopes: []string{}}, false},
		{"allowed", &identity.Principal{Subject: "a", Scopes: []string{"crm:*"}}, true},
		{"not allowed", &identity.Principal{Subject: "a", Scopes: []string{"payments:*"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.p.Allows("crm", "read"); got != tt.want {
				t.Errorf("%s.Allows(crm, read) = %v, want %v", tt.name, got, tt.want)
			}
		})
	}
}

// FuzzScopeSubset checks that ScopeSubset is sound: whatever a child
// scope allows, a parent it is within allows too.
func FuzzScopeSubset(f *testing.F) {
	for _, s := range [][4]string{
		{"payments:refund", "payments:*", "payments", "refund"},
		{"*", "*:*", "x", "y"},
		{"a*b:*", "a*:*", "ab", "x"},
		{"p*:r*", "pay*:re*", "pa", "r"},
		{"**:*", "*", "", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	f.Fuzz(func(t *testing.T, child, parent, tool, op string) {
		c, p := []string{child}, []string{parent}
		if identity.ScopeSubset(c, p) && identity.ScopeAllows(c, tool, op) && !identity.ScopeAllows(p, tool, op) {
			t.Fatalf("ScopeSubset(%q, %q) = true, but %q allows %s:%s and %q does not", child, parent, child, tool, op, parent)
		}
		if identity.ScopeAllows(c, tool, op) != identity.ScopeAllows([]string{child, child}, tool, op) {
			t.Fatalf("ScopeAllows(%q) depends on repetition", child)
		}
		if !identity.ScopeSubset(c, c) {
			t.Fatalf("ScopeSubset(%q, itself) = false", child)
		}
	})
}
