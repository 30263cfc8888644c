package progcmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// mainRun runs a user program's command line on the store db.
func mainRun(t *testing.T, prog Program, db string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code = Main(context.Background(), append([]string{"--db", db}, args...), prog, env)
	return code, out.String(), errb.String()
}

// helloProgram defines a flow "hello" that returns "hi NAME".
func helloProgram() Program {
	type params struct {
		Name string `json:"name"`
	}
	return Program{Name: "prog", Flows: []*engine.FlowDef{{
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

// TestPostgresNotLinked: a user's program does not link the PostgreSQL
// backend unless it imports github.com/batonhq/baton/postgres; a postgres://
// store is then a usage error saying how to link it or use the baton
// command instead, and the password is not shown.
func TestPostgresNotLinked(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"run", "hello"}, {"runs", "list"}} {
		code, out, errOut := mainRun(t, helloProgram(), "postgres://me:secret@127.0.0.1:1/baton", args...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, `import _ "github.com/batonhq/baton/postgres"`) ||
			!strings.Contains(errOut, "baton server --db URL") || strings.Contains(errOut, "secret") {
			t.Errorf("%v --db postgres://...: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	// --db's help offers only what the program opens.
	if code, out, _ := mainRun(t, helloProgram(), "x.db", "run", "--help"); code != cli.ExitOK ||
		!strings.Contains(out, "the store: a SQLite file (default") || strings.Contains(out, "postgres://") {
		t.Errorf("run --help: exit %d:\n%s", code, out)
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

func TestRunPrintsBlobResult(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", engine.BlobThreshold+1000)
	prog := Program{Name: "prog", Flows: []*engine.FlowDef{{Name: "big",
		Body: func(*engine.FlowCtx, json.RawMessage) (any, error) { return big, nil }}}}
	db := filepath.Join(t.TempDir(), "baton.db")
	code, out, errOut := mainRun(t, prog, db, "run", "big")
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	if strings.TrimSpace(out) != `"`+big+`"` {
		t.Errorf("run of a flow with a result over %d bytes should print the result, got %.100q", engine.BlobThreshold, out)
	}
}

func TestRunPrintsTaskFailures(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	calls := map[string]int{}
	count := func(name string) int {
		mu.Lock()
		defer mu.Unlock()
		calls[name]++
		return calls[name]
	}
	flaky := &engine.TaskDef{Name: "fetch", Policy: engine.TaskPolicy{Retries: 2, RetryDelay: time.Millisecond},
		Invoke: func(context.Context, json.RawMessage) (any, error) {
			if count("fetch") == 1 {
				return nil, errors.New("connection\nrefused")
			}
			return 1, nil
		}}
	bad := &engine.TaskDef{Name: "load", Policy: engine.TaskPolicy{Retries: 2, RetryDelay: time.Millisecond},
		Invoke: func(context.Context, json.RawMessage) (any, error) {
			count("load")
			return nil, errors.New("disk full")
		}}
	prog := Program{Name: "prog", Tasks: []*engine.TaskDef{flaky, bad}, Flows: []*engine.FlowDef{{Name: "etl",
		Body: func(fc *engine.FlowCtx, _ json.RawMessage) (any, error) {
			if _, err := taskCall(fc, flaky, "1"); err != nil {
				return nil, err
			}
			return taskCall(fc, bad, "2")
		}}}}
	db := filepath.Join(t.TempDir(), "baton.db")
	code, _, errOut := mainRun(t, prog, db, "run", "etl")
	if code != cli.ExitFailed {
		t.Fatalf("run: exit %d, want %d: %s", code, cli.ExitFailed, errOut)
	}
	for _, want := range []string{
		"baton: task fetch/0 attempt 1 failed: connection refused; retrying in 1ms\n",
		"baton: task load/1 attempt 1 failed: disk full; retrying in 1ms\n",
		"baton: task load/1 attempt 2 failed: disk full; retrying in 1ms\n",
		"baton: task load/1 FAILED after 3 attempts: disk full\n",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("console lacks %q:\n%s", want, errOut)
		}
	}
	if n := strings.Count(errOut, "baton: task "); n != 4 {
		t.Errorf("%d task lines on the console, want 4:\n%s", n, errOut)
	}
}

func TestRetryCompletedRunMessage(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	prog := helloProgram()
	code, _, errOut := mainRun(t, prog, db, "run", "hello")
	if code != cli.ExitOK {
		t.Fatalf("run: exit %d: %s", code, errOut)
	}
	id := regexpFind(t, `run (\S+) of flow hello started`, errOut)
	code, _, errOut = mainRun(t, prog, db, "retry", id)
	want := fmt.Sprintf("prog: run %s already COMPLETED (attempt 1): nothing to retry\n", id)
	if code != cli.ExitUsage || errOut != want {
		t.Errorf("retry of a completed run: exit %d, stderr %q; want exit 2 and %q", code, errOut, want)
	}
}

// staleStore answers the first RunGet of a run with a copy read before
// another process retried it.
type staleStore struct {
	engine.Store
	mu    sync.Mutex
	stale map[string]store.Run
}

func TestRetryLoserToldTheTruth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	failed := store.Run{ID: "r1", Flow: "hello", State: store.RunCancelled, Attempt: 1, Parameters: json.RawMessage(`null`),
		CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{failed}}); err != nil {
		t.Fatal(err)
	}
	// The winner: another process retried it and runs it (this process
	// stands in for it, so it is alive).
	self := engine.Self()
	if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunCancelled},
		To: store.RunRunning, NextAttempt: true, Owner: &store.Owner{Host: self.Host, PID: self.PID, Start: self.Start},
		Cause: "user", Message: "retry requested"}); err != nil {
		t.Fatal(err)
	}
	ss := &staleStore{Store: st, stale: map[string]store.Run{"r1": failed}}
	eng, err := engine.New(engine.Config{Store: ss, Blobs: blobs, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	_, err = eng.Retry(ctx, helloProgram().Flows[0], "r1", engine.RetryOptions{})
	if !errors.Is(err, engine.ErrRunActive) {
		t.Fatalf("losing retry: %v, want ErrRunActive", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "retried by someone else first") || !strings.Contains(msg, "RUNNING now (attempt 2") ||
		strings.Contains(msg, "CANCELLED") || strings.Contains(msg, "conflict") {
		t.Errorf("the losing retry should be told another retry won and the run is RUNNING: %q", msg)
	}
}

func (s *staleStore) RunGet(ctx context.Context, id string) (store.Run, error) {
	s.mu.Lock()
	r, ok := s.stale[id]
	delete(s.stale, id)
	s.mu.Unlock()
	if ok {
		return r, nil
	}
	return s.Store.RunGet(ctx, id)
}

func regexpFind(t *testing.T, expr, s string) string {
	t.Helper()
	m := regexp.MustCompile(expr).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("%q not found in %q", expr, s)
	}
	return m[1]
}

// TestTaskCommandLargeInput: `task TASK --input @file` with an input whose
// large parts go to the blob store runs the task on the whole input, and
// `runs show --json` shows it whole, with the blob's reference.
func TestTaskCommandLargeInput(t *testing.T) {
	t.Parallel()
	type sumIn struct {
		K    int   `json:"k"`
		Data []int `json:"data"`
	}
	sum := &engine.TaskDef{Name: "sum", InputType: reflect.TypeFor[sumIn](),
		Invoke: func(_ context.Context, raw json.RawMessage) (any, error) {
			var in sumIn
			if err := json.Unmarshal(raw, &in); err != nil {
				return nil, err
			}
			total := 0
			for _, v := range in.Data {
				total += v
			}
			return in.K * total, nil
		}}
	prog := Program{Name: "prog", Tasks: []*engine.TaskDef{sum}}
	in := sumIn{K: 2}
	want := 0
	for i := range 4000 {
		in.Data = append(in.Data, i)
		want += 2 * i
	}
	raw, _ := json.Marshal(in)
	if len(raw) <= engine.InputBlobThreshold {
		t.Fatalf("input of %d bytes is too small for the test", len(raw))
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "input.json")
	if err := os.WriteFile(file, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(dir, "baton.db")
	code, out, errOut := mainRun(t, prog, db, "task", "sum", "--input", "@"+file, "--json")
	if code != cli.ExitOK {
		t.Fatalf("task: exit %d: %s", code, errOut)
	}
	var run struct {
		ID     string          `json:"id"`
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(out), &run); err != nil || string(run.Result) != fmt.Sprint(want) {
		t.Fatalf("task --json: %.200s (%v); want result %d", out, err, want)
	}
	code, out, errOut = mainRun(t, prog, db, "runs", "show", run.ID, "--json")
	if code != cli.ExitOK {
		t.Fatalf("runs show: exit %d: %s", code, errOut)
	}
	var d struct {
		TaskRuns []struct {
			Input    json.RawMessage `json:"input"`
			InputRef string          `json:"input_ref"`
		} `json:"task_runs"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || len(d.TaskRuns) != 1 {
		t.Fatalf("runs show --json: %.200s (%v)", out, err)
	}
	tr := d.TaskRuns[0]
	var shown bytes.Buffer
	if err := json.Compact(&shown, tr.Input); err != nil || shown.String() != string(raw) || !strings.HasPrefix(tr.InputRef, "sha256:") {
		t.Errorf("runs show --json: input %.60s… (ref %q), want the whole input and its blob", shown.String(), tr.InputRef)
	}
}
