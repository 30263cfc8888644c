package storetest

import (
	"context"
	"maps"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// testRunsHeldAndAhead: RunsHeld counts the leased runs per worker, and
// RunsScheduledAhead the SCHEDULED runs of a queue before a run (by
// creation time, then ID), which the waiting reasons report.
func testRunsHeldAndAhead(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := func(id string, state store.RunState, queue, worker string, created int) store.Run {
		return store.Run{ID: id, Flow: "f", State: state, Attempt: 1, Queue: queue, WorkerID: worker, CreatedAt: at(created)}
	}
	write(t, s, store.Batch{Runs: []store.Run{
		run("h1", store.RunRunning, "q", "w1", 0),
		run("h2", store.RunPending, "q", "w1", 0),
		run("h3", store.RunCancelling, "q", "w2", 0),
		run("h4", store.RunCompleted, "q", "w2", 0), // finished: not held
		run("h5", store.RunRunning, "q", "", 0),     // no worker: not counted
		run("s-b", store.RunScheduled, "q", "", 5),
		run("s-a", store.RunScheduled, "q", "", 5),
		run("s-old", store.RunScheduled, "q", "", 1),
		run("s-new", store.RunScheduled, "q", "", 9),
		run("s-other", store.RunScheduled, "other", "", 0),
	}})
	held, err := s.RunsHeld(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int{"w1": 2, "w2": 1}; !maps.Equal(held, want) {
		t.Errorf("RunsHeld = %v, want %v", held, want)
	}
	for _, tc := range []struct {
		id      string
		created int
		want    int
	}{
		{"s-old", 1, 0},
		{"s-a", 5, 1},
		{"s-b", 5, 2}, // same time as s-a: after it by ID
		{"s-new", 9, 3},
		{"later", 20, 4}, // a run not written yet counts all before it
	} {
		if got, err := s.RunsScheduledAhead(ctx, "q", at(tc.created), tc.id); err != nil || got != tc.want {
			t.Errorf("RunsScheduledAhead(q, %d, %s) = %d, %v; want %d", tc.created, tc.id, got, err, tc.want)
		}
	}
	if got, err := s.RunsScheduledAhead(ctx, "none", at(20), "x"); err != nil || got != 0 {
		t.Errorf("RunsScheduledAhead of an empty queue = %d, %v", got, err)
	}
}
