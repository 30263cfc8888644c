package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/servecmd"
	"github.com/batonhq/baton/internal/version"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// runsTestBase is the creation time of the first seeded run.
var runsTestBase = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// runsTestSeed creates a store in a temporary directory holding:
//
//	r1 etl     COMPLETED  (task runs extract, load; load CACHED from r0)
//	r2 etl     FAILED     (task run extract FAILED, subflow step child -> r3)
//	r3 report  COMPLETED  (child of r2; result in the blob store)
//
// and returns the path of the database.
func runsTestSeed(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "baton.db")
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatalf("blob.Open: %v", err)
	}
	bigRef, err := blobs.Put([]byte(`{"rows":12345}`))
	if err != nil {
		t.Fatalf("blob Put: %v", err)
	}

	at := func(sec int) time.Time { return runsTestBase.Add(time.Duration(sec) * time.Second) }
	b := store.Batch{
		Runs: []store.Run{
			{ID: "r1", Flow: "etl", State: store.RunCompleted, Attempt: 1,
				Parameters: json.RawMessage(`{"day":"2025-03-14"}`), Result: json.RawMessage(`{"ok":true}`),
				CreatedAt: at(0), UpdatedAt: at(5), StartedAt: at(1), EndedAt: at(5)},
			{ID: "r2", Flow: "etl", State: store.RunFailed, Attempt: 2,
				Parameters: json.RawMessage(`{"day":"2025-03-15"}`),
				Error: &store.ErrorInfo{Message: "extract: connection refused", Type: "*net.OpError", Kind: "permanent",
					Chain: []string{"extract: connection refused", "connection refused"}},
				CreatedAt: at(10), UpdatedAt: at(20), StartedAt: at(11), EndedAt: at(20)},
			{ID: "r3", Flow: "report", State: store.RunCompleted, Attempt: 1,
				ParentRunID: "r2", ParentStepKey: "child", ResultRef: bigRef,
				CreatedAt: at(12), UpdatedAt: at(14), StartedAt: at(12), EndedAt: at(14)},
		},
		TaskRuns: []store.TaskRun{
			{ID: "t1", RunID: "r1", Key: "extract", Task: "Extract", State: store.TaskCompleted, Attempts: 1, FlowAttempt: 1,
				Input: json.RawMessage(`{"day":"2025-03-14"}`), Result: json.RawMessage(`[1,2,3]`),
				CreatedAt: at(1), StartedAt: at(1), EndedAt: at(3)},
			{ID: "t2", RunID: "r1", Key: "load", Task: "Load", State: store.TaskCached, Attempts: 0, FlowAttempt: 1,
				Result: json.RawMessage(`"loaded"`), CachedFrom: "t0", CachedFromRun: "r0",
				CreatedAt: at(3), StartedAt: at(3), EndedAt: at(3)},
			{ID: "t3", RunID: "r2", Key: "extract", Task: "Extract", State: store.TaskFailed, Attempts: 3, FlowAttempt: 2,
				Error:     &store.ErrorInfo{Message: "connection refused " + strings.Repeat("x", 200)},
				CreatedAt: at(11), StartedAt: at(11), EndedAt: at(19)},
			{ID: "t4", RunID: "r2", Key: "child", Task: "report", ChildRunID: "r3", State: store.TaskCompleted, Attempts: 1, FlowAttempt: 2,
				CreatedAt: at(12), StartedAt: at(12), EndedAt: at(14)},
		},
		Events: []store.Event{
			{RunID: "r1", To: "RUNNING", Cause: "engine", Message: "run started", At: at(1)},
			{RunID: "r1", TaskRunID: "t1", TaskKey: "extract", From: "PENDING", To: "RUNNING", Cause: "engine", At: at(1)},
			{RunID: "r1", TaskRunID: "t1", TaskKey: "extract", From: "RUNNING", To: "COMPLETED", Cause: "engine", At: at(3)},
			{RunID: "r1", From: "RUNNING", To: "COMPLETED", Cause: "engine", Message: "all done", At: at(5)},
		},
		Logs: []store.LogRecord{
			{RunID: "r1", TaskRunID: "t1", TaskKey: "extract", Level: "INFO", Message: "fetching rows",
				Attrs: json.RawMessage(`{"table":"orders","count":3,"note":"two words"}`), At: at(2)},
			{RunID: "r1", TaskRunID: "t2", TaskKey: "load", Level: "WARN", Message: "using cache", At: at(3)},
			{RunID: "r1", Level: "INFO", Message: "run summary", Attrs: json.RawMessage(`{}`), At: at(5)},
		},
	}
	if err := st.BatchWrite(ctx, b); err != nil {
		t.Fatalf("BatchWrite: %v", err)
	}
	return path
}

// runsTestRun runs baton with args and returns its exit code and output.
func runsTestRun(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Baton(context.Background(), args, env, servecmd.Config{})
	return code, out.String(), errb.String()
}

func runsTestDecode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not the expected JSON: %v\n%s", err, s)
	}
	return v
}

func runsTestIDs(runs []map[string]any) []string {
	var ids []string
	for _, r := range runs {
		ids = append(ids, r["id"].(string))
	}
	return ids
}

func TestRunsListJSON(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)

	code, out, errOut := runsTestRun(t, "--db", db, "runs", "list", "--json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	runs := runsTestDecode[[]map[string]any](t, out)
	if got, want := strings.Join(runsTestIDs(runs), ","), "r3,r2,r1"; got != want {
		t.Fatalf("runs newest first: got %s, want %s", got, want)
	}
	for _, key := range []string{"id", "flow", "state", "attempt", "created_at", "started_at", "ended_at", "parameters", "result", "error"} {
		if _, ok := runs[2][key]; !ok {
			t.Errorf("run object lacks %q: %v", key, runs[2])
		}
	}
	r1, r2, r3 := runs[2], runs[1], runs[0]
	if _, ok := r1["parent_run_id"]; ok {
		t.Errorf("parent_run_id should be omitted when empty: %v", r1)
	}
	if r3["parent_run_id"] != "r2" || r3["parent_step_key"] != "child" {
		t.Errorf("r3 parent: %v", r3)
	}
	if r1["error"] != nil {
		t.Errorf("r1 error should be null: %v", r1["error"])
	}
	if p, ok := r1["parameters"].(map[string]any); !ok || p["day"] != "2025-03-14" {
		t.Errorf("parameters should be embedded JSON: %#v", r1["parameters"])
	}
	if res, ok := r1["result"].(map[string]any); !ok || res["ok"] != true {
		t.Errorf("result should be embedded JSON: %#v", r1["result"])
	}
	if res, ok := r3["result"].(map[string]any); !ok || res["rows"] != float64(12345) {
		t.Errorf("blob result should be loaded: %#v", r3["result"])
	}
	if r2["result"] != nil || r2["attempt"] != float64(2) {
		t.Errorf("r2: %v", r2)
	}
	e, ok := r2["error"].(map[string]any)
	if !ok {
		t.Fatalf("r2 error should be an object: %#v", r2["error"])
	}
	for _, key := range []string{"message", "type", "kind", "chain"} {
		if _, ok := e[key]; !ok {
			t.Errorf("error object lacks %q: %v", key, e)
		}
	}
	if e["kind"] != "permanent" || len(e["chain"].([]any)) != 2 {
		t.Errorf("error object: %v", e)
	}
	created, err := time.Parse(time.RFC3339Nano, r1["created_at"].(string))
	if err != nil || !created.Equal(runsTestBase) {
		t.Errorf("created_at %v: %v", r1["created_at"], err)
	}
}

func TestRunsListFilters(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--flow", "etl"}, "r2,r1"},
		{[]string{"--flow", "report"}, "r3"},
		{[]string{"--state", "completed"}, "r3,r1"},
		{[]string{"--state", "FAILED", "--flow", "etl"}, "r2"},
		{[]string{"--limit", "1"}, "r3"},
		{[]string{"--flow", "nope"}, ""},
	} {
		args := append([]string{"--db", db, "runs", "list", "--json"}, tc.args...)
		code, out, errOut := runsTestRun(t, args...)
		if code != cli.ExitOK {
			t.Fatalf("%v: exit %d, stderr: %s", tc.args, code, errOut)
		}
		if got := strings.Join(runsTestIDs(runsTestDecode[[]map[string]any](t, out)), ","); got != tc.want {
			t.Errorf("%v: got %q, want %q", tc.args, got, tc.want)
		}
	}
}

func TestRunsListText(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	code, out, errOut := runsTestRun(t, "--db", db, "runs", "list")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", out)
	}
	for _, col := range []string{"ID", "FLOW", "STATE", "ATTEMPT", "CREATED", "DURATION"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("header lacks %s: %q", col, lines[0])
		}
	}
	created := runsTestBase.Local().Format("2006-01-02 15:04:05")
	if !strings.HasPrefix(lines[3], "r1") || !strings.Contains(lines[3], "COMPLETED") ||
		!strings.Contains(lines[3], created) || !strings.Contains(lines[3], "4s") {
		t.Errorf("r1 row: %q (want created %s, duration 4s)", lines[3], created)
	}
}

func TestRunsListInvalidState(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	code, _, errOut := runsTestRun(t, "--db", db, "runs", "list", "--state", "sleeping")
	if code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", code, cli.ExitUsage, errOut)
	}
	if !strings.Contains(errOut, `"sleeping"`) || !strings.Contains(errOut, "AWAITING_RETRY") || !strings.HasPrefix(errOut, "baton: ") {
		t.Errorf("message should name the value and the valid states: %s", errOut)
	}
}

func TestRunsShowJSON(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	code, out, errOut := runsTestRun(t, "--db", db, "runs", "show", "r1", "--json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	d := runsTestDecode[map[string]any](t, out)
	if d["id"] != "r1" || d["flow"] != "etl" || d["state"] != "COMPLETED" {
		t.Errorf("run fields: %v", d)
	}
	trs, ok := d["task_runs"].([]any)
	if !ok || len(trs) != 2 {
		t.Fatalf("task_runs: %#v", d["task_runs"])
	}
	extract, load := trs[0].(map[string]any), trs[1].(map[string]any)
	for _, key := range []string{"id", "key", "task", "state", "attempts", "started_at", "ended_at", "duration_ms", "input", "result", "error"} {
		if _, ok := extract[key]; !ok {
			t.Errorf("task run lacks %q: %v", key, extract)
		}
	}
	if extract["key"] != "extract" || extract["task"] != "Extract" || extract["state"] != "COMPLETED" ||
		extract["attempts"] != float64(1) || extract["duration_ms"] != float64(2000) {
		t.Errorf("extract: %v", extract)
	}
	if _, ok := extract["cached_from"]; ok {
		t.Errorf("cached_from should be omitted when empty: %v", extract)
	}
	if load["key"] != "load" || load["state"] != "CACHED" || load["cached_from"] != "t0" || load["cached_from_run"] != "r0" {
		t.Errorf("load: %v", load)
	}
	evs, ok := d["events"].([]any)
	if !ok || len(evs) != 4 {
		t.Fatalf("events: %#v", d["events"])
	}
	ev := evs[1].(map[string]any)
	for _, key := range []string{"at", "task_key", "from", "to", "cause", "message"} {
		if _, ok := ev[key]; !ok {
			t.Errorf("event lacks %q: %v", key, ev)
		}
	}
	if ev["task_key"] != "extract" || ev["from"] != "PENDING" || ev["to"] != "RUNNING" {
		t.Errorf("event: %v", ev)
	}

	// A subflow step names its child run.
	code, out, errOut = runsTestRun(t, "--db", db, "runs", "show", "--json", "r2")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	d = runsTestDecode[map[string]any](t, out)
	child := d["task_runs"].([]any)[1].(map[string]any)
	if child["child_run_id"] != "r3" {
		t.Errorf("child step: %v", child)
	}
}

func TestRunsShowText(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	code, out, errOut := runsTestRun(t, "--db", db, "runs", "show", "r1")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	for _, want := range []string{"r1", "etl", "COMPLETED", `{"day":"2025-03-14"}`, `{"ok":true}`,
		"extract", "load", "Extract", "cached from run r0 (task run t0)", "RUNNING → COMPLETED", "all done",
		"KEY", "TASK", "ATTEMPTS", "NOTE"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, errOut = runsTestRun(t, "--db", db, "runs", "show", "r2")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	for _, want := range []string{"FAILED", "extract: connection refused", "caused by", "child run r3", "Events: none"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, strings.Repeat("x", 100)) {
		t.Errorf("long error notes should be truncated:\n%s", out)
	}

	code, out, _ = runsTestRun(t, "--db", db, "runs", "show", "r3")
	if code != cli.ExitOK || !strings.Contains(out, `{"rows":12345}`) || !strings.Contains(out, "r2 (step child)") {
		t.Errorf("r3 should show its blob result and parent:\n%s", out)
	}
}

func TestRunsLogs(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	code, out, errOut := runsTestRun(t, "--db", db, "runs", "logs", "r1")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines:\n%s", out)
	}
	ts := runsTestBase.Add(2 * time.Second).Local().Format("2006-01-02 15:04:05.000")
	if want := ts + ` INFO  [extract] fetching rows count=3 note="two words" table=orders`; lines[0] != want {
		t.Errorf("line 1:\n got %q\nwant %q", lines[0], want)
	}
	if !strings.Contains(lines[1], "WARN") || !strings.Contains(lines[1], "[load] using cache") {
		t.Errorf("line 2: %q", lines[1])
	}
	if !strings.HasSuffix(lines[2], "INFO  run summary") {
		t.Errorf("line 3: %q", lines[2])
	}

	code, out, errOut = runsTestRun(t, "--db", db, "runs", "logs", "r1", "--task", "load")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	if strings.Count(out, "\n") != 1 || !strings.Contains(out, "using cache") {
		t.Errorf("--task load:\n%s", out)
	}

	code, _, errOut = runsTestRun(t, "--db", db, "runs", "logs", "r1", "--task", "nope")
	if code != cli.ExitUsage || !strings.Contains(errOut, `"nope"`) {
		t.Errorf("unknown --task: exit %d, stderr: %s", code, errOut)
	}

	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"--search", "ROWS"}, []string{"fetching rows"}},
		{[]string{"--level", "warn"}, []string{"using cache"}},
		{[]string{"--search", "summary", "--level", "INFO"}, []string{"run summary"}},
		{[]string{"--search", "nothing like it"}, nil},
	} {
		code, out, errOut = runsTestRun(t, append([]string{"--db", db, "runs", "logs", "r1"}, tc.args...)...)
		if code != cli.ExitOK || strings.Count(out, "\n") != len(tc.want) {
			t.Errorf("%v: exit %d, %q, stderr %s", tc.args, code, out, errOut)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("%v: %q lacks %q", tc.args, out, w)
			}
		}
	}
	code, out, errOut = runsTestRun(t, "--db", db, "runs", "logs", "r1", "--level", "loud")
	if code != cli.ExitUsage || !strings.Contains(errOut, "--level must be one of DEBUG, INFO, WARN, ERROR") || out != "" {
		t.Errorf("--level loud: exit %d, stdout %q, stderr %s", code, out, errOut)
	}
}

func TestRunsUnknownRun(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	for _, sub := range []string{"show", "logs"} {
		code, out, errOut := runsTestRun(t, "--db", db, "runs", sub, "zzz")
		if code != cli.ExitUsage {
			t.Errorf("%s: exit %d, want %d", sub, code, cli.ExitUsage)
		}
		if want := `baton: unknown run id "zzz"; list runs with: baton runs list`; strings.TrimSpace(errOut) != want {
			t.Errorf("%s: stderr %q, want %q", sub, errOut, want)
		}
		if out != "" {
			t.Errorf("%s: stdout should be empty: %q", sub, out)
		}
	}
}

func TestBatonUsageErrors(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	for _, args := range [][]string{
		{"--db", db, "runs", "list", "--bogus"},
		{"--db", db, "--bogus", "runs", "list"},
		{"--db", db, "runs", "list", "--limit", "many"},
		{"--db", db, "runs", "list", "--limit", "0"},
		{"--db", db, "frobnicate"},
		{"--db", db, "runs", "frobnicate"},
		{"--db", db, "runs", "show"},
		{"--db", db, "runs", "show", "r1", "r2"},
		{"--db", db, "runs", "list", "extra"},
		{"version", "extra"},
	} {
		code, _, errOut := runsTestRun(t, args...)
		if code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want %d; stderr: %s", args, code, cli.ExitUsage, errOut)
		}
		if !strings.HasPrefix(errOut, "baton: ") {
			t.Errorf("%v: stderr should start with \"baton: \": %q", args, errOut)
		}
	}
}

func TestRunsListCrashed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "baton.db")

	// A pid that surely belongs to no process any more.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = st.BatchWrite(ctx, store.Batch{Runs: []store.Run{
		{ID: "dead", Flow: "etl", State: store.RunRunning, Attempt: 1, CreatedAt: now.Add(-time.Minute),
			UpdatedAt: now, StartedAt: now.Add(-time.Minute), OwnerHost: host, OwnerPID: dead.Process.Pid},
		{ID: "alive", Flow: "etl", State: store.RunRunning, Attempt: 1, CreatedAt: now.Add(-2 * time.Minute),
			UpdatedAt: now, StartedAt: now.Add(-2 * time.Minute), OwnerHost: host, OwnerPID: os.Getpid()},
		{ID: "remote", Flow: "etl", State: store.RunRunning, Attempt: 1, CreatedAt: now.Add(-3 * time.Minute),
			UpdatedAt: now, StartedAt: now.Add(-3 * time.Minute), OwnerHost: host + ".elsewhere.invalid", OwnerPID: dead.Process.Pid},
	}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	code, out, errOut := runsTestRun(t, "--db", db, "runs", "list", "--state", "crashed", "--json")
	if code != cli.ExitOK {
		t.Fatalf("exit %d, stderr: %s", code, errOut)
	}
	if got := strings.Join(runsTestIDs(runsTestDecode[[]map[string]any](t, out)), ","); got != "dead" {
		t.Errorf("--state crashed: got %q, want dead", got)
	}

	code, out, _ = runsTestRun(t, "--db", db, "runs", "list")
	if code != cli.ExitOK {
		t.Fatalf("exit %d", code)
	}
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		states[f[0]] = f[2]
	}
	if states["dead"] != "CRASHED" || states["alive"] != "RUNNING" || states["remote"] != "RUNNING" {
		t.Errorf("states %v:\n%s", states, out)
	}

	code, out, _ = runsTestRun(t, "--db", db, "runs", "show", "dead", "--json")
	d := runsTestDecode[map[string]any](t, out)
	if code != cli.ExitOK || d["state"] != "CRASHED" || d["ended_at"] == nil || d["error"] == nil {
		t.Errorf("show dead: exit %d, %v", code, d)
	}
}

func TestRunsListStateFilterHidesNewlyCrashed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "baton.db")
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	host, _ := os.Hostname()
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "dead", Flow: "etl", State: store.RunRunning, Attempt: 1,
		CreatedAt: now, UpdatedAt: now, StartedAt: now, OwnerHost: host, OwnerPID: dead.Process.Pid}}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runsTestRun(t, "--db", db, "runs", "list", "--state", "RUNNING", "--json")
	if code != cli.ExitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("exit %d, stdout %q, stderr %s", code, out, errOut)
	}
}

func TestBatonNotABatonStore(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "garbage.db")
	garbage := bytes.Repeat([]byte("this is not a database\x00\xff"), 200)
	if err := os.WriteFile(path, garbage, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runsTestRun(t, "--db", path, "runs", "list")
	if code != cli.ExitUsage {
		t.Fatalf("exit %d, want %d; stderr: %s", code, cli.ExitUsage, errOut)
	}
	if !strings.Contains(errOut, "not a Baton store") || !strings.Contains(errOut, path) {
		t.Errorf("message should say the file is not a Baton store: %s", errOut)
	}
}

func TestBatonDBFromEnvironment(t *testing.T) {
	t.Parallel()
	db := runsTestSeed(t)
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "BATON_DB" {
			return db
		}
		return ""
	}}
	if code := Baton(context.Background(), []string{"runs", "list", "--json"}, env, servecmd.Config{}); code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if got := len(runsTestDecode[[]map[string]any](t, out.String())); got != 3 {
		t.Errorf("BATON_DB store: %d runs, want 3", got)
	}
}

func TestVersionCommand(t *testing.T) {
	t.Parallel()
	code, out, errOut := runsTestRun(t, "version")
	if code != cli.ExitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := "baton " + version.String() + " (" + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestBatonOpensPostgres: the baton command links the PostgreSQL backend,
// and --db's help says so (a user's program's does not: see progcmd).
func TestBatonOpensPostgres(t *testing.T) {
	t.Parallel()
	code, out, errOut := apiTestRun(t, nil, "runs", "list", "--help")
	if code != cli.ExitOK || !strings.Contains(out, "a SQLite file or a postgres:// URL") {
		t.Errorf("runs list --help: exit %d: %s%s", code, out, errOut)
	}
}
