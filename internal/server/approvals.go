package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/approval/webhook"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/connector/queue"
	"github.com/oarsdev/oars/internal/config"
	"github.com/oarsdev/oars/internal/fsutil"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// StepUpKeyFile is the file in the data directory that holds the
// development step-up key (64 hex digits) when none is configured.
const StepUpKeyFile = "stepup.key"

// InputStore keeps the canonical input of actions held for approval, so
// that the server can execute them once approved: receipts hold only the
// input's digest. The SQLite and PostgreSQL stores implement it; the Guard
// verifies the digest before executing, so a tampered input is refused.
type InputStore interface {
	// PutInput stores input for action actionID of tenant tenantID; it is
	// idempotent (the first input stored is kept) and durable when it
	// returns nil.
	PutInput(ctx context.Context, actionID, tenantID string, input []byte) error
	// GetInput returns the input stored for actionID, or an error
	// wrapping ledger.ErrNotFound.
	GetInput(ctx context.Context, actionID string) ([]byte, error)
}

// Option configures a [Server] beyond its config. A bad option makes
// [New] fail.
type Option func(*options) error

type options struct {
	executors  map[string]oars.ExecFunc
	connectors map[string]connector.Connector
	clock      func() time.Time
}

// WithExecutor makes the server execute the actions of tool toolID itself
// with fn: an allowed action before POST /v1/actions answers, an approved
// one in the background right after the approving vote (and, after a
// crash, at the next start). fn must honour its context, which ends after
// config.ExecutionLease (and at shutdown, once the shutdown timeout has
// passed). Registering a tool twice is an error.
func WithExecutor(toolID string, fn oars.ExecFunc) Option {
	return func(o *options) error {
		if toolID == "" || fn == nil {
			return errors.New("server: WithExecutor: empty tool id or nil function")
		}
		if _, dup := o.executors[toolID]; dup {
			return fmt.Errorf("server: WithExecutor: tool %q registered twice", toolID)
		}
		if o.executors == nil {
			o.executors = map[string]oars.ExecFunc{}
		}
		o.executors[toolID] = fn
		return nil
	}
}

// WithClock sets the clock of the Guard (issue times, approval expiry)
// and of step-up; the default is time.Now. For tests.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("server: WithClock: nil clock")
		}
		o.clock = now
		return nil
	}
}

// loadStepUpKey returns the key sealing TOTP secrets: the configured one,
// or in development the data directory's stepup.key, generated (0600) on
// first start.
func loadStepUpKey(ctx context.Context, cfg *config.Config, log *slog.Logger) ([]byte, error) {
	if cfg.StepUpKey != "" {
		key, err := config.DecodeStepUpKey(cfg.StepUpKey)
		if err != nil {
			return nil, fmt.Errorf("server: stepup_key: %w", err)
		}
		return key, nil
	}
	if cfg.Production() || cfg.DataDir == "" {
		return nil, errors.New("server: stepup_key: required (set OARS_STEPUP_KEY)")
	}
	path := filepath.Join(cfg.DataDir, StepUpKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		key, err := config.DecodeStepUpKey(string(data))
		if err != nil {
			return nil, fmt.Errorf("server: %s: %w", path, err)
		}
		return key, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("server: stepup key: %w", err)
	}
	key := make([]byte, config.StepUpKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("server: stepup key: %w", err)
	}
	if err := fsutil.WriteFileAtomic(path, []byte(hex.EncodeToString(key)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("server: stepup key: %w", err)
	}
	log.InfoContext(ctx, "generated a development step-up key", slog.String("path", path))
	return key, nil
}

// newNotifier returns the webhook notifier of cfg, or nil when no webhook
// is configured.
func newNotifier(cfg *config.Config, log *slog.Logger, reg prometheus.Registerer, clock func() time.Time) (*webhook.Notifier, error) {
	if cfg.WebhookURL == "" {
		return nil, nil
	}
	n, err := webhook.New(cfg.WebhookURL, []byte(cfg.WebhookSecret), apiBase(cfg),
		webhook.WithLogger(log), webhook.WithMetrics(reg), webhook.WithClock(clock))
	if err != nil {
		return nil, fmt.Errorf("server: webhook: %w", err)
	}
	return n, nil
}

// apiBase is the base URL of the API that notifications link to: the
// public base URL, or http://localhost with the listen port.
func apiBase(cfg *config.Config) string {
	if cfg.PublicBaseURL != "" {
		return cfg.PublicBaseURL
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return "http://localhost"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// newTOTP returns the step-up verifier over the store's enrollments.
func newTOTP(st stepup.Store, key []byte, log *slog.Logger, clock func() time.Time) (*stepup.TOTP, error) {
	t, err := stepup.New(st, key, stepup.WithLogger(log), stepup.WithClock(clock))
	if err != nil {
		return nil, fmt.Errorf("server: step-up: %w", err)
	}
	return t, nil
}

// Bounds of the executor.
const (
	// reconcileEvery: the executor looks for approved actions left
	// unexecuted (by a replica that crashed) and interrupted executions
	// every this many sweep intervals.
	reconcileEvery = 6
	// maxSkipped bounds the set of approved actions this server cannot
	// execute (no executor for the tool, or no stored input).
	maxSkipped = 10000
)

// executor executes approved actions in the background, one at a time,
// exactly once across replicas thanks to the Guard's claim. Its goroutine
// is owned by the Server: Serve starts it and waits for it at shutdown.
type executor struct {
	guard  *oars.Guard
	inputs InputStore
	execs  map[string]oars.ExecFunc
	log    *slog.Logger
	lease  time.Duration

	// worker, when set, runs the executions of tools served by
	// connectors through the durable queue (config execution: queued).
	worker *queue.Worker
	jobs   queue.Store

	mu      sync.Mutex
	queue   []string
	queued  map[string]bool
	skipped map[string]bool
	wake    chan struct{}
}

func newExecutor(g *oars.Guard, inputs InputStore, execs map[string]oars.ExecFunc, lease time.Duration, log *slog.Logger) *executor {
	return &executor{
		guard: g, inputs: inputs, execs: execs, lease: lease, log: log,
		queued: map[string]bool{}, skipped: map[string]bool{}, wake: make(chan struct{}, 1),
	}
}

// enqueue asks for action id to be executed. It never blocks; the queue
// holds each action once.
func (e *executor) enqueue(id string) {
	e.mu.Lock()
	if !e.queued[id] && !e.skipped[id] {
		e.queued[id] = true
		e.queue = append(e.queue, id)
	}
	e.mu.Unlock()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// next takes the next queued action id.
func (e *executor) next() (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.queue) == 0 {
		return "", false
	}
	id := e.queue[0]
	e.queue = slices.Delete(e.queue, 0, 1)
	delete(e.queued, id)
	return id, true
}

// queuedJobs returns the skip function of RecoverInterruptedExcept: the
// actions with a queued job, which the queue delivers again. Nil without
// a queue, or (logged) when the jobs cannot be listed: then nothing is
// marked interrupted this round rather than a queued action wrongly.
func (e *executor) queuedJobs(ctx context.Context) func(string) bool {
	if e.jobs == nil {
		return nil
	}
	jobs, err := e.jobs.ListJobs(ctx, queue.StateQueued, 1<<20)
	if err != nil {
		e.log.ErrorContext(ctx, "listing queued jobs failed", slog.Any("error", err))
		return func(string) bool { return true }
	}
	ids := make(map[string]bool, len(jobs))
	for _, j := range jobs {
		ids[j.ActionID] = true
	}
	return func(id string) bool { return ids[id] }
}

// skip remembers that action id cannot be executed by this server.
func (e *executor) skip(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.skipped) >= maxSkipped {
		clear(e.skipped)
	}
	e.skipped[id] = true
}

// recover is the start-up recovery: it loads the pending approvals and
// records what time and votes decided while the server was down
// (expired, approved, rejected), marks executions interrupted by a crash
// as failed once the lease has passed, and queues the approved actions
// nobody executed.
func (e *executor) recover(ctx context.Context) {
	if _, err := e.guard.LoadPending(ctx); err != nil {
		e.log.ErrorContext(ctx, "loading pending approvals failed", slog.Any("error", err))
	}
	if n, err := e.guard.SweepExpired(ctx); err != nil {
		e.log.ErrorContext(ctx, "sweeping expired approvals failed", slog.Any("error", err))
	} else if n > 0 {
		e.log.InfoContext(ctx, "approvals expired while the server was stopped", slog.Int("expired", n))
	}
	e.reconcile(ctx)
}

// reconcile marks interrupted executions failed and queues approved
// actions left unexecuted.
func (e *executor) reconcile(ctx context.Context) {
	if n, err := e.guard.RecoverInterruptedExcept(ctx, e.lease, e.queuedJobs(ctx)); err != nil {
		e.log.ErrorContext(ctx, "recovering interrupted executions failed", slog.Any("error", err))
	} else if n > 0 {
		e.log.WarnContext(ctx, "executions interrupted by a crash marked failed", slog.Int("actions", n))
	}
	if len(e.execs) == 0 && e.guard.Connectors() == nil {
		return
	}
	ids, err := e.guard.ApprovedUnexecuted(ctx)
	if err != nil {
		e.log.ErrorContext(ctx, "listing approved actions failed", slog.Any("error", err))
		return
	}
	for _, id := range ids {
		e.enqueue(id)
	}
}

// run executes queued actions until stop ends, and reconciles every
// reconcile interval. An execution under way when stop ends finishes
// (its context is execCtx, bounded by the lease); queued ones wait for
// the next start. run returns once nothing is executing.
func (e *executor) run(stop, execCtx context.Context, reconcile time.Duration) {
	ticker := time.NewTicker(reconcile)
	defer ticker.Stop()
	for {
		for stop.Err() == nil {
			id, ok := e.next()
			if !ok {
				break
			}
			e.execute(execCtx, id)
		}
		select {
		case <-stop.Done():
			return
		case <-e.wake:
		case <-ticker.C:
			e.reconcile(stop)
		}
	}
}

// execute runs the approved action id once with its tool's executor, on
// the input stored when it was held. Everything that stops it is logged.
func (e *executor) execute(ctx context.Context, id string) {
	log := e.log.With(slog.String("action_id", id))
	st, err := e.guard.Approval(ctx, id)
	if err != nil {
		log.ErrorContext(ctx, "reading an approved action failed", slog.Any("error", err))
		return
	}
	exec := e.execs[st.Resource.ToolID]
	if exec == nil && !e.guard.Connectors().Serves(st.Resource.ToolID) {
		log.DebugContext(ctx, "approved action not executed here: no executor for its tool", slog.String("tool_id", st.Resource.ToolID))
		e.skip(id)
		return
	}
	if exec == nil && e.worker != nil {
		// Its input was stored when it was held; the queue takes it.
		if err := e.worker.EnqueueStored(ctx, id, st.TenantID); err != nil {
			log.ErrorContext(ctx, "queueing an approved action failed", slog.Any("error", err))
		}
		return
	}
	input, err := e.inputs.GetInput(ctx, id)
	switch {
	case errors.Is(err, ledger.ErrNotFound):
		log.WarnContext(ctx, "approved action not executed here: its input was not stored (submitted through the library, or the server stopped before storing it)")
		e.skip(id)
		return
	case err != nil:
		log.ErrorContext(ctx, "reading the input of an approved action failed", slog.Any("error", err))
		return
	}
	a := &oars.Action{
		ID:        id,
		TenantID:  st.TenantID,
		AgentID:   st.AgentID,
		Principal: oars.Principal{UserID: st.RequesterUserID, Delegation: st.Delegation},
		Resource:  st.Resource,
		Input:     input,
	}
	ectx, cancel := context.WithTimeout(ctx, e.lease)
	defer cancel()
	out, err := e.guard.Execute(ectx, id, a, exec) // a nil exec runs the connector
	switch {
	case err == nil:
		log.InfoContext(ctx, "approved action executed")
	case errors.Is(err, oars.ErrAlreadyClaimed), errors.Is(err, oars.ErrNotApproved):
		log.DebugContext(ctx, "approved action not executed: already claimed or no longer approved", slog.Any("error", err))
	case errors.Is(err, oars.ErrApprovalMismatch):
		log.ErrorContext(ctx, "approved action not executed: the stored input is not the approved one")
		e.skip(id)
	case out != nil && out.Status == receipt.StatusFailed:
		log.WarnContext(ctx, "approved action failed", slog.String("error_class", oars.ErrorClass(err)))
	default:
		log.ErrorContext(ctx, "executing an approved action failed", slog.Any("error", err))
	}
}
