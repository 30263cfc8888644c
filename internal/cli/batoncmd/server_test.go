package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/cli/servecmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// apiTest is a real API server on a temporary SQLite store.
type apiTest struct {
	URL string
	DB  string
	St  store.Store
}

func apiTestServer(t *testing.T) *apiTest {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db := filepath.Join(dir, "baton.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("blob.Open: %v", err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Stop()
		st.Close()
	})
	return &apiTest{URL: ts.URL, DB: db, St: st}
}

// batonWith adapts Baton with cfg to startBaton; run is Baton without a
// configuration (no example flows for dev).
func batonWith(cfg servecmd.Config) func(ctx context.Context, args []string, env *cli.Env) int {
	return func(ctx context.Context, args []string, env *cli.Env) int { return Baton(ctx, args, env, cfg) }
}

var run = batonWith(servecmd.Config{})

// apiTestRun runs baton with args and the given environment variables.
func apiTestRun(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	code = Baton(context.Background(), args, env, servecmd.Config{})
	return code, out.String(), errb.String()
}

// create creates a run through the CLI and returns its id.
func (a *apiTest) create(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errOut := apiTestRun(t, nil, append([]string{"--server", a.URL, "runs", "create"}, args...)...)
	if code != cli.ExitOK {
		t.Fatalf("runs create %v: exit %d: %s", args, code, errOut)
	}
	id := strings.TrimSpace(out)
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("runs create should print one run id, got %q", out)
	}
	return id
}

// seedRun writes a run in the given state into the server's store.
func (a *apiTest) seedRun(t *testing.T, id string, state store.RunState) {
	t.Helper()
	now := time.Now()
	r := store.Run{ID: id, Flow: "seeded", State: state, Attempt: 1, Queue: apitype.DefaultQueue,
		Parameters: json.RawMessage(`null`), CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}
	if state == store.RunFailed {
		r.Error = &store.ErrorInfo{Message: "boom"}
	}
	if err := a.St.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{r}}); err != nil {
		t.Fatalf("BatchWrite: %v", err)
	}
}

func TestAPIRunsCreateListShowLogs(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello", "--params", `{"n":1}`)
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if !strings.Contains(errOut, "run "+id+" is waiting: no live worker") {
		t.Errorf("create should say why the run waits on stderr: %q", errOut)
	}

	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	runs := runsTestDecode[[]map[string]any](t, out)
	if len(runs) != 1 || runs[0]["id"] != id || runs[0]["state"] != "SCHEDULED" || runs[0]["queue"] != "default" ||
		runs[0]["flow"] != "hello" {
		t.Errorf("list --json: %s", out)
	}
	for _, k := range []string{"id", "flow", "state", "attempt", "created_at", "started_at", "ended_at", "parameters", "result", "error"} {
		if _, ok := runs[0][k]; !ok {
			t.Errorf("list --json: run object lacks %q: %s", k, out)
		}
	}

	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "runs", "list")
	if code != cli.ExitOK || !strings.Contains(out, "ID") || !strings.Contains(out, id) || !strings.Contains(out, "SCHEDULED") {
		t.Errorf("list: exit %d:\n%s", code, out)
	}
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "runs", "list", "--state", "failed")
	if code != cli.ExitOK || strings.TrimSpace(out) != "No runs found." {
		t.Errorf("list --state failed: exit %d:\n%s", code, out)
	}
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "runs", "list", "--json", "--flow", "other")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --flow other --json: exit %d: %q", code, out)
	}

	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "show", id, "--json")
	if code != cli.ExitOK {
		t.Fatalf("show: exit %d: %s", code, errOut)
	}
	d := runsTestDecode[map[string]any](t, out)
	if d["id"] != id || d["state"] != "SCHEDULED" {
		t.Errorf("show --json: %s", out)
	}
	if p, _ := json.Marshal(d["parameters"]); string(p) != `{"n":1}` {
		t.Errorf("show --json: parameters %s", p)
	}
	if trs, ok := d["task_runs"].([]any); !ok || len(trs) != 0 {
		t.Errorf("show --json: task_runs should be an empty array: %s", out)
	}
	if evs, ok := d["events"].([]any); !ok || len(evs) == 0 {
		t.Errorf("show --json: events should hold the creation: %s", out)
	}

	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "runs", "show", id)
	if code != cli.ExitOK || !regexp.MustCompile(`State:\s+SCHEDULED`).MatchString(out) || !strings.Contains(out, `{"n":1}`) {
		t.Errorf("show: exit %d:\n%s", code, out)
	}

	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "logs", id)
	if code != cli.ExitOK || out != "" {
		t.Errorf("logs: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	code, _, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "logs", id, "--task", "nope")
	if code != cli.ExitUsage || !strings.Contains(errOut, `no task with key "nope"`) {
		t.Errorf("logs --task nope: exit %d: %s", code, errOut)
	}
}

// The client mode prints what the local mode prints for the same store.
func TestAPIRunsSameOutputAsLocal(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(filepath.Dir(db), "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	for _, args := range [][]string{
		{"runs", "list", "--json"},
		{"runs", "list"},
		{"runs", "list", "--flow", "etl", "--state", "completed"},
		{"runs", "show", "r1", "--json"},
		{"runs", "show", "r2"},
		{"runs", "show", "r3", "--json"},
		{"runs", "logs", "r1"},
		{"runs", "logs", "r1", "--task", "extract"},
		{"runs", "logs", "r1", "--search", "cache"},
		{"runs", "logs", "r1", "--level", "WARN"},
	} {
		lcode, lout, lerr := apiTestRun(t, nil, append([]string{"--db", db}, args...)...)
		rcode, rout, rerr := apiTestRun(t, nil, append([]string{"--server", ts.URL}, args...)...)
		if lcode != cli.ExitOK || rcode != cli.ExitOK {
			t.Errorf("%v: local exit %d (%s), server exit %d (%s)", args, lcode, lerr, rcode, rerr)
			continue
		}
		if lout != rout {
			t.Errorf("%v: output differs\nlocal:\n%s\nserver:\n%s", args, lout, rout)
		}
	}
}

func TestAPIRunsCreateIdempotencyKey(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	id1 := a.create(t, "hello", "--idempotency-key", "k1")
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello", "--idempotency-key", "k1", "--json")
	if code != cli.ExitOK {
		t.Fatalf("second create: exit %d: %s", code, errOut)
	}
	run := runsTestDecode[map[string]any](t, out)
	if run["id"] != id1 {
		t.Errorf("same idempotency key: got run %v, want %s", run["id"], id1)
	}
	if id3 := a.create(t, "hello", "--idempotency-key", "k2"); id3 == id1 {
		t.Errorf("another key returned the same run %s", id3)
	}
	if id4 := a.create(t, "hello", "--queue", "q9"); id4 == id1 {
		t.Errorf("no key returned the same run %s", id4)
	}
}

func TestAPIRunsCreateParams(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	file := filepath.Join(t.TempDir(), "params.json")
	if err := os.WriteFile(file, []byte(`{"from":"file"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello", "--params", "@"+file, "--json")
	if code != cli.ExitOK {
		t.Fatalf("--params @file: exit %d: %s", code, errOut)
	}
	if p, _ := json.Marshal(runsTestDecode[map[string]any](t, out)["parameters"]); string(p) != `{"from":"file"}` {
		t.Errorf("--params @file: parameters %s", p)
	}
	for _, params := range []string{`{bad`, `{"a":1`, `@` + filepath.Join(t.TempDir(), "missing.json")} {
		code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello", "--params", params)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "--params") {
			t.Errorf("--params %s: exit %d, stdout %q, stderr %s", params, code, out, errOut)
		}
	}

	// A flow a worker registered: the server checks the parameters (400).
	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Host: "h", PID: 1, Queues: []string{"default"},
		Capacity: 1, Flows: []api.FlowInfo{{Name: "greet", Parameters: map[string]any{"type": "object", "additionalProperties": false,
			"properties": map[string]any{"name": map[string]any{"type": "string"}}}}}})
	if err != nil {
		t.Fatalf("RegisterWorker: %v", err)
	}
	code, _, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "create", "greet", "--params", `{"bogus":1}`)
	if code != cli.ExitUsage || !strings.Contains(errOut, `unknown parameter "bogus"`) {
		t.Errorf("server 400: exit %d: %s", code, errOut)
	}
}

func TestAPIRunsCancel(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	id := a.create(t, "hello")
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "cancel", id)
	if code != cli.ExitOK || !strings.Contains(out, "CANCELLED") {
		t.Fatalf("cancel: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "runs", "show", id, "--json")
	if code != cli.ExitOK || runsTestDecode[map[string]any](t, out)["state"] != "CANCELLED" {
		t.Errorf("show after cancel: exit %d: %s", code, out)
	}
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "cancel", id)
	if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "CANCELLED") {
		t.Errorf("cancel again: exit %d, stdout %q, stderr %s", code, out, errOut)
	}

	id2 := a.create(t, "hello")
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "cancel", id2, "--json")
	if code != cli.ExitOK {
		t.Fatalf("cancel --json: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[map[string]any](t, out); r["id"] != id2 || r["state"] != "CANCELLED" {
		t.Errorf("cancel --json: %s", out)
	}

	a.seedRun(t, "done1", store.RunCompleted)
	code, _, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "cancel", "done1")
	if code != cli.ExitUsage || !strings.Contains(errOut, "COMPLETED") {
		t.Errorf("cancel a completed run: exit %d: %s", code, errOut)
	}
}

func TestAPIRunsRetry(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	id := a.create(t, "hello")
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "retry", id)
	if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "SCHEDULED") || !strings.Contains(errOut, "FAILED") {
		t.Errorf("retry a scheduled run: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
	a.seedRun(t, "done1", store.RunCompleted)
	code, _, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "retry", "done1")
	if code != cli.ExitUsage || !strings.Contains(errOut, "COMPLETED") {
		t.Errorf("retry a completed run: exit %d: %s", code, errOut)
	}

	a.seedRun(t, "failed1", store.RunFailed)
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "retry", "failed1", "--json")
	if code != cli.ExitOK {
		t.Fatalf("retry a failed run: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[map[string]any](t, out); r["id"] != "failed1" || r["state"] != "SCHEDULED" || r["attempt"] != 2.0 {
		t.Errorf("retry --json: %s", out)
	}
}

func TestAPIRunsUnknownRun(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	for _, sub := range []string{"show", "logs", "cancel", "retry"} {
		code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", sub, "zzz")
		if code != cli.ExitUsage || out != "" {
			t.Errorf("%s: exit %d, want %d; stdout %q", sub, code, cli.ExitUsage, out)
		}
		if want := `baton: unknown run id "zzz"; list runs with: baton runs list`; strings.TrimSpace(errOut) != want {
			t.Errorf("%s: stderr %q, want %q", sub, errOut, want)
		}
	}
}

func TestAPIRunsNeedServer(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"runs", "create", "hello"},
		{"runs", "cancel", "r1"},
		{"runs", "retry", "r1"},
	} {
		code, out, errOut := apiTestRun(t, nil, args...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, "--server") || !strings.Contains(errOut, "baton dev") {
			t.Errorf("%v without a server: exit %d, stdout %q, stderr %s", args, code, out, errOut)
		}
	}
	code, _, errOut := apiTestRun(t, nil, "--server", "ftp://x", "runs", "list")
	if code != cli.ExitUsage || !strings.Contains(errOut, "invalid server URL") {
		t.Errorf("bad --server: exit %d: %s", code, errOut)
	}
	// Nothing listens there: not a usage error.
	code, _, errOut = apiTestRun(t, nil, "--server", "http://127.0.0.1:1", "runs", "list")
	if code != cli.ExitFailed || !strings.Contains(errOut, "unreachable") {
		t.Errorf("unreachable server: exit %d: %s", code, errOut)
	}
}

func TestAPIBatonServerEnv(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	vars := map[string]string{"BATON_SERVER": a.URL}
	code, out, errOut := apiTestRun(t, vars, "runs", "create", "hello")
	if code != cli.ExitOK {
		t.Fatalf("create with BATON_SERVER: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	code, out, errOut = apiTestRun(t, vars, "runs", "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("list with BATON_SERVER: exit %d: %s", code, errOut)
	}
	if ids := runsTestIDs(runsTestDecode[[]map[string]any](t, out)); len(ids) != 1 || ids[0] != id {
		t.Errorf("list with BATON_SERVER: %v, want [%s]", ids, id)
	}
	// --server wins over BATON_SERVER.
	b := apiTestServer(t)
	code, out, _ = apiTestRun(t, vars, "--server", b.URL, "runs", "list", "--json")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("--server over BATON_SERVER: exit %d: %s", code, out)
	}
}

func TestAPIWorkersAndQueues(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "workers", "list", "--json")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("workers list --json, none: exit %d: %q %s", code, out, errOut)
	}
	// With nothing queued, the default queue (always declared) alone.
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "queues", "list", "--json")
	if qs := runsTestDecode[[]apitype.Queue](t, out); code != cli.ExitOK || len(qs) != 1 || qs[0].Queue != "default" ||
		!qs[0].Declared || qs[0].RunsScheduled != 0 {
		t.Errorf("queues list --json, none: exit %d: %q", code, out)
	}

	c, err := remote.New(a.URL)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := c.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w1", Host: "host1", PID: 42,
		Queues: []string{"default", "gpu"}, Capacity: 4, Flows: []api.FlowInfo{{Name: "hello"}}, Tasks: []string{"T"}})
	if err != nil {
		t.Fatalf("RegisterWorker: %v", err)
	}
	a.create(t, "other", "--queue", "q1")

	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "workers", "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("workers list --json: exit %d: %s", code, errOut)
	}
	ws := runsTestDecode[[]map[string]any](t, out)
	if len(ws) != 1 || ws[0]["id"] != reg.ID || ws[0]["name"] != "w1" || ws[0]["host"] != "host1" {
		t.Fatalf("workers list --json: %s", out)
	}
	for _, k := range []string{"id", "name", "host", "pid", "queues", "flows", "tasks", "capacity", "started_at", "last_seen", "runs"} {
		if _, ok := ws[0][k]; !ok {
			t.Errorf("worker object lacks %q: %s", k, out)
		}
	}
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "workers", "list")
	if code != cli.ExitOK || !strings.Contains(out, "LAST SEEN") || !strings.Contains(out, "w1") || !strings.Contains(out, "default,gpu") {
		t.Errorf("workers list: exit %d:\n%s", code, out)
	}

	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "queues", "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("queues list --json: exit %d: %s", code, errOut)
	}
	qs := runsTestDecode[[]map[string]any](t, out)
	var q1 map[string]any
	for _, q := range qs {
		if q["queue"] == "q1" {
			q1 = q
		}
	}
	if q1 == nil || q1["runs_scheduled"] != 1.0 || q1["oldest_waiting"] == nil {
		t.Fatalf("queues list --json: %s", out)
	}
	for _, k := range []string{"queue", "runs_scheduled", "runs_running", "tasks_pending", "tasks_running", "oldest_waiting"} {
		if _, ok := q1[k]; !ok {
			t.Errorf("queue object lacks %q: %s", k, out)
		}
	}
	code, out, _ = apiTestRun(t, nil, "--server", a.URL, "queues", "list")
	if code != cli.ExitOK || !strings.Contains(out, "OLDEST WAITING") || !strings.Contains(out, "q1") {
		t.Errorf("queues list: exit %d:\n%s", code, out)
	}

	// Without a server: the same, read from the store.
	code, out, errOut = apiTestRun(t, nil, "--db", a.DB, "queues", "list", "--json")
	if code != cli.ExitOK || len(runsTestDecode[[]map[string]any](t, out)) != len(qs) {
		t.Errorf("queues list --db: exit %d: %s %s", code, out, errOut)
	}
	code, out, errOut = apiTestRun(t, nil, "--db", a.DB, "workers", "list", "--json")
	if code != cli.ExitOK || !strings.HasPrefix(strings.TrimSpace(out), "[") {
		t.Errorf("workers list --db: exit %d: %s %s", code, out, errOut)
	}
}

func TestRetentionCommand(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t) // runs that ended in March 2025
	code, out, errOut := apiTestRun(t, nil, "--db", db, "retention", "run", "--older-than", "36500d", "--json")
	if code != cli.ExitOK {
		t.Fatalf("retention: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[apitype.RetentionResult](t, out); r.DeletedRuns != 0 {
		t.Errorf("retention 100 years: %+v", r)
	}
	code, out, errOut = apiTestRun(t, nil, "--db", db, "retention", "run", "--older-than", "1d", "--json")
	if code != cli.ExitOK {
		t.Fatalf("retention: exit %d: %s", code, errOut)
	}
	if r := runsTestDecode[apitype.RetentionResult](t, out); r.DeletedRuns != 3 {
		t.Errorf("retention 1d: %+v, want 3 runs deleted", r)
	}
	code, out, _ = apiTestRun(t, nil, "--db", db, "runs", "list", "--json")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("runs left after retention: %s", out)
	}

	a := apiTestServer(t)
	code, out, errOut = apiTestRun(t, nil, "--server", a.URL, "retention", "run", "--older-than", "30d")
	if code != cli.ExitOK || !strings.Contains(out, "Deleted 0 runs and 0 blobs") {
		t.Errorf("retention through the server: exit %d: %q %s", code, out, errOut)
	}
	for _, args := range [][]string{
		{"--server", a.URL, "retention", "run"},
		{"--server", a.URL, "retention", "run", "--older-than", "soon"},
		{"--db", db, "retention", "run", "--older-than", "-3d"},
	} {
		if code, _, errOut := apiTestRun(t, nil, args...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d: %s", args, code, cli.ExitUsage, errOut)
		}
	}
}

func TestServerRefusesRemoteAddr(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8420", "example.com:80"} {
		code, _, errOut := apiTestRun(t, nil, "--db", db, "server", "--addr", addr)
		if code != cli.ExitUsage || !strings.Contains(errOut, "--allow-remote") {
			t.Errorf("server --addr %s: exit %d: %s", addr, code, errOut)
		}
		code, _, errOut = apiTestRun(t, nil, "--db", db, "dev", "--addr", addr)
		if code != cli.ExitUsage || !strings.Contains(errOut, "loopback") {
			t.Errorf("dev --addr %s: exit %d: %s", addr, code, errOut)
		}
	}
	for _, args := range [][]string{
		{"server", "--addr", "nonsense"},
		{"server", "--retention", "soon"},
		{"server", "--lease-timeout", "1ms"},
	} {
		if code, _, errOut := apiTestRun(t, nil, append([]string{"--db", db}, args...)...); code != cli.ExitUsage {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a refused server should not create the store")
	}
	// A user's program has no server command: it does not link the server.
	var errb bytes.Buffer
	env := &cli.Env{Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"--db", db, "server"}, helloProgram(), env); code != cli.ExitUsage ||
		!strings.Contains(errb.String(), `unexpected argument "server"`) {
		t.Errorf("a program's server command: exit %d: %s", code, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed (and replaced) by each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// next returns what s holds and a channel closed at the next write.
func (s *syncBuffer) next() (string, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.b.String(), s.changed
}

// await returns what s holds once cond holds for it, waiting for writes
// (not polling), or ok false when stop is closed or d passes first.
func (s *syncBuffer) await(d time.Duration, stop <-chan int, cond func(string) bool) (out string, ok bool) {
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		out, changed := s.next()
		if cond(out) {
			return out, true
		}
		select {
		case <-changed:
		case <-timeout.C:
			return out, false
		case <-stop:
			return s.String(), false
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var servingRE = regexp.MustCompile(`baton: serving API on (http://\S+)`)

// startBaton runs a long-running baton command (server, dev) and returns the
// URL it serves, and a function that stops it and returns its exit code.
func startBaton(t *testing.T, env *cli.Env, run func(ctx context.Context, args []string, env *cli.Env) int, args ...string) (url string, stop func() int, stderr *syncBuffer) {
	t.Helper()
	errb, outb := &syncBuffer{}, &syncBuffer{}
	env.Stdout, env.Stderr = outb, errb
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, env) }()
	exited := make(chan int)
	out, ok := errb.await(20*time.Second, exited, func(s string) bool {
		select {
		case code := <-done:
			done <- code // for stop
			close(exited)
		default:
		}
		return servingRE.MatchString(s)
	})
	if !ok {
		cancel()
		t.Fatalf("%v did not start serving (or exited first): %s", args, out)
	}
	url = servingRE.FindStringSubmatch(out)[1]
	stopped := false
	stop = func() int {
		if stopped {
			return -1
		}
		stopped = true
		cancel()
		select {
		case code := <-done:
			return code
		case <-time.After(30 * time.Second):
			t.Fatalf("%v did not stop: %s", args, errb.String())
			return -1
		}
	}
	t.Cleanup(func() { stop() })
	return url, stop, errb
}

func TestServerCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	url, stop, errb := startBaton(t, &cli.Env{}, run, "--db", db, "server", "--addr", "127.0.0.1:0", "--retention", "0")
	code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "create", "hello")
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("server exit %d: %s", code, errb.String())
	}
	// The run is in the store the server used.
	code, out, errOut = apiTestRun(t, nil, "--db", db, "runs", "show", id, "--json")
	if code != cli.ExitOK || runsTestDecode[map[string]any](t, out)["state"] != "SCHEDULED" {
		t.Errorf("run in the store after the server stopped: exit %d: %s %s", code, out, errOut)
	}
}

// helloProgram defines a flow "hello" that returns "hi NAME".
func helloProgram() progcmd.Program {
	type params struct {
		Name string `json:"name"`
	}
	return progcmd.Program{Name: "prog", Flows: []*engine.FlowDef{{
		Name: "hello",
		Body: func(fc *engine.FlowCtx, raw json.RawMessage) (any, error) {
			var p params
			if len(raw) > 0 && string(raw) != "null" {
				if err := json.Unmarshal(raw, &p); err != nil {
					return nil, err
				}
			}
			return "hi " + p.Name, nil
		},
	}}}
}

// waitRun polls `runs show` until the run reaches state.
func waitRun(t *testing.T, url, id, state string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "show", id, "--json")
		if code != cli.ExitOK {
			t.Fatalf("show: exit %d: %s", code, errOut)
		}
		r := runsTestDecode[map[string]any](t, out)
		if r["state"] == state {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("run %s did not reach %s: %s", id, state, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestDevCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	env := &cli.Env{}
	url, stop, errb := startBaton(t, env, batonWith(servecmd.Config{Examples: helloProgram()}), "--db", db, "dev", "--addr", "127.0.0.1:0")
	// The welcome is printed just after the "serving" line: wait for all of it.
	out, _ := env.Stdout.(*syncBuffer).await(10*time.Second, nil, func(s string) bool { return strings.Contains(s, "Ctrl+C") })
	for _, want := range []string{url, "export BATON_SERVER=" + url, "baton runs create hello", "baton runs list"} {
		if !strings.Contains(out, want) {
			t.Errorf("welcome lacks %q:\n%s", want, out)
		}
	}
	code, o, errOut := apiTestRun(t, nil, "--server", url, "runs", "create", "hello", "--params", `{"name":"dev"}`)
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	r := waitRun(t, url, strings.TrimSpace(o), "COMPLETED")
	if r["result"] != "hi dev" {
		t.Errorf("result %v, want \"hi dev\"", r["result"])
	}
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("dev exit %d: %s", code, errb.String())
	}
}

func TestWorkerCommand(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	prog := helloProgram()

	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"worker"}, prog, env); code != cli.ExitUsage ||
		!strings.Contains(errb.String(), "--server") {
		t.Errorf("worker without a server: exit %d: %s", code, errb.String())
	}
	for _, args := range [][]string{
		{"worker", "--server", a.URL, "--slots", "gpu"},
		{"worker", "--server", a.URL, "--concurrency", "0"},
		{"worker", "--server", "nonsense"},
	} {
		errb.Reset()
		if code := progcmd.Main(context.Background(), args, prog, env); code != cli.ExitUsage {
			t.Errorf("%v: exit %d: %s", args, code, errb.String())
		}
	}

	id := a.create(t, "hello", "--params", `{"name":"worker"}`, "--queue", "q2")
	env = &cli.Env{Getenv: func(k string) string {
		if k == "BATON_SERVER" {
			return a.URL
		}
		return ""
	}}
	// The worker announces itself through its logger, not "serving API":
	// start it by hand.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	werr := &syncBuffer{}
	env.Stdout, env.Stderr = io.Discard, werr
	done := make(chan int, 1)
	go func() {
		done <- progcmd.Main(ctx, []string{"worker", "--queue", "q2", "--name", "w-test", "--slots", "q2=2"}, prog, env)
	}()
	r := waitRun(t, a.URL, id, "COMPLETED")
	if r["result"] != "hi worker" {
		t.Errorf("result %v", r["result"])
	}
	code, o, _ := apiTestRun(t, nil, "--server", a.URL, "workers", "list", "--json")
	if ws := runsTestDecode[[]map[string]any](t, o); code != cli.ExitOK || len(ws) != 1 || ws[0]["name"] != "w-test" {
		t.Errorf("workers list: %s", o)
	}
	cancel()
	select {
	case code := <-done:
		if code != cli.ExitOK {
			t.Errorf("worker exit %d: %s", code, werr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("worker did not stop: %s", werr.String())
	}

	// The user binary's runs commands take --server too.
	var out2, errb2 bytes.Buffer
	env2 := &cli.Env{Stdout: &out2, Stderr: &errb2, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"runs", "list", "--server", a.URL, "--json"}, prog, env2); code != cli.ExitOK {
		t.Fatalf("prog runs list --server: exit %d: %s", code, errb2.String())
	}
	if ids := runsTestIDs(runsTestDecode[[]map[string]any](t, out2.String())); len(ids) != 1 || ids[0] != id {
		t.Errorf("prog runs list --server: %v", ids)
	}
}

// TestPostgres serves and reads a PostgreSQL store given by --db; it runs
// when BATON_TEST_POSTGRES holds a database URL.
func TestPostgres(t *testing.T) {
	t.Parallel()
	pg := os.Getenv("BATON_TEST_POSTGRES")
	if pg == "" {
		t.Skip("BATON_TEST_POSTGRES is not set")
	}
	home := t.TempDir()
	vars := map[string]string{"BATON_HOME": home}
	env := &cli.Env{Getenv: func(k string) string { return vars[k] }}
	url, stop, errb := startBaton(t, env, run, "--db", pg, "server", "--addr", "127.0.0.1:0", "--blobs", filepath.Join(home, "b"))
	code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "create", "hello", "--queue", "pg-cli-test")
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("server exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(home, "b")); err != nil {
		t.Errorf("--blobs directory: %v", err)
	}
	code, out, errOut = apiTestRun(t, vars, "--db", pg, "runs", "show", id, "--json")
	if code != cli.ExitOK || runsTestDecode[map[string]any](t, out)["state"] != "SCHEDULED" {
		t.Fatalf("show from PostgreSQL: exit %d: %s %s", code, out, errOut)
	}
	if dir, err := (&cli.Env{Getenv: env.Getenv}).Location().BlobDir(pg); err != nil || dir != filepath.Join(home, "blobs") {
		t.Errorf("default blob directory of PostgreSQL: %s %v; want $BATON_HOME/blobs", dir, err)
	}
	if code, _, errOut := apiTestRun(t, vars, "--db", pg, "queues", "list", "--json"); code != cli.ExitOK {
		t.Errorf("queues list from PostgreSQL: exit %d: %s", code, errOut)
	}
}
