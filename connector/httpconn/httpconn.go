package httpconn

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/egress"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/receipt"
)

// Connector is the HTTP connector of one tool. It is immutable and safe
// for concurrent use.
type Connector struct {
	id      string
	t       *tool
	client  *http.Client
	secrets vault.Source
	log     *slog.Logger
	sleep   func(context.Context, time.Duration) error
	ops     []connector.Operation
}

var _ connector.Connector = (*Connector)(nil)

// Option configures [New] and [Register].
type Option func(*options) error

type options struct {
	resolver egress.Resolver
	sleep    func(context.Context, time.Duration) error
	log      *slog.Logger
}

// WithResolver makes the connector resolve host names with r instead of
// net.DefaultResolver ([egress.Policy.Resolver]).
func WithResolver(r egress.Resolver) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("httpconn: WithResolver: nil resolver")
		}
		o.resolver = r
		return nil
	}
}

// WithSleep makes the connector wait between attempts with sleep, which
// must return early with ctx's error when ctx ends. The default waits on a
// timer; tests pass a function that records the wait and returns at once.
func WithSleep(sleep func(ctx context.Context, d time.Duration) error) Option {
	return func(o *options) error {
		if sleep == nil {
			return errors.New("httpconn: WithSleep: nil function")
		}
		o.sleep = sleep
		return nil
	}
}

// WithLogger makes the connector log every attempt to l (at debug level,
// failures at warn) with the tool, operation, method, attempt, status and
// error class. The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("httpconn: WithLogger: nil logger")
		}
		o.log = l
		return nil
	}
}

// New returns the connector of tool t, which reads its auth secret from
// secrets on every execution (secrets may be nil when t has no auth). It
// fails when t is invalid (see [Parse] for the rules; zero values take the
// defaults documented on [ToolConfig]) or an option is. It reads no secret
// and makes no connection.
func New(t ToolConfig, secrets vault.Source, opts ...Option) (*Connector, error) {
	o := options{sleep: sleepTimer, log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	ct, err := compile(&t)
	if err != nil {
		return nil, fmt.Errorf("httpconn: tool %q: %w", truncate(t.ID), err)
	}
	if ct.auth.Type != AuthNone && secrets == nil {
		return nil, fmt.Errorf("httpconn: tool %q: auth needs a secret source, got nil", t.ID)
	}
	client := egress.Policy{Allow: slices.Clone(t.AllowPrivate), Resolver: o.resolver}.Client(0)
	checkRedirect := client.CheckRedirect
	origin := ct.base.Scheme + "://" + ct.base.Host
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Scheme+"://"+req.URL.Host != origin {
			return http.ErrUseLastResponse
		}
		return checkRedirect(req, via) // egress's: scheme and count
	}
	c := &Connector{
		id:      t.ID,
		t:       ct,
		client:  client,
		secrets: secrets,
		log:     o.log,
		sleep:   o.sleep,
	}
	for _, op := range t.Operations {
		c.ops = append(c.ops, connector.Operation{
			Name:        op.Name,
			Description: op.Description,
			InputSchema: slices.Clone(op.InputSchema),
			Idempotent:  op.Idempotent,
		})
	}
	return c, nil
}

// Register builds the connector of every tool in cfg with [New] and
// registers it in reg under the tool's id. Every connector is built
// before any is registered, so an invalid tool registers nothing; a
// registry error (a tool id registered before) leaves the tools before it
// registered.
func Register(reg *connector.Registry, cfg *Config, secrets vault.Source, opts ...Option) error {
	if reg == nil || cfg == nil {
		return errors.New("httpconn: register: nil registry or config")
	}
	conns := make([]*Connector, 0, len(cfg.Tools))
	for _, t := range cfg.Tools {
		c, err := New(t, secrets, opts...)
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if err := reg.Register(c.id, c); err != nil {
			return fmt.Errorf("httpconn: register: %w", err)
		}
	}
	return nil
}

// ID returns the tool id.
func (c *Connector) ID() string { return c.id }

// Operations implements [connector.Connector]: one operation per
// configured operation, in configuration order.
func (c *Connector) Operations() []connector.Operation {
	out := make([]connector.Operation, len(c.ops))
	for i, op := range c.ops {
		op.InputSchema = slices.Clone(op.InputSchema)
		out[i] = op
	}
	return out
}

// Execute implements [connector.Connector]: it sends the request of
// operation req.Operation built from req.Input, retrying an idempotent
// operation as the tool's retry settings say. Every error is a
// [*connector.Error] whose class the package documentation lists; its
// text never holds a secret, a query or an input value.
func (c *Connector) Execute(ctx context.Context, req *connector.Request) (*connector.Result, error) {
	op, ok := c.t.ops[req.Operation]
	if !ok {
		return nil, &connector.Error{Class: "unknown_operation", Err: fmt.Errorf("%w: tool %q has no operation %q", connector.ErrUnknownOperation, c.id, truncate(req.Operation))}
	}
	cl, err := c.build(op, req.Input)
	if err == nil && !validHeaderValue(req.IdempotencyKey) {
		err = invalidInput("idempotency key is not a valid header value")
	}
	if err != nil {
		c.notSent(ctx, op, req, err)
		return nil, err
	}
	secret, err := c.secret(ctx)
	if err != nil {
		c.notSent(ctx, op, req, err)
		return nil, err
	}
	attempts := 1
	if op.cfg.Idempotent {
		attempts = c.t.retry.MaxAttempts
	}
	for attempt := 1; ; attempt++ {
		res, wait, err := c.attempt(ctx, op, req, cl, secret, attempt)
		if err == nil {
			return res, nil
		}
		if attempt >= attempts || !connector.IsRetryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if serr := c.sleep(ctx, c.backoff(attempt, wait)); serr != nil {
			return nil, err
		}
	}
}

// notSent logs an execution that failed before any request was sent.
func (c *Connector) notSent(ctx context.Context, op *operation, req *connector.Request, err error) {
	c.log.LogAttrs(ctx, slog.LevelWarn, "httpconn: request not sent",
		slog.String("tool", c.id),
		slog.String("operation", op.cfg.Name),
		slog.String("method", op.cfg.Method),
		slog.String("action_id", req.ActionID),
		slog.String("error_class", errorClass(err)))
}

// errorClass returns the class of err for logs: a [*connector.Error]'s,
// or "error".
func errorClass(err error) string {
	if ce, ok := errors.AsType[*connector.Error](err); ok {
		return ce.Class
	}
	return "error"
}

// call is the request of one execution, the same for every attempt.
type call struct {
	u    *url.URL
	body []byte
}

// build renders op's templates for input.
func (c *Connector) build(op *operation, input json.RawMessage) (*call, error) {
	if len(input) == 0 {
		input = json.RawMessage("{}")
	}
	in, err := decodeJSON(input)
	if err != nil {
		return nil, invalidInput("not JSON")
	}
	if _, ok := in.(map[string]any); !ok {
		return nil, invalidInput("input is not an object")
	}
	path, err := renderPath(op.path, in)
	if err != nil {
		return nil, err
	}
	query, err := renderQuery(op.query, in)
	if err != nil {
		return nil, err
	}
	u := *c.t.base
	u.RawPath = c.t.basePath + path
	u.Path, err = url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, invalidInput("path cannot be built")
	}
	u.RawQuery = query
	cl := &call{u: &u}
	if op.body != nil {
		if cl.body, err = op.body.render(in); err != nil {
			return nil, err
		}
	}
	return cl, nil
}

// secret returns the tool's auth secret, or nil when it has no auth.
func (c *Connector) secret(ctx context.Context) ([]byte, error) {
	if c.t.auth.Type == AuthNone {
		return nil, nil
	}
	s, err := c.secrets.Secret(ctx, c.t.auth.Secret)
	if err != nil {
		return nil, &connector.Error{Class: "secret_unavailable", Err: fmt.Errorf("httpconn: tool %q: auth secret %q: %w", c.id, c.t.auth.Secret, err)}
	}
	// An HMAC key may be any bytes; the others are sent in a header.
	if len(s) == 0 || (c.t.auth.Type != AuthHMAC && !validHeaderValue(string(s))) {
		return nil, &connector.Error{Class: "secret_unavailable", Err: fmt.Errorf("httpconn: tool %q: auth secret %q is empty or not a valid header value", c.id, c.t.auth.Secret)}
	}
	return s, nil
}

// backoff returns the wait after attempt, given the upstream's
// Retry-After (or -1).
func (c *Connector) backoff(attempt int, retryAfter time.Duration) time.Duration {
	r := c.t.retry
	if retryAfter >= 0 {
		return min(retryAfter, r.MaxBackoff)
	}
	d := r.InitialBackoff
	for i := 1; i < attempt && d < r.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.MaxBackoff)
}

// attempt sends the request once. It returns the Retry-After of a failed
// response, or -1.
func (c *Connector) attempt(ctx context.Context, op *operation, req *connector.Request, cl *call, secret []byte, attempt int) (*connector.Result, time.Duration, error) {
	start := time.Now()
	res, wait, err := c.send(ctx, op, req, cl, secret)
	status, class := 0, ""
	if res != nil {
		status = res.UpstreamStatus
	}
	if err != nil {
		status, class = connector.UpstreamStatusOf(err), errorClass(err)
	}
	level := slog.LevelDebug
	if err != nil {
		level = slog.LevelWarn
	}
	c.log.LogAttrs(ctx, level, "httpconn: request",
		slog.String("tool", c.id),
		slog.String("operation", op.cfg.Name),
		slog.String("method", op.cfg.Method),
		slog.String("action_id", req.ActionID),
		slog.Int("attempt", attempt),
		slog.Int("status", status),
		slog.String("error_class", class),
		slog.Duration("duration", time.Since(start)))
	return res, wait, err
}

// send makes one HTTP request and reads its response.
func (c *Connector) send(ctx context.Context, op *operation, req *connector.Request, cl *call, secret []byte) (*connector.Result, time.Duration, error) {
	actx, cancel := context.WithTimeout(ctx, c.t.timeout)
	defer cancel()
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	hreq, err := http.NewRequestWithContext(actx, op.cfg.Method, c.t.base.String(), body)
	if err != nil {
		return nil, -1, fail("error", false, 0, fmt.Errorf("httpconn: tool %q: operation %q: build request: %w", c.id, op.cfg.Name, err))
	}
	u := *cl.u
	hreq.URL = &u
	if cl.body != nil {
		hreq.Header.Set("Content-Type", "application/json")
	}
	for k, v := range c.t.headers {
		hreq.Header.Set(k, v)
	}
	if c.t.idemHeader != "" && req.IdempotencyKey != "" {
		hreq.Header.Set(c.t.idemHeader, req.IdempotencyKey)
	}
	c.authenticate(hreq, cl, secret)

	resp, err := c.client.Do(hreq)
	if err != nil {
		return nil, -1, c.transportError(ctx, actx, op, err)
	}
	defer resp.Body.Close()
	status := resp.StatusCode
	if !op.success(status) {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		wait := time.Duration(-1)
		if status == http.StatusTooManyRequests || status >= 500 {
			wait = retryAfter(resp.Header.Get("Retry-After"))
		}
		return nil, wait, c.statusError(op, status)
	}
	limit := c.t.maxResponse
	if op.cfg.Method != http.MethodHead && resp.ContentLength > limit {
		return nil, -1, fail("response_too_large", false, status, fmt.Errorf("httpconn: tool %q: operation %q: response of %d bytes is larger than max_response_bytes %d", c.id, op.cfg.Name, resp.ContentLength, limit))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, -1, c.transportError(ctx, actx, op, err)
	}
	if int64(len(data)) > limit {
		return nil, -1, fail("response_too_large", false, status, fmt.Errorf("httpconn: tool %q: operation %q: response is larger than max_response_bytes %d", c.id, op.cfg.Name, limit))
	}
	return result(op, status, resp.Header.Get("Content-Type"), data), -1, nil
}

// authenticate adds the tool's credentials to r.
func (c *Connector) authenticate(r *http.Request, cl *call, secret []byte) {
	a := c.t.auth
	switch a.Type {
	case AuthBearer:
		r.Header.Set("Authorization", "Bearer "+string(secret))
	case AuthBasic:
		r.SetBasicAuth(a.Username, string(secret))
	case AuthHeader:
		r.Header.Set(a.Header, string(secret))
	case AuthHMAC:
		r.Header.Set(a.Header, Sign(secret, time.Now(), r.Method, cl.u.RequestURI(), cl.body))
	}
}

// Sign returns the hmac signature header value of a request (see the
// package documentation): "t=<unix seconds>,v1=<hex HMAC-SHA256>" over
// "<t>.<method>.<target>.<body>", where target is the request target as
// sent (escaped path and query). A receiver computes it with the same key
// and the values it received, compares it with [hmac.Equal], and checks
// that t is recent.
func Sign(key []byte, t time.Time, method, target string, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, key)
	m.Write([]byte(ts + "." + method + "." + target + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// retryAfter parses a Retry-After value, returning -1 when there is none
// or it is invalid.
func retryAfter(v string) time.Duration {
	if v == "" {
		return -1
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return -1
		}
		if n > int64(maxBackoff/time.Second) {
			return maxBackoff
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return -1
}

// fail returns a connector error of class class.
func fail(class string, retryable bool, status int, err error) *connector.Error {
	return &connector.Error{Class: class, Retryable: retryable, UpstreamStatus: status, Err: err}
}

// statusError classifies a response whose status is not a success.
func (c *Connector) statusError(op *operation, status int) *connector.Error {
	e := &connector.Error{UpstreamStatus: status, Err: fmt.Errorf("httpconn: tool %q: operation %q: %s: upstream status %d", c.id, op.cfg.Name, op.cfg.Method, status)}
	switch {
	case status == http.StatusTooManyRequests:
		e.Class, e.Retryable = "upstream_429", true
	case status >= 500 && status <= 599:
		e.Class, e.Retryable = "upstream_5xx", true
	case status >= 400 && status <= 499:
		e.Class = "upstream_4xx"
	default:
		e.Class = "upstream_status"
	}
	return e
}

// transportError classifies an error of sending a request or reading its
// response. The *url.Error the client returns is unwrapped: its text holds
// the URL and so the query.
func (c *Connector) transportError(ctx, actx context.Context, op *operation, err error) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	err = fmt.Errorf("httpconn: tool %q: operation %q: %s: %w", c.id, op.cfg.Name, op.cfg.Method, err)
	switch {
	case errors.Is(err, egress.ErrRefused):
		return fail("egress_refused", false, 0, err)
	case errors.Is(ctx.Err(), context.Canceled):
		return fail("cancelled", true, 0, err)
	case ctx.Err() != nil, actx.Err() != nil, errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return fail("timeout", true, 0, err)
	}
	return fail("connect", true, 0, err)
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// result builds the result of a successful response.
func result(op *operation, status int, contentType string, data []byte) *connector.Result {
	res := &connector.Result{UpstreamStatus: status}
	if len(data) == 0 {
		return res
	}
	if canon, err := receipt.Canonicalize(data); err == nil {
		res.Output = data
		if op.cfg.RecordOutput && canon[0] == '{' && len(canon) <= receipt.MaxSummaryBytes {
			res.Summary = canon // the whole output, as the tool's config allows
			return res
		}
		if len(op.summary) > 0 {
			if doc, err := decodeJSON(data); err == nil {
				res.Summary = summarize(op.summary, doc)
			}
		}
		return res
	}
	out, err := json.Marshal(struct {
		ContentType string `json:"content_type"`
		BodyBase64  string `json:"body_base64"`
	}{contentType, base64.StdEncoding.EncodeToString(data)})
	if err == nil {
		res.Output = out
	}
	return res
}

// summarize returns the summary object of doc, or nil when no pointer
// resolves.
func summarize(pointers map[string]string, doc any) json.RawMessage {
	m := map[string]any{}
	for k, p := range pointers {
		if v, ok := resolvePointer(doc, p); ok {
			m[k] = v
		}
	}
	if len(m) == 0 {
		return nil
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		return nil
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
