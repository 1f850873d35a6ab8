package postgres

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/ledger"
)

// envCrashSchema, when set, makes TestCrashChild act as the appending
// child of TestCrash, on that schema.
const envCrashSchema = "OARS_TEST_POSTGRES_CRASH_SCHEMA"

// TestCrash kills a process that is appending to the store, at a random
// point, and checks that every append it acknowledged survived whole, and
// that the log still verifies.
func TestCrash(t *testing.T) {
	testURL(t)
	for run := range 3 {
		t.Run(fmt.Sprintf("run%d", run), func(t *testing.T) {
			crashOnce(t, 50+rand.IntN(451))
		})
	}
}

// ack is one append the child acknowledged.
type ack struct {
	index  int64
	digest string // hex SHA-256 of the leaf
}

func crashOnce(t *testing.T, wantAcks int) {
	schema := newSchema(t)
	// A failsafe for a child that hangs; the test itself never waits on time.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), envCrashSchema+"="+schema)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe() // the child exits when this closes
	require.NoError(t, err, "StdinPipe")
	defer stdin.Close()
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err, "StdoutPipe")
	require.NoError(t, cmd.Start(), "start child")

	r := bufio.NewReader(stdout)
	acks := make(map[int64]string)
	readAck := func() (bool, error) {
		line, err := r.ReadString('\n')
		if err != nil {
			return false, err // a partial last line is not an acknowledgement
		}
		a, ok, perr := parseAck(line)
		if perr != nil {
			return false, perr
		}
		if ok {
			if prev, dup := acks[a.index]; dup {
				return false, fmt.Errorf("index %d acknowledged twice (%s, %s)", a.index, prev, a.digest)
			}
			acks[a.index] = a.digest
		}
		return ok, nil
	}
	for len(acks) < wantAcks {
		if _, err := readAck(); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("reading acknowledgements (%d of %d): %v; child stderr:\n%s", len(acks), wantAcks, err, stderr.String())
		}
	}
	require.NoError(t, cmd.Process.Kill(), "SIGKILL child")
	// Lines the child wrote before it died are acknowledgements too.
	for {
		if _, err := readAck(); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatalf("reading acknowledgements after the kill: %v", err)
			}
			break
		}
	}
	err = cmd.Wait()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr, "child should die of SIGKILL; stderr:\n%s", stderr.String())

	s := openStore(t, schema)
	size, err := s.Size(ctx)
	require.NoError(t, err, "Size after the crash")
	maxAck := int64(-1)
	for idx, digest := range acks {
		maxAck = max(maxAck, idx)
		leaves, err := s.ReadLeaves(ctx, idx, 1)
		if !assert.NoError(t, err, "ReadLeaves(%d) of an acknowledged leaf", idx) {
			continue
		}
		sum := sha256.Sum256(leaves[0])
		assert.Equal(t, digest, hex.EncodeToString(sum[:]), "digest of acknowledged leaf %d", idx)
	}
	assert.GreaterOrEqual(t, size, maxAck+1, "Size() after the crash vs highest acknowledged index %d", maxAck)
	rep, err := ledger.Verify(ctx, s, nil)
	require.NoError(t, err, "ledger.Verify after the crash")
	assert.Equal(t, size, rep.Size, "Verify size")
	t.Logf("acknowledged %d appends (highest index %d); %d stored", len(acks), maxAck, size)

	// The log goes on where it stopped.
	l, err := ledger.New(ctx, s)
	require.NoError(t, err, "ledger.New after the crash")
	idx, err := l.Append(ctx, []byte("after the crash"))
	require.NoError(t, err, "Append after the crash")
	assert.Equal(t, size, idx, "index of the first append after the crash")
}

// parseAck parses a child's "ack <index> <digest>" line; other lines (the
// test framework's own output) are skipped.
func parseAck(line string) (ack, bool, error) {
	f := strings.Fields(line)
	if len(f) == 0 || f[0] != "ack" {
		return ack{}, false, nil
	}
	if len(f) != 3 {
		return ack{}, false, fmt.Errorf("malformed acknowledgement %q", line)
	}
	idx, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil {
		return ack{}, false, fmt.Errorf("malformed acknowledgement %q: %w", line, err)
	}
	return ack{index: idx, digest: f[2]}, true, nil
}

// TestCrashChild is the child process of TestCrash: it appends from
// several goroutines until killed (or until its stdin closes, should the
// parent die), printing one "ack <index> <sha256>" line per acknowledged
// append.
func TestCrashChild(t *testing.T) {
	schema := os.Getenv(envCrashSchema)
	if schema == "" {
		t.Skip("helper process for TestCrash")
	}
	ctx := context.Background()
	s, err := Open(ctx, testURL(t), WithSchema(schema))
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: open:", err)
		os.Exit(2)
	}
	l, err := ledger.New(ctx, s)
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: ledger:", err)
		os.Exit(2)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0) // the parent is gone
	}()

	var (
		mu   sync.Mutex // one write per line, lines whole
		next atomic.Int64
	)
	const writers = 8
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for {
				n := next.Add(1)
				id := fmt.Sprintf("crash-%d", n)
				leaf := receiptLeaf("rcpt-"+id, "act-"+id, 1, "allowed", 300)
				idx, err := l.Append(ctx, leaf)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child: append:", err)
					os.Exit(2)
				}
				sum := sha256.Sum256(leaf)
				line := fmt.Sprintf("ack %d %s\n", idx, hex.EncodeToString(sum[:]))
				mu.Lock()
				_, err = os.Stdout.WriteString(line)
				mu.Unlock()
				if err != nil {
					os.Exit(2)
				}
			}
		})
	}
	wg.Wait()
}
