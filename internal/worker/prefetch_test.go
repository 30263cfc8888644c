package worker

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/store"
)

// TestPrefetchSize: the prefetch buffer holds about four times the slots
// that free during one report's round trip, at most the slots, and nothing
// for task runs long next to the round trip or before both are measured.
func TestPrefetchSize(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	for _, tc := range []struct {
		name     string
		slots    int
		taskDur  time.Duration
		rtt      time.Duration
		prefetch int
	}{
		{"not measured yet", 8, 0, 0, 0},
		{"no round trip yet", 8, 10 * ms, 0, 0},
		{"10 ms tasks, 3 ms round trips", 8, 10 * ms, 3 * ms, 8},
		{"20 ms tasks, 1 ms round trips", 8, 20 * ms, ms, 2},
		{"1 ms tasks: at most the slots", 8, ms, 3 * ms, 8},
		{"100 ms tasks: a claim keeps up", 8, 100 * ms, 3 * ms, 0},
		{"one slot, 5 ms tasks", 1, 5 * ms, 2 * ms, 1},
		{"2,000 slots, quick tasks: at most maxPrefetch", 2000, ms, 3 * ms, maxPrefetch},
		{"one slot, 10 ms tasks", 1, 10 * ms, 2 * ms, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := &Worker{cfg: Config{Slots: map[string]int{"q": tc.slots}}, taskDur: map[string]time.Duration{"q": tc.taskDur}, rtt: tc.rtt}
			if got := w.prefetchLocked("q"); got != tc.prefetch {
				t.Errorf("prefetch = %d, want %d", got, tc.prefetch)
			}
		})
	}
}

func TestAverage(t *testing.T) {
	t.Parallel()
	if got := average(0, 10); got != 10 {
		t.Errorf("first sample: %v, want 10", got)
	}
	if got := average(10, 20); got != 12 {
		t.Errorf("average(10, 20) = %v, want 12", got)
	}
}

// TestCancelEmptiesPrefetchBuffer: a cancel takes the cancelled run's task
// runs out of the prefetch buffers and reports them CANCELLED without
// running them; other runs' task runs stay buffered.
func TestCancelEmptiesPrefetchBuffer(t *testing.T) {
	t.Parallel()
	w := &Worker{id: "w1", clk: clock.Real(), ready: map[string][]readyTask{}, taskRuns: map[string]map[store.TaskRunRef]taskHold{},
		completions: make(chan store.TaskRunCompletion, 4)}
	buffer := func(run, key string, attempt int) {
		ctx, cancel := context.WithCancelCause(context.Background())
		tr := store.TaskRun{ID: key, RunID: run, Key: key, Queue: "q", FlowAttempt: attempt}
		ref := store.TaskRunRef{RunID: run, Key: key, ID: key}
		if w.taskRuns[run] == nil {
			w.taskRuns[run] = map[store.TaskRunRef]taskHold{}
		}
		w.taskRuns[run][ref] = taskHold{cancel: cancel, attempt: attempt}
		w.ready["q"] = append(w.ready["q"], readyTask{tr: tr, ctx: ctx, cancel: cancel})
	}
	buffer("a", "a1", 1)
	buffer("b", "b1", 1)
	buffer("a", "a2", 1)
	buffer("a", "a3", 2) // a later attempt than the one cancelled
	w.stopWork(api.Heartbeat{Cancel: []string{"a"}, Attempts: map[string]int{"a": 1}})
	w.wg.Wait()
	close(w.completions)
	var got []string
	for c := range w.completions {
		if c.State != store.TaskCancelled || c.WorkerID != "w1" || c.Error == nil {
			t.Errorf("completion %+v, want CANCELLED by w1 with an error", c)
		}
		got = append(got, c.Ref.ID)
	}
	if !slices.Equal(got, []string{"a1", "a2"}) {
		t.Errorf("reported %v, want [a1 a2]", got)
	}
	var left []string
	for _, rt := range w.ready["q"] {
		left = append(left, rt.tr.ID)
	}
	if !slices.Equal(left, []string{"b1", "a3"}) || w.unreported != 2 {
		t.Errorf("buffer %v with %d unreported, want [b1 a3] and 2", left, w.unreported)
	}
	if _, ok := w.taskRuns["a"][store.TaskRunRef{RunID: "a", Key: "a1", ID: "a1"}]; ok {
		t.Error("a1 is still held as executing")
	}
}
