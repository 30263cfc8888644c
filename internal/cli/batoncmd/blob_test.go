package batoncmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store/postgres"

	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// bigPayload is a deterministic string of n bytes whose every part differs,
// so that a truncated or shuffled copy does not compare equal.
func bigPayload(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strconv.Itoa(i))
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

// bigProgram has a flow "big" that calls the distributed task "make" (queue
// bq), which returns bigPayload(n), checks what it got back, fails on its
// first attempt when fail_once is set, and returns the payload.
func bigProgram() progcmd.Program {
	mk := &engine.TaskDef{Name: "make", Policy: engine.TaskPolicy{Queue: "bq"},
		Invoke: func(_ context.Context, in json.RawMessage) (any, error) {
			var n int
			if err := json.Unmarshal(in, &n); err != nil {
				return nil, err
			}
			return bigPayload(n), nil
		}}
	type params struct {
		N        int  `json:"n"`
		FailOnce bool `json:"fail_once"`
	}
	flow := &engine.FlowDef{Name: "big", Body: func(fc *engine.FlowCtx, raw json.RawMessage) (any, error) {
		var p params
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		in, _ := json.Marshal(p.N)
		v, err := fc.Call(engine.Call{Task: mk, InputJSON: in,
			Fn: func(ctx context.Context) (any, error) { return mk.Invoke(ctx, in) },
			Decode: func(r json.RawMessage) (any, error) {
				var s string
				err := json.Unmarshal(r, &s)
				return s, err
			}}).Wait(fc.Context())
		if err != nil {
			return nil, err
		}
		if s, _ := v.(string); s != bigPayload(p.N) {
			return nil, fmt.Errorf("the task's result came back as %d bytes, not the %d it returned", len(s), p.N)
		}
		if p.FailOnce && fc.Attempt() == 1 {
			return nil, errors.New("failing the first attempt on purpose")
		}
		return v, nil
	}}
	return progcmd.Program{Name: "bigprog", Flows: []*engine.FlowDef{flow}, Tasks: []*engine.TaskDef{mk}}
}

// workerBackends are the stores the worker tests run on: SQLite, and the
// PostgreSQL database of BATON_TEST_POSTGRES when it is set.
func workerBackends() []string {
	if os.Getenv("BATON_TEST_POSTGRES") != "" {
		return []string{"sqlite", "postgres"}
	}
	return []string{"sqlite"}
}

// workerTestServer serves the API on the backend (a fresh SQLite store, or
// the test PostgreSQL database) with the JSON body limit maxBody (0: the
// default) and runs a worker of prog serving queue bq (with one slot of
// distributed tasks) until the test ends.
func workerTestServer(t *testing.T, backend string, prog progcmd.Program, maxBody int64) string {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	var st store.Store
	var err error
	if backend == "postgres" {
		st, err = postgres.Open(ctx, os.Getenv("BATON_TEST_POSTGRES"))
	} else {
		st, err = sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	}
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler),
		MaxBodyBytes: maxBody})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })

	wctx, cancel := context.WithCancel(ctx)
	werr := &syncBuffer{}
	env := &cli.Env{Stdout: io.Discard, Stderr: werr, Getenv: func(k string) string {
		if k == "BATON_SERVER" {
			return ts.URL
		}
		return ""
	}}
	done := make(chan int, 1)
	go func() { done <- progcmd.Main(wctx, []string{"worker", "--queue", "bq", "--slots", "bq=1"}, prog, env) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Errorf("worker did not stop: %s", werr.String())
		}
	})
	return ts.URL
}

// TestWorkerLargeResults runs a flow whose task returns a result larger
// than the server's JSON body limit (lowered to 96 KiB here, 32 MiB by
// default) on a worker: the upload is not refused, and the task run's and
// the run's results read back intact through the API and `runs show
// --json`, also after a retry that replays the task from the journal.
func TestWorkerLargeResults(t *testing.T) {
	t.Parallel()
	for _, backend := range workerBackends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testWorkerLargeResults(t, backend)
		})
	}
}

func testWorkerLargeResults(t *testing.T, backend string) {
	ctx := context.Background()
	const jsonLimit = 96 << 10
	url := workerTestServer(t, backend, bigProgram(), jsonLimit)
	const n = jsonLimit + 32<<10 // above the JSON body limit and the 64 KiB blob threshold
	want := bigPayload(n)
	code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "create", "big", "--queue", "bq",
		"--params", fmt.Sprintf(`{"n":%d,"fail_once":true}`, n))
	if code != cli.ExitOK {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	id := strings.TrimSpace(out)
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}

	// check reads the run through the API and the CLI: the task run's
	// result always, the run's when the run completed.
	check := func(stage string, completed bool) {
		t.Helper()
		d, err := c.GetRun(ctx, id)
		if err != nil {
			t.Fatalf("%s: GET run: %v", stage, err)
		}
		code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "show", id, "--json")
		if code != cli.ExitOK {
			t.Fatalf("%s: runs show: exit %d: %s", stage, code, errOut)
		}
		var cli struct {
			Result   json.RawMessage `json:"result"`
			TaskRuns []struct {
				Task   string          `json:"task"`
				Result json.RawMessage `json:"result"`
			} `json:"task_runs"`
		}
		if err := json.Unmarshal([]byte(out), &cli); err != nil {
			t.Fatalf("%s: runs show --json: %v", stage, err)
		}
		results := map[string]json.RawMessage{}
		if len(d.TaskRuns) != 1 || len(cli.TaskRuns) != 1 {
			t.Fatalf("%s: want one task run (the retry replays it), API has %d, CLI %d", stage, len(d.TaskRuns), len(cli.TaskRuns))
		}
		results["API task run"], results["CLI task run"] = d.TaskRuns[0].Result, cli.TaskRuns[0].Result
		if completed {
			results["API run"], results["CLI run"] = d.Result, cli.Result
		}
		for where, raw := range results {
			var got string
			if err := json.Unmarshal(raw, &got); err != nil || got != want {
				head := string(raw)
				if len(head) > 40 {
					head = head[:40] + "..."
				}
				t.Errorf("%s: %s result is %d bytes (%s), want the %d-byte payload (%v)", stage, where, len(raw), head, n, err)
			}
		}
	}

	r := waitRun(t, url, id, "FAILED")
	if e, _ := r["error"].(map[string]any); e == nil || !strings.Contains(fmt.Sprint(e["message"]), "on purpose") {
		t.Fatalf("attempt 1 should fail on purpose (after reading the task's result back): %v", r["error"])
	}
	check("after attempt 1", false)

	if code, _, errOut := apiTestRun(t, nil, "--server", url, "runs", "retry", id); code != cli.ExitOK {
		t.Fatalf("retry: exit %d: %s", code, errOut)
	}
	r = waitRun(t, url, id, "COMPLETED")
	if r["attempt"] != float64(2) {
		t.Errorf("attempt %v, want 2", r["attempt"])
	}
	check("after the retry", true)
}

// textProgram has a flow "keyed" that calls the distributed task "say"
// (queue bq) under the step key given as parameter; the task logs a line
// with a NUL byte and returns it.
func textProgram() progcmd.Program {
	say := &engine.TaskDef{Name: "say", Policy: engine.TaskPolicy{Queue: "bq"},
		Invoke: func(ctx context.Context, in json.RawMessage) (any, error) {
			if l, ok := engine.TaskLogger(ctx); ok {
				l.Info("nul \x00 in a log line")
			}
			return "said", nil
		}}
	flow := &engine.FlowDef{Name: "keyed", Body: func(fc *engine.FlowCtx, raw json.RawMessage) (any, error) {
		var p struct {
			Key string `json:"key"`
		}
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, err
		}
		fc.Logger().Info("flow line \x00 with a NUL")
		in := json.RawMessage(`1`)
		return fc.Call(engine.Call{Task: say, Key: p.Key, InputJSON: in,
			Fn:     func(ctx context.Context) (any, error) { return say.Invoke(ctx, in) },
			Decode: func(r json.RawMessage) (any, error) { var s string; err := json.Unmarshal(r, &s); return s, err }}).Wait(fc.Context())
	}}
	return progcmd.Program{Name: "textprog", Flows: []*engine.FlowDef{flow}, Tasks: []*engine.TaskDef{say}}
}

// TestWorkerTextAndKeys: on a worker, log lines with NUL bytes are stored
// and the run completes; a step key with a NUL byte fails the run cleanly
// with an error naming the key.
func TestWorkerTextAndKeys(t *testing.T) {
	t.Parallel()
	for _, backend := range workerBackends() {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testWorkerTextAndKeys(t, backend)
		})
	}
}

func testWorkerTextAndKeys(t *testing.T, backend string) {
	url := workerTestServer(t, backend, textProgram(), 0)
	create := func(params string) string {
		t.Helper()
		code, out, errOut := apiTestRun(t, nil, "--server", url, "runs", "create", "keyed", "--queue", "bq", "--params", params)
		if code != cli.ExitOK {
			t.Fatalf("create %s: exit %d: %s", params, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	good, bad := create(`{"key":"greet"}`), create(`{"key":"gr\u0000eet"}`)

	waitRun(t, url, good, "COMPLETED")
	c, err := client.New(url)
	if err != nil {
		t.Fatal(err)
	}
	logs, err := c.RunLogs(context.Background(), good, "")
	if err != nil {
		t.Fatalf("logs: %v", err)
	}
	var msgs []string
	for _, l := range logs {
		msgs = append(msgs, l.Message)
	}
	if want := []string{"flow line \x00 with a NUL", "nul \x00 in a log line"}; strings.Join(msgs, "|") != strings.Join(want, "|") {
		t.Errorf("logs %q, want %q", msgs, want)
	}

	r := waitRun(t, url, bad, "FAILED")
	e, _ := r["error"].(map[string]any)
	if msg, _ := e["message"].(string); !strings.Contains(msg, `step key must not contain a NUL byte: "gr\x00eet"`) {
		t.Errorf("run with a NUL in its step key: error %v; want one naming the key", r["error"])
	}
}

func TestServerMaxBlobBytesFlag(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	code, _, errOut := apiTestRun(t, nil, "--db", db, "server", "--addr", "127.0.0.1:0", "--max-blob-bytes", "0")
	if code != cli.ExitUsage || !strings.Contains(errOut, "--max-blob-bytes") {
		t.Errorf("--max-blob-bytes 0: exit %d: %s", code, errOut)
	}
}
