package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// envURL names the environment variable holding the test database URL.
const envURL = "OARS_TEST_POSTGRES_URL"

// testURL returns the test database URL, skipping the test when unset.
func testURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(envURL)
	if u == "" {
		t.Skip("OARS_TEST_POSTGRES_URL not set: skipping PostgreSQL tests")
	}
	return u
}

// randomSchema returns a fresh schema name for one test.
func randomSchema(t testing.TB) string {
	t.Helper()
	var b [8]byte
	_, err := rand.Read(b[:])
	require.NoError(t, err, "rand.Read")
	return "oars_test_" + hex.EncodeToString(b[:])
}

// newSchema returns a fresh schema name and drops that schema when the test
// ends (after the stores opened on it are closed: cleanups run in reverse).
func newSchema(t testing.TB) string {
	t.Helper()
	url := testURL(t)
	schema := randomSchema(t)
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
			t.Errorf("cleanup: drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// openStore opens a Store on schema and closes it when the test ends.
func openStore(t testing.TB, schema string, opts ...Option) *Store {
	t.Helper()
	s, err := Open(context.Background(), testURL(t), append([]Option{WithSchema(schema)}, opts...)...)
	require.NoError(t, err, "Open(schema %s)", schema)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// execSQL runs sql on the test database with the schema's name substituted for
// every "%s", for tests that reach under the store.
func execSQL(t testing.TB, schema, sql string, args ...any) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testURL(t))
	require.NoError(t, err, "connect")
	defer conn.Close(ctx)
	q := strings.ReplaceAll(sql, "%s", pgx.Identifier{schema}.Sanitize())
	_, err = conn.Exec(ctx, q, args...)
	require.NoError(t, err, "exec %q", q)
}

// receiptLeaf returns a receipt-shaped leaf of about size bytes (at least
// the size of its fields).
func receiptLeaf(receiptID, actionID string, seq int, status string, size int) []byte {
	head := fmt.Sprintf(`{"action_id":%q,"agent_id":"agent-1","issued_at":"2026-05-01T09:00:00Z",`+
		`"receipt_id":%q,"seq":%d,"spec":"oars.receipt.v1","status":%q,"tenant_id":"tenant-a","pad":"`,
		actionID, receiptID, seq, status)
	pad := max(size-len(head)-2, 0)
	return []byte(head + strings.Repeat("x", pad) + `"}`)
}
