package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// version is the version of oars, set at build time with
// -ldflags "-X main.version=v1.2.3". Left at "dev", oars version reports
// the module version from the build information instead, when there is
// one (a binary built with go install module@version).
var version = "dev"

const versionUsageText = `usage: oars version

version prints the version of oars, the Go version it was built with, and
the module version and VCS revision from its build information.
`

// cmdVersion runs `oars version`.
func cmdVersion(_ context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, versionUsageText)
			return 0
		}
		fmt.Fprintf(stderr, "oars version: unexpected argument %q\n", printable(args[0]))
		fmt.Fprint(stderr, versionUsageText)
		return 2
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	writeVersion(stdout, version, info)
	return 0
}

// writeVersion writes the lines of oars version for the version variable
// v and the build information info (nil when the binary has none).
func writeVersion(w io.Writer, v string, info *debug.BuildInfo) {
	if v == "dev" && info != nil && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	fmt.Fprintf(w, "oars %s\n", v)
	if info == nil {
		fmt.Fprintln(w, "build information: none")
		return
	}
	fmt.Fprintf(w, "go: %s\n", info.GoVersion)
	if info.Main.Path != "" {
		mv := info.Main.Version
		if mv == "" {
			mv = "(devel)"
		}
		fmt.Fprintf(w, "module: %s %s\n", info.Main.Path, mv)
	}
	var rev, when, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			when = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev != "" {
		line := "commit: " + rev
		if when != "" {
			line += " (" + when + ")"
		}
		if modified == "true" {
			line += ", modified"
		}
		fmt.Fprintln(w, line)
	}
}
