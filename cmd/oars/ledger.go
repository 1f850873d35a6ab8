package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/postgres"
	"github.com/oarsdev/oars/storage/sqlite"
)

const ledgerUsageText = `usage: oars ledger verify --data-dir DIR [--jwks FILE]
       oars ledger verify --postgres URL [--schema S] [--jwks FILE]

ledger verify audits a whole ledger offline: it reads every entry,
recomputes every Merkle hash from the entries alone and compares it with the
stored one, and, given the public keys, checks each entry's signature and
that the receipts of each action chain (seq and prev_receipt_digest).

The ledger is DIR/oars.db, opened read-only (never created or migrated),
or the PostgreSQL database of --postgres URL (a postgres:// URL or
key=value connection string; OARS_POSTGRES_URL if the flag is omitted)
in schema S (default public), read in read-only transactions, so an
absent or outdated schema is reported, never created or migrated. Give
exactly one of --data-dir and --postgres. The keys are the JWKS in --jwks
FILE, or else DIR/jwks.json if it exists; without keys only the hashes
are checked.

It prints "ok: N entries, root ROOT" and how signatures were checked, and
exits 0; or prints "invalid: entry I: REASON" naming the first bad entry (or
"invalid: REASON" for a damaged database) and exits 1. Usage errors, a
missing ledger, an unreadable JWKS and other failures to read the ledger
exit 2.
`

// Files oars ledger looks for in the data directory (as oarsd writes them).
const (
	ledgerDBFile   = "oars.db"
	ledgerJWKSFile = "jwks.json"
)

// ledgerMaxJWKS bounds the size of the JWKS file oars ledger reads.
const ledgerMaxJWKS = 16 << 20

// ledgerPostgresEnv names the environment variable holding the
// PostgreSQL connection string when --postgres is not given (it may hold a
// password, which is better kept out of shell history).
const ledgerPostgresEnv = "OARS_POSTGRES_URL"

// ledgerSource says where the ledger to verify lives; flags fill it and
// openLedgerStore opens it. A new backend adds a field here, a flag in
// ledgerFlags and a branch in openLedgerStore.
type ledgerSource struct {
	dataDir  string
	postgres string
	schema   string
}

// ledgerFlags registers the flags that choose the store (of oars ledger
// and oars vault) on flags.
func ledgerFlags(flags *flag.FlagSet, src *ledgerSource) {
	flags.StringVar(&src.dataDir, "data-dir", "", "the data `DIR` holding "+ledgerDBFile)
	flags.StringVar(&src.postgres, "postgres", "", "the PostgreSQL connection `URL` (default $"+ledgerPostgresEnv+")")
	flags.StringVar(&src.schema, "schema", "", "the PostgreSQL `schema` of the store (default public)")
}

// check validates the flags of src, taking the connection string from
// the environment when neither --data-dir nor --postgres is given.
func (src *ledgerSource) check() error {
	if src.dataDir == "" && src.postgres == "" {
		src.postgres = os.Getenv(ledgerPostgresEnv)
	}
	switch {
	case src.dataDir != "" && src.postgres != "":
		return errors.New("give exactly one of --data-dir DIR and --postgres URL")
	case src.dataDir == "" && src.postgres == "":
		return errors.New("--data-dir DIR or --postgres URL is required")
	case src.schema != "" && src.postgres == "":
		return errors.New("--schema goes with --postgres")
	}
	return nil
}

// openLedgerStore opens the ledger named by src read-only and returns it
// with its close function.
func openLedgerStore(ctx context.Context, src ledgerSource) (ledger.Store, func() error, error) {
	if src.postgres != "" {
		return openPostgresLedger(ctx, src)
	}
	if src.dataDir == "" {
		return nil, nil, errors.New("--data-dir DIR is required")
	}
	if err := checkDataDir(src.dataDir); err != nil {
		return nil, nil, err
	}
	s, err := sqlite.Open(ctx, filepath.Join(src.dataDir, ledgerDBFile), sqlite.WithReadOnly())
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no ledger (%s) in %s", ledgerDBFile, src.dataDir)
		}
		return nil, nil, err
	}
	return s, s.Close, nil
}

// openPostgresLedger opens the PostgreSQL ledger of src read-only.
func openPostgresLedger(ctx context.Context, src ledgerSource) (ledger.Store, func() error, error) {
	s, err := openPostgres(ctx, src, true, "ledger", "verify does not create or migrate it; start oarsd on it first")
	if err != nil {
		return nil, nil, err
	}
	return s, s.Close, nil
}

// checkDataDir checks that the data directory dir exists and is a
// directory.
func checkDataDir(dir string) error {
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return fmt.Errorf("data dir: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("data dir %s is not a directory", dir)
	}
	return nil
}

// openPostgres opens the PostgreSQL store of src in its schema (default
// public). With readOnly every transaction is read-only, so an absent or
// outdated schema makes the migration in postgres.Open fail instead of
// writing; that failure is reported as "no WHAT in schema S (or one of an
// older version): HINT".
func openPostgres(ctx context.Context, src ledgerSource, readOnly bool, what, hint string) (*postgres.Store, error) {
	schema := cmp.Or(src.schema, "public")
	conn := src.postgres
	if readOnly {
		conn = readOnlyConnString(conn)
	}
	s, err := postgres.Open(ctx, conn, postgres.WithSchema(schema))
	if err != nil {
		var pgErr *pgconn.PgError
		if readOnly && errors.As(err, &pgErr) && pgErr.Code == pgReadOnlyTransaction {
			return nil, fmt.Errorf("no %s in schema %q (or one of an older version): %s", what, schema, hint)
		}
		return nil, err
	}
	return s, nil
}

// pgReadOnlyTransaction is PostgreSQL's SQLSTATE for a write attempted in
// a read-only transaction.
const pgReadOnlyTransaction = "25006"

// readOnlyConnString returns conn with the session parameter
// default_transaction_read_only=on added, so that every transaction of the
// session is read-only. conn is a postgres:// URL or a key=value string;
// the parameter is added last, overriding any earlier setting.
func readOnlyConnString(conn string) string {
	const param = "default_transaction_read_only=on"
	if strings.HasPrefix(conn, "postgres://") || strings.HasPrefix(conn, "postgresql://") {
		if strings.Contains(conn, "?") {
			return conn + "&" + param
		}
		return conn + "?" + param
	}
	if strings.TrimSpace(conn) == "" {
		return param
	}
	return conn + " " + param
}

// cmdLedger runs `oars ledger verify`. It returns 0 when the ledger
// verifies, 1 when it does not, and 2 on a usage error.
func cmdLedger(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, ledgerUsageText)
		return 2
	}
	switch args[0] {
	case "verify":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, ledgerUsageText)
		return 0
	default:
		fmt.Fprintf(stderr, "oars ledger: unknown subcommand %q; want verify\n", args[0])
		fmt.Fprint(stderr, ledgerUsageText)
		return 2
	}

	flags := flag.NewFlagSet("oars ledger verify", flag.ContinueOnError)
	flags.SetOutput(stderr)
	var src ledgerSource
	ledgerFlags(flags, &src)
	jwksPath := flags.String("jwks", "", "the JWKS `FILE` with the public keys (default DIR/"+ledgerJWKSFile+" if present)")
	flags.Usage = func() {
		fmt.Fprint(stderr, ledgerUsageText)
		fmt.Fprintln(stderr, "\nflags:")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "oars ledger verify: unexpected argument %q\n", flags.Arg(0))
		flags.Usage()
		return 2
	}
	if err := src.check(); err != nil {
		fmt.Fprintf(stderr, "oars ledger verify: %v\n", err)
		return 2
	}

	checker, nkeys, err := ledgerChecker(*jwksPath, src.dataDir)
	if err != nil {
		fmt.Fprintf(stderr, "oars ledger verify: %v\n", err)
		return 2
	}
	s, closeStore, err := openLedgerStore(ctx, src)
	if err != nil {
		return ledgerFail(stdout, stderr, err)
	}
	defer closeStore()

	var c ledger.EntryChecker
	if checker != nil {
		c = checker
	}
	rep, err := ledger.Verify(ctx, s, c)
	if err != nil {
		return ledgerFail(stdout, stderr, err)
	}
	fmt.Fprintf(stdout, "ok: %d entries, root %s\n", rep.Size, rep.Root)
	if checker == nil {
		fmt.Fprintln(stdout, "signatures: not checked (no JWKS)")
	} else {
		fmt.Fprintf(stdout, "signatures: checked with %d %s\n", nkeys, ledgerPlural(nkeys, "key", "keys"))
	}
	return 0
}

// ledgerChecker returns the entry checker for the JWKS at jwksPath, or at
// DIR/jwks.json when jwksPath is empty and that file exists; nil when there
// are no keys to check with.
func ledgerChecker(jwksPath, dataDir string) (*receipt.LogChecker, int, error) {
	if jwksPath == "" {
		if dataDir == "" {
			return nil, 0, nil
		}
		p := filepath.Join(dataDir, ledgerJWKSFile)
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, 0, nil
			}
			return nil, 0, fmt.Errorf("JWKS: %w", err)
		}
		jwksPath = p
	}
	data, err := ledgerReadFile(jwksPath, ledgerMaxJWKS)
	if err != nil {
		return nil, 0, fmt.Errorf("read JWKS: %w", err)
	}
	keys, err := receipt.ParseJWKS(data)
	if err != nil {
		return nil, 0, err
	}
	v, err := receipt.NewVerifier(keys)
	if err != nil {
		return nil, 0, err
	}
	return receipt.NewLogChecker(v), keys.Len(), nil
}

// ledgerFail reports a failed open or verification and returns its exit
// status: 1 when the ledger does not hold together, 2 when it could not be
// checked (no ledger, a newer schema, an I/O error).
func ledgerFail(stdout, stderr io.Writer, err error) int {
	var verr *ledger.VerifyError
	switch {
	case errors.As(err, &verr):
		fmt.Fprintf(stdout, "invalid: entry %d: %s\n", verr.Index, ledgerReason(verr))
		return 1
	case errors.Is(err, sqlite.ErrCorrupt), errors.Is(err, postgres.ErrCorrupt):
		fmt.Fprintf(stdout, "invalid: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "oars ledger verify: %v\n", err)
	return 2
}

// ledgerReason says what is wrong with the entry of verr: the hash check
// that failed, or the receipt check that failed and why.
func ledgerReason(verr *ledger.VerifyError) string {
	var rerr *receipt.VerifyError
	if errors.As(verr.Err, &rerr) {
		return rerr.Check.String() + ": " + rerr.Err.Error()
	}
	if verr.Err != nil && !errors.Is(verr.Err, ledger.ErrTampered) {
		return verr.Reason + ": " + verr.Err.Error()
	}
	return verr.Reason
}

// ledgerReadFile reads the file at path, failing if it is larger than max
// bytes.
func ledgerReadFile(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return data, nil
}

func ledgerPlural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
