package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const benchUsageText = `usage: oars bench --server URL [--token T] [--concurrency C] [--requests N]
                  [--tenant T] [--agent A] [--user U] [--tool ID] [--operation OP]
                  [--input JSON] [--timeout D]

bench measures an oarsd server under load and then checks its ledger.

It submits N actions (POST /v1/actions) from C concurrent workers over
keep-alive connections, each action with its own resource target and
Idempotency-Key, and reports the requests, the errors by HTTP status,
the decisions, the throughput in acknowledged actions per second and the
p50, p90, p99 and maximum latency of the acknowledged requests.

Then it checks that every acknowledged action is in the ledger: for each
one, GET /v1/actions/{id} (from C workers again) must return the
receipts the server acknowledged, byte for byte, at the same ledger
indexes. It reports "verified: N/M actions have their receipts in the
ledger".

Load a server you run yourself, at an address on this machine or one you
are responsible for; the server's rate limit (--rate-limit, --rate-burst
of oarsd) applies to the token. The token needs the operator, admin or
agent role (the dev token dev_operator_token does). It comes from --token
or the OARS_TOKEN environment variable and is never printed.

Exit status: 0 when every request was acknowledged and every check passed,
1 when a request failed or a check failed, 2 on a usage error.
`

// Limits and defaults of oars bench.
const (
	benchMaxConcurrency = 4096
	benchMaxRequests    = 10_000_000
	benchMaxAnswer      = 1 << 20
	benchDefaultTimeout = 30 * time.Second
	benchMaxSamples     = 5
)

// benchConfig configures runBench. Base, Token, Concurrency and Requests
// are required; the action fields default as cmdBench's flags do.
type benchConfig struct {
	// Client sends the requests; nil means a client with Concurrency
	// keep-alive connections and Timeout per request.
	Client *http.Client
	// Base is the server's base URL.
	Base *url.URL
	// Token is the API token, sent as a bearer token.
	Token string
	// Concurrency is the number of workers, Requests the number of
	// actions they submit in all.
	Concurrency int
	Requests    int
	// The action submitted: each gets the target "bench-RUN-I" and the
	// Idempotency-Key of the same value.
	TenantID, AgentID, UserID, ToolID, Operation string
	Input                                        json.RawMessage
	// RunID names the run in targets and Idempotency-Keys; "" means a
	// random one, so that runs never collide.
	RunID string
	// Timeout bounds each request when Client is nil; 0 means
	// benchDefaultTimeout.
	Timeout time.Duration
}

// benchResult is what runBench measured and checked.
type benchResult struct {
	// Requests is the number of actions submitted, Acknowledged the
	// number the server accepted (201, or 200 for a replay) with a
	// well-formed answer.
	Requests, Acknowledged int
	// Errors counts the failed submissions by kind ("HTTP 429
	// rate_limit_exceeded", "transport error", "malformed answer");
	// ErrorSamples holds up to benchMaxSamples of their messages.
	Errors       map[string]int
	ErrorSamples []string
	// Decisions counts the acknowledged actions by status.
	Decisions map[string]int
	// Elapsed is the wall time of the submissions.
	Elapsed time.Duration
	// Latencies are those of the acknowledged requests, sorted, from
	// sending the request to reading the whole answer.
	Latencies []time.Duration
	// Verified is the number of acknowledged actions whose receipts the
	// ledger returned unchanged; CheckFailures counts the others by kind
	// and CheckSamples holds up to benchMaxSamples of their messages.
	Verified      int
	CheckFailures map[string]int
	CheckSamples  []string
	// VerifyElapsed is the wall time of the checks.
	VerifyElapsed time.Duration
}

// OK reports whether every request was acknowledged and every
// acknowledged action verified.
func (r *benchResult) OK() bool {
	return r.Requests > 0 && r.Acknowledged == r.Requests && r.Verified == r.Acknowledged
}

// Throughput returns the acknowledged actions per second of the load
// phase.
func (r *benchResult) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Acknowledged) / r.Elapsed.Seconds()
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of the latencies
// by the nearest-rank method, or 0 when there are none.
func (r *benchResult) Percentile(p float64) time.Duration {
	n := len(r.Latencies)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(float64(n) * p / 100))
	return r.Latencies[min(max(rank, 1), n)-1]
}

// ack is one acknowledged action: what POST /v1/actions answered.
type ack struct {
	ActionID      string            `json:"action_id"`
	Status        string            `json:"status"`
	Receipts      []json.RawMessage `json:"receipts"`
	LedgerIndexes []int64           `json:"ledger_indexes"`
}

// benchTally gathers failures of many workers: counts by kind and the
// first few messages.
type benchTally struct {
	mu      sync.Mutex
	counts  map[string]int
	samples []string
}

func (t *benchTally) add(kind, msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[kind]++
	if len(t.samples) < benchMaxSamples {
		t.samples = append(t.samples, msg)
	}
}

// runBench submits cfg.Requests actions to the server from
// cfg.Concurrency workers, then checks each acknowledged action's receipts
// in the ledger. Failed requests and checks are counted in the result,
// not returned as errors. It returns an error, with what was measured so
// far, if cfg is invalid or ctx ends.
func runBench(ctx context.Context, cfg benchConfig) (*benchResult, error) {
	switch {
	case cfg.Base == nil:
		return nil, errors.New("bench: no server URL")
	case cfg.Concurrency < 1 || cfg.Concurrency > benchMaxConcurrency:
		return nil, fmt.Errorf("bench: concurrency must be between 1 and %d", benchMaxConcurrency)
	case cfg.Requests < 1 || cfg.Requests > benchMaxRequests:
		return nil, fmt.Errorf("bench: requests must be between 1 and %d", benchMaxRequests)
	case !json.Valid(cfg.Input) || !bytes.HasPrefix(bytes.TrimSpace(cfg.Input), []byte("{")):
		return nil, errors.New("bench: the input must be a JSON object")
	}
	if cfg.RunID == "" {
		var b [6]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("bench: run id: %w", err)
		}
		cfg.RunID = hex.EncodeToString(b[:])
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = benchDefaultTimeout
	}
	if cfg.Client == nil {
		cfg.Client = newHTTPClient(cfg.Concurrency, cfg.Timeout)
		defer cfg.Client.CloseIdleConnections()
	}
	c := &apiClient{http: cfg.Client, base: cfg.Base, token: cfg.Token}
	workers := min(cfg.Concurrency, cfg.Requests)

	// Load: each worker takes the next index until all are taken.
	acks := make([]*ack, cfg.Requests)
	latencies := make([]time.Duration, cfg.Requests)
	var errs benchTally
	var next atomic.Int64
	postURL := c.endpoint("/v1/actions", nil)
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= cfg.Requests {
					return
				}
				a, d, kind, err := benchSubmit(ctx, c, postURL, &cfg, i)
				if err != nil {
					if ctx.Err() == nil {
						errs.add(kind, err.Error())
					}
					continue
				}
				acks[i], latencies[i] = a, d
			}
		})
	}
	wg.Wait()
	res := &benchResult{Requests: cfg.Requests, Elapsed: time.Since(start), Decisions: map[string]int{}}
	for i, a := range acks {
		if a != nil {
			res.Acknowledged++
			res.Decisions[a.Status]++
			res.Latencies = append(res.Latencies, latencies[i])
		}
	}
	slices.Sort(res.Latencies)
	res.Errors, res.ErrorSamples = errs.counts, errs.samples
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}

	// Check: every acknowledged action has its receipts in the ledger.
	acked := make([]*ack, 0, res.Acknowledged)
	for _, a := range acks {
		if a != nil {
			acked = append(acked, a)
		}
	}
	var checks benchTally
	var verified atomic.Int64
	next.Store(0)
	start = time.Now()
	for range min(workers, max(len(acked), 1)) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(acked) {
					return
				}
				if kind, err := benchCheck(ctx, c, acked[i]); err != nil {
					if ctx.Err() == nil {
						checks.add(kind, err.Error())
					}
					continue
				}
				verified.Add(1)
			}
		})
	}
	wg.Wait()
	res.VerifyElapsed = time.Since(start)
	res.Verified = int(verified.Load())
	res.CheckFailures, res.CheckSamples = checks.counts, checks.samples
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("bench: %w", err)
	}
	return res, nil
}

// benchAction is the body of POST /v1/actions.
type benchAction struct {
	TenantID    string `json:"tenant_id"`
	AgentID     string `json:"agent_id"`
	UserContext struct {
		UserID string `json:"user_id"`
	} `json:"user_context"`
	Resource struct {
		ToolID    string `json:"tool_id"`
		Operation string `json:"operation"`
		Target    string `json:"target"`
	} `json:"resource"`
	Input json.RawMessage `json:"input"`
}

// benchSubmit submits action i and returns the server's acknowledgement
// and the request's latency, or the kind of failure and an error.
func benchSubmit(ctx context.Context, c *apiClient, postURL string, cfg *benchConfig, i int) (*ack, time.Duration, string, error) {
	key := "bench-" + cfg.RunID + "-" + strconv.Itoa(i)
	var a benchAction
	a.TenantID, a.AgentID, a.UserContext.UserID = cfg.TenantID, cfg.AgentID, cfg.UserID
	a.Resource.ToolID, a.Resource.Operation, a.Resource.Target = cfg.ToolID, cfg.Operation, key
	a.Input = cfg.Input
	body, err := json.Marshal(&a)
	if err != nil {
		return nil, 0, "invalid action", fmt.Errorf("action %d: %w", i, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, postURL, bytes.NewReader(body))
	if err != nil {
		return nil, 0, "invalid request", fmt.Errorf("action %d: %w", i, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Idempotency-Key", key)

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, "transport error", fmt.Errorf("action %d: %w", i, err)
	}
	answer, err := readBody(resp.Body, benchMaxAnswer)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return nil, 0, "transport error", fmt.Errorf("action %d: %w", i, err)
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		se := newStatusError(resp.StatusCode, answer)
		kind := "HTTP " + strconv.Itoa(se.Status)
		if se.Code != "" {
			kind += " " + printable(se.Code)
		}
		return nil, 0, kind, fmt.Errorf("action %d: %w", i, se)
	}
	var got ack
	if err := json.Unmarshal(answer, &got); err != nil || got.ActionID == "" || len(got.Receipts) == 0 || len(got.LedgerIndexes) != len(got.Receipts) {
		return nil, 0, "malformed answer", fmt.Errorf("action %d: HTTP %d answer lacks action_id, receipts or their ledger_indexes", i, resp.StatusCode)
	}
	return &got, d, "", nil
}

// benchCheck fetches the receipts of a's action from the ledger and
// checks that the acknowledged ones are there, byte for byte, at the same
// indexes. (The ledger may hold later receipts of the action too.)
func benchCheck(ctx context.Context, c *apiClient, a *ack) (string, error) {
	id := printable(a.ActionID)
	body, err := get(ctx, c.http, c.endpoint("/v1/actions/"+url.PathEscape(a.ActionID), nil), c.token, httpMaxBody)
	if err != nil {
		if se, ok := errors.AsType[*httpStatusError](err); ok {
			return "HTTP " + strconv.Itoa(se.Status), fmt.Errorf("action %s: %w", id, err)
		}
		return "transport error", fmt.Errorf("action %s: %w", id, err)
	}
	var got ack
	if err := json.Unmarshal(body, &got); err != nil {
		return "malformed answer", fmt.Errorf("action %s: the answer is not an action", id)
	}
	switch {
	case got.ActionID != a.ActionID:
		return "wrong action", fmt.Errorf("action %s: the ledger answered action %s", id, printable(got.ActionID))
	case len(got.Receipts) < len(a.Receipts) || len(got.LedgerIndexes) != len(got.Receipts):
		return "receipts missing", fmt.Errorf("action %s: the ledger holds %d receipts, %d were acknowledged", id, len(got.Receipts), len(a.Receipts))
	}
	for i, r := range a.Receipts {
		if !bytes.Equal(got.Receipts[i], r) {
			return "receipts differ", fmt.Errorf("action %s: receipt %d differs from the acknowledged one", id, i+1)
		}
		if got.LedgerIndexes[i] != a.LedgerIndexes[i] {
			return "indexes differ", fmt.Errorf("action %s: receipt %d is at ledger index %d, acknowledged at %d", id, i+1, got.LedgerIndexes[i], a.LedgerIndexes[i])
		}
	}
	return "", nil
}

// writeBenchReport writes the report of r.
func writeBenchReport(w io.Writer, cfg *benchConfig, r *benchResult) {
	fmt.Fprintf(w, "target: %s, %d workers, action %s/%s by %s for tenant %s\n",
		cfg.Base.Redacted(), min(cfg.Concurrency, cfg.Requests), printable(cfg.ToolID), printable(cfg.Operation), printable(cfg.AgentID), printable(cfg.TenantID))
	failed := r.Requests - r.Acknowledged
	fmt.Fprintf(w, "requests: %d (%d acknowledged, %d failed)\n", r.Requests, r.Acknowledged, failed)
	writeCounts(w, "errors", r.Errors)
	for _, s := range r.ErrorSamples {
		fmt.Fprintf(w, "  e.g. %s\n", s)
	}
	writeCounts(w, "decisions", r.Decisions)
	fmt.Fprintf(w, "throughput: %.1f actions/s (%d in %s)\n", r.Throughput(), r.Acknowledged, r.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "latency: p50 %s, p90 %s, p99 %s, max %s\n",
		benchDuration(r.Percentile(50)), benchDuration(r.Percentile(90)), benchDuration(r.Percentile(99)), benchDuration(r.Percentile(100)))
	fmt.Fprintf(w, "verified: %d/%d actions have their receipts in the ledger (checked in %s)\n",
		r.Verified, r.Acknowledged, r.VerifyElapsed.Round(time.Millisecond))
	writeCounts(w, "check failures", r.CheckFailures)
	for _, s := range r.CheckSamples {
		fmt.Fprintf(w, "  e.g. %s\n", s)
	}
}

// writeCounts writes "title: kind n, kind n" in the order of the kinds,
// or nothing when counts is empty.
func writeCounts(w io.Writer, title string, counts map[string]int) {
	if len(counts) == 0 {
		return
	}
	parts := make([]string, 0, len(counts))
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		parts = append(parts, fmt.Sprintf("%s %d", printable(k), counts[k]))
	}
	fmt.Fprintf(w, "%s: %s\n", title, strings.Join(parts, ", "))
}

// benchDuration formats d in milliseconds with two decimals.
func benchDuration(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 2, 64) + "ms"
}

// cmdBench runs `oars bench`.
func cmdBench(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	const prefix = "oars bench"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help", "help":
			fmt.Fprint(stdout, benchUsageText)
			return 0
		}
	}
	flags := newFlagSet(prefix, benchUsageText, stderr)
	var sf serverFlags
	sf.register(flags)
	cfg := benchConfig{}
	flags.IntVar(&cfg.Concurrency, "concurrency", 16, "the number of concurrent `workers`")
	flags.IntVar(&cfg.Requests, "requests", 1000, "the `number` of actions to submit")
	flags.StringVar(&cfg.TenantID, "tenant", "acme", "the `tenant` of the actions")
	flags.StringVar(&cfg.AgentID, "agent", "bench-agent", "the `agent` of the actions")
	flags.StringVar(&cfg.UserID, "user", "bench-user", "the `user` the agent acts for")
	flags.StringVar(&cfg.ToolID, "tool", "payments", "the `tool` of the actions")
	flags.StringVar(&cfg.Operation, "operation", "refund", "the `operation` of the actions")
	input := flags.String("input", `{"amount":5}`, "the input of the actions, a `JSON` object")
	flags.DurationVar(&cfg.Timeout, "timeout", benchDefaultTimeout, "the time limit of each `request`")
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
	switch {
	case cfg.Concurrency < 1 || cfg.Concurrency > benchMaxConcurrency:
		fmt.Fprintf(stderr, "%s: --concurrency must be between 1 and %d\n", prefix, benchMaxConcurrency)
		return 2
	case cfg.Requests < 1 || cfg.Requests > benchMaxRequests:
		fmt.Fprintf(stderr, "%s: --requests must be between 1 and %d\n", prefix, benchMaxRequests)
		return 2
	case cfg.Timeout <= 0:
		fmt.Fprintf(stderr, "%s: --timeout must be positive\n", prefix)
		return 2
	case !json.Valid([]byte(*input)) || !strings.HasPrefix(strings.TrimSpace(*input), "{"):
		fmt.Fprintf(stderr, "%s: --input must be a JSON object\n", prefix)
		return 2
	}
	cfg.Input = json.RawMessage(*input)
	c, err := sf.client(cfg.Concurrency, cfg.Timeout)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 2
	}
	defer c.http.CloseIdleConnections()
	cfg.Client, cfg.Base, cfg.Token = c.http, c.base, c.token

	res, err := runBench(ctx, cfg)
	if res != nil {
		writeBenchReport(stdout, &cfg, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", prefix, err)
		return 1
	}
	if !res.OK() {
		return 1
	}
	return 0
}
