package server_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
)

func message(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	m, _ := e["message"].(string)
	return m
}

func TestDeploymentsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	// A worker registered flow "f" with a schema: n is a required integer.
	if err := b.st.FlowUpsert(ctx, store.FlowUpsertParams{Flows: []store.Flow{{Name: "f",
		Parameters: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]}`)}}}); err != nil {
		t.Fatal(err)
	}
	p := apitype.Prefix + "/deployments"
	for _, tc := range []struct{ body, want string }{
		{`{"name":"x","flow":"f","schedules":[{"cron":"61 * * * *"}]}`, "cron"},
		{`{"name":"x","flow":"f","schedules":[{"cron":"0 3 * * *","timezone":"Mars/Olympus"}]}`, "timezone"},
		{`{"name":"x","flow":"f","schedules":[{"interval":"often"}]}`, "interval"},
		{`{"name":"x","flow":"f","max_active":-1}`, `"max_active" must be 0`},
		{`{"name":"x","flow":"f","collision":"later"}`, `"collision": unknown policy "later"`},
		{`{"name":"x","flow":"f","parameters":{"n":"three"}}`, `"n"`},
		{`{"flow":"f"}`, `"name" is required`},
	} {
		status, body := b.call(t, "POST", p, tc.body)
		if status != 400 || !strings.Contains(message(body), tc.want) {
			t.Errorf("POST %s: %d %v, want 400 naming %s", tc.body, status, body, tc.want)
		}
	}
	status, body := b.call(t, "POST", p, `{"name":"nightly","flow":"f","parameters":{"n":1},"schedules":[{"interval":"1m","overlap":"allow_all"}]}`)
	if status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	if status, _ := b.call(t, "POST", p, `{"name":"nightly","flow":"f"}`); status != 409 {
		t.Errorf("create twice: %d", status)
	}
	for _, path := range []string{p + "/missing", p + "/missing/next"} {
		if status, body := b.call(t, "GET", path, ""); status != 404 || !strings.Contains(message(body), `unknown deployment "missing"`) {
			t.Errorf("GET %s: %d %v", path, status, body)
		}
	}
	// Run with overrides validated against the schema.
	if status, body := b.call(t, "POST", p+"/nightly/run", `{"parameters":{"n":"x"}}`); status != 400 || !strings.Contains(message(body), `"n"`) {
		t.Errorf("run with a bad parameter: %d %v", status, body)
	}
	status, body = b.call(t, "POST", p+"/nightly/run", `{"parameters":{"n":7}}`)
	if status != 201 || body["deployment"] != "nightly" || !strings.Contains(mustJSON(body["parameters"]), `"n":7`) {
		t.Fatalf("run: %d %v", status, body)
	}
	// Preview.
	status, body = b.call(t, "GET", p+"/nightly/next?count=3", "")
	if fires, _ := body["fires"].([]any); status != 200 || len(fires) != 3 {
		t.Fatalf("next: %d %v", status, body)
	}
	// The scheduler creates the runs ahead; one not started by its planned
	// start plus the grace is late.
	if _, acted, err := b.srv.SchedulerPass(ctx); err != nil || !acted {
		t.Fatalf("pass: %v %v", acted, err)
	}
	b.clk.Advance(3 * time.Minute)
	status, body = b.call(t, "GET", apitype.Prefix+"/runs?state=LATE", "")
	runs, _ := body["runs"].([]any)
	if status != 200 || len(runs) == 0 {
		t.Fatalf("late runs: %d %v", status, body)
	}
	for _, r := range runs {
		if r.(map[string]any)["late"] != true {
			t.Fatalf("listed as LATE but not late: %v", r)
		}
	}
	// Pause with a note: the note is in the deployment and its history.
	if status, body := b.call(t, "POST", p+"/nightly/pause", `{"note":"lab closed"}`); status != 200 || body["pause_note"] != "lab closed" {
		t.Fatalf("pause: %d %v", status, body)
	}
	status, body = b.call(t, "GET", p+"/nightly", "")
	if status != 200 || !strings.Contains(mustJSON(body["history"]), `"reason":"lab closed"`) {
		t.Fatalf("show: %d %v", status, body)
	}
	if status, body := b.call(t, "POST", p+"/nightly/pause", `{"schedule":"nope"}`); status != 404 {
		t.Errorf("pause an unknown schedule: %d %v", status, body)
	}
	// Register is idempotent.
	decl := `{"flow":"f","parameters":{"n":2},"schedules":[{"cron":"0 3 * * *"}]}`
	if status, _ := b.call(t, "PUT", p+"/coded", decl); status != 201 {
		t.Fatalf("register: %d", status)
	}
	if status, _ := b.call(t, "PUT", p+"/coded", decl); status != 200 {
		t.Fatalf("register again: %d", status)
	}
	if status, _ := b.call(t, "DELETE", p+"/coded", ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	// Backfill twice creates the range once.
	bf := `{"from":"` + b.clk.Now().Add(-time.Hour).Format(time.RFC3339) + `","to":"` + b.clk.Now().Add(-50*time.Minute).Format(time.RFC3339) + `"}`
	status, body = b.call(t, "POST", p+"/nightly/backfill", bf)
	created, _ := body["created"].([]any)
	if status != 200 || len(created) != 10 {
		t.Fatalf("backfill: %d %v", status, body)
	}
	status, body = b.call(t, "POST", p+"/nightly/backfill", bf)
	if created, _ := body["created"].([]any); status != 200 || len(created) != 0 || body["existed"] != float64(10) {
		t.Fatalf("backfill again: %d %v", status, body)
	}
	// The OpenAPI document lists the routes.
	_, doc := b.call(t, "GET", apitype.Prefix+"/openapi.json", "")
	if !strings.Contains(mustJSON(doc["paths"]), "/api/v1/deployments/{name}/backfill") {
		t.Error("the OpenAPI document does not list the deployments routes")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// schedServer is a server without its own scheduler loop (passes are run
// by the test) on st, at clk.
func schedServer(t *testing.T, st store.Store, clk *clock.Fake) *server.Server {
	t.Helper()
	blobs, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Clock: clk, SchedulerInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv
}

// countDuplicates counts the runs of deployment dep that share a planned
// start with another.
func countDuplicates(t *testing.T, st store.Store, dep string) (runs, dups int) {
	t.Helper()
	list, err := st.DeploymentRuns(context.Background(), store.DeploymentRunsParams{Deployment: dep, Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[time.Time]bool{}
	for _, r := range list {
		if seen[r.PlannedAt()] {
			dups++
		}
		seen[r.PlannedAt()] = true
	}
	return len(list), dups
}

func createMinutely(t *testing.T, st store.Store, clk *clock.Fake) {
	t.Helper()
	_, _, err := st.DeploymentPut(context.Background(), store.DeploymentPutParams{Mode: store.PutCreate, At: clk.Now(),
		Deployment: store.Deployment{Name: "m", Flow: "f", Queue: "default", Collision: "queue", Hash: "h",
			Schedules: []store.DeploymentSchedule{{ID: "s1", Interval: time.Minute, Overlap: store.OverlapAllowAll,
				NextFire: clk.Now().Truncate(time.Minute).Add(time.Minute), CreatedAt: clk.Now()}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// TestSchedulersRaceOnSQLite: two servers on one SQLite file both
// schedule; the unique index keeps every fire time to one run.
func TestSchedulersRaceOnSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "baton.db")
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC))
	var srvs []*server.Server
	for range 2 {
		st, err := sqlite.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		srvs = append(srvs, schedServer(t, st, clk))
		if len(srvs) == 1 {
			createMinutely(t, st, clk)
		}
	}
	st, _ := sqlite.Open(context.Background(), path)
	defer st.Close()
	for range 30 {
		var wg sync.WaitGroup
		for _, srv := range srvs {
			wg.Go(func() {
				if _, _, err := srv.SchedulerPass(context.Background()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		clk.Advance(time.Minute)
	}
	if n, dups := countDuplicates(t, st, "m"); dups != 0 || n < 30 {
		t.Fatalf("%d runs, %d duplicates", n, dups)
	}
}

// TestSchedulerLockFailover: of two servers sharing PostgreSQL, one
// schedules; when its lock's connection is killed, the other takes over,
// and no fire time ever gets two runs.
func TestSchedulerLockFailover(t *testing.T) {
	t.Parallel()
	url := pgtest.SchemaURL(t)
	ctx := context.Background()
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC))
	var stores []*postgres.Store
	var srvs []*server.Server
	for range 2 {
		st, err := postgres.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		stores = append(stores, st)
		srvs = append(srvs, schedServer(t, st, clk))
	}
	createMinutely(t, stores[0], clk)
	pass := func(i int) bool {
		_, acted, err := srvs[i].SchedulerPass(ctx)
		if err != nil {
			t.Fatalf("server %d: %v", i, err)
		}
		return acted
	}
	if !pass(0) || pass(1) {
		t.Fatal("not exactly server 0 schedules")
	}
	// Both race for ten minutes: only the holder acts.
	for range 10 {
		clk.Advance(time.Minute)
		var wg sync.WaitGroup
		acted := make([]bool, 2)
		for i := range srvs {
			wg.Go(func() { acted[i] = pass(i) })
		}
		wg.Wait()
		if !acted[0] || acted[1] {
			t.Fatalf("acted %v, want only server 0", acted)
		}
	}
	// Kill the holder's lock connection, as if its process died.
	conn, err := pgx.Connect(ctx, os.Getenv("BATON_TEST_POSTGRES"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var killed int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_locks
		WHERE locktype = 'advisory' AND classid::int8 = x'73636864'::int8 AND objsubid = 2
		AND objid::int8 = (hashtext($1)::int8 & 4294967295)`, stores[0].Schema()).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("killed %d lock holders (%v)", killed, err)
	}
	// pg_terminate_backend only signals the backend: its locks go when it
	// has exited. Wait for that, as a dead process's would be gone.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var held int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND classid::int8 = x'73636864'::int8 AND objsubid = 2
			AND objid::int8 = (hashtext($1)::int8 & 4294967295) AND granted`, stores[0].Schema()).Scan(&held); err != nil {
			t.Fatal(err)
		}
		if held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed lock holder still holds the lock after 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	clk.Advance(time.Minute)
	if !pass(1) {
		t.Fatal("server 1 did not take over")
	}
	if pass(0) {
		t.Fatal("server 0 still schedules after losing its lock")
	}
	for range 5 {
		clk.Advance(time.Minute)
		if pass(0) || !pass(1) {
			t.Fatal("not exactly server 1 schedules")
		}
	}
	if n, dups := countDuplicates(t, stores[0], "m"); dups != 0 || n < 16 {
		t.Fatalf("%d runs, %d duplicates", n, dups)
	}
}
