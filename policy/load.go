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
	var docs []*Policy
	if info.IsDir() {
		if docs, err = LoadDir(path); err != nil {
			return nil, err
		}
	} else {
		p, err := LoadFile(path)
		if err != nil {
			return nil, err
		}
		docs = []*Policy{p}
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("policy: load: no policy files in %s", path)
	}
	return NewSet(docs...)
}
