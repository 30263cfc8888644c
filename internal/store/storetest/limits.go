package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// The conformance tests of tags and tag concurrency limits (store.Limit):
// AWAITING_SLOT task runs start only with a slot of every limited tag they
// carry, oldest first, and slots come back when their holder completes, is
// cancelled, or is taken back.

// slotTaskRun is an AWAITING_SLOT distributed task run of run "r" on queue
// q created at at(created).
func slotTaskRun(id string, created int, tags ...string) store.TaskRun {
	return store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "work", Queue: "q", State: store.WaitingState(tags),
		FlowAttempt: 1, CreatedAt: at(created), Tags: tags}
}

// slotClaim claims up to n task runs of queue q for worker, at at(50).
func slotClaim(t *testing.T, s store.Store, worker string, n int) []string {
	t.Helper()
	got, err := s.TaskRunClaim(context.Background(), store.TaskRunClaimParams{WorkerID: worker, Queues: []string{"q"},
		Tasks: []string{"work"}, Limit: n, LeaseUntil: at(100), At: at(50)})
	if err != nil {
		t.Fatalf("TaskRunClaim: %v", err)
	}
	return taskRunIDs(got)
}

func wantClaim(t *testing.T, s store.Store, worker string, n int, want ...string) {
	t.Helper()
	if got := slotClaim(t, s, worker, n); !reflect.DeepEqual(sortedIDs(got), sortedIDs(want)) {
		t.Fatalf("claim of %d for %s = %v, want %v", n, worker, got, want)
	}
}

func setLimit(t *testing.T, s store.Store, tag string, n int) {
	t.Helper()
	if _, err := s.LimitSet(context.Background(), store.LimitSetParams{Tag: tag, Max: n, By: "test", At: at(1)}); err != nil {
		t.Fatalf("LimitSet(%s, %d): %v", tag, n, err)
	}
}

func complete(t *testing.T, s store.Store, worker string, ids ...string) {
	t.Helper()
	var cs []store.TaskRunCompletion
	for _, id := range ids {
		cs = append(cs, store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: "r", Key: "k/" + id, ID: id},
			WorkerID: worker, State: store.TaskCompleted, Attempts: 1, Result: raw(`1`), At: at(60)})
	}
	applied, err := s.TaskRunComplete(context.Background(), cs)
	if err != nil || len(applied) != len(ids) {
		t.Fatalf("TaskRunComplete(%v) = %v, %v", ids, applied, err)
	}
}

func testLimitsCRUD(t *testing.T, s store.Store) {
	ctx := context.Background()
	if ls, err := s.LimitList(ctx, nil); err != nil || len(ls) != 0 {
		t.Fatalf("LimitList of a new store = %v, %v; want none", ls, err)
	}
	l, err := s.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: 4, By: "ann", At: at(1)})
	if err != nil || l.Tag != "robot" || l.Max != 4 || l.UpdatedBy != "ann" || !l.CreatedAt.Equal(at(1)) {
		t.Fatalf("LimitSet = %+v, %v", l, err)
	}
	l, err = s.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: 2, By: "bob", At: at(2)})
	if err != nil || l.Max != 2 || l.UpdatedBy != "bob" || !l.CreatedAt.Equal(at(1)) || !l.UpdatedAt.Equal(at(2)) {
		t.Fatalf("LimitSet again = %+v, %v", l, err)
	}
	setLimit(t, s, "gpu", 0)
	ls, err := s.LimitList(ctx, nil)
	if err != nil || len(ls) != 2 || ls[0].Tag != "gpu" || ls[1].Tag != "robot" || ls[1].Max != 2 {
		t.Fatalf("LimitList = %+v, %v; want gpu, robot", ls, err)
	}
	if ls, err := s.LimitList(ctx, []string{"robot", "none"}); err != nil || len(ls) != 1 || ls[0].Tag != "robot" {
		t.Fatalf("LimitList(robot, none) = %+v, %v", ls, err)
	}
	for _, bad := range []store.LimitSetParams{{Tag: "robot", Max: -1}, {Tag: "", Max: 1}, {Tag: "a\x00b", Max: 1}} {
		_, err := s.LimitSet(ctx, bad)
		if err == nil {
			t.Errorf("LimitSet(%+v) succeeded", bad)
		} else if want := store.CheckLimit(bad.Tag, bad.Max); want == nil || !strings.Contains(err.Error(), want.Error()) {
			t.Errorf("LimitSet(%+v) = %v, want the error %v", bad, err, want)
		}
	}
	if _, err := s.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: -1}); err == nil ||
		!strings.Contains(err.Error(), "limit: must be 0 or more, got -1") {
		t.Errorf("negative limit: %v", err)
	}
	if ls, _ := s.LimitList(ctx, []string{"robot"}); len(ls) != 1 || ls[0].Max != 2 {
		t.Errorf("a refused LimitSet changed the limit: %+v", ls)
	}
	if err := s.LimitDelete(ctx, "gpu"); err != nil {
		t.Fatalf("LimitDelete: %v", err)
	}
	if err := s.LimitDelete(ctx, "gpu"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LimitDelete of a deleted limit = %v, want ErrNotFound", err)
	}
	if ls, _ := s.LimitList(ctx, nil); len(ls) != 1 || ls[0].Tag != "robot" {
		t.Errorf("LimitList after delete = %+v", ls)
	}
}

func testTagsRoundTrip(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	trs := []store.TaskRun{slotTaskRun("a", 1, "gpu", "robot"), slotTaskRun("b", 2)}
	trs[1].Queue = "" // local, with tags
	trs[1].Tags, trs[1].State = []string{"x"}, store.TaskRunning
	write(t, s, store.Batch{TaskRuns: trs})
	for _, want := range trs {
		checkTaskRun(t, "task run with tags", getTaskRun(t, s, "r", want.Key, want.ID), want)
	}
	// The journal holds an AWAITING_SLOT task run as in flight.
	js, err := s.JournalList(context.Background(), "r")
	if err != nil || len(js) != 1 || js[0].ID != "a" || js[0].State != store.TaskAwaitingSlot {
		t.Errorf("JournalList = %+v, %v; want a AWAITING_SLOT", js, err)
	}
}

func testSlotClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 2)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("r3", 3, "robot"), slotTaskRun("r1", 1, "robot"), slotTaskRun("r2", 2, "robot"),
		slotTaskRun("r4", 4, "robot"), slotTaskRun("r5", 5, "robot"),
		slotTaskRun("free", 6, "unlimited"), slotTaskRun("plain", 7),
	}})
	qs, err := s.QueueList(ctx, at(0))
	if err != nil || len(qs) != 1 || qs[0].Queue != "q" || qs[0].TasksPending != 1 || qs[0].TasksAwaitingSlot != 6 {
		t.Fatalf("QueueList = %+v, %v; want q with 1 pending and 6 awaiting a slot", qs, err)
	}
	// Untagged task runs and tags without a limit start at once; robot
	// task runs oldest first while slots are free.
	wantClaim(t, s, "w1", 10, "plain", "r1", "r2", "free")
	wantClaim(t, s, "w2", 10)
	got := getTaskRun(t, s, "r", "k/r1", "r1")
	if got.State != store.TaskRunning || got.WorkerID != "w1" {
		t.Fatalf("r1 is %s held by %q", got.State, got.WorkerID)
	}
	if h := got.History[len(got.History)-1]; h.From != "AWAITING_SLOT" || h.To != "RUNNING" || h.Cause != "worker:w1" {
		t.Errorf("r1's claim transition = %+v", h)
	}
	if got := getTaskRun(t, s, "r", "k/r3", "r3"); got.State != store.TaskAwaitingSlot || got.WorkerID != "" {
		t.Errorf("r3 is %s held by %q, want AWAITING_SLOT", got.State, got.WorkerID)
	}
	ls, err := s.LimitList(ctx, nil)
	if err != nil || len(ls) != 1 || len(ls[0].Holders) != 2 || ls[0].Waiting != 3 {
		t.Fatalf("LimitList = %+v, %v; want robot held twice, 3 waiting", ls, err)
	}
	if h := ls[0].Holders[0]; h.WorkerID != "w1" || h.Task != "work" || !h.Since.Equal(at(50)) ||
		!slices.Contains([]string{"r1", "r2"}, h.Ref.ID) {
		t.Errorf("holder = %+v", h)
	}

	// A completion frees its slot: the oldest waiting starts.
	complete(t, s, "w1", "r2")
	wantClaim(t, s, "w2", 10, "r3")
	// A raised limit frees slots, a lower one holds new starts back.
	setLimit(t, s, "robot", 3)
	wantClaim(t, s, "w2", 10, "r4")
	setLimit(t, s, "robot", 1)
	complete(t, s, "w1", "r1")
	wantClaim(t, s, "w2", 10) // r3 and r4 still hold two slots of one
	// Deleting the limit lets the rest start.
	if err := s.LimitDelete(ctx, "robot"); err != nil {
		t.Fatal(err)
	}
	wantClaim(t, s, "w2", 10, "r5")
}

func testSlotLimitZero(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 0)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("a", 1, "robot")}})
	wantClaim(t, s, "w1", 5)
	setLimit(t, s, "robot", 1)
	wantClaim(t, s, "w1", 5, "a")
}

// testSlotOrder checks the order among several tags: a task run that waits
// for one full tag keeps its place in the other tags it carries, so a
// younger task run never overtakes it there.
func testSlotOrder(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	setLimit(t, s, "a", 1)
	setLimit(t, s, "b", 1)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("hold", 0, "a")}})
	wantClaim(t, s, "w1", 1, "hold") // a is full
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("ab", 1, "a", "b"), slotTaskRun("b1", 2, "b"), slotTaskRun("c", 3, "c"),
	}})
	wantClaim(t, s, "w1", 5, "c") // ab waits for a, b1 waits behind ab
	complete(t, s, "w1", "hold")
	wantClaim(t, s, "w1", 5, "ab")
	complete(t, s, "w1", "ab")
	wantClaim(t, s, "w1", 5, "b1")
}

// testSlotRelease checks that slots come back with the take-backs: a
// cancel (the worker's completion CANCELLED), an expired lease, a worker
// released, and that a waiting task run of a cancelled run is cancelled.
func testSlotRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 1)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("a", 1, "robot"), slotTaskRun("b", 2, "robot"), slotTaskRun("c", 3, "robot"),
	}})
	wantClaim(t, s, "w1", 5, "a")
	// The lease of w1 expires: a goes back to AWAITING_SLOT and, the
	// oldest, gets the slot again.
	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(101), MaxAttempts: 5})
	if err != nil || exp.TaskRuns != 1 {
		t.Fatalf("LeasesExpire = %+v, %v", exp, err)
	}
	if got := getTaskRun(t, s, "r", "k/a", "a"); got.State != store.TaskAwaitingSlot || got.WorkerID != "" {
		t.Fatalf("a after its lease expired: %s held by %q, want AWAITING_SLOT", got.State, got.WorkerID)
	}
	wantClaim(t, s, "w2", 5, "a")
	// w2 stops: released.
	if err := s.WorkerRelease(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	if got := getTaskRun(t, s, "r", "k/a", "a"); got.State != store.TaskAwaitingSlot {
		t.Fatalf("a after its worker was released: %s", got.State)
	}
	wantClaim(t, s, "w3", 5, "a")
	// A cancelled task run's slot is free.
	applied, err := s.TaskRunComplete(ctx, []store.TaskRunCompletion{{Ref: store.TaskRunRef{RunID: "r", Key: "k/a", ID: "a"},
		WorkerID: "w3", State: store.TaskCancelled, Attempts: 1, Error: &store.ErrorInfo{Message: "cancelled"}, At: at(60)}})
	if err != nil || len(applied) != 1 {
		t.Fatalf("cancel a: %v, %v", applied, err)
	}
	wantClaim(t, s, "w3", 5, "b")
	// The run is cancelled: c, waiting, is cancelled with it.
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "r", From: []store.RunState{store.RunRunning},
		To: store.RunCancelling, Cause: "user", At: at(70)}); err != nil {
		t.Fatal(err)
	}
	if got := getTaskRun(t, s, "r", "k/c", "c"); got.State != store.TaskCancelled ||
		got.History[len(got.History)-1].From != "AWAITING_SLOT" {
		t.Errorf("c of a cancelled run: %s, history %+v", got.State, got.History)
	}
}

// testSlotClaimConcurrent races claimers for the slots of one tag: at no
// moment do more task runs with the tag run than its limit allows, checked
// against the store's own list of holders after every claim.
func testSlotClaimConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const taskRuns, claimers, limit = 60, 6, 3
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", limit)
	var b store.Batch
	for i := range taskRuns {
		b.TaskRuns = append(b.TaskRuns, slotTaskRun(fmt.Sprintf("t%02d", i), i, "robot"))
	}
	write(t, s, b)
	var (
		wg      sync.WaitGroup
		errs    errorList
		mu      sync.Mutex
		claimed = map[string]int{}
	)
	for c := range claimers {
		worker := fmt.Sprintf("w%d", c)
		wg.Go(func() {
			for range 4 * taskRuns {
				got, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Tasks: []string{"work"}, Limit: 2, LeaseUntil: at(1000), At: at(500)})
				if err != nil {
					errs.add(err)
					return
				}
				ls, err := s.LimitList(ctx, []string{"robot"})
				if err != nil {
					errs.add(err)
					return
				}
				if n := len(ls[0].Holders); n > limit {
					errs.add(fmt.Errorf("%d task runs hold a slot of robot, limit %d", n, limit))
				}
				mu.Lock()
				done := len(claimed) == taskRuns
				for _, tr := range got {
					claimed[tr.ID]++
				}
				mu.Unlock()
				if len(got) == 0 && done {
					return
				}
				var cs []store.TaskRunCompletion
				for _, tr := range got {
					cs = append(cs, store.TaskRunCompletion{Ref: refOf(tr), WorkerID: worker, State: store.TaskCompleted,
						Attempts: 1, At: at(600)})
				}
				if len(cs) > 0 {
					if _, err := s.TaskRunComplete(ctx, cs); err != nil {
						errs.add(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	errs.report(t)
	if len(claimed) != taskRuns {
		t.Errorf("%d task runs claimed, want %d", len(claimed), taskRuns)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("task run %s claimed %d times", id, n)
		}
	}
}
