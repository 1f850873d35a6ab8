package hook_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/hook"
)

const cmd = "/usr/local/bin/oars hook claude-code --policy /etc/oars/policy.yaml"

// claudeHooks is what Merge adds for cmd to Claude Code's settings.
const claudeHooks = `{
  "PreToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": "` + cmd + `", "timeout": 10}]}],
  "PostToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": "` + cmd + `", "timeout": 10}]}],
  "PostToolUseFailure": [{"matcher": "*", "hooks": [{"type": "command", "command": "` + cmd + `", "timeout": 10}]}]
}`

func TestMerge(t *testing.T) {
	const cursorCmd = "oars hook cursor"
	tests := []struct {
		name     string
		agent    hook.Agent
		settings string
		command  string
		want     string // JSON, compared as JSON
	}{
		{"claude empty", hook.ClaudeCode, `{}`, cmd, `{"hooks":` + claudeHooks + `}`},
		{"claude keeps other settings", hook.ClaudeCode,
			`{"model":"opus","permissions":{"allow":["Bash(go test:*)"]},"hooks":{"Stop":[{"hooks":[{"type":"command","command":"notify"}]}],"PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"./lint.sh"}]}]}}`,
			cmd,
			`{"model":"opus","permissions":{"allow":["Bash(go test:*)"]},"hooks":{
			  "Stop":[{"hooks":[{"type":"command","command":"notify"}]}],
			  "PreToolUse":[{"matcher":"Bash","hooks":[{"type":"command","command":"./lint.sh"}]},{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}],
			  "PostToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}],
			  "PostToolUseFailure":[{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}]}}`},
		{"claude replaces an older oars hook", hook.ClaudeCode,
			`{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"oars hook claude-code --tenant old"}]},{"matcher":"*","hooks":[{"type":"command","command":"/opt/oars hook claude-code"}]}]}}`,
			cmd, `{"hooks":` + claudeHooks + `}`},
		{"claude keeps another agent's oars hook", hook.ClaudeCode,
			`{"hooks":{"PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"oars hook codex"}]}]}}`,
			cmd, `{"hooks":{
			  "PreToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"oars hook codex"}]},{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}],
			  "PostToolUse":[{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}],
			  "PostToolUseFailure":[{"matcher":"*","hooks":[{"type":"command","command":"` + cmd + `","timeout":10}]}]}}`},
		{"cursor empty", hook.Cursor, `{}`, cursorCmd, `{"version":1,"hooks":{
			  "beforeShellExecution":[{"command":"oars hook cursor","failClosed":true}],
			  "beforeMCPExecution":[{"command":"oars hook cursor","failClosed":true}],
			  "beforeReadFile":[{"command":"oars hook cursor","failClosed":true}]}}`},
		{"cursor keeps other hooks", hook.Cursor, `{"version":1,"hooks":{"afterFileEdit":[{"command":"prettier"}],"beforeShellExecution":[{"command":"./audit.sh"}]}}`, cursorCmd,
			`{"version":1,"hooks":{"afterFileEdit":[{"command":"prettier"}],
			  "beforeShellExecution":[{"command":"./audit.sh"},{"command":"oars hook cursor","failClosed":true}],
			  "beforeMCPExecution":[{"command":"oars hook cursor","failClosed":true}],
			  "beforeReadFile":[{"command":"oars hook cursor","failClosed":true}]}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, changed, err := hook.Merge(tt.agent, []byte(tt.settings), tt.command)
			require.NoError(t, err)
			assert.True(t, changed, "Merge changed")
			assert.JSONEq(t, tt.want, string(got), "Merge(%s)", tt.settings)

			again, changed, err := hook.Merge(tt.agent, got, tt.command)
			require.NoError(t, err)
			assert.False(t, changed, "Merge of its own output changed it: not idempotent")
			assert.Equal(t, string(got), string(again))
		})
	}
}

func TestMergeKeepsOrder(t *testing.T) {
	got, _, err := hook.Merge(hook.ClaudeCode, []byte(`{"z":1,"a":{"y":2,"b":3},"hooks":{"Stop":[]},"m":"x"}`), cmd)
	require.NoError(t, err)
	want := `{
  "z": 1,
  "a": {
    "y": 2,
    "b": 3
  },
  "hooks": {
    "Stop": [],
    "PreToolUse": [
      {
        "matcher": "*",
        "hooks": [
          {
            "type": "command",
            "command": "` + cmd + `",
            "timeout": 10
          }
        ]
      }
    ],
    "PostToolUse": [
      {
        "matcher": "*",
        "hooks": [
          {
            "type": "command",
            "command": "` + cmd + `",
            "timeout": 10
          }
        ]
      }
    ],
    "PostToolUseFailure": [
      {
        "matcher": "*",
        "hooks": [
          {
            "type": "command",
            "command": "` + cmd + `",
            "timeout": 10
          }
        ]
      }
    ]
  },
  "m": "x"
}
`
	assert.Equal(t, want, string(got))
}

func TestMergeRejects(t *testing.T) {
	tests := []struct {
		name     string
		agent    hook.Agent
		settings string
		wantErr  string
	}{
		{"not json", hook.ClaudeCode, `{"hooks":`, "invalid JSON: json: syntax error"},
		{"trailing comma", hook.ClaudeCode, `{"a":1,}`, "invalid JSON"},
		{"duplicate key", hook.ClaudeCode, `{"hooks":{},"hooks":{}}`, "invalid JSON: json: duplicate key at /hooks"},
		{"empty file", hook.ClaudeCode, ``, "invalid JSON: json: empty input"},
		{"not an object", hook.ClaudeCode, `[]`, "the settings are not a JSON object"},
		{"hooks not an object", hook.ClaudeCode, `{"hooks":[]}`, "hooks are not a JSON object"},
		{"event not an array", hook.ClaudeCode, `{"hooks":{"PreToolUse":{}}}`, "hooks.PreToolUse is not a JSON array"},
		{"cursor version 2", hook.Cursor, `{"version":2,"hooks":{}}`, "version other than 1"},
		{"codex", hook.Codex, `{}`, "agent not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _, err := hook.Merge(tt.agent, []byte(tt.settings), cmd)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Nil(t, got)
		})
	}
}

func TestInstallFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ".claude", "settings.json")

	// A missing file is created, with its directory, and no backup.
	changed, err := hook.InstallFile(path, hook.ClaudeCode, cmd)
	require.NoError(t, err)
	assert.True(t, changed)
	created, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.JSONEq(t, `{"hooks":`+claudeHooks+`}`, string(created))
	assert.NoFileExists(t, path+".bak")

	// Installing again changes nothing and writes nothing.
	changed, err = hook.InstallFile(path, hook.ClaudeCode, cmd)
	require.NoError(t, err)
	assert.False(t, changed)
	assert.NoFileExists(t, path+".bak")

	// Other settings survive; the previous file is kept as .bak.
	original := []byte(`{"model": "opus", "hooks": {"PreToolUse": [{"matcher": "*", "hooks": [{"type": "command", "command": "oars hook claude-code"}]}]}}`)
	require.NoError(t, os.WriteFile(path, original, 0o600))
	require.NoError(t, os.Chmod(path, 0o600))
	changed, err = hook.InstallFile(path, hook.ClaudeCode, cmd)
	require.NoError(t, err)
	assert.True(t, changed)
	backup, err := os.ReadFile(path + ".bak")
	require.NoError(t, err)
	assert.Equal(t, original, backup, "the backup is the previous file")
	merged, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.JSONEq(t, `{"model":"opus","hooks":`+claudeHooks+`}`, string(merged))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the file keeps its permissions")

	// Invalid JSON: an error, and the file and its backup are untouched.
	bad := []byte(`{"model": "opus",}`)
	require.NoError(t, os.WriteFile(path, bad, 0o600))
	_, err = hook.InstallFile(path, hook.ClaudeCode, cmd)
	require.ErrorContains(t, err, "settings.json: hook: install: invalid JSON")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, bad, after)
	backup, err = os.ReadFile(path + ".bak")
	require.NoError(t, err)
	assert.Equal(t, original, backup)
	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no temporary files left behind")
}
