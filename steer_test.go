package baton_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
)

// TestPauseRequested: a pause asked from outside a running local run
// (store.RunPause, as `runs pause` does) pauses it before its next step,
// with a recorded pause wait; a resume goes on without pausing again, and a
// retry replays the pause without waiting.
func TestPauseRequested(t *testing.T) {
	t.Parallel()
	everyBoundary := func(st store.Store, blobs *blob.Store) *baton.Runtime {
		return baton.NewRuntimePausePoll(st, blobs, -1)
	}
	onBackendsWith(t, everyBoundary, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var ran atomic.Int32
		broken := atomic.Bool{}
		broken.Store(true)
		step := baton.Task(name(t, "step"), func(_ context.Context, n int) (int, error) {
			ran.Add(1)
			return n + 1, nil
		})
		last := baton.Task(name(t, "last"), func(_ context.Context, n int) (int, error) {
			if broken.Load() {
				return 0, baton.Permanent(errors.New("last is broken"))
			}
			return n * 10, nil
		})
		release := make(chan struct{})
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
			<-release // the test asks for the pause now
			n, err := step.Run(ctx, 1)
			if err != nil {
				return 0, err
			}
			return last.Run(ctx, n)
		})
		done := make(chan error, 1)
		go func() {
			_, _, err := flow.Execute(context.Background(), rt, 0)
			done <- err
		}()
		ctx := context.Background()
		run := latestRun(t, st, flow.Name())
		if _, err := st.RunPause(ctx, store.RunPauseParams{ID: run.ID, Reason: "check the sensor", Actor: alice}); err != nil {
			t.Fatal(err)
		}
		close(release)
		run = waitForState(t, st, run.ID, store.RunPaused)
		if ran.Load() != 0 {
			t.Fatalf("step ran %d times before the pause, want 0", ran.Load())
		}
		if run.PauseRequest != nil {
			t.Errorf("the request is still pending once paused: %+v", run.PauseRequest)
		}
		pauses := taskRunsOf(t, st, run.ID, "pause")
		if len(pauses) != 1 || pauses[0].State != store.TaskWaiting || !strings.HasPrefix(pauses[0].Key, "pause@") {
			t.Fatalf("pause steps: %+v, want one WAITING pause@...", pauses)
		}
		var spec store.WaitSpec
		if err := json.Unmarshal(pauses[0].Input, &spec); err != nil || !strings.Contains(spec.Prompt, "alice") ||
			!strings.Contains(spec.Prompt, "check the sensor") {
			t.Errorf("pause prompt %q (%v), want who asked and why", spec.Prompt, err)
		}
		if _, err := st.InputSend(ctx, store.InputSendParams{RunID: run.ID, Actor: alice}); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil || !strings.Contains(err.Error(), "last is broken") {
			t.Fatalf("run: %v, want last to fail it", err)
		}
		broken.Store(false)
		out, _, err := flow.Retry(ctx, rt, run.ID)
		if err != nil || out != 20 {
			t.Fatalf("retry: %d, %v; want 20", out, err)
		}
		if ran.Load() != 1 {
			t.Errorf("step ran %d times, want 1 (reused on retry)", ran.Load())
		}
		if pauses := taskRunsOf(t, st, run.ID, "pause"); len(pauses) != 1 || pauses[0].State != store.TaskCompleted {
			t.Errorf("pause steps after the retry: %+v, want the one, COMPLETED", pauses)
		}
		hist := strings.Join(actionsOf(t, st, run.ID), " ")
		for _, want := range []string{"pause_requested", "paused", "input_received", "retried", "completed"} {
			if !strings.Contains(hist, want) {
				t.Errorf("history %q has no %s", hist, want)
			}
		}
	})
}

var alice = store.Actor{Name: "alice"}

// actionsOf lists the actions of a run's history.
func actionsOf(t *testing.T, st store.Store, runID string) []string {
	t.Helper()
	hs, err := st.HistoryList(context.Background(), store.HistoryListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Action)
	}
	return out
}

type knobs struct {
	Batch int `json:"batch"`
}

// TestSettings: Settings reads the run's parameters as they are at each
// call (a run update between two calls is seen by the second), and a
// replay gets the recorded values even after the parameters changed again.
func TestSettings(t *testing.T) {
	t.Parallel()
	onBackends(t, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		broken := atomic.Bool{}
		broken.Store(true)
		last := baton.Task(name(t, "last"), func(_ context.Context, n int) (int, error) {
			if broken.Load() {
				return 0, baton.Permanent(errors.New("last is broken"))
			}
			return n, nil
		})
		read, release := make(chan struct{}), make(chan struct{})
		first := true
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, k knobs) (int, error) {
			a, err := baton.Settings[knobs](ctx)
			if err != nil {
				return 0, err
			}
			if first {
				first = false
				close(read)
				<-release
			}
			b, err := baton.Settings[knobs](ctx)
			if err != nil {
				return 0, err
			}
			return last.Run(ctx, k.Batch*10000+a.Batch*100+b.Batch)
		})
		done := make(chan error, 1)
		go func() {
			_, _, err := flow.Execute(context.Background(), rt, knobs{Batch: 4})
			done <- err
		}()
		ctx := context.Background()
		<-read
		run := latestRun(t, st, flow.Name())
		if _, err := st.RunUpdate(ctx, store.RunUpdateParams{ID: run.ID, Parameters: json.RawMessage(`{"batch":8}`), Actor: alice}); err != nil {
			t.Fatal(err)
		}
		close(release)
		if err := <-done; err == nil {
			t.Fatal("the run completed; want last to fail it")
		}
		// A finished run's settings no longer change; a retry with edited
		// parameters replays what each Settings call saw.
		if _, err := st.RunUpdate(ctx, store.RunUpdateParams{ID: run.ID, Parameters: json.RawMessage(`{"batch":16}`), Actor: alice}); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("update of a finished run: %v, want a conflict", err)
		}
		broken.Store(false)
		out, _, err := flow.RetryWith(ctx, rt, run.ID, knobs{Batch: 16})
		if err != nil || out != 160408 {
			t.Fatalf("retry: %d, %v; want 160408 (retried with 16; the calls read 4 then 8)", out, err)
		}
	})
}

// TestPauseRequestedDetached: a local run paused by request whose process
// stops stays PAUSED; resumed later from its journal, it waits at the
// recorded pause again (it was not resumed yet), and goes on when resumed.
func TestPauseRequestedDetached(t *testing.T) {
	t.Parallel()
	everyBoundary := func(st store.Store, blobs *blob.Store) *baton.Runtime {
		return baton.NewRuntimePausePoll(st, blobs, -1)
	}
	onBackendsWith(t, everyBoundary, func(t *testing.T, rt *baton.Runtime, st store.Store) {
		var ran atomic.Int32
		step := baton.Task(name(t, "step"), func(_ context.Context, n int) (int, error) {
			ran.Add(1)
			return n + 1, nil
		})
		release := make(chan struct{})
		flow := baton.Flow(name(t, "flow"), func(ctx baton.Context, _ int) (int, error) {
			<-release
			return step.Run(ctx, 1)
		})
		ctx := context.Background()
		procCtx, stopProc := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, _, err := flow.Execute(procCtx, rt, 0)
			done <- err
		}()
		run := latestRun(t, st, flow.Name())
		if _, err := st.RunPause(ctx, store.RunPauseParams{ID: run.ID, Reason: "overnight", Actor: alice}); err != nil {
			t.Fatal(err)
		}
		close(release)
		waitForState(t, st, run.ID, store.RunPaused)
		stopProc()
		if err := <-done; err == nil {
			t.Fatal("the interrupted process returned no error")
		}
		waitForState(t, st, run.ID, store.RunPaused)
		resumed := make(chan error, 1)
		var state store.RunState
		go func() {
			var err error
			state, err = baton.Resume(ctx, rt, flow, run.ID)
			resumed <- err
		}()
		// Resumed (PAUSED -> RUNNING), then paused again at the recorded pause.
		deadline := time.Now().Add(20 * time.Second)
		for strings.Count(strings.Join(actionsOf(t, st, run.ID), " "), "paused") < 2 {
			if time.Now().After(deadline) {
				t.Fatalf("history %v: the resumed run did not wait at its pause again", actionsOf(t, st, run.ID))
			}
			time.Sleep(5 * time.Millisecond)
		}
		if ran.Load() != 0 {
			t.Fatalf("step ran %d times before the resume, want 0", ran.Load())
		}
		if _, err := st.InputSend(ctx, store.InputSendParams{RunID: run.ID, Actor: alice}); err != nil {
			t.Fatal(err)
		}
		if err := <-resumed; err != nil || state != store.RunCompleted {
			t.Fatalf("resume: %s, %v; want COMPLETED", state, err)
		}
		if ran.Load() != 1 || len(taskRunsOf(t, st, run.ID, "pause")) != 1 {
			t.Errorf("step ran %d times, %d pause steps; want 1 and 1", ran.Load(), len(taskRunsOf(t, st, run.ID, "pause")))
		}
	})
}
