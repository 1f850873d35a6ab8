package sqlite_test

import (
	"context"
	"errors"
	"testing"

	"github.com/oarsdev/oars/identity"
	"github.com/oarsdev/oars/identity/passporttest"
	"github.com/oarsdev/oars/storage/sqlite"
)

func TestPassportStore(t *testing.T) {
	passporttest.Run(t, func(t *testing.T) identity.PassportStore {
		s, _ := openTemp(t)
		return s
	})
}

func TestPassportsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.PutPassport(ctx, passporttest.Passport("acme", "bot")); err != nil {
		t.Fatalf("PutPassport = %v", err)
	}
	if _, err := s.SetPassportStatus(ctx, "acme", "bot", identity.PassportSuspended); err != nil {
		t.Fatalf("SetPassportStatus = %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, err := s.GetPassport(ctx, "acme", "bot"); !errors.Is(err, sqlite.ErrClosed) {
		t.Errorf("GetPassport after Close error = %v, want ErrClosed", err)
	}
	again := openAt(t, path)
	p, err := again.GetPassport(ctx, "acme", "bot")
	if err != nil {
		t.Fatalf("GetPassport after reopen = %v", err)
	}
	if p.Status != identity.PassportSuspended || p.Version != 2 {
		t.Errorf("GetPassport after reopen = status %s version %d, want suspended 2", p.Status, p.Version)
	}
}

func TestPassportCorruptRow(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	if err := s.PutPassport(ctx, passporttest.Passport("acme", "bot")); err != nil {
		t.Fatalf("PutPassport = %v", err)
	}
	rawExec(t, path, `UPDATE passports SET data = '{"agent_id":"bot","bogus":1}'`)
	if _, err := s.GetPassport(ctx, "acme", "bot"); !errors.Is(err, sqlite.ErrCorrupt) {
		t.Errorf("GetPassport(corrupt row) error = %v, want ErrCorrupt", err)
	}
}
