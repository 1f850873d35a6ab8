package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	doc := "id: p\nversion: \"1\"\nrules:\n  - id: r\n    when: action.tool_id == \"t\"\n    effect: allow\n    reason: ok\n"
	file := filepath.Join(dir, "p.yaml")
	require.NoError(t, os.WriteFile(file, []byte(doc), 0o600))
	for _, path := range []string{file, dir} {
		set, err := Load(path)
		require.NoError(t, err, path)
		assert.Equal(t, "p", set.ID())
	}
	_, err := Load(filepath.Join(dir, "missing.yaml"))
	require.Error(t, err)
	_, err = Load(t.TempDir())
	require.ErrorContains(t, err, "no policy documents")
}
