package oars_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars"
	"github.com/oarsdev/oars/receipt"
	"github.com/oarsdev/oars/storage/sqlite"
)

// approvalCrashEnv names the database of the crash child.
const approvalCrashEnv = "OARS_APPROVAL_CRASH_CHILD_DB"

// crashAction is the action the crash child has approved.
func crashAction() *oars.Action {
	a := refund(2500, "order/crash")
	a.ID = "act-crash"
	return a
}

// TestApprovalCrashChild is not a test on its own: TestApprovalCrashBeforeExecution
// runs the test binary again with only this test selected. The child has
// an action approved, prints "approved <id>" and waits to be killed before
// executing it.
func TestApprovalCrashChild(t *testing.T) {
	path := os.Getenv(approvalCrashEnv)
	if path == "" {
		t.Skip("runs only as the child process of TestApprovalCrashBeforeExecution")
	}
	// Bound the child's life in case the parent dies without killing it.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store, err := sqlite.Open(ctx, path)
	require.NoError(t, err)
	f := newFixture(t, store, []string{approvalPolicy})
	out, err := f.guard.Decide(ctx, crashAction())
	require.NoError(t, err)
	for _, u := range []string{"bob", "carol"} {
		_, err := f.guard.Vote(ctx, out.ActionID, vote(u, "finance"))
		require.NoError(t, err)
	}
	fmt.Printf("approved %s\n", out.ActionID)
	<-ctx.Done()
}

// TestApprovalCrashBeforeExecution kills a process between approval and
// execution: after a restart, the approved action is found and executed
// exactly once.
func TestApprovalCrashBeforeExecution(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "oars.db")
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestApprovalCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), approvalCrashEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	var id string
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		if rest, ok := strings.CutPrefix(lines.Text(), "approved "); ok {
			id = rest
			break
		}
	}
	require.NoError(t, cmd.Process.Kill(), "SIGKILL the child")
	_ = cmd.Wait()
	require.Equal(t, crashAction().ID, id, "the child's approved action")

	// Restart on the same file.
	f := newFixture(t, openSQLite(t, path), []string{approvalPolicy})
	assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote, receipt.StatusApproved},
		statusesOf(t, f.guard, id), "receipts after the crash")
	n, err := f.guard.LoadPending(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "LoadPending()")
	ids, err := f.guard.ApprovedUnexecuted(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{id}, ids, "ApprovedUnexecuted()")

	var c counter
	out, err := f.guard.Execute(ctx, id, crashAction(), c.exec)
	require.NoError(t, err, "Execute() after the restart")
	assert.Equal(t, receipt.StatusExecuted, out.Status)
	_, err = f.guard.Execute(ctx, id, crashAction(), c.exec)
	require.ErrorIs(t, err, oars.ErrAlreadyClaimed, "a second Execute()")
	assert.Equal(t, int32(1), c.n.Load(), "exec runs")
	ids, err = f.guard.ApprovedUnexecuted(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids, "ApprovedUnexecuted() after execution")
	assert.Equal(t, []receipt.Status{receipt.StatusPendingApproval, receipt.StatusVote, receipt.StatusVote, receipt.StatusApproved,
		receipt.StatusExecuting, receipt.StatusExecuted}, statusesOf(t, f.guard, id))
	verifyLedger(t, f)
}
