package textcheck

import "testing"

func TestProblem(t *testing.T) {
	tests := []struct {
		name     string
		v        string
		required bool
		max      int
		want     string
	}{
		{"ok", "acme", true, 8, ""},
		{"empty optional", "", false, 8, ""},
		{"empty required", "", true, 8, "is required"},
		{"too long", "abcdefghi", true, 8, "is longer than 8 bytes"},
		{"invalid utf8", "\xff", true, 8, "is not valid UTF-8"},
		{"newline", "a\nb", true, 8, "contains a control character"},
		{"delete", "a\x7f", true, 8, "contains a control character"},
		{"unicode", "zürich", true, 8, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Problem(tt.v, tt.required, tt.max); got != tt.want {
				t.Errorf("Problem(%q, %v, %d) = %q, want %q", tt.v, tt.required, tt.max, got, tt.want)
			}
		})
	}
}
