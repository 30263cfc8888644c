package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// TestSlotHandOffTakesNoLimitLock checks that a worker's report that frees
// a full tag's slots hands them to the oldest waiting task runs without the
// lock of the tag's concurrency_limits row: a transaction of the test holds
// that row (as a slot claim of another server would), and the report
// completes and starts its task run all the same, while a claim that needs
// the lock (a free slot without a completion) waits for it.
func TestSlotHandOffTakesNoLimitLock(t *testing.T) {
	t.Parallel()
	var b [4]byte
	rand.Read(b[:])
	app := "handoff_" + hex.EncodeToString(b[:])
	st := openAt(t, schemaURL(t)+"&application_name="+app)
	ctx := context.Background()
	ts := func(n int) time.Time { return time.Unix(1_800_000_000+int64(n), 0) }
	tr := func(id string, created int) store.TaskRun {
		return store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "work", Queue: "q", State: store.TaskAwaitingSlot,
			FlowAttempt: 1, CreatedAt: ts(created), Tags: []string{"robot"}}
	}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "r", Flow: "f", State: store.RunRunning, Attempt: 1}},
		TaskRuns: []store.TaskRun{tr("a", 1), tr("b", 2), tr("c", 3)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: 1, By: "test"}); err != nil {
		t.Fatal(err)
	}
	claim := store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Tasks: []string{"work"}, Limit: 1,
		LeaseUntil: ts(1000), At: ts(50)}
	got, err := st.TaskRunClaim(ctx, claim)
	if err != nil || len(got) != 1 || got[0].ID != "a" {
		t.Fatalf("claim = %v, %v; want a", got, err)
	}
	holder, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	if _, err := holder.Exec(ctx, "SELECT tag FROM concurrency_limits WHERE tag = 'robot' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	res, err := st.Claim(tctx, store.ClaimParams{Completions: []store.TaskRunCompletion{{
		Ref: store.TaskRunRef{RunID: "r", Key: "k/a", ID: "a"}, WorkerID: "w1", State: store.TaskCompleted, Attempts: 1,
		At: ts(60)}}, Tasks: []store.TaskRunClaimParams{claim}})
	if err != nil {
		t.Fatalf("Claim with a completion while the limit row is locked: %v", err)
	}
	if len(res.Applied) != 1 || len(res.TaskRuns[0]) != 1 || res.TaskRuns[0][0].ID != "b" {
		t.Fatalf("Claim = %+v; want a applied and b handed off", res)
	}
	// Without a completion, a free slot (b completes apart) is the slot
	// claim's: it waits for the lock.
	if _, err := st.TaskRunComplete(ctx, []store.TaskRunCompletion{{Ref: store.TaskRunRef{RunID: "r", Key: "k/b", ID: "b"},
		WorkerID: "w1", State: store.TaskCompleted, Attempts: 1, At: ts(70)}}); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan []store.TaskRun, 1)
	go func() {
		got, err := st.TaskRunClaim(ctx, claim)
		if err != nil {
			t.Errorf("claim after the lock: %v", err)
		}
		claimed <- got
	}()
	waitLockWaiters(t, st, app, 1)
	if err := holder.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := <-claimed; len(got) != 1 || got[0].ID != "c" {
		t.Fatalf("claim after the lock = %v; want c", got)
	}
}
