package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/oarsdev/oars/internal/strictjson"
)

const jcsUsageText = `usage: oars jcs < in.json > canonical.json

jcs reads one JSON value from stdin and writes its RFC 8785 (JCS) canonical
form to stdout, without a trailing newline. The input must be strict JSON:
duplicate keys, invalid UTF-8, lone surrogates, numbers that are not finite
doubles, nesting deeper than 64 levels and trailing data are rejected
(exit status 1), never repaired.
`

// jcsMaxInput bounds the input of oars jcs.
const jcsMaxInput = 64 << 20

// cmdJCS runs `oars jcs`: canonicalize stdin to stdout. It returns 0 on
// success, 1 when the input is not strict JSON, and 2 on a usage error.
func cmdJCS(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("oars jcs", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() { fmt.Fprint(stderr, jcsUsageText) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintln(stderr, "oars jcs: unexpected arguments; the input is read from stdin")
		flags.Usage()
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "oars jcs: %v\n", err)
		return 1
	}
	data, err := io.ReadAll(io.LimitReader(stdin, jcsMaxInput+1))
	if err != nil {
		fmt.Fprintf(stderr, "oars jcs: read stdin: %v\n", err)
		return 1
	}
	if len(data) > jcsMaxInput {
		fmt.Fprintf(stderr, "oars jcs: input is larger than %d bytes\n", jcsMaxInput)
		return 1
	}
	out, err := strictjson.Canonicalize(data)
	if err != nil {
		fmt.Fprintf(stderr, "oars jcs: %v\n", err)
		return 1
	}
	if _, err := stdout.Write(out); err != nil {
		fmt.Fprintf(stderr, "oars jcs: write stdout: %v\n", err)
		return 1
	}
	return 0
}
