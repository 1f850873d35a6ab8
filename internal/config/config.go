// Package config loads the configuration of oarsd from flags, OARS_*
// environment variables and a YAML file, in that order of precedence, and
// validates it before anything starts.
//
// Every key can be given in all three places: the YAML key data_dir is the
// flag --data-dir and the variable OARS_DATA_DIR. Errors name the key and
// where it came from.
package config

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/identity"
)

// Environments.
const (
	EnvDevelopment = "development"
	EnvProduction  = "production"
)

// DevTokens are the API tokens a development server accepts, by secret.
// They are refused when the environment is production.
var DevTokens = []struct {
	Secret string
	Role   identity.Role
}{
	{"dev_admin_token", identity.RoleAdmin},
	{"dev_operator_token", identity.RoleOperator},
	{"dev_auditor_token", identity.RoleAuditor},
}

// Token is an API token entry of the config file. Token holds a plain
// secret only until the file is first loaded: Load then replaces it by its
// hash in the file (see [Load]).
type Token struct {
	Name        string   `yaml:"name"`
	Token       string   `yaml:"token,omitempty"`
	TokenSHA256 string   `yaml:"token_sha256,omitempty"`
	Roles       []string `yaml:"roles"`
	Tenants     []string `yaml:"tenants"`
	AgentID     string   `yaml:"agent_id,omitempty"`
	// Groups are the business groups of the token's holder, such as
	// "finance-approver": the approver roles policies name.
	Groups []string `yaml:"groups,omitempty"`
}

// Config is the whole configuration of oarsd.
type Config struct {
	// Env is development (default) or production.
	Env string `yaml:"env" flag:"env" usage:"environment: development or production"`
	// Addr is the listen address.
	Addr string `yaml:"addr" flag:"addr" usage:"listen address"`
	// DataDir holds the SQLite ledger, the signing key and the JWKS.
	DataDir string `yaml:"data_dir" flag:"data-dir" usage:"data directory (ledger, keys)"`
	// Policy is a policy file or a directory of them. Empty in development
	// means the demo policy.
	Policy string `yaml:"policy" flag:"policy" usage:"policy file or directory"`
	// SigningKey is the private key file; empty in development means
	// DataDir/signing.key, generated on first start.
	SigningKey string `yaml:"signing_key" flag:"signing-key" usage:"Ed25519 signing key file (JWK)"`
	// Origin names the log in checkpoints.
	Origin string `yaml:"origin" flag:"origin" usage:"ledger origin (checkpoint log name)"`
	// PostgresURL selects the PostgreSQL store instead of SQLite.
	PostgresURL string `yaml:"postgres_url" flag:"postgres-url" usage:"PostgreSQL connection string (instead of SQLite)"`
	// PublicBaseURL is the https base URL published in discovery documents.
	PublicBaseURL string `yaml:"public_base_url" flag:"public-base-url" usage:"public https base URL"`
	// LogFormat is text or json; LogLevel debug, info, warn or error.
	LogFormat string `yaml:"log_format" flag:"log-format" usage:"log format: text or json"`
	LogLevel  string `yaml:"log_level" flag:"log-level" usage:"log level: debug, info, warn, error"`
	// TLS.
	TLSCert  string `yaml:"tls_cert" flag:"tls-cert" usage:"TLS certificate file (PEM)"`
	TLSKey   string `yaml:"tls_key" flag:"tls-key" usage:"TLS private key file (PEM)"`
	ClientCA string `yaml:"client_ca" flag:"client-ca" usage:"CA bundle (PEM) to verify client certificates"`
	// TLSTerminatedUpstream acknowledges, in production, that TLS is
	// terminated by a proxy in front of oarsd.
	TLSTerminatedUpstream bool `yaml:"tls_terminated_upstream" flag:"tls-terminated-upstream" usage:"production: TLS is terminated by a proxy in front"`
	// Limits.
	MaxBodyBytes    int64         `yaml:"max_body_bytes" flag:"max-body-bytes" usage:"request body limit in bytes"`
	RateLimit       float64       `yaml:"rate_limit" flag:"rate-limit" usage:"requests per second per token"`
	RateBurst       int           `yaml:"rate_burst" flag:"rate-burst" usage:"burst of requests per token"`
	ReadTimeout     time.Duration `yaml:"read_timeout" flag:"read-timeout" usage:"HTTP read timeout"`
	WriteTimeout    time.Duration `yaml:"write_timeout" flag:"write-timeout" usage:"HTTP write timeout"`
	IdleTimeout     time.Duration `yaml:"idle_timeout" flag:"idle-timeout" usage:"HTTP idle timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" flag:"shutdown-timeout" usage:"graceful shutdown budget"`
	CORSOrigins     []string      `yaml:"cors_origins" flag:"cors-origins" usage:"comma-separated allowed CORS origins"`
	// Tokens are the API tokens (config file only).
	Tokens []Token `yaml:"tokens"`
	// JWTIssuers are the issuers of JWT bearer tokens trusted (config
	// file only); ClientIdentities map TLS client certificates to
	// workload identities (config file only, needs client_ca).
	JWTIssuers       []JWTIssuer      `yaml:"jwt_issuers"`
	ClientIdentities []ClientIdentity `yaml:"client_identities"`
	// AuthOrder is the order the authenticators (mtls, jwt, token) are
	// tried in; empty means [DefaultAuthOrder].
	AuthOrder []string `yaml:"auth_order" flag:"auth-order" usage:"comma-separated order of authenticators: mtls, jwt, token"`
	// Approvals.
	//
	// StepUpKey seals approvers' TOTP secrets at rest: 32 bytes as 64 hex
	// digits or base64 (see [DecodeStepUpKey]). Empty in development
	// means DataDir/stepup.key, generated on first start; production
	// requires it. Prefer the variable OARS_STEPUP_KEY to the flag.
	StepUpKey string `yaml:"stepup_key" flag:"stepup-key" usage:"key sealing TOTP secrets at rest: 32 bytes, hex or base64 (prefer the environment variable)"`
	// WebhookURL, if set, is notified by a signed POST when an action
	// waits for approval; WebhookSecret (at least 16 bytes) signs it.
	WebhookURL    string `yaml:"webhook_url" flag:"webhook-url" usage:"URL notified (signed POST) when an action waits for approval"`
	WebhookSecret string `yaml:"webhook_secret" flag:"webhook-secret" usage:"HMAC secret of webhook notifications, at least 16 bytes (prefer the environment variable)"`
	// SweepInterval is how often approval requests past their expiry are
	// recorded as expired.
	SweepInterval time.Duration `yaml:"sweep_interval" flag:"sweep-interval" usage:"how often expired approval requests are recorded"`
	// ExecutionLease bounds one execution by the server; an execution
	// claimed longer ago that recorded no result is marked failed
	// (interrupted).
	ExecutionLease time.Duration `yaml:"execution_lease" flag:"execution-lease" usage:"longest execution by the server; older unfinished ones are marked failed"`
	// Connectors.
	//
	// Connectors is a YAML file of HTTP connector tools (see
	// connector/httpconn and examples/issue-tracker): the server then
	// executes their allowed and approved actions itself, with
	// credentials from the vault.
	Connectors string `yaml:"connectors" flag:"connectors" usage:"YAML file of HTTP connector tools executed by the server"`
	// AllowedTools limits the tools the connectors serve (empty: all
	// configured); an action on any other tool is denied before policy.
	AllowedTools []string `yaml:"allowed_tools" flag:"allowed-tools" usage:"comma-separated tools the connectors may serve (default: all configured)"`
	// VaultKeys are the keys sealing connector secrets at rest,
	// "id:base64,id:base64" with the active key first (see
	// connector/vault.ParseKeys). Empty in development means
	// DataDir/vault.key, generated on first start; production requires it
	// when connectors are configured. Prefer the variable OARS_VAULT_KEYS.
	VaultKeys string `yaml:"vault_keys" flag:"vault-keys" usage:"keys sealing connector secrets: id:base64,... active first (prefer the environment variable)"`
	// Execution is how the server executes connector actions: sync (run
	// before POST /v1/actions answers) or queued (a durable queue in the
	// store, at-least-once, with retries and dead-lettering).
	Execution string `yaml:"execution" flag:"execution" usage:"connector execution: sync or queued"`
	// QueueMaxAttempts is the number of attempts of a queued execution
	// before it is dead-lettered.
	QueueMaxAttempts int `yaml:"queue_max_attempts" flag:"queue-max-attempts" usage:"attempts of a queued execution before it is dead-lettered"`
	// MCP proxy.
	//
	// MCPConfig is a YAML file of upstream MCP servers (see package mcp);
	// the server then serves the governing proxy at /mcp.
	MCPConfig string `yaml:"mcp_config" flag:"mcp-config" usage:"YAML file of upstream MCP servers served through the proxy at /mcp"`
	// MCPAllowedOrigins are the browser origins allowed to call /mcp.
	MCPAllowedOrigins []string `yaml:"mcp_allowed_origins" flag:"mcp-allowed-origins" usage:"comma-separated browser origins allowed to call /mcp"`
	// MCPApprovalWait bounds how long the retry of an MCP call held for
	// approval waits for the decision; keep it under the clients' tool
	// timeout and under write_timeout.
	MCPApprovalWait time.Duration `yaml:"mcp_approval_wait" flag:"mcp-approval-wait" usage:"how long an MCP call held for approval waits for the decision on its retry"`

	// ConfigFile is where the file part came from ("" for none).
	ConfigFile string `yaml:"-"`
}

// Defaults returns the configuration used where nothing else is given.
func Defaults() Config {
	return Config{
		Env:              EnvDevelopment,
		Addr:             ":8080",
		DataDir:          "oars-data",
		Origin:           "oars.local/ledger",
		LogFormat:        "text",
		LogLevel:         "info",
		MaxBodyBytes:     1 << 20,
		RateLimit:        1000,
		RateBurst:        2000,
		ReadTimeout:      15 * time.Second,
		WriteTimeout:     30 * time.Second,
		IdleTimeout:      120 * time.Second,
		ShutdownTimeout:  20 * time.Second,
		SweepInterval:    10 * time.Second,
		ExecutionLease:   5 * time.Minute,
		Execution:        ExecutionSync,
		QueueMaxAttempts: 5,
		MCPApprovalWait:  20 * time.Second,
	}
}

// Execution modes of Config.Execution.
const (
	ExecutionSync   = "sync"
	ExecutionQueued = "queued"
)

// MinWebhookSecretLength is the least length of WebhookSecret, in bytes.
const MinWebhookSecretLength = 16

// StepUpKeySize is the size of the step-up key, in bytes.
const StepUpKeySize = 32

// DecodeStepUpKey decodes a step-up key: [StepUpKeySize] bytes as 64 hex
// digits or as base64 (standard or URL alphabet, with or without
// padding). Its error never quotes the key.
func DecodeStepUpKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if len(s) == 2*StepUpKeySize {
		if b, err := hex.DecodeString(s); err == nil {
			return b, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == StepUpKeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as %d hex digits or base64", StepUpKeySize, 2*StepUpKeySize)
}

// Production reports whether the environment is production.
func (c *Config) Production() bool { return c.Env == EnvProduction }

// ErrHelp is returned by Load when -h or --help was given; the usage was
// written to the output.
var ErrHelp = flag.ErrHelp

// Load builds the configuration from args (without the program name),
// environ (as os.Environ) and, when --config or OARS_CONFIG names one, a
// YAML file: flags override environment variables, which override the
// file, which overrides [Defaults]. Unknown keys anywhere are errors.
//
// Plain token secrets in the file are replaced in the file by their
// SHA-256 hashes (token → token_sha256) before Load returns, so secrets are
// not left in configuration at rest; the rewrite keeps comments and is
// atomic.
func Load(args []string, environ []string, usage io.Writer) (*Config, error) {
	cfg := Defaults()
	fs := flag.NewFlagSet("oarsd", flag.ContinueOnError)
	fs.SetOutput(usage)
	configFile := fs.String("config", "", "YAML config file")
	fields := bindFlags(fs, &cfg)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("config: unexpected argument %q", fs.Arg(0))
	}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "OARS_") {
			env[k] = v
		}
	}
	file := *configFile
	if file == "" {
		file = env["OARS_CONFIG"]
	}
	if file != "" {
		if err := loadFile(file, &cfg); err != nil {
			return nil, err
		}
		cfg.ConfigFile = file
	}
	known := map[string]bool{"OARS_CONFIG": true}
	for _, f := range fields {
		name := envName(f.flag)
		known[name] = true
		if v, ok := env[name]; ok {
			if err := setValue(f.value, v); err != nil {
				return nil, fmt.Errorf("config: %s: %w", name, err)
			}
		}
	}
	for k := range env {
		if !known[k] && !strings.HasPrefix(k, "OARS_TEST_") {
			return nil, fmt.Errorf("config: unknown environment variable %s", k)
		}
	}
	var flagErr error
	fs.Visit(func(fl *flag.Flag) {
		if fl.Name == "config" || flagErr != nil {
			return
		}
		for _, f := range fields {
			if f.flag == fl.Name {
				if err := setValue(f.value, fl.Value.String()); err != nil {
					flagErr = fmt.Errorf("config: --%s: %w", fl.Name, err)
				}
			}
		}
	})
	if flagErr != nil {
		return nil, flagErr
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

type field struct {
	flag  string
	value reflect.Value
}

// bindFlags registers one string flag per tagged field of cfg; the values
// are applied after the environment so that flags win.
func bindFlags(fs *flag.FlagSet, cfg *Config) []field {
	var fields []field
	v := reflect.ValueOf(cfg).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := t.Field(i).Tag.Get("flag")
		if name == "" {
			continue
		}
		fs.String(name, "", t.Field(i).Tag.Get("usage")+" (env "+envName(name)+")")
		fields = append(fields, field{flag: name, value: v.Field(i)})
	}
	return fields
}

func envName(flagName string) string {
	return "OARS_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// setValue parses s into the field v.
func setValue(v reflect.Value, s string) error {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("want true or false, got %q", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int64:
		if v.Type() == reflect.TypeOf(time.Duration(0)) {
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("want a duration such as 30s, got %q", s)
			}
			v.SetInt(int64(d))
			return nil
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("want an integer, got %q", s)
		}
		v.SetInt(n)
	case reflect.Float64:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("want a number, got %q", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		v.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("unsupported kind %s", v.Kind())
	}
	return nil
}

// loadFile reads the YAML file strictly into cfg and rewrites plain token
// secrets to hashes.
func loadFile(path string, cfg *Config) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if len(data) > 1<<20 {
		return fmt.Errorf("config: %s: file is larger than 1 MiB", path)
	}
	if err := decodeStrict(data, cfg); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	return hashPlainTokens(path, data, cfg)
}

// decodeStrict decodes a YAML mapping into cfg key by key, so that every
// error names its key: unknown and duplicate keys, wrong types, and more
// than one document are errors.
func decodeStrict(data []byte, cfg *Config) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document")
	}
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of keys to values", root.Line)
	}
	fields := map[string]reflect.Value{}
	v := reflect.ValueOf(cfg).Elem()
	for i := 0; i < v.NumField(); i++ {
		name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("yaml"), ",")
		if name != "" && name != "-" {
			fields[name] = v.Field(i)
		}
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i], root.Content[i+1]
		f, ok := fields[key.Value]
		if !ok {
			return fmt.Errorf("line %d: unknown key %q", key.Line, key.Value)
		}
		if seen[key.Value] {
			return fmt.Errorf("line %d: duplicate key %q", key.Line, key.Value)
		}
		seen[key.Value] = true
		// Re-encode the value and decode it with a strict decoder so that
		// nested structures (tokens) reject unknown keys too.
		raw, err := yaml.Marshal(val)
		if err != nil {
			return fmt.Errorf("line %d: %s: %w", key.Line, key.Value, err)
		}
		vdec := yaml.NewDecoder(bytes.NewReader(raw))
		vdec.KnownFields(true)
		if err := vdec.Decode(f.Addr().Interface()); err != nil && !errors.Is(err, io.EOF) {
			msg := strings.TrimPrefix(err.Error(), "yaml: unmarshal errors:\n  ")
			return fmt.Errorf("line %d: %s: %s", key.Line, key.Value, msg)
		}
	}
	return nil
}

// hashPlainTokens replaces plain token secrets by their hashes, in cfg and
// in the file.
func hashPlainTokens(path string, data []byte, cfg *Config) error {
	plain := false
	for i := range cfg.Tokens {
		t := &cfg.Tokens[i]
		if t.Token == "" {
			continue
		}
		if t.TokenSHA256 != "" {
			return fmt.Errorf("config: %s: tokens[%d] (%s): give token or token_sha256, not both", path, i, t.Name)
		}
		t.TokenSHA256 = identity.HashToken(t.Token)
		t.Token = ""
		plain = true
	}
	if !plain {
		return nil
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	rewriteTokens(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return fmt.Errorf("config: %s: rewrite: %w", path, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".oarsd-config-*")
	if err != nil {
		return fmt.Errorf("config: %s: cannot hash plain tokens in place: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(buf.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("config: rewrite: %w", err)
	}
	if err := tmp.Chmod(info.Mode().Perm()); err != nil {
		tmp.Close()
		return fmt.Errorf("config: rewrite: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("config: rewrite: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("config: rewrite: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("config: rewrite: %w", err)
	}
	return nil
}

// rewriteTokens turns every "token: <secret>" of the tokens list into
// "token_sha256: <hash>" in the YAML tree.
func rewriteTokens(n *yaml.Node) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			rewriteTokens(c)
		}
		return
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != "tokens" || n.Content[i+1].Kind != yaml.SequenceNode {
			continue
		}
		for _, item := range n.Content[i+1].Content {
			if item.Kind != yaml.MappingNode {
				continue
			}
			for j := 0; j+1 < len(item.Content); j += 2 {
				if item.Content[j].Value == "token" {
					item.Content[j].Value = "token_sha256"
					item.Content[j+1].Value = identity.HashToken(item.Content[j+1].Value)
					item.Content[j+1].Style = 0
				}
			}
		}
	}
}

// Validate checks the configuration; in production it refuses insecure
// defaults with a message saying what to set.
func (c *Config) Validate() error {
	switch c.Env {
	case EnvDevelopment, EnvProduction:
	default:
		return fmt.Errorf("config: env: want %s or %s, got %q", EnvDevelopment, EnvProduction, c.Env)
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("config: addr: %q is not host:port", c.Addr)
	}
	if c.DataDir == "" && c.PostgresURL == "" {
		return errors.New("config: data_dir: required")
	}
	if !slices.Contains([]string{"text", "json"}, c.LogFormat) {
		return fmt.Errorf("config: log_format: want text or json, got %q", c.LogFormat)
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		return fmt.Errorf("config: log_level: want debug, info, warn or error, got %q", c.LogLevel)
	}
	if c.Origin == "" || strings.ContainsAny(c.Origin, " +\n\t") {
		return fmt.Errorf("config: origin: %q must be non-empty without spaces or '+'", c.Origin)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("config: tls_cert and tls_key: give both or neither")
	}
	if c.ClientCA != "" && c.TLSCert == "" {
		return errors.New("config: client_ca: needs tls_cert and tls_key")
	}
	if c.MaxBodyBytes <= 0 || c.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("config: max_body_bytes: want 1..%d, got %d", 64<<20, c.MaxBodyBytes)
	}
	if c.RateLimit <= 0 || c.RateBurst <= 0 {
		return errors.New("config: rate_limit and rate_burst: must be positive")
	}
	for name, d := range map[string]time.Duration{"read_timeout": c.ReadTimeout, "write_timeout": c.WriteTimeout, "idle_timeout": c.IdleTimeout, "shutdown_timeout": c.ShutdownTimeout,
		"sweep_interval": c.SweepInterval, "execution_lease": c.ExecutionLease} {
		if d <= 0 {
			return fmt.Errorf("config: %s: must be positive", name)
		}
	}
	if c.PublicBaseURL != "" {
		u, err := url.Parse(c.PublicBaseURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("config: public_base_url: want an https URL, got %q", c.PublicBaseURL)
		}
	}
	for _, o := range c.CORSOrigins {
		if o == "*" {
			return errors.New("config: cors_origins: \"*\" is not allowed; list the origins")
		}
	}
	if c.Execution != ExecutionSync && c.Execution != ExecutionQueued {
		return fmt.Errorf("config: execution: want %q or %q, got %q", ExecutionSync, ExecutionQueued, c.Execution)
	}
	if c.MCPApprovalWait <= 0 || c.MCPApprovalWait >= c.WriteTimeout {
		return fmt.Errorf("config: mcp_approval_wait: must be positive and below write_timeout (%s)", c.WriteTimeout)
	}
	for _, o := range c.MCPAllowedOrigins {
		if u, err := url.Parse(o); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "" {
			return fmt.Errorf("config: mcp_allowed_origins: %q is not an origin (scheme://host[:port])", o)
		}
	}
	if c.QueueMaxAttempts < 1 || c.QueueMaxAttempts > 100 {
		return fmt.Errorf("config: queue_max_attempts: want 1..100, got %d", c.QueueMaxAttempts)
	}
	if c.Env == EnvProduction && c.Connectors != "" && c.VaultKeys == "" {
		return errors.New("config: vault_keys: required in production when connectors are configured (set OARS_VAULT_KEYS)")
	}
	if c.VaultKeys != "" {
		if _, err := vault.ParseKeys(c.VaultKeys); err != nil {
			return fmt.Errorf("config: vault_keys: %w", err)
		}
	}
	if err := c.validateApprovals(); err != nil {
		return err
	}
	if err := c.validateIdentity(); err != nil {
		return err
	}
	for i, t := range c.Tokens {
		if t.Name == "" {
			return fmt.Errorf("config: tokens[%d]: name: required", i)
		}
		if t.TokenSHA256 == "" {
			return fmt.Errorf("config: tokens[%d] (%s): token_sha256: required", i, t.Name)
		}
	}
	if c.Production() {
		return c.validateProduction()
	}
	return nil
}

func (c *Config) validateProduction() error {
	if c.SigningKey == "" {
		return errors.New("config: production: signing_key: set the path of an existing key file (create one with 'oars keygen --out FILE'); keys are never generated in production")
	}
	if _, err := os.Stat(c.SigningKey); err != nil {
		return fmt.Errorf("config: production: signing_key: %w", err)
	}
	if c.Policy == "" {
		return errors.New("config: production: policy: set a policy file or directory; the demo policy is for development only")
	}
	if len(c.Tokens) == 0 && len(c.JWTIssuers) == 0 && len(c.ClientIdentities) == 0 {
		return errors.New("config: production: tokens: configure at least one API token (or jwt_issuers or client_identities); dev tokens are refused in production")
	}
	for _, t := range c.Tokens {
		for _, d := range DevTokens {
			if t.TokenSHA256 == identity.HashToken(d.Secret) {
				return fmt.Errorf("config: production: tokens (%s): the dev token %q is refused in production", t.Name, d.Secret)
			}
		}
	}
	if c.TLSCert == "" && !c.TLSTerminatedUpstream {
		return errors.New("config: production: tls_cert and tls_key: set them, or set tls_terminated_upstream: true when a proxy terminates TLS")
	}
	if c.StepUpKey == "" {
		return errors.New("config: production: stepup_key: set OARS_STEPUP_KEY to 32 random bytes (64 hex digits, e.g. from 'openssl rand -hex 32'); keys are never generated in production")
	}
	if c.WebhookURL != "" {
		if u, _ := url.Parse(c.WebhookURL); u.Scheme != "https" {
			return errors.New("config: production: webhook_url: must be https")
		}
	}
	return nil
}

// validateApprovals checks the approval settings. Errors never quote the
// key, the secret or the webhook URL (which may carry a token).
func (c *Config) validateApprovals() error {
	if c.StepUpKey != "" {
		if _, err := DecodeStepUpKey(c.StepUpKey); err != nil {
			return fmt.Errorf("config: stepup_key: %w", err)
		}
	}
	switch {
	case c.WebhookURL == "" && c.WebhookSecret != "":
		return errors.New("config: webhook_secret: set only with webhook_url")
	case c.WebhookURL == "":
		return nil
	}
	u, err := url.Parse(c.WebhookURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("config: webhook_url: want an absolute https URL")
	}
	if len(c.WebhookSecret) < MinWebhookSecretLength {
		return fmt.Errorf("config: webhook_secret: required with webhook_url, at least %d bytes", MinWebhookSecretLength)
	}
	return nil
}
