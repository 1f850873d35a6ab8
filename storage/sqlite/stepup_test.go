package sqlite_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/approval/stepup/stepuptest"
	"github.com/oarsdev/oars/storage/sqlite"
)

// openStepup opens a store at path for the step-up tests and closes it at
// the end of the test.
func openStepup(t *testing.T, path string, opts ...sqlite.Option) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s) = %v, want nil", filepath.Base(path), err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestStepupConformance(t *testing.T) {
	stepuptest.Run(t, func(t *testing.T) stepup.Store {
		return openStepup(t, filepath.Join(t.TempDir(), "oars.db"))
	})
}

func TestStepupTwoStoresOneFile(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	a, b := openStepup(t, path), openStepup(t, path)
	if err := a.PutEnrollment(ctx, "tenant-a", "alice", []byte("sealed")); err != nil {
		t.Fatalf("PutEnrollment = %v, want nil", err)
	}
	if got, err := b.GetEnrollment(ctx, "tenant-a", "alice"); err != nil || !bytes.Equal(got, []byte("sealed")) {
		t.Errorf("GetEnrollment on the second store = %q, %v, want %q, nil", got, err, "sealed")
	}
	if err := a.UseStep(ctx, "tenant-a", "alice", 100); err != nil {
		t.Fatalf("UseStep(100) on the first store = %v, want nil", err)
	}
	if err := b.UseStep(ctx, "tenant-a", "alice", 100); !errors.Is(err, stepup.ErrReplayed) {
		t.Errorf("UseStep(100) on the second store = %v, want ErrReplayed", err)
	}
}

func TestStepupTOTPReplicas(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	key := bytes.Repeat([]byte{3}, stepup.KeySize)
	newTOTP := func(s stepup.Store) *stepup.TOTP {
		tp, err := stepup.New(s, key, stepup.WithClock(func() time.Time { return now }))
		if err != nil {
			t.Fatalf("stepup.New = %v", err)
		}
		return tp
	}
	r1, r2 := newTOTP(openStepup(t, path)), newTOTP(openStepup(t, path))
	secret, _, err := r1.Enroll(ctx, "tenant-a", "alice")
	if err != nil {
		t.Fatalf("Enroll = %v", err)
	}
	code, err := totp.GenerateCode(secret, now)
	if err != nil {
		t.Fatalf("GenerateCode = %v", err)
	}
	if err := r2.Verify(ctx, "tenant-a", "alice", code); err != nil {
		t.Errorf("Verify(right code) on replica 2 = %v, want nil", err)
	}
	if err := r1.Verify(ctx, "tenant-a", "alice", code); !errors.Is(err, stepup.ErrReplayed) {
		t.Errorf("Verify(same code) on replica 1 = %v, want ErrReplayed", err)
	}
}

func TestStepupMigrationFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	// Take the database back to schema version 1.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open = %v", err)
	}
	if _, err := db.Exec(`DROP TABLE stepup_totp; UPDATE schema_version SET version = 1`); err != nil {
		t.Fatalf("downgrade to version 1: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("close raw db: %v", err)
	}

	s2 := openStepup(t, path)
	if err := s2.PutEnrollment(ctx, "tenant-a", "alice", []byte("sealed")); err != nil {
		t.Errorf("PutEnrollment after migrating from version 1 = %v, want nil", err)
	}
}

func TestStepupReadOnlyAndClosed(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "oars.db")
	rw := openStepup(t, path)
	if err := rw.PutEnrollment(ctx, "tenant-a", "alice", []byte("sealed")); err != nil {
		t.Fatalf("PutEnrollment = %v", err)
	}
	ro := openStepup(t, path, sqlite.WithReadOnly())
	if got, err := ro.GetEnrollment(ctx, "tenant-a", "alice"); err != nil || string(got) != "sealed" {
		t.Errorf("GetEnrollment on a read-only store = %q, %v, want %q, nil", got, err, "sealed")
	}
	if err := ro.PutEnrollment(ctx, "tenant-a", "bob", []byte("x")); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("PutEnrollment on a read-only store = %v, want ErrReadOnly", err)
	}
	if err := ro.UseStep(ctx, "tenant-a", "alice", 1); !errors.Is(err, sqlite.ErrReadOnly) {
		t.Errorf("UseStep on a read-only store = %v, want ErrReadOnly", err)
	}

	if err := rw.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if err := rw.PutEnrollment(ctx, "tenant-a", "bob", []byte("x")); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("PutEnrollment after Close = %v, want ErrClosed", err)
	}
	if _, err := rw.GetEnrollment(ctx, "tenant-a", "alice"); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("GetEnrollment after Close = %v, want ErrClosed", err)
	}
	if err := rw.UseStep(ctx, "tenant-a", "alice", 1); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("UseStep after Close = %v, want ErrClosed", err)
	}
}
