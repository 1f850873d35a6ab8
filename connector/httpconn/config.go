package httpconn

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/connector/egress"
	"github.com/oarsdev/oars/internal/yamlx"
)

// Defaults and limits of tool files.
const (
	// MaxConfigSize bounds the size of a tool file.
	MaxConfigSize = 1 << 20
	// DefaultTimeout bounds one attempt when timeout is not given.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxResponseBytes bounds a response body when
	// max_response_bytes is not given.
	DefaultMaxResponseBytes = 1 << 20
	// DefaultIdempotencyHeader carries the request's idempotency key when
	// idempotency_header is not given.
	DefaultIdempotencyHeader = "Idempotency-Key"
	// DefaultSignatureHeader carries the hmac signature when auth.header is
	// not given.
	DefaultSignatureHeader = "X-OARS-Signature"
	// DefaultMaxAttempts, DefaultInitialBackoff and DefaultMaxBackoff fill
	// in a retry block's missing keys.
	DefaultMaxAttempts    = 3
	DefaultInitialBackoff = 200 * time.Millisecond
	DefaultMaxBackoff     = 2 * time.Second

	maxTimeout          = 10 * time.Minute
	maxResponseBytes    = 256 << 20
	maxAttempts         = 10
	maxBackoff          = 5 * time.Minute
	maxNameLen          = 256
	maxDescriptionBytes = 4096
)

// Config is a parsed tool file.
type Config struct {
	// Tools are the file's tools, in file order.
	Tools []ToolConfig
}

// ToolConfig configures the connector of one tool. [Parse] fills in the
// defaults; a ToolConfig built in Go gets the same defaults from [New]
// for zero values, except that an empty IdempotencyHeader sends none and
// Idempotent is false unless set.
type ToolConfig struct {
	// ID is the tool id actions name.
	ID string
	// BaseURL is the http or https URL the operations' paths are appended
	// to; it has no user info, query or fragment.
	BaseURL string
	// AllowPrivate lists the internal address ranges the tool may reach
	// ([egress.Policy.Allow]); in a file, entries are addresses or
	// prefixes as [egress.ParseAllow] reads them.
	AllowPrivate []netip.Prefix
	// Timeout bounds one attempt; 0 means [DefaultTimeout].
	Timeout time.Duration
	// MaxResponseBytes bounds a response body; 0 means
	// [DefaultMaxResponseBytes].
	MaxResponseBytes int64
	// Headers are sent with every request. They must not hold secrets.
	Headers map[string]string
	// Auth says how requests are authenticated; the zero value sends no
	// credentials.
	Auth Auth
	// IdempotencyHeader names the header that carries the request's
	// idempotency key; "" sends none.
	IdempotencyHeader string
	// Retry says how idempotent operations are retried; the zero value
	// attempts once.
	Retry Retry
	// Operations are the tool's operations.
	Operations []OperationConfig
}

// AuthType is a way of authenticating requests.
type AuthType string

// Authentication types.
const (
	AuthNone   AuthType = ""
	AuthBearer AuthType = "bearer"
	AuthBasic  AuthType = "basic"
	AuthHeader AuthType = "header"
	AuthHMAC   AuthType = "hmac"
)

// Auth says how a tool's requests are authenticated. See the package
// documentation for what each type sends.
type Auth struct {
	// Type is the kind of authentication; [AuthNone] sends none.
	Type AuthType
	// Secret is the vault name of the bearer token, basic password,
	// header value or HMAC key. It is a name, never the secret.
	Secret string
	// Username is the basic-auth user name (basic only; not secret).
	Username string
	// Header is the header carrying the secret (header, required) or the
	// signature (hmac; "" means [DefaultSignatureHeader]).
	Header string
}

// Retry says how an idempotent operation is retried.
type Retry struct {
	// MaxAttempts is the most attempts per execution; 0 means 1.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt, doubled
	// before each further one up to MaxBackoff. 0 means
	// [DefaultInitialBackoff].
	InitialBackoff time.Duration
	// MaxBackoff caps every wait, including a Retry-After; 0 means the
	// larger of [DefaultMaxBackoff] and InitialBackoff.
	MaxBackoff time.Duration
}

// OperationConfig maps one operation to an HTTP request.
type OperationConfig struct {
	// Name is the operation name actions use.
	Name string
	// Description says what the operation does.
	Description string
	// Method is GET, HEAD, POST, PUT, PATCH or DELETE.
	Method string
	// Path is the path template, starting with "/".
	Path string
	// Query maps parameter names to value templates.
	Query map[string]string
	// Body is the JSON body template; nil sends no body.
	Body json.RawMessage
	// InputSchema is the JSON Schema of the operation's input; nil
	// accepts any object.
	InputSchema json.RawMessage
	// Idempotent reports that the operation may be retried. Parse
	// defaults it to true for GET, HEAD, PUT and DELETE.
	Idempotent bool
	// Success lists the statuses that mean success; empty means any 2xx.
	Success []int
	// Summary maps summary keys to JSON Pointers into the response.
	Summary map[string]string
	// RecordOutput records the whole response (a JSON object of at most
	// receipt.MaxSummaryBytes) in the executed receipt as its summary,
	// instead of only the digest and the summary pointers (see the
	// package documentation).
	RecordOutput bool
}

// ParseError reports why a tool file was rejected. Its message names the
// file, the line (when known), the tool and the key, for example:
//
//	httpconn: tools.yaml:12: tool "tracker": operations.create_issue.method: must be one of GET, HEAD, POST, PUT, PATCH, DELETE
type ParseError struct {
	// File is the name the file was parsed under.
	File string
	// Line is the 1-based line in File, or 0 when unknown.
	Line int
	// Tool is the id of the tool the problem is in ("tools[2]" while the
	// id is unknown), or "".
	Tool string
	// Key is the key path of the offending value within the tool (or the
	// file, when Tool is ""), or "".
	Key string
	// Err is the problem.
	Err error
}

// Error implements error.
func (e *ParseError) Error() string {
	return yamlx.FormatError("httpconn", e.File, e.Line, e.Err, yamlx.Label("tool", e.Tool), e.Key)
}

// Unwrap returns the underlying problem.
func (e *ParseError) Unwrap() error { return e.Err }

// Load reads and parses the tool file at path (see [Parse]).
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("httpconn: load: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxConfigSize+1))
	if err != nil {
		return nil, fmt.Errorf("httpconn: load: %w", err)
	}
	return Parse(data, path)
}

// Parse parses and validates a tool file; filename is used only in error
// messages. It returns a [*ParseError] when data is larger than
// [MaxConfigSize], is not exactly one YAML document, has unknown,
// duplicate or missing keys, values of the wrong type, aliases, or values
// [New] would refuse (a bad URL, method, template, duration, header,
// schema…). It never builds a connector and reads no secrets.
func Parse(data []byte, filename string) (*Config, error) {
	w := newWalker(filename)
	root, err := w.decodeSingle(data)
	if err != nil {
		return nil, err
	}
	var toolsNode *yaml.Node
	err = w.Mapping(root, "", func(key string, v *yaml.Node) error {
		switch key {
		case "tools":
			if v.Kind != yaml.SequenceNode {
				return w.Fail(v, key, "must be a list of tools, got %s", yamlx.KindName(v))
			}
			toolsNode = v
			return nil
		}
		return yamlx.ErrUnknownKey
	})
	if err != nil {
		return nil, err
	}
	if toolsNode == nil {
		return nil, w.Fail(root, "tools", "required key is missing")
	}
	if len(toolsNode.Content) == 0 {
		return nil, w.Fail(toolsNode, "tools", "must have at least one tool")
	}
	cfg := &Config{}
	ids := map[string]int{}
	for i, n := range toolsNode.Content {
		t, err := w.parseTool(i, n)
		if err != nil {
			return nil, err
		}
		if first, dup := ids[t.ID]; dup {
			w.toolName = t.ID
			return nil, w.Fail(n, "id", "duplicate tool id (first at line %d)", first)
		}
		ids[t.ID] = n.Line
		cfg.Tools = append(cfg.Tools, t)
	}
	return cfg, nil
}

// parseTool walks tools[i] and validates the result with compile.
func (w *walker) parseTool(i int, n *yaml.Node) (ToolConfig, error) {
	w.toolName = fmt.Sprintf("tools[%d]", i)
	w.Lines = map[string]int{}
	defer func() { w.toolName, w.Lines = "", nil }()
	if id, ok := yamlx.Peek(n, "id", func(s string) bool { return s != "" && len(s) <= maxNameLen }); ok {
		w.toolName = id
	}
	t := ToolConfig{
		Timeout:           DefaultTimeout,
		MaxResponseBytes:  DefaultMaxResponseBytes,
		IdempotencyHeader: DefaultIdempotencyHeader,
	}
	err := w.Mapping(n, "", func(key string, v *yaml.Node) error {
		var err error
		switch key {
		case "id":
			t.ID, err = w.Str(v, key)
		case "base_url":
			t.BaseURL, err = w.Str(v, key)
		case "allow_private":
			var l []string
			if l, err = w.StrList(v, key, 0); err != nil {
				return err
			}
			for j, s := range l {
				p, perr := egress.ParseAllow([]string{s})
				if perr != nil {
					return w.Fail(v.Content[j], fmt.Sprintf("%s[%d]", key, j), "must be an address or a prefix such as 127.0.0.1 or 10.0.0.0/8, without host bits set")
				}
				t.AllowPrivate = append(t.AllowPrivate, p...)
			}
		case "timeout":
			t.Timeout, err = w.Duration(v, key)
		case "max_response_bytes":
			var i int
			if i, err = w.Int(v, key); err == nil && i < 1 {
				err = w.Fail(v, key, "must be at least 1")
			}
			t.MaxResponseBytes = int64(i)
		case "headers":
			t.Headers, err = w.StrMap(v, key)
		case "auth":
			err = w.auth(v, &t.Auth)
		case "idempotency_header":
			t.IdempotencyHeader, err = w.Str(v, key)
		case "retry":
			err = w.retry(v, &t.Retry)
		case "operations":
			err = w.Mapping(v, key, func(name string, v *yaml.Node) error {
				op, err := w.operation(name, v)
				if err == nil {
					t.Operations = append(t.Operations, op)
				}
				return err
			})
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err == nil {
		err = w.Require(n, "", "id", "base_url", "operations")
	}
	if err != nil {
		return ToolConfig{}, err
	}
	if t.Auth.Type == AuthHMAC && t.Auth.Header == "" {
		t.Auth.Header = DefaultSignatureHeader
	}
	if _, err := compile(&t); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			line := n.Line
			for k := fe.key; k != ""; {
				if l, ok := w.Lines[k]; ok {
					line = l
					break
				}
				i := strings.LastIndexByte(k, '.')
				if i < 0 {
					break
				}
				k = k[:i]
			}
			return ToolConfig{}, &ParseError{File: w.file, Line: line, Tool: w.toolName, Key: fe.key, Err: fe.err}
		}
		return ToolConfig{}, w.ErrAt(n, "", err)
	}
	return t, nil
}

func (w *walker) auth(n *yaml.Node, a *Auth) error {
	err := w.Mapping(n, "auth", func(key string, v *yaml.Node) error {
		path := join("auth", key)
		var err error
		switch key {
		case "type":
			var s string
			s, err = w.Str(v, path)
			a.Type = AuthType(s)
		case "secret":
			a.Secret, err = w.Str(v, path)
		case "username":
			a.Username, err = w.Str(v, path)
		case "header":
			a.Header, err = w.Str(v, path)
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err != nil {
		return err
	}
	return w.Require(n, "auth", "type")
}

func (w *walker) retry(n *yaml.Node, r *Retry) error {
	*r = Retry{MaxAttempts: DefaultMaxAttempts, InitialBackoff: DefaultInitialBackoff}
	maxSet := false
	err := w.Mapping(n, "retry", func(key string, v *yaml.Node) error {
		path := join("retry", key)
		var err error
		switch key {
		case "max_attempts":
			if r.MaxAttempts, err = w.Int(v, path); err == nil && r.MaxAttempts < 1 {
				err = w.Fail(v, path, "must be at least 1")
			}
		case "initial_backoff":
			r.InitialBackoff, err = w.Duration(v, path)
		case "max_backoff":
			r.MaxBackoff, err = w.Duration(v, path)
			maxSet = true
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err != nil {
		return err
	}
	if !maxSet {
		r.MaxBackoff = max(DefaultMaxBackoff, r.InitialBackoff)
	}
	return nil
}

func (w *walker) operation(name string, n *yaml.Node) (OperationConfig, error) {
	prefix := join("operations", truncate(name))
	op := OperationConfig{Name: name}
	idempotentSet := false
	err := w.Mapping(n, prefix, func(key string, v *yaml.Node) error {
		path := join(prefix, key)
		var err error
		switch key {
		case "description":
			op.Description, err = w.Str(v, path)
		case "method":
			op.Method, err = w.Str(v, path)
		case "path":
			op.Path, err = w.Str(v, path)
		case "query":
			op.Query, err = w.StrMap(v, path)
		case "body":
			op.Body, err = w.json(v, path)
		case "input_schema":
			op.InputSchema, err = w.json(v, path)
		case "idempotent":
			op.Idempotent, err = w.Bool(v, path)
			idempotentSet = true
		case "success":
			if v.Kind != yaml.SequenceNode {
				return w.Fail(v, path, "must be a list of status codes, got %s", yamlx.KindName(v))
			}
			for j, e := range v.Content {
				s, err := w.Int(e, fmt.Sprintf("%s[%d]", path, j))
				if err != nil {
					return err
				}
				w.Lines[fmt.Sprintf("%s[%d]", path, j)] = e.Line
				op.Success = append(op.Success, s)
			}
		case "summary":
			op.Summary, err = w.StrMap(v, path)
		case "record_output":
			op.RecordOutput, err = w.Bool(v, path)
		default:
			return yamlx.ErrUnknownKey
		}
		return err
	})
	if err == nil {
		err = w.Require(n, prefix, "method", "path")
	}
	if err != nil {
		return OperationConfig{}, err
	}
	if !idempotentSet {
		op.Idempotent = defaultIdempotent(op.Method)
	}
	return op, nil
}

// defaultIdempotent reports whether method is idempotent by HTTP's
// definition.
func defaultIdempotent(method string) bool {
	switch method {
	case "GET", "HEAD", "PUT", "DELETE":
		return true
	}
	return false
}

// walker walks the yaml.Node tree of one file with a [yamlx.Walker] whose
// errors become [ParseError]s naming the file and the tool being walked,
// remembering in Lines the line of every key of the current tool for
// errors found after the walk.
type walker struct {
	yamlx.Walker
	file     string
	toolName string
}

func newWalker(file string) *walker {
	w := &walker{file: file}
	w.Wrap = func(e *yamlx.Error) error {
		return &ParseError{File: w.file, Line: e.Line, Tool: w.toolName, Key: e.Key, Err: e.Err}
	}
	return w
}

// decodeSingle decodes data as exactly one YAML document of at most
// [MaxConfigSize] bytes and returns its root node.
func (w *walker) decodeSingle(data []byte) (*yaml.Node, error) {
	if len(data) > MaxConfigSize {
		return nil, w.Fail(nil, "", "file is larger than the %d byte limit", MaxConfigSize)
	}
	return w.DecodeSingle(data)
}

// truncate and join serve the package's messages and key paths outside the
// walk too.
func truncate(s string) string { return yamlx.Truncate(s) }

func join(path, key string) string { return yamlx.Join(path, key) }

// json converts a YAML value to JSON text.
func (w *walker) json(n *yaml.Node, key string) (json.RawMessage, error) {
	v, err := w.JSONValue(n, key)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, w.ErrAt(n, key, err)
	}
	return b, nil
}
