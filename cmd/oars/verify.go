package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode"

	"github.com/oarsdev/oars/receipt"
)

const verifyUsageText = `usage: oars verify receipt FILE --jwks FILE|URL

verify receipt checks a signed receipt against the public keys of a JWKS.
FILE holds one receipt, or a JSON array of the receipts of one action in
order, whose chain (seq 1, 2, 3, … and prev_receipt_digest) is checked
too. FILE - reads stdin.

The JWKS is a file, or a URL it is fetched from (for example
https://oars.example.com/.well-known/oap/jwks.json): https, or http for a
loopback host (127.0.0.0/8, ::1, localhost) only, answered within 10 s with
200 and at most 1 MiB. Fetching keys over the network trusts whoever
answers at that URL; for an audit, keep a copy of the keys you trust.

It prints "ok: receipt …" for each valid receipt and exits 0, or prints
"invalid: CHECK: DETAIL" naming the failing check (parse, canonical, format,
unknown key, signature, chain, seq) and exits 1. Usage errors exit 2.
`

// verifyMaxInput bounds the size of the files oars verify reads.
const verifyMaxInput = 64 << 20

// cmdVerify runs `oars verify receipt FILE --jwks FILE`. It returns 0 when
// every receipt is valid, 1 when one is not, and 2 on a usage error
// (including unreadable files and an invalid JWKS).
func cmdVerify(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, verifyUsageText)
		return 2
	}
	switch args[0] {
	case "receipt":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, verifyUsageText)
		return 0
	default:
		fmt.Fprintf(stderr, "oars verify: unknown kind %q; want receipt\n", args[0])
		fmt.Fprint(stderr, verifyUsageText)
		return 2
	}

	flags := flag.NewFlagSet("oars verify receipt", flag.ContinueOnError)
	flags.SetOutput(stderr)
	jwksPath := flags.String("jwks", "", "the JWKS `FILE` or URL with the trusted public keys")
	flags.Usage = func() {
		fmt.Fprint(stderr, verifyUsageText)
		fmt.Fprintln(stderr, "\nflags:")
		flags.PrintDefaults()
	}
	files, err := verifyParseArgs(flags, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	switch {
	case len(files) != 1:
		fmt.Fprintln(stderr, "oars verify: want exactly one receipt FILE")
		flags.Usage()
		return 2
	case *jwksPath == "":
		fmt.Fprintln(stderr, "oars verify: --jwks FILE|URL is required")
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "oars verify: %v\n", err)
		return 2
	}

	var jwks []byte
	if isURL(*jwksPath) {
		c := newHTTPClient(1, httpTimeout)
		jwks, err = fetchJWKS(ctx, c, *jwksPath)
		c.CloseIdleConnections()
	} else {
		jwks, err = verifyReadFile(*jwksPath, stdin)
		if err != nil {
			err = fmt.Errorf("read JWKS: %w", err)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "oars verify: %v\n", err)
		return 2
	}
	keys, err := receipt.ParseJWKS(jwks)
	if err != nil {
		fmt.Fprintf(stderr, "oars verify: %v\n", err)
		return 2
	}
	v, err := receipt.NewVerifier(keys)
	if err != nil {
		fmt.Fprintf(stderr, "oars verify: %v\n", err)
		return 2
	}
	data, err := verifyReadFile(files[0], stdin)
	if err != nil {
		fmt.Fprintf(stderr, "oars verify: read receipt: %v\n", err)
		return 2
	}

	receipts, err := verifyReceipts(v, data)
	if err != nil {
		fmt.Fprintln(stdout, verifyInvalid(err))
		return 1
	}
	for _, r := range receipts {
		fmt.Fprintf(stdout, "ok: receipt %s (action %s, seq %d, status %s) signed by %s\n",
			verifyPrintable(r.ReceiptID), verifyPrintable(r.ActionID), r.Seq,
			verifyPrintable(string(r.Status)), verifyPrintable(r.Signature.Kid))
	}
	return 0
}

// verifyParseArgs parses flags that may come before, between or after the
// positional arguments, and returns the positional arguments.
func verifyParseArgs(flags *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := flags.Parse(args); err != nil {
			return nil, err
		}
		args = flags.Args()
		if len(args) == 0 {
			return positional, nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// verifyReadFile reads a file, or stdin for "-", up to verifyMaxInput
// bytes.
func verifyReadFile(path string, stdin io.Reader) ([]byte, error) {
	var r io.Reader = stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, verifyMaxInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > verifyMaxInput {
		return nil, fmt.Errorf("larger than %d bytes", verifyMaxInput)
	}
	return data, nil
}

// verifyReceipts verifies data: one receipt, or a JSON array of the
// receipts of one action.
func verifyReceipts(v *receipt.Verifier, data []byte) ([]*receipt.Receipt, error) {
	trimmed := strings.TrimLeft(string(data), " \t\r\n")
	if !strings.HasPrefix(trimmed, "[") {
		r, err := v.Verify(data)
		if err != nil {
			return nil, err
		}
		return []*receipt.Receipt{r}, nil
	}
	// An array: check the whole file strictly, then each receipt in turn.
	if _, err := receipt.Canonicalize(data); err != nil {
		check := receipt.CheckCanonical
		if errors.Is(err, receipt.ErrSyntax) || errors.Is(err, receipt.ErrEmpty) || errors.Is(err, receipt.ErrTrailingData) {
			check = receipt.CheckParse
		}
		return nil, &receipt.VerifyError{Check: check, Err: err}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(data, &items); err != nil {
		return nil, &receipt.VerifyError{Check: receipt.CheckParse, Err: err}
	}
	chain := make([][]byte, len(items))
	for i, it := range items {
		chain[i] = it
	}
	return v.VerifyChain(chain)
}

// verifyInvalid formats a verification failure as
// "invalid: CHECK: [receipt N: ]DETAIL".
func verifyInvalid(err error) string {
	var verr *receipt.VerifyError
	if !errors.As(err, &verr) {
		return "invalid: " + err.Error()
	}
	detail := verr.Err.Error()
	detail = strings.TrimPrefix(detail, "receipt: canonicalize: ")
	if verr.Position > 0 {
		detail = "receipt " + strconv.Itoa(verr.Position) + ": " + detail
	}
	return "invalid: " + verr.Check.String() + ": " + detail
}

// verifyPrintable returns s, quoted if it holds anything but printable
// characters, so signed values cannot play tricks on a terminal.
func verifyPrintable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}
