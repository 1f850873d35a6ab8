package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Example runs the program: go run ./examples/custom-store prints the same.
func Example() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Println("error:", err)
	}
	// Output:
	// appended entry 0
	// appended entry 1
	// appended entry 2
	// appended entry 3
	// size 4, root ax+HpK2u6kehhbGl7Nh0qjr/CNh4/m7dKvept0gPEB4=
	// reopened and verified: size 4, root ax+HpK2u6kehhbGl7Nh0qjr/CNh4/m7dKvept0gPEB4=
	// rcpt-3 is entry 2
}

// TestREADME keeps README.md honest: its conformance test is the one in
// filestore_test.go, verbatim.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	tests, err := os.ReadFile(filepath.Join("filestore", "filestore_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for block := range strings.SplitSeq(string(readme), "```go\n") {
		code, _, ok := strings.Cut(block, "```")
		if !ok || !strings.HasPrefix(code, "func Test") {
			continue
		}
		found++
		if !strings.Contains(string(tests), code) {
			t.Errorf("README.md test block is not in filestore/filestore_test.go verbatim:\n%s", code)
		}
	}
	if found != 1 {
		t.Errorf("README.md has %d Go test blocks, want 1", found)
	}
}
