package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/storetest"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests run against the PostgreSQL server named by BATON_TEST_POSTGRES
// (a postgres:// URL; scripts/with-postgres.sh starts a throwaway one and
// sets it). Each test gets its own schema, so tests run in parallel on one
// database. Without the variable the tests are skipped, except in CI
// (CI=true), where they must run.

// baseURL returns the test database URL or skips (fails in CI) the test.
func baseURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv("BATON_TEST_POSTGRES")
	if u == "" {
		if os.Getenv("CI") == "true" {
			tb.Fatal("BATON_TEST_POSTGRES is not set; CI must run the PostgreSQL tests (run them under scripts/with-postgres.sh)")
		}
		tb.Skip("BATON_TEST_POSTGRES is not set; run under scripts/with-postgres.sh to test the PostgreSQL store")
	}
	return u
}

var (
	adminOnce sync.Once
	adminPool *pgxpool.Pool
	adminErr  error
)

// admin returns a pool on the test database for creating and dropping
// schemas.
func admin(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	u := baseURL(tb)
	adminOnce.Do(func() {
		cfg, err := pgxpool.ParseConfig(u)
		if err != nil {
			adminErr = err
			return
		}
		cfg.MaxConns = 4
		adminPool, adminErr = pgxpool.NewWithConfig(context.Background(), cfg)
	})
	if adminErr != nil {
		tb.Fatalf("connect to %s: %v", u, adminErr)
	}
	return adminPool
}

// schemaURL creates an empty schema, dropped when the test ends, and
// returns the URL of the test database with the schema as search_path.
func schemaURL(tb testing.TB) string {
	tb.Helper()
	pool := admin(tb)
	var b [6]byte
	rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	if _, err := pool.Exec(ctx, pgtest.SharedExtensionsSQL); err != nil {
		tb.Fatalf("create extensions: %v", err)
	}
	if _, err := pool.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		if _, err := pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(baseURL(tb))
	if err != nil {
		tb.Fatalf("BATON_TEST_POSTGRES: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	if q.Get("pool_max_conns") == "" {
		q.Set("pool_max_conns", "6")
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// openStore opens a store on a fresh schema; it is closed when the test ends.
func openStore(tb testing.TB) *Store {
	tb.Helper()
	return openAt(tb, schemaURL(tb))
}

func openAt(tb testing.TB, u string) *Store {
	tb.Helper()
	s, err := Open(context.Background(), u)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	baseURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(context.Background(), schemaURL(t))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return s // the suite closes it
	})
}

// TestOpenConcurrentMigration opens several stores on one fresh schema at
// once: the advisory lock serializes their migrations and all succeed.
func TestOpenConcurrentMigration(t *testing.T) {
	u := schemaURL(t)
	const n = 8
	var wg sync.WaitGroup
	stores := make([]*Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(context.Background(), u) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open %d: %v", i, err)
			continue
		}
		stores[i].Close()
	}
	s := openAt(t, u)
	var v string
	if err := s.pool.QueryRow(context.Background(), "SELECT value FROM baton_meta WHERE key = 'schema_version'").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != strconv.Itoa(SchemaVersion()) {
		t.Errorf("schema_version = %s, want %d", v, SchemaVersion())
	}
	// The data survives reopening (nothing is re-created).
	if err := s.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{{ID: "r"}}}); err != nil {
		t.Fatal(err)
	}
	s2 := openAt(t, u)
	if _, err := s2.RunGet(context.Background(), "r"); err != nil {
		t.Errorf("RunGet after reopen: %v", err)
	}
}

func TestOpenSchemaTooNew(t *testing.T) {
	u := schemaURL(t)
	s := openAt(t, u)
	if _, err := s.pool.Exec(context.Background(), "UPDATE baton_meta SET value = $1 WHERE key = 'schema_version'",
		strconv.Itoa(SchemaVersion()+1)); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(context.Background(), u)
	if err == nil {
		s2.Close()
		t.Fatal("Open of a newer schema succeeded")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Open: %v, want ErrSchemaTooNew", err)
	}
}

func TestOpenNotBatonStore(t *testing.T) {
	u := schemaURL(t)
	pu, _ := url.Parse(u)
	schema := pu.Query().Get("search_path")
	if _, err := admin(t).Exec(context.Background(), "CREATE TABLE "+schema+".runs (x int)"); err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), u)
	if err == nil {
		s.Close()
		t.Fatal("Open of a foreign runs table succeeded")
	}
	if !errors.Is(err, store.ErrNotBatonStore) {
		t.Errorf("Open: %v, want ErrNotBatonStore", err)
	}

	// Unrelated tables are fine: the schema is initialized next to them.
	u2 := schemaURL(t)
	pu, _ = url.Parse(u2)
	if _, err := admin(t).Exec(context.Background(), "CREATE TABLE "+pu.Query().Get("search_path")+".other (x int)"); err != nil {
		t.Fatal(err)
	}
	openAt(t, u2)
}

func TestOpenMissingSchema(t *testing.T) {
	u, _ := url.Parse(baseURL(t))
	q := u.Query()
	q.Set("search_path", "no_such_schema_here")
	u.RawQuery = q.Encode()
	s, err := Open(context.Background(), u.String())
	if err == nil {
		s.Close()
		t.Fatal("Open with a missing schema succeeded")
	}
}

// TestGenericPlansFollowTableGrowth: statements prepared while task_runs
// is empty (a new database) and planned once for all parameters (a generic
// plan, which PostgreSQL keeps until the next analyze) still find a task
// run by its primary key once the table holds a large map, and a run's
// task runs in creation order through task_runs_order. Before migration
// 0015 the lookup's plan read task_runs_order, all of the run's entries,
// per lookup.
func TestGenericPlansFollowTableGrowth(t *testing.T) {
	t.Parallel()
	s := openAt(t, schemaURL(t)+"&plan_cache_mode=force_generic_plan")
	ctx := context.Background()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	// As sqlcore's TaskRunList writes it (TestTaskRunListQuery).
	const list = "SELECT id, state FROM task_runs WHERE run_id = $1 AND created_at >= 0 ORDER BY created_at, id LIMIT $2 OFFSET $3"
	statements := []struct{ name, sql, args, index string }{
		{"lookup", "SELECT state FROM task_runs WHERE run_id = $1 AND key = $2 AND id = $3", "('r', 'm/0.7', 'id-7')", "task_runs_pkey"},
		{"list", list, "('r', 50, 0)", "task_runs_order"},
	}
	for _, c := range statements {
		if _, err := conn.Exec(ctx, "PREPARE "+c.name+" AS "+c.sql); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "EXECUTE "+c.name+c.args); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, `INSERT INTO task_runs (id, run_id, key, task, state, created_at)
		SELECT 'id-' || n, 'r', 'm/0.' || n, 'm', 'PENDING', n FROM generate_series(1, 20000) n`); err != nil {
		t.Fatal(err)
	}
	for _, c := range statements {
		var plan strings.Builder
		rows, err := conn.Query(ctx, "EXPLAIN (COSTS OFF) EXECUTE "+c.name+c.args)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(plan.String(), c.index) {
			t.Errorf("generic plan of the %s after the table grew:\n%s; want one through %s", c.name, plan.String(), c.index)
		}
	}
}
