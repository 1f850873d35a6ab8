package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/httpconn"
	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/fsutil"
)

// VaultKeyFile is the file in the data directory that holds the
// development vault key ("id:base64") when none is configured.
const VaultKeyFile = "vault.key"

// WithConnector makes the server execute the actions of tool toolID with
// c (a connector.Func wrapping the host's own functions, say), like the
// tools of the connectors file: actions on it are checked against its
// operations and input schemas before policy. Registering a tool twice,
// or a tool the connectors file also configures, is an error.
func WithConnector(toolID string, c connector.Connector) Option {
	return func(o *options) error {
		if toolID == "" || c == nil {
			return errors.New("server: WithConnector: empty tool id or nil connector")
		}
		if _, dup := o.connectors[toolID]; dup {
			return fmt.Errorf("server: WithConnector: tool %q registered twice", toolID)
		}
		if o.connectors == nil {
			o.connectors = map[string]connector.Connector{}
		}
		o.connectors[toolID] = c
		return nil
	}
}

// newConnectors returns the registry of the connectors file and the
// WithConnector options, limited to cfg.AllowedTools, or nil when there
// are none. The HTTP connectors read their credentials from the vault
// kept in st.
func newConnectors(ctx context.Context, cfg *config.Config, st store, extra map[string]connector.Connector, log *slog.Logger) (*connector.Registry, error) {
	if cfg.Connectors == "" && len(extra) == 0 {
		if len(cfg.AllowedTools) > 0 {
			return nil, errors.New("server: allowed_tools: no connectors are configured")
		}
		return nil, nil
	}
	reg := connector.NewRegistry()
	for id, c := range extra {
		if err := reg.Register(id, c); err != nil {
			return nil, fmt.Errorf("server: connector %q: %w", id, err)
		}
	}
	if cfg.Connectors != "" {
		hc, err := httpconn.Load(cfg.Connectors)
		if err != nil {
			return nil, fmt.Errorf("server: connectors: %w", err)
		}
		v, err := openVault(ctx, cfg, st, log)
		if err != nil {
			return nil, err
		}
		if err := httpconn.Register(reg, hc, v, httpconn.WithLogger(log)); err != nil {
			return nil, fmt.Errorf("server: connectors: %w", err)
		}
	}
	if len(cfg.AllowedTools) > 0 {
		served := reg.Tools()
		for _, id := range cfg.AllowedTools {
			if !slices.Contains(served, id) {
				return nil, fmt.Errorf("server: allowed_tools: %q is not a configured tool", id)
			}
		}
		reg.Allow(cfg.AllowedTools)
	}
	log.InfoContext(ctx, "connectors loaded", slog.String("tools", strings.Join(reg.Tools(), ",")), slog.String("execution", cfg.Execution))
	return reg, nil
}

// openVault returns the vault over the store with the configured keys,
// or in development the data directory's vault.key, generated (0600) on
// first start.
func openVault(ctx context.Context, cfg *config.Config, st store, log *slog.Logger) (*vault.Vault, error) {
	keys, err := vaultKeys(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	v, err := vault.New(st, keys, vault.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("server: vault: %w", err)
	}
	return v, nil
}

func vaultKeys(ctx context.Context, cfg *config.Config, log *slog.Logger) (*vault.Keyring, error) {
	if cfg.VaultKeys != "" {
		keys, err := vault.ParseKeys(cfg.VaultKeys)
		if err != nil {
			return nil, fmt.Errorf("server: vault_keys: %w", err)
		}
		return keys, nil
	}
	if cfg.Production() || cfg.DataDir == "" {
		return nil, errors.New("server: vault_keys: required (set OARS_VAULT_KEYS)")
	}
	path := filepath.Join(cfg.DataDir, VaultKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		keys, err := vault.ParseKeys(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", path, err)
		}
		return keys, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("server: vault key: %w", err)
	}
	key, err := vault.GenerateKey("dev")
	if err != nil {
		return nil, fmt.Errorf("server: vault key: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(key.String()+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("server: vault key: %w", err)
	}
	keys, err := vault.NewKeyring(key)
	if err != nil {
		return nil, fmt.Errorf("server: vault key: %w", err)
	}
	log.InfoContext(ctx, "generated a development vault key", slog.String("path", path))
	return keys, nil
}

// newWorker returns the queue worker of execution: queued, or nil.
func (s *Server) newWorker(cfg *config.Config, clock func() time.Time) (*queue.Worker, queue.Store, error) {
	if cfg.Execution != config.ExecutionQueued || s.guard.Connectors() == nil {
		return nil, nil, nil
	}
	w, err := queue.NewWorker(s.guard, s.store, s.store, queue.Config{
		Lease: cfg.ExecutionLease, MaxAttempts: cfg.QueueMaxAttempts, Clock: clock, Logger: s.log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("server: %w", err)
	}
	return w, s.store, nil
}
