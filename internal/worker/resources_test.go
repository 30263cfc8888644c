package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
	"github.com/batonhq/baton/internal/worker"
)

// inflight tracks, per test, how many GPU task runs execute at once.
type inflight struct {
	now, peak atomic.Int64
}

var trackers sync.Map // test name -> *inflight

// Item is an input of the GPU tasks: the test it belongs to and a number.
type Item struct {
	Test string `json:"test"`
	N    int    `json:"n"`
}

func tracker(test string) *inflight {
	v, _ := trackers.LoadOrStore(test, &inflight{})
	return v.(*inflight)
}

// trainCPU is the CPU implementation of trainGPU: its fallback.
var trainCPU = baton.Task("worker-test.train-cpu", func(_ context.Context, in Item) (string, error) {
	return "cpu", nil
}, baton.Queue("cpu"))

// trainGPU needs a GPU; with no live worker that has one, its task runs
// fall back to trainCPU at once.
var trainGPU = baton.Task("worker-test.train-gpu", func(_ context.Context, in Item) (string, error) {
	tr := tracker(in.Test)
	n := tr.now.Add(1)
	defer tr.now.Add(-1)
	for {
		p := tr.peak.Load()
		if n <= p || tr.peak.CompareAndSwap(p, n) {
			break
		}
	}
	time.Sleep(5 * time.Millisecond) // long enough for a second one to overlap if it could
	return "gpu", nil
}, baton.Queue("gpu"), baton.Resources{CPU: 0.5, Memory: "1GiB", GPU: 1}, baton.Fallback(trainCPU, 0))

// bigTask needs a GPU and has no fallback.
var bigTask = baton.Task("worker-test.big", func(_ context.Context, in Item) (string, error) {
	return "big", nil
}, baton.Queue("gpu"), baton.Resources{GPU: 1})

// TrainParams are the parameters of trainMap.
type TrainParams struct {
	Test string `json:"test"`
	N    int    `json:"n"`
	Big  bool   `json:"big"`
}

// trainMap maps trainGPU (or bigTask) over N items.
var trainMap = baton.Flow("worker-test.train-map", func(ctx baton.Context, p TrainParams) ([]string, error) {
	items := make([]Item, p.N)
	for i := range items {
		items[i] = Item{Test: p.Test, N: i}
	}
	task := trainGPU
	if p.Big {
		task = bigTask
	}
	return baton.WaitAll(ctx, task.Map(ctx, items))
})

// placement is a server on a fresh SQLite store (leases of lease: the
// maintenance pass, which makes fallbacks, runs every lease/3) and the
// workers a test starts against it.
type placement struct {
	t   *testing.T
	st  store.Store
	cl  *client.Client
	url string
}

func servePlacement(t *testing.T, lease time.Duration) *placement {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, LeaseTimeout: lease, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() { ts.Close(); srv.Stop(); st.Close() })
	cl, err := client.New(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &placement{t: t, st: st, cl: cl, url: ts.URL}
}

// worker starts a worker of the program of trainMap on queues with res
// and 4 slots per queue; it returns once the worker is registered, and
// stops it when the test ends (before the server).
func (p *placement) worker(res store.Resources, queues ...string) *worker.Worker {
	t := p.t
	t.Helper()
	rc, err := remote.New(p.url)
	if err != nil {
		t.Fatal(err)
	}
	prog := progcmd.ProgramOf("", trainMap)
	slots := map[string]int{}
	for _, q := range queues {
		slots[q] = 4
	}
	wk, err := worker.New(worker.Config{Client: rc, Name: t.Name(), Queues: queues, Slots: slots, Resources: res,
		Flows: prog.Flows, Tasks: prog.Tasks, Logger: slog.New(slog.DiscardHandler), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	if err := wk.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wk.Stop)
	return wk
}

// run starts trainMap and returns its ID.
func (p *placement) run(params TrainParams) string {
	p.t.Helper()
	raw, _ := json.Marshal(params)
	run, _, err := p.cl.CreateRun(context.Background(), apitype.CreateRunRequest{Flow: "worker-test.train-map", Parameters: raw})
	if err != nil {
		p.t.Fatal(err)
	}
	return run.ID
}

// wait waits for run id to end and returns it.
func (p *placement) wait(id string) apitype.Run {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	run, err := p.cl.WaitRun(ctx, id)
	if err != nil {
		p.t.Fatalf("run %s: %v (state %s)", id, err, run.State)
	}
	return run
}

var noGPU = store.Resources{CPUMilli: 8000, Memory: 16 << 30}

// TestGPUTasksOnlyOnGPUWorkers: a worker with no GPU (which executes the
// flow) never claims a task run needing one, while a worker with one GPU
// and four slots claims them all and never runs two at once.
func TestGPUTasksOnlyOnGPUWorkers(t *testing.T) {
	t.Parallel()
	p := servePlacement(t, 30*time.Second)
	gpu := p.worker(store.Resources{CPUMilli: 8000, Memory: 16 << 30, GPU: 1}, "gpu")
	p.worker(noGPU, apitype.DefaultQueue, "gpu", "cpu")
	const n = 8
	id := p.run(TrainParams{Test: t.Name(), N: n})
	if run := p.wait(id); run.State != apitype.RunCompleted {
		t.Fatalf("run ended %s: %+v", run.State, run.Error)
	} else if want := `["gpu","gpu","gpu","gpu","gpu","gpu","gpu","gpu"]`; strings.ReplaceAll(string(run.Result), " ", "") != want {
		t.Errorf("result %s, want %s", run.Result, want)
	}
	trs, err := p.st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, tr := range trs {
		if tr.Task != "worker-test.train-gpu" {
			t.Errorf("task run %s ran %s", tr.Key, tr.Task)
			continue
		}
		ran++
		if tr.WorkerID != gpu.ID() {
			t.Errorf("task run %s ran on worker %s, want the GPU worker %s", tr.Key, tr.WorkerID, gpu.ID())
		}
	}
	if ran != n {
		t.Errorf("%d GPU task runs, want %d", ran, n)
	}
	if peak := tracker(t.Name()).peak.Load(); peak != 1 {
		t.Errorf("at most %d GPU task runs at once on a worker with one GPU, want 1", peak)
	}
	ws, err := p.cl.Workers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if w.ID == gpu.ID() && (w.Resources == nil || *w.Resources != apitype.Resources{CPU: 8, MemoryBytes: 16 << 30, GPU: 1}) {
			t.Errorf("the GPU worker's listed resources: %+v", w.Resources)
		}
	}
	hist, err := p.cl.RunHistory(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range hist.History {
		if e.Action == store.ActionFallback {
			t.Errorf("a GPU worker was alive, yet the history has a fallback: %+v", e)
		}
	}
}

// TestNeverFitSaysSo: a task run needing a GPU that no live worker has
// says so in the run detail, for the task run and the run.
func TestNeverFitSaysSo(t *testing.T) {
	t.Parallel()
	p := servePlacement(t, 30*time.Second)
	p.worker(noGPU, apitype.DefaultQueue, "gpu")
	id := p.run(TrainParams{Test: t.Name(), N: 1, Big: true})
	const want = "needs GPU 1; no live worker serving queue gpu has more than 0 GPU"
	deadline := time.Now().Add(20 * time.Second)
	for {
		d, err := p.cl.GetRun(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.TaskRuns) == 1 && d.TaskRuns[0].State == "PENDING" && d.TaskRuns[0].WaitingReason != "" {
			if got := d.TaskRuns[0].WaitingReason; got != want {
				t.Errorf("task run's waiting reason %q, want %q", got, want)
			}
			if !strings.Contains(d.WaitingReason, want) || !strings.Contains(d.WaitingReason, "worker-test.big") {
				t.Errorf("run's waiting reason %q, want one naming the task and saying %q", d.WaitingReason, want)
			}
			if _, err := p.cl.CancelRun(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			p.wait(id) // the worker then stops at once
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no waiting reason after 20 s: %+v", d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestFallbackWithoutGPUWorker: with no live worker that has a GPU, the
// task runs of trainGPU fall back to trainCPU (its wait is 0; the server's
// maintenance pass, every second here, moves them); the history and the
// task runs say which implementation ran.
func TestFallbackWithoutGPUWorker(t *testing.T) {
	t.Parallel()
	p := servePlacement(t, 3*time.Second)
	p.worker(noGPU, apitype.DefaultQueue, "gpu", "cpu")
	id := p.run(TrainParams{Test: t.Name(), N: 3})
	run := p.wait(id)
	if run.State != apitype.RunCompleted {
		t.Fatalf("run ended %s: %+v", run.State, run.Error)
	}
	if got := strings.ReplaceAll(string(run.Result), " ", ""); got != `["cpu","cpu","cpu"]` {
		t.Errorf("result %s, want the CPU implementation's", run.Result)
	}
	trs, err := p.st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if tr.Task != "worker-test.train-cpu" || tr.Queue != "cpu" {
			t.Errorf("task run %s: %s on %s, want the fallback on cpu", tr.Key, tr.Task, tr.Queue)
		}
		found := false
		for _, h := range tr.History {
			found = found || h.Cause == "fallback"
		}
		if !found {
			t.Errorf("task run %s: no fallback in its history %+v", tr.Key, tr.History)
		}
	}
	hist, err := p.cl.RunHistory(context.Background(), id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range hist.History {
		if e.Action == store.ActionFallback {
			n++
			if !strings.Contains(e.Reason, "worker-test.train-cpu") || !strings.Contains(e.Reason, "GPU") {
				t.Errorf("fallback entry's reason %q", e.Reason)
			}
		}
	}
	if n == 0 {
		t.Errorf("the run's history has no fallback entry: %+v", hist.History)
	}
	if peak := tracker(t.Name()).peak.Load(); peak != 0 {
		t.Errorf("the GPU implementation ran %d at once, want never", peak)
	}
}
