package batoncmd

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/store"
)

// TestLimits: `limits set|list|delete` through a server and on the store
// answer alike, refuse bad input with the same message naming the field
// (exit 2, nothing changed), and `runs show` says what a run's
// AWAITING_SLOT task runs wait for: the limit's slots and who holds them.
func TestLimits(t *testing.T) {
	t.Parallel()
	a := apiTestServer(t)
	srv := []string{"--server", a.URL, "--as", "carol"}
	db := []string{"--db", a.DB}
	for _, surface := range [][]string{srv, db} {
		for _, bad := range []struct {
			args []string
			want string
		}{
			{[]string{"limits", "set", "robot", "-1"}, "limit: must be 0 or more, got -1"},
			{[]string{"limits", "set", "robot", "many"}, `limit: must be an integer of 0 or more, got "many"`},
			{[]string{"limits", "set", "", "1"}, "tag: must not be empty"},
			{[]string{"limits", "set", "robot"}, "want a TAG and a limit N"},
			{[]string{"limits", "delete", "nothing"}, `tag "nothing" has no limit`},
		} {
			code, _, errOut := apiTestRun(t, nil, append(surface, bad.args...)...)
			if code != cli.ExitUsage || !strings.Contains(errOut, bad.want) {
				t.Errorf("%v: exit %d: %s; want exit 2 with %q", bad.args, code, errOut, bad.want)
			}
		}
	}
	// The API refuses the same input with the same message.
	if msg := store.CheckLimitMax(-1).Error(); msg != "limit: must be 0 or more, got -1" {
		t.Fatalf("CheckLimitMax(-1) = %q", msg)
	}
	if ls, err := a.St.LimitList(context.Background(), nil); err != nil || len(ls) != 0 {
		t.Fatalf("refused input set limits: %+v, %v", ls, err)
	}

	code, out, errOut := apiTestRun(t, nil, append(srv, "limits", "set", "robot", "4", "--json")...)
	if code != cli.ExitOK {
		t.Fatalf("limits set: exit %d: %s", code, errOut)
	}
	if l := runsTestDecode[apitype.Limit](t, out); l.Tag != "robot" || l.Limit != 4 || l.UpdatedBy != "carol" {
		t.Errorf("limits set --json = %+v", l)
	}
	if code, out, errOut := apiTestRun(t, nil, append(db, "limits", "set", "robot", "1")...); code != cli.ExitOK ||
		!strings.Contains(out, "limit robot: 1 slots") {
		t.Fatalf("limits set on the store: exit %d: %s %s", code, out, errOut)
	}

	// A run whose robot task runs wait: one holds the slot, two wait.
	now := time.Now().UTC().Truncate(time.Microsecond)
	run := store.Run{ID: "run-1", Flow: "lab", State: store.RunRunning, Attempt: 1, Queue: "default",
		Parameters: json.RawMessage(`null`), CreatedAt: now, UpdatedAt: now, StartedAt: now}
	tr := func(id string, state store.TaskState, worker string, at time.Time) store.TaskRun {
		return store.TaskRun{ID: id, RunID: run.ID, Key: "arm/" + id, Task: "arm", Queue: "lab", State: state,
			FlowAttempt: 1, CreatedAt: at, StartedAt: at, WorkerID: worker, Tags: []string{"robot"}}
	}
	if err := a.St.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{run}, TaskRuns: []store.TaskRun{
		tr("t1", store.TaskRunning, "w-9", now), tr("t2", store.TaskAwaitingSlot, "", now.Add(time.Second)),
		tr("t3", store.TaskAwaitingSlot, "", now.Add(2*time.Second)),
	}}); err != nil {
		t.Fatal(err)
	}
	for _, surface := range [][]string{srv, db} {
		code, out, errOut := apiTestRun(t, nil, append(surface, "limits", "list")...)
		if code != cli.ExitOK || !strings.Contains(out, "robot  1      1        2") || !strings.Contains(out, "t1") ||
			!strings.Contains(out, "w-9") {
			t.Errorf("limits list %v: exit %d:\n%s%s", surface, code, out, errOut)
		}
		code, out, errOut = apiTestRun(t, nil, append(surface, "limits", "list", "--json")...)
		ls := runsTestDecode[[]apitype.Limit](t, out)
		if code != cli.ExitOK || len(ls) != 1 || ls[0].Running != 1 || ls[0].Waiting != 2 || len(ls[0].Holders) != 1 ||
			ls[0].Holders[0].TaskRunID != "t1" || ls[0].Holders[0].WorkerID != "w-9" {
			t.Errorf("limits list --json %v: exit %d: %+v %s", surface, code, ls, errOut)
		}
		code, out, errOut = apiTestRun(t, nil, append(surface, "runs", "show", run.ID)...)
		for _, want := range []string{`limit "robot": 1 of 1 slots held by task run t1 (arm) of run run-1 on worker w-9`,
			`no live worker serves task "arm" on queue "lab"`, "2 task runs wait", "AWAITING_SLOT"} {
			if code != cli.ExitOK || !strings.Contains(out, want) {
				t.Errorf("runs show %v: exit %d, want %q in:\n%s%s", surface, code, want, out, errOut)
			}
		}
		code, out, _ = apiTestRun(t, nil, append(surface, "runs", "show", run.ID, "--json")...)
		if d := runsTestDecode[apitype.RunDetail](t, out); code != cli.ExitOK || !strings.Contains(d.WaitingReason, `limit "robot"`) {
			t.Errorf("runs show --json %v: waiting_reason %q", surface, d.WaitingReason)
		}
	}
	if code, out, errOut := apiTestRun(t, nil, append(srv, "limits", "delete", "robot")...); code != cli.ExitOK ||
		!strings.Contains(out, "limit robot deleted") {
		t.Fatalf("limits delete: exit %d: %s %s", code, out, errOut)
	}
	if code, out, _ := apiTestRun(t, nil, append(db, "limits", "list")...); code != cli.ExitOK || !strings.Contains(out, "No limits") {
		t.Errorf("limits list after delete: %s", out)
	}
}
