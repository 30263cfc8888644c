package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/cli/servecmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/worker"
)

// mainRun runs a user program's command line on the store db.
func mainRun(t *testing.T, prog progcmd.Program, db string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = progcmd.Main(context.Background(), append([]string{"--db", db}, args...), prog, env)
	return code, out.String(), errb.String()
}

func TestServerRetentionDefaultKeepsRuns(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	var mu sync.Mutex
	var got []server.Config
	capture := func(c server.Config) (*server.Server, error) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		return server.New(c)
	}
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, 0},
		{[]string{"--retention", "30d"}, 30 * 24 * time.Hour},
	} {
		args := append([]string{"--db", db, "server", "--addr", "127.0.0.1:0"}, tt.args...)
		_, stop, errb := startBaton(t, &cli.Env{}, batonWith(servecmd.Config{NewServer: capture}), args...)
		if code := stop(); code != cli.ExitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		mu.Lock()
		last := got[len(got)-1]
		mu.Unlock()
		if last.Retention != tt.want {
			t.Errorf("%v: retention %s, want %s", args, last.Retention, tt.want)
		}
	}
	code, out, _ := apiTestRun(t, nil, "server", "--help")
	if code != cli.ExitOK || !strings.Contains(out, "0 keeps them forever") || !strings.Contains(out, `(default "0")`) {
		t.Errorf("server --help should say runs are kept unless --retention is given: exit %d:\n%s", code, out)
	}
}

func TestUserProgramHintsNameTheProgram(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	prog := helloProgram()
	code, _, errOut := mainRun(t, prog, db, "run", "hello")
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	id := regexpFind(t, `run (\S+) of flow hello started`, errOut)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"runs", "show", "nope"}, `prog: unknown run id "nope"; list runs with: prog runs list`},
		{[]string{"runs", "logs", "nope"}, `list runs with: prog runs list`},
		{[]string{"runs", "logs", id, "--task", "nokey"}, "see the keys with: prog runs show " + id},
	} {
		code, _, errOut := mainRun(t, prog, db, tt.args...)
		if code != cli.ExitUsage || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, "baton runs") {
			t.Errorf("%v: exit %d: %s; want exit 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
	// The baton binary names itself.
	code, _, errOut = apiTestRun(t, nil, "--db", db, "runs", "show", "nope")
	if code != cli.ExitUsage || !strings.Contains(errOut, "list runs with: baton runs list") {
		t.Errorf("baton runs show nope: exit %d: %s", code, errOut)
	}
}

func regexpFind(t *testing.T, expr, s string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%q not found in %q", expr, s)
	}
	return m[1]
}

func TestDevWelcomeUnderGoRun(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	env := &cli.Env{Command: "go run ./cmd/baton"}
	url, stop, errb := startBaton(t, env, batonWith(servecmd.Config{Examples: helloProgram()}), "--db", db, "dev", "--addr", "127.0.0.1:0")
	out := waitOutput(t, env.Stdout.(*syncBuffer), "Press Ctrl+C")
	for _, want := range []string{"export BATON_SERVER=" + url, "  go run ./cmd/baton runs create hello\n",
		"  go run ./cmd/baton runs list\n", "  go run ./cmd/baton workers list\n", "go install ./cmd/baton",
		"go install github.com/batonhq/baton/cmd/baton@latest"} {
		if !strings.Contains(out, want) {
			t.Errorf("welcome under go run lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "  baton runs") {
		t.Errorf("welcome under go run prints baton commands that are not on PATH:\n%s", out)
	}
	code, _, errOut := apiTestRun(t, nil, "--server", url, "runs", "show", "nope")
	if code != cli.ExitUsage || !strings.Contains(errOut, "baton runs list") {
		t.Errorf("show nope: %d %s", code, errOut)
	}
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("dev exit %d: %s", code, errb.String())
	}
}

func TestDevLeaseTimeout(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	if code, _, errOut := apiTestRun(t, nil, "--db", db, "dev", "--addr", "127.0.0.1:0", "--lease-timeout", "500ms"); code != cli.ExitUsage ||
		!strings.Contains(errOut, "--lease-timeout") {
		t.Errorf("dev --lease-timeout 500ms: exit %d: %s", code, errOut)
	}
	var mu sync.Mutex
	var lease time.Duration
	capture := func(c server.Config) (*server.Server, error) {
		mu.Lock()
		lease = c.LeaseTimeout
		mu.Unlock()
		return server.New(c)
	}
	_, stop, errb := startBaton(t, &cli.Env{}, batonWith(servecmd.Config{NewServer: capture}), "--db", db, "dev", "--addr", "127.0.0.1:0", "--lease-timeout", "3s")
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("dev exit %d: %s", code, errb.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if lease != 3*time.Second {
		t.Errorf("dev --lease-timeout 3s gave the server %s", lease)
	}
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

// TestDevTakesBackRunsOfItsDeadWorker: a run held by a worker of a
// `baton dev` killed with kill -9 (a registered worker on this host whose
// pid is gone) resumes as soon as dev starts again, long before its lease
// would expire.
func TestDevTakesBackRunsOfItsDeadWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "baton.db")
	st, err := sqlite.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	dead := deadPID(t)
	now := time.Now()
	for _, w := range []store.Worker{
		{ID: "w-dead", Name: "baton-dev", Host: host, PID: dead, Queues: []string{"default"}, Flows: []string{"hello"}, Capacity: 8},
		{ID: "w-alive", Name: "other", Host: host, PID: os.Getpid(), Queues: []string{"q-alive"}, Flows: []string{"hello"}, Capacity: 8},
	} {
		if err := st.WorkerUpsert(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []struct{ id, worker, queue string }{{"r-dead", "w-dead", "default"}, {"r-alive", "w-alive", "q-alive"}} {
		if _, _, err := st.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: r.id, Flow: "hello", State: store.RunScheduled,
			Attempt: 1, Parameters: json.RawMessage(`{"name":"again"}`), Queue: r.queue, CreatedAt: now, UpdatedAt: now}}); err != nil {
			t.Fatal(err)
		}
		claimed, err := st.RunClaim(ctx, store.RunClaimParams{WorkerID: r.worker, Queues: []string{r.queue}, Flows: []string{"hello"},
			Limit: 1, LeaseUntil: now.Add(time.Hour)})
		if err != nil || len(claimed) != 1 {
			t.Fatalf("claim %s: %v %v", r.id, claimed, err)
		}
		pid := dead
		if r.worker == "w-alive" {
			pid = os.Getpid()
		}
		if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: r.id, From: []store.RunState{store.RunPending},
			To: store.RunRunning, Attempt: 1, Owner: &store.Owner{Host: host, PID: pid, WorkerID: r.worker, LeaseUntil: now.Add(time.Hour)}}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	url, stop, errb := startBaton(t, &cli.Env{}, batonWith(servecmd.Config{Examples: helloProgram()}), "--db", db, "dev", "--addr", "127.0.0.1:0", "--lease-timeout", "1h")
	r := waitRun(t, url, "r-dead", "COMPLETED")
	if r["result"] != "hi again" || r["attempt"] != 2.0 {
		t.Errorf("run of the dead worker: %v", r)
	}
	code, out, _ := apiTestRun(t, nil, "--server", url, "runs", "show", "r-alive", "--json")
	if d := runsTestDecode[map[string]any](t, out); code != cli.ExitOK || d["state"] != "RUNNING" || d["attempt"] != 1.0 {
		t.Errorf("the run of a live worker must be left alone: %v", d)
	}
	if code := stop(); code != cli.ExitOK {
		t.Fatalf("dev exit %d: %s", code, errb.String())
	}
}

// startTestWorker runs a worker of prog with the given concurrency against
// url until the test ends.
func startTestWorker(t *testing.T, url string, prog progcmd.Program, concurrency int) {
	t.Helper()
	c, err := remote.New(url)
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Config{Client: c, Name: "w-test", Concurrency: concurrency, Flows: prog.Flows,
		Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard, ShutdownGrace: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

func TestRunsCreateWaitingOnlyWhenTrue(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	release := make(chan struct{})
	prog := progcmd.Program{Name: "prog", Flows: []*engine.FlowDef{
		helloProgram().Flows[0],
		{Name: "block", Body: func(fc *engine.FlowCtx, _ json.RawMessage) (any, error) {
			select {
			case <-release:
			case <-fc.Context().Done():
			}
			return "done", nil
		}},
	}}
	startTestWorker(t, a.URL, prog, 1)
	// Wait until the worker is registered and polling.
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, out, _ := apiTestRun(t, nil, "--server", a.URL, "workers", "list", "--json")
		if code == cli.ExitOK && len(runsTestDecode[[]map[string]any](t, out)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker did not register")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Idle worker: no warning.
	for i := range 3 {
		code, out, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello")
		if code != cli.ExitOK {
			t.Fatalf("create: exit %d: %s", code, errOut)
		}
		if strings.Contains(errOut, "waiting") {
			t.Errorf("create %d on an idle worker warned: %s", i, errOut)
		}
		waitRun(t, a.URL, strings.TrimSpace(out), "COMPLETED")
	}
	// The same for a retry.
	now := time.Now()
	if err := a.St.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{{ID: "failed-hello", Flow: "hello",
		State: store.RunFailed, Attempt: 1, Queue: "default", Parameters: json.RawMessage(`null`),
		Error: &store.ErrorInfo{Message: "boom"}, CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}}}); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := apiTestRun(t, nil, "--server", a.URL, "runs", "retry", "failed-hello")
	if code != cli.ExitOK || strings.Contains(errOut, "waiting") {
		t.Errorf("retry on an idle worker: exit %d: %s", code, errOut)
	}
	waitRun(t, a.URL, "failed-hello", "COMPLETED")
	// Busy worker (its one slot holds a blocked run): the warning is true.
	blocked := a.create(t, "block")
	waitRun(t, a.URL, blocked, "RUNNING")
	code, _, errOut = apiTestRun(t, nil, "--server", a.URL, "runs", "create", "hello")
	if code != cli.ExitOK || !strings.Contains(errOut, "is waiting: waiting for a free slot on 1 worker(s)") {
		t.Errorf("create on a busy worker should say it waits: exit %d: %s", code, errOut)
	}
	close(release)
}

// seedLargeRun writes a run with n task runs, of which every 25th FAILED
// and task run 7 the slowest, into st.
func seedLargeRun(t *testing.T, st store.Store, id string, n int) {
	t.Helper()
	seedLargeRunN(t, st, id, 0, n)
}

// seedLargeRunN writes task runs from..from+n of the run seedLargeRun writes.
func seedLargeRunN(t *testing.T, st store.Store, id string, from, n int) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)
	run := store.Run{ID: id, Flow: "sweep", State: store.RunFailed, Attempt: 1, Parameters: json.RawMessage(`null`),
		Error: &store.ErrorInfo{Message: "some items failed"}, CreatedAt: base, UpdatedAt: base, StartedAt: base, EndedAt: base.Add(time.Hour)}
	b := store.Batch{Runs: []store.Run{run}}
	for i := from; i < from+n; i++ {
		task := "square"
		if i%2 == 1 {
			task = "cube"
		}
		tr := store.TaskRun{ID: fmt.Sprintf("%s-t%06d", id, i), RunID: id, Key: fmt.Sprintf("%s/0.%d", task, i), Task: task,
			State: store.TaskCompleted, Attempts: 1, FlowAttempt: 1, InputHash: "h", Input: json.RawMessage(`1`),
			Result: json.RawMessage(`1`), CreatedAt: base.Add(time.Duration(i) * time.Millisecond),
			StartedAt: base.Add(time.Duration(i) * time.Millisecond), EndedAt: base.Add(time.Duration(i)*time.Millisecond + 10*time.Millisecond),
			History: []store.Transition{{At: base, To: "RUNNING"}, {At: base.Add(time.Second), From: "RUNNING", To: "COMPLETED"}}}
		if i%25 == 3 {
			tr.State, tr.Result, tr.Error = store.TaskFailed, nil, &store.ErrorInfo{Message: fmt.Sprintf("item %d broke", i)}
		}
		if i == 7 {
			tr.EndedAt = tr.StartedAt.Add(time.Minute)
		}
		b.TaskRuns = append(b.TaskRuns, tr)
	}
	if err := st.BatchWrite(ctx, b); err != nil {
		t.Fatal(err)
	}
}

func TestRunsShowLargeRunSummary(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	const n = 300
	seedLargeRun(t, a.St, "big", n)
	for _, where := range [][]string{{"--db", a.DB}, {"--server", a.URL}} {
		show := func(args ...string) string {
			t.Helper()
			code, out, errOut := apiTestRun(t, nil, append(append([]string{}, where...), append([]string{"runs", "show", "big"}, args...)...)...)
			if code != cli.ExitOK {
				t.Fatalf("%v show %v: exit %d: %s", where, args, code, errOut)
			}
			return out
		}
		out := show()
		for _, want := range []string{"Task runs: 300 (summary)", "square  150    COMPLETED 144, FAILED 6",
			"cube    150    COMPLETED 144, FAILED 6", "Failed task runs: 12 (the first 10):", "item 3 broke", "item 228 broke",
			"Slowest task runs:", "cube/0.7 ", "1m0s", "list them with --steps", "Events: not listed"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v summary lacks %q:\n%s", where, want, out)
			}
		}
		if strings.Contains(out, "item 253 broke") || strings.Count(out, "\n") > 60 {
			t.Errorf("%v summary of %d task runs should be short (%d lines):\n%s", where, n, strings.Count(out, "\n"), out)
		}
		out = show("--steps", "--limit", "5", "--offset", "10")
		if !strings.Contains(out, "Task runs 11-15 of 300:") || !strings.Contains(out, "square/0.10 ") ||
			!strings.Contains(out, "square/0.14 ") || strings.Contains(out, "cube/0.15 ") || !strings.Contains(out, "more with --offset 15") {
			t.Errorf("%v --steps page:\n%s", where, out)
		}
		out = show("--events", "--limit", "3")
		if !strings.Contains(out, "Events 1-3 of 600:") {
			t.Errorf("%v --events page:\n%s", where, out)
		}
		out = show("--all")
		if strings.Count(out, "COMPLETED") < 288 || !strings.Contains(out, "cube/0.299 ") {
			t.Errorf("%v --all should list every task run:\n%.2000s", where, out)
		}
		var page map[string]any
		if err := json.Unmarshal([]byte(show("--json", "--limit", "5", "--offset", "295")), &page); err != nil {
			t.Fatal(err)
		}
		if trs, _ := page["task_runs"].([]any); len(trs) != 5 || page["task_runs_total"] != 300.0 || page["events_total"] != 600.0 {
			t.Errorf("%v --json --limit 5: %d task runs, totals %v %v", where, len(trs), page["task_runs_total"], page["events_total"])
		}
		var full map[string]any
		if err := json.Unmarshal([]byte(show("--json")), &full); err != nil {
			t.Fatal(err)
		}
		if trs, _ := full["task_runs"].([]any); len(trs) != n || full["task_runs_total"] != nil {
			t.Errorf("%v --json: %d task runs, want all %d", where, len(trs), n)
		}
	}
}

// waitOutput waits until b holds want and returns what it holds.
func waitOutput(t *testing.T, b *syncBuffer, want string) string {
	t.Helper()
	out, ok := b.await(20*time.Second, nil, func(s string) bool { return strings.Contains(s, want) })
	if !ok {
		t.Fatalf("output lacks %q after 20s:\n%s", want, out)
	}
	return out
}

func TestServerHintsNameTheBatonCommandAsRun(t *testing.T) {
	t.Parallel()
	run := func(command string, args ...string) string {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Command: command}
		if code := Baton(context.Background(), args, env, servecmd.Config{}); code == cli.ExitOK {
			t.Errorf("%v: exit 0", args)
		}
		return errb.String()
	}
	if got := run("go run ./cmd/baton", "runs", "create", "etl"); !strings.Contains(got, "start a local one with: go run ./cmd/baton dev") {
		t.Errorf("runs create without a server: %s", got)
	}
	got := run("go run ./cmd/baton", "--server", "http://127.0.0.1:1", "runs", "list")
	if !strings.Contains(got, "start one with: go run ./cmd/baton server, or go run ./cmd/baton dev") {
		t.Errorf("unreachable server: %s", got)
	}
	// A user's program names the baton tool.
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	if code := progcmd.Main(context.Background(), []string{"runs", "cancel", "x"}, helloProgram(), env); code != cli.ExitUsage ||
		!strings.Contains(errb.String(), "start a local one with: baton dev") {
		t.Errorf("prog runs cancel without a server: exit %d: %s", code, errb.String())
	}
}

// TestWorkerPrintsTaskFailures: a worker prints failed task attempts on its
// console as run does, one line each.
func TestWorkerPrintsTaskFailures(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	flaky := &engine.TaskDef{Name: "fetch", Policy: engine.TaskPolicy{Retries: 1, RetryDelay: time.Millisecond},
		Invoke: func(context.Context, json.RawMessage) (any, error) {
			if calls.Add(1) == 1 {
				return nil, errors.New("connection refused")
			}
			return 1, nil
		}}
	prog := progcmd.Program{Name: "prog", Tasks: []*engine.TaskDef{flaky}, Flows: []*engine.FlowDef{{Name: "flaky",
		Body: func(fc *engine.FlowCtx, _ json.RawMessage) (any, error) { return taskCall(fc, flaky, "1") }}}}
	a := apiTestServer(t)
	id := a.create(t, "flaky", "--queue", "qf")
	env := &cli.Env{Getenv: func(string) string { return "" }}
	werr := &syncBuffer{}
	env.Stdout, env.Stderr = io.Discard, werr
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- progcmd.Main(ctx, []string{"worker", "--server", a.URL, "--queue", "qf"}, prog, env) }()
	waitRun(t, a.URL, id, "COMPLETED")
	cancel()
	<-done
	if want := "baton: task fetch/0 attempt 1 failed: connection refused; retrying in 1ms\n"; !strings.Contains(werr.String(), want) {
		t.Errorf("worker console lacks %q:\n%s", want, werr.String())
	}
}

// taskCall calls td on input from a flow and waits for it.
func taskCall(fc *engine.FlowCtx, td *engine.TaskDef, input string) (any, error) {
	in := json.RawMessage(input)
	return fc.Call(engine.Call{Task: td, InputJSON: in,
		Fn:     func(ctx context.Context) (any, error) { return td.Invoke(ctx, in) },
		Decode: func(raw json.RawMessage) (any, error) { return raw, nil },
	}).Wait(fc.Context())
}
