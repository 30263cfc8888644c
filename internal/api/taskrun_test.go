package api

import (
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// TestTaskTries: a task run's state changes split into its tries.
func TestTaskTries(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	type try struct {
		outcome, message string
		ms               int64 // -1: not ended
	}
	for _, tc := range []struct {
		name string
		tr   store.TaskRun
		want []try
	}{
		{"cached: never ran", store.TaskRun{State: store.TaskCached, History: []store.Transition{{At: at(0), To: "CACHED"}}}, nil},
		{"one try", store.TaskRun{State: store.TaskCompleted, History: []store.Transition{
			{At: at(0), To: "PENDING"}, {At: at(1), To: "RUNNING"}, {At: at(3), From: "RUNNING", To: "COMPLETED"}}},
			[]try{{"COMPLETED", "", 2000}}},
		{"a retry, then running", store.TaskRun{State: store.TaskRunning, History: []store.Transition{
			{At: at(0), To: "RUNNING"}, {At: at(1), To: "AWAITING_RETRY", Message: "attempt 1 failed: boom"}, {At: at(2), To: "RUNNING"}}},
			[]try{{"AWAITING_RETRY", "attempt 1 failed: boom", 1000}, {"", "", -1}}},
		{"a lease taken back", store.TaskRun{State: store.TaskFailed, Error: &store.ErrorInfo{Message: "disk full"}, History: []store.Transition{
			{At: at(0), To: "RUNNING"}, {At: at(5), To: "RUNNING", Message: "lease expired"}, {At: at(6), To: "FAILED"}}},
			[]try{{"INTERRUPTED", "lease expired", 5000}, {"FAILED", "disk full", 1000}}},
	} {
		got := TaskTries(tc.tr)
		if len(got) != len(tc.want) {
			t.Errorf("%s: %d tries %+v, want %d", tc.name, len(got), got, len(tc.want))
			continue
		}
		for i, w := range tc.want {
			g := got[i]
			ms := int64(-1)
			if g.DurationMS != nil {
				ms = *g.DurationMS
			}
			if g.Try != i+1 || g.Outcome != w.outcome || g.Message != w.message || ms != w.ms {
				t.Errorf("%s: try %d = %+v (%d ms), want %+v", tc.name, i+1, g, ms, w)
			}
		}
	}
}
