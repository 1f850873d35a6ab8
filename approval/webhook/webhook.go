package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/oarsdev/oars/approval"
)

// Defaults of the options.
const (
	DefaultAttemptTimeout = 10 * time.Second
	DefaultMaxAttempts    = 5
	DefaultQueueSize      = 256
	DefaultWorkers        = 2
	DefaultDrainTimeout   = 10 * time.Second
	// DefaultBackoffBase and DefaultBackoffMax shape the default backoff:
	// before retry n the delay is drawn uniformly from [d/2, d] where
	// d = min(DefaultBackoffMax, DefaultBackoffBase·2^(n-1)).
	DefaultBackoffBase = 500 * time.Millisecond
	DefaultBackoffMax  = 30 * time.Second
)

// MinSecretLength is the shortest HMAC secret [New] accepts, in bytes.
const MinSecretLength = 16

// Errors of [Notifier.Notify]. Test for them with errors.Is.
var (
	// ErrQueueFull: the queue was full and the notification was dropped.
	ErrQueueFull = errors.New("webhook: queue full, notification dropped")
	// ErrStopped: Run has ended; the Notifier accepts nothing more.
	ErrStopped = errors.New("webhook: notifier stopped")
)

// maxResponseDrain bounds how much of a response body is read (and
// discarded) so that the connection can be reused.
const maxResponseDrain = 64 << 10

// Option configures [New]. An invalid option makes New fail.
type Option func(*config) error

type config struct {
	client         *http.Client
	logger         *slog.Logger
	attemptTimeout time.Duration
	maxAttempts    int
	backoff        func(retry int) time.Duration
	queueSize      int
	workers        int
	drainTimeout   time.Duration
	now            func() time.Time
	registerer     prometheus.Registerer
}

// WithHTTPClient sets the client that posts notifications. The default is
// a client that does not follow redirects. Its Timeout, if any, applies on
// top of the per-attempt timeout. c must not be nil.
func WithHTTPClient(c *http.Client) Option {
	return func(cfg *config) error {
		if c == nil {
			return errors.New("nil HTTP client")
		}
		cfg.client = c
		return nil
	}
}

// WithLogger sets the logger of deliveries (Debug), failures and drops
// (Error); the default discards everything. Logs carry the action ID,
// tenant, attempt and status, never the secret, the endpoint URL (which
// may hold a token) or the body. l must not be nil.
func WithLogger(l *slog.Logger) Option {
	return func(cfg *config) error {
		if l == nil {
			return errors.New("nil logger")
		}
		cfg.logger = l
		return nil
	}
}

// WithAttemptTimeout bounds each POST, from sending to reading the status;
// the default is [DefaultAttemptTimeout]. d must be positive.
func WithAttemptTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		if d <= 0 {
			return errors.New("attempt timeout must be positive")
		}
		cfg.attemptTimeout = d
		return nil
	}
}

// WithMaxAttempts sets how many POSTs one notification gets at most,
// the first included; the default is [DefaultMaxAttempts]. n must be at
// least 1.
func WithMaxAttempts(n int) Option {
	return func(cfg *config) error {
		if n < 1 {
			return errors.New("max attempts must be at least 1")
		}
		cfg.maxAttempts = n
		return nil
	}
}

// WithBackoff sets the delay before retry n (1 for the second attempt);
// the default grows exponentially with jitter (see [DefaultBackoffBase]).
// A delay of zero or less retries at once. f must not be nil and must be
// safe for concurrent use.
func WithBackoff(f func(retry int) time.Duration) Option {
	return func(cfg *config) error {
		if f == nil {
			return errors.New("nil backoff")
		}
		cfg.backoff = f
		return nil
	}
}

// WithQueueSize sets how many notifications wait for delivery at most;
// the default is [DefaultQueueSize]. n must be at least 1.
func WithQueueSize(n int) Option {
	return func(cfg *config) error {
		if n < 1 {
			return errors.New("queue size must be at least 1")
		}
		cfg.queueSize = n
		return nil
	}
}

// WithWorkers sets how many goroutines deliver concurrently; the default
// is [DefaultWorkers]. n must be at least 1.
func WithWorkers(n int) Option {
	return func(cfg *config) error {
		if n < 1 {
			return errors.New("workers must be at least 1")
		}
		cfg.workers = n
		return nil
	}
}

// WithDrainTimeout sets how long Run keeps delivering queued and in-flight
// notifications after its context ends; the default is
// [DefaultDrainTimeout]. d must not be negative; zero abandons them at
// once.
func WithDrainTimeout(d time.Duration) Option {
	return func(cfg *config) error {
		if d < 0 {
			return errors.New("drain timeout must not be negative")
		}
		cfg.drainTimeout = d
		return nil
	}
}

// WithClock sets the clock whose time signs each attempt; the default is
// time.Now. now must not be nil.
func WithClock(now func() time.Time) Option {
	return func(cfg *config) error {
		if now == nil {
			return errors.New("nil clock")
		}
		cfg.now = now
		return nil
	}
}

// WithMetrics registers the counter oars_webhook_notifications_total, with
// label result = delivered, failed or dropped, on reg. New fails if the
// registration fails (a second Notifier on the same registry, say). reg
// must not be nil.
func WithMetrics(reg prometheus.Registerer) Option {
	return func(cfg *config) error {
		if reg == nil {
			return errors.New("nil metrics registerer")
		}
		cfg.registerer = reg
		return nil
	}
}

// Stats counts what happened to the notifications of a [Notifier].
type Stats struct {
	// Delivered notifications got a 2xx answer.
	Delivered uint64
	// Failed notifications were rejected (3xx, 4xx other than 429), ran
	// out of attempts, or were cut short by the drain deadline.
	Failed uint64
	// Dropped notifications never got an attempt: the queue was full, or
	// the drain deadline passed while they were queued.
	Dropped uint64
}

// Notifier posts signed approval.requested notifications to one endpoint;
// see the package documentation for the request and the delivery rules.
//
// Notify may be called before Run (notifications wait in the queue), from
// any number of goroutines. Run starts the delivery goroutines and owns
// them until it returns. A Notifier is safe for concurrent use.
type Notifier struct {
	endpoint string
	secret   []byte
	apiBase  string
	cfg      config
	log      *slog.Logger
	counter  *prometheus.CounterVec

	queue chan job

	mu      sync.RWMutex // guards stopped against Notify's send
	stopped bool
	started atomic.Bool

	delivered, failed, dropped atomic.Uint64
	abandoned                  atomic.Uint64 // failed or dropped because the drain deadline passed
}

// job is one notification to deliver.
type job struct {
	delivery string
	actionID string
	tenantID string
	body     []byte
}

var _ approval.Notifier = (*Notifier)(nil)

// New returns a Notifier posting to endpoint (an absolute http or https
// URL), signing with secret (at least [MinSecretLength] bytes; New keeps a
// copy) and linking to the OARS API at apiBase (an absolute http or https
// URL such as "https://oars.example.com", without query or fragment; a
// trailing slash is dropped).
// It fails if an argument or an option is invalid. Errors never quote the
// endpoint, which may hold a token.
func New(endpoint string, secret []byte, apiBase string, opts ...Option) (*Notifier, error) {
	cfg := config{
		logger:         slog.New(slog.DiscardHandler),
		attemptTimeout: DefaultAttemptTimeout,
		maxAttempts:    DefaultMaxAttempts,
		backoff:        defaultBackoff,
		queueSize:      DefaultQueueSize,
		workers:        DefaultWorkers,
		drainTimeout:   DefaultDrainTimeout,
		now:            time.Now,
	}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("webhook: new: nil option")
		}
		if err := o(&cfg); err != nil {
			return nil, fmt.Errorf("webhook: new: %w", err)
		}
	}
	if err := checkURL(endpoint); err != nil {
		return nil, fmt.Errorf("webhook: new: endpoint: %w", err)
	}
	if err := checkURL(apiBase); err != nil {
		return nil, fmt.Errorf("webhook: new: api base: %w", err)
	}
	if u, _ := url.Parse(apiBase); u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, errors.New("webhook: new: api base: must not have a query or fragment")
	}
	if len(secret) < MinSecretLength {
		return nil, fmt.Errorf("webhook: new: secret must be at least %d bytes", MinSecretLength)
	}
	if cfg.client == nil {
		cfg.client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	n := &Notifier{
		endpoint: endpoint,
		secret:   append([]byte(nil), secret...),
		apiBase:  strings.TrimSuffix(apiBase, "/"),
		cfg:      cfg,
		log:      cfg.logger,
		queue:    make(chan job, cfg.queueSize),
	}
	if cfg.registerer != nil {
		n.counter = prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oars_webhook_notifications_total",
			Help: "Approval webhook notifications by result: delivered, failed, dropped.",
		}, []string{"result"})
		if err := cfg.registerer.Register(n.counter); err != nil {
			return nil, fmt.Errorf("webhook: new: metrics: %w", err)
		}
		for _, r := range []string{"delivered", "failed", "dropped"} {
			n.counter.WithLabelValues(r) // export zeros
		}
	}
	return n, nil
}

// checkURL checks that s is an absolute http or https URL with a host,
// without quoting it in the error.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("not an absolute http or https URL")
	}
	return nil
}

// Notify queues a notification that r waits for approval and returns at
// once; delivery happens in the goroutines of [Notifier.Run]. It never
// blocks and never does I/O.
//
// It fails with an error wrapping [ErrQueueFull] when the queue is full
// (the notification is dropped, logged and counted), [ErrStopped] once the
// context of Run has ended, and another error if r has no ActionID.
func (n *Notifier) Notify(ctx context.Context, r approval.Request) error {
	p, err := NewPayload(r, n.apiBase)
	if err != nil {
		return fmt.Errorf("webhook: notify: %w", err)
	}
	body, err := p.marshal()
	if err != nil {
		return fmt.Errorf("webhook: notify: %w", err)
	}
	j := job{delivery: uuid.NewString(), actionID: r.ActionID, tenantID: r.TenantID, body: body}

	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.stopped {
		return fmt.Errorf("webhook: notify: %w", ErrStopped)
	}
	select {
	case n.queue <- j:
		return nil
	default:
	}
	n.count(&n.dropped, "dropped")
	n.log.LogAttrs(ctx, slog.LevelError, "webhook: queue full, notification dropped",
		slog.String("event", "webhook.dropped"),
		slog.String("action_id", r.ActionID),
		slog.String("tenant", r.TenantID),
		slog.Int("queue_size", cap(n.queue)))
	return fmt.Errorf("webhook: notify: %w", ErrQueueFull)
}

// Stats returns how many notifications were delivered, failed and
// dropped so far.
func (n *Notifier) Stats() Stats {
	return Stats{Delivered: n.delivered.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
}

// Run delivers queued notifications with the configured number of worker
// goroutines until ctx ends. Then Notify stops accepting (it fails with
// [ErrStopped]) and the workers go on delivering what is queued or in
// flight, retries included, for at most the drain timeout, after which
// the rest is abandoned, logged and counted. Run returns once every
// worker has stopped: nil if nothing was abandoned, otherwise an error
// wrapping context.DeadlineExceeded.
//
// Run may be called once; a second call fails at once.
func (n *Notifier) Run(ctx context.Context) error {
	if !n.started.CompareAndSwap(false, true) {
		return errors.New("webhook: run: already started")
	}
	// Deliveries use life, which outlives ctx by the drain timeout.
	life, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	draining := make(chan struct{})
	var wg sync.WaitGroup
	for range n.cfg.workers {
		wg.Go(func() { n.work(draining, life) })
	}

	<-ctx.Done()
	n.mu.Lock()
	n.stopped = true // from here on nothing is queued
	n.mu.Unlock()
	close(draining)
	deadline := time.AfterFunc(n.cfg.drainTimeout, cancel)
	defer deadline.Stop()
	wg.Wait()

	if lost := n.abandoned.Load(); lost > 0 {
		return fmt.Errorf("webhook: run: drain deadline passed with %d notifications undelivered: %w", lost, context.DeadlineExceeded)
	}
	return nil
}

// work delivers jobs until draining is closed and the queue is empty.
// Jobs taken after the drain deadline are abandoned.
func (n *Notifier) work(draining <-chan struct{}, life context.Context) {
	for {
		var j job
		select {
		case j = <-n.queue:
		case <-draining:
			select {
			case j = <-n.queue:
			default:
				return
			}
		}
		if life.Err() != nil {
			n.abandon(j)
			continue
		}
		n.deliver(life, j)
	}
}

// abandon drops a queued job at the drain deadline.
func (n *Notifier) abandon(j job) {
	n.abandoned.Add(1)
	n.count(&n.dropped, "dropped")
	n.log.LogAttrs(context.Background(), slog.LevelError, "webhook: notification abandoned at shutdown",
		slog.String("event", "webhook.dropped"),
		slog.String("action_id", j.actionID),
		slog.String("tenant", j.tenantID))
}

// deliver posts j until it is delivered, rejected, out of attempts, or
// life ends.
func (n *Notifier) deliver(life context.Context, j job) {
	for attempt := 1; ; attempt++ {
		status, err := n.post(life, j)
		attrs := []slog.Attr{
			slog.String("action_id", j.actionID),
			slog.String("tenant", j.tenantID),
			slog.String("delivery", j.delivery),
			slog.Int("attempt", attempt),
		}
		if status != 0 {
			attrs = append(attrs, slog.Int("status", status))
		}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		switch {
		case err == nil && status >= 200 && status < 300:
			n.count(&n.delivered, "delivered")
			n.log.LogAttrs(life, slog.LevelDebug, "webhook: notification delivered",
				append(attrs, slog.String("event", "webhook.delivered"))...)
			return
		case err == nil && status != http.StatusTooManyRequests && status < 500:
			n.count(&n.failed, "failed")
			n.log.LogAttrs(life, slog.LevelError, "webhook: notification rejected by the receiver",
				append(attrs, slog.String("event", "webhook.failed"))...)
			return
		case life.Err() != nil:
			n.abandoned.Add(1)
			n.count(&n.failed, "failed")
			n.log.LogAttrs(context.Background(), slog.LevelError, "webhook: notification abandoned at shutdown",
				append(attrs, slog.String("event", "webhook.failed"))...)
			return
		case attempt >= n.cfg.maxAttempts:
			n.count(&n.failed, "failed")
			n.log.LogAttrs(life, slog.LevelError, "webhook: notification not delivered, giving up",
				append(attrs, slog.String("event", "webhook.failed"))...)
			return
		}
		n.log.LogAttrs(life, slog.LevelWarn, "webhook: attempt failed, retrying",
			append(attrs, slog.String("event", "webhook.retry"))...)
		if d := n.cfg.backoff(attempt); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-life.Done():
				t.Stop()
			}
		}
	}
}

// post makes one attempt and returns the response status, or an error
// that does not quote the endpoint.
func (n *Notifier) post(life context.Context, j job) (int, error) {
	ctx, cancel := context.WithTimeout(life, n.cfg.attemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.endpoint, bytes.NewReader(j.body))
	if err != nil {
		return 0, errors.New("cannot build the request")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "oars-webhook/1")
	req.Header.Set(EventHeader, EventApprovalRequested)
	req.Header.Set(DeliveryHeader, j.delivery)
	req.Header.Set(SignatureHeader, Sign(n.secret, j.body, n.cfg.now()))
	resp, err := n.cfg.client.Do(req)
	if err != nil {
		// *url.Error quotes the URL, which may hold a token: keep only
		// the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponseDrain))
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// count adds one to c and to the metric of result.
func (n *Notifier) count(c *atomic.Uint64, result string) {
	c.Add(1)
	if n.counter != nil {
		n.counter.WithLabelValues(result).Inc()
	}
}

// defaultBackoff is exponential with jitter: uniform in [d/2, d] for
// d = min(DefaultBackoffMax, DefaultBackoffBase·2^(retry-1)).
func defaultBackoff(retry int) time.Duration {
	d := DefaultBackoffMax
	if retry >= 1 && retry < 32 {
		d = min(DefaultBackoffMax, DefaultBackoffBase<<(retry-1))
	}
	return d/2 + rand.N(d/2+1)
}
