package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The conformance tests of work queues' concurrency limits
// (store.WorkQueue.MaxRunning): flow runs and task runs of a limited queue
// are counted apart, each limit bound to its holders' leases.

func setQueueLimit(t *testing.T, s store.Store, queue string, n int) {
	t.Helper()
	if _, err := s.QueueSet(context.Background(), store.QueueSetParams{Name: queue, MaxRunning: &n, At: at(1)}); err != nil {
		t.Fatalf("QueueSet(%s, limit %d): %v", queue, n, err)
	}
}

func testQueueLimitSet(t *testing.T, s store.Store) {
	ctx := context.Background()
	setQueueLimit(t, s, "q", 3)
	qs, err := s.QueueDeclared(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, q := range qs {
		if q.Name == "q" {
			found = q.MaxRunning == 3
		}
	}
	if !found {
		t.Fatalf("QueueDeclared = %+v, want q with limit 3", qs)
	}
	// Other changes keep the limit.
	five := 5
	q, err := s.QueueSet(ctx, store.QueueSetParams{Name: "q", Priority: &five})
	if err != nil || q.MaxRunning != 3 || q.Priority != 5 {
		t.Fatalf("QueueSet priority = %+v, %v; want limit 3 kept", q, err)
	}
	neg := -1
	if _, err := s.QueueSet(ctx, store.QueueSetParams{Name: "q", MaxRunning: &neg}); err == nil ||
		err.Error() != "limit: must be 0 or more, got -1" {
		t.Errorf("a negative limit = %v, want limit: must be 0 or more, got -1", err)
	}
	zero := 0
	if q, err := s.QueueSet(ctx, store.QueueSetParams{Name: "q", MaxRunning: &zero}); err != nil || q.MaxRunning != 0 {
		t.Errorf("QueueSet limit 0 = %+v, %v", q, err)
	}
}

// testQueueLimitTaskRuns checks that a limited queue starts no more task
// runs than its limit, plain and awaiting a slot alike, and that its slots
// come back on completion and when a lease expires.
func testQueueLimitTaskRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r")
	setQueueLimit(t, s, "q", 2)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{
		slotTaskRun("a", 1), slotTaskRun("b", 2), slotTaskRun("c", 3, "robot"), slotTaskRun("d", 4),
	}})
	wantClaim(t, s, "w1", 5, "a", "b")
	wantClaim(t, s, "w2", 5)
	complete(t, s, "w1", "a")
	wantClaim(t, s, "w2", 5, "d") // the plain claim goes first, then the slot claim: nothing left for c
	complete(t, s, "w1", "b")
	wantClaim(t, s, "w2", 5, "c") // a tag without a limit: only the queue's limit holds it
	// The lease of w2 expires: its two slots come back.
	if exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(101), MaxAttempts: 5}); err != nil || exp.TaskRuns != 2 {
		t.Fatalf("LeasesExpire = %+v, %v", exp, err)
	}
	wantClaim(t, s, "w3", 1, "d")
	wantClaim(t, s, "w3", 5, "c")
	wantClaim(t, s, "w3", 5)
	// Raising the limit admits more at once; 0 lifts it.
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("e", 5), slotTaskRun("f", 6), slotTaskRun("g", 7)}})
	setQueueLimit(t, s, "q", 3)
	wantClaim(t, s, "w3", 5, "e")
	setQueueLimit(t, s, "q", 0)
	wantClaim(t, s, "w3", 5, "f", "g")
}

// testQueueLimitRuns checks the limit of a queue's flow runs: held while
// leased to a worker, free when the run ends or its lease expires; in a
// claim of several queues only the limited one is capped.
func testQueueLimitRuns(t *testing.T, s store.Store) {
	ctx := context.Background()
	sched := func(id, queue string, created int) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: queue, State: store.RunScheduled, Attempt: 1,
			Parameters: raw(`{}`), CreatedAt: at(created), UpdatedAt: at(created), ScheduledAt: at(created)}
	}
	write(t, s, store.Batch{Runs: []store.Run{sched("a", "q", 1), sched("b", "q", 2), sched("c", "q", 3),
		sched("x", "other", 4), sched("y", "other", 5)}})
	setQueueLimit(t, s, "q", 1)
	claim := func(worker string, want ...string) {
		t.Helper()
		got, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: worker, Queues: []string{"q", "other"}, Flows: []string{"f"},
			Limit: 5, LeaseUntil: at(100), At: at(50)})
		if err != nil {
			t.Fatalf("RunClaim: %v", err)
		}
		if ids := runIDs(got); fmt.Sprint(sortedIDs(ids)) != fmt.Sprint(sortedIDs(want)) {
			t.Fatalf("claim for %s = %v, want %v", worker, ids, want)
		}
	}
	claim("w1", "a", "x", "y")
	claim("w2")
	// a runs, then completes: its slot is free.
	for _, to := range []store.RunState{store.RunRunning, store.RunCompleted} {
		if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "a", From: []store.RunState{store.RunPending, store.RunRunning}, To: to, Cause: "worker:w1", At: at(60)}); err != nil {
			t.Fatalf("a to %s: %v", to, err)
		}
	}
	claim("w2", "b")
	claim("w3")
	// w2 dies: b's lease expires, b is rescheduled and its slot is free.
	if _, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(101), MaxAttempts: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w3", Queues: []string{"q"}, Flows: []string{"f"},
		Limit: 5, LeaseUntil: at(200), At: at(150)})
	if err != nil || len(got) != 1 {
		t.Fatalf("claim after the lease expired = %v, %v; want one run", runIDs(got), err)
	}
}

// testQueueLimitConcurrent races claimers (through Claim, with task runs
// of which some carry a tag) for a queue of limit 3: at no moment do more
// than 3 of its task runs run, checked against the store after every
// claim.
func testQueueLimitConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const taskRuns, claimers, limit = 60, 6, 3
	runningRuns(t, s, "r")
	setQueueLimit(t, s, "q", limit)
	var b store.Batch
	for i := range taskRuns {
		var tags []string
		if i%3 == 0 {
			tags = []string{"free"}
		}
		b.TaskRuns = append(b.TaskRuns, slotTaskRun(fmt.Sprintf("t%02d", i), i, tags...))
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
			var held []store.TaskRunCompletion
			for range 6 * taskRuns {
				res, err := s.Claim(ctx, store.ClaimParams{Completions: held, Tasks: []store.TaskRunClaimParams{{WorkerID: worker,
					Queues: []string{"q"}, Tasks: []string{"work"}, Limit: 2, LeaseUntil: at(1000), At: at(500)}}})
				if err != nil {
					errs.add(err)
					return
				}
				stats, err := s.QueueList(ctx, at(0))
				if err != nil {
					errs.add(err)
					return
				}
				for _, st := range stats {
					if st.Queue == "q" && st.TasksRunning > limit {
						errs.add(fmt.Errorf("%d task runs of q run, limit %d", st.TasksRunning, limit))
					}
				}
				got := res.TaskRuns[0]
				mu.Lock()
				done := len(claimed) == taskRuns
				for _, tr := range got {
					claimed[tr.ID]++
				}
				mu.Unlock()
				if len(got) == 0 && len(held) == 0 && done {
					return
				}
				held = nil
				for _, tr := range got {
					held = append(held, store.TaskRunCompletion{Ref: refOf(tr), WorkerID: worker, State: store.TaskCompleted,
						Attempts: 1, At: at(600)})
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

// localSlotRun is a local task run (no queue) of run "r" carrying tags,
// RUNNING and held by holder until lease.
func localSlotRun(id, holder string, lease time.Time, tags ...string) store.TaskRun {
	return store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "work", State: store.TaskRunning, FlowAttempt: 1,
		CreatedAt: at(1), StartedAt: at(2), Tags: tags, WorkerID: holder, LeaseUntil: lease}
}

// testSlotAcquireLocal checks that a local task run takes a tag's slot
// only when one is free, that distributed claims count it while its lease
// lasts, and that it is free at the lease's end (its process died) or when
// it ends, without anything taking it back.
func testSlotAcquireLocal(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r")
	setLimit(t, s, "robot", 1)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("a", 1, "robot"), slotTaskRun("b", 2, "robot")}})
	wantClaim(t, s, "w1", 5, "a") // at(50)
	acquire := func(tr store.TaskRun, when int, want bool) {
		t.Helper()
		ok, err := s.SlotAcquire(ctx, store.SlotAcquireParams{TaskRun: tr, At: at(when)})
		if err != nil || ok != want {
			t.Fatalf("SlotAcquire(%s) at %d = %v, %v; want %v", tr.ID, when, ok, err, want)
		}
	}
	far := time.Now().Add(time.Hour) // LimitList reads holders at the present time
	local := localSlotRun("l1", store.LocalHolderPrefix+"host:1", far, "robot")
	acquire(local, 55, false) // a holds the only slot
	if trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "r", Key: "k/l1"}); err != nil || len(trs) != 0 {
		t.Fatalf("a refused acquisition wrote the task run: %v, %v", trs, err)
	}
	complete(t, s, "w1", "a")
	acquire(local, 61, true)
	if got := getTaskRun(t, s, "r", "k/l1", "l1"); got.State != store.TaskRunning || got.WorkerID != local.WorkerID {
		t.Fatalf("after SlotAcquire: %s held by %q", got.State, got.WorkerID)
	}
	wantClaim(t, s, "w1", 5) // the local task run holds the slot
	ls, err := s.LimitList(ctx, []string{"robot"})
	if err != nil || len(ls) != 1 || len(ls[0].Holders) != 1 || ls[0].Holders[0].WorkerID != local.WorkerID {
		t.Fatalf("LimitList = %+v, %v; want l1 holding robot", ls, err)
	}
	// Another local task run waits too.
	acquire(localSlotRun("l2", store.LocalHolderPrefix+"host:2", far, "robot"), 62, false)
	// l1 ends: its slot is free at once.
	done := local
	done.State, done.EndedAt, done.LeaseUntil = store.TaskCompleted, at(63), time.Time{}
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{done}})
	wantClaim(t, s, "w1", 5, "b")
	complete(t, s, "w1", "b")
	// A local holder whose process died (its row stays RUNNING) holds the
	// slot until its lease ends, not longer.
	dead := localSlotRun("l3", store.LocalHolderPrefix+"host:3", at(80), "robot")
	acquire(dead, 70, true)
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{slotTaskRun("c", 3, "robot")}})
	claimAt := func(when int, want ...string) {
		t.Helper()
		got, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w2", Queues: []string{"q"},
			Tasks: []string{"work"}, Limit: 5, LeaseUntil: at(when + 50), At: at(when)})
		if err != nil || fmt.Sprint(sortedIDs(taskRunIDs(got))) != fmt.Sprint(sortedIDs(want)) {
			t.Fatalf("claim at %d = %v, %v; want %v", when, taskRunIDs(got), err, want)
		}
	}
	claimAt(75)
	// Renewed, it holds on.
	if err := s.SlotRenew(ctx, store.SlotRenewParams{Ref: refOf(dead), Holder: dead.WorkerID, Until: at(90)}); err != nil {
		t.Fatal(err)
	}
	claimAt(85)
	claimAt(91, "c")
	// A distributed task run cannot take a local slot.
	bad := localSlotRun("l4", store.LocalHolderPrefix+"h:4", far, "robot")
	bad.Queue = "q"
	if _, err := s.SlotAcquire(ctx, store.SlotAcquireParams{TaskRun: bad}); err == nil {
		t.Errorf("SlotAcquire of a distributed task run succeeded")
	}
}
