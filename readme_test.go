package oars_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEExample keeps the README's code honest: its Go block and its
// policy must be the ones the Example compiles and runs.
func TestREADMEExample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```(go|yaml)\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	found := map[string]bool{}
	for _, b := range blocks {
		lang, code := b[1], b[2]
		if !strings.Contains(code, "Example") && !strings.Contains(code, "small-refunds") {
			continue
		}
		found[lang] = true
		if !strings.Contains(string(example), code) {
			t.Errorf("README %s block is not in example_test.go verbatim:\n%s", lang, code)
		}
	}
	if !found["go"] || !found["yaml"] {
		t.Errorf("README example blocks found = %v, want go and yaml", found)
	}
}
