package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func FuzzParseCheckpoint(f *testing.F) {
	key := testKey()
	s, err := NewCheckpointSigner(testOrigin, key)
	if err != nil {
		f.Fatal(err)
	}
	v, err := NewCheckpointVerifier(testOrigin, key.Public().(ed25519.PublicKey))
	if err != nil {
		f.Fatal(err)
	}
	golden, err := os.ReadFile(filepath.Join("testdata", "checkpoint.golden"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, false)
	f.Add(golden[:len(golden)-10], false)
	f.Add([]byte(nil), false)
	for _, text := range []string{
		testOrigin + "\n3\nOF2jDzkXKCyJOd/4UZV+UZqxhGsTUaFMCts7EWMnQqo=\n",
		testOrigin + "\n03\nOF2jDzkXKCyJOd/4UZV+UZqxhGsTUaFMCts7EWMnQqo=\n",
		testOrigin + "\n3\nOF2jDzkXKCyJOd/4UZV+UZqxhGsTUaFMCts7EWMnQqo=\next\n",
		testOrigin + "\n99999999999999999999\nAAAA\n",
		"\n\n\n",
	} {
		f.Add([]byte(text), true)
	}

	f.Fuzz(func(t *testing.T, data []byte, sign bool) {
		msg := data
		if sign {
			// Treat data as note text and sign it, to reach the body parser.
			if !strings.HasSuffix(string(data), "\n") {
				return
			}
			var err error
			msg, err = note.Sign(&note.Note{Text: string(data)}, s)
			if err != nil {
				return
			}
		}
		c, err := ParseCheckpoint(msg, v)
		if err != nil {
			if !errors.Is(err, ErrInvalidCheckpoint) {
				t.Fatalf("ParseCheckpoint error %v does not wrap ErrInvalidCheckpoint", err)
			}
			if c != nil {
				t.Fatalf("ParseCheckpoint returned a checkpoint with error %v", err)
			}
			return
		}
		// Stable round trip: the accepted body starts with the checkpoint's
		// own text, and that text parses to the same checkpoint.
		n, err := note.Open(msg, note.VerifierList(v))
		if err != nil {
			t.Fatalf("note.Open after ParseCheckpoint succeeded: %v", err)
		}
		if !strings.HasPrefix(n.Text, c.String()) {
			t.Fatalf("note text %q does not start with Checkpoint.String() %q", n.Text, c.String())
		}
		again, err := note.Sign(&note.Note{Text: c.String()}, s)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := ParseCheckpoint(again, v)
		if err != nil {
			t.Fatalf("ParseCheckpoint(re-signed %q): %v", c.String(), err)
		}
		if *c2 != *c {
			t.Fatalf("round trip = %+v, want %+v", c2, c)
		}
	})
}

func FuzzProofParams(f *testing.F) {
	const size = 17
	ctx := context.Background()
	l, err := New(ctx, NewMemStore())
	if err != nil {
		f.Fatal(err)
	}
	leaves := make([][]byte, size)
	for i := range leaves {
		leaves[i] = leafAt(i)
	}
	if _, err := l.AppendBatch(ctx, leaves); err != nil {
		f.Fatal(err)
	}
	for _, seed := range [][2]int64{{0, 1}, {16, 17}, {5, 5}, {0, 0}, {-1, 3}, {3, -1}, {17, 17}, {1, 18}, {-1 << 63, 1<<63 - 1}, {1<<63 - 1, 1<<63 - 1}} {
		f.Add(seed[0], seed[1])
	}

	f.Fuzz(func(t *testing.T, a, b int64) {
		p, err := l.ProveInclusion(ctx, a, b)
		if valid := 0 <= a && a < b && b <= size; valid {
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d) = %v, want a proof", a, b, err)
			}
			root, err := l.TreeHash(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckInclusion(p, b, root, a, leaves[a]); err != nil {
				t.Fatalf("CheckInclusion(ProveInclusion(%d, %d)) = %v", a, b, err)
			}
		} else if !errors.Is(err, ErrInvalidRange) {
			t.Fatalf("ProveInclusion(%d, %d) = %v, want ErrInvalidRange", a, b, err)
		}

		tp, err := l.ProveConsistency(ctx, a, b)
		if valid := 1 <= a && a <= b && b <= size; valid {
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d) = %v, want a proof", a, b, err)
			}
			ra, err := l.TreeHash(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := l.TreeHash(ctx, b)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckConsistency(tp, b, rb, a, ra); err != nil {
				t.Fatalf("CheckConsistency(ProveConsistency(%d, %d)) = %v", a, b, err)
			}
		} else if !errors.Is(err, ErrInvalidRange) {
			t.Fatalf("ProveConsistency(%d, %d) = %v, want ErrInvalidRange", a, b, err)
		}

		// The check functions take arbitrary parameters without panicking.
		_ = CheckInclusion(p, b, [32]byte{}, a, nil)
		_ = CheckConsistency(tp, b, [32]byte{}, a, [32]byte{})
	})
}
