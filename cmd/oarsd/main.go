// Command oarsd is the OARS reference server: it serves the HTTP API of
// the oars library over a SQLite (default) or PostgreSQL ledger.
//
// With no flags it starts a development server on :8080 with its data
// (ledger, signing key, demo policy) under ./oars-data and the dev tokens
// dev_admin_token, dev_operator_token and dev_auditor_token:
//
//	go run ./cmd/oarsd
//
// Every flag can also be set as an OARS_* environment variable (--data-dir
// is OARS_DATA_DIR) or in a YAML file given with --config; flags win over
// the environment, which wins over the file. OARS_ENV=production refuses
// dev tokens, generated keys and other insecure defaults. Run
// 'oarsd -h' for the flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Environ(), os.Stderr); err != nil {
		if errors.Is(err, config.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "oarsd:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args, environ []string, stderr io.Writer) error {
	cfg, err := config.Load(args, environ, stderr)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
	srv, err := server.New(ctx, cfg, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		srv.Close()
		return fmt.Errorf("listen: %w", err)
	}
	return srv.Serve(ctx, ln)
}

func newLogger(cfg *config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
