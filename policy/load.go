package policy

import (
	"fmt"
	"os"
)

// Load returns the policy set of path: the policy file at path, or every
// policy file of the directory path (see [LoadDir]). A directory without
// policy files is an error.
func Load(path string) (*Set, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("policy: load: %w", err)
	}
	if info.IsDir() {
		docs, err := LoadDir(path) // fails without policy files
		if err != nil {
			return nil, err
		}
		return NewSet(docs...)
	}
	p, err := LoadFile(path)
	if err != nil {
		return nil, err
	}
	return NewSet(p)
}
