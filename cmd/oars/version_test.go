package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestWriteVersion(t *testing.T) {
	tests := []struct {
		name    string
		version string
		info    *debug.BuildInfo
		want    string
	}{
		{
			name:    "ldflags version, module build",
			version: "v1.2.3",
			info: &debug.BuildInfo{
				GoVersion: "go1.26.8",
				Main:      debug.Module{Path: "github.com/oarsdev/oars", Version: "(devel)"},
				Settings: []debug.BuildSetting{
					{Key: "vcs.revision", Value: "a53cb25"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"},
				},
			},
			want: "oars v1.2.3\ngo: go1.26.8\nmodule: github.com/oarsdev/oars (devel)\ncommit: a53cb25 (2026-01-02T03:04:05Z), modified\n",
		},
		{
			name:    "go install module@version",
			version: "dev",
			info:    &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/oarsdev/oars", Version: "v0.4.0"}},
			want:    "oars v0.4.0\ngo: go1.26.8\nmodule: github.com/oarsdev/oars v0.4.0\n",
		},
		{
			name:    "no build information",
			version: "dev",
			want:    "oars dev\nbuild information: none\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			writeVersion(&buf, tt.version, tt.info)
			assert.Equal(t, tt.want, buf.String(), "writeVersion(%q)", tt.version)
		})
	}
}

func TestCmdVersion(t *testing.T) {
	code, stdout, stderr := cliRun(cmdVersion, "")
	assert.Equal(t, 0, code, "oars version: exit code (stderr %q)", stderr)
	assert.True(t, strings.HasPrefix(stdout, "oars "), "oars version stdout = %q, want it to start with \"oars \"", stdout)
	assert.Contains(t, stdout, "go: "+runtime.Version()+"\n", "oars version stdout")

	code, _, stderr = cliRun(cmdVersion, "", "extra")
	assert.Equal(t, 2, code, "oars version extra: exit code")
	assert.Contains(t, stderr, "unexpected argument")
}
