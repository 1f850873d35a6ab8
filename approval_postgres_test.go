package oars_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/approval"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/postgres"
)

// postgresSchema returns a fresh schema of the database at
// OARS_TEST_POSTGRES_URL, dropped when the test ends, and skips the test
// when the variable is unset.
func postgresSchema(t *testing.T) (url, schema string) {
	t.Helper()
	url = os.Getenv("OARS_TEST_POSTGRES_URL")
	if url == "" {
		t.Skip("OARS_TEST_POSTGRES_URL not set: skipping the PostgreSQL approval tests")
	}
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err)
	schema = "oars_approval_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("cleanup: connect: %v", err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("cleanup: drop schema: %v", err)
		}
	})
	return url, schema
}

func openPostgres(t *testing.T, url, schema string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.WithSchema(schema))
	require.NoError(t, err, "postgres.Open")
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestTwoGuardsPostgres runs two Guards, like two oarsd replicas, on one
// PostgreSQL schema: they race on the final vote and on the execution of
// the approved action, and a Do waiting on one sees the other's approval.
func TestTwoGuardsPostgres(t *testing.T) {
	url, schema := postgresSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not a timing assertion
	defer cancel()
	a := newFixture(t, openPostgres(t, url, schema), []string{approvalPolicy}, oars.WithPollInterval(10*time.Millisecond))
	b := newFixture(t, openPostgres(t, url, schema), []string{approvalPolicy}, oars.WithPollInterval(10*time.Millisecond))
	guards := []*oars.Guard{a.guard, b.guard}

	t.Run("race", func(t *testing.T) {
		id := pending(t, a, 500, "order/pg")
		_, err := b.guard.Vote(ctx, id, vote("bob", "finance"))
		require.NoError(t, err)

		// Both replicas record the final vote at once.
		start := make(chan struct{})
		errs := make([]error, 2)
		var wg sync.WaitGroup
		for i, user := range []string{"carol", "dave"} {
			wg.Go(func() {
				<-start
				_, errs[i] = guards[i].Vote(ctx, id, vote(user, "finance"))
			})
		}
		close(start)
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, approval.ErrNotPending)
		}
		assert.Equal(t, 1, won, "final votes recorded")
		assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote, receipt.StatusApproved},
			statusesOf(t, a.guard, id), "exactly one approved")

		// Both replicas, two goroutines each, execute at once.
		var c counter
		start = make(chan struct{})
		errs = make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				<-start
				_, errs[i] = guards[i%2].Execute(ctx, id, refund(500, "order/pg"), c.exec)
			})
		}
		close(start)
		wg.Wait()
		won = 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			require.ErrorIs(t, err, oars.ErrAlreadyClaimed)
		}
		assert.Equal(t, 1, won, "executors that won the claim")
		assert.Equal(t, int32(1), c.n.Load(), "exec runs")
		assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote, receipt.StatusApproved,
			receipt.StatusExecuting, receipt.StatusExecuted}, statusesOf(t, b.guard, id))
	})

	t.Run("wait polls the other replica", func(t *testing.T) {
		notified := make(chan string, 1)
		waiter := newFixture(t, openPostgres(t, url, schema), []string{approvalPolicy}, oars.WithPollInterval(10*time.Millisecond),
			oars.WithNotifier(approval.NotifierFunc(func(_ context.Context, r approval.Request) error { notified <- r.ActionID; return nil })))
		var c counter
		type result struct {
			out *oars.Outcome
			err error
		}
		done := make(chan result, 1)
		go func() {
			out, err := waiter.guard.Do(ctx, refund(800, "order/pg-wait"), c.exec)
			done <- result{out, err}
		}()
		id := <-notified
		for _, u := range []string{"bob", "carol"} {
			_, err := a.guard.Vote(ctx, id, vote(u, "finance"))
			require.NoError(t, err)
		}
		res := <-done
		require.NoError(t, res.err, "Do() on the waiting replica")
		assert.Equal(t, receipt.StatusExecuted, res.out.Status)
		assert.Equal(t, int32(1), c.n.Load())
		_, err := a.guard.Execute(ctx, id, refund(800, "order/pg-wait"), c.exec)
		require.True(t, errors.Is(err, oars.ErrAlreadyClaimed), "Execute() on the other replica = %v, want ErrAlreadyClaimed", err)
	})
	verifyLedger(t, a)
}
