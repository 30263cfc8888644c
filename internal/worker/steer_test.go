package worker_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/worker"
)

var (
	gateStarted = make(chan struct{}, 1)
	gateOpen    = make(chan struct{})
	openGate    = sync.OnceFunc(func() { close(gateOpen) })
)

var gateStep = baton.Task("worker-test.gate-step", func(_ context.Context, n int) (int, error) {
	select {
	case gateStarted <- struct{}{}:
	default:
	}
	<-gateOpen
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
	st, cl := runWorker(t, steeredFlow, worker.Config{Concurrency: 1, ShutdownGrace: 100 * time.Millisecond,
		SuspendGrace: 20 * time.Millisecond, PausePoll: -1}, openGate)
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: steeredFlow.Name(), Parameters: []byte(`{"bonus":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-gateStarted:
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
	openGate()
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
	}
}
