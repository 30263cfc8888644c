package worker_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/worker"
)

// gate holds gateStep until the test opens it.
type gate struct {
	started chan struct{}
	open    chan struct{}
	openIt  func() // opens it (once)
}

func newGate() *gate {
	g := &gate{started: make(chan struct{}, 1), open: make(chan struct{})}
	g.openIt = sync.OnceFunc(func() { close(g.open) })
	return g
}

// theGate is the gate of the test running (TestPauseRequestedOnWorker is
// its only user), new for each run of it (-count).
var theGate atomic.Pointer[gate]

var gateStep = baton.Task("worker-test.gate-step", func(_ context.Context, n int) (int, error) {
	g := theGate.Load()
	select {
	case g.started <- struct{}{}:
	default:
	}
	<-g.open
	return n + 1, nil
})

type bonus struct {
	Bonus int `json:"bonus"`
}

var steeredFlow = baton.Flow("worker-test.steered", func(ctx baton.Context, _ bonus) (int, error) {
	n, err := gateStep.Run(ctx, 1)
	if err != nil {
		return 0, err
	}
	s, err := baton.Settings[bonus](ctx)
	if err != nil {
		return 0, err
	}
	return waitStep.Run(ctx, n+s.Bonus)
})

// TestPauseRequestedOnWorker: a pause asked through the API while a
// worker's run executes a step pauses the run before its next step; the
// worker releases it; a resume reschedules it, and the replay passes the
// recorded pause and reads the settings updated meanwhile.
func TestPauseRequestedOnWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	g := newGate()
	theGate.Store(g)
	st, cl := runWorker(t, steeredFlow, worker.Config{Concurrency: 1, ShutdownGrace: 100 * time.Millisecond,
		SuspendGrace: 20 * time.Millisecond, PausePoll: -1}, g.openIt)
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: steeredFlow.Name(), Parameters: []byte(`{"bonus":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.started:
	case <-time.After(20 * time.Second):
		r, _ := st.RunGet(ctx, run.ID)
		t.Fatalf("the first step did not start: run %s %+v", r.State, r.Error)
	}
	pr, err := cl.PauseRun(ctx, run.ID, apitype.PauseRunRequest{Reason: "recalibrate"})
	if err != nil || pr.PauseRequest == nil || pr.PauseRequest.Reason != "recalibrate" {
		t.Fatalf("pause: %+v, %v", pr.PauseRequest, err)
	}
	if _, err := cl.UpdateRun(ctx, run.ID, apitype.UpdateRunRequest{Parameters: []byte(`{"bonus":100}`)}); err != nil {
		t.Fatalf("update: %v", err)
	}
	g.openIt()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := st.RunGet(ctx, run.ID)
		if err == nil && r.State == store.RunPaused && r.WorkerID == "" {
			if r.PauseRequest != nil {
				t.Errorf("paused with the request still pending: %+v", r.PauseRequest)
			}
			break
		}
		if err == nil && r.State.Final() {
			t.Fatalf("run ended %s before pausing: %+v", r.State, r.Error)
		}
		if time.Now().After(deadline) {
			t.Fatalf("run is %s held by %q, want PAUSED and released", r.State, r.WorkerID)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := cl.SendInput(ctx, run.ID, apitype.InputRequest{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	final, err := cl.WaitRun(ctx, run.ID)
	if err != nil || final.State != string(store.RunCompleted) || strings.TrimSpace(string(final.Result)) != "103" {
		t.Fatalf("run: %+v, %v; want COMPLETED with 103", final, err)
	}
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]int{}
	for _, tr := range trs {
		steps[tr.Task]++
	}
	if steps[gateStep.Name()] != 1 || steps["pause"] != 1 || steps["settings"] != 1 || steps[waitStep.Name()] != 1 {
		t.Errorf("task runs per task: %v; want each step once", steps)
		logRun(ctx, t, st, run.ID, trs)
	}
}

// logRun logs a run's task runs with their histories, and the run's
// history: what a failure needs to tell which execution did what.
func logRun(ctx context.Context, t *testing.T, st store.Store, runID string, trs []store.TaskRun) {
	t.Helper()
	for _, tr := range trs {
		t.Logf("task run %s %s %s identity %s flow attempt %d, %d attempts", tr.Task, tr.Key, tr.State,
			tr.Identity, tr.FlowAttempt, tr.Attempts)
		for _, h := range tr.History {
			t.Logf("    %s %s -> %s %s: %s", h.At.Format(time.RFC3339Nano), h.From, h.To, h.Cause, h.Message)
		}
	}
	hist, err := st.HistoryList(ctx, store.HistoryListParams{RunID: runID})
	if err != nil {
		t.Logf("history: %v", err)
		return
	}
	for _, h := range hist {
		t.Logf("run %s %s %s: %s %s", h.At.Format(time.RFC3339Nano), h.Actor, h.Action, h.Reason, h.Payload)
	}
}
