package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// gpuSpec is the spec of a task "train" that needs a GPU and falls back
// to "train_cpu" (on queue cpu) after a second.
var gpuSpec = map[string]store.TaskSpec{"train": {Queue: "gpu", Need: store.Resources{GPU: 1},
	Fallback: "train_cpu", FallbackQueue: "cpu", FallbackAfterMS: 1000}}

// pendingTrain records a RUNNING run with one PENDING task run of train
// on queue gpu, created now.
func pendingTrain(t *testing.T, b *bundle, runID string) {
	t.Helper()
	now := b.clk.Now()
	err := b.st.BatchWrite(context.Background(), store.Batch{
		Runs: []store.Run{{ID: runID, Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "default", CreatedAt: now, UpdatedAt: now}},
		TaskRuns: []store.TaskRun{{ID: "t-" + runID, RunID: runID, Key: "train/0.0", Task: "train", Queue: "gpu",
			State: store.TaskPending, FlowAttempt: 1, Input: []byte(`1`), InputHash: "h", CreatedAt: now}}})
	if err != nil {
		t.Fatal(err)
	}
}

func taskOf(t *testing.T, b *bundle, runID string) store.TaskRun {
	t.Helper()
	trs, err := b.st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID})
	if err != nil || len(trs) != 1 {
		t.Fatalf("TaskRunList = %v, %v", trs, err)
	}
	return trs[0]
}

func fallbacks(t *testing.T, b *bundle, runID string) []store.HistoryEntry {
	t.Helper()
	hist, err := b.st.HistoryList(context.Background(), store.HistoryListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.HistoryEntry
	for _, e := range hist {
		if e.Action == store.ActionFallback {
			out = append(out, e)
		}
	}
	return out
}

// TestFallbackOnFakeClock: with no live worker that has a GPU, a task run
// of train shows why it waits and moves to train_cpu once it waited its
// second; with a GPU worker alive it stays.
func TestFallbackOnFakeClock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cpuWorker := api.RegisterWorker{Name: "cpu", Queues: []string{"gpu", "cpu"}, Tasks: []string{"train", "train_cpu"},
		Capacity: 1, Resources: &store.Resources{CPUMilli: 4000, Memory: 8 << 30}, TaskSpecs: gpuSpec}
	t.Run("no GPU worker", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, err := b.w.RegisterWorker(ctx, cpuWorker); err != nil {
			t.Fatal(err)
		}
		pendingTrain(t, b, "r1")
		d, err := b.c.GetRun(ctx, "r1")
		if err != nil {
			t.Fatal(err)
		}
		const want = "needs GPU 1; no live worker serving queue gpu has more than 0 GPU; falls back to task train_cpu once a task run has waited 1s"
		if len(d.TaskRuns) != 1 || d.TaskRuns[0].WaitingReason != want {
			t.Errorf("task runs %+v, want one waiting: %s", d.TaskRuns, want)
		}
		if !strings.Contains(d.WaitingReason, "1 task run(s) of train: "+want) {
			t.Errorf("run's waiting reason %q", d.WaitingReason)
		}
		b.srv.FallBack(ctx)
		if tr := taskOf(t, b, "r1"); tr.Task != "train" {
			t.Fatalf("moved to %s before its wait", tr.Task)
		}
		b.clk.Advance(1500 * time.Millisecond) // within the lease: the worker is still alive
		b.srv.FallBack(ctx)
		tr := taskOf(t, b, "r1")
		if tr.Task != "train_cpu" || tr.Queue != "cpu" || tr.State != store.TaskPending {
			t.Fatalf("after the wait: %s on %s %s, want train_cpu on cpu PENDING", tr.Task, tr.Queue, tr.State)
		}
		if es := fallbacks(t, b, "r1"); len(es) != 1 || !strings.Contains(es[0].Reason, "no live worker serving queue gpu has more than 0 GPU") {
			t.Errorf("fallback history entries %+v", es)
		}
		if d, err := b.c.GetRun(ctx, "r1"); err != nil || d.TaskRuns[0].WaitingReason != "" {
			t.Errorf("the fallback, which fits, still says it waits: %+v, %v", d.TaskRuns, err)
		}
	})
	t.Run("GPU worker alive", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		gpuWorker := cpuWorker
		gpuWorker.Name, gpuWorker.Queues, gpuWorker.Resources = "gpu", []string{"gpu"}, &store.Resources{GPU: 2}
		for _, w := range []api.RegisterWorker{cpuWorker, gpuWorker} {
			if _, err := b.w.RegisterWorker(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
		pendingTrain(t, b, "r1")
		b.clk.Advance(1500 * time.Millisecond)
		b.srv.FallBack(ctx)
		if tr := taskOf(t, b, "r1"); tr.Task != "train" || tr.Queue != "gpu" {
			t.Errorf("with a GPU worker alive the task run moved to %s on %s", tr.Task, tr.Queue)
		}
		if es := fallbacks(t, b, "r1"); len(es) != 0 {
			t.Errorf("fallback entries %+v", es)
		}
		d, err := b.c.GetRun(ctx, "r1")
		if err != nil || d.TaskRuns[0].WaitingReason != "" || d.WaitingReason != "" {
			t.Errorf("a task run a live worker fits says it waits: %+v, %v", d, err)
		}
	})
}

// TestFallbackAfterGPUWorkerDies: a task run waits past its fallback's
// wait while a GPU worker is alive, and falls back at the first pass after
// that worker is no longer seen.
func TestFallbackAfterGPUWorkerDies(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t) // leases of 2 s: a worker not seen for 2 s is not live
	cpuWorker := api.RegisterWorker{Name: "cpu", Queues: []string{"gpu", "cpu"}, Tasks: []string{"train", "train_cpu"},
		Capacity: 1, Resources: &store.Resources{CPUMilli: 4000}, TaskSpecs: gpuSpec}
	gpuWorker := cpuWorker
	gpuWorker.Name, gpuWorker.Queues, gpuWorker.Resources = "gpu", []string{"gpu"}, &store.Resources{GPU: 1}
	var cpuID string
	for _, w := range []api.RegisterWorker{cpuWorker, gpuWorker} {
		reg, err := b.w.RegisterWorker(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if w.Name == "cpu" {
			cpuID = reg.ID
		}
	}
	pendingTrain(t, b, "r1")
	b.clk.Advance(1500 * time.Millisecond)
	b.srv.FallBack(ctx)
	if tr := taskOf(t, b, "r1"); tr.Task != "train" {
		t.Fatalf("moved to %s while a GPU worker is alive", tr.Task)
	}
	// The CPU worker is seen again; the GPU worker is not.
	ws, err := b.st.WorkerList(ctx, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID == cpuID {
			w.LastSeen = b.clk.Now()
			if err := b.st.WorkerUpsert(ctx, w); err != nil {
				t.Fatal(err)
			}
		}
	}
	b.clk.Advance(time.Second)
	b.srv.FallBack(ctx)
	if tr := taskOf(t, b, "r1"); tr.Task != "train_cpu" {
		t.Fatalf("still %s after the GPU worker died", tr.Task)
	}
	if es := fallbacks(t, b, "r1"); len(es) != 1 {
		t.Errorf("fallback entries %+v", es)
	}
}

// TestResourcesBadInput: negative resources in a registration or a claim
// are refused naming the field.
func TestResourcesBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct{ path, body, want string }{
		{"/api/v1/workers", `{"name":"w","queues":["q"],"resources":{"gpu":-1}}`, `field "resources": gpu must not be negative`},
		{"/api/v1/workers", `{"name":"w","queues":["q"],"resources":{"memory":-5}}`, `field "resources": memory must not be negative`},
		{"/api/v1/workers", `{"name":"w","queues":["q"],"task_specs":{"t":{"need":{"cpu_milli":-1}}}}`, `field task_specs["t"].need: cpu must not be negative`},
		{"/api/v1/workers", `{"name":"w","queues":["q"],"task_specs":{"t":{"fallback_after_ms":-1}}}`, `field task_specs["t"].fallback_after_ms must not be negative`},
		{"/api/v1/workers", `{"name":"w","queues":["q"],"resources":{"gpu":"one"}}`, `resources.gpu`},
	}
	for _, tc := range tests {
		status, body := b.call(t, "POST", tc.path, tc.body)
		msg, _ := body["error"].(map[string]any)["message"].(string)
		if status != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("POST %s %s = %d %q, want 400 with %q", tc.path, tc.body, status, msg, tc.want)
		}
	}
	reg, err := b.w.RegisterWorker(context.Background(), api.RegisterWorker{Name: "w", Queues: []string{"q"}})
	if err != nil {
		t.Fatal(err)
	}
	status, body := b.call(t, "POST", "/api/v1/workers/"+reg.ID+"/claim", `{"runs":0,"wait_ms":0,"free":{"gpu":-2}}`)
	msg, _ := body["error"].(map[string]any)["message"].(string)
	if status != 400 || !strings.Contains(msg, `field "free": gpu must not be negative`) {
		t.Errorf("claim with negative free = %d %q", status, msg)
	}
}
