package mcp

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"

	"go.yaml.in/yaml/v3"

	"github.com/oarsdev/oars/connector/egress"
)

// Upstream is one MCP server the proxy governs: Streamable HTTP (URL) or
// stdio (Command).
type Upstream struct {
	// Name identifies the upstream; it is the tool_id of the actions of
	// its tools: lower-case letters, digits, '-' and '_', at most 64.
	Name string `yaml:"name"`
	// URL is the upstream's Streamable HTTP endpoint (http or https).
	URL string `yaml:"url"`
	// Headers are static, non-secret request headers.
	Headers map[string]string `yaml:"headers"`
	// HeaderSecrets are request headers whose values come from the vault,
	// by secret name (e.g. Authorization: github/token-header). The
	// downstream caller's token is never forwarded.
	HeaderSecrets map[string]string `yaml:"header_secrets"`
	// AllowPrivate lists the internal addresses (or prefixes) the
	// upstream may be reached at (egress checks, as for connectors).
	AllowPrivate []string `yaml:"allow_private"`
	// Command, Args and Env start a stdio upstream. Env adds KEY=VALUE
	// pairs to a minimal environment (PATH and HOME are kept).
	Command string   `yaml:"command"`
	Args    []string `yaml:"args"`
	Env     []string `yaml:"env"`
	// TargetArgument names the tool argument whose string value becomes
	// the action's target (e.g. "path"); empty leaves targets empty.
	TargetArgument string `yaml:"target_argument"`
}

// Config is the proxy's configuration file.
type Config struct {
	Upstreams []Upstream `yaml:"upstreams"`
}

var upstreamName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,63}$`)

// LoadConfig reads and checks a configuration file.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mcp: config: %w", err)
	}
	return ParseConfig(data, path)
}

// ParseConfig parses and checks a configuration; unknown keys, duplicate
// upstream names, and upstreams with both or neither of url and command
// are errors.
func ParseConfig(data []byte, filename string) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var c Config
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("mcp: config %s: %w", filename, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("mcp: config %s: more than one YAML document", filename)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mcp: config %s: %w", filename, err)
	}
	return &c, nil
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Upstreams) == 0 {
		return errors.New("no upstreams")
	}
	seen := map[string]bool{}
	for i, u := range c.Upstreams {
		where := fmt.Sprintf("upstreams[%d]", i)
		if !upstreamName.MatchString(u.Name) {
			return fmt.Errorf("%s: name %q: want lower-case letters, digits, '-' and '_' (at most 64)", where, u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("%s: name %q used twice", where, u.Name)
		}
		seen[u.Name] = true
		switch {
		case (u.URL == "") == (u.Command == ""):
			return fmt.Errorf("%s (%s): give exactly one of url and command", where, u.Name)
		case u.URL != "":
			pu, err := url.Parse(u.URL)
			if err != nil || (pu.Scheme != "http" && pu.Scheme != "https") || pu.Host == "" || pu.User != nil {
				return fmt.Errorf("%s (%s): url: want an http or https URL without credentials", where, u.Name)
			}
		}
		if _, err := egress.ParseAllow(u.AllowPrivate); err != nil {
			return fmt.Errorf("%s (%s): allow_private: %w", where, u.Name, err)
		}
	}
	return nil
}
