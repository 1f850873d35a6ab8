package postgres

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/ledger"
)

func TestInputs(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := openStore(t, schema)
	require.NoError(t, s.PutInput(ctx, "act-1", "acme", []byte(`{"amount":500}`)))
	require.NoError(t, s.PutInput(ctx, "act-1", "acme", []byte(`{"amount":1}`)), "PutInput again")
	got, err := s.GetInput(ctx, "act-1")
	require.NoError(t, err)
	assert.Equal(t, `{"amount":500}`, string(got), "the first input is kept")
	require.NoError(t, s.PutInput(ctx, "act-empty", "acme", nil))
	got, err = s.GetInput(ctx, "act-empty")
	require.NoError(t, err)
	assert.Equal(t, []byte{}, got)
	_, err = s.GetInput(ctx, "act-none")
	assert.ErrorIs(t, err, ledger.ErrNotFound, "GetInput(unknown)")

	// Replicas racing to store one action's input keep one.
	replicas := []*Store{s, openStore(t, schema), openStore(t, schema)}
	var wg sync.WaitGroup
	for i := range 9 {
		r := replicas[i%len(replicas)]
		wg.Go(func() {
			assert.NoError(t, r.PutInput(ctx, "act-race", "acme", []byte(fmt.Sprintf(`{"n":%d}`, i))), "PutInput #%d", i)
		})
	}
	wg.Wait()
	first, err := replicas[1].GetInput(ctx, "act-race")
	require.NoError(t, err)
	second, err := replicas[2].GetInput(ctx, "act-race")
	require.NoError(t, err)
	assert.Equal(t, first, second)

	require.NoError(t, replicas[2].Close())
	assert.ErrorIs(t, replicas[2].PutInput(ctx, "act-2", "acme", nil), ErrClosed)
	_, err = replicas[2].GetInput(ctx, "act-1")
	assert.ErrorIs(t, err, ErrClosed)
}

func TestInputsMigrationFromV2(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	s := openStore(t, schema)
	require.NoError(t, s.Close())
	execSQL(t, schema, "DROP TABLE %s.oars_action_inputs")
	execSQL(t, schema, "UPDATE %s.oars_schema_version SET version = 2")
	s2 := openStore(t, schema)
	require.NoError(t, s2.PutInput(ctx, "act-1", "acme", []byte(`{}`)), "PutInput after migrating from version 2")
}
