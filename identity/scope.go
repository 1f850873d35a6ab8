package identity

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Limits on scopes read from tokens.
const (
	// MaxScopeLength bounds one scope string.
	MaxScopeLength = 256
	// MaxScopes bounds the number of scopes in one claim.
	MaxScopes = 128
)

// ScopeAllows reports whether scopes allow operation on tool toolID.
//
// A scope is "tool:operation" (split at the first colon), each side a
// pattern in which "*" matches any run of characters, including none;
// other characters match themselves. The scope "*" alone allows
// everything. A scope without a colon (such as OAuth's "openid") is not a
// tool scope and allows nothing. An empty or nil scopes allows nothing.
func ScopeAllows(scopes []string, toolID, operation string) bool {
	for _, s := range scopes {
		tool, op, ok := splitScope(s)
		if ok && globMatch(tool, toolID) && globMatch(op, operation) {
			return true
		}
	}
	return false
}

// ScopeSubset reports whether every scope in child is within one of the
// scopes in parent, so that child allows no tool call that parent does
// not: "payments:refund" is within "payments:*" and "*", "crm:*" within
// "crm:*" and "*:*", and "*" only within "*" (or "*:*"). A scope that is
// not a tool scope (has no colon) is within parent only if parent holds
// the same string. An empty child is within any parent.
//
// The check is conservative: a "*" in the child is within the parent only
// where the parent has a "*" that covers it, so ScopeSubset never reports
// true when child allows more than parent, but may report false for a
// child covered only by several parent scopes together.
func ScopeSubset(child, parent []string) bool {
	for _, c := range child {
		if !scopeWithin(c, parent) {
			return false
		}
	}
	return true
}

// scopeWithin reports whether scope c is within one of parent.
func scopeWithin(c string, parent []string) bool {
	ct, co, cok := splitScope(c)
	for _, p := range parent {
		if !cok {
			if p == c {
				return true
			}
			continue
		}
		pt, po, pok := splitScope(p)
		// A parent "*" in a pattern consumes any run of the child
		// pattern, the child's own "*" included; a parent literal only
		// matches the same literal. So every string the child pattern
		// matches is matched by the parent pattern.
		if pok && globMatch(pt, ct) && globMatch(po, co) {
			return true
		}
	}
	return false
}

// splitScope splits a tool scope into its tool and operation patterns;
// "*" alone is "*:*". ok is false for a scope that is not a tool scope.
func splitScope(s string) (tool, op string, ok bool) {
	if s == "*" {
		return "*", "*", true
	}
	return strings.Cut(s, ":")
}

// globMatch reports whether pattern matches s: "*" in pattern matches any
// run of bytes of s, any other byte only itself. A "*" in s can thus only
// be matched by a "*" of the pattern. It runs in O(len(pattern)·len(s))
// at worst, without recursion.
func globMatch(pattern, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		switch {
		case px < len(pattern) && pattern[px] == '*':
			starP, starS = px, sx
			px++
		case px < len(pattern) && pattern[px] == s[sx]:
			px++
			sx++
		case starP >= 0:
			// Let the last star consume one more byte and retry.
			starS++
			sx = starS
			px = starP + 1
		default:
			return false
		}
	}
	for px < len(pattern) && pattern[px] == '*' {
		px++
	}
	return px == len(pattern)
}

// parseScopeString splits a space-separated scope claim (RFC 6749 §3.3,
// RFC 8693 §4.2) and checks each scope.
func parseScopeString(s string) ([]string, error) {
	scopes := strings.Fields(s)
	if err := validScopes(scopes); err != nil {
		return nil, err
	}
	if scopes == nil {
		scopes = []string{}
	}
	return scopes, nil
}

// validScopes checks scopes read from a token: at most MaxScopes, each
// 1 to MaxScopeLength bytes of UTF-8 without spaces or control characters.
func validScopes(scopes []string) error {
	if len(scopes) > MaxScopes {
		return fmt.Errorf("more than %d scopes", MaxScopes)
	}
	for i, s := range scopes {
		if err := validScope(s); err != nil {
			return fmt.Errorf("scope %d %w", i, err)
		}
	}
	return nil
}

func validScope(s string) error {
	if s == "" {
		return errors.New("is empty")
	}
	if len(s) > MaxScopeLength {
		return fmt.Errorf("is longer than %d bytes", MaxScopeLength)
	}
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r <= 0x20 || r == 0x7f {
			return errors.New("contains a space or control character")
		}
	}
	return nil
}
