package batoncmd

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/cli/servecmd"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/store"
)

// TestDeploymentsCommands: every `deployments` command works on the store
// (--db) and through a server (--server), and both refuse bad input with
// exit 2 and the same message.
func TestDeploymentsCommands(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	if err := a.St.FlowUpsert(context.Background(), store.FlowUpsertParams{Flows: []store.Flow{{Name: "train",
		Parameters: json.RawMessage(`{"type":"object","properties":{"epochs":{"type":"integer"}}}`)}}}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		args []string
	}{{"db", []string{"--db", a.DB}}, {"server", []string{"--server", a.URL}}} {
		run := func(args ...string) (int, string, string) {
			return apiTestRun(t, nil, append(append([]string{}, mode.args...), args...)...)
		}
		ok := func(args ...string) string {
			t.Helper()
			code, out, errOut := run(args...)
			if code != cli.ExitOK {
				t.Fatalf("%s: %v: exit %d: %s", mode.name, args, code, errOut)
			}
			return out
		}
		name := "nightly-" + mode.name
		out := ok("deployments", "create", name, "--flow", "train", "--cron", "0 3 * * *", "--timezone", "Europe/Berlin",
			"--params", `{"epochs":2}`, "--json")
		d := runsTestDecode[apitype.Deployment](t, out)
		if d.Name != name || len(d.Schedules) != 1 || d.Schedules[0].Timezone != "Europe/Berlin" {
			t.Fatalf("%s: created %+v", mode.name, d)
		}
		if out := ok("deployments", "list"); !strings.Contains(out, name) {
			t.Fatalf("%s: list: %s", mode.name, out)
		}
		out = ok("deployments", "next", name, "--count", "20", "--json")
		if n := runsTestDecode[apitype.DeploymentNext](t, out); len(n.Fires) != 20 {
			t.Fatalf("%s: next: %s", mode.name, out)
		}
		ok("deployments", "pause", name, "--note", "data late")
		if out := ok("deployments", "show", name); !strings.Contains(out, "PAUSED: data late") || !strings.Contains(out, "deployment_paused") {
			t.Fatalf("%s: show after pause: %s", mode.name, out)
		}
		ok("deployments", "resume", name)
		ok("deployments", "update", name, "--description", "nightly training", "--overlap", "buffer_one")
		out = ok("deployments", "show", name, "--json")
		if d := runsTestDecode[apitype.Deployment](t, out); d.Description != "nightly training" || d.Schedules[0].Overlap != "buffer_one" || d.Paused {
			t.Fatalf("%s: after update: %+v", mode.name, d)
		}
		out = ok("deployments", "run", name, "--param", "epochs=5", "--json")
		if r := runsTestDecode[apitype.Run](t, out); r.Deployment != name || !store.SameJSON(r.Parameters, json.RawMessage(`{"epochs":5}`)) {
			t.Fatalf("%s: run: %s", mode.name, out)
		}
		ok("deployments", "backfill", name, "--from", "2026-01-01", "--to", "2026-01-05")
		out = ok("deployments", "backfill", name, "--from", "2026-01-01", "--to", "2026-01-05", "--json")
		if res := runsTestDecode[apitype.BackfillResult](t, out); len(res.Created) != 0 || res.Existed != 4 {
			t.Fatalf("%s: backfill twice: %s", mode.name, out)
		}
		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{"deployments", "create", "x", "--flow", "train", "--cron", "not a cron"}, "cron"},
			{[]string{"deployments", "create", "x", "--flow", "train", "--cron", "0 3 * * *", "--timezone", "Nowhere/City"}, "timezone"},
			{[]string{"deployments", "create", "x", "--flow", "train", "--interval", "sometimes"}, "interval"},
			{[]string{"deployments", "create", "x", "--flow", "train", "--max-active", "-2"}, "max_active"},
			{[]string{"deployments", "create", "x", "--flow", "train", "--interval", "1h", "--overlap", "whenever"}, "overlap"},
			{[]string{"deployments", "create", name, "--flow", "train"}, "already exists"},
			{[]string{"deployments", "show", "missing"}, `unknown deployment "missing"`},
			{[]string{"deployments", "run", "missing"}, `unknown deployment "missing"`},
			{[]string{"deployments", "run", name, "--param", "epochs=many"}, "epochs"},
			{[]string{"deployments", "next", name, "--count", "0"}, "--count"},
			{[]string{"deployments", "backfill", name, "--from", "yesterday", "--to", "2026-01-05"}, "--from"},
		} {
			code, _, errOut := run(bad.args...)
			if code != cli.ExitUsage || !strings.Contains(errOut, bad.want) {
				t.Errorf("%s: %v: exit %d: %s; want exit 2 naming %s", mode.name, bad.args, code, errOut, bad.want)
			}
		}
		ok("deployments", "delete", name)
		if code, _, _ := run("deployments", "show", name); code != cli.ExitUsage {
			t.Errorf("%s: show after delete: exit %d", mode.name, code)
		}
	}
}

// TestRunsListLate: a run not started by its planned start plus a minute
// is printed LATE by runs list and show, and --state LATE lists it.
func TestRunsListLate(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	clk := clock.NewFake(time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC))
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Clock: clk}
		code := Baton(context.Background(), append([]string{"--db", db}, args...), env, servecmd.Config{})
		return code, out.String(), errb.String()
	}
	if code, _, errOut := run("deployments", "create", "d", "--flow", "f"); code != cli.ExitOK {
		t.Fatalf("create: %s", errOut)
	}
	code, out, errOut := run("deployments", "run", "d")
	if code != cli.ExitOK {
		t.Fatalf("run: %s", errOut)
	}
	id := strings.TrimSpace(out)
	if _, out, _ := run("runs", "list", "--state", "LATE"); strings.Contains(out, id) {
		t.Fatalf("listed late at once: %s", out)
	}
	clk.Advance(2 * time.Minute)
	if _, out, _ := run("runs", "list", "--state", "late"); !strings.Contains(out, id) || !strings.Contains(out, "LATE") {
		t.Fatalf("runs list --state LATE: %s", out)
	}
	if _, out, _ := run("runs", "show", id); !strings.Contains(out, "LATE") || !strings.Contains(out, "Deployment:") {
		t.Fatalf("runs show: %s", out)
	}
}

// TestWorkerRegistersDeployments: a program's worker registers its
// deployments when it starts, and the server's scheduler then runs them
// on their own: a run of the deployment completes on the worker.
func TestWorkerRegistersDeployments(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	prog := countProgram()
	prog.Deployments = []apitype.DeploymentRequest{{Name: "every-second", Flow: "count",
		Parameters: json.RawMessage(`{"count":3}`), Schedules: []apitype.ScheduleRequest{{Interval: "1s", Overlap: "allow_all"}}}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var out, errb syncBuffer
	go func() {
		env := &cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
		done <- progcmd.Main(ctx, []string{"worker", "--server", a.URL, "--concurrency", "2"}, prog, env)
	}()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		runs, err := a.St.DeploymentRuns(context.Background(), store.DeploymentRunsParams{Deployment: "every-second",
			States: []store.RunState{store.RunCompleted}})
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) > 0 {
			if !store.SameJSON(runs[0].Parameters, json.RawMessage(`{"count":3,"name":"d"}`)) {
				t.Fatalf("parameters of the scheduled run: %s", runs[0].Parameters)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no run of the deployment completed in 30s; worker output: %s", errb.String())
		}
		select {
		case code := <-done:
			t.Fatalf("the worker exited with %d: %s", code, errb.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	d, err := a.St.DeploymentGet(context.Background(), "every-second")
	if err != nil || d.Source != store.SourceCode {
		t.Fatalf("registered deployment: %+v %v", d, err)
	}
}
