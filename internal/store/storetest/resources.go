package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// Tests of resource-aware placement: claims of task runs that need
// resources, the resources of workers, and fallbacks.

// resourceTests are the conformance tests of this file (Run runs them).
var resourceTests = []struct {
	name string
	fn   func(t *testing.T, s store.Store)
}{
	{"ClaimNeeds", testClaimNeeds},
	{"ClaimNeedsConcurrent", testClaimNeedsConcurrent},
	{"WorkerResources", testWorkerResources},
	{"TaskRunFallback", testTaskRunFallback},
}

// pendingTaskRuns writes PENDING task runs of run r1 (RUNNING) on queue q:
// for each task name, one task run created at its position (seconds).
func pendingTaskRuns(t *testing.T, s store.Store, q string, tasks ...string) {
	t.Helper()
	runningRuns(t, s, "r1")
	var b store.Batch
	for i, task := range tasks {
		b.TaskRuns = append(b.TaskRuns, store.TaskRun{ID: fmt.Sprintf("t%02d", i), RunID: "r1", Key: fmt.Sprintf("k%02d", i),
			Task: task, Queue: q, State: store.TaskPending, FlowAttempt: 1, Input: raw(`1`), InputHash: "h",
			CreatedAt: at(i)})
	}
	write(t, s, b)
}

func testClaimNeeds(t *testing.T, s store.Store) {
	ctx := context.Background()
	// t00 cpu, t01 gpu1, t02 gpu2, t03 gpu1, t04 gpu1, t05 cpu, t06 gpu2
	pendingTaskRuns(t, s, "q", "cpu", "gpu1", "gpu2", "gpu1", "gpu1", "cpu", "gpu2")
	one, two := store.Resources{GPU: 1, Memory: 1 << 30}, store.Resources{GPU: 2}
	claim := func(free store.Resources, slots int, want ...[]string) {
		t.Helper()
		p := store.ClaimParams{Free: free, Tasks: []store.TaskRunClaimParams{
			{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"gpu2"}, Need: two, Limit: slots, At: at(50), LeaseUntil: at(100)},
			{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"cpu"}, Limit: slots, At: at(50), LeaseUntil: at(100)},
			{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"gpu1"}, Need: one, Limit: slots, At: at(50), LeaseUntil: at(100)},
		}}
		res, err := s.Claim(ctx, p)
		if err != nil {
			t.Fatalf("Claim: %v", err)
		}
		got := make([][]string, len(res.TaskRuns))
		for i, trs := range res.TaskRuns {
			got[i] = taskRunIDs(trs)
			if len(trs) == 0 {
				got[i] = nil
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Claim with free %v and %d slots = %v, want %v", free, slots, got, want)
		}
	}
	// Nothing free: only the task runs without needs (FIFO), bounded by
	// the slots.
	claim(store.Resources{}, 1, nil, []string{"t00"}, nil)
	// Three GPUs and 2 GiB: the 2-GPU entry first (the oldest), then one
	// 1-GPU task run in what is left (memory would allow two, GPUs one);
	// the slots the cpu entry took count against the others.
	claim(store.Resources{GPU: 3, Memory: 2 << 30}, 3, []string{"t02"}, []string{"t05"}, []string{"t01"})
	// The slots bound the need entries: 2 slots, 8 GPUs: one 2-GPU task
	// run and one 1-GPU task run.
	claim(store.Resources{GPU: 8, Memory: 8 << 30}, 2, []string{"t06"}, nil, []string{"t03"})
	// A 1-GPU pool never takes a 2-GPU task run; memory bounds the rest.
	claim(store.Resources{GPU: 1}, 5, nil, nil, nil)
	claim(store.Resources{GPU: 1, Memory: 1 << 30}, 5, nil, nil, []string{"t04"})
	claim(store.Resources{GPU: 9, Memory: 9 << 30}, 5, nil, nil, nil)
}

// testClaimNeedsConcurrent claims task runs needing one GPU from several
// goroutines for workers with one GPU each, as their workers would (each
// claims only with its GPU free): no worker ever holds two at once.
func testClaimNeedsConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	tasks := make([]string, 40)
	for i := range tasks {
		tasks[i] = "gpu"
	}
	pendingTaskRuns(t, s, "q", tasks...)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[string]string{}
		errs errorList
	)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("w%d", w)
			for range 20 {
				res, err := s.Claim(ctx, store.ClaimParams{Free: store.Resources{GPU: 1, CPUMilli: 4000},
					Tasks: []store.TaskRunClaimParams{{WorkerID: id, Queues: []string{"q"}, Tasks: []string{"gpu"},
						Need: store.Resources{GPU: 1, CPUMilli: 500}, Limit: 8, At: at(50), LeaseUntil: at(100)}}})
				if err != nil {
					errs.add(err)
					return
				}
				trs := res.TaskRuns[0]
				if len(trs) > 1 {
					errs.add(fmt.Errorf("worker %s with one GPU free claimed %d task runs needing one", id, len(trs)))
				}
				mu.Lock()
				for _, tr := range trs {
					if prev, dup := seen[tr.ID]; dup {
						errs.add(fmt.Errorf("task run %s claimed by %s and %s", tr.ID, prev, id))
					}
					seen[tr.ID] = id
				}
				mu.Unlock()
				// It ran: report it, freeing the GPU for the next claim.
				var cs []store.TaskRunCompletion
				for _, tr := range trs {
					cs = append(cs, store.TaskRunCompletion{Ref: refOf(tr), WorkerID: id, State: store.TaskCompleted,
						Attempts: 1, Result: raw(`1`), At: at(60)})
				}
				if _, err := s.TaskRunComplete(ctx, cs); err != nil {
					errs.add(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	errs.report(t)
	if len(seen) != len(tasks) {
		t.Errorf("claimed %d task runs in all, want %d", len(seen), len(tasks))
	}
}

func testWorkerResources(t *testing.T, s store.Store) {
	ctx := context.Background()
	w := store.Worker{ID: "w1", Name: "gpu-box", Queues: []string{"gpu"}, Tasks: []string{"train", "train_cpu"},
		Resources: store.Resources{CPUMilli: 16000, Memory: 64 << 30, GPU: 2},
		TaskSpecs: map[string]store.TaskSpec{"train": {Queue: "gpu", Need: store.Resources{GPU: 1, Memory: 4 << 30},
			Fallback: "train_cpu", FallbackAfterMS: 300000}},
		StartedAt: at(1), LastSeen: at(2)}
	plain := store.Worker{ID: "w2", Name: "plain", Queues: []string{"q"}, StartedAt: at(1), LastSeen: at(2)}
	for _, x := range []store.Worker{w, plain} {
		if err := s.WorkerUpsert(ctx, x); err != nil {
			t.Fatalf("WorkerUpsert: %v", err)
		}
	}
	checkWorkers(t, s, at(0), w, plain)
	// A new registration replaces them.
	w.Resources, w.TaskSpecs = store.Resources{CPUMilli: 500}, nil
	if err := s.WorkerUpsert(ctx, w); err != nil {
		t.Fatalf("WorkerUpsert: %v", err)
	}
	checkWorkers(t, s, at(0), w, plain)
}

func testTaskRunFallback(t *testing.T, s store.Store) {
	ctx := context.Background()
	pendingTaskRuns(t, s, "gpu", "train", "train", "other", "train")
	// t00 is claimed (RUNNING) before the fallback: it stays.
	if _, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"gpu"},
		Tasks: []string{"train"}, Limit: 1, At: at(5), LeaseUntil: at(100)}); err != nil {
		t.Fatalf("TaskRunClaim: %v", err)
	}
	p := store.TaskRunFallbackParams{Queue: "gpu", Task: "train", To: "train_cpu", ToQueue: "cpu",
		CreatedBefore: at(2), Reason: "no live worker with GPU 1", At: at(10)}
	n, err := s.TaskRunFallback(ctx, p)
	if err != nil || n != 1 {
		t.Fatalf("TaskRunFallback = %d, %v; want 1 (t00 is running, t03 too young)", n, err)
	}
	moved := getTaskRun(t, s, "r1", "k00", "t00")
	if moved.Task != "train" || moved.State != store.TaskRunning {
		t.Errorf("claimed task run after fallback: %s %s, want train RUNNING", moved.Task, moved.State)
	}
	moved = getTaskRun(t, s, "r1", "k01", "t01")
	if moved.Task != "train_cpu" || moved.Queue != "cpu" || moved.State != store.TaskPending {
		t.Errorf("fallen back task run: %s on %s %s, want train_cpu on cpu PENDING", moved.Task, moved.Queue, moved.State)
	}
	if h := moved.History; len(h) == 0 || h[len(h)-1].Cause != "fallback" || h[len(h)-1].Message != p.Reason {
		t.Errorf("fallen back task run's history = %+v, want a fallback transition", h)
	}
	for _, k := range []string{"02", "03"} {
		if x := getTaskRun(t, s, "r1", "k"+k, "t"+k); x.Queue != "gpu" || (x.Task != "train" && x.Task != "other") {
			t.Errorf("task run t%s moved: %s on %s", k, x.Task, x.Queue)
		}
	}
	hist, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "r1"})
	if err != nil {
		t.Fatalf("HistoryList: %v", err)
	}
	var found int
	for _, e := range hist {
		if e.Action == store.ActionFallback {
			found++
			if !e.At.Equal(at(10)) || e.Actor.Name != "system" {
				t.Errorf("fallback entry %+v", e)
			}
		}
	}
	if found != 1 {
		t.Errorf("run history has %d fallback entries, want 1: %+v", found, hist)
	}
	// The moved task run is claimed by the fallback's workers.
	got, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w2", Queues: []string{"cpu"},
		Tasks: []string{"train_cpu"}, Limit: 5, At: at(11), LeaseUntil: at(100)})
	if err != nil || len(got) != 1 || got[0].ID != "t01" {
		t.Errorf("claim of the fallback = %v, %v; want t01", taskRunIDs(got), err)
	}
	// Nothing more to move.
	if n, err := s.TaskRunFallback(ctx, p); err != nil || n != 0 {
		t.Errorf("second TaskRunFallback = %d, %v; want 0", n, err)
	}
}
