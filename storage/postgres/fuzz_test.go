package postgres

import (
	"strconv"
	"testing"
)

// FuzzParseCursor checks that parseCursor never panics, accepts exactly the
// cursors formatCursor makes, and round-trips them.
func FuzzParseCursor(f *testing.F) {
	for _, seed := range []string{"", "i0", "i1", "i42", "i9223372036854775807", "i9223372036854775808",
		"i-1", "i01", "i", "42", "x1", "i1 ", "i\x00", "not a cursor!", "%%%", "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, c string) {
		idx, err := parseCursor(c)
		if err != nil {
			return
		}
		if idx < 0 {
			t.Fatalf("parseCursor(%q) = %d, want a non-negative index", c, idx)
		}
		if got := formatCursor(idx); got != c {
			t.Fatalf("formatCursor(parseCursor(%q)) = %q, want %q", c, got, c)
		}
		if want := "i" + strconv.FormatInt(idx, 10); c != want {
			t.Fatalf("parseCursor accepted %q, want only %q", c, want)
		}
	})
}
