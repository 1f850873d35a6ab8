package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/identity"
)

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

func TestDefaultsAreAWorkingDevServer(t *testing.T) {
	cfg, err := Load(nil, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":8080", cfg.Addr)
	assert.Equal(t, "oars-data", cfg.DataDir)
	assert.False(t, cfg.Production())
	assert.Equal(t, int64(1<<20), cfg.MaxBodyBytes)
}

func TestPrecedenceFlagsEnvFile(t *testing.T) {
	file := writeFile(t, "oarsd.yaml", "addr: \":7001\"\ndata_dir: from-file\nlog_format: json\nrate_limit: 5\n")
	cfg, err := Load(
		[]string{"--config", file, "--addr", ":7003"},
		[]string{"OARS_ADDR=:7002", "OARS_DATA_DIR=from-env", "PATH=/bin"},
		io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":7003", cfg.Addr, "flag wins")
	assert.Equal(t, "from-env", cfg.DataDir, "env beats file")
	assert.Equal(t, "json", cfg.LogFormat, "file beats default")
	assert.Equal(t, 5.0, cfg.RateLimit)
	assert.Equal(t, file, cfg.ConfigFile)

	// OARS_CONFIG names the file too.
	cfg, err = Load(nil, []string{"OARS_CONFIG=" + file}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ":7001", cfg.Addr)
}

func TestTypedValues(t *testing.T) {
	cfg, err := Load([]string{"--read-timeout", "3s", "--max-body-bytes", "2048", "--cors-origins", "https://a.example, https://b.example", "--tls-terminated-upstream", "true"}, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, 3*time.Second, cfg.ReadTimeout)
	assert.Equal(t, int64(2048), cfg.MaxBodyBytes)
	assert.Equal(t, []string{"https://a.example", "https://b.example"}, cfg.CORSOrigins)
	assert.True(t, cfg.TLSTerminatedUpstream)
}

func TestConnectorSettings(t *testing.T) {
	keys := "k1:" + strings.Repeat("A", 43) + "="
	cfg, err := Load([]string{"--connectors", "tools.yaml", "--execution", "queued"},
		[]string{"OARS_ALLOWED_TOOLS=tracker,crm", "OARS_VAULT_KEYS=" + keys, "OARS_QUEUE_MAX_ATTEMPTS=7"}, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, "tools.yaml", cfg.Connectors)
	assert.Equal(t, []string{"tracker", "crm"}, cfg.AllowedTools)
	assert.Equal(t, keys, cfg.VaultKeys)
	assert.Equal(t, ExecutionQueued, cfg.Execution)
	assert.Equal(t, 7, cfg.QueueMaxAttempts)
	def, err := Load(nil, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, ExecutionSync, def.Execution, "synchronous execution is the default")
}

func TestErrorsNameTheKey(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		wantErr string
	}{
		{"unknown file key", nil, nil, "adress: \":1\"\n", "line 1: unknown key \"adress\""},
		{"duplicate file key", nil, nil, "addr: \":1\"\naddr: \":2\"\n", "duplicate key"},
		{"unknown token key", nil, nil, "tokens:\n  - {name: a, tokn: x}\n", "tokens: line 1: field tokn not found"},
		{"wrong type in file", nil, nil, "rate_limit: fast\n", "rate_limit"},
		{"two documents", nil, nil, "addr: \":1\"\n---\naddr: \":2\"\n", "more than one YAML document"},
		{"unknown env", nil, []string{"OARS_ADRESS=x"}, "", "unknown environment variable OARS_ADRESS"},
		{"bad env duration", nil, []string{"OARS_READ_TIMEOUT=soon"}, "", "OARS_READ_TIMEOUT: want a duration"},
		{"bad flag int", []string{"--max-body-bytes", "big"}, nil, "", "--max-body-bytes: want an integer"},
		{"unknown flag", []string{"--nope"}, nil, "", "flag provided but not defined"},
		{"bad env name", nil, []string{"OARS_ENV=staging"}, "", "env: want development or production"},
		{"bad addr", []string{"--addr", "8080"}, nil, "", "addr"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "", "log_format"},
		{"tls half", []string{"--tls-cert", "c.pem"}, nil, "", "tls_cert and tls_key"},
		{"client ca without tls", []string{"--client-ca", "ca.pem"}, nil, "", "client_ca"},
		{"cors star", []string{"--cors-origins", "*"}, nil, "", "cors_origins"},
		{"http base url", []string{"--public-base-url", "http://x.example"}, nil, "", "public_base_url"},
		{"huge body", []string{"--max-body-bytes", "999999999999"}, nil, "", "max_body_bytes"},
		{"token without name", nil, nil, "tokens:\n  - token_sha256: sha256:00\n    roles: [admin]\n    tenants: [\"*\"]\n", "tokens[0]: name"},
		{"token and hash", nil, nil, "tokens:\n  - {name: a, token: s, token_sha256: sha256:00, roles: [admin], tenants: [x]}\n", "not both"},
		{"extra argument", []string{"serve"}, nil, "", "unexpected argument"},
		{"bad execution", []string{"--execution", "later"}, nil, "", "execution: want"},
		{"zero attempts", []string{"--queue-max-attempts", "0"}, nil, "", "queue_max_attempts"},
		{"bad vault keys", nil, []string{"OARS_VAULT_KEYS=k1:c2VjcmV0"}, "", "vault_keys"},
		{"vault keys needed in production", []string{"--env", "production", "--connectors", "tools.yaml"}, nil, "", "vault_keys: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, "c.yaml", tt.file)}, args...)
			}
			_, err := Load(args, tt.env, io.Discard)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestPlainTokensAreHashedInTheFile(t *testing.T) {
	file := writeFile(t, "oarsd.yaml", `# production-ish config
addr: ":9000"
tokens:
  # the CI bot
  - name: ci
    token: s3cret-token-value
    roles: [operator]
    tenants: [acme]
`)
	cfg, err := Load([]string{"--config", file}, nil, io.Discard)
	require.NoError(t, err)
	require.Len(t, cfg.Tokens, 1)
	assert.Empty(t, cfg.Tokens[0].Token)
	assert.Equal(t, identity.HashToken("s3cret-token-value"), cfg.Tokens[0].TokenSHA256)

	data, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.NotContains(t, string(data), "s3cret-token-value", "the secret is gone from the file")
	assert.Contains(t, string(data), "token_sha256: "+identity.HashToken("s3cret-token-value"))
	assert.Contains(t, string(data), "# the CI bot", "comments survive")
	info, err := os.Stat(file)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm())

	// Loading again reads the hash and changes nothing.
	cfg2, err := Load([]string{"--config", file}, nil, io.Discard)
	require.NoError(t, err)
	assert.Equal(t, cfg.Tokens, cfg2.Tokens)
	again, err := os.ReadFile(file)
	require.NoError(t, err)
	assert.Equal(t, data, again)
}

func TestProductionRefusesInsecureDefaults(t *testing.T) {
	key := writeFile(t, "signing.key", "{}")
	policy := writeFile(t, "p.yaml", "id: p\n")
	good := "tokens:\n  - {name: ci, token_sha256: \"" + identity.HashToken("real-secret") + "\", roles: [admin], tenants: [\"*\"]}\n"
	dev := "tokens:\n  - {name: dev, token_sha256: \"" + identity.HashToken("dev_admin_token") + "\", roles: [admin], tenants: [\"*\"]}\n"
	stepUpKey := strings.Repeat("ab", 32)
	base := []string{"--env", "production", "--signing-key", key, "--policy", policy, "--tls-terminated-upstream", "true", "--stepup-key", stepUpKey}
	tests := []struct {
		name    string
		args    []string
		file    string
		wantErr string
	}{
		{"ok", base, good, ""},
		{"no key", []string{"--env", "production", "--policy", policy, "--tls-terminated-upstream", "true"}, good, "signing_key: set the path"},
		{"missing key file", append(append([]string{}, base...), "--signing-key", filepath.Join(t.TempDir(), "nope")), good, "signing_key"},
		{"no policy", []string{"--env", "production", "--signing-key", key, "--tls-terminated-upstream", "true"}, good, "policy: set a policy"},
		{"no tokens", base, "addr: \":8080\"\n", "tokens: configure at least one"},
		{"dev token", base, dev, "dev token \"dev_admin_token\" is refused"},
		{"no tls", []string{"--env", "production", "--signing-key", key, "--policy", policy}, good, "tls_cert and tls_key: set them"},
		{"no stepup key", []string{"--env", "production", "--signing-key", key, "--policy", policy, "--tls-terminated-upstream", "true"}, good, "stepup_key: set OARS_STEPUP_KEY"},
		{"plain http webhook", append(append([]string{}, base...), "--webhook-url", "http://hooks.example.com/x", "--webhook-secret", strings.Repeat("s", 16)), good, "webhook_url: must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"--config", writeFile(t, "c.yaml", tt.file)}, tt.args...)
			cfg, err := Load(args, nil, io.Discard)
			if tt.wantErr == "" {
				require.NoError(t, err)
				assert.True(t, cfg.Production())
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.True(t, strings.HasPrefix(err.Error(), "config: "))
		})
	}
}
