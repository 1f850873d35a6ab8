// Package textcheck holds the one rule OARS applies to identifiers and
// other short strings taken from callers (tenant, agent, user, tool ids,
// reasons), shared by the Guard and the HTTP layer so both refuse the
// same input with the same words.
package textcheck

import (
	"fmt"
	"unicode/utf8"
)

// Problem returns what is wrong with v, such as "is required" or
// "contains a control character", or "" when v is acceptable: non-empty
// when required, at most max bytes, valid UTF-8, without control
// characters. The message never repeats v.
func Problem(v string, required bool, max int) string {
	switch {
	case v == "" && required:
		return "is required"
	case len(v) > max:
		return fmt.Sprintf("is longer than %d bytes", max)
	case !utf8.ValidString(v):
		return "is not valid UTF-8"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character"
		}
	}
	return ""
}
