package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// testLeaseGiveBack: LeasesExpire with RunID takes back that one run of a
// worker at once, whatever its lease, and nothing else.
func testLeaseGiveBack(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := func(id string, state store.RunState, worker string, attempt int) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: "q", State: state, Attempt: attempt, Parameters: raw(`{}`),
			CreatedAt: at(0), UpdatedAt: at(1), StartedAt: at(1), WorkerID: worker, LeaseUntil: at(1000),
			OwnerHost: "host", OwnerPID: 10, OwnerStart: 20}
	}
	tr := store.TaskRun{ID: "T1", RunID: "A", Key: "k/T1", Task: "work", Queue: "q", State: store.TaskRunning,
		WorkerID: "w1", CreatedAt: at(0), StartedAt: at(2), LeaseUntil: at(10),
		History: []store.Transition{{At: at(2), From: "PENDING", To: "RUNNING", Cause: "worker:w1"}}}
	child := run("K", store.RunRunning, "w1", 1)
	// A subflow run on a worker before any heartbeat: no lease at all.
	child.Queue, child.ParentRunID, child.ParentStepKey, child.LeaseUntil = "", "A", "sub/0", time.Time{}
	write(t, s, store.Batch{Runs: []store.Run{
		run("A", store.RunRunning, "w1", 1),
		run("B", store.RunCancelling, "w1", 1),
		run("C", store.RunRunning, "w1", 3),
		run("D", store.RunRunning, "w2", 1),
		run("E", store.RunRunning, "w1", 2),
		run("P", store.RunPending, "w1", 1),
		child,
	}, TaskRuns: []store.TaskRun{tr}})

	give := func(id string, attempt, maxAttempts int) store.LeaseExpiry {
		t.Helper()
		exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), RunID: id, WorkerID: "w1",
			Attempt: attempt, MaxAttempts: maxAttempts, Reason: "record end of run: bad\x00byte \xff"})
		if err != nil {
			t.Fatalf("give back %s: %v", id, err)
		}
		return exp
	}

	// A: crashed and rescheduled with the next attempt; its task run stays.
	exp := give("A", 1, 3)
	if len(exp.Crashed) != 1 || exp.Crashed[0].ID != "A" || exp.Rescheduled != 1 || exp.TaskRuns != 0 {
		t.Fatalf("give back A = %+v; want A crashed and rescheduled, no task run", exp)
	}
	a := getRun(t, s, "A")
	if a.State != store.RunScheduled || a.Attempt != 2 || a.WorkerID != "" || !a.LeaseUntil.IsZero() {
		t.Errorf("A after give back: %s attempt %d worker %q lease %v; want SCHEDULED attempt 2 without a worker",
			a.State, a.Attempt, a.WorkerID, a.LeaseUntil)
	}
	if a.Error == nil || a.Error.Kind != "crashed" || !strings.Contains(a.Error.Message, "worker w1 gave the run back") ||
		!strings.Contains(a.Error.Message, `bad\x00byte`) {
		t.Errorf("A: error %+v; want kind crashed saying worker w1 gave it back and why, NUL escaped", a.Error)
	}
	checkRunEvents(t, s, "A", true,
		store.Event{RunID: "A", From: "RUNNING", To: "CRASHED", Cause: "worker:w1", At: at(20)},
		store.Event{RunID: "A", From: "CRASHED", To: "AWAITING_RETRY", Cause: "policy", At: at(20)},
		store.Event{RunID: "A", From: "AWAITING_RETRY", To: "SCHEDULED", Cause: "policy", At: at(20)})
	if got := getTaskRun(t, s, "A", "k/T1", "T1"); got.State != store.TaskRunning || got.WorkerID != "w1" {
		t.Errorf("task run T1: %s worker %q; a give back leaves task runs alone", got.State, got.WorkerID)
	}
	// Giving it back again (a resent request) finds nothing.
	if exp := give("A", 1, 3); len(exp.Crashed) != 0 {
		t.Errorf("second give back of A = %+v; want nothing", exp)
	}
	// B: CANCELLING becomes CANCELLED.
	give("B", 1, 3)
	if b := getRun(t, s, "B"); b.State != store.RunCancelled {
		t.Errorf("B: %s, want CANCELLED", b.State)
	}
	// C: at MaxAttempts it stays CRASHED; K (a subflow, MaxAttempts 0) too.
	if exp := give("C", 3, 3); len(exp.Crashed) != 1 || exp.Rescheduled != 0 {
		t.Errorf("give back C = %+v; want crashed, not rescheduled", exp)
	}
	if c := getRun(t, s, "C"); c.State != store.RunCrashed || c.Attempt != 3 || c.EndedAt.IsZero() {
		t.Errorf("C: %s attempt %d ended %v, want CRASHED at attempt 3", c.State, c.Attempt, c.EndedAt)
	}
	if exp := give("K", 0, 0); len(exp.Crashed) != 1 || exp.Rescheduled != 0 {
		t.Errorf("give back K = %+v; want crashed, not rescheduled", exp)
	}
	if k := getRun(t, s, "K"); k.State != store.RunCrashed {
		t.Errorf("K: %s, want CRASHED", k.State)
	}
	// P: a claimed run not started yet goes back too.
	if exp := give("P", 1, 3); len(exp.Crashed) != 1 || exp.Rescheduled != 1 {
		t.Errorf("give back P = %+v; want crashed and rescheduled", exp)
	}
	// D is another worker's; E is at another attempt: both untouched.
	for _, id := range []string{"D", "E"} {
		if exp := give(id, 1, 3); len(exp.Crashed) != 0 {
			t.Errorf("give back %s = %+v; want nothing", id, exp)
		}
		if r := getRun(t, s, id); r.State != store.RunRunning {
			t.Errorf("%s: %s, want RUNNING", id, r.State)
		}
	}
}
