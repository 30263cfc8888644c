package engine

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// TestReconcileLocalRuns: a local run whose process on this host is gone is
// CRASHED (and so can be retried) in every state its process holds it in,
// AWAITING_RETRY (waiting out the flow's retry delay) included; a live
// process's run, a worker's run and a run that is not held are left alone.
func TestReconcileLocalRuns(t *testing.T) {
	t.Parallel()
	self := Self()
	if self.Start == 0 {
		t.Skip("no process start times on this system: a dead owner cannot be told from a live one")
	}
	// This process's pid with another start time: a process that is gone
	// and whose pid was reused.
	dead := Process{Host: self.Host, PID: self.PID, Start: self.Start + 1}
	tests := []struct {
		name   string
		state  store.RunState
		owner  Process
		worker string
		want   store.RunState
	}{
		{"running, owner gone", store.RunRunning, dead, "", store.RunCrashed},
		{"pending, owner gone", store.RunPending, dead, "", store.RunCrashed},
		{"cancelling, owner gone", store.RunCancelling, dead, "", store.RunCrashed},
		{"awaiting retry, owner gone", store.RunAwaitingRetry, dead, "", store.RunCrashed},
		{"awaiting retry, owner alive", store.RunAwaitingRetry, self, "", store.RunAwaitingRetry},
		{"awaiting retry, on a worker", store.RunAwaitingRetry, dead, "w1", store.RunAwaitingRetry},
		{"scheduled", store.RunScheduled, dead, "", store.RunScheduled},
		{"failed", store.RunFailed, dead, "", store.RunFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			now := time.Now()
			run := store.Run{ID: "r1", Flow: "f", State: tc.state, Attempt: 2, CreatedAt: now, UpdatedAt: now,
				StartedAt: now, OwnerHost: tc.owner.Host, OwnerPID: tc.owner.PID, OwnerStart: tc.owner.Start,
				WorkerID: tc.worker, Error: &store.ErrorInfo{Message: "attempt 2 failed"}}
			st := &refusingStore{runs: map[string]store.Run{run.ID: run}}
			got, err := Reconcile(ctx, st, run)
			if err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			if got.State != tc.want || got.Attempt != 2 {
				t.Fatalf("Reconcile: %s at attempt %d, want %s at attempt 2", got.State, got.Attempt, tc.want)
			}
			if stored, _ := st.RunGet(ctx, run.ID); stored.State != tc.want {
				t.Errorf("stored run is %s, want %s", stored.State, tc.want)
			}
			if tc.want != store.RunCrashed {
				return
			}
			if got.Error == nil || got.Error.Kind != "crashed" || got.EndedAt.IsZero() {
				t.Errorf("crashed run: error %+v, ended %v; want kind crashed and an end time", got.Error, got.EndedAt)
			}
			// CRASHED is retryable: a new attempt can reopen it.
			if _, err := st.RunTransition(ctx, store.RunTransitionParams{ID: run.ID,
				From: []store.RunState{store.RunFailed, store.RunCancelled, store.RunCrashed}, To: store.RunRunning,
				NextAttempt: true}); err != nil {
				t.Errorf("reopen the crashed run: %v", err)
			}
		})
	}
}
