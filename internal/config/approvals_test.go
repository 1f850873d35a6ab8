package config

import (
	"encoding/base64"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestApprovalSettings(t *testing.T) {
	key := make([]byte, StepUpKeySize)
	for i := range key {
		key[i] = byte(i)
	}
	hexKey := hex.EncodeToString(key)
	secret := strings.Repeat("w", MinWebhookSecretLength)
	tests := []struct {
		name    string
		args    []string
		env     []string
		file    string
		wantErr string
		check   func(t *testing.T, c *Config)
	}{
		{"defaults", nil, nil, "", "", func(t *testing.T, c *Config) {
			assert.Equal(t, 10*time.Second, c.SweepInterval)
			assert.Equal(t, 5*time.Minute, c.ExecutionLease)
			assert.Empty(t, c.StepUpKey)
		}},
		{"key from env", nil, []string{"OARS_STEPUP_KEY=" + hexKey}, "", "", func(t *testing.T, c *Config) {
			got, err := DecodeStepUpKey(c.StepUpKey)
			require.NoError(t, err)
			assert.Equal(t, key, got)
		}},
		{"webhook from file and env", nil, []string{"OARS_WEBHOOK_SECRET=" + secret},
			"webhook_url: https://hooks.example.com/oars\nsweep_interval: 3s\nexecution_lease: 2m\n", "", func(t *testing.T, c *Config) {
				assert.Equal(t, "https://hooks.example.com/oars", c.WebhookURL)
				assert.Equal(t, secret, c.WebhookSecret)
				assert.Equal(t, 3*time.Second, c.SweepInterval)
				assert.Equal(t, 2*time.Minute, c.ExecutionLease)
			}},
		{"token groups", nil, nil, "tokens:\n  - {name: bob, token_sha256: sha256:00, roles: [approver], tenants: [acme], groups: [finance-approver]}\n", "", func(t *testing.T, c *Config) {
			require.Len(t, c.Tokens, 1)
			assert.Equal(t, []string{"finance-approver"}, c.Tokens[0].Groups)
		}},
		{"short key", nil, []string{"OARS_STEPUP_KEY=abcd"}, "", "stepup_key: want 32 bytes", nil},
		{"key not hex or base64", nil, []string{"OARS_STEPUP_KEY=" + strings.Repeat("z!", 32)}, "", "stepup_key: want 32 bytes", nil},
		{"webhook without secret", []string{"--webhook-url", "https://hooks.example.com"}, nil, "", "webhook_secret: required", nil},
		{"webhook secret too short", []string{"--webhook-url", "https://hooks.example.com"}, []string{"OARS_WEBHOOK_SECRET=short"}, "", "webhook_secret: required with webhook_url, at least 16", nil},
		{"secret without webhook", nil, []string{"OARS_WEBHOOK_SECRET=" + secret}, "", "webhook_secret: set only with webhook_url", nil},
		{"webhook not a URL", []string{"--webhook-url", "hooks.example.com"}, []string{"OARS_WEBHOOK_SECRET=" + secret}, "", "webhook_url: want an absolute", nil},
		{"zero sweep interval", []string{"--sweep-interval", "0s"}, nil, "", "sweep_interval: must be positive", nil},
		{"negative lease", []string{"--execution-lease", "-1m"}, nil, "", "execution_lease: must be positive", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := tt.args
			if tt.file != "" {
				args = append([]string{"--config", writeFile(t, "c.yaml", tt.file)}, args...)
			}
			cfg, err := Load(args, tt.env, io.Discard)
			if tt.wantErr != "" {
				require.Error(t, err, "Load(%s) = nil error, want %q", tt.name, tt.wantErr)
				assert.Contains(t, err.Error(), tt.wantErr)
				for _, kv := range tt.env {
					_, v, _ := strings.Cut(kv, "=")
					if len(v) > 8 {
						assert.NotContains(t, err.Error(), v, "the error quotes a secret")
					}
				}
				return
			}
			require.NoError(t, err)
			tt.check(t, cfg)
		})
	}
}

func TestDecodeStepUpKey(t *testing.T) {
	key := make([]byte, StepUpKeySize)
	for i := range key {
		key[i] = byte(255 - i)
	}
	for _, tt := range []struct {
		name, in string
		ok       bool
	}{
		{"hex", hex.EncodeToString(key), true},
		{"upper hex", strings.ToUpper(hex.EncodeToString(key)), true},
		{"base64", base64.StdEncoding.EncodeToString(key), true},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key), true},
		{"surrounding space", " " + hex.EncodeToString(key) + "\n", true},
		{"31 bytes", base64.StdEncoding.EncodeToString(key[:31]), false},
		{"33 bytes hex", hex.EncodeToString(append(key, 0)), false},
		{"empty", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeStepUpKey(tt.in)
			if !tt.ok {
				require.Error(t, err, "DecodeStepUpKey(%q)", tt.in)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, key, got, "DecodeStepUpKey(%q)", tt.in)
		})
	}
}

// FuzzDecodeStepUpKey: any string decodes to exactly StepUpKeySize bytes
// or fails, and the error never quotes the input.
func FuzzDecodeStepUpKey(f *testing.F) {
	for _, seed := range []string{strings.Repeat("ab", 32), base64.StdEncoding.EncodeToString(make([]byte, 32)), "", "zz", strings.Repeat("=", 44)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := DecodeStepUpKey(s)
		if err != nil {
			if len(s) > 4 && strings.Contains(err.Error(), s) {
				t.Fatalf("DecodeStepUpKey error quotes its input: %v", err)
			}
			return
		}
		if len(key) != StepUpKeySize {
			t.Fatalf("DecodeStepUpKey(%q) = %d bytes, want %d", s, len(key), StepUpKeySize)
		}
	})
}
