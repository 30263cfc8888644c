package baton_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// The replay tests run on every backend: SQLite always, PostgreSQL when
// BATON_TEST_POSTGRES names a database (scripts/with-postgres.sh sets it;
// CI must). Runs, tasks and flows are unique to each test, so tests share
// the PostgreSQL database.

// onBackends runs fn as a parallel subtest per backend with a runtime on a
// store of it (and the store, to read what was recorded).
func onBackends(t *testing.T, fn func(t *testing.T, rt *baton.Runtime, st store.Store)) {
	t.Helper()
	onBackendsWith(t, func(st store.Store, blobs *blob.Store) *baton.Runtime { return baton.NewRuntime(st, blobs) }, fn)
}

// onBackendsWith is onBackends with the runtime that newRuntime makes.
func onBackendsWith(t *testing.T, newRuntime func(store.Store, *blob.Store) *baton.Runtime,
	fn func(t *testing.T, rt *baton.Runtime, st store.Store)) {
	t.Helper()
	open := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "baton.db"))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	if url := os.Getenv("BATON_TEST_POSTGRES"); url != "" {
		open["postgres"] = func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), url)
			if err != nil {
				t.Fatal(err)
			}
			return st
		}
	} else if os.Getenv("CI") == "true" {
		t.Fatal("BATON_TEST_POSTGRES is not set; CI must run the PostgreSQL tests (run them under scripts/with-postgres.sh)")
	}
	for _, name := range []string{"sqlite", "postgres"} {
		if open[name] == nil {
			continue
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := open[name](t)
			blobs, err := blob.Open(filepath.Join(t.TempDir(), "blobs"))
			if err != nil {
				t.Fatal(err)
			}
			rt := newRuntime(st, blobs)
			t.Cleanup(func() { rt.Close() })
			fn(t, rt, st)
		})
	}
}

// taskRunsOf returns a run's task runs of the named task.
func taskRunsOf(t *testing.T, st store.Store, runID, task string) []store.TaskRun {
	t.Helper()
	trs, err := st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	var out []store.TaskRun
	for _, tr := range trs {
		if tr.Task == task {
			out = append(out, tr)
		}
	}
	return out
}

// checkSteps checks the step counts a run recorded for its attempts.
func checkSteps(t *testing.T, st store.Store, runID string, want ...store.StepCounts) {
	t.Helper()
	run, err := st.RunGet(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	for i, w := range want {
		a := run.AttemptRecord(i + 1)
		if a == nil || a.Steps == nil || *a.Steps != w {
			t.Errorf("attempt %d: steps %+v, want %+v", i+1, a, w)
		}
	}
}

// TestReplayMapAsCompleted: a flow maps evaluate over items and calls
// summarize for each result in the order they complete, which differs
// between attempts; a retry reuses every completed summarize step.
func TestReplayMapAsCompleted(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		const n = 7
		// In the first attempt item i finishes only once the flow has seen
		// item i+1: the items complete in reverse order. On the retry they
		// come from the journal, in order.
		seen := make([]chan struct{}, n)
		for i := range seen {
			seen[i] = make(chan struct{})
		}
		var evalCalls, sumCalls atomic.Int32
		evaluate := baton.Task(name(t, "evaluate"), func(ctx context.Context, i int) (int, error) {
			evalCalls.Add(1)
			if i+1 < n {
				select {
				case <-seen[i+1]:
				case <-ctx.Done():
					return 0, ctx.Err()
				}
			}
			return 10 * i, nil
		})
		summarize := baton.Task(name(t, "summarize"), func(_ context.Context, score int) (string, error) {
			sumCalls.Add(1)
			return fmt.Sprintf("score %d", score), nil
		})
		var broken atomic.Bool
		broken.Store(true)
		report := baton.Task(name(t, "report"), func(_ context.Context, lines []string) (int, error) {
			if broken.Load() {
				return 0, baton.Permanent(errors.New("report is broken"))
			}
			return len(lines), nil
		})
		var mu sync.Mutex
		var orders [][]int
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, n int) (int, error) {
			items := make([]int, n)
			for i := range items {
				items[i] = i
			}
			var order []int
			var lines []string
			for i, f := range baton.AsCompleted(ctx, evaluate.Map(ctx, items)) {
				score, err := f.Wait(ctx)
				if err != nil {
					return 0, err
				}
				order = append(order, i)
				if ctx.Attempt() == 1 {
					close(seen[i])
				}
				line, err := summarize.Run(ctx, score)
				if err != nil {
					return 0, err
				}
				lines = append(lines, line)
			}
			mu.Lock()
			orders = append(orders, order)
			mu.Unlock()
			slices.Sort(lines)
			return report.Run(ctx, lines)
		})
		_, info, err := flow.Execute(context.Background(), rt, n)
		if err == nil {
			t.Fatal("first attempt completed; want the report to fail it")
		}
		broken.Store(false)
		got, _, err := flow.Retry(context.Background(), rt, info.ID)
		if err != nil || got != n {
			t.Fatalf("retry: %d, %v; want %d", got, err, n)
		}
		if len(orders) != 2 || slices.Equal(orders[0], orders[1]) {
			t.Fatalf("completion orders %v: want two attempts that saw the items in different orders", orders)
		}
		if evalCalls.Load() != n || sumCalls.Load() != n {
			t.Errorf("evaluate ran %d times, summarize %d; want %d each (the retry reuses every completed step)",
				evalCalls.Load(), sumCalls.Load(), n)
		}
		if trs := taskRunsOf(t, st, info.ID, summarize.Name()); len(trs) != n {
			t.Errorf("%d summarize task runs recorded, want %d", len(trs), n)
		}
		checkSteps(t, st, info.ID, store.StepCounts{Ran: 2*n + 1}, store.StepCounts{Reused: 2 * n, Ran: 1})
	})
}

// TestReplayCallsFromGoroutines: a flow calls a task from goroutines of its
// own, some with the same input; a retry reuses every completed call, and
// runs again only the one that failed, whatever order the goroutines run in.
func TestReplayCallsFromGoroutines(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		inputs := []int{1, 2, 3, 5, 5, 5, 5, 9}
		var calls, seq atomic.Int32
		var broken atomic.Bool
		broken.Store(true)
		work := baton.Task(name(t, "work"), func(_ context.Context, in int) (int, error) {
			calls.Add(1)
			if in == 9 && broken.Load() {
				return 0, baton.Permanent(errors.New("9 is broken"))
			}
			return 1000*in + int(seq.Add(1)), nil // identical calls get different results
		})
		var mu sync.Mutex
		var results [][]int
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
			out := make([]int, len(inputs))
			errs := make([]error, len(inputs))
			var wg sync.WaitGroup
			for i, in := range inputs {
				wg.Go(func() { out[i], errs[i] = work.Run(ctx, in) })
			}
			wg.Wait()
			if err := errors.Join(errs...); err != nil {
				return 0, err
			}
			slices.Sort(out)
			mu.Lock()
			results = append(results, out)
			mu.Unlock()
			return len(out), nil
		})
		_, info, err := flow.Execute(context.Background(), rt, 0)
		if err == nil {
			t.Fatal("first attempt completed; want item 9 to fail it")
		}
		broken.Store(false)
		if _, _, err := flow.Retry(context.Background(), rt, info.ID); err != nil {
			t.Fatal(err)
		}
		if c := calls.Load(); c != int32(len(inputs)+1) {
			t.Errorf("work ran %d times, want %d: each completed call reused, the failed one run again", c, len(inputs)+1)
		}
		if len(results) != 1 {
			t.Fatalf("results %v", results)
		}
		// The identical calls got the results recorded for them.
		var recorded []int
		for _, tr := range taskRunsOf(t, st, info.ID, work.Name()) {
			if tr.State == store.TaskCompleted {
				var v int
				fmt.Sscan(string(tr.Result), &v)
				recorded = append(recorded, v)
			}
		}
		slices.Sort(recorded)
		if !slices.Equal(results[0], recorded) {
			t.Errorf("the flow got %v, the journal holds %v", results[0], recorded)
		}
		checkSteps(t, st, info.ID, store.StepCounts{Ran: len(inputs)}, store.StepCounts{Reused: len(inputs) - 1, Ran: 1})
	})
}

// TestReplayInsertedCall: a fix inserts a call near the top of the flow
// between the attempts; the retry runs the new call and the failed one,
// and reuses the others, which keep their keys.
func TestReplayInsertedCall(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var calls sync.Map // task -> *atomic.Int32
		count := func(task string) int32 {
			c, _ := calls.LoadOrStore(task, new(atomic.Int32))
			return c.(*atomic.Int32).Load()
		}
		var fixed atomic.Bool
		mk := func(s string) *baton.TaskDef[int, int] {
			return baton.Task(name(t, s), func(_ context.Context, n int) (int, error) {
				c, _ := calls.LoadOrStore(s, new(atomic.Int32))
				c.(*atomic.Int32).Add(1)
				if s == "train" && !fixed.Load() {
					return 0, baton.Permanent(errors.New("train is broken"))
				}
				return n + 1, nil
			})
		}
		check, load, clean, train := mk("check"), mk("load"), mk("clean"), mk("train")
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, n int) (int, error) {
			if fixed.Load() { // the fix: a new first step
				if _, err := check.Run(ctx, n); err != nil {
					return 0, err
				}
			}
			a, err := load.Run(ctx, n)
			if err != nil {
				return 0, err
			}
			b, err := clean.Run(ctx, a)
			if err != nil {
				return 0, err
			}
			return train.Run(ctx, b)
		})
		_, info, err := flow.Execute(context.Background(), rt, 1)
		if err == nil {
			t.Fatal("first attempt completed; want train to fail it")
		}
		keys := func(task string) []string {
			var ks []string
			for _, tr := range taskRunsOf(t, st, info.ID, name(t, task)) {
				ks = append(ks, tr.Key)
			}
			return ks
		}
		loadKeys, cleanKeys := keys("load"), keys("clean")
		fixed.Store(true)
		got, _, err := flow.Retry(context.Background(), rt, info.ID)
		if err != nil || got != 4 {
			t.Fatalf("retry: %d, %v; want 4", got, err)
		}
		for task, want := range map[string]int32{"check": 1, "load": 1, "clean": 1, "train": 2} {
			if c := count(task); c != want {
				t.Errorf("%s ran %d times, want %d", task, c, want)
			}
		}
		if k := keys("load"); !slices.Equal(k, loadKeys) {
			t.Errorf("load keys %v after the retry, want %v", k, loadKeys)
		}
		if k := keys("clean"); !slices.Equal(k, cleanKeys) {
			t.Errorf("clean keys %v after the retry, want %v", k, cleanKeys)
		}
		checkSteps(t, st, info.ID, store.StepCounts{Ran: 3}, store.StepCounts{Reused: 2, Ran: 2})
	})
}

// TestReplayVersion: a new Version of a task makes a retry run that task's
// completed steps again, and only them; the cache misses too.
func TestReplayVersion(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var scoreCalls, otherCalls atomic.Int32
		var score atomic.Pointer[baton.TaskDef[int, int]]
		define := func(version string) {
			baton.Forget(name(t, "score")) // a new build of the program
			score.Store(baton.Task(name(t, "score"), func(_ context.Context, n int) (int, error) {
				scoreCalls.Add(1)
				return n * 2, nil
			}, baton.Version(version), baton.Cache(baton.CachePolicy{})))
		}
		define("1")
		other := baton.Task(name(t, "other"), func(_ context.Context, n int) (int, error) { otherCalls.Add(1); return n, nil })
		var fail atomic.Bool
		fail.Store(true)
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, n int) (int, error) {
			a, err := score.Load().Run(ctx, n)
			if err != nil {
				return 0, err
			}
			b, err := other.Run(ctx, n)
			if err != nil {
				return 0, err
			}
			if fail.Load() {
				return 0, errors.New("fail after the steps")
			}
			return a + b, nil
		})
		_, info, err := flow.Execute(context.Background(), rt, 3)
		if err == nil {
			t.Fatal("first attempt completed")
		}
		define("2")
		fail.Store(false)
		if got, _, err := flow.Retry(context.Background(), rt, info.ID); err != nil || got != 9 {
			t.Fatalf("retry: %d, %v; want 9", got, err)
		}
		if scoreCalls.Load() != 2 || otherCalls.Load() != 1 {
			t.Errorf("score ran %d times, other %d; want 2 (new version) and 1", scoreCalls.Load(), otherCalls.Load())
		}
		// The cache of version 2 now holds the result: a new run hits it,
		// and a run at version 1 again is answered by version 1's entry.
		if _, _, err := flow.Execute(context.Background(), rt, 3); err != nil || scoreCalls.Load() != 2 {
			t.Errorf("a new run at version 2: %v, score ran %d times; want a cache hit", err, scoreCalls.Load())
		}
		define("3")
		if _, _, err := flow.Execute(context.Background(), rt, 3); err != nil || scoreCalls.Load() != 3 {
			t.Errorf("a new run at version 3: %v, score ran %d times; want a cache miss", err, scoreCalls.Load())
		}
	})
}

// Params are the parameters of the flow of TestReplayEditedParameters.
type Params struct {
	Epochs int     `json:"epochs"`
	LR     float64 `json:"lr"`
}

// TestReplayEditedParameters: a retry with edited parameters reuses the
// steps whose input did not change, runs the others and records the edit.
func TestReplayEditedParameters(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var prepCalls, trainCalls atomic.Int32
		prepare := baton.Task(name(t, "prepare"), func(_ context.Context, epochs int) (int, error) {
			prepCalls.Add(1)
			return epochs, nil
		})
		train := baton.Task(name(t, "train"), func(_ context.Context, lr float64) (float64, error) {
			trainCalls.Add(1)
			if lr > 1 {
				return 0, baton.Permanent(errors.New("diverged"))
			}
			return 1 - lr, nil
		})
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, p Params) (float64, error) {
			e, err := prepare.Run(ctx, p.Epochs)
			if err != nil {
				return 0, err
			}
			loss, err := train.Run(ctx, p.LR)
			return loss * float64(e), err
		})
		_, info, err := flow.Execute(context.Background(), rt, Params{Epochs: 3, LR: 5})
		if err == nil {
			t.Fatal("first attempt completed; want train to diverge")
		}
		got, info2, err := flow.RetryWith(context.Background(), rt, info.ID, Params{Epochs: 3, LR: 0.5})
		if err != nil || got != 1.5 || info2.Attempt != 2 {
			t.Fatalf("retry with lr 0.5: %v, %v, attempt %d; want 1.5 at attempt 2", got, err, info2.Attempt)
		}
		if prepCalls.Load() != 1 || trainCalls.Load() != 2 {
			t.Errorf("prepare ran %d times, train %d; want 1 and 2", prepCalls.Load(), trainCalls.Load())
		}
		run, err := st.RunGet(context.Background(), info.ID)
		if err != nil {
			t.Fatal(err)
		}
		if string(run.Parameters) != `{"epochs":3,"lr":0.5}` {
			t.Errorf("parameters %s after the retry", run.Parameters)
		}
		a := run.AttemptRecord(2)
		if a == nil || a.Edit == nil || string(a.Edit.From) != `{"epochs":3,"lr":5}` || string(a.Edit.To) != `{"epochs":3,"lr":0.5}` ||
			a.Edit.By == "" {
			t.Errorf("attempt 2 record %+v, want the edit from lr 5 to 0.5 with who", a)
		}
		evs, err := st.EventList(context.Background(), info.ID)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range evs {
			found = found || (e.To == "RUNNING" && strings.Contains(e.Message, "edited parameters") &&
				strings.Contains(e.Message, `"lr":0.5`) && strings.Contains(e.Message, `"lr":5`))
		}
		if !found {
			t.Errorf("no event records the edit: %+v", evs)
		}
		checkSteps(t, st, info.ID, store.StepCounts{Ran: 2}, store.StepCounts{Reused: 1, Ran: 1})
	})
}

// TestReplaySubflowAfterInsert: a failed subflow is resumed from its own
// journal by the retry even though a call inserted before it moved it.
func TestReplaySubflowAfterInsert(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var calls atomic.Int32
		var fixed atomic.Bool
		work := baton.Task(name(t, "work"), func(_ context.Context, n int) (int, error) {
			calls.Add(1)
			if n == 11 && !fixed.Load() {
				return 0, baton.Permanent(errors.New("11 is broken"))
			}
			return n, nil
		})
		child := baton.Flow(name(t, "child"), func(ctx baton.Context, n int) (int, error) {
			vs, err := baton.WaitAll(ctx, work.Map(ctx, []int{10 * n, 10*n + 1}))
			if err != nil {
				return 0, err
			}
			return vs[0] + vs[1], nil
		})
		parent := baton.Flow(name(t, "parent"), func(ctx baton.Context, _ int) (int, error) {
			if fixed.Load() {
				if _, err := child.Run(ctx, 5); err != nil { // inserted by the fix
					return 0, err
				}
			}
			x, err := child.Run(ctx, 0)
			if err != nil {
				return 0, err
			}
			y, err := child.Run(ctx, 1)
			return x + y, err
		})
		_, info, err := parent.Execute(context.Background(), rt, 0)
		if err == nil {
			t.Fatal("first attempt completed")
		}
		children := func() []store.Run {
			rs, err := st.RunList(context.Background(), store.RunListParams{ParentRunID: info.ID})
			if err != nil {
				t.Fatal(err)
			}
			return rs
		}
		if n := len(children()); n != 2 || calls.Load() != 4 {
			t.Fatalf("%d children, %d calls after the first attempt; want 2 and 4", n, calls.Load())
		}
		fixed.Store(true)
		got, _, err := parent.Retry(context.Background(), rt, info.ID)
		if err != nil || got != 1+21 {
			t.Fatalf("retry: %d, %v; want %d", got, err, 1+21)
		}
		// New child 5: 2 calls; child 0 reused; child 1 resumed: item 11 only.
		if calls.Load() != 4+2+1 {
			t.Errorf("work ran %d times, want %d", calls.Load(), 4+2+1)
		}
		rs := children()
		if len(rs) != 3 {
			t.Fatalf("%d children after the retry, want 3 (child 1 resumed, not created again)", len(rs))
		}
		for _, r := range rs {
			if r.State != store.RunCompleted {
				t.Errorf("child %s (step %s) is %s", r.ID, r.ParentStepKey, r.State)
			}
		}
	})
}

// Weights is a result with a field JSON leaves out.
type Weights struct {
	N      int `json:"n"`
	secret int
}

// TestReplaySameValues: a task's input and result reach the task and the
// flow as decoded from their JSON, on the first run as on replay.
func TestReplaySameValues(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var inputs []int
	var mu sync.Mutex
	fit := baton.Task(name(t, "fit"), func(_ context.Context, in Weights) (Weights, error) {
		mu.Lock()
		inputs = append(inputs, in.secret)
		mu.Unlock()
		return Weights{N: in.N + 1, secret: 3}, nil
	})
	var seen []Weights
	flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
		w, err := fit.Run(ctx, Weights{N: 1, secret: 7})
		if err != nil {
			return 0, err
		}
		mu.Lock()
		seen = append(seen, w)
		mu.Unlock()
		if ctx.Attempt() == 1 {
			return 0, errors.New("fail once")
		}
		return w.N, nil
	})
	_, info, _ := flow.Execute(context.Background(), b.rt, 0)
	if _, _, err := flow.Retry(context.Background(), b.rt, info.ID); err != nil {
		t.Fatal(err)
	}
	want := Weights{N: 2}
	if len(seen) != 2 || seen[0] != want || seen[1] != want {
		t.Errorf("the flow got %+v on the first run and on replay; want %+v both times", seen, want)
	}
	if !slices.Equal(inputs, []int{0}) {
		t.Errorf("the task got unexported input fields %v, want [0] (as decoded from its JSON)", inputs)
	}
}

// TestDefinedTwicePanics: a second task or flow of a name panics, naming
// where both were defined.
func TestDefinedTwicePanics(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, second func()) {
		t.Helper()
		defer func() {
			msg := fmt.Sprint(recover())
			sites := regexp.MustCompile(`replay_test\.go:\d+`).FindAllString(msg, -1)
			if !strings.Contains(msg, "defined twice") || len(sites) != 2 || sites[0] == sites[1] {
				t.Errorf("second definition: panic %q; want one naming both places", msg)
			}
		}()
		second()
	}
	t.Run("task", func(t *testing.T) {
		t.Parallel()
		n := name(t, "twice")
		noop := func(context.Context, int) (int, error) { return 0, nil }
		baton.Task(n, noop)
		check(t, func() { baton.Task(n, noop) })
	})
	t.Run("flow", func(t *testing.T) {
		t.Parallel()
		n := name(t, "twice")
		fn := func(baton.Context, int) (int, error) { return 0, nil }
		baton.Flow(n, fn)
		check(t, func() { baton.Flow(n, fn) })
	})
}

// TestReplayKeysStayUnique: an item inserted at the front of a map takes
// a free key; the items it moved keep theirs.
func TestReplayKeysStayUnique(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var calls atomic.Int32
		double := baton.Task(name(t, "double"), func(_ context.Context, n int) (int, error) { calls.Add(1); return 2 * n, nil })
		var inserted atomic.Bool
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
			items := []int{2, 3}
			if inserted.Load() {
				items = []int{1, 2, 3}
			}
			vs, err := baton.WaitAll(ctx, double.Map(ctx, items))
			if err != nil || !inserted.Load() {
				return 0, errors.Join(err, errors.New("fail once"))
			}
			return vs[0] + vs[1] + vs[2], nil
		})
		_, info, _ := flow.Execute(context.Background(), rt, 0)
		before := taskRunsOf(t, st, info.ID, double.Name())
		inserted.Store(true)
		if got, _, err := flow.Retry(context.Background(), rt, info.ID); err != nil || got != 12 {
			t.Fatalf("retry: %d, %v; want 12", got, err)
		}
		if calls.Load() != 3 {
			t.Errorf("double ran %d times, want 3", calls.Load())
		}
		keys := map[string]string{} // key -> input
		for _, tr := range taskRunsOf(t, st, info.ID, double.Name()) {
			if in, dup := keys[tr.Key]; dup {
				t.Errorf("key %s holds inputs %s and %s", tr.Key, in, tr.Input)
			}
			keys[tr.Key] = string(tr.Input)
		}
		for _, tr := range before {
			if keys[tr.Key] != string(tr.Input) {
				t.Errorf("key %s holds %s after the retry, %s before", tr.Key, keys[tr.Key], tr.Input)
			}
		}
		want := double.Name() + "/0.0#2"
		if keys[want] != "1" {
			t.Errorf("keys %v: want the new item under %s", keys, want)
		}
	})
}
