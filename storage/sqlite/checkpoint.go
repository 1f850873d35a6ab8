package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// Checkpointing: in WAL mode a commit appends pages to the WAL file, and a
// checkpoint later copies them into the database file. SQLite's automatic
// checkpoint runs inside the commit that fills the WAL past a threshold, so
// that one commit, and every append waiting behind it, also pays for
// copying the pages of many earlier commits and two more fsyncs. A Store
// instead checkpoints on its own goroutine and connection, while the writer
// goes on appending; the writer's automatic checkpoint, set to a larger
// threshold (walAutoCheckpoint), remains as the backstop that also lets the
// WAL file start over from its beginning, and then has little left to copy.

const (
	// walAutoCheckpoint is the writer's wal_autocheckpoint, in pages.
	walAutoCheckpoint = 4000

	// walSizeLimit is the writer's journal_size_limit, in bytes: when the
	// WAL starts over, a file that grew past it (say, while a long read
	// held back checkpoints) is cut back to it. It is well above the
	// size the WAL normally reaches, which is reused without truncation.
	walSizeLimit = 64 << 20

	// checkpointBytes and checkpointCommits bound how much is appended
	// between two background checkpoints: about 1000 WAL pages for batches
	// of receipts, fewer for single-leaf commits.
	checkpointBytes   = 1 << 20
	checkpointCommits = 128
)

// checkpointer runs PASSIVE checkpoints on its own connection when
// [checkpointer.appended] says enough was written since the last one. A
// PASSIVE checkpoint never blocks the writer or readers: it copies what no
// reader still needs and gives up on the rest, which the next one copies.
// Its errors are dropped: a failed checkpoint loses nothing, the WAL just
// grows until a later checkpoint (or the writer's) succeeds.
type checkpointer struct {
	db     *sql.DB
	wake   chan struct{} // capacity 1: a pending request
	cancel context.CancelFunc
	wg     sync.WaitGroup

	bytes, commits atomic.Int64 // appended since the last request

	// testHookDone, if set before the first append, is called with the
	// outcome of every checkpoint.
	testHookDone func(error)
}

// startCheckpointer starts the checkpointer goroutine on db, which it owns
// and closes in stop.
func startCheckpointer(db *sql.DB) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, wake: make(chan struct{}, 1), cancel: cancel}
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.wake:
				_, err := c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
				if c.testHookDone != nil {
					c.testHookDone(err)
				}
			}
		}
	})
	return c
}

// appended records a committed append of n bytes of leaves and wakes the
// goroutine once enough has been appended. It never blocks.
func (c *checkpointer) appended(n int) {
	b, k := c.bytes.Add(int64(n)), c.commits.Add(1)
	if b < checkpointBytes && k < checkpointCommits {
		return
	}
	c.bytes.Store(0)
	c.commits.Store(0)
	select {
	case c.wake <- struct{}{}:
	default: // a request is already pending
	}
}

// stop interrupts a running checkpoint, waits for the goroutine to end and
// closes its connection.
func (c *checkpointer) stop() error {
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}
