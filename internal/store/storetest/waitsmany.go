package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// manyPaused is how many paused runs testWaitManyResumed resumes at once:
// 10,000, or 1,000 under the race detector, which makes the transpiled
// SQLite many times slower (10,000 took 4.5 minutes with -race); run
// `go test -run /WaitManyResumed ./internal/store/...` for the 10,000.
var manyPaused = map[bool]int{false: 10_000, true: 1_000}[raceEnabled]

// testWaitManyResumed pauses manyPaused worker runs on an input wait and
// resumes them all at once from concurrent senders: every input is
// delivered to its run's wait, once, every run is SCHEDULED again and its
// history records the input once; a second input to any of them is a
// conflict and records nothing.
func testWaitManyResumed(t *testing.T, s store.Store) {
	ctx := context.Background()
	n := manyPaused
	ids := make([]string, n)
	runs := make([]store.Run, n)
	for i := range runs {
		ids[i] = fmt.Sprintf("many-%05d", i)
		// PAUSED on a worker's queue with no owner, as a suspended run.
		runs[i] = store.Run{ID: ids[i], Flow: "campaign", State: store.RunPaused, Attempt: 1, Queue: "q",
			CreatedAt: at(0), UpdatedAt: at(0), StartedAt: at(0)}
	}
	for lo := 0; lo < n; lo += 2_000 {
		write(t, s, store.Batch{Runs: runs[lo:min(lo+2_000, n)]})
	}
	spec := store.WaitSpec{Kind: store.WaitInput, Key: "go"}
	in, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	concurrently(t, n, func(i int) error {
		tr, err := s.WaitBegin(ctx, store.WaitBeginParams{
			TaskRun: store.TaskRun{ID: "w-" + ids[i], RunID: ids[i], Key: "input:go/0", Task: store.WaitTask(spec),
				State: store.TaskWaiting, FlowAttempt: 1, Input: in, InputHash: "h", CreatedAt: at(1)},
			Spec: spec, At: at(1), EventsSince: at(1).Add(-store.DefaultEventRetention),
		})
		if err == nil && tr.State != store.TaskWaiting {
			err = fmt.Errorf("wait of %s is %s, want WAITING", ids[i], tr.State)
		}
		return err
	})
	if t.Failed() {
		return
	}

	// All at once: the inputs, in an order unlike the runs', from many senders.
	concurrently(t, n, func(j int) error {
		i := (j * 7919) % n // 7919 is prime and does not divide n: a permutation
		res, err := s.InputSend(ctx, store.InputSendParams{RunID: ids[i], Key: "go", Value: raw(strconv.Itoa(i)),
			Actor: alice, At: at(3)})
		if err == nil && (!res.Woke || res.Step.ID != "w-"+ids[i]) {
			err = fmt.Errorf("input to %s: %+v, want its wait resolved and the run woken", ids[i], res)
		}
		return err
	})
	if t.Failed() {
		return
	}
	for _, st := range []store.RunState{store.RunPaused, store.RunRunning} {
		left, err := s.RunList(ctx, store.RunListParams{Flow: "campaign", State: st, Limit: n})
		if err != nil || len(left) != 0 {
			t.Fatalf("%d runs still %s after their input (%v)", len(left), st, err)
		}
	}
	sched, err := s.RunList(ctx, store.RunListParams{Flow: "campaign", State: store.RunScheduled, Limit: n})
	if err != nil || len(sched) != n {
		t.Fatalf("%d runs SCHEDULED (%v), want %d", len(sched), err, n)
	}
	concurrently(t, n, func(i int) error {
		trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: ids[i]})
		if err != nil {
			return err
		}
		if len(trs) != 1 || trs[0].State != store.TaskCompleted || string(trs[0].Result) != strconv.Itoa(i) {
			return fmt.Errorf("run %s has steps %+v, want its wait COMPLETED with %d", ids[i], trs, i)
		}
		hs, err := s.HistoryList(ctx, store.HistoryListParams{RunID: ids[i]})
		if err != nil {
			return err
		}
		got := 0
		for _, h := range hs {
			if h.Action == store.ActionInputReceived {
				got++
			}
		}
		if got != 1 {
			return fmt.Errorf("run %s: %d %s entries, want 1", ids[i], got, store.ActionInputReceived)
		}
		return nil
	})
	// A second input, to a sample of the runs, is refused and recorded nowhere.
	for i := 0; i < n; i += n / 10 {
		if _, err := s.InputSend(ctx, store.InputSendParams{RunID: ids[i], Key: "go", Value: raw(`-1`), At: at(4)}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("second input to %s: %v, want ErrConflict", ids[i], err)
		}
		if tr := taskRunAt(t, s, ids[i], "input:go/0"); string(tr.Result) != strconv.Itoa(i) {
			t.Errorf("second input changed the wait of %s to %s", ids[i], tr.Result)
		}
	}
}

// concurrently calls fn(0..n-1) from 32 goroutines and reports the first
// few errors.
func concurrently(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		next = make(chan int)
	)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs[:min(len(errs), 5)] {
		t.Error(err)
	}
	if len(errs) > 5 {
		t.Errorf("... and %d more errors", len(errs)-5)
	}
}
