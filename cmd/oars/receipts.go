package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

const receiptsUsageText = `usage: oars receipts get ID --server URL [--token T]
       oars receipts list --server URL [--token T] [--tenant T] [--agent A]
                          [--action ID] [--status S] [--since TIME] [--until TIME]
                          [--limit N] [--cursor C | --all]

receipts reads signed receipts from an oarsd server.

get prints the receipt ID exactly as recorded (the signed bytes) and a
newline. list prints the receipts that match the filters, oldest first, one
JSON receipt per line (JSON Lines): one page of at most --limit receipts,
or with --all every page, following the server's cursor. When more pages
remain, list says so on stderr with the --cursor to continue from. TIME is
RFC 3339 (2026-01-02T15:04:05Z).

The server is https, or http for a loopback host (127.0.0.0/8, ::1,
localhost) only. The API token comes from --token or, to keep it out of
shell history, the OARS_TOKEN environment variable; it is never printed.

Exit status: 0 on success, 1 when the receipt (or the tenant) is not found,
2 on a usage error or any other failure (an unreachable server, a refused
token, an invalid filter).
`

// cmdReceipts runs `oars receipts get|list`.
func cmdReceipts(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, receiptsUsageText)
		return 2
	}
	switch args[0] {
	case "get":
		return receiptsGet(ctx, args[1:], stdout, stderr)
	case "list":
		return receiptsList(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, receiptsUsageText)
		return 0
	default:
		fmt.Fprintf(stderr, "oars receipts: unknown subcommand %q; want get or list\n", printable(args[0]))
		fmt.Fprint(stderr, receiptsUsageText)
		return 2
	}
}

// serverFlags are the flags of the commands that call the API.
type serverFlags struct {
	server string
	token  string
}

func (sf *serverFlags) register(flags *flag.FlagSet) {
	flags.StringVar(&sf.server, "server", "", "the oarsd base `URL` (https, or http for a loopback host)")
	flags.StringVar(&sf.token, "token", "", "the API `token` (default $"+tokenEnv+")")
}

// client checks the flags and returns the API client they describe, with
// up to conns connections and requests bounded by timeout.
func (sf *serverFlags) client(conns int, timeout time.Duration) (*apiClient, error) {
	if sf.server == "" {
		return nil, errors.New("--server URL is required")
	}
	base, err := parseServerURL("--server", sf.server)
	if err != nil {
		return nil, err
	}
	token, err := resolveToken(sf.token)
	if err != nil {
		return nil, err
	}
	return &apiClient{http: newHTTPClient(conns, timeout), base: base, token: token}, nil
}

// newFlagSet returns a flag set that reports to stderr and prints usage
// (the command's text, then its flags).
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	flags := flag.NewFlagSet(name, flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nflags:")
		flags.PrintDefaults()
	}
	return flags
}

// requestFailed reports err from an API call on stderr and returns the
// exit status: 1 for a 404, 2 otherwise.
func requestFailed(stderr io.Writer, prefix string, err error) int {
	fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
	if se, ok := errors.AsType[*httpStatusError](err); ok && se.Status == http.StatusNotFound {
		return 1
	}
	return 2
}

// receiptsGet runs `oars receipts get ID`.
func receiptsGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prefix = "oars receipts get"
	flags := newFlagSet(prefix, receiptsUsageText, stderr)
	var sf serverFlags
	sf.register(flags)
	ids, err := verifyParseArgs(flags, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(ids) != 1 || ids[0] == "" {
		fmt.Fprintf(stderr, "%s: want exactly one receipt ID\n", prefix)
		return 2
	}
	c, err := sf.client(1, httpTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 2
	}
	defer c.http.CloseIdleConnections()
	body, err := get(ctx, c.http, c.endpoint("/v1/receipts/"+url.PathEscape(ids[0]), nil), c.token, httpMaxBody)
	if err != nil {
		return requestFailed(stderr, prefix, err)
	}
	if !json.Valid(body) {
		fmt.Fprintf(stderr, "%s: the server's answer is not JSON\n", prefix)
		return 2
	}
	if _, err := stdout.Write(append(body, '\n')); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 2
	}
	return 0
}

// receiptPage is the answer of GET /v1/receipts.
type receiptPage struct {
	Receipts   []json.RawMessage `json:"receipts"`
	NextCursor string            `json:"next_cursor"`
}

// receiptsList runs `oars receipts list`.
func receiptsList(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	const prefix = "oars receipts list"
	flags := newFlagSet(prefix, receiptsUsageText, stderr)
	var sf serverFlags
	sf.register(flags)
	var (
		tenant = flags.String("tenant", "", "only receipts of `tenant`")
		agent  = flags.String("agent", "", "only receipts of `agent`")
		action = flags.String("action", "", "only receipts of action `ID`")
		status = flags.String("status", "", "only receipts of `status` (allowed, denied, executed, …)")
		since  = flags.String("since", "", "only receipts issued at or after `TIME` (RFC 3339)")
		until  = flags.String("until", "", "only receipts issued before `TIME` (RFC 3339)")
		limit  = flags.Int("limit", 0, "at most `N` receipts a page (default: the server's)")
		cursor = flags.String("cursor", "", "continue from `cursor` C, as printed by an earlier list")
		all    = flags.Bool("all", false, "list every page")
	)
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n", prefix, printable(flags.Arg(0)))
		return 2
	}
	q := url.Values{}
	for _, f := range []struct{ param, value string }{
		{"tenant_id", *tenant}, {"agent_id", *agent}, {"action_id", *action}, {"status", *status}, {"cursor", *cursor},
	} {
		if f.value != "" {
			q.Set(f.param, f.value)
		}
	}
	for _, f := range []struct{ flag, param, value string }{{"--since", "since", *since}, {"--until", "until", *until}} {
		if f.value == "" {
			continue
		}
		if _, err := time.Parse(time.RFC3339Nano, f.value); err != nil {
			fmt.Fprintf(stderr, "%s: %s must be an RFC 3339 time such as 2026-01-02T15:04:05Z\n", prefix, f.flag)
			return 2
		}
		q.Set(f.param, f.value)
	}
	switch {
	case *limit < 0:
		fmt.Fprintf(stderr, "%s: --limit must be positive\n", prefix)
		return 2
	case *limit > 0:
		q.Set("limit", strconv.Itoa(*limit))
	}
	if *all && *cursor != "" {
		fmt.Fprintf(stderr, "%s: give at most one of --all and --cursor\n", prefix)
		return 2
	}
	c, err := sf.client(1, httpTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 2
	}
	defer c.http.CloseIdleConnections()

	for {
		body, err := get(ctx, c.http, c.endpoint("/v1/receipts", q), c.token, httpMaxBody)
		if err != nil {
			return requestFailed(stderr, prefix, err)
		}
		var page receiptPage
		if err := json.Unmarshal(body, &page); err != nil {
			fmt.Fprintf(stderr, "%s: the server's answer is not a page of receipts\n", prefix)
			return 2
		}
		for _, r := range page.Receipts {
			if _, err := stdout.Write(append(compactJSON(r), '\n')); err != nil {
				fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
				return 2
			}
		}
		switch {
		case page.NextCursor == "":
			return 0
		case !*all:
			fmt.Fprintf(stderr, "%s: more receipts: continue with --cursor %s, or list them all with --all\n", prefix, printable(page.NextCursor))
			return 0
		case page.NextCursor == q.Get("cursor"):
			fmt.Fprintf(stderr, "%s: the server returned the same cursor twice\n", prefix)
			return 2
		}
		q.Set("cursor", page.NextCursor)
	}
}

// compactJSON returns r on one line. Receipts are canonical JSON, already
// on one line, and come back unchanged; anything else a server sent is
// compacted so that JSON Lines stay one value a line.
func compactJSON(r json.RawMessage) []byte {
	for _, b := range r {
		if b == '\n' || b == '\r' {
			var buf bytes.Buffer
			if json.Compact(&buf, r) == nil {
				return buf.Bytes()
			}
			break
		}
	}
	return r
}
