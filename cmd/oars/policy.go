package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/oarsdev/oars/policy"
)

const policyUsageText = `usage: oars policy lint FILE|DIR...
       oars policy test [-v] DIR

lint parses, validates and type-checks policy documents; a directory stands
for the policy documents (*.yaml, *.yml but not *_test.yaml) in it.
test runs the test cases (*_test.yaml) in DIR against the policies in DIR.
`

// cmdPolicy runs `oars policy lint|test`. It returns 0 when every document
// is valid or every test case passes, 1 when one is not, and 2 on a usage
// error.
func cmdPolicy(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, policyUsageText)
		return 2
	}
	switch args[0] {
	case "lint":
		return policyLint(args[1:], stdout, stderr)
	case "test":
		return policyTest(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, policyUsageText)
		return 0
	}
	fmt.Fprintf(stderr, "oars policy: unknown subcommand %q\n", args[0])
	fmt.Fprint(stderr, policyUsageText)
	return 2
}

// newPolicyFlags returns a flag set for a policy subcommand that reports
// errors and usage on stderr.
func newPolicyFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("oars policy "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, policyUsageText)
		if hasFlags(fs) {
			fmt.Fprintln(stderr, "\nflags:")
			fs.PrintDefaults()
		}
	}
	return fs
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// parseFlags parses args and reports the exit status to return when parsing
// ends the command (-h: 0, bad flag: 2).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0, false
		}
		return 2, false
	}
	return 0, true
}

func plural(n int, word string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, word)
	}
	return fmt.Sprintf("%d %ss", n, word)
}

func policyLint(args []string, stdout, stderr io.Writer) int {
	fs := newPolicyFlags("lint", stderr)
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "oars policy lint: no files given")
		fs.Usage()
		return 2
	}
	var files []string
	for _, arg := range fs.Args() {
		info, err := os.Stat(arg)
		if err != nil || !info.IsDir() {
			files = append(files, arg)
			continue
		}
		entries, err := os.ReadDir(arg)
		if err != nil {
			fmt.Fprintf(stderr, "oars policy lint: %v\n", err)
			return 1
		}
		n := 0
		for _, e := range entries {
			name := e.Name()
			if e.IsDir() || !(strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")) ||
				strings.HasSuffix(name, "_test.yaml") || strings.HasSuffix(name, "_test.yml") {
				continue
			}
			files = append(files, filepath.Join(arg, name))
			n++
		}
		if n == 0 {
			fmt.Fprintf(stderr, "oars policy lint: %s: no policy documents (*.yaml, *.yml)\n", arg)
			return 1
		}
	}
	failed := false
	var valid []*policy.Policy
	for _, file := range files {
		p, err := policy.LoadFile(file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			failed = true
			continue
		}
		valid = append(valid, p)
		fmt.Fprintf(stdout, "ok: %s (%s v%s, %s)\n", file, p.ID, p.Version, plural(len(p.Rules), "rule"))
	}
	if failed {
		return 1
	}
	// Policies linted together are meant to be loaded together: their ids
	// must not collide.
	if _, err := policy.NewSet(valid...); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

func policyTest(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newPolicyFlags("test", stderr)
	verbose := fs.Bool("v", false, "list passing cases too")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "oars policy test: want exactly one directory")
		fs.Usage()
		return 2
	}
	dir := fs.Arg(0)
	setupFailed := func(err error) int {
		fmt.Fprintln(stderr, err)
		fmt.Fprintf(stdout, "FAIL\t%s\t[setup failed]\n", dir)
		return 1
	}
	ps, err := policy.LoadDir(dir)
	if err != nil {
		return setupFailed(err)
	}
	set, err := policy.NewSet(ps...)
	if err != nil {
		return setupFailed(err)
	}
	cases, err := policy.LoadTests(dir)
	if err != nil {
		return setupFailed(err)
	}
	if len(cases) == 0 {
		fmt.Fprintf(stdout, "?   \t%s\t[no test files]\n", dir)
		return 0
	}
	failed := 0
	for _, r := range policy.RunTests(ctx, set, cases) {
		where := fmt.Sprintf("%s:%d", filepath.Base(r.Case.File), r.Case.Line)
		if r.Pass {
			if *verbose {
				fmt.Fprintf(stdout, "--- PASS: %s (%s)\n", r.Case.Name, where)
			}
			continue
		}
		failed++
		fmt.Fprintf(stdout, "--- FAIL: %s (%s)\n", r.Case.Name, where)
		for line := range strings.SplitSeq(strings.TrimRight(r.Diff(), "\n"), "\n") {
			fmt.Fprintf(stdout, "    %s\n", line)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "FAIL\t%s\t%d of %s failed\n", dir, failed, plural(len(cases), "case"))
		return 1
	}
	fmt.Fprintf(stdout, "ok  \t%s\t%s\n", dir, plural(len(cases), "case"))
	return 0
}
