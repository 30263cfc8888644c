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

// countingStore counts the store calls that apply completions and claim
// task runs.
type countingStore struct {
	store.Store
	complete, claim, completeClaim atomic.Int32
}

func (s *countingStore) TaskRunComplete(ctx context.Context, cs []store.TaskRunCompletion) ([]store.TaskRunRef, error) {
	s.complete.Add(1)
	return s.Store.TaskRunComplete(ctx, cs)
}

func (s *countingStore) TaskRunClaim(ctx context.Context, p store.TaskRunClaimParams) ([]store.TaskRun, error) {
	s.claim.Add(1)
	return s.Store.TaskRunClaim(ctx, p)
}

func (s *countingStore) TaskRunCompleteClaim(ctx context.Context, cs []store.TaskRunCompletion, p store.TaskRunClaimParams) ([]store.TaskRunRef, []store.TaskRun, error) {
	s.completeClaim.Add(1)
	return s.Store.TaskRunCompleteClaim(ctx, cs, p)
}

// TestReportClaimsInOneTransaction: a worker's report that claims the slots
// it freed applies the completions and claims in one store call (one
// transaction), and answers both.
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
	batch := store.Batch{Runs: []store.Run{{ID: "r", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: now}}}
	for i, id := range []string{"a", "b", "c"} {
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "t", Queue: "q",
			State: store.TaskPending, FlowAttempt: 1, Input: json.RawMessage(`1`), CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := sq.BatchWrite(ctx, batch); err != nil {
		t.Fatal(err)
	}
	reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"default"}, Tasks: []string{"t"},
		Slots: map[string]int{"q": 1}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, Seq: 1})
	if err != nil || len(got.TaskRuns) != 1 || got.TaskRuns[0].ID != "a" {
		t.Fatalf("claim: %v, %v; want task run a", err, got.TaskRuns)
	}
	a := got.TaskRuns[0]
	got, err = b.w.Claim(ctx, reg.ID, api.Claim{Tasks: map[string]int{"q": 1}, Seq: 2, Completions: []store.TaskRunCompletion{
		{Ref: store.TaskRunRef{RunID: a.RunID, Key: a.Key, ID: a.ID}, WorkerID: reg.ID, State: store.TaskCompleted,
			Attempts: 1, Result: json.RawMessage(`2`), At: time.Now()}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Applied) != 1 || got.Applied[0].ID != "a" || len(got.TaskRuns) != 1 || got.TaskRuns[0].ID != "b" {
		t.Errorf("report with claim: applied %v, claimed %v; want [a], [b]", got.Applied, got.TaskRuns)
	}
	if n, c, cc := st.complete.Load(), st.claim.Load(), st.completeClaim.Load(); n != 0 || c != 1 || cc != 1 {
		t.Errorf("store calls: %d TaskRunComplete, %d TaskRunClaim, %d TaskRunCompleteClaim; want 0, 1 (the first claim), 1", n, c, cc)
	}
	if done, err := sq.TaskRunFinished(ctx, []store.TaskRunRef{{RunID: "r", Key: "k/a", ID: "a"}}); err != nil ||
		len(done) != 1 || done[0].State != store.TaskCompleted {
		t.Errorf("a: %v, %v; want COMPLETED", done, err)
	}
}
