// Package server wires the OARS packages into the oarsd reference server:
// data directory, signing key, store, ledger, policies, Guard, tokens and
// the HTTP API, with TLS and graceful shutdown.
//
// # Approvals
//
// The server keeps the input of every action held for approval in its
// store ([InputStore]), enrolls and verifies approvers' TOTP codes
// (sealed under config.StepUpKey), notifies the configured webhook, and
// records expiries with the Guard's sweeper every config.SweepInterval.
// Tools registered with [WithExecutor] are executed by the server: an
// allowed action before POST /v1/actions answers, an approved one by a
// background worker right after the approving vote. At start, before
// serving, the server records what happened while it was stopped
// (expired requests, votes that reached a quorum) and queues the approved
// actions nobody executed; every few sweep intervals it does so again, and
// marks executions older than config.ExecutionLease that never finished
// as failed (interrupted). The Guard's claim (an executing receipt, one
// per action) makes each execution happen at most once across restarts
// and replicas.
//
// # Passports
//
// Agent passports live in the store and are read through a cache
// (30-second TTL) that the Guard checks before policy and the
// /v1/passports routes write through. With PostgreSQL, a goroutine owned
// by Serve follows the store's passport notifications, so that a
// suspension made through any replica applies in every replica as soon as
// it commits.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	_ "embed" // the demo policy
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/approval/webhook"
	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/fsutil"
	"github.com/oarsdev/oars/internal/httpapi"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/mcp"
	"github.com/oarsdev/oars/policy"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/postgres"
	"github.com/oarsdev/oars/storage/sqlite"
)

// DemoPolicy is the policy a development server uses when none is
// configured: it exercises allow, deny and require_approval.
//
//go:embed demo-policy.yaml
var DemoPolicy []byte

// Files in the data directory.
const (
	DBFile      = "oars.db"
	KeyFile     = "signing.key"
	JWKSFile    = "jwks.json"
	PoliciesDir = "policies"
)

// Version is reported by the server; set at build time with -ldflags.
var Version = "dev"

// store is what the server needs of a storage backend.
type store interface {
	ledger.Store
	io.Closer
	stepup.Store
	InputStore
	identity.PassportStore
	vault.Store
	queue.Store
}

var (
	_ store = (*sqlite.Store)(nil)
	_ store = (*postgres.Store)(nil)
)

// Server is a configured oarsd. Create it with [New], run it with
// [Server.Serve], and it closes its store when Serve returns.
type Server struct {
	cfg      *config.Config
	log      *slog.Logger
	store    store
	guard    *oars.Guard
	ledger   *ledger.Ledger
	keys     *receipt.KeySet
	handler  http.Handler
	tls      *tls.Config
	exec     *executor
	notifier *webhook.Notifier
	pass     *passports
	mcp      *mcp.Proxy
	// mcpStop is closed when shutdown starts (see newMCP).
	mcpStop chan struct{}
}

// New builds a server from cfg and opts: it creates the data directory
// (0700), loads or (in development) generates the signing key and the
// step-up key (0600), opens the store, loads the policies, records the
// policy set in the ledger, and builds the HTTP API. It fails, naming what
// to fix, when anything is missing or an option is invalid.
func New(ctx context.Context, cfg *config.Config, log *slog.Logger, opts ...Option) (_ *Server, err error) {
	o := options{clock: time.Now}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	s := &Server{cfg: cfg, log: log}
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("server: data dir: %w", err)
		}
		if info, err := os.Stat(cfg.DataDir); err == nil && info.Mode().Perm()&0o077 != 0 {
			log.WarnContext(ctx, "data directory is accessible to other users", slog.String("data_dir", cfg.DataDir), slog.String("mode", info.Mode().Perm().String()))
		}
	}
	signer, err := loadSigner(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	if s.keys, err = loadKeySet(cfg, signer); err != nil {
		return nil, err
	}

	if cfg.PostgresURL != "" {
		s.store, err = postgres.Open(ctx, cfg.PostgresURL)
	} else {
		s.store, err = sqlite.Open(ctx, filepath.Join(cfg.DataDir, DBFile))
	}
	if err != nil {
		return nil, fmt.Errorf("server: store: %w", err)
	}
	defer func() {
		if err != nil {
			if s.mcp != nil {
				_ = s.mcp.Close()
			}
			s.store.Close()
		}
	}()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cpSigner, err := ledger.NewCheckpointSignerFrom(cfg.Origin, signer)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.ledger, err = ledger.New(ctx, s.store, ledger.WithCheckpointSigner(cpSigner), ledger.WithLogger(log), ledger.WithMetrics(reg)); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	vkey, err := ledger.VerifierKey(cfg.Origin, signer.Public())
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}

	policyPath, err := policyPath(cfg)
	if err != nil {
		return nil, err
	}
	set, err := LoadPolicies(policyPath)
	if err != nil {
		return nil, err
	}

	stepUpKey, err := loadStepUpKey(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	totp, err := newTOTP(s.store, stepUpKey, log, o.clock)
	mcpKey, kerr := mcpStateKey(stepUpKey)
	clear(stepUpKey)
	if err == nil && kerr != nil {
		err = fmt.Errorf("server: mcp state key: %w", kerr)
	}
	if err != nil {
		return nil, err
	}
	if s.pass, err = newPassports(s.store, o.clock); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	guardOpts := []oars.Option{oars.WithLogger(log), oars.WithMetrics(reg), oars.WithClock(o.clock), oars.WithPassports(s.pass.cache)}
	if s.notifier, err = newNotifier(cfg, log, reg, o.clock); err != nil {
		return nil, err
	}
	if s.notifier != nil {
		guardOpts = append(guardOpts, oars.WithNotifier(s.notifier))
	}
	// Daily caps of passport capabilities are counted in the ledger's
	// store, so replicas sharing it share the counters.
	if counters, ok := s.store.(identity.CounterStore); ok {
		guardOpts = append(guardOpts, oars.WithCounters(counters))
	}
	for id := range o.connectors {
		if _, dup := o.executors[id]; dup {
			return nil, fmt.Errorf("server: tool %q has both an executor and a connector", id)
		}
	}
	connectors, err := newConnectors(ctx, cfg, s.store, o.connectors, log)
	if err != nil {
		return nil, err
	}
	if connectors != nil {
		guardOpts = append(guardOpts, oars.WithConnectors(connectors))
	}
	if s.guard, err = oars.New(set, s.keys, s.ledger, guardOpts...); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.exec = newExecutor(s.guard, s.store, o.executors, cfg.ExecutionLease, log)
	if s.exec.worker, s.exec.jobs, err = s.newWorker(cfg, o.clock); err != nil {
		return nil, err
	}
	var enqueue func(ctx context.Context, actionID, tenantID string, input []byte) error
	if s.exec.worker != nil {
		enqueue = s.exec.worker.Enqueue
	}
	if err := s.guard.SetPolicies(ctx, set, "oarsd"); err != nil {
		return nil, fmt.Errorf("server: recording the policy set: %w", err)
	}

	var mcpHandler http.Handler
	if s.mcp, mcpHandler, err = s.newMCP(ctx, cfg, mcpKey); err != nil {
		return nil, err
	}
	clear(mcpKey)

	auth, err := authenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	s.handler, err = httpapi.New(httpapi.Config{
		Guard:         s.guard,
		Ledger:        s.ledger,
		Keys:          s.keys,
		Auth:          auth,
		Origin:        cfg.Origin,
		VerifierKey:   vkey,
		Logger:        log,
		Registry:      reg,
		MaxBodyBytes:  cfg.MaxBodyBytes,
		RateLimit:     cfg.RateLimit,
		RateBurst:     cfg.RateBurst,
		CORSOrigins:   cfg.CORSOrigins,
		PublicBaseURL: cfg.PublicBaseURL,
		Version:       Version,
		ReloadPolicies: func(ctx context.Context) (*policy.Set, error) {
			return LoadPolicies(policyPath)
		},
		Ready: func(ctx context.Context) error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			_, err := s.store.Size(ctx)
			return err
		},
		StepUp:      totp,
		Executors:   o.executors,
		Enqueue:     enqueue,
		ExecTimeout: cfg.ExecutionLease,
		Inputs:      s.store,
		Approved:    s.exec.enqueue,
		Clock:       o.clock,
		Passports:   s.pass.cache,
		MCP:         mcpHandler,
	})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	if s.tls, err = tlsConfig(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// Guard returns the server's Guard.
func (s *Server) Guard() *oars.Guard { return s.guard }

// Ledger returns the server's ledger.
func (s *Server) Ledger() *ledger.Ledger { return s.ledger }

// Keys returns the server's key set.
func (s *Server) Keys() *receipt.KeySet { return s.keys }

// Serve serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets in-flight requests finish (their receipts are appended
// before they answer) within the shutdown timeout, and closes the store.
//
// Before serving it recovers the approvals (see the package
// documentation); while serving it runs the expiry sweeper, the executor
// of approved actions and the webhook notifier. At shutdown, after the
// HTTP server, it stops them: an execution under way finishes (its
// context ends once the shutdown timeout has passed), queued ones wait
// for the next start, and queued notifications are delivered within the
// notifier's drain timeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.exec.recover(ctx)
	// Background work lives until shutdown, not until ctx ends: it stops
	// after the HTTP server, whose requests may still queue executions.
	work, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	execCtx, cancelExec := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelExec()
	var bg sync.WaitGroup
	bg.Go(func() {
		s.exec.run(work, execCtx, reconcileEvery*s.cfg.SweepInterval)
	})
	bg.Go(func() {
		_ = s.guard.RunSweeper(work, s.cfg.SweepInterval) // returns work's error
	})
	bg.Go(func() { s.pass.follow(work, s.log) })
	if w := s.exec.worker; w != nil {
		bg.Go(func() { _ = w.Run(work) }) // an attempt under way finishes
	}
	if s.notifier != nil {
		bg.Go(func() {
			if err := s.notifier.Run(work); err != nil {
				s.log.Warn("webhook notifications undelivered at shutdown", slog.Any("error", err))
			}
		})
	}

	srv := &http.Server{
		Handler:           s.handler,
		ReadTimeout:       s.cfg.ReadTimeout,
		ReadHeaderTimeout: min(s.cfg.ReadTimeout, 10*time.Second),
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         s.tls,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.mcpStop != nil {
		srv.RegisterOnShutdown(func() { close(s.mcpStop) })
	}
	mode := "production"
	if !s.cfg.Production() {
		mode = "development"
	}
	scheme := "http"
	if s.tls != nil {
		scheme = "https"
	}
	s.log.InfoContext(ctx, "oarsd listening",
		slog.String("addr", ln.Addr().String()), slog.String("scheme", scheme),
		slog.String("mode", mode), slog.String("data_dir", s.cfg.DataDir), slog.String("version", Version))
	if !s.cfg.Production() {
		s.log.InfoContext(ctx, "development mode: dev tokens dev_admin_token, dev_operator_token, dev_auditor_token are accepted; set OARS_ENV=production to refuse them")
	}

	errc := make(chan error, 1)
	go func() {
		if s.tls != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	var serveErr error
	var deadline time.Time // of the shutdown
	select {
	case serveErr = <-errc:
		deadline = time.Now().Add(s.cfg.ShutdownTimeout)
	case <-ctx.Done():
		s.log.Info("shutting down", slog.Duration("timeout", s.cfg.ShutdownTimeout))
		deadline = time.Now().Add(s.cfg.ShutdownTimeout)
		sctx, cancel := context.WithDeadline(context.Background(), deadline)
		serveErr = srv.Shutdown(sctx)
		cancel()
		<-errc
	}
	stopWork()
	// An execution under way may finish within the shutdown budget; then
	// its context ends.
	finished := make(chan struct{})
	go func() { bg.Wait(); close(finished) }()
	timer := time.NewTimer(max(time.Until(deadline), 0))
	select {
	case <-finished:
	case <-timer.C:
		cancelExec()
		<-finished
	}
	timer.Stop()
	if err := s.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return serveErr
}

// Close disconnects the MCP proxy's upstreams and closes the store.
// Serve calls it.
func (s *Server) Close() error {
	if s.mcp != nil {
		if err := s.mcp.Close(); err != nil {
			s.log.Warn("closing the MCP upstreams failed", slog.Any("error", err))
		}
	}
	if err := s.store.Close(); err != nil {
		return fmt.Errorf("server: close store: %w", err)
	}
	return nil
}

// loadSigner loads the signing key, generating it in development when it
// does not exist yet.
func loadSigner(ctx context.Context, cfg *config.Config, log *slog.Logger) (receipt.Signer, error) {
	path := cfg.SigningKey
	if path == "" {
		path = filepath.Join(cfg.DataDir, KeyFile)
	}
	signer, err := receipt.LoadSignerFile(path)
	if err == nil {
		return signer, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || cfg.Production() || cfg.SigningKey != "" {
		return nil, fmt.Errorf("server: signing key: %w", err)
	}
	generated, key, err := receipt.GenerateKey("")
	if err != nil {
		return nil, fmt.Errorf("server: signing key: %w", err)
	}
	kid := generated.KeyID()
	if err := receipt.WritePrivateKeyFile(path, kid, key); err != nil {
		return nil, fmt.Errorf("server: signing key: %w", err)
	}
	log.InfoContext(ctx, "generated a development signing key", slog.String("path", path), slog.String("kid", kid))
	return receipt.LoadSignerFile(path)
}

// loadKeySet builds the key set: the active signer plus every other key in
// the data directory's JWKS (retired keys stay valid for old receipts),
// and writes the JWKS back so offline verifiers find all keys.
func loadKeySet(cfg *config.Config, signer receipt.Signer) (*receipt.KeySet, error) {
	ks, err := receipt.NewKeySet(signer)
	if err != nil {
		return nil, fmt.Errorf("server: keys: %w", err)
	}
	if cfg.DataDir == "" {
		return ks, nil
	}
	path := filepath.Join(cfg.DataDir, JWKSFile)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("server: keys: %w", err)
	default:
		old, err := receipt.ParseJWKS(data)
		if err != nil {
			return nil, fmt.Errorf("server: keys: %s: %w", path, err)
		}
		for _, k := range old.Keys() {
			if k.KeyID == signer.KeyID() {
				continue
			}
			if err := ks.Add(k); err != nil {
				return nil, fmt.Errorf("server: keys: %w", err)
			}
		}
	}
	jwks, err := ks.MarshalJWKS()
	if err != nil {
		return nil, fmt.Errorf("server: keys: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, jwks, 0o644); err != nil {
		return nil, fmt.Errorf("server: keys: %w", err)
	}
	return ks, nil
}

// policyPath returns the configured policy path, writing the demo policy
// into the data directory in development when none is configured.
func policyPath(cfg *config.Config) (string, error) {
	if cfg.Policy != "" {
		return cfg.Policy, nil
	}
	dir := filepath.Join(cfg.DataDir, PoliciesDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("server: policies: %w", err)
	}
	demo := filepath.Join(dir, "demo.yaml")
	if _, err := os.Stat(demo); errors.Is(err, fs.ErrNotExist) {
		if err := fsutil.WriteFileAtomic(demo, DemoPolicy, 0o600); err != nil {
			return "", fmt.Errorf("server: policies: %w", err)
		}
	}
	return dir, nil
}

// LoadPolicies loads a policy file or every policy of a directory into a
// set.
func LoadPolicies(path string) (*policy.Set, error) {
	set, err := policy.Load(path)
	if err != nil {
		return nil, fmt.Errorf("server: policies: %w", err)
	}
	return set, nil
}

// tokenSet builds the API tokens: the configured ones, plus the dev tokens
// in development.
func tokenSet(cfg *config.Config) (*identity.TokenSet, error) {
	var tokens []identity.Token
	for _, t := range cfg.Tokens {
		roles := make([]identity.Role, len(t.Roles))
		for i, r := range t.Roles {
			roles[i] = identity.Role(r)
		}
		tokens = append(tokens, identity.Token{Name: t.Name, Hash: t.TokenSHA256, Roles: roles, Tenants: t.Tenants, AgentID: t.AgentID, Groups: t.Groups})
	}
	if !cfg.Production() {
		for _, d := range config.DevTokens {
			tokens = append(tokens, identity.Token{
				Name: d.Secret[:len(d.Secret)-len("_token")], Hash: identity.HashToken(d.Secret),
				Roles: []identity.Role{d.Role}, Tenants: []string{"*"},
			})
		}
	}
	ts, err := identity.NewTokenSet(tokens)
	if err != nil {
		return nil, fmt.Errorf("server: tokens: %w", err)
	}
	return ts, nil
}

// tlsConfig returns the TLS configuration, or nil for plain HTTP.
func tlsConfig(cfg *config.Config) (*tls.Config, error) {
	if cfg.TLSCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("server: tls: %w", err)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	if cfg.ClientCA != "" {
		pem, err := os.ReadFile(cfg.ClientCA)
		if err != nil {
			return nil, fmt.Errorf("server: client_ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server: client_ca: %s holds no PEM certificate", cfg.ClientCA)
		}
		tc.ClientCAs = pool
		// Clients may still authenticate with tokens; a certificate, when
		// presented, must chain to the configured CA.
		tc.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return tc, nil
}
