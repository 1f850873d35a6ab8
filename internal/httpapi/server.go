package httpapi

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/time/rate"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/netutil"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
)

// Defaults of [Config].
const (
	// DefaultMaxBodyBytes bounds request bodies when Config.MaxBodyBytes
	// is 0.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultRateLimit is the per-principal request rate (requests per
	// second) when Config.RateLimit is 0.
	DefaultRateLimit = 1000
	// DefaultRateBurst is the per-principal burst when Config.RateBurst is
	// 0.
	DefaultRateBurst = 2000
)

// Config configures the handler returned by [New]. Guard, Keys and Auth
// are required; the rest is optional.
type Config struct {
	// Guard decides actions and records policy reloads. Required.
	Guard *oars.Guard
	// Ledger serves entries, checkpoints and proofs. Nil means the Guard's
	// ledger. Ledger.Checkpoint needs a checkpoint signer.
	Ledger *ledger.Ledger
	// Keys are the receipt keys: served as the JWKS and used to verify
	// receipts. Required and non-empty.
	Keys *receipt.KeySet
	// Auth authenticates every request except /health, /ready and the
	// OAP discovery documents. Required.
	Auth identity.Authenticator
	// Origin is the checkpoint origin (the log's name). If set, it must
	// be the name of VerifierKey.
	Origin string
	// VerifierKey is the note verifier key of checkpoints
	// (ledger.VerifierKey), served at /v1/ledger/verifier-key. Empty
	// makes that route answer 404.
	VerifierKey string
	// ReloadPolicies loads the policy files again for POST
	// /v1/policies/reload. Nil makes that route answer 501.
	ReloadPolicies func(ctx context.Context) (*policy.Set, error)
	// Logger receives one access log line per request and the details of
	// server errors. Nil discards.
	Logger *slog.Logger
	// Registry receives the HTTP metrics and is served at /metrics. Nil
	// disables both (/metrics answers 404). New fails if the metrics are
	// already registered in it.
	Registry *prometheus.Registry
	// MaxBodyBytes bounds request bodies; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RateLimit is the sustained number of requests per second allowed to
	// each authenticated principal (by Subject), RateBurst the burst; 0
	// means DefaultRateLimit and DefaultRateBurst.
	RateLimit float64
	RateBurst int
	// CORSOrigins are the browser origins ("https://console.example.com")
	// allowed to call the API, matched exactly. None: no CORS headers.
	CORSOrigins []string
	// PublicBaseURL is the absolute https URL the server is reached at,
	// used in the OAP discovery document (an http URL is accepted for
	// loopback hosts only, for development). Empty means https:// and the
	// request's Host.
	PublicBaseURL string
	// Ready is the readiness probe of GET /ready (for example, the store
	// answers). Nil means always ready.
	Ready func(ctx context.Context) error
	// Version is the server version, exported as the oars_build_info
	// metric.
	Version string

	// StepUp verifies the TOTP codes of approvals whose requirement asks
	// for step-up, and enrolls approvers (POST
	// /v1/approvers/{user_id}/totp). Nil: such actions can be rejected
	// but not approved, and enrollment answers 501.
	StepUp StepUp
	// Executors execute actions on the server, keyed by tool_id: POST
	// /v1/actions runs an allowed action of such a tool before answering
	// (claimed first, see oars.Guard.Execute). Approved actions are
	// executed by the host, which Approved tells.
	Executors map[string]oars.ExecFunc
	// Enqueue, if set, queues the execution of an allowed action whose
	// tool a connector of the Guard serves (oars.WithConnectors) instead
	// of running it before answering: POST /v1/actions answers 202 with
	// "queued": true once the job is durable. Nil: such actions are
	// executed synchronously, like those of Executors.
	Enqueue func(ctx context.Context, actionID, tenantID string, canonicalInput []byte) error
	// ExecTimeout bounds one execution by an executor; 0 means
	// DefaultExecTimeout.
	ExecTimeout time.Duration
	// Inputs keeps the input of every action held for approval, stored
	// before POST /v1/actions answers, so that the host can execute the
	// action once approved (the receipts hold only its digest). Nil: not
	// kept.
	Inputs InputStore
	// Approved, if set, is called with the id of an action that a
	// decision of POST /v1/approvals/{id}/decision approved. It must not
	// block: the host executes the action in the background.
	Approved func(actionID string)
	// Clock is the time approval requests expire by; nil means
	// time.Now. Give the Guard's clock.
	Clock func() time.Time
	// Passports keeps the agents' passports served and changed by
	// /v1/passports (see passports.go); give the cache the Guard reads
	// so that changes apply at once. Nil: those routes answer 501.
	Passports identity.PassportStore
	// MCP, if set, is the MCP proxy's Streamable HTTP handler
	// (mcp.Proxy.Handler), served at /mcp to callers allowed to submit
	// actions. Tool handlers find the authenticated *identity.Principal in
	// RequestExtra.TokenInfo.Extra[PrincipalKey]. Nil: /mcp answers 501.
	MCP http.Handler
}

// DefaultExecTimeout bounds an execution when Config.ExecTimeout is 0.
const DefaultExecTimeout = 5 * time.Minute

// New returns the HTTP handler of the oarsd API described in the package
// documentation. It fails if a required field of cfg is missing or a
// field is invalid (negative limits, a malformed verifier key or base URL,
// a CORS origin that is not a bare origin), or if the metrics cannot be
// registered in cfg.Registry. The handler is safe for concurrent use and
// starts no goroutines.
func New(cfg Config) (http.Handler, error) {
	if cfg.Guard == nil {
		return nil, errors.New("httpapi: new: nil Guard")
	}
	if cfg.Keys == nil || cfg.Keys.Len() == 0 {
		return nil, errors.New("httpapi: new: no receipt keys")
	}
	if cfg.Auth == nil {
		return nil, errors.New("httpapi: new: nil Authenticator")
	}
	s := &server{
		cfg:     cfg,
		guard:   cfg.Guard,
		ledger:  cfg.Ledger,
		log:     cfg.Logger,
		maxBody: cfg.MaxBodyBytes,
		mux:     http.NewServeMux(),
	}
	if s.ledger == nil {
		s.ledger = cfg.Guard.Ledger()
	}
	s.querier = ledger.NewQuerier(s.ledger.Store())
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if s.verifier, err = receipt.NewVerifier(cfg.Keys); err != nil {
		return nil, fmt.Errorf("httpapi: new: %w", err)
	}
	if cfg.VerifierKey != "" {
		v, err := note.NewVerifier(cfg.VerifierKey)
		if err != nil {
			return nil, fmt.Errorf("httpapi: new: verifier key: %w", err)
		}
		if cfg.Origin != "" && v.Name() != cfg.Origin {
			return nil, errors.New("httpapi: new: verifier key does not name the origin")
		}
	}
	switch {
	case s.maxBody < 0:
		return nil, errors.New("httpapi: new: negative MaxBodyBytes")
	case s.maxBody == 0:
		s.maxBody = DefaultMaxBodyBytes
	}
	switch {
	case cfg.ExecTimeout < 0:
		return nil, errors.New("httpapi: new: negative ExecTimeout")
	case cfg.ExecTimeout == 0:
		s.execTimeout = DefaultExecTimeout
	default:
		s.execTimeout = cfg.ExecTimeout
	}
	for tool, exec := range cfg.Executors {
		if exec == nil {
			return nil, fmt.Errorf("httpapi: new: nil executor for tool %q", tool)
		}
	}
	limit, burst := cfg.RateLimit, cfg.RateBurst
	if limit < 0 || burst < 0 {
		return nil, errors.New("httpapi: new: negative rate limit")
	}
	if limit == 0 {
		limit = DefaultRateLimit
	}
	if burst == 0 {
		burst = DefaultRateBurst
	}
	s.limits = newLimiters(rate.Limit(limit), burst)
	if cfg.MCP != nil {
		s.mcp = mcpHandler(cfg.MCP)
	}
	if s.baseURL, err = parseBaseURL(cfg.PublicBaseURL); err != nil {
		return nil, fmt.Errorf("httpapi: new: PublicBaseURL: %w", err)
	}
	for _, o := range cfg.CORSOrigins {
		if err := checkOrigin(o); err != nil {
			return nil, fmt.Errorf("httpapi: new: CORS origin %q: %w", o, err)
		}
	}
	if cfg.Registry != nil {
		if s.metrics, err = newHTTPMetrics(cfg.Registry, s.ledger, cfg.Version, s.log); err != nil {
			return nil, fmt.Errorf("httpapi: new: %w", err)
		}
	}
	for _, rt := range routes {
		if rt.public == (len(rt.roles) > 0) {
			return nil, fmt.Errorf("httpapi: new: route %q must be public or name roles", rt.pattern)
		}
		if rt.pattern == "GET /metrics" && cfg.Registry == nil {
			continue
		}
		s.mux.Handle(rt.pattern, s.routeHandler(rt))
	}
	return s, nil
}

// server is the handler New returns.
type server struct {
	cfg      Config
	guard    *oars.Guard
	ledger   *ledger.Ledger
	querier  ledger.Querier
	verifier *receipt.Verifier
	log      *slog.Logger
	maxBody  int64
	limits   *limiters
	metrics  *httpMetrics
	baseURL  string
	mux      *http.ServeMux
	// execTimeout bounds one execution.
	execTimeout time.Duration
	// mcp serves /mcp (Config.MCP behind the principal bridge), or nil.
	mcp http.Handler
	// reloadMu serialises policy reloads.
	reloadMu sync.Mutex
}

// handlerFunc serves one route. p is nil on public routes. A returned
// error is written as an error response (see writeErr); a handler that
// returns nil has written its response.
type handlerFunc func(s *server, w http.ResponseWriter, r *http.Request, p *identity.Principal) error

// route is one row of the permission table.
type route struct {
	pattern string
	// public routes skip authentication; the others admit exactly roles.
	public bool
	roles  []identity.Role
	handle handlerFunc
}

// Role lists of the permission table.
var (
	rolesAll     = identity.Roles()
	rolesSubmit  = []identity.Role{identity.RoleAdmin, identity.RoleOperator, identity.RoleAgent}
	rolesRead    = []identity.Role{identity.RoleAdmin, identity.RoleOperator, identity.RoleAuditor, identity.RoleAgent}
	rolesOversee = []identity.Role{identity.RoleAdmin, identity.RoleOperator, identity.RoleAuditor}
	rolesEntries = []identity.Role{identity.RoleAdmin, identity.RoleAuditor}
	rolesAdmin   = []identity.Role{identity.RoleAdmin}
	// rolesApprovals may list and read approvals; rolesDecide may vote.
	rolesApprovals = []identity.Role{identity.RoleAdmin, identity.RoleOperator, identity.RoleAuditor, identity.RoleApprover}
	rolesDecide    = []identity.Role{identity.RoleAdmin, identity.RoleApprover}
)

// routes is the permission table: every route of the API, whether it is
// public, and otherwise the roles that may call it. It is the only place
// that decides route × role; tenant and agent checks happen in the
// handlers (a foreign tenant's data answers 404). The package
// documentation repeats it.
var routes = []route{
	{pattern: "GET /health", public: true, handle: (*server).health},
	{pattern: "GET /ready", public: true, handle: (*server).ready},
	{pattern: "GET /metrics", roles: rolesOversee, handle: (*server).serveMetrics},

	{pattern: "POST /v1/actions", roles: rolesSubmit, handle: (*server).postAction},
	{pattern: "POST /mcp", roles: rolesSubmit, handle: (*server).serveMCP},
	{pattern: "GET /mcp", roles: rolesSubmit, handle: (*server).serveMCP},
	{pattern: "DELETE /mcp", roles: rolesSubmit, handle: (*server).serveMCP},
	{pattern: "GET /v1/actions/{id}", roles: rolesRead, handle: (*server).getAction},
	{pattern: "POST /v1/actions/{id}/cancel", roles: rolesSubmit, handle: (*server).cancelAction},
	{pattern: "POST /v1/actions/{id}/result", roles: rolesSubmit, handle: (*server).postResult},
	{pattern: "POST /v1/actions/{id}/claim", roles: rolesSubmit, handle: (*server).postClaim},
	{pattern: "POST /v1/hooks/{agent}", roles: rolesSubmit, handle: (*server).postHook},

	{pattern: "GET /v1/approvals", roles: rolesApprovals, handle: (*server).listApprovals},
	{pattern: "GET /v1/approvals/{id}", roles: rolesApprovals, handle: (*server).getApproval},
	{pattern: "POST /v1/approvals/{id}/decision", roles: rolesDecide, handle: (*server).decide},
	{pattern: "POST /v1/approvers/{user_id}/totp", roles: rolesAdmin, handle: (*server).enrollTOTP},

	{pattern: "GET /v1/receipts", roles: rolesRead, handle: (*server).listReceipts},
	{pattern: "GET /v1/receipts/{id}", roles: rolesRead, handle: (*server).getReceipt},
	{pattern: "POST /v1/receipts/verify", roles: rolesAll, handle: (*server).verifyReceipt},

	{pattern: "GET /v1/ledger/checkpoint", roles: rolesAll, handle: (*server).checkpoint},
	{pattern: "GET /v1/ledger/verifier-key", roles: rolesAll, handle: (*server).verifierKey},
	{pattern: "GET /v1/ledger/entries/{index}", roles: rolesEntries, handle: (*server).entry},
	{pattern: "GET /v1/ledger/proofs/inclusion", roles: rolesAll, handle: (*server).inclusionProof},
	{pattern: "GET /v1/ledger/proofs/consistency", roles: rolesAll, handle: (*server).consistencyProof},

	{pattern: "GET /v1/policies", roles: rolesOversee, handle: (*server).getPolicies},
	{pattern: "GET /v1/policies/{name}", roles: rolesOversee, handle: (*server).getPolicy},
	{pattern: "POST /v1/policies/reload", roles: rolesAdmin, handle: (*server).reloadPolicies},

	{pattern: "GET /v1/passports/{agent_id}", roles: rolesAdmin, handle: (*server).getPassport},
	{pattern: "PUT /v1/passports/{agent_id}", roles: rolesAdmin, handle: (*server).putPassport},
	{pattern: "POST /v1/passports/{agent_id}/suspend", roles: rolesAdmin, handle: (*server).suspendPassport},
	{pattern: "POST /v1/passports/{agent_id}/resume", roles: rolesAdmin, handle: (*server).resumePassport},

	{pattern: "GET /.well-known/oap", public: true, handle: (*server).discovery},
	{pattern: "GET /.well-known/oap/{$}", public: true, handle: (*server).discovery},
	{pattern: "GET /.well-known/oap/jwks.json", public: true, handle: (*server).jwks},
}

// reqState is what the middleware learns about a request as it is served.
type reqState struct {
	id        string
	route     string
	principal *identity.Principal
}

type stateKey struct{}

func stateOf(r *http.Request) *reqState {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return st
	}
	return &reqState{}
}

// ServeHTTP serves one request: request id, security headers, CORS,
// routing, panic recovery, metrics and the access log.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	st := &reqState{id: requestID(r.Header.Get("X-Request-Id"))}
	sw := &statusWriter{ResponseWriter: w}
	h := sw.Header()
	h.Set("X-Request-Id", st.id)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))

	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value, compared as net/http does
				panic(v)
			}
			s.log.ErrorContext(r.Context(), "panic serving request",
				slog.String("request_id", st.id), slog.String("route", routeLabel(st.route)),
				slog.Any("panic", v), slog.String("stack", string(debug.Stack())))
			if !sw.wroteHeader {
				s.writeError(sw, r, http.StatusInternalServerError, codeInternal, "internal server error")
			}
		}
		s.finish(r, st, sw, time.Since(start))
	}()

	if s.cors(sw, r) {
		return
	}
	s.dispatch(sw, r, st)
}

// finish records metrics and writes the access log line.
func (s *server) finish(r *http.Request, st *reqState, sw *statusWriter, d time.Duration) {
	status := sw.status
	if !sw.wroteHeader {
		status = http.StatusOK
	}
	route := routeLabel(st.route)
	s.metrics.observe(route, status, d)
	attrs := []slog.Attr{
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Duration("duration", d),
		slog.Int64("bytes", sw.bytes),
		slog.String("request_id", st.id),
	}
	if st.principal != nil {
		attrs = append(attrs, slog.String("subject", st.principal.Subject))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
}

// routeLabel is the route label of metrics and logs: the mux pattern, or
// "unmatched", never the raw path.
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	return pattern
}

// dispatch routes r. Requests no route matches get a JSON 404, or a JSON
// 405 with Allow when the path exists with other methods; the mux's own
// plain-text answers (and its redirects) are captured and replaced.
func (s *server) dispatch(w http.ResponseWriter, r *http.Request, st *reqState) {
	cw := &captureWriter{real: w, header: http.Header{}}
	s.mux.ServeHTTP(cw, r)
	if st.route != "" {
		return
	}
	if cw.status == http.StatusMethodNotAllowed {
		w.Header().Set("Allow", cw.header.Get("Allow"))
		s.writeError(w, r, http.StatusMethodNotAllowed, codeMethodNotAllowed, "method not allowed")
		return
	}
	s.writeError(w, r, http.StatusNotFound, codeNotFound, "no such route")
}

// routeHandler wraps a route's handler with authentication, the permission
// check and rate limiting.
func (s *server) routeHandler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateOf(r)
		st.route = rt.pattern
		if cw, ok := w.(*captureWriter); ok {
			w = cw.real
		}
		var p *identity.Principal
		if !rt.public {
			var err error
			if p, err = s.authenticate(w, r); err != nil {
				s.writeErr(w, r, err)
				return
			}
			st.principal = p
			if ok, retry := s.limits.allow(p.Subject); !ok {
				w.Header().Set("Retry-After", retryAfter(retry))
				s.writeErr(w, r, &apiError{status: http.StatusTooManyRequests, code: codeRateLimited, msg: "rate limit exceeded"})
				return
			}
			if !p.HasAnyRole(rt.roles...) {
				s.writeErr(w, r, errorf(http.StatusForbidden, codeForbidden, "the caller's roles do not allow this operation"))
				return
			}
		}
		if err := rt.handle(s, w, r, p); err != nil {
			s.writeErr(w, r, err)
		}
	})
}

// authenticate runs cfg.Auth. Missing and invalid credentials are 401 with
// a WWW-Authenticate challenge; an authenticator that cannot decide is 503.
func (s *server) authenticate(w http.ResponseWriter, r *http.Request) (*identity.Principal, error) {
	p, err := s.cfg.Auth.Authenticate(r.Context(), r)
	switch {
	case err == nil && p != nil && p.Subject != "":
		return p, nil
	case errors.Is(err, identity.ErrNoCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="oars"`)
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized, "authentication required")
	case errors.Is(err, identity.ErrDelegationWidens):
		w.Header().Set("WWW-Authenticate", `Bearer realm="oars", error="invalid_token"`)
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized,
			"invalid credentials: an actor of the delegation chain claims a scope or lifetime wider than the one granted to it")
	case errors.Is(err, identity.ErrDelegationTooDeep):
		w.Header().Set("WWW-Authenticate", `Bearer realm="oars", error="invalid_token"`)
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized, "invalid credentials: the delegation chain has too many actors")
	case errors.Is(err, identity.ErrInvalidCredentials):
		w.Header().Set("WWW-Authenticate", `Bearer realm="oars", error="invalid_token"`)
		return nil, errorf(http.StatusUnauthorized, codeUnauthorized, "invalid credentials")
	case err == nil:
		return nil, &apiError{status: http.StatusInternalServerError, code: codeInternal,
			msg: "internal server error", err: errors.New("authenticator returned no principal")}
	default:
		return nil, &apiError{status: http.StatusServiceUnavailable, code: codeUnavailable,
			msg: "authentication is unavailable", err: err}
	}
}

// cors sets CORS headers for an allowed Origin and answers preflight
// requests. It reports whether the request has been answered.
func (s *server) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(s.cfg.CORSOrigins) == 0 {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !slices.Contains(s.cfg.CORSOrigins, origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, WWW-Authenticate, "+LedgerIndexHeader)
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	h.Add("Vary", "Access-Control-Request-Method")
	h.Add("Vary", "Access-Control-Request-Headers")
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key, X-Request-Id")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// checkOrigin accepts a bare origin: scheme http or https, a host, no
// path, query or user info.
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil {
		return errors.New("not a URL")
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" ||
		u.Fragment != "" || u.User != nil || u.Opaque != "" || strings.HasSuffix(o, "/") {
		return errors.New(`want a bare origin such as "https://console.example.com"`)
	}
	return nil
}

// parseBaseURL validates PublicBaseURL and returns it without a trailing
// slash.
func parseBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", errors.New("want an absolute URL such as https://oars.example.com")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !netutil.IsLoopbackHost(u.Hostname()) {
			return "", errors.New("must be https (http only for loopback hosts)")
		}
	default:
		return "", errors.New("must be https")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// requestID returns the client's request id if it is a sane token, or a
// new random one.
func requestID(given string) string {
	if len(given) > 0 && len(given) <= 128 {
		ok := true
		for i := 0; i < len(given) && ok; i++ {
			c := given[i]
			ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == '-' || c == '_' || c == '.' || c == ':'
		}
		if ok {
			return given
		}
	}
	return rand.Text()
}

// limiters hold one token-bucket rate limiter per principal subject.
type limiters struct {
	limit rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*rate.Limiter
}

// maxLimiters bounds the number of subjects tracked; beyond it the map is
// reset (every subject starts with a full bucket again). Subjects are
// authenticated principals, so only holders of that many valid
// credentials could cause a reset.
const maxLimiters = 100_000

func newLimiters(limit rate.Limit, burst int) *limiters {
	return &limiters{limit: limit, burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes one token from subject's bucket. If none is available it
// reports false and how long until one is.
func (l *limiters) allow(subject string) (bool, time.Duration) {
	l.mu.Lock()
	lim, ok := l.m[subject]
	if !ok {
		if len(l.m) >= maxLimiters {
			clear(l.m)
		}
		lim = rate.NewLimiter(l.limit, l.burst)
		l.m[subject] = lim
	}
	l.mu.Unlock()
	now := time.Now()
	res := lim.ReserveN(now, 1)
	if !res.OK() {
		return false, time.Hour
	}
	if d := res.DelayFrom(now); d > 0 {
		res.CancelAt(now)
		return false, d
	}
	return true, 0
}

// retryAfter formats d as whole seconds, at least 1.
func retryAfter(d time.Duration) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	return fmt.Sprint(secs)
}

// statusWriter records the status and size of a response.
type statusWriter struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wroteHeader {
		w.status = code
		w.wroteHeader = true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// captureWriter is what the mux writes to: routes take the real writer
// from it, and whatever the mux writes itself (404, 405, redirects) is
// captured and discarded.
type captureWriter struct {
	real   http.ResponseWriter
	header http.Header
	status int
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return io.Discard.Write(b)
}

func (w *captureWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
