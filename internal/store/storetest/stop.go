package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Ending a run stops its distributed work: the transaction that cancels or
// ends a run cancels its PENDING task runs, claims hand out task runs of
// RUNNING runs only, and RunStopList names the runs whose running work must
// be stopped.

// stopFixture writes run id (in state, at attempt 1, held by worker w with
// a lease until at(100) when held) with a PENDING distributed task run
// "p1", a PENDING local one "p2", a RUNNING distributed one "r1" held by
// worker "tw" until at(1000) and a COMPLETED one "c1". It returns the task runs by ID.
func stopFixture(t *testing.T, s store.Store, id string, state store.RunState, held bool) map[string]store.TaskRun {
	t.Helper()
	run := store.Run{ID: id, Flow: "f", State: state, Attempt: 1, Queue: "q", CreatedAt: at(0), UpdatedAt: at(0)}
	if held {
		run.WorkerID, run.LeaseUntil = "w-"+id, at(100)
	}
	hist := func(to store.TaskState) []store.Transition {
		return []store.Transition{{At: at(1), To: string(to), Cause: "engine", Message: "queued"}}
	}
	trs := []store.TaskRun{
		{ID: "p1", RunID: id, Key: "k/1", Task: "t", Queue: "tq", State: store.TaskPending, FlowAttempt: 1,
			Input: raw(`1`), CreatedAt: at(1), History: hist(store.TaskPending)},
		{ID: "p2", RunID: id, Key: "k/2", Task: "t", State: store.TaskPending, FlowAttempt: 1, CreatedAt: at(1)},
		{ID: "r1", RunID: id, Key: "k/3", Task: "t", Queue: "tq", State: store.TaskRunning, FlowAttempt: 1,
			WorkerID: "tw", LeaseUntil: at(1000), StartedAt: at(2), CreatedAt: at(1), History: hist(store.TaskRunning)},
		{ID: "c1", RunID: id, Key: "k/4", Task: "t", Queue: "tq", State: store.TaskCompleted, FlowAttempt: 1,
			Result: raw(`4`), StartedAt: at(2), EndedAt: at(3), CreatedAt: at(1), History: hist(store.TaskCompleted)},
	}
	write(t, s, store.Batch{Runs: []store.Run{run}, TaskRuns: trs})
	out := map[string]store.TaskRun{}
	for _, tr := range trs {
		out[tr.ID] = tr
	}
	return out
}

// checkStopped checks the task runs of run id after the run entered state
// at time when, with cause: the PENDING ones are CANCELLED when stopped is
// set (and untouched otherwise), the others are untouched.
func checkStopped(t *testing.T, s store.Store, id string, trs map[string]store.TaskRun, state store.RunState,
	stopped bool, cause string, when time.Time) {
	t.Helper()
	for _, tid := range []string{"p1", "p2", "r1", "c1"} {
		want := trs[tid]
		if stopped && want.State == store.TaskPending {
			want.History = append(slices.Clone(want.History), store.Transition{At: when, From: "PENDING",
				To: "CANCELLED", Cause: cause, Message: store.StoppedMessage(state)})
			want.State, want.EndedAt = store.TaskCancelled, when
			want.Error = &store.ErrorInfo{Message: store.StoppedMessage(state), Kind: "cancelled"}
		}
		checkTaskRun(t, fmt.Sprintf("run %s %s: task run %s", id, state, tid),
			getTaskRun(t, s, want.RunID, want.Key, want.ID), want)
	}
}

func testRunTransitionStopsTaskRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	tests := []struct {
		from, to store.RunState
		stopped  bool
	}{
		{store.RunRunning, store.RunCancelling, true},
		{store.RunRunning, store.RunCancelled, true},
		{store.RunCancelling, store.RunCancelled, true},
		{store.RunRunning, store.RunFailed, true},
		{store.RunRunning, store.RunCrashed, true},
		{store.RunRunning, store.RunCompleted, true},
		{store.RunRunning, store.RunAwaitingRetry, false},
		{store.RunPending, store.RunRunning, false},
		{store.RunCrashed, store.RunScheduled, false},
	}
	for i, tc := range tests {
		id := fmt.Sprintf("run-%d", i)
		trs := stopFixture(t, s, id, tc.from, false)
		when := at(10 + i)
		if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: id, From: []store.RunState{tc.from},
			To: tc.to, Cause: "user", Message: "test", At: when}); err != nil {
			t.Fatalf("RunTransition %s -> %s: %v", tc.from, tc.to, err)
		}
		checkStopped(t, s, id, trs, tc.to, tc.stopped, "user", when)
		// The cancellation is part of the run's history.
		if tc.stopped {
			var found bool
			for _, e := range events(t, s, id) {
				if e.TaskRunID == "p1" && e.From == "PENDING" && e.To == "CANCELLED" && e.Cause == "user" {
					found = true
				}
			}
			if !found {
				t.Errorf("EventList of %s (%s) lacks the cancellation of task run p1", id, tc.to)
			}
		}
	}
}

func testLeasesExpireStopsTaskRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	// A CANCELLING run becomes CANCELLED, a RUNNING one at its last
	// attempt CRASHED: both end. A RUNNING one with attempts left is
	// rescheduled: its next attempt waits for its queued steps.
	cancelling := stopFixture(t, s, "cancelling", store.RunCancelling, true)
	last := stopFixture(t, s, "last", store.RunRunning, true)
	retried := stopFixture(t, s, "retried", store.RunRunning, true)
	for _, id := range []string{"last", "cancelling"} {
		// Attempt 3 of at most 3.
		r := getRun(t, s, id)
		r.Attempt = 3
		write(t, s, store.Batch{Runs: []store.Run{r}})
	}
	// The task run "r1" is leased longer than the runs: only the runs expire.
	when := at(150)
	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: when, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(exp.Crashed) != 3 || exp.Rescheduled != 1 {
		t.Fatalf("LeasesExpire = %d crashed, %d rescheduled; want 3, 1", len(exp.Crashed), exp.Rescheduled)
	}
	for _, c := range []struct {
		id    string
		trs   map[string]store.TaskRun
		state store.RunState
	}{{"cancelling", cancelling, store.RunCancelled}, {"last", last, store.RunCrashed}, {"retried", retried, store.RunScheduled}} {
		if r := getRun(t, s, c.id); r.State != c.state {
			t.Fatalf("run %s is %s after LeasesExpire, want %s", c.id, r.State, c.state)
		}
		checkStopped(t, s, c.id, c.trs, c.state, c.state.Final(), "lease", when)
	}
}

func testWorkerReleaseStopsTaskRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	trs := stopFixture(t, s, "c", store.RunCancelling, true)
	before := time.Now()
	if err := s.WorkerRelease(ctx, "w-c"); err != nil {
		t.Fatal(err)
	}
	if r := getRun(t, s, "c"); r.State != store.RunCancelled {
		t.Fatalf("run is %s after WorkerRelease, want CANCELLED", r.State)
	}
	p1 := getTaskRun(t, s, "c", "k/1", "p1")
	if p1.State != store.TaskCancelled || p1.EndedAt.Before(before.Truncate(time.Millisecond)) || p1.Error == nil ||
		p1.Error.Kind != "cancelled" {
		t.Errorf("PENDING task run after WorkerRelease: %s ended %v error %+v, want CANCELLED now of kind cancelled",
			p1.State, p1.EndedAt, p1.Error)
	}
	if n := len(p1.History); n == 0 || p1.History[n-1].Cause != "worker:w-c" || p1.History[n-1].To != "CANCELLED" {
		t.Errorf("PENDING task run after WorkerRelease: history %+v, want a last transition to CANCELLED by worker:w-c", p1.History)
	}
	checkTaskRun(t, "RUNNING task run of another worker", getTaskRun(t, s, "c", "k/3", "r1"), trs["r1"])
}

func testTaskRunClaimActiveRunsOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	states := []store.RunState{store.RunScheduled, store.RunPending, store.RunRunning, store.RunCancelling,
		store.RunAwaitingRetry, store.RunPaused, store.RunCompleted, store.RunFailed, store.RunCancelled, store.RunCrashed}
	var b store.Batch
	for i, st := range states {
		id := "run-" + string(st)
		b.Runs = append(b.Runs, store.Run{ID: id, Flow: "f", State: st, Attempt: 1, CreatedAt: at(0)})
		b.TaskRuns = append(b.TaskRuns, store.TaskRun{ID: "t-" + string(st), RunID: id, Key: "k", Task: "t",
			Queue: "q", State: store.TaskPending, CreatedAt: at(i)})
	}
	// A task run of a run that does not exist is nobody's work either.
	b.TaskRuns = append(b.TaskRuns, store.TaskRun{ID: "t-orphan", RunID: "missing", Key: "k", Task: "t",
		Queue: "q", State: store.TaskPending, CreatedAt: at(0)})
	write(t, s, b)
	got, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"t"},
		Limit: 100, LeaseUntil: at(100), At: at(50)})
	if err != nil {
		t.Fatal(err)
	}
	// A PAUSED run was suspended while workers execute its task runs: they
	// go on (its task run here was created later than the RUNNING one's).
	if g := taskRunIDs(got); !reflect.DeepEqual(g, []string{"t-RUNNING", "t-PAUSED"}) {
		t.Errorf("TaskRunClaim = %v, want only the task runs of the RUNNING and PAUSED runs", g)
	}
	// Once the run is cancelled, its remaining work is not handed out.
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{{ID: "t-later", RunID: "run-RUNNING", Key: "k2", Task: "t",
		Queue: "q", State: store.TaskPending, CreatedAt: at(60)}}})
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-RUNNING", From: []store.RunState{store.RunRunning},
		To: store.RunCancelling, Cause: "user"}); err != nil {
		t.Fatal(err)
	}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{{ID: "t-racing", RunID: "run-RUNNING", Key: "k3", Task: "t",
		Queue: "q", State: store.TaskPending, CreatedAt: at(61)}}})
	got, err = s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"t"},
		Limit: 100, LeaseUntil: at(100), At: at(70)})
	if err != nil || len(got) != 0 {
		t.Errorf("TaskRunClaim of a CANCELLING run's task runs = %v, %v; want none", taskRunIDs(got), err)
	}
	if tr := getTaskRun(t, s, "run-RUNNING", "k2", "t-later"); tr.State != store.TaskCancelled {
		t.Errorf("PENDING task run of a CANCELLING run is %s, want CANCELLED", tr.State)
	}
}

func testRunStopList(t *testing.T, s store.Store) {
	ctx := context.Background()
	if got, err := s.RunStopList(ctx); err != nil || len(got) != 0 {
		t.Fatalf("RunStopList of an empty store = %v, %v", got, err)
	}
	running := func(id, runID string) store.TaskRun {
		return store.TaskRun{ID: id, RunID: runID, Key: "k/" + id, Task: "t", Queue: "q", State: store.TaskRunning,
			WorkerID: "tw", LeaseUntil: at(100), CreatedAt: at(0)}
	}
	run := func(id string, st store.RunState, attempt int) store.Run {
		return store.Run{ID: id, Flow: "f", State: st, Attempt: attempt, CreatedAt: at(0)}
	}
	write(t, s, store.Batch{
		Runs: []store.Run{
			run("a-cancelling", store.RunCancelling, 2),
			run("b-cancelled", store.RunCancelled, 1), // with a running task run
			run("c-failed", store.RunFailed, 3),       // with a running task run
			run("d-cancelled", store.RunCancelled, 1), // nothing runs
			run("e-running", store.RunRunning, 1),     // active
			run("f-scheduled", store.RunScheduled, 2), // the next attempt waits for its task run
			run("g-completed", store.RunCompleted, 1), // its task run is local
		},
		TaskRuns: []store.TaskRun{
			running("t1", "b-cancelled"), running("t2", "b-cancelled"), running("t3", "c-failed"),
			running("t4", "e-running"), running("t5", "f-scheduled"),
			{ID: "t6", RunID: "g-completed", Key: "k", Task: "t", State: store.TaskRunning, CreatedAt: at(0)},
			{ID: "t7", RunID: "d-cancelled", Key: "k", Task: "t", Queue: "q", State: store.TaskCancelled, CreatedAt: at(0)},
		},
	})
	got, err := s.RunStopList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RunStop{{RunID: "a-cancelling", Attempt: 2}, {RunID: "b-cancelled", Attempt: 1},
		{RunID: "c-failed", Attempt: 3}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RunStopList = %+v, want %+v", got, want)
	}
}

// testNotifierStop: cancelling PENDING task runs wakes their waiters
// ("done"), and a run that ends while task runs of it still run announces
// it ("cancel") so that servers stop them.
func testNotifierStop(t *testing.T, s store.Store) {
	n, ok := s.(store.Notifier)
	if !ok {
		t.Skip("the store does not implement store.Notifier")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := n.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	stopFixture(t, s, "x", store.RunRunning, false)
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "x", From: []store.RunState{store.RunRunning},
		To: store.RunFailed, Cause: "engine"}); err != nil {
		t.Fatal(err)
	}
	received := map[store.Notification]bool{}
	timeout := time.After(5 * time.Second)
	for !received[store.Notification{Kind: "done", Payload: "x"}] || !received[store.Notification{Kind: "cancel", Payload: "x"}] {
		select {
		case got := <-ch:
			received[got] = true
		case <-timeout:
			t.Fatalf("no done and cancel notifications for run x within 5s (got %v)", received)
		}
	}
}

// testReleaseStopsTaskRuns: a RUNNING task run given back (expired lease,
// worker released) becomes CANCELLED rather than PENDING when its run is
// cancelling or has ended: nothing would ever claim it.
func testReleaseStopsTaskRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	running := func(id, runID, worker string, lease int) store.TaskRun {
		return store.TaskRun{ID: id, RunID: runID, Key: "k/" + id, Task: "t", Queue: "q", State: store.TaskRunning,
			WorkerID: worker, LeaseUntil: at(lease), StartedAt: at(1), CreatedAt: at(0)}
	}
	write(t, s, store.Batch{
		Runs: []store.Run{
			{ID: "ended", Flow: "f", State: store.RunFailed, Attempt: 1, CreatedAt: at(0)},
			{ID: "cancelling", Flow: "f", State: store.RunCancelling, Attempt: 1, CreatedAt: at(0)},
			{ID: "active", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(0)},
		},
		TaskRuns: []store.TaskRun{
			running("e1", "ended", "tw", 10), running("e2", "ended", "tw2", 1000),
			running("c1", "cancelling", "tw", 10), running("a1", "active", "tw", 10),
		},
	})
	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), MaxAttempts: 3})
	if err != nil || exp.TaskRuns != 3 {
		t.Fatalf("LeasesExpire = %+v, %v; want 3 task runs taken back", exp, err)
	}
	if err := s.WorkerRelease(ctx, "tw2"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		runID, id string
		state     store.TaskState
		cause     string
	}{
		{"ended", "e1", store.TaskCancelled, "lease"},
		{"ended", "e2", store.TaskCancelled, "worker:tw2"},
		{"cancelling", "c1", store.TaskCancelled, "lease"},
		{"active", "a1", store.TaskPending, "lease"},
	} {
		got := getTaskRun(t, s, c.runID, "k/"+c.id, c.id)
		n := len(got.History)
		if got.State != c.state || got.WorkerID != "" || !got.LeaseUntil.IsZero() || n == 0 ||
			got.History[n-1].To != string(c.state) || got.History[n-1].Cause != c.cause {
			t.Errorf("task run %s of run %s given back: %s worker %q lease %v history %+v; want %s by %s",
				c.id, c.runID, got.State, got.WorkerID, got.LeaseUntil, got.History, c.state, c.cause)
		}
	}
}
