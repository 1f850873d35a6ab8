package httpconn

import (
	"errors"
	"fmt"
	"maps"
	"net/textproto"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/internal/textcheck"
)

// tool is a compiled ToolConfig.
type tool struct {
	base        *url.URL
	basePath    string // escaped, without a trailing "/"
	timeout     time.Duration
	maxResponse int64
	headers     map[string]string // canonical names
	auth        Auth
	idemHeader  string
	retry       Retry
	ops         map[string]*operation
}

// operation is a compiled OperationConfig.
type operation struct {
	cfg     OperationConfig
	path    []pathPart
	query   []queryParam
	body    *bodyTemplate
	summary map[string]string
}

func (op *operation) success(status int) bool {
	if len(op.cfg.Success) == 0 {
		return status >= 200 && status <= 299
	}
	return slices.Contains(op.cfg.Success, status)
}

// fieldError is a problem with one key of a ToolConfig.
type fieldError struct {
	key string
	err error
}

func (e *fieldError) Error() string { return e.key + ": " + e.err.Error() }
func (e *fieldError) Unwrap() error { return e.err }

func bad(key, format string, args ...any) error {
	return &fieldError{key: key, err: fmt.Errorf(format, args...)}
}

var methods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"}

// forbiddenHeaders may not be static headers: credentials belong in the
// vault, and the others are the transport's.
var forbiddenHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Host", "Content-Length", "Transfer-Encoding", "Connection", "Te", "Upgrade", "Trailer", "Keep-Alive", "Proxy-Connection"}

// compile validates t and fills in the defaults of zero values. Its
// errors are *fieldError.
func compile(t *ToolConfig) (*tool, error) {
	if p := textcheck.Problem(t.ID, true, maxNameLen); p != "" {
		return nil, bad("id", "%s", p)
	}
	ct := &tool{
		timeout:     t.Timeout,
		maxResponse: t.MaxResponseBytes,
		auth:        t.Auth,
		retry:       t.Retry,
		headers:     map[string]string{},
		ops:         map[string]*operation{},
	}
	u, err := url.Parse(t.BaseURL)
	switch {
	case err != nil:
		return nil, bad("base_url", "must be an absolute http or https URL")
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "", u.Opaque != "":
		return nil, bad("base_url", "must be an absolute http or https URL")
	case u.User != nil:
		return nil, bad("base_url", "must not hold user info: use auth")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(t.BaseURL, "?#"):
		return nil, bad("base_url", "must not hold a query or fragment")
	}
	ct.base = u
	ct.basePath = strings.TrimSuffix(u.EscapedPath(), "/")

	if ct.timeout == 0 {
		ct.timeout = DefaultTimeout
	}
	if ct.timeout < 0 || ct.timeout > maxTimeout {
		return nil, bad("timeout", "must be positive and at most %s", maxTimeout)
	}
	if ct.maxResponse == 0 {
		ct.maxResponse = DefaultMaxResponseBytes
	}
	if ct.maxResponse < 0 || ct.maxResponse > maxResponseBytes {
		return nil, bad("max_response_bytes", "must be between 1 and %d", maxResponseBytes)
	}
	for _, p := range t.AllowPrivate {
		if !p.IsValid() || p != p.Masked() {
			return nil, bad("allow_private", "must be valid prefixes without host bits set")
		}
	}

	// Auth.
	a := &ct.auth
	switch a.Type {
	case AuthNone:
		if a.Secret != "" || a.Username != "" || a.Header != "" {
			return nil, bad("auth.type", "is required when auth has other keys")
		}
	case AuthBearer, AuthBasic, AuthHeader, AuthHMAC:
		if p := textcheck.Problem(a.Secret, true, maxNameLen); p != "" {
			return nil, bad("auth.secret", "%s (it names a vault secret)", p)
		}
	default:
		return nil, bad("auth.type", "must be bearer, basic, header or hmac")
	}
	if a.Type == AuthBasic {
		if a.Username == "" || strings.ContainsRune(a.Username, ':') || !validHeaderValue(a.Username) {
			return nil, bad("auth.username", "must be non-empty, without ':' or control characters")
		}
	} else if a.Username != "" {
		return nil, bad("auth.username", "is only for basic auth")
	}
	switch a.Type {
	case AuthHeader:
		if a.Header == "" {
			return nil, bad("auth.header", "is required for header auth")
		}
	case AuthHMAC:
		if a.Header == "" {
			a.Header = DefaultSignatureHeader
		}
	default:
		if a.Header != "" {
			return nil, bad("auth.header", "is only for header and hmac auth")
		}
	}
	if a.Header != "" {
		if err := checkHeaderName(a.Header); err != nil {
			return nil, bad("auth.header", "%v", err)
		}
		a.Header = textproto.CanonicalMIMEHeaderKey(a.Header)
	}

	// Idempotency header.
	if t.IdempotencyHeader != "" {
		if err := checkHeaderName(t.IdempotencyHeader); err != nil {
			return nil, bad("idempotency_header", "%v", err)
		}
		ct.idemHeader = textproto.CanonicalMIMEHeaderKey(t.IdempotencyHeader)
		if ct.idemHeader == a.Header {
			return nil, bad("idempotency_header", "is the auth header")
		}
	}

	// Static headers.
	for _, k := range slices.Sorted(maps.Keys(t.Headers)) {
		key := join("headers", truncate(k))
		if err := checkHeaderName(k); err != nil {
			return nil, bad(key, "%v", err)
		}
		ck := textproto.CanonicalMIMEHeaderKey(k)
		switch {
		case slices.Contains(forbiddenHeaders, ck):
			return nil, bad(key, "may not be a static header (credentials come from the vault through auth)")
		case ck == a.Header, ck == ct.idemHeader:
			return nil, bad(key, "is set by the connector (auth or idempotency header)")
		case !validHeaderValue(t.Headers[k]):
			return nil, bad(key, "value has a control character")
		}
		if _, dup := ct.headers[ck]; dup {
			return nil, bad(key, "is given twice (header names are case-insensitive)")
		}
		ct.headers[ck] = t.Headers[k]
	}

	// Retry.
	r := &ct.retry
	if r.MaxAttempts == 0 {
		r.MaxAttempts = 1
	}
	if r.MaxAttempts < 1 || r.MaxAttempts > maxAttempts {
		return nil, bad("retry.max_attempts", "must be between 1 and %d", maxAttempts)
	}
	if r.InitialBackoff == 0 {
		r.InitialBackoff = DefaultInitialBackoff
	}
	if r.MaxBackoff == 0 {
		r.MaxBackoff = max(DefaultMaxBackoff, r.InitialBackoff)
	}
	if r.InitialBackoff < 0 || r.InitialBackoff > maxBackoff {
		return nil, bad("retry.initial_backoff", "must be positive and at most %s", maxBackoff)
	}
	if r.MaxBackoff < r.InitialBackoff || r.MaxBackoff > maxBackoff {
		return nil, bad("retry.max_backoff", "must be at least initial_backoff and at most %s", maxBackoff)
	}

	// Operations.
	if len(t.Operations) == 0 {
		return nil, bad("operations", "must have at least one operation")
	}
	for _, oc := range t.Operations {
		op, err := compileOp(oc)
		if err != nil {
			return nil, err
		}
		if _, dup := ct.ops[oc.Name]; dup {
			return nil, bad(join("operations", truncate(oc.Name)), "listed twice")
		}
		ct.ops[oc.Name] = op
	}
	return ct, nil
}

func compileOp(oc OperationConfig) (*operation, error) {
	prefix := join("operations", truncate(oc.Name))
	if p := textcheck.Problem(oc.Name, true, maxNameLen); p != "" {
		return nil, bad(prefix, "operation name %s", p)
	}
	if len(oc.Description) > maxDescriptionBytes {
		return nil, bad(join(prefix, "description"), "is longer than %d bytes", maxDescriptionBytes)
	}
	if !slices.Contains(methods, oc.Method) {
		return nil, bad(join(prefix, "method"), "must be one of %s", strings.Join(methods, ", "))
	}
	op := &operation{cfg: oc, summary: oc.Summary}
	var err error
	if op.path, err = parsePath(oc.Path); err != nil {
		return nil, bad(join(prefix, "path"), "%v", err)
	}
	for _, k := range slices.Sorted(maps.Keys(oc.Query)) {
		if k == "" {
			return nil, bad(join(prefix, "query"), "parameter names must not be empty")
		}
		p := queryParam{name: k}
		if f, ok := placeholder(oc.Query[k]); ok {
			p.field = f
		} else {
			p.lit = oc.Query[k]
		}
		op.query = append(op.query, p)
	}
	if oc.Body != nil && (oc.Method == "GET" || oc.Method == "HEAD") {
		return nil, bad(join(prefix, "body"), "is not allowed with %s", oc.Method)
	}
	if op.body, err = parseBody(oc.Body); err != nil {
		return nil, bad(join(prefix, "body"), "%v", err)
	}
	if _, err := connector.CompileSchema(oc.InputSchema); err != nil {
		return nil, bad(join(prefix, "input_schema"), "%v", err)
	}
	for i, s := range oc.Success {
		if s < 100 || s > 599 {
			return nil, bad(fmt.Sprintf("%s.success[%d]", prefix, i), "must be an HTTP status between 100 and 599")
		}
		if slices.Contains(oc.Success[:i], s) {
			return nil, bad(fmt.Sprintf("%s.success[%d]", prefix, i), "is listed twice")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(oc.Summary)) {
		if k == "" {
			return nil, bad(join(prefix, "summary"), "keys must not be empty")
		}
		if err := checkPointer(oc.Summary[k]); err != nil {
			return nil, bad(join(join(prefix, "summary"), truncate(k)), "%v", err)
		}
	}
	return op, nil
}

// checkHeaderName reports whether s is an HTTP header name (an RFC 9110
// token).
func checkHeaderName(s string) error {
	if s == "" {
		return errors.New("header name must not be empty")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return fmt.Errorf("header name %q has a character not allowed in a header name", truncate(s))
		}
	}
	return nil
}

// validHeaderValue reports whether s may be a header value: no control
// characters other than tab.
func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < 0x20 && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}
