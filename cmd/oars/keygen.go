package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"unicode"
	"unicode/utf8"

	"github.com/oarsdev/oars/receipt"
)

const keygenUsageText = `usage: oars keygen --out FILE [--kid KID]
       oars keygen --print-private [--kid KID]

keygen generates an Ed25519 signing key. With --out it writes the private
key (a JSON Web Key with "d") to a new file readable only by its owner; it
never overwrites an existing file. With --print-private it prints the
private key to stdout instead (or as well).

It prints to stdout:

  kid: KID
  private key: {…}      (only with --print-private)
  jwks: {"keys":[…]}    (the public key set to give to verifiers)

The key id defaults to "oars:" and 16 hex digits of the public key's SHA-256.
`

// cmdKeygen runs `oars keygen`. It returns 0 on success, 1 when the key
// cannot be written, and 2 on a usage error.
func cmdKeygen(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("oars keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	out := flags.String("out", "", "write the private key to the new `FILE` (mode 0600)")
	kid := flags.String("kid", "", "key id (default: oars: + 16 hex digits of the public key's SHA-256)")
	printPrivate := flags.Bool("print-private", false, "print the private key to stdout")
	flags.Usage = func() {
		fmt.Fprint(stderr, keygenUsageText)
		fmt.Fprintln(stderr, "\nflags:")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintln(stderr, "oars keygen: unexpected arguments")
		flags.Usage()
		return 2
	}
	if *out == "" && !*printPrivate {
		fmt.Fprintln(stderr, "oars keygen: --out FILE is required (or --print-private to print the private key to stdout)")
		return 2
	}
	if !keygenValidKid(*kid) {
		fmt.Fprintln(stderr, "oars keygen: --kid must be printable UTF-8 without spaces")
		return 2
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "oars keygen: %v\n", err)
		return 1
	}

	signer, key, err := receipt.GenerateKey(*kid)
	if err != nil {
		fmt.Fprintf(stderr, "oars keygen: %v\n", err)
		return 1
	}
	keys, err := receipt.NewKeySet(signer)
	if err != nil {
		fmt.Fprintf(stderr, "oars keygen: %v\n", err)
		return 1
	}
	jwks, err := keys.MarshalJWKS()
	if err != nil {
		fmt.Fprintf(stderr, "oars keygen: %v\n", err)
		return 1
	}
	var private []byte
	if *printPrivate {
		if private, err = receipt.MarshalPrivateKey(signer.KeyID(), key); err != nil {
			fmt.Fprintf(stderr, "oars keygen: %v\n", err)
			return 1
		}
	}
	if *out != "" {
		if err := receipt.WritePrivateKeyFile(*out, signer.KeyID(), key); err != nil {
			if errors.Is(err, fs.ErrExist) {
				fmt.Fprintf(stderr, "oars keygen: %s already exists; refusing to overwrite it\n", *out)
			} else {
				fmt.Fprintf(stderr, "oars keygen: %v\n", err)
			}
			return 1
		}
		fmt.Fprintf(stderr, "oars keygen: wrote the private key to %s\n", *out)
	}
	fmt.Fprintf(stdout, "kid: %s\n", signer.KeyID())
	if private != nil {
		fmt.Fprintf(stdout, "private key: %s\n", private)
	}
	fmt.Fprintf(stdout, "jwks: %s\n", jwks)
	return 0
}

// keygenValidKid reports whether kid is empty (the default) or printable
// UTF-8 without spaces.
func keygenValidKid(kid string) bool {
	if !utf8.ValidString(kid) {
		return false
	}
	for _, r := range kid {
		if !unicode.IsPrint(r) || unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
