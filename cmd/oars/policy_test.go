package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCmdPolicy(t *testing.T) {
	td := filepath.Join("testdata", "policy")
	good := filepath.Join(td, "lint", "good.yaml")
	bad := filepath.Join(td, "lint", "bad.yaml")
	dup := filepath.Join(td, "lint", "dup.yaml")
	passDir := filepath.Join(td, "pass")
	failDir := filepath.Join(td, "fail")

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string   // exact, unless empty
		stdoutHas  []string // substrings of stdout
		stderrHas  []string // substrings of stderr
	}{
		{
			name:       "lint good file",
			args:       []string{"lint", good},
			wantCode:   0,
			wantStdout: "ok: " + good + " (payments v2, 2 rules)\n",
		},
		{
			name:      "lint bad file names file, rule and position",
			args:      []string{"lint", good, bad},
			wantCode:  1,
			stdoutHas: []string{"ok: " + good},
			stderrHas: []string{"policy: " + bad + `:5: rule "typo": when: 1:42: undefined field 'role'`},
		},
		{
			name:      "lint reports every bad file",
			args:      []string{"lint", bad, filepath.Join(td, "lint", "missing.yaml")},
			wantCode:  1,
			stderrHas: []string{bad + ":5", "missing.yaml"},
		},
		{
			name:      "lint duplicate ids across files",
			args:      []string{"lint", good, dup},
			wantCode:  1,
			stderrHas: []string{`duplicate policy id "payments"`},
		},
		{
			name:       "lint directory",
			args:       []string{"lint", passDir},
			wantCode:   0,
			wantStdout: "ok: " + filepath.Join(passDir, "payments.yaml") + " (payments v2, 2 rules)\n",
		},
		{
			name:       "test passing",
			args:       []string{"test", passDir},
			wantCode:   0,
			wantStdout: "ok  \t" + passDir + "\t2 cases\n",
		},
		{
			name:     "test passing verbose",
			args:     []string{"test", "-v", passDir},
			wantCode: 0,
			wantStdout: "--- PASS: small refund (payments_test.yaml:2)\n" +
				"--- PASS: big refund (payments_test.yaml:9)\n" +
				"ok  \t" + passDir + "\t2 cases\n",
		},
		{
			name:     "test failing",
			args:     []string{"test", failDir},
			wantCode: 1,
			wantStdout: "--- FAIL: big refund wrongly expected to pass (payments_test.yaml:8)\n" +
				"    effect: want allow, got require_approval\n" +
				"    matched_rules: want [payments/small-refunds], got [payments/big-refunds]\n" +
				"--- FAIL: bad input type (payments_test.yaml:15)\n" +
				`    error: policy: evaluate: policy "payments" rule "small-refunds": no such overload` + "\n" +
				"FAIL\t" + failDir + "\t2 of 3 cases failed\n",
		},
		{
			name:      "test with malformed test file",
			args:      []string{"test", filepath.Join(td, "badtests")},
			wantCode:  1,
			stdoutHas: []string{"FAIL\t" + filepath.Join(td, "badtests") + "\t[setup failed]"},
			stderrHas: []string{"payments_test.yaml:3", `case "typo in key"`, `unknown key "actoin"`},
		},
		{
			name:      "test with bad policy",
			args:      []string{"test", filepath.Join(td, "lint")},
			wantCode:  1,
			stderrHas: []string{"bad.yaml:5"},
		},
		{
			name:       "test without test files",
			args:       []string{"test", filepath.Join(td, "empty")},
			wantCode:   0,
			wantStdout: "?   \t" + filepath.Join(td, "empty") + "\t[no test files]\n",
		},
		{name: "no subcommand", args: nil, wantCode: 2, stderrHas: []string{"usage: oars policy lint"}},
		{name: "unknown subcommand", args: []string{"fmt"}, wantCode: 2, stderrHas: []string{`unknown subcommand "fmt"`}},
		{name: "help", args: []string{"help"}, wantCode: 0, stdoutHas: []string{"usage: oars policy lint"}},
		{name: "lint without files", args: []string{"lint"}, wantCode: 2, stderrHas: []string{"no files given"}},
		{name: "lint -h", args: []string{"lint", "-h"}, wantCode: 0, stderrHas: []string{"usage: oars policy lint"}},
		{name: "test bad flag", args: []string{"test", "-x", passDir}, wantCode: 2, stderrHas: []string{"flag provided but not defined: -x"}},
		{name: "test two dirs", args: []string{"test", passDir, failDir}, wantCode: 2, stderrHas: []string{"want exactly one directory"}},
		{name: "test -h lists flags", args: []string{"test", "-h"}, wantCode: 0, stderrHas: []string{"-v\tlist passing cases too"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := cmdPolicy(context.Background(), tt.args, strings.NewReader(""), &stdout, &stderr)
			assert.Equal(t, tt.wantCode, code, "cmdPolicy(%q) exit code; stderr:\n%s", tt.args, stderr.String())
			if tt.wantStdout != "" {
				assert.Equal(t, tt.wantStdout, stdout.String(), "cmdPolicy(%q) stdout", tt.args)
			}
			for _, s := range tt.stdoutHas {
				assert.Contains(t, stdout.String(), s, "cmdPolicy(%q) stdout", tt.args)
			}
			for _, s := range tt.stderrHas {
				assert.Contains(t, stderr.String(), s, "cmdPolicy(%q) stderr", tt.args)
			}
		})
	}
}

// TestCmdPolicyDemo runs the demo policy shipped with the policy package,
// which the dev server copies.
func TestCmdPolicyDemo(t *testing.T) {
	dir := filepath.Join("..", "..", "policy", "testdata")
	var stdout, stderr bytes.Buffer
	code := cmdPolicy(context.Background(), []string{"test", dir}, nil, &stdout, &stderr)
	assert.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	assert.Equal(t, "ok  \t"+dir+"\t7 cases\n", stdout.String())
}
