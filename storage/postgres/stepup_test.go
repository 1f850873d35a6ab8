package postgres

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/approval/stepup"
	"github.com/oarsdev/oars/approval/stepup/stepuptest"
)

func TestStepupConformance(t *testing.T) {
	testURL(t)
	stepuptest.Run(t, func(t *testing.T) stepup.Store {
		return openStore(t, newSchema(t))
	})
}

func TestStepupReplicas(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	key := bytes.Repeat([]byte{5}, stepup.KeySize)
	replicas := make([]*stepup.TOTP, 4)
	for i := range replicas {
		tp, err := stepup.New(openStore(t, schema), key, stepup.WithClock(func() time.Time { return now }))
		require.NoError(t, err, "stepup.New #%d", i)
		replicas[i] = tp
	}
	secret, _, err := replicas[0].Enroll(ctx, "tenant-a", "alice")
	require.NoError(t, err, "Enroll")
	code, err := totp.GenerateCode(secret, now)
	require.NoError(t, err, "GenerateCode")

	errs := make(chan error, len(replicas))
	for _, r := range replicas {
		go func() { errs <- r.Verify(ctx, "tenant-a", "alice", code) }()
	}
	ok := 0
	for i := range replicas {
		err := <-errs
		if err == nil {
			ok++
			continue
		}
		assert.ErrorIs(t, err, stepup.ErrReplayed, "Verify(same code) result #%d", i)
	}
	assert.Equal(t, 1, ok, "replicas that accepted one code")
}

func TestStepupClosed(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, newSchema(t))
	require.NoError(t, s.Close(), "Close")
	tests := []struct {
		name string
		call func() error
	}{
		{"PutEnrollment", func() error { return s.PutEnrollment(ctx, "t", "u", []byte("x")) }},
		{"GetEnrollment", func() error { _, err := s.GetEnrollment(ctx, "t", "u"); return err }},
		{"UseStep", func() error { return s.UseStep(ctx, "t", "u", 1) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			assert.True(t, errors.Is(err, ErrClosed), "%s after Close = %v, want ErrClosed", tt.name, err)
		})
	}
}

func TestStepupMigrationFromV1(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := openStore(t, schema)
	require.NoError(t, s.Close(), "Close")
	execSQL(t, schema, "DROP TABLE %s.oars_stepup_totp")
	execSQL(t, schema, "UPDATE %s.oars_schema_version SET version = 1")
	s2 := openStore(t, schema)
	assert.NoError(t, s2.PutEnrollment(ctx, "tenant-a", "alice", []byte("sealed")), "PutEnrollment after migrating from version 1")
}
