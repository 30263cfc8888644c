package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/worker"
)

type approval struct {
	Approve bool `json:"approve"`
	Batch   int  `json:"batch" jsonschema:"minimum=1"`
}

var waitStep = baton.Task("worker-test.wait-step", func(_ context.Context, n int) (int, error) { return n + 1, nil })

// waitingFlow runs a step, waits for typed input, sleeps, waits for an
// event and a resume, and runs another step.
var waitingFlow = baton.Flow("worker-test.waiting", func(ctx baton.Context, _ int) (int, error) {
	n, err := waitStep.Run(ctx, 1)
	if err != nil {
		return 0, err
	}
	a, err := baton.WaitForInput[approval](ctx, "approval", baton.Prompt("approve the batch"))
	if err != nil {
		return 0, err
	}
	if !a.Approve {
		return 0, errors.New("not approved")
	}
	if err := baton.Sleep(ctx, 300*time.Millisecond); err != nil {
		return 0, err
	}
	ev, err := baton.WaitForEvent[map[string]int](ctx, "worker-test.plate", baton.Match(map[string]any{"plate": 7}))
	if err != nil {
		return 0, err
	}
	if err := baton.Pause(ctx, "last look"); err != nil {
		return 0, err
	}
	return waitStep.Run(ctx, n+a.Batch+ev["wells"])
})

// TestWaitsReleaseTheWorker: a run on a worker that waits is PAUSED with
// no worker and no slot held; input (validated), the timer, an event and a
// resume each reschedule it, and a worker replays it from its journal
// without running its completed steps again.
func TestWaitsReleaseTheWorker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, cl := runWorker(t, waitingFlow, worker.Config{Concurrency: 1, ShutdownGrace: 100 * time.Millisecond,
		SuspendGrace: 20 * time.Millisecond}, nil)
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: waitingFlow.Name()})
	if err != nil {
		t.Fatal(err)
	}
	// paused waits until the run is PAUSED, released, on a WAITING step of
	// task what.
	paused := func(what string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			r, err := st.RunGet(ctx, run.ID)
			if err == nil && r.State == store.RunPaused && r.WorkerID == "" {
				trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, States: []store.TaskState{store.TaskWaiting}})
				if err != nil {
					t.Fatal(err)
				}
				if len(trs) == 1 && trs[0].Task == what {
					return
				}
			}
			if err == nil && r.State.Final() {
				t.Fatalf("waiting for %s: run ended %s: %+v", what, r.State, r.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("waiting for %s: run is %s held by %q, want PAUSED and released", what, r.State, r.WorkerID)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	paused("input:approval")
	_, err = cl.SendInput(ctx, run.ID, apitype.InputRequest{Key: "approval", Value: json.RawMessage(`{"approve":true,"batch":0}`)})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Status != 422 || !strings.Contains(ce.Message, "/batch") {
		t.Fatalf("invalid input: %v, want a 422 naming /batch", err)
	}
	res, err := cl.SendInput(ctx, run.ID, apitype.InputRequest{Key: "approval", Value: json.RawMessage(`{"approve":true,"batch":2}`)})
	if err != nil || !res.Resumed || res.Step == "" {
		t.Fatalf("input: %+v, %v; want the run resumed", res, err)
	}
	// The sleep ends by the server's timers; then the event.
	paused("event:worker-test.plate")
	ev, err := cl.SendEvent(ctx, apitype.EventRequest{Name: "worker-test.plate", Payload: json.RawMessage(`{"plate":7,"wells":10}`)})
	if err != nil || len(ev.Delivered) != 1 || ev.Delivered[0].RunID != run.ID {
		t.Fatalf("event: %+v, %v", ev, err)
	}
	paused("pause")
	if _, err := cl.SendInput(ctx, run.ID, apitype.InputRequest{}); err != nil {
		t.Fatalf("resume: %v", err)
	}
	final, err := cl.WaitRun(ctx, run.ID)
	if err != nil || final.State != string(store.RunCompleted) || strings.TrimSpace(string(final.Result)) != "15" {
		t.Fatalf("run: %+v, %v; want COMPLETED with 15", final, err)
	}
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string]int{}
	for _, tr := range trs {
		steps[tr.Task]++
	}
	if steps[waitStep.Name()] != 2 || steps["input:approval"] != 1 || steps["sleep"] != 1 || steps["event:worker-test.plate"] != 1 || steps["pause"] != 1 {
		t.Errorf("task runs per task: %v; want each step once", steps)
	}
}

// releaseItem lets one item of slowItem return.
var releaseItem = make(chan struct{}, 16)

var slowItem = baton.Task("worker-test.slow-item", func(ctx context.Context, n int) (int, error) {
	select {
	case <-releaseItem:
		return n * 10, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}, baton.Queue("worker-test-items"))

// itemsFlow maps slowItem over three items on workers and sums them as
// they complete.
var itemsFlow = baton.Flow("worker-test.items", func(ctx baton.Context, _ int) (int, error) {
	sum := 0
	for _, f := range baton.AsCompleted(ctx, slowItem.Map(ctx, []int{1, 2, 3})) {
		v, err := f.Wait(ctx)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
})

// TestSuspendedWhileWorkersExecute: a run that waits for nothing but its
// distributed task runs is released by its worker (PAUSED, no owner) while
// they execute; each completion reschedules it, it replays, attaches to
// the items still running, and ends with every item run once.
func TestSuspendedWhileWorkersExecute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, cl := runWorker(t, itemsFlow, worker.Config{Queues: []string{apitype.DefaultQueue, "worker-test-items"},
		Concurrency: 4, ShutdownGrace: 100 * time.Millisecond, RemoteSuspendGrace: 20 * time.Millisecond}, nil)
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: itemsFlow.Name()})
	if err != nil {
		t.Fatal(err)
	}
	suspended := func(running int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			// The task runs first: a PAUSED run read after them is paused
			// since they were as read (a completion wakes it in the same
			// transaction).
			trs, terr := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, States: []store.TaskState{store.TaskRunning}})
			r, err := st.RunGet(ctx, run.ID)
			if err == nil && terr == nil && r.State == store.RunPaused && r.WorkerID == "" && len(trs) == running {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("run is %s held by %q with %d items running (%v %v), want PAUSED, released, %d running",
					r.State, r.WorkerID, len(trs), err, terr, running)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for running := 3; running > 0; running-- {
		suspended(running)
		releaseItem <- struct{}{}
	}
	final, err := cl.WaitRun(ctx, run.ID)
	if err != nil || final.State != string(store.RunCompleted) || strings.TrimSpace(string(final.Result)) != "60" {
		t.Fatalf("run: %+v, %v; want COMPLETED with 60", final, err)
	}
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 3 {
		t.Errorf("%d task runs, want the 3 items once each", len(trs))
	}
	hs, err := st.HistoryList(ctx, store.HistoryListParams{RunID: run.ID})
	if err != nil {
		t.Fatal(err)
	}
	resumed := 0
	for _, h := range hs {
		if h.Action == store.ActionResumed {
			resumed++
		}
	}
	if resumed < 3 {
		var acts []string
		for _, h := range hs {
			acts = append(acts, h.Action+"("+h.Reason+")")
		}
		t.Errorf("%d resumptions in the history, want one per item: %s", resumed, strings.Join(acts, "; "))
	}
}

// runWorker serves a fresh SQLite store and runs a worker of flow with
// cfg (Client, Name, Flows, Tasks, Logger and LogOutput are filled in;
// Queues default to the default queue); before runs when the test ends,
// before the worker is stopped. It returns the store and a client of the
// server.
func runWorker[F any](t *testing.T, flow F, cfg worker.Config, before func()) (store.Store, *client.Client) {
	t.Helper()
	st, srv := serveSQLite(t)
	ts := httptest.NewServer(srv.Handler())
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := remote.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := progcmd.ProgramOf("", flow)
	cfg.Client, cfg.Name, cfg.Flows, cfg.Tasks = rc, t.Name(), p.Flows, p.Tasks
	cfg.Logger, cfg.LogOutput = slog.New(slog.DiscardHandler), io.Discard
	if len(cfg.Queues) == 0 {
		cfg.Queues = []string{apitype.DefaultQueue}
	}
	wk, err := worker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	wctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- wk.Run(wctx) }()
	t.Cleanup(func() {
		if before != nil {
			before()
		}
		stop()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
		ts.Close()
		srv.Stop()
		st.Close()
	})
	return st, cl
}
