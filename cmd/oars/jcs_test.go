package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

// cliRun runs a subcommand function with buffers and returns its exit
// status, stdout and stderr.
func cliRun(cmd func(context.Context, []string, io.Reader, io.Writer, io.Writer) int, stdin string, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := cmd(context.Background(), args, strings.NewReader(stdin), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestCmdJCS(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		stdin      string
		wantCode   int
		wantStdout string
		stderrHas  string
	}{
		{"canonicalizes", nil, " {\"b\": [1.0, 1e2, -0], \"a\": \"\\u00e9\\u2028<>\"}\n", 0, "{\"a\":\"é\u2028<>\",\"b\":[1,100,0]}", ""},
		{"scalar", nil, `"x"`, 0, `"x"`, ""},
		{"duplicate key", nil, `{"a":1,"\u0061":2}`, 1, "", "oars jcs: json: duplicate key at /a (offset 7)\n"},
		{"invalid UTF-8", nil, "[\"\xff\"]", 1, "", "oars jcs: json: invalid UTF-8 at /0 (offset 2)\n"},
		{"lone surrogate", nil, `["\ud800"]`, 1, "", "oars jcs: json: invalid UTF-8"},
		{"number out of range", nil, `[1e400]`, 1, "", "oars jcs: json: number out of range at /0 (offset 1)\n"},
		{"trailing data", nil, `{} {}`, 1, "", "oars jcs: json: trailing data (offset 3)\n"},
		{"empty", nil, ``, 1, "", "oars jcs: json: empty input (offset 0)\n"},
		{"syntax", nil, `{"a":}`, 1, "", "oars jcs: json: syntax error"},
		{"too deep", nil, strings.Repeat("[", 65) + strings.Repeat("]", 65), 1, "", "oars jcs: json: nesting too deep"},
		{"arguments", []string{"file.json"}, `{}`, 2, "", "unexpected arguments"},
		{"unknown flag", []string{"--pretty"}, `{}`, 2, "", "flag provided but not defined"},
		{"help", []string{"-h"}, ``, 0, "", "usage: oars jcs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := cliRun(cmdJCS, tt.stdin, tt.args...)
			assert.Equal(t, tt.wantCode, code, "cmdJCS(%q) exit status; stderr: %s", tt.args, stderr)
			assert.Equal(t, tt.wantStdout, stdout, "cmdJCS(%q) stdout", tt.args)
			if tt.stderrHas != "" {
				assert.Contains(t, stderr, tt.stderrHas)
			} else {
				assert.Empty(t, stderr)
			}
		})
	}
}

func TestCmdJCSDoesNotEchoInput(t *testing.T) {
	code, _, stderr := cliRun(cmdJCS, `{"token":"sk_live_secret","token":"sk_live_secret"}`)
	assert.Equal(t, 1, code)
	assert.NotContains(t, stderr, "sk_live_secret")
}
