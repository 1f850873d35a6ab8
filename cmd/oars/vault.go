package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/storage/sqlite"
)

const vaultUsageText = `usage: oars vault keygen [--id ID]
       oars vault put NAME --data-dir DIR | --postgres URL [--schema S]  < secret
       oars vault list --data-dir DIR | --postgres URL [--schema S]
       oars vault delete NAME --data-dir DIR | --postgres URL [--schema S]
       oars vault rotate --data-dir DIR | --postgres URL [--schema S]

vault manages the secrets of connectors (API tokens, passwords), kept
encrypted in the store oarsd uses: DIR/oars.db, or the PostgreSQL
database of --postgres URL (OARS_POSTGRES_URL if the flag is omitted) in
schema S (default public). Give exactly one of --data-dir and --postgres.

keygen prints a new vault key, ID:BASE64KEY, once; ID defaults to k and
the current UTC time. The keys are taken from the OARS_VAULT_KEYS
environment variable, never from a flag: a comma-separated list of keys,
the active one first (OARS_VAULT_KEYS=k2:…,k1:…). put and rotate need
them; list and delete do not.

put reads the secret from stdin, removes one trailing newline, and stores
it under NAME sealed with the active key, replacing any earlier value.
NAME is 1 to 200 characters of A-Z, a-z, 0-9, '.', '_', '/' and '-'.
list prints NAME, KEY_ID and UPDATED (RFC 3339) of each secret, separated
by tabs, never a value. delete removes NAME.

To change keys: run keygen, put the new key first in OARS_VAULT_KEYS and
keep the old ones after it, give oarsd the same keys, then run rotate,
which re-encrypts under the active key every secret sealed under another.
Once it succeeds, the old keys may leave OARS_VAULT_KEYS.

Exit status: 0 on success, 1 on failure, 2 on a usage error.
`

// vaultKeysEnv names the environment variable holding the vault keys.
const vaultKeysEnv = "OARS_VAULT_KEYS"

// cmdVault runs `oars vault`. It returns 0 on success, 1 on failure and 2
// on a usage error.
func cmdVault(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, vaultUsageText)
		return 2
	}
	switch args[0] {
	case "keygen":
		return vaultKeygen(ctx, args[1:], stdout, stderr)
	case "put", "list", "delete", "rotate":
		return vaultStoreCommand(ctx, args[0], args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, vaultUsageText)
		return 0
	}
	fmt.Fprintf(stderr, "oars vault: unknown subcommand %q; want keygen, put, list, delete or rotate\n", args[0])
	fmt.Fprint(stderr, vaultUsageText)
	return 2
}

// vaultKeygen runs `oars vault keygen`.
func vaultKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("oars vault keygen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	id := flags.String("id", "", "the key `ID` (default k and the current UTC time)")
	flags.Usage = func() {
		fmt.Fprint(stderr, vaultUsageText)
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
		fmt.Fprintf(stderr, "oars vault keygen: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	if *id == "" {
		*id = time.Now().UTC().Format("k20060102-150405")
	}
	if err := ctx.Err(); err != nil {
		fmt.Fprintf(stderr, "oars vault keygen: %v\n", err)
		return 1
	}
	key, err := vault.GenerateKey(*id)
	if err != nil {
		fmt.Fprintf(stderr, "oars vault keygen: %v\n", err)
		return 2
	}
	fmt.Fprintln(stdout, key.String())
	fmt.Fprintf(stderr, "oars vault keygen: put this key first in %s, keeping older keys after it until `oars vault rotate` has run\n", vaultKeysEnv)
	return 0
}

// vaultStoreCommand runs `oars vault put|list|delete|rotate`.
func vaultStoreCommand(ctx context.Context, sub string, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	prog := "oars vault " + sub
	flags := flag.NewFlagSet(prog, flag.ContinueOnError)
	flags.SetOutput(stderr)
	var src ledgerSource
	ledgerFlags(flags, &src)
	flags.Usage = func() {
		fmt.Fprint(stderr, vaultUsageText)
		fmt.Fprintln(stderr, "\nflags:")
		flags.PrintDefaults()
	}
	pos, err := vaultParse(flags, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	wantArgs := 0
	if sub == "put" || sub == "delete" {
		wantArgs = 1
	}
	switch {
	case len(pos) < wantArgs:
		fmt.Fprintf(stderr, "%s: NAME is required\n", prog)
		return 2
	case len(pos) > wantArgs:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", prog, pos[wantArgs])
		return 2
	}
	var name string
	if wantArgs == 1 {
		name = pos[0]
		if err := vault.CheckName(name); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
	}
	if err := src.check(); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 2
	}
	var keys *vault.Keyring
	if sub == "put" || sub == "rotate" {
		if keys, err = vaultKeys(); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 2
		}
	}
	var secret []byte
	if sub == "put" {
		if secret, err = vaultReadSecret(stdin, stderr); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		defer clear(secret)
	}

	s, err := openVaultStore(ctx, src, sub)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	defer s.Close()

	switch sub {
	case "list":
		infos, err := s.ListSecrets(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		for _, info := range infos {
			fmt.Fprintf(stdout, "%s\t%s\t%s\n", info.Name, info.KeyID, info.UpdatedAt.UTC().Format(time.RFC3339))
		}
		return 0
	case "delete":
		if err := s.DeleteSecret(ctx, name); err != nil {
			if errors.Is(err, vault.ErrNotFound) {
				fmt.Fprintf(stderr, "%s: no secret %s\n", prog, name)
			} else {
				fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			}
			return 1
		}
		fmt.Fprintf(stdout, "ok: deleted %s\n", name)
		return 0
	}

	v, err := vault.New(s, keys)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	if sub == "put" {
		if err := v.Put(ctx, name, secret); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", prog, err)
			return 1
		}
		fmt.Fprintf(stdout, "ok: stored %s under key %s\n", name, keys.ActiveID())
		return 0
	}
	n, err := v.Rotate(ctx)
	fmt.Fprintf(stdout, "re-encrypted %d %s under key %s\n", n, ledgerPlural(n, "secret", "secrets"), keys.ActiveID())
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prog, err)
		return 1
	}
	return 0
}

// vaultParse parses args with flags, allowing positional arguments
// before, between and after the flags, and returns the positional ones.
func vaultParse(flags *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := flags.Parse(args); err != nil {
			return nil, err
		}
		if flags.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, flags.Arg(0))
		args = flags.Args()[1:]
	}
}

// vaultKeys returns the keyring in OARS_VAULT_KEYS.
func vaultKeys() (*vault.Keyring, error) {
	s := os.Getenv(vaultKeysEnv)
	if s == "" {
		return nil, fmt.Errorf("%s is not set: give the vault keys there (generate one with `oars vault keygen`)", vaultKeysEnv)
	}
	keys, err := vault.ParseKeys(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", vaultKeysEnv, err)
	}
	return keys, nil
}

// vaultReadSecret reads the secret of `oars vault put` from stdin and
// removes one trailing newline ("\n" or "\r\n"). It fails on an empty
// secret and one longer than vault.MaxSecretSize.
func vaultReadSecret(stdin io.Reader, stderr io.Writer) ([]byte, error) {
	if f, ok := stdin.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&fs.ModeCharDevice != 0 {
			fmt.Fprintln(stderr, "oars vault put: reading the secret from stdin; end it with Ctrl-D")
		}
	}
	b, err := io.ReadAll(io.LimitReader(stdin, vault.MaxSecretSize+3))
	if err != nil {
		clear(b)
		return nil, fmt.Errorf("read the secret from stdin: %w", err)
	}
	secret := b
	if n := len(secret); n > 0 && secret[n-1] == '\n' {
		secret = secret[:n-1]
		if n := len(secret); n > 0 && secret[n-1] == '\r' {
			secret = secret[:n-1]
		}
	}
	switch {
	case len(secret) == 0:
		clear(b)
		return nil, errors.New("empty secret on stdin")
	case len(secret) > vault.MaxSecretSize:
		clear(b)
		return nil, fmt.Errorf("the secret on stdin is longer than %d bytes", vault.MaxSecretSize)
	}
	return secret, nil
}

// vaultStore is a vault store the command closes when done.
type vaultStore interface {
	vault.Store
	Close() error
}

// openVaultStore opens the store of src for subcommand sub: read-only for
// list; read-write for the others, where only put may create a SQLite
// database in an existing data directory.
func openVaultStore(ctx context.Context, src ledgerSource, sub string) (vaultStore, error) {
	readOnly := sub == "list"
	if src.postgres != "" {
		s, err := openPostgres(ctx, src, readOnly, "store", "list does not create or migrate it")
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return s, nil
	}
	if err := checkDataDir(src.dataDir); err != nil {
		return nil, err
	}
	path := filepath.Join(src.dataDir, ledgerDBFile)
	if sub != "put" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("no store (%s) in %s", ledgerDBFile, src.dataDir)
		}
	}
	var opts []sqlite.Option
	if readOnly {
		opts = append(opts, sqlite.WithReadOnly())
	}
	s, err := sqlite.Open(ctx, path, opts...)
	if err != nil {
		return nil, err
	}
	return s, nil
}
