package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/oarsdev/oars/connector/vault"
	"github.com/oarsdev/oars/connector/vault/vaulttest"
)

var (
	_ vault.Store   = (*Store)(nil)
	_ vault.Swapper = (*Store)(nil)
)

func TestVaultConformance(t *testing.T) {
	testURL(t)
	vaulttest.Run(t, func(t *testing.T) vault.Store {
		return openStore(t, newSchema(t))
	})
}

// vaultKey returns a key with the given id and bytes all tag.
func vaultKey(id string, tag byte) vault.Key {
	k := vault.Key{ID: id}
	for i := range k.Secret {
		k.Secret[i] = tag
	}
	return k
}

// newVaultOn returns a Vault over s with the given keys, the first active.
func newVaultOn(t *testing.T, s vault.Store, keys ...vault.Key) *vault.Vault {
	t.Helper()
	kr, err := vault.NewKeyring(keys[0], keys[1:]...)
	require.NoError(t, err, "NewKeyring")
	v, err := vault.New(s, kr)
	require.NoError(t, err, "vault.New")
	return v
}

func TestVaultSecrets(t *testing.T) {
	ctx := context.Background()
	schema := newSchema(t)
	k1, k2 := vaultKey("k1", 1), vaultKey("k2", 2)
	s := openStore(t, schema)
	v1 := newVaultOn(t, s, k1)
	require.NoError(t, v1.Put(ctx, "stripe/api-key", []byte("sk_live_1")))
	require.NoError(t, v1.Put(ctx, "github.token", []byte("ghp_2")))

	// Another replica reads them with k1 as an old key and rotates.
	replica := openStore(t, schema)
	v21 := newVaultOn(t, replica, k2, k1)
	got, err := v21.Secret(ctx, "stripe/api-key")
	require.NoError(t, err)
	assert.Equal(t, "sk_live_1", string(got))
	n, err := v21.Rotate(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "Rotate() count")
	assert.Equal(t, []string{"k2", "k2"}, keyIDColumn(t, schema), "key_id of the rows after Rotate")

	got, err = newVaultOn(t, s, k2).Secret(ctx, "github.token")
	require.NoError(t, err, "Secret with k2 only")
	assert.Equal(t, "ghp_2", string(got))
	_, err = v1.Secret(ctx, "github.token")
	assert.ErrorIs(t, err, vault.ErrUnknownKey, "Secret with k1 only after rotation")

	// The sealed bytes hold no plaintext.
	var sealed []byte
	conn := vaultConn(t)
	require.NoError(t, conn.QueryRow(ctx, `SELECT sealed FROM `+pgx.Identifier{schema, "oars_secrets"}.Sanitize()+
		` WHERE name = 'stripe/api-key'`).Scan(&sealed))
	assert.NotContains(t, string(sealed), "sk_live_1")

	require.NoError(t, replica.Close())
	_, _, getErr := replica.GetSecret(ctx, "stripe/api-key")
	_, listErr := replica.ListSecrets(ctx)
	_, swapErr := replica.SwapSecret(ctx, "stripe/api-key", nil, "k2", []byte{1})
	for op, err := range map[string]error{
		"PutSecret":    replica.PutSecret(ctx, "a", "k2", []byte{1}),
		"GetSecret":    getErr,
		"ListSecrets":  listErr,
		"DeleteSecret": replica.DeleteSecret(ctx, "stripe/api-key"),
		"SwapSecret":   swapErr,
	} {
		assert.ErrorIs(t, err, ErrClosed, "%s after Close", op)
	}
}

// vaultConn opens a connection to the test database, closed when the test
// ends.
func vaultConn(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testURL(t))
	require.NoError(t, err, "connect")
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// keyIDColumn returns the key_id of every row of oars_secrets in schema,
// in name order.
func keyIDColumn(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := vaultConn(t).Query(context.Background(),
		`SELECT key_id FROM `+pgx.Identifier{schema, "oars_secrets"}.Sanitize()+` ORDER BY name COLLATE "C"`)
	require.NoError(t, err)
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return ids
}
