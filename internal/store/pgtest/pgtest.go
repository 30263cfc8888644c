// Package pgtest gives tests outside the PostgreSQL backend a database of
// their own: an empty schema on the server named by BATON_TEST_POSTGRES
// (a postgres:// URL; scripts/with-postgres.sh starts a throwaway server
// and sets it), dropped when the test ends, so tests run in parallel on one
// database. Without the variable the test is skipped, except in CI
// (CI=true), where it fails.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

// SharedExtensionsSQL creates the extensions that Baton's migrations use
// (pg_trgm, 0014) in the schema public, which no test drops, unless the
// database has them: a migration creates a missing one in the schema of
// its tables, whose drop at the end of a test would take the indexes of
// the other tests' schemas with it. The advisory lock is the one of the
// migration, so that tests starting at once do not both create it. Run it
// before the tests' schemas are created.
const SharedExtensionsSQL = `SELECT pg_advisory_xact_lock(1650553967, hashtext('pg_trgm'));
CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public`

// SchemaURL creates an empty schema, dropped when the test ends, and
// returns the URL of the test database with the schema as search_path and
// a pool of at most 4 connections; the shared extensions are created first
// (SharedExtensionsSQL).
func SchemaURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("BATON_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("BATON_TEST_POSTGRES is not set; run the tests through scripts/with-postgres.sh")
		}
		tb.Skip("BATON_TEST_POSTGRES is not set; run under scripts/with-postgres.sh to test on PostgreSQL")
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "pgt_" + hex.EncodeToString(b[:])
	exec := func(sql string) error {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, sql)
		return err
	}
	if err := exec(SharedExtensionsSQL); err != nil {
		tb.Fatalf("create extensions: %v", err)
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if err := exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	pu, err := url.Parse(u)
	if err != nil {
		tb.Fatalf("BATON_TEST_POSTGRES: %v", err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	q.Set("pool_max_conns", "4")
	pu.RawQuery = q.Encode()
	return pu.String()
}
