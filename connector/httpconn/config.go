package httpconn

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/connector/egress"
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
	maxJSONDepth        = 64
	maxKeyInMessage     = 64
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
	var b strings.Builder
	b.WriteString("httpconn: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Tool != "" {
		fmt.Fprintf(&b, ": tool %q", e.Tool)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	} else {
		b.WriteString("invalid")
	}
	return b.String()
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
	w := &walker{file: filename}
	root, err := w.decodeSingle(data)
	if err != nil {
		return nil, err
	}
	var toolsNode *yaml.Node
	err = w.mapping(root, "", func(key string, v *yaml.Node) error {
		switch key {
		case "tools":
			if v.Kind != yaml.SequenceNode {
				return w.fail(v, key, "must be a list of tools, got %s", kindName(v))
			}
			toolsNode = v
			return nil
		}
		return errUnknownKey
	})
	if err != nil {
		return nil, err
	}
	if toolsNode == nil {
		return nil, w.fail(root, "tools", "required key is missing")
	}
	if len(toolsNode.Content) == 0 {
		return nil, w.fail(toolsNode, "tools", "must have at least one tool")
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
			return nil, w.fail(n, "id", "duplicate tool id (first at line %d)", first)
		}
		ids[t.ID] = n.Line
		cfg.Tools = append(cfg.Tools, t)
	}
	return cfg, nil
}

// parseTool walks tools[i] and validates the result with compile.
func (w *walker) parseTool(i int, n *yaml.Node) (ToolConfig, error) {
	w.toolName = fmt.Sprintf("tools[%d]", i)
	w.lines = map[string]int{}
	defer func() { w.toolName, w.lines = "", nil }()
	if n.Kind == yaml.MappingNode {
		for j := 0; j+1 < len(n.Content); j += 2 {
			if k, v := n.Content[j], n.Content[j+1]; k.Value == "id" && v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" && v.Value != "" && len(v.Value) <= maxNameLen {
				w.toolName = v.Value
			}
		}
	}
	t := ToolConfig{
		Timeout:           DefaultTimeout,
		MaxResponseBytes:  DefaultMaxResponseBytes,
		IdempotencyHeader: DefaultIdempotencyHeader,
	}
	seen := map[string]bool{}
	err := w.mapping(n, "", func(key string, v *yaml.Node) error {
		seen[key] = true
		var err error
		switch key {
		case "id":
			t.ID, err = w.str(v, key)
		case "base_url":
			t.BaseURL, err = w.str(v, key)
		case "allow_private":
			var l []string
			if l, err = w.strList(v, key); err != nil {
				return err
			}
			for j, s := range l {
				p, perr := egress.ParseAllow([]string{s})
				if perr != nil {
					return w.fail(v.Content[j], fmt.Sprintf("%s[%d]", key, j), "must be an address or a prefix such as 127.0.0.1 or 10.0.0.0/8, without host bits set")
				}
				t.AllowPrivate = append(t.AllowPrivate, p...)
			}
		case "timeout":
			t.Timeout, err = w.duration(v, key)
		case "max_response_bytes":
			var i int
			if i, err = w.integer(v, key); err == nil && i < 1 {
				err = w.fail(v, key, "must be at least 1")
			}
			t.MaxResponseBytes = int64(i)
		case "headers":
			t.Headers, err = w.strMap(v, key)
		case "auth":
			err = w.auth(v, &t.Auth)
		case "idempotency_header":
			t.IdempotencyHeader, err = w.str(v, key)
		case "retry":
			err = w.retry(v, &t.Retry)
		case "operations":
			err = w.mapping(v, key, func(name string, v *yaml.Node) error {
				op, err := w.operation(name, v)
				if err == nil {
					t.Operations = append(t.Operations, op)
				}
				return err
			})
		default:
			return errUnknownKey
		}
		return err
	})
	if err != nil {
		return ToolConfig{}, err
	}
	for _, k := range []string{"id", "base_url", "operations"} {
		if !seen[k] {
			return ToolConfig{}, w.fail(n, k, "required key is missing")
		}
	}
	if t.Auth.Type == AuthHMAC && t.Auth.Header == "" {
		t.Auth.Header = DefaultSignatureHeader
	}
	if _, err := compile(&t); err != nil {
		var fe *fieldError
		if errors.As(err, &fe) {
			line := n.Line
			for k := fe.key; k != ""; {
				if l, ok := w.lines[k]; ok {
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
		return ToolConfig{}, w.errAt(n, "", err)
	}
	return t, nil
}

func (w *walker) auth(n *yaml.Node, a *Auth) error {
	seen := map[string]bool{}
	err := w.mapping(n, "auth", func(key string, v *yaml.Node) error {
		seen[key] = true
		path := join("auth", key)
		var err error
		switch key {
		case "type":
			var s string
			s, err = w.str(v, path)
			a.Type = AuthType(s)
		case "secret":
			a.Secret, err = w.str(v, path)
		case "username":
			a.Username, err = w.str(v, path)
		case "header":
			a.Header, err = w.str(v, path)
		default:
			return errUnknownKey
		}
		return err
	})
	if err != nil {
		return err
	}
	if !seen["type"] {
		return w.fail(n, "auth.type", "required key is missing")
	}
	return nil
}

func (w *walker) retry(n *yaml.Node, r *Retry) error {
	*r = Retry{MaxAttempts: DefaultMaxAttempts, InitialBackoff: DefaultInitialBackoff}
	maxSet := false
	err := w.mapping(n, "retry", func(key string, v *yaml.Node) error {
		path := join("retry", key)
		var err error
		switch key {
		case "max_attempts":
			if r.MaxAttempts, err = w.integer(v, path); err == nil && r.MaxAttempts < 1 {
				err = w.fail(v, path, "must be at least 1")
			}
		case "initial_backoff":
			r.InitialBackoff, err = w.duration(v, path)
		case "max_backoff":
			r.MaxBackoff, err = w.duration(v, path)
			maxSet = true
		default:
			return errUnknownKey
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
	seen := map[string]bool{}
	err := w.mapping(n, prefix, func(key string, v *yaml.Node) error {
		seen[key] = true
		path := join(prefix, key)
		var err error
		switch key {
		case "description":
			op.Description, err = w.str(v, path)
		case "method":
			op.Method, err = w.str(v, path)
		case "path":
			op.Path, err = w.str(v, path)
		case "query":
			op.Query, err = w.strMap(v, path)
		case "body":
			op.Body, err = w.json(v, path)
		case "input_schema":
			op.InputSchema, err = w.json(v, path)
		case "idempotent":
			op.Idempotent, err = w.boolean(v, path)
		case "success":
			if v.Kind != yaml.SequenceNode {
				return w.fail(v, path, "must be a list of status codes, got %s", kindName(v))
			}
			for j, e := range v.Content {
				s, err := w.integer(e, fmt.Sprintf("%s[%d]", path, j))
				if err != nil {
					return err
				}
				w.lines[fmt.Sprintf("%s[%d]", path, j)] = e.Line
				op.Success = append(op.Success, s)
			}
		case "summary":
			op.Summary, err = w.strMap(v, path)
		case "record_output":
			op.RecordOutput, err = w.boolean(v, path)
		default:
			return errUnknownKey
		}
		return err
	})
	if err != nil {
		return OperationConfig{}, err
	}
	for _, k := range []string{"method", "path"} {
		if !seen[k] {
			return OperationConfig{}, w.fail(n, join(prefix, k), "required key is missing")
		}
	}
	if !seen["idempotent"] {
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

// walker walks the yaml.Node tree of one file, producing [ParseError]s that
// name the file and the tool being walked, and remembering the line of
// every key of the current tool for errors found after the walk.
type walker struct {
	file     string
	toolName string
	lines    map[string]int
}

func (w *walker) errAt(n *yaml.Node, key string, err error) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	return &ParseError{File: w.file, Line: line, Tool: w.toolName, Key: key, Err: err}
}

func (w *walker) fail(n *yaml.Node, key, format string, args ...any) error {
	return w.errAt(n, key, fmt.Errorf(format, args...))
}

// decodeSingle decodes data as exactly one YAML document and returns its
// root node.
func (w *walker) decodeSingle(data []byte) (*yaml.Node, error) {
	if len(data) > MaxConfigSize {
		return nil, w.fail(nil, "", "file is larger than the %d byte limit", MaxConfigSize)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, w.fail(nil, "", "empty document")
		}
		return nil, w.errAt(nil, "", err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, w.errAt(nil, "", err)
	default:
		return nil, w.fail(&extra, "", "multiple YAML documents in one file")
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, w.fail(&doc, "", "empty document")
	}
	return doc.Content[0], nil
}

// kindName describes a node's type for error messages.
func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.AliasNode:
		return "alias"
	case yaml.ScalarNode:
		switch t := n.ShortTag(); t {
		case "!!str":
			return "string"
		case "!!int":
			return "integer"
		case "!!float":
			return "number"
		case "!!bool":
			return "boolean"
		case "!!null":
			return "null"
		case "!!timestamp":
			return "timestamp"
		default:
			return "value tagged " + strconv.Quote(truncate(t))
		}
	}
	return "unknown node"
}

func truncate(s string) string {
	if len(s) <= maxKeyInMessage {
		return s
	}
	return s[:maxKeyInMessage] + "…"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

var errUnknownKey = errors.New("unknown key")

// mapping walks a mapping node, calling set for every key with its value
// node; set returns errUnknownKey for keys it does not know. Aliases,
// non-string keys and duplicate keys are rejected.
func (w *walker) mapping(n *yaml.Node, path string, set func(key string, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return w.fail(n, path, "must be a mapping, got %s", kindName(n))
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.ShortTag() != "!!str" {
			return w.fail(k, path, "keys must be strings, got %s", kindName(k))
		}
		if first, dup := seen[k.Value]; dup {
			return w.fail(k, join(path, truncate(k.Value)), "duplicate key (first at line %d)", first)
		}
		seen[k.Value] = k.Line
		if v.Kind == yaml.AliasNode {
			return w.fail(v, join(path, truncate(k.Value)), "aliases are not allowed")
		}
		if w.lines != nil {
			w.lines[join(path, k.Value)] = v.Line
		}
		if err := set(k.Value, v); err != nil {
			if errors.Is(err, errUnknownKey) {
				return w.fail(k, path, "unknown key %q", truncate(k.Value))
			}
			return err
		}
	}
	return nil
}

func (w *walker) str(n *yaml.Node, key string) (string, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = " (quote it)"
		}
		return "", w.fail(n, key, "must be a string, got %s%s", kindName(n), hint)
	}
	return n.Value, nil
}

func (w *walker) strList(n *yaml.Node, key string) ([]string, error) {
	if n.Kind != yaml.SequenceNode {
		return nil, w.fail(n, key, "must be a list of strings, got %s", kindName(n))
	}
	out := make([]string, 0, len(n.Content))
	for i, e := range n.Content {
		s, err := w.str(e, fmt.Sprintf("%s[%d]", key, i))
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// strMap reads a mapping of strings to strings.
func (w *walker) strMap(n *yaml.Node, key string) (map[string]string, error) {
	m := map[string]string{}
	err := w.mapping(n, key, func(k string, v *yaml.Node) error {
		s, err := w.str(v, join(key, truncate(k)))
		m[k] = s
		return err
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (w *walker) integer(n *yaml.Node, key string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		return 0, w.fail(n, key, "must be an integer, got %s", kindName(n))
	}
	var i int
	if err := n.Decode(&i); err != nil {
		return 0, w.fail(n, key, "must be an integer that fits in %d bits", strconv.IntSize)
	}
	return i, nil
}

func (w *walker) boolean(n *yaml.Node, key string) (bool, error) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		return false, w.fail(n, key, "must be true or false, got %s", kindName(n))
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		return false, w.fail(n, key, "must be true or false")
	}
	return b, nil
}

// duration reads a Go duration string such as "10s", greater than zero.
func (w *walker) duration(n *yaml.Node, key string) (time.Duration, error) {
	s, err := w.str(n, key)
	if err != nil {
		return 0, err
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, w.fail(n, key, "must be a positive duration such as 10s or 200ms")
	}
	return d, nil
}

// json converts a YAML value to JSON text.
func (w *walker) json(n *yaml.Node, key string) (json.RawMessage, error) {
	v, err := w.jsonValue(n, key, 0)
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, w.errAt(n, key, err)
	}
	return b, nil
}

// jsonValue converts a YAML node to the value encoding/json would decode
// from the equivalent JSON. Values JSON cannot represent (non-string keys,
// NaN, infinities, binary, integers a float64 cannot hold exactly) are
// rejected.
func (w *walker) jsonValue(n *yaml.Node, key string, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, w.fail(n, key, "nested deeper than %d levels", maxJSONDepth)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nil, w.fail(n, key, "aliases are not allowed")
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		err := w.mapping(n, key, func(k string, v *yaml.Node) error {
			val, err := w.jsonValue(v, join(key, truncate(k)), depth+1)
			m[k] = val
			return err
		})
		if err != nil {
			return nil, err
		}
		return m, nil
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for i, e := range n.Content {
			val, err := w.jsonValue(e, fmt.Sprintf("%s[%d]", key, i), depth+1)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		return l, nil
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!str":
			return n.Value, nil
		case "!!null":
			return nil, nil
		case "!!bool":
			return w.boolean(n, key)
		case "!!int":
			var i int64
			if err := n.Decode(&i); err != nil || i > 1<<53 || i < -(1<<53) {
				return nil, w.fail(n, key, "integer out of the exact range of a JSON number")
			}
			return i, nil
		case "!!float":
			var f float64
			if err := n.Decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
				return nil, w.fail(n, key, "must be a finite number")
			}
			return f, nil
		}
	}
	return nil, w.fail(n, key, "%s has no JSON equivalent", kindName(n))
}
