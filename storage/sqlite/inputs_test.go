package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"github.com/oarsdev/oars/ledger"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestInputs(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	s := openStepup(t, path)
	tests := []struct {
		name, id string
		put      [][]byte // stored in order
		want     []byte
	}{
		{"one", "act-1", [][]byte{[]byte(`{"amount":500}`)}, []byte(`{"amount":500}`)},
		{"first is kept", "act-2", [][]byte{[]byte(`{"a":1}`), []byte(`{"a":2}`)}, []byte(`{"a":1}`)},
		{"empty", "act-3", [][]byte{nil}, []byte{}},
		{"binary", "act-4", [][]byte{{0, 1, 2, 0xff}}, []byte{0, 1, 2, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, in := range tt.put {
				if err := s.PutInput(ctx, tt.id, "acme", in); err != nil {
					t.Fatalf("PutInput(%s) = %v, want nil", tt.id, err)
				}
			}
			got, err := s.GetInput(ctx, tt.id)
			if err != nil || !bytes.Equal(got, tt.want) || got == nil {
				t.Errorf("GetInput(%s) = %q, %v, want %q, nil", tt.id, got, err, tt.want)
			}
		})
	}
	if _, err := s.GetInput(ctx, "act-none"); !errors.Is(err, ledger.ErrNotFound) {
		t.Errorf("GetInput(unknown) = %v, want ledger.ErrNotFound", err)
	}

	// Another store on the file sees them; concurrent puts of one action
	// keep one input.
	other := openStepup(t, path)
	if got, err := other.GetInput(ctx, "act-1"); err != nil || string(got) != `{"amount":500}` {
		t.Errorf("GetInput on a second store = %q, %v", got, err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		st := s
		if i%2 == 1 {
			st = other
		}
		wg.Go(func() {
			if err := st.PutInput(ctx, "act-race", "acme", []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
				t.Errorf("PutInput(act-race) #%d = %v", i, err)
			}
		})
	}
	wg.Wait()
	a, errA := s.GetInput(ctx, "act-race")
	b, errB := other.GetInput(ctx, "act-race")
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Errorf("GetInput(act-race) on the two stores = %q, %v and %q, %v, want one input", a, errA, b, errB)
	}

	ro := openStepup(t, path, sqlite.WithReadOnly())
	if err := ro.PutInput(ctx, "act-ro", "acme", []byte(`{}`)); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("PutInput on a read-only store = %v, want ErrReadOnly", err)
	}
	if got, err := ro.GetInput(ctx, "act-1"); err != nil || len(got) == 0 {
		t.Errorf("GetInput on a read-only store = %q, %v", got, err)
	}
	if err := other.Close(); err != nil {
		t.Fatal(err)
	}
	if err := other.PutInput(ctx, "act-5", "acme", nil); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("PutInput after Close = %v, want ErrClosed", err)
	}
	if _, err := other.GetInput(ctx, "act-1"); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("GetInput after Close = %v, want ErrClosed", err)
	}
}

func TestInputsMigrationFromV2(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	s := openStepup(t, path)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DROP TABLE action_inputs; UPDATE schema_version SET version = 2`); err != nil {
		t.Fatalf("downgrade to version 2: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openStepup(t, path)
	if err := s2.PutInput(ctx, "act-1", "acme", []byte(`{}`)); err != nil {
		t.Errorf("PutInput after migrating from version 2 = %v, want nil", err)
	}
}
