package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/jackc/pgx/v5"
)

// notice is the payload of a notification on the oars_ledger channel.
type notice struct {
	Schema string `json:"schema"`
	Size   int64  `json:"size"`
}

// notifyPayload returns the payload announcing that the log in schema has
// grown to size.
func notifyPayload(schema string, size int64) (string, error) {
	b, err := json.Marshal(notice{Schema: schema, Size: size})
	if err != nil {
		return "", fmt.Errorf("notify payload: %w", err)
	}
	return string(b), nil
}

// watcher is one running Watch.
type watcher struct {
	cancel context.CancelFunc
}

// Watch reports the size of the log whenever it grows, whichever process
// appended. It opens a dedicated connection (outside the pool), LISTENs on
// the channel oars_ledger, and returns a channel that first receives the
// size at the time the watch started and then every larger size announced
// by a committed append to this store's schema.
//
// The channel holds one value. A receiver that falls behind misses
// intermediate sizes, never the latest one: the value waiting in the
// channel is replaced by the newer size. Sizes only grow.
//
// Watch starts one goroutine, owned by ctx and by the Store: it ends, closes
// its connection and closes the channel when ctx is done, when
// [Store.Close] is called, or when the connection fails (a dropped
// connection, a server restart). A closed channel therefore means "call
// Watch again if still interested"; notifications sent while no watch was
// listening are not replayed, but the first value of the new watch is the
// current size.
//
// Watch returns an error wrapping [ErrClosed] after Close, and another error
// if the connection or the LISTEN fails.
func (s *Store) Watch(ctx context.Context) (<-chan int64, error) {
	done, err := s.enter("watch")
	if err != nil {
		return nil, err
	}
	defer done()

	octx, cancel := s.opContext(ctx)
	defer cancel()
	conn, err := s.listen(octx, "watch", notifyChannel)
	if err != nil {
		return nil, err
	}
	// Read the size after LISTEN took effect: any later commit notifies.
	var size int64
	if err := conn.QueryRow(octx, s.q.size).Scan(&size); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("postgres: watch: read size: %w", err)
	}
	wctx, w := s.addWatcher(ctx)

	ch := make(chan int64, 1)
	ch <- size
	go s.watch(wctx, w, conn, ch, size)
	return ch, nil
}

// watch forwards notifications for this schema until ctx ends or the
// connection fails.
func (s *Store) watch(ctx context.Context, w *watcher, conn *pgx.Conn, ch chan int64, last int64) {
	defer func() {
		close(ch)
		s.endWatch(w, conn)
	}()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		var msg notice
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil || msg.Schema != s.schema {
			continue // another schema's log, or not ours to read
		}
		if msg.Size <= last {
			continue
		}
		last = msg.Size
		// Keep only the newest size: this goroutine is the only sender, so
		// after emptying the buffer the send cannot block.
		select {
		case ch <- last:
		default:
			select {
			case <-ch:
			default:
			}
			ch <- last
		}
	}
}

// listen opens a dedicated connection (outside the pool) and LISTENs on
// channel; op names the operation in errors.
func (s *Store) listen(ctx context.Context, op, channel string) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, redact(fmt.Errorf("postgres: %s: connect: %w", op, err), cfg.Password)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{channel}.Sanitize()); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("postgres: %s: listen: %w", op, err)
	}
	return conn, nil
}

// addWatcher registers a running watch, so that Close can end it, and
// returns the context its goroutine runs under.
func (s *Store) addWatcher(ctx context.Context) (context.Context, *watcher) {
	wctx, cancel := context.WithCancel(ctx)
	w := &watcher{cancel: cancel}
	s.watchMu.Lock()
	s.watchers[w] = struct{}{}
	s.watchWG.Add(1)
	s.watchMu.Unlock()
	return wctx, w
}

// endWatch closes a watch's connection and unregisters it; its goroutine
// calls it last.
func (s *Store) endWatch(w *watcher, conn *pgx.Conn) {
	closeConn(conn)
	s.watchMu.Lock()
	delete(s.watchers, w)
	s.watchMu.Unlock()
	w.cancel()
	s.watchWG.Done()
}

// closeConn closes a watch connection, waiting a bounded time for the
// server to hear the goodbye.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}
