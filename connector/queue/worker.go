package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/connector"
	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/receipt"
)

// Inputs keeps the canonical inputs of queued actions (receipts record only
// their digests). The SQLite and PostgreSQL stores implement it.
type Inputs interface {
	// PutInput stores the input of an action; idempotent.
	PutInput(ctx context.Context, actionID, tenantID string, input []byte) error
	// GetInput returns it, or an error wrapping ledger.ErrNotFound.
	GetInput(ctx context.Context, actionID string) ([]byte, error)
}

// Config bounds a [Worker]. Zero fields take their defaults.
type Config struct {
	// Lease is how long a claimed job belongs to its worker; an attempt
	// is cancelled at 90% of it, so the lease never runs out under a
	// live attempt. Default 1 minute.
	Lease time.Duration
	// MaxAttempts is the number of attempts before an action whose
	// attempts keep failing retryably is dead-lettered. Default 5.
	MaxAttempts int
	// InitialBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) between attempts. Defaults 1s and 5m.
	InitialBackoff, MaxBackoff time.Duration
	// PollInterval is how often an idle worker looks for due jobs
	// enqueued by other processes. Default 1s.
	PollInterval time.Duration
	// Clock returns the current time; default time.Now.
	Clock func() time.Time
	// Logger receives the worker's logs; default discards them.
	Logger *slog.Logger
}

// Worker runs queued executions with a Guard's connectors.
type Worker struct {
	guard  *oars.Guard
	jobs   Store
	inputs Inputs
	cfg    Config
	wake   chan struct{}
}

// NewWorker returns a worker that executes the jobs of jobs, with the
// inputs kept in inputs, through g (which must have connectors).
func NewWorker(g *oars.Guard, jobs Store, inputs Inputs, cfg Config) (*Worker, error) {
	switch {
	case g == nil || jobs == nil || inputs == nil:
		return nil, errors.New("queue: new worker: nil guard, job store or input store")
	case g.Connectors() == nil:
		return nil, errors.New("queue: new worker: the Guard has no connectors")
	case cfg.Lease < 0 || cfg.MaxAttempts < 0 || cfg.InitialBackoff < 0 || cfg.MaxBackoff < 0 || cfg.PollInterval < 0:
		return nil, errors.New("queue: new worker: negative bound")
	}
	if cfg.Lease == 0 {
		cfg.Lease = time.Minute
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.InitialBackoff == 0 {
		cfg.InitialBackoff = time.Second
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.MaxBackoff < cfg.InitialBackoff {
		cfg.MaxBackoff = cfg.InitialBackoff
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{guard: g, jobs: jobs, inputs: inputs, cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Enqueue stores the canonical input of a decided action and queues its
// execution, durably, before it returns nil. It is idempotent.
func (w *Worker) Enqueue(ctx context.Context, actionID, tenantID string, canonicalInput []byte) error {
	if err := w.inputs.PutInput(ctx, actionID, tenantID, canonicalInput); err != nil {
		return fmt.Errorf("queue: enqueue %s: store input: %w", actionID, err)
	}
	return w.EnqueueStored(ctx, actionID, tenantID)
}

// EnqueueStored queues the execution of an action whose input is already
// stored (an action held for approval keeps its input when held).
func (w *Worker) EnqueueStored(ctx context.Context, actionID, tenantID string) error {
	if err := w.jobs.EnqueueJob(ctx, actionID, tenantID, w.cfg.Clock()); err != nil {
		return fmt.Errorf("queue: enqueue %s: %w", actionID, err)
	}
	w.Wake()
	return nil
}

// Wake makes an idle [Worker.Run] look for due jobs now.
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Result is what [Worker.Process] did with one job.
type Result struct {
	// Job is the job processed; nil when none was due.
	Job *Job
	// Outcome is the Guard's outcome of the attempt, when it ran.
	Outcome *oars.Outcome
	// Retry reports that the job was scheduled for another attempt.
	Retry bool
	// Err is why the attempt did not finish the job (also set when
	// Retry is).
	Err error
}

// Process claims one due job and runs one attempt of it. It returns a
// Result with a nil Job when no job is due, and an error only when the
// job store fails.
func (w *Worker) Process(ctx context.Context) (Result, error) {
	now := w.cfg.Clock()
	j, err := w.jobs.ClaimJob(ctx, now, w.cfg.Lease)
	if err != nil || j == nil {
		return Result{}, err
	}
	res := Result{Job: j}
	log := w.cfg.Logger.With(slog.String("action_id", j.ActionID), slog.Int("attempt", j.Attempts))
	input, err := w.inputs.GetInput(ctx, j.ActionID)
	if err != nil {
		res.Err = err
		if errors.Is(err, ledger.ErrNotFound) {
			log.ErrorContext(ctx, "queued action has no stored input; job killed")
			return res, w.jobs.KillJob(ctx, j, "input_missing")
		}
		return w.retry(ctx, res, j, "store_error", 0)
	}
	// The attempt is not cancelled with ctx (a half-run side effect is
	// worse than a late stop); the lease bounds it.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.Lease*9/10)
	out, err := w.guard.ExecuteAttempt(actx, j.ActionID, json.RawMessage(input), oars.Attempt{
		Number: j.Attempts, Final: j.Attempts >= w.cfg.MaxAttempts,
		PrevErrorClass: j.LastError, PrevUpstreamStatus: j.UpstreamStatus,
	})
	cancel()
	res.Outcome, res.Err = out, err
	var last *receipt.Receipt
	if out != nil && len(out.Receipts) > 0 {
		last = out.Receipts[len(out.Receipts)-1].Receipt
	}
	switch {
	case last != nil && last.Status == receipt.StatusDeadLettered:
		log.WarnContext(ctx, "queued action dead-lettered", slog.String("error_class", last.ErrorClass))
		return res, w.jobs.KillJob(ctx, j, last.ErrorClass)
	case last != nil && isFinal(last.Status):
		// Executed or failed (this attempt or an earlier one): recorded.
		log.DebugContext(ctx, "queued action finished", slog.String("status", string(last.Status)))
		return res, w.jobs.CompleteJob(ctx, j)
	case errors.Is(err, oars.ErrRetry):
		return w.retry(ctx, res, j, oars.ErrorClass(err), connector.UpstreamStatusOf(err))
	case errors.Is(err, oars.ErrNotApproved), errors.Is(err, oars.ErrApprovalMismatch),
		errors.Is(err, oars.ErrInvalidAction), errors.Is(err, oars.ErrNotFound):
		log.WarnContext(ctx, "queued action cannot be executed; job killed", slog.Any("error", err))
		return res, w.jobs.KillJob(ctx, j, "not_executable")
	}
	// Ledger or signing trouble, or the process is stopping: try again.
	log.WarnContext(ctx, "queued attempt did not finish; will retry", slog.Any("error", err))
	return w.retry(context.WithoutCancel(ctx), res, j, "error", 0)
}

func (w *Worker) retry(ctx context.Context, res Result, j *Job, class string, status int) (Result, error) {
	res.Retry = true
	return res, w.jobs.RetryJob(ctx, j, w.cfg.Clock().Add(w.backoff(j.Attempts)), class, status)
}

// backoff returns the wait before attempt n+1: InitialBackoff doubled
// per attempt, capped at MaxBackoff, with up to 20% jitter off.
func (w *Worker) backoff(n int) time.Duration {
	d := w.cfg.InitialBackoff
	for i := 1; i < n && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	if d > w.cfg.MaxBackoff {
		d = w.cfg.MaxBackoff
	}
	return d - time.Duration(rand.Int64N(int64(d)/5+1))
}

// Run processes due jobs until ctx ends, sleeping PollInterval (or until
// [Worker.Wake]) when none is due. Store errors are logged and retried
// after PollInterval. It returns ctx's error.
func (w *Worker) Run(ctx context.Context) error {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		case <-w.wake:
		}
		for ctx.Err() == nil {
			res, err := w.Process(ctx)
			if err != nil {
				if ctx.Err() == nil {
					w.cfg.Logger.ErrorContext(ctx, "job store failed", slog.Any("error", err))
				}
				break
			}
			if res.Job == nil {
				break
			}
		}
		// Since Go 1.23, Reset discards a tick not yet received.
		t.Reset(w.cfg.PollInterval)
	}
}

func isFinal(s receipt.Status) bool {
	return s == receipt.StatusExecuted || s == receipt.StatusFailed || s == receipt.StatusDeadLettered
}
