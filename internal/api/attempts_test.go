package api

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// TestCompareAttempts: each step of a retried run is told reused, or ran
// again with its reason, from the task runs of its attempts.
func TestCompareAttempts(t *testing.T) {
	t.Parallel()
	tr := func(id, key, task, identity, input string, state store.TaskState, attempt int) store.TaskRun {
		return store.TaskRun{ID: id, Key: key, Task: task, Identity: identity, InputHash: input, State: state, FlowAttempt: attempt}
	}
	failed := tr("a2", "load/1", "load", "L1.0", "i1", store.TaskFailed, 1)
	failed.Error = &store.ErrorInfo{Message: "disk full"}
	trs := []store.TaskRun{
		tr("a1", "fetch/0", "fetch", "F.0", "i0", store.TaskCompleted, 1),
		failed,
		tr("a3", "train/2", "train", "T.0", "i2", store.TaskCompleted, 1),
		tr("a4", "score/3", "score", "S1.0", "i3", store.TaskCompleted, 1),
		tr("a5", "lost/4", "lost", "X.0", "i4", store.TaskCrashed, 1),
		tr("a6", "old/5", "old", "O.0", "i5", store.TaskCompleted, 1),
		// Attempt 2: fetch reused; load failed before; train with another
		// input (a new key); score with a new version; another task at
		// old's place; lost never finished; a new step.
		tr("b1", "load/1", "load", "L1.0", "i1", store.TaskCompleted, 2),
		tr("b2", "train/2#2", "train", "T2.0", "i9", store.TaskCompleted, 2),
		tr("b3", "score/3", "score", "S2.0", "i3", store.TaskCompleted, 2),
		tr("b4", "lost/4", "lost", "X.0", "i4", store.TaskCompleted, 2),
		tr("b5", "old/5", "new-task", "N.0", "i5", store.TaskCompleted, 2),
		tr("b6", "extra/6", "extra", "E.0", "i6", store.TaskCompleted, 2),
		// Attempt 3: only score again, with the same identity.
		tr("c1", "score/3", "score", "S2.0", "i3", store.TaskCompleted, 3),
	}
	run := store.Run{ID: "r", Attempt: 3}
	got := CompareAttempts(run, trs, 0)
	if len(got.Attempts) != 3 {
		t.Fatalf("%d attempts, want 3", len(got.Attempts))
	}
	reasons := func(d apitype.AttemptDiff) map[string]string {
		m := map[string]string{}
		for _, s := range d.Ran {
			m[s.TaskRunID] = s.Reason
		}
		return m
	}
	reused := func(d apitype.AttemptDiff) []string {
		var ids []string
		for _, s := range d.Reused {
			ids = append(ids, s.TaskRunID)
		}
		return ids
	}
	a1 := got.Attempts[0]
	if a1.RanTotal != 6 || a1.ReusedTotal != 0 || len(a1.Reasons) != 1 || a1.Reasons[0] != (apitype.ReasonCount{Reason: apitype.StepNew, N: 6}) {
		t.Errorf("attempt 1: %+v", a1)
	}
	a2 := got.Attempts[1]
	want2 := map[string]string{"b1": apitype.StepFailedBefore, "b2": apitype.StepInputChanged, "b3": apitype.StepVersionChanged,
		"b4": apitype.StepUnfinished, "b5": apitype.StepTaskChanged, "b6": apitype.StepNew}
	if g := reasons(a2); !maps.Equal(g, want2) {
		t.Errorf("attempt 2 reasons %v, want %v", g, want2)
	}
	if g := reused(a2); !slices.Equal(g, []string{"a1"}) {
		t.Errorf("attempt 2 reused %v, want [a1]", g)
	}
	if a2.Ran[0].Previous == nil || a2.Ran[0].Previous.TaskRunID != "a2" || a2.Ran[0].Detail == "" {
		t.Errorf("attempt 2's load: %+v", a2.Ran[0])
	}
	a3 := got.Attempts[2]
	if g := reasons(a3); !maps.Equal(g, map[string]string{"c1": apitype.StepRanAgain}) {
		t.Errorf("attempt 3 reasons %v", g)
	}
	if g := reused(a3); !slices.Equal(g, []string{"a1", "b1", "b2", "b4", "b5", "b6"}) {
		t.Errorf("attempt 3 reused %v", g)
	}
	// Lists are bounded; totals are not.
	small := CompareAttempts(run, trs, 2)
	if d := small.Attempts[1]; len(d.Ran) != 2 || d.RanTotal != 6 {
		t.Errorf("limit 2: %d listed of %d", len(d.Ran), d.RanTotal)
	}
}

func TestPlaceOf(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ key, want string }{
		{"train/0", "train/0"}, {"train/0#2", "train/0"}, {"train/0#12", "train/0"}, {"a#b", "a#b"},
		{"a#", "a#"}, {"x#1#2", "x#1"}, {"map/3.17#2", "map/3.17"}, {"", ""},
	} {
		if got := placeOf(tc.key); got != tc.want {
			t.Errorf("placeOf(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
}

// BenchmarkCompareAttempts: a retried map of 100,000 items, half of them
// run again, compares in one pass per attempt.
func BenchmarkCompareAttempts(b *testing.B) {
	const n = 100000
	trs := make([]store.TaskRun, 0, n+n/2)
	for i := range n {
		state := store.TaskCompleted
		if i%2 == 0 {
			state = store.TaskFailed
		}
		trs = append(trs, store.TaskRun{ID: fmt.Sprintf("a%d", i), Key: fmt.Sprintf("map/0.%d", i), Task: "t",
			Identity: fmt.Sprintf("h%d.0", i), InputHash: fmt.Sprintf("i%d", i), State: state, FlowAttempt: 1})
	}
	for i := 0; i < n; i += 2 {
		trs = append(trs, store.TaskRun{ID: fmt.Sprintf("b%d", i), Key: fmt.Sprintf("map/0.%d", i), Task: "t",
			Identity: fmt.Sprintf("h%d.0", i), InputHash: fmt.Sprintf("i%d", i), State: store.TaskCompleted, FlowAttempt: 2})
	}
	run := store.Run{ID: "r", Attempt: 2}
	for b.Loop() {
		c := CompareAttempts(run, trs, 0)
		if d := c.Attempts[1]; d.RanTotal != n/2 || d.ReusedTotal != n/2 {
			b.Fatalf("ran %d, reused %d", d.RanTotal, d.ReusedTotal)
		}
	}
}
