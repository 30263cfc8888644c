package storetest

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// testLeasesAwaitingRetry: a run on a worker that waits out its flow's retry
// delay (AWAITING_RETRY) is leased like a RUNNING one: heartbeats extend its
// lease, an expired lease takes it back (CRASHED, then rescheduled with the
// next attempt while below MaxAttempts), a worker gives it back, and
// releasing its worker reschedules it. A local AWAITING_RETRY run has no
// lease and is left alone.
func testLeasesAwaitingRetry(t *testing.T, s store.Store) {
	ctx := context.Background()
	failure := &store.ErrorInfo{Message: "boom", Type: "*errors.errorString"}
	run := func(id, worker string, lease, attempt int) store.Run {
		r := store.Run{ID: id, Flow: "f", Queue: "q", State: store.RunAwaitingRetry, Attempt: attempt,
			Parameters: raw(`{}`), Error: failure, CreatedAt: at(0), UpdatedAt: at(1), StartedAt: at(1),
			WorkerID: worker, OwnerHost: "host-" + worker, OwnerPID: 10, OwnerStart: 20}
		if lease > 0 {
			r.LeaseUntil = at(lease)
		}
		return r
	}
	runs := []store.Run{
		run("A", "w1", 10, 2), // expires: rescheduled at attempt 3
		run("B", "w3", 10, 1), // extended: does not expire
		run("C", "w1", 10, 3), // expires at MaxAttempts: stays CRASHED
		run("D", "", 0, 1),    // local: no lease
		run("E", "w1", 1000, 1),
		run("F", "w4", 1000, 2),
	}
	write(t, s, store.Batch{Runs: runs})
	for _, id := range []string{"w3", "w4"} {
		if err := s.WorkerUpsert(ctx, store.Worker{ID: id, Queues: []string{"q"}, StartedAt: at(0), LastSeen: at(0)}); err != nil {
			t.Fatalf("WorkerUpsert: %v", err)
		}
	}

	if err := s.LeasesExtend(ctx, store.LeasesExtendParams{WorkerIDs: []string{"w3"}, Until: at(200), At: at(200)}); err != nil {
		t.Fatalf("LeasesExtend: %v", err)
	}
	wantB := runs[1]
	wantB.LeaseUntil = at(200)
	checkRun(t, "extended AWAITING_RETRY run", getRun(t, s, "B"), wantB)

	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), MaxAttempts: 3})
	if err != nil {
		t.Fatalf("LeasesExpire: %v", err)
	}
	if g := sortedIDs(runIDs(exp.Crashed)); !reflect.DeepEqual(g, []string{"A", "C"}) || exp.Rescheduled != 1 {
		t.Errorf("LeasesExpire = crashed %v rescheduled %d; want [A C] and 1", g, exp.Rescheduled)
	}
	a := getRun(t, s, "A")
	if a.State != store.RunScheduled || a.Attempt != 3 || a.WorkerID != "" || !a.LeaseUntil.IsZero() ||
		a.OwnerHost != "" || a.OwnerPID != 0 || !a.EndedAt.IsZero() {
		t.Errorf("expired AWAITING_RETRY run A = %s; want SCHEDULED at attempt 3 without worker, lease or owner", show(a))
	}
	if a.Error == nil || a.Error.Kind != "crashed" || !strings.Contains(a.Error.Message, "w1") ||
		!strings.Contains(a.Error.Message, "attempt 2") {
		t.Errorf("run A: Error %+v, want kind crashed naming attempt 2 and worker w1", a.Error)
	}
	checkRunEvents(t, s, "A", true,
		store.Event{RunID: "A", From: "AWAITING_RETRY", To: "CRASHED", Cause: "lease", At: at(20)},
		store.Event{RunID: "A", From: "CRASHED", To: "AWAITING_RETRY", Cause: "policy", At: at(20)},
		store.Event{RunID: "A", From: "AWAITING_RETRY", To: "SCHEDULED", Cause: "policy", At: at(20)})
	c := getRun(t, s, "C")
	if c.State != store.RunCrashed || c.Attempt != 3 || c.EndedAt.IsZero() || !c.LeaseUntil.IsZero() ||
		c.Error == nil || c.Error.Kind != "crashed" {
		t.Errorf("expired AWAITING_RETRY run C at MaxAttempts = %s; want CRASHED at attempt 3, ended", show(c))
	}
	checkRun(t, "AWAITING_RETRY run with an extended lease", getRun(t, s, "B"), wantB)
	checkRun(t, "local AWAITING_RETRY run", getRun(t, s, "D"), runs[3])

	// A worker gives back its run that awaits its retry.
	exp, err = s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(30), RunID: "E", WorkerID: "w1", Attempt: 1,
		MaxAttempts: 3, Reason: "shutting down"})
	if err != nil {
		t.Fatalf("give back E: %v", err)
	}
	if len(exp.Crashed) != 1 || exp.Rescheduled != 1 {
		t.Errorf("give back E = %+v; want E crashed and rescheduled", exp)
	}
	if e := getRun(t, s, "E"); e.State != store.RunScheduled || e.Attempt != 2 || e.WorkerID != "" {
		t.Errorf("given back AWAITING_RETRY run E = %s; want SCHEDULED at attempt 2 without a worker", show(e))
	}

	// Releasing its worker (a graceful shutdown) reschedules it at once.
	if err := s.WorkerRelease(ctx, "w4"); err != nil {
		t.Fatalf("WorkerRelease: %v", err)
	}
	f := getRun(t, s, "F")
	if f.State != store.RunScheduled || f.Attempt != 3 || f.WorkerID != "" || !f.LeaseUntil.IsZero() || f.OwnerHost != "" {
		t.Errorf("released AWAITING_RETRY run F = %s; want SCHEDULED at attempt 3 without worker, lease or owner", show(f))
	}
	checkRunEvents(t, s, "F", true,
		store.Event{RunID: "F", From: "AWAITING_RETRY", To: "SCHEDULED", Cause: "worker:w4", At: f.UpdatedAt})

	// Nothing else expires later but B once its extended lease ends.
	exp, err = s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(300), MaxAttempts: 3})
	if err != nil {
		t.Fatalf("LeasesExpire at 300: %v", err)
	}
	if g := runIDs(exp.Crashed); !reflect.DeepEqual(g, []string{"B"}) {
		t.Errorf("LeasesExpire at 300 crashed %v, want [B]", g)
	}
	checkRun(t, "local AWAITING_RETRY run", getRun(t, s, "D"), runs[3])
}
