package storetest

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// The conformance tests of the slot hand-off: a worker's report (Claim with
// completions) that frees slots of limited tags starts, for that worker,
// the oldest waiting task runs those slots fit, as a claim after the
// completions would; never over a lowered limit, never a task run of a run
// that is not active, and a waiting task run whose limited tags were not
// all freed waits for the limit's slot claim (which starts it when the
// other tags have room).

// handOff reports the completions of ids (run "r") by worker and claims up
// to n task runs of queue q for it in the same Claim, at at(60); it
// returns the IDs claimed.
func handOff(t *testing.T, s store.Store, worker string, n int, ids ...string) []string {
	t.Helper()
	var cs []store.TaskRunCompletion
	for _, id := range ids {
		cs = append(cs, store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: "r", Key: "k/" + id, ID: id},
			WorkerID: worker, State: store.TaskCompleted, Attempts: 1, Result: raw(`1`), At: at(60)})
	}
	res, err := s.Claim(context.Background(), store.ClaimParams{Completions: cs, Tasks: []store.TaskRunClaimParams{{
		WorkerID: worker, Queues: []string{"q"}, Tasks: []string{"work"}, Limit: n, LeaseUntil: at(100), At: at(60)}}})
	if err != nil {
		t.Fatalf("Claim of %s completing %v: %v", worker, ids, err)
	}
	if len(res.Applied) != len(ids) {
		t.Fatalf("Claim of %s applied %v, want %v", worker, res.Applied, ids)
	}
	return taskRunIDs(res.TaskRuns[0])
}

func wantHandOff(t *testing.T, s store.Store, worker string, n int, done []string, want ...string) {
	t.Helper()
	if got := handOff(t, s, worker, n, done...); !reflect.DeepEqual(sortedIDs(got), sortedIDs(want)) {
		t.Fatalf("%s completing %v and claiming %d got %v, want %v", worker, done, n, got, want)
	}
}

// wantHolders checks the holders of tag's slots (IDs, any order).
func wantHolders(t *testing.T, s store.Store, tag string, want ...string) {
	t.Helper()
	ls, err := s.LimitList(context.Background(), []string{tag})
	if err != nil || len(ls) != 1 {
		t.Fatalf("LimitList(%s) = %+v, %v", tag, ls, err)
	}
	var got []string
	for _, h := range ls[0].Holders {
		got = append(got, h.Ref.ID)
	}
	if !reflect.DeepEqual(sortedIDs(got), sortedIDs(want)) {
		t.Fatalf("holders of %s = %v, want %v", tag, got, want)
	}
}

// testSlotHandOff: the freed slots go to the oldest waiting task runs, for
// the reporting worker, within what it claims; the others wait.
func testSlotHandOff(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 2)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("r1", 1, "robot"), slotTaskRun("r2", 2, "robot"), slotTaskRun("r5", 5, "robot"),
		slotTaskRun("r3", 3, "robot"), slotTaskRun("r4", 4, "robot"), slotTaskRun("r6", 6, "robot"),
	}})
	wantClaim(t, s, "w1", 5, "r1", "r2")
	wantClaim(t, s, "w2", 5) // robot is full
	wantHandOff(t, s, "w1", 1, []string{"r1"}, "r3")
	wantHolders(t, s, "robot", "r2", "r3")
	got := getTaskRun(t, s, "r", "k/r3", "r3")
	if got.State != store.TaskRunning || got.WorkerID != "w1" || !got.StartedAt.Equal(at(60)) || !got.LeaseUntil.Equal(at(100)) {
		t.Fatalf("r3 handed off: %s held by %q since %v until %v", got.State, got.WorkerID, got.StartedAt, got.LeaseUntil)
	}
	if h := got.History[len(got.History)-1]; h.From != "AWAITING_SLOT" || h.To != "RUNNING" || h.Cause != "worker:w1" {
		t.Errorf("r3's transition = %+v", h)
	}
	// Two slots freed, room for one: the oldest starts, the other slot is
	// free for any claim.
	wantHandOff(t, s, "w1", 1, []string{"r2", "r3"}, "r4")
	wantHolders(t, s, "robot", "r4")
	wantClaim(t, s, "w2", 5, "r5")
	// A report without room frees the slot for the next claim.
	wantHandOff(t, s, "w1", 0, []string{"r4"})
	wantClaim(t, s, "w2", 5, "r6")
	wantHolders(t, s, "robot", "r5", "r6")
}

// testSlotHandOffLowered: under a lowered limit the freed slots are not
// handed off until the tag is under its new limit.
func testSlotHandOffLowered(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 3)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("a", 1, "robot"), slotTaskRun("b", 2, "robot"), slotTaskRun("c", 3, "robot"),
		slotTaskRun("d", 4, "robot"), slotTaskRun("e", 5, "robot"),
	}})
	wantClaim(t, s, "w1", 5, "a", "b", "c")
	setLimit(t, s, "robot", 1)
	wantHandOff(t, s, "w1", 5, []string{"a"}) // b and c: 2 of 1
	wantHandOff(t, s, "w1", 5, []string{"b"}) // c: 1 of 1
	wantHolders(t, s, "robot", "c")
	wantHandOff(t, s, "w1", 5, []string{"c"}, "d")
	wantHolders(t, s, "robot", "d")
	// Lowered to 2 with d alone: one free slot, the hand-off's and no more.
	setLimit(t, s, "robot", 2)
	wantHandOff(t, s, "w1", 5, []string{"d"}, "e")
	wantHolders(t, s, "robot", "e")
}

// testSlotHandOffInactive: the waiting task runs of a run that is not
// active (cancelled, or given back to SCHEDULED) are never handed off.
func testSlotHandOffInactive(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r", "gone", "later")
	setLimit(t, s, "robot", 1)
	other := func(id, run string, created int) store.TaskRun {
		tr := slotTaskRun(id, created, "robot")
		tr.RunID = run
		return tr
	}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("a", 1, "robot"), other("g", "gone", 2), other("l", "later", 3), slotTaskRun("b", 4, "robot"),
	}})
	wantClaim(t, s, "w1", 5, "a")
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "gone", From: []store.RunState{store.RunRunning},
		To: store.RunCancelling, Cause: "user", At: at(55)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "later", From: []store.RunState{store.RunRunning},
		To: store.RunScheduled, Cause: "test", At: at(55)}); err != nil {
		t.Fatal(err)
	}
	if got := getTaskRun(t, s, "gone", "k/g", "g"); got.State != store.TaskCancelled {
		t.Fatalf("g of a cancelled run is %s", got.State)
	}
	wantHandOff(t, s, "w1", 5, []string{"a"}, "b")
	if got := getTaskRun(t, s, "later", "k/l", "l"); got.State != store.TaskAwaitingSlot {
		t.Errorf("l of a SCHEDULED run is %s, want AWAITING_SLOT", got.State)
	}
	wantHolders(t, s, "robot", "b")
}

// testSlotHandOffTags: a waiting task run takes freed slots only when each
// of its limited tags has room (the tags of the completed task runs, or a
// slot free anyway), oldest first per tag.
func testSlotHandOffTags(t *testing.T, s store.Store) {
	runningRuns(t, s, "r")
	setLimit(t, s, "a", 1)
	setLimit(t, s, "b", 1)
	setLimit(t, s, "c", 1)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("hab", 0, "a", "b"), slotTaskRun("hc", 1, "c")}})
	wantClaim(t, s, "w1", 1, "hab")
	wantClaim(t, s, "w2", 1, "hc")
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("ac", 2, "a", "c"), slotTaskRun("a1", 3, "a"), slotTaskRun("b1", 4, "b", "free"),
	}})
	// hab frees a and b: ac waits for c and keeps its place in a (a1
	// waits behind it); b1's tags fit what was freed.
	wantHandOff(t, s, "w1", 5, []string{"hab"}, "b1")
	wantHolders(t, s, "a")
	wantHolders(t, s, "b", "b1")
	// hc frees c: ac has a (free) and c (freed).
	wantHandOff(t, s, "w2", 5, []string{"hc"}, "ac")
	wantHolders(t, s, "a", "ac")
	wantHolders(t, s, "c", "ac")
	wantHandOff(t, s, "w2", 5, []string{"ac"}, "a1")
}

// testSlotHandOffConcurrent races workers that report completions and
// claim in one Claim (the hand-off) with workers that complete and claim
// apart, and one that lowers and raises the limit: at no moment do more
// task runs with the tag run than its highest limit allows, every task run
// starts once, and once the limit stays low it is kept.
func testSlotHandOffConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const taskRuns, claimers, limit = 80, 6, 4
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
			var held []store.TaskRun
			for range 4 * taskRuns {
				var cs []store.TaskRunCompletion
				for _, tr := range held {
					cs = append(cs, store.TaskRunCompletion{Ref: refOf(tr), WorkerID: worker, State: store.TaskCompleted,
						Attempts: 1, At: at(600)})
				}
				claim := store.TaskRunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Tasks: []string{"work"}, Limit: 2, LeaseUntil: at(1000), At: at(500)}
				var got []store.TaskRun
				if c%2 == 0 { // the hand-off: completions and claim together
					res, err := s.Claim(ctx, store.ClaimParams{Completions: cs, Tasks: []store.TaskRunClaimParams{claim}})
					if err != nil {
						errs.add(err)
						return
					}
					got = res.TaskRuns[0]
				} else {
					if len(cs) > 0 {
						if _, err := s.TaskRunComplete(ctx, cs); err != nil {
							errs.add(err)
							return
						}
					}
					var err error
					if got, err = s.TaskRunClaim(ctx, claim); err != nil {
						errs.add(err)
						return
					}
				}
				held = got
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
			}
			errs.add(fmt.Errorf("%s still held %d task runs at its last round", worker, len(held)))
		})
	}
	wg.Go(func() { // lowers and raises the limit meanwhile
		for i := range 20 {
			if _, err := s.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: 1 + i%limit, By: "test", At: at(1)}); err != nil {
				errs.add(err)
				return
			}
		}
		if _, err := s.LimitSet(ctx, store.LimitSetParams{Tag: "robot", Max: limit, By: "test", At: at(1)}); err != nil {
			errs.add(err)
		}
	})
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
