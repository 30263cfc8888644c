package server_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// countingStore counts the store calls that apply completions and claim.
type countingStore struct {
	store.Store
	complete, claim, runClaim, combined atomic.Int32
}

func (s *countingStore) TaskRunComplete(ctx context.Context, cs []store.TaskRunCompletion) ([]store.TaskRunRef, error) {
	s.complete.Add(1)
	return s.Store.TaskRunComplete(ctx, cs)
}

func (s *countingStore) TaskRunClaim(ctx context.Context, p store.TaskRunClaimParams) ([]store.TaskRun, error) {
	s.claim.Add(1)
	return s.Store.TaskRunClaim(ctx, p)
}

func (s *countingStore) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	s.runClaim.Add(1)
	return s.Store.RunClaim(ctx, p)
}

func (s *countingStore) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	s.combined.Add(1)
	return s.Store.Claim(ctx, p)
}

// TestReportClaimsInOneTransaction: a worker's report that claims the slots
// it freed applies the completions and claims flow runs and the task runs
// of every queue in one store call (one transaction), and answers all.
func TestReportClaimsInOneTransaction(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: sq}
	b := setupWith(t, st)
	now := time.Now()
	batch := store.Batch{Runs: []store.Run{{ID: "r", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: now},
		{ID: "s", Flow: "f", Queue: "default", State: store.RunScheduled, Attempt: 1, CreatedAt: now}}}
	for i, id := range []string{"a", "b", "c", "q2"} {
		queue := "q"
		if id == "q2" {
			queue = "q2"
		}
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "t", Queue: queue,
			State: store.TaskPending, FlowAttempt: 1, Input: json.RawMessage(`1`), CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := sq.BatchWrite(ctx, batch); err != nil {
		t.Fatal(err)
	}
	reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"default"}, Tasks: []string{"t"},
		Flows: []api.FlowInfo{{Name: "f"}}, Capacity: 1, Slots: map[string]int{"q": 1, "q2": 1}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, Seq: 1})
	if err != nil || len(got.TaskRuns) != 1 || got.TaskRuns[0].ID != "a" {
		t.Fatalf("claim: %v, %v; want task run a", err, got.TaskRuns)
	}
	a := got.TaskRuns[0]
	got, err = b.w.Claim(ctx, reg.ID, api.Claim{Runs: 1, Tasks: map[string]int{"q": 1, "q2": 1}, Seq: 2, Completions: []store.TaskRunCompletion{
		{Ref: store.TaskRunRef{RunID: a.RunID, Key: a.Key, ID: a.ID}, WorkerID: reg.ID, State: store.TaskCompleted,
			Attempts: 1, Result: json.RawMessage(`2`), At: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, tr := range got.TaskRuns {
		ids[tr.ID] = true
	}
	if len(got.Applied) != 1 || got.Applied[0].ID != "a" || len(got.TaskRuns) != 2 || !ids["b"] || !ids["q2"] ||
		len(got.Runs) != 1 || got.Runs[0].ID != "s" {
		t.Errorf("report with claim: applied %v, claimed runs %v, task runs %v; want [a], [s], [b q2]", got.Applied, got.Runs, got.TaskRuns)
	}
	if n, c, r, cc := st.complete.Load(), st.claim.Load(), st.runClaim.Load(), st.combined.Load(); n != 0 || c != 0 || r != 0 || cc != 2 {
		t.Errorf("store calls: %d TaskRunComplete, %d TaskRunClaim, %d RunClaim, %d Claim; want 0, 0, 0, 2 (one per claim)", n, c, r, cc)
	}
	if done, err := sq.TaskRunFinished(ctx, []store.TaskRunRef{{RunID: "r", Key: "k/a", ID: "a"}}); err != nil ||
		len(done) != 1 || done[0].State != store.TaskCompleted {
		t.Errorf("a: %v, %v; want COMPLETED", done, err)
	}
}
