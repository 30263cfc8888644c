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
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Tests of the distributed mode: run creation and claims, distributed task
// runs, leases, workers, queue statistics, retention and notifications.

func getRun(t *testing.T, s store.Store, id string) store.Run {
	t.Helper()
	r, err := s.RunGet(context.Background(), id)
	if err != nil {
		t.Fatalf("RunGet %s: %v", id, err)
	}
	return r
}

// getTaskRun returns the task run with the given ref.
func getTaskRun(t *testing.T, s store.Store, runID, key, id string) store.TaskRun {
	t.Helper()
	trs, err := s.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID, Key: key})
	if err != nil {
		t.Fatalf("TaskRunList: %v", err)
	}
	for _, tr := range trs {
		if tr.ID == id {
			return tr
		}
	}
	t.Fatalf("task run %s/%s/%s not found", runID, key, id)
	return store.TaskRun{}
}

func refOf(tr store.TaskRun) store.TaskRunRef {
	return store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}
}

func sortedIDs(ids []string) []string {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	if ids == nil {
		ids = []string{}
	}
	return ids
}

func events(t *testing.T, s store.Store, runID string) []store.Event {
	t.Helper()
	evs, err := s.EventList(context.Background(), runID)
	if err != nil {
		t.Fatalf("EventList %s: %v", runID, err)
	}
	return evs
}

// checkRunEvents compares the run-level events of a run (task-run
// transitions excluded) without their IDs and, when ignoreMessage is set,
// without their messages.
func checkRunEvents(t *testing.T, s store.Store, runID string, ignoreMessage bool, want ...store.Event) {
	t.Helper()
	var got []store.Event
	for _, e := range events(t, s, runID) {
		if e.TaskRunID == "" {
			if ignoreMessage {
				e.Message = ""
			}
			got = append(got, e)
		}
	}
	checkEvents(t, "events of "+runID, got, want)
}

// errorList collects the errors of goroutines without ever blocking them.
type errorList struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

// report reports the first errors (a broken backend may cause hundreds).
func (l *errorList) report(t *testing.T) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, err := range l.errs {
		if i == 20 {
			t.Errorf("... and %d more errors", len(l.errs)-i)
			break
		}
		t.Error(err)
	}
}

func testRunCreate(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := store.Run{ID: "run-a", Flow: "etl", State: store.RunScheduled, Attempt: 1, Parameters: raw(`{"n":1}`),
		Queue: "default", IdempotencyKey: "key-1", CreatedAt: at(1), UpdatedAt: at(1)}
	got, created, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Cause: "user", Message: "created"})
	if err != nil || !created {
		t.Fatalf("RunCreate = created %v, %v; want created", created, err)
	}
	checkRun(t, "returned run", got, r)
	checkRun(t, "stored run", getRun(t, s, r.ID), r)
	checkRunEvents(t, s, r.ID, false,
		store.Event{RunID: r.ID, To: "SCHEDULED", Cause: "user", Message: "created", At: at(1)})

	// The same idempotency key returns the first run and writes nothing.
	dup := r
	dup.ID, dup.Flow, dup.CreatedAt, dup.UpdatedAt = "run-b", "other", at(2), at(2)
	got, created, err = s.RunCreate(ctx, store.RunCreateParams{Run: dup, Cause: "user", Message: "again"})
	if err != nil || created {
		t.Fatalf("RunCreate with a used key = created %v, %v; want the existing run", created, err)
	}
	checkRun(t, "run returned for a used key", got, r)
	if _, err := s.RunGet(ctx, dup.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet of the duplicate: err = %v, want ErrNotFound", err)
	}
	if n := len(events(t, s, r.ID)); n != 1 {
		t.Errorf("%d events after the duplicate create, want 1", n)
	}

	// An existing ID without a matching key conflicts.
	same := store.Run{ID: "run-a", Flow: "x", State: store.RunRunning, CreatedAt: at(3)}
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: same, Cause: "user"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunCreate of an existing ID: err = %v, want ErrConflict", err)
	}
	checkRun(t, "run after the conflicting create", getRun(t, s, r.ID), r)

	// Runs without a key are all created; a zero CreatedAt means now.
	before := time.Now()
	for _, id := range []string{"local-1", "local-2"} {
		lr := store.Run{ID: id, Flow: "etl", State: store.RunRunning, Attempt: 1, OwnerHost: "h", OwnerPID: 1}
		got, created, err := s.RunCreate(ctx, store.RunCreateParams{Run: lr, Cause: "user", Message: "local"})
		if err != nil || !created {
			t.Fatalf("RunCreate %s = created %v, %v", id, created, err)
		}
		if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) ||
			!got.UpdatedAt.Equal(got.CreatedAt) {
			t.Errorf("RunCreate %s: CreatedAt %v UpdatedAt %v, want both about now", id, got.CreatedAt, got.UpdatedAt)
		}
		checkRun(t, "stored "+id, getRun(t, s, id), got)
		evs := events(t, s, id)
		if len(evs) != 1 || !evs[0].At.Equal(got.CreatedAt) || evs[0].To != "RUNNING" {
			t.Errorf("events of %s = %+v, want one creation event at CreatedAt", id, evs)
		}
	}
}

func testRunCreateConcurrentIdempotency(t *testing.T, s store.Store) {
	ctx := context.Background()
	const n = 8
	var wg sync.WaitGroup
	ids := make([]string, n)
	createdBy := make([]bool, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			var r store.Run
			r, createdBy[i], errs[i] = s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{
				ID: fmt.Sprintf("c-%d", i), Flow: "f", State: store.RunScheduled, Attempt: 1, Queue: "q",
				IdempotencyKey: "same-key", CreatedAt: at(i)}, Cause: "user"})
			ids[i] = r.ID
		})
	}
	wg.Wait()
	created := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("RunCreate %d: %v", i, errs[i])
		}
		if createdBy[i] {
			created++
		}
		if ids[i] != ids[0] {
			t.Errorf("RunCreate %d returned run %s, another returned %s", i, ids[i], ids[0])
		}
	}
	if created != 1 {
		t.Errorf("%d concurrent creates with one key created a run, want 1", created)
	}
	runs, err := s.RunList(ctx, store.RunListParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 {
		t.Errorf("%d runs stored, want 1", len(runs))
	}
}

func testRunClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	sched := func(id, flow, queue string, attempt, created int) store.Run {
		return store.Run{ID: id, Flow: flow, Queue: queue, State: store.RunScheduled, Attempt: attempt,
			Parameters: raw(`{}`), CreatedAt: at(created), UpdatedAt: at(created)}
	}
	runs := []store.Run{
		sched("a1", "f1", "q1", 1, 5),
		sched("a2", "f1", "q2", 2, 3),
		sched("a3", "f1", "q1", 1, 1),
		sched("a4", "f2", "q1", 1, 0), // another flow
		sched("a5", "f1", "q3", 1, 0), // another queue
		sched("a7", "f1", "q1", 1, 5), // same time as a1: the ID breaks the tie
		sched("a8", "f1", "", 1, 0),   // no queue
	}
	running := sched("a6", "f1", "q1", 1, 0)
	running.State = store.RunRunning
	runs = append(runs, running)
	write(t, s, store.Batch{Runs: runs})
	byID := map[string]store.Run{}
	for _, r := range runs {
		byID[r.ID] = r
	}

	claim := func(p store.RunClaimParams, want ...string) {
		t.Helper()
		got, err := s.RunClaim(ctx, p)
		if err != nil {
			t.Fatalf("RunClaim(%+v): %v", p, err)
		}
		if g, w := sortedIDs(runIDs(got)), sortedIDs(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("RunClaim(%+v) = %v, want %v", p, g, w)
		}
		for _, g := range got {
			w := byID[g.ID]
			w.State, w.WorkerID, w.LeaseUntil, w.UpdatedAt = store.RunPending, p.WorkerID, p.LeaseUntil, p.At
			checkRun(t, "claimed run", g, w)
			checkRun(t, "stored claimed run", getRun(t, s, g.ID), w)
			checkRunEvents(t, s, g.ID, true, store.Event{RunID: g.ID, From: "SCHEDULED", To: "PENDING",
				Cause: "worker:" + p.WorkerID, At: p.At})
		}
	}
	p := store.RunClaimParams{WorkerID: "w1", Queues: []string{"q1", "q2"}, Flows: []string{"f1", "f3"},
		Limit: 2, LeaseUntil: at(100), At: at(50)}
	claim(p, "a3", "a2")
	p.WorkerID, p.Limit, p.At, p.LeaseUntil = "w2", 1, at(51), at(101)
	claim(p, "a1")
	p.Limit = 10
	claim(p, "a7")
	claim(p)
	claim(store.RunClaimParams{WorkerID: "w3", Queues: []string{"q1"}, Flows: []string{"f2"}, Limit: 0, At: at(52)})
	claim(store.RunClaimParams{WorkerID: "w3", Flows: []string{"f2"}, Limit: 5, At: at(52)})
	claim(store.RunClaimParams{WorkerID: "w3", Queues: []string{"q1"}, Limit: 5, At: at(52)})
	claim(store.RunClaimParams{WorkerID: "w3", Queues: []string{"q1"}, Flows: []string{"f2"}, Limit: 5,
		LeaseUntil: at(102), At: at(52)}, "a4")
	for _, id := range []string{"a5", "a6", "a8"} {
		checkRun(t, "unclaimed run", getRun(t, s, id), byID[id])
	}
}

// testRunClaimConcurrent checks that concurrent claimers never get the same
// run (for PostgreSQL: FOR UPDATE SKIP LOCKED, or an equivalent, is right).
func testRunClaimConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const runs, claimers = 100, 8
	var batch store.Batch
	created := map[string]time.Time{}
	for i := range runs {
		id := fmt.Sprintf("r%03d", i)
		created[id] = at(i / 4) // ties: four runs share each creation time
		batch.Runs = append(batch.Runs, store.Run{ID: id, Flow: "f", Queue: "q", State: store.RunScheduled,
			Attempt: 1, CreatedAt: created[id]})
	}
	write(t, s, batch)

	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string][]string{} // run ID -> claimers
	)
	var errs errorList
	for c := range claimers {
		worker := fmt.Sprintf("w%d", c)
		wg.Go(func() {
			var last time.Time
			for range 2 * runs { // bounded: a broken backend may hand out runs forever
				got, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Flows: []string{"f"}, Limit: 1, LeaseUntil: at(1000), At: at(500)})
				if err != nil {
					errs.add(fmt.Errorf("claimer %s: %w", worker, err))
					return
				}
				if len(got) == 0 {
					return
				}
				if len(got) > 1 {
					errs.add(fmt.Errorf("claimer %s: %d runs with Limit 1", worker, len(got)))
				}
				for _, r := range got {
					if r.State != store.RunPending || r.WorkerID != worker {
						errs.add(fmt.Errorf("claimer %s got run %s %s held by %q", worker, r.ID, r.State, r.WorkerID))
					}
					if c := created[r.ID]; c.Before(last) {
						errs.add(fmt.Errorf("claimer %s got run %s (created %v) after one created %v: not oldest first",
							worker, r.ID, c, last))
					} else {
						last = c
					}
					mu.Lock()
					claimed[r.ID] = append(claimed[r.ID], worker)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	errs.report(t)
	if len(claimed) != runs {
		t.Errorf("%d runs claimed, want %d", len(claimed), runs)
	}
	for id, by := range claimed {
		if len(by) != 1 {
			t.Errorf("run %s claimed %d times, by %v", id, len(by), by)
			continue
		}
		r := getRun(t, s, id)
		if r.State != store.RunPending || r.WorkerID != by[0] {
			t.Errorf("run %s is %s held by %q, want PENDING held by %s", id, r.State, r.WorkerID, by[0])
		}
		if n := len(events(t, s, id)); n != 1 {
			t.Errorf("run %s has %d events, want 1", id, n)
		}
	}
	if got, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "late", Queues: []string{"q"},
		Flows: []string{"f"}, Limit: runs, At: at(501)}); err != nil || len(got) != 0 {
		t.Errorf("claim after all were claimed = %v, %v; want none", runIDs(got), err)
	}
}

// runningRuns writes RUNNING runs with the given IDs: only task runs of
// RUNNING runs can be claimed.
func runningRuns(t *testing.T, s store.Store, ids ...string) {
	t.Helper()
	var b store.Batch
	for _, id := range ids {
		b.Runs = append(b.Runs, store.Run{ID: id, Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(0)})
	}
	write(t, s, b)
}

func testTaskRunClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	runningRuns(t, s, "r1", "r2")
	tr := func(id, runID, key, task, queue string, state store.TaskState, created int) store.TaskRun {
		return store.TaskRun{ID: id, RunID: runID, Key: key, Task: task, Queue: queue, State: state,
			FlowAttempt: 1, Input: raw(`{"x":1}`), InputHash: "h-" + id, CreatedAt: at(created)}
	}
	t2 := tr("t2", "r1", "k2", "task2", "q1", store.TaskPending, 3)
	t2.StartedAt = at(1)
	t2.History = []store.Transition{{At: at(3), To: "PENDING", Cause: "engine", Message: "queued on q1"}}
	t2.Input, t2.InputRef = raw(`{"parts_at":[2],"value":{"x":1,"data":null}}`), "sha256:parts" // claimed with its reference
	trs := []store.TaskRun{
		tr("t1", "r1", "k1", "task1", "q1", store.TaskPending, 5),
		t2,
		tr("t3", "r2", "k1", "task1", "q2", store.TaskPending, 1),
		tr("t4", "r1", "k3", "task3", "q1", store.TaskPending, 0), // task not served
		tr("t5", "r1", "k4", "task1", "q1", store.TaskRunning, 0), // not pending
		tr("t6", "r1", "k5", "task1", "", store.TaskPending, 0),   // local
		tr("t7", "r1", "k6", "task1", "q3", store.TaskPending, 0), // queue not served
	}
	write(t, s, store.Batch{TaskRuns: trs})
	byID := map[string]store.TaskRun{}
	for _, x := range trs {
		byID[x.ID] = x
	}
	claim := func(p store.TaskRunClaimParams, want ...string) {
		t.Helper()
		got, err := s.TaskRunClaim(ctx, p)
		if err != nil {
			t.Fatalf("TaskRunClaim(%+v): %v", p, err)
		}
		if g, w := sortedIDs(taskRunIDs(got)), sortedIDs(want); !reflect.DeepEqual(g, w) {
			t.Fatalf("TaskRunClaim(%+v) = %v, want %v", p, g, w)
		}
		for _, g := range got {
			w := byID[g.ID]
			w.State, w.WorkerID, w.LeaseUntil = store.TaskRunning, p.WorkerID, p.LeaseUntil
			if w.StartedAt.IsZero() {
				w.StartedAt = p.At
			}
			stored := getTaskRun(t, s, g.RunID, g.Key, g.ID)
			if n := len(stored.History); n == 0 {
				t.Errorf("claimed task run %s: no history", g.ID)
			} else {
				h := stored.History[n-1]
				if !h.At.Equal(p.At) || h.From != "PENDING" || h.To != "RUNNING" || h.Cause != "worker:"+p.WorkerID {
					t.Errorf("claimed task run %s: last transition %+v, want PENDING -> RUNNING by worker:%s at %v",
						g.ID, h, p.WorkerID, p.At)
				}
				w.History = append(slices.Clone(w.History), store.Transition{At: p.At, From: "PENDING",
					To: "RUNNING", Cause: "worker:" + p.WorkerID, Message: h.Message})
			}
			checkTaskRun(t, "stored claimed task run", stored, w)
			w.History = nil // a claim returns task runs without their history
			checkTaskRun(t, "claimed task run", g, w)
		}
	}
	p := store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q1", "q2"}, Tasks: []string{"task1", "task2"},
		Limit: 2, LeaseUntil: at(100), At: at(50)}
	claim(p, "t3", "t2")
	p.WorkerID, p.Limit = "w2", 5
	claim(p, "t1")
	claim(p)
	claim(store.TaskRunClaimParams{WorkerID: "w3", Queues: []string{"q1"}, Tasks: []string{"task3"}, At: at(50)})
	claim(store.TaskRunClaimParams{WorkerID: "w3", Queues: []string{"q1"}, Limit: 3, At: at(50)})
	claim(store.TaskRunClaimParams{WorkerID: "w3", Tasks: []string{"task3"}, Limit: 3, At: at(50)})
	for _, id := range []string{"t4", "t5", "t6", "t7"} {
		x := byID[id]
		checkTaskRun(t, "unclaimed task run", getTaskRun(t, s, x.RunID, x.Key, id), x)
	}
	// The claim's transition is part of the run's history.
	var found bool
	for _, e := range events(t, s, "r2") {
		if e.TaskRunID == "t3" && e.From == "PENDING" && e.To == "RUNNING" && e.Cause == "worker:w1" {
			found = true
		}
	}
	if !found {
		t.Errorf("EventList of r2 lacks the claim of t3")
	}
}

func testTaskRunClaimConcurrent(t *testing.T, s store.Store) {
	ctx := context.Background()
	const taskRuns, claimers = 100, 8
	var batch store.Batch
	for i := range taskRuns {
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: fmt.Sprintf("t%03d", i),
			RunID: fmt.Sprintf("run-%d", i%4), Key: fmt.Sprintf("k/%d", i), Task: "work", Queue: "q",
			State: store.TaskPending, CreatedAt: at(i / 3)})
	}
	runningRuns(t, s, "run-0", "run-1", "run-2", "run-3")
	write(t, s, batch)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed = map[string][]string{}
		refs    = map[string]store.TaskRun{}
	)
	var errs errorList
	for c := range claimers {
		worker := fmt.Sprintf("w%d", c)
		limit := 1 + c%3
		wg.Go(func() {
			for range 2 * taskRuns { // bounded: a broken backend may hand out task runs forever
				got, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Tasks: []string{"work"}, Limit: limit, LeaseUntil: at(1000), At: at(500)})
				if err != nil {
					errs.add(fmt.Errorf("claimer %s: %w", worker, err))
					return
				}
				if len(got) == 0 {
					return
				}
				if len(got) > limit {
					errs.add(fmt.Errorf("claimer %s: %d task runs with Limit %d", worker, len(got), limit))
				}
				mu.Lock()
				for _, tr := range got {
					claimed[tr.ID] = append(claimed[tr.ID], worker)
					refs[tr.ID] = tr
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	errs.report(t)
	if len(claimed) != taskRuns {
		t.Errorf("%d task runs claimed, want %d", len(claimed), taskRuns)
	}
	for id, by := range claimed {
		if len(by) != 1 {
			t.Errorf("task run %s claimed %d times, by %v", id, len(by), by)
			continue
		}
		tr := refs[id]
		got := getTaskRun(t, s, tr.RunID, tr.Key, id)
		if got.State != store.TaskRunning || got.WorkerID != by[0] || len(got.History) != 1 {
			t.Errorf("task run %s is %s held by %q with %d transitions, want RUNNING held by %s with 1",
				id, got.State, got.WorkerID, len(got.History), by[0])
		}
	}
}

func testTaskRunComplete(t *testing.T, s store.Store) {
	ctx := context.Background()
	var batch store.Batch
	for i, id := range []string{"a", "b", "c", "d", "e"} {
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: id, RunID: "run", Key: "k/" + id, Task: "work",
			Queue: "q", State: store.TaskPending, FlowAttempt: 1, CreatedAt: at(i)})
	}
	runningRuns(t, s, "run")
	write(t, s, batch)
	claimed, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"},
		Tasks: []string{"work"}, Limit: 4, LeaseUntil: at(100), At: at(50)})
	if err != nil || len(claimed) != 4 {
		t.Fatalf("TaskRunClaim = %v, %v; want 4 task runs", taskRunIDs(claimed), err)
	}
	before := map[string]store.TaskRun{}
	for _, id := range []string{"a", "b", "c", "d", "e"} {
		before[id] = getTaskRun(t, s, "run", "k/"+id, id)
	}
	ref := func(id string) store.TaskRunRef { return store.TaskRunRef{RunID: "run", Key: "k/" + id, ID: id} }
	hist := []store.Transition{
		{At: at(60), From: "RUNNING", To: "AWAITING_RETRY", Cause: "policy", Message: "attempt 1 failed"},
		{At: at(61), From: "AWAITING_RETRY", To: "RUNNING", Cause: "worker:w1", Message: "attempt 2"},
		{At: at(62), From: "RUNNING", To: "COMPLETED", Cause: "worker:w1"},
	}
	cacheA := store.CacheEntry{Key: "ck-a", Task: "work", ResultRef: "ref-a",
		RunID: "run", TaskRunID: "a", CreatedAt: at(62)}
	cacheB := store.CacheEntry{Key: "ck-b", Task: "work", Result: raw(`2`), RunID: "run", TaskRunID: "b",
		CreatedAt: at(62)}
	errC := &store.ErrorInfo{Message: "bad input", Kind: "permanent"}
	applied, err := s.TaskRunComplete(ctx, []store.TaskRunCompletion{
		{Ref: ref("a"), WorkerID: "w1", State: store.TaskCompleted, Attempts: 2,
			ResultRef: "ref-a", History: hist, Cache: &cacheA, At: at(62)},
		{Ref: ref("b"), WorkerID: "w2", State: store.TaskCompleted, Attempts: 1, Result: raw(`2`),
			Cache: &cacheB, At: at(62)}, // not the holder
		{Ref: ref("e"), WorkerID: "w1", State: store.TaskCompleted, Attempts: 1, At: at(62)}, // not claimed
		{Ref: store.TaskRunRef{RunID: "run", Key: "k/x", ID: "x"}, WorkerID: "w1", State: store.TaskCompleted,
			At: at(62)}, // unknown
		{Ref: ref("c"), WorkerID: "w1", State: store.TaskFailed, Attempts: 1, Error: errC, At: at(63)},
	})
	if err != nil {
		t.Fatalf("TaskRunComplete: %v", err)
	}
	got := make([]string, len(applied))
	for i, r := range applied {
		got[i] = r.ID
	}
	if g := sortedIDs(got); !reflect.DeepEqual(g, []string{"a", "c"}) {
		t.Errorf("TaskRunComplete applied %v, want [a c]", g)
	}

	wantA := before["a"]
	wantA.State, wantA.Attempts, wantA.Result, wantA.ResultRef = store.TaskCompleted, 2, nil, "ref-a"
	wantA.EndedAt, wantA.LeaseUntil = at(62), time.Time{}
	wantA.History = append(slices.Clone(wantA.History), hist...)
	checkTaskRun(t, "completed task run", getTaskRun(t, s, "run", "k/a", "a"), wantA)

	// Without a final transition in History the store records one.
	wantC := before["c"]
	wantC.State, wantC.Attempts, wantC.Error = store.TaskFailed, 1, errC
	wantC.EndedAt, wantC.LeaseUntil = at(63), time.Time{}
	gotC := getTaskRun(t, s, "run", "k/c", "c")
	if n := len(gotC.History); n != len(wantC.History)+1 {
		t.Errorf("failed task run: %d transitions, want %d", n, len(wantC.History)+1)
	} else {
		h := gotC.History[n-1]
		if !h.At.Equal(at(63)) || h.From != "RUNNING" || h.To != "FAILED" || h.Cause != "worker:w1" {
			t.Errorf("failed task run: last transition %+v, want RUNNING -> FAILED by worker:w1", h)
		}
		wantC.History = append(slices.Clone(wantC.History), h)
	}
	checkTaskRun(t, "failed task run", gotC, wantC)

	for _, id := range []string{"b", "d", "e"} {
		checkTaskRun(t, "task run without an applied completion", getTaskRun(t, s, "run", "k/"+id, id), before[id])
	}
	if c, err := s.CacheGet(ctx, "ck-a", at(70)); err != nil {
		t.Errorf("CacheGet of the completion's entry: %v", err)
	} else if !reflect.DeepEqual(normCache(c), normCache(cacheA)) {
		t.Errorf("CacheGet:\n got  %s\n want %s", show(c), show(cacheA))
	}
	if _, err := s.CacheGet(ctx, "ck-b", at(70)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cache entry of a completion that did not apply: err = %v, want ErrNotFound", err)
	}

	// A second completion of a finished task run does not apply.
	applied, err = s.TaskRunComplete(ctx, []store.TaskRunCompletion{{Ref: ref("a"), WorkerID: "w1",
		State: store.TaskFailed, At: at(64)}})
	if err != nil || len(applied) != 0 {
		t.Errorf("second completion = %v, %v; want none applied", applied, err)
	}
	checkTaskRun(t, "task run after a second completion", getTaskRun(t, s, "run", "k/a", "a"), wantA)
}

func testTaskRunFinished(t *testing.T, s store.Store) {
	ctx := context.Background()
	states := []store.TaskState{store.TaskCompleted, store.TaskFailed, store.TaskTimedOut, store.TaskCached,
		store.TaskCancelled, store.TaskCrashed, store.TaskPending, store.TaskRunning, store.TaskAwaitingRetry}
	final := map[store.TaskState]bool{store.TaskCompleted: true, store.TaskFailed: true, store.TaskTimedOut: true,
		store.TaskCached: true, store.TaskCancelled: true, store.TaskCrashed: true}
	var (
		batch store.Batch
		refs  []store.TaskRunRef
		want  = map[string]store.TaskRun{}
	)
	// Enough refs to need several statements in backends that chunk them.
	for i := range 720 {
		st := states[i%len(states)]
		tr := store.TaskRun{ID: fmt.Sprintf("t%03d", i), RunID: fmt.Sprintf("run-%d", i%3),
			Key: fmt.Sprintf("k/%d", i), Task: "work", Queue: "q", State: st, Attempts: 1,
			Result: raw(`1`), CreatedAt: at(i)}
		batch.TaskRuns = append(batch.TaskRuns, tr)
		refs = append(refs, refOf(tr))
		if final[st] {
			want[tr.ID] = tr
		}
	}
	write(t, s, batch)
	refs = append(refs, store.TaskRunRef{RunID: "run-0", Key: "k/0", ID: "unknown"},
		store.TaskRunRef{RunID: "nope", Key: "k/1", ID: "t001"})
	got, err := s.TaskRunFinished(ctx, refs)
	if err != nil {
		t.Fatalf("TaskRunFinished: %v", err)
	}
	if len(got) != len(want) {
		t.Errorf("TaskRunFinished: %d task runs, want %d", len(got), len(want))
	}
	seen := map[string]bool{}
	for _, g := range got {
		w, ok := want[g.ID]
		if !ok || seen[g.ID] {
			t.Errorf("TaskRunFinished returned %s (%s) unexpectedly or twice", g.ID, g.State)
			continue
		}
		seen[g.ID] = true
		// Only the outcome is part of the contract.
		if g.RunID != w.RunID || g.Key != w.Key || g.Task != w.Task || g.State != w.State || g.Attempts != w.Attempts ||
			string(g.Result) != string(w.Result) || g.ResultRef != w.ResultRef || !reflect.DeepEqual(g.Error, w.Error) {
			t.Errorf("finished task run %s:\n got  %s\n want %s", g.ID, show(g), show(w))
		}
	}
	if got, err := s.TaskRunFinished(ctx, nil); err != nil || len(got) != 0 {
		t.Errorf("TaskRunFinished(nil) = %v, %v", got, err)
	}
}

func testLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := func(id string, state store.RunState, worker string, lease, attempt int) store.Run {
		r := store.Run{ID: id, Flow: "f", Queue: "q", State: state, Attempt: attempt, Parameters: raw(`{}`),
			CreatedAt: at(0), UpdatedAt: at(1), StartedAt: at(1), WorkerID: worker,
			OwnerHost: "host-" + worker, OwnerPID: 10, OwnerStart: 20}
		if lease > 0 {
			r.LeaseUntil = at(lease)
		}
		if state == store.RunPending {
			r.StartedAt = time.Time{}
		}
		return r
	}
	runs := []store.Run{
		run("A", store.RunPending, "w1", 10, 1),
		run("B", store.RunRunning, "w1", 10, 2),
		run("C", store.RunCancelling, "w1", 10, 1),
		run("D", store.RunRunning, "w2", 10, 3),
		run("E", store.RunRunning, "w3", 15, 1), // extended below
		run("F", store.RunRunning, "", 0, 1),    // local: no lease
		run("G", store.RunRunning, "w4", 20, 1), // expires at At: not before it
		run("H", store.RunCompleted, "w1", 0, 1),
		run("I", store.RunScheduled, "", 0, 1),
	}
	runs[7].EndedAt = at(5)
	taskRun := func(id, queue string, state store.TaskState, worker string, lease int) store.TaskRun {
		tr := store.TaskRun{ID: id, RunID: "B", Key: "k/" + id, Task: "work", Queue: queue, State: state,
			WorkerID: worker, CreatedAt: at(0), StartedAt: at(2),
			History: []store.Transition{{At: at(2), From: "PENDING", To: "RUNNING", Cause: "worker:" + worker}}}
		if lease > 0 {
			tr.LeaseUntil = at(lease)
		}
		return tr
	}
	trs := []store.TaskRun{
		taskRun("T1", "q", store.TaskRunning, "w1", 10),
		taskRun("T2", "q", store.TaskRunning, "w3", 15),
		taskRun("T3", "", store.TaskRunning, "", 0),
		taskRun("T4", "q", store.TaskPending, "", 0),
	}
	write(t, s, store.Batch{Runs: runs, TaskRuns: trs})
	if err := s.WorkerUpsert(ctx, store.Worker{ID: "w3", Name: "three", StartedAt: at(0), LastSeen: at(0)}); err != nil {
		t.Fatalf("WorkerUpsert: %v", err)
	}
	wantRuns := map[string]store.Run{}
	for _, r := range runs {
		wantRuns[r.ID] = r
	}
	wantTRs := map[string]store.TaskRun{}
	for _, tr := range trs {
		wantTRs[tr.ID] = tr
	}

	// Extending: the leases of w3 move to at(200); unknown workers are fine;
	// an earlier time never shortens a lease. The workers are recorded seen
	// at the time the caller gives (its clock's), not the store's now.
	if err := s.LeasesExtend(ctx, store.LeasesExtendParams{WorkerIDs: []string{"w3", "w-unknown"}, Until: at(200), At: at(100)}); err != nil {
		t.Fatalf("LeasesExtend: %v", err)
	}
	if err := s.LeasesExtend(ctx, store.LeasesExtendParams{WorkerIDs: []string{"w3"}, Until: at(150), At: at(90)}); err != nil {
		t.Fatalf("LeasesExtend: %v", err)
	}
	if err := s.LeasesExtend(ctx, store.LeasesExtendParams{Until: at(150), At: at(150)}); err != nil {
		t.Fatalf("LeasesExtend(nil): %v", err)
	}
	e := wantRuns["E"]
	e.LeaseUntil = at(200)
	wantRuns["E"] = e
	t2 := wantTRs["T2"]
	t2.LeaseUntil = at(200)
	wantTRs["T2"] = t2
	checkRun(t, "extended run", getRun(t, s, "E"), wantRuns["E"])
	checkTaskRun(t, "extended task run", getTaskRun(t, s, "B", "k/T2", "T2"), wantTRs["T2"])
	ws, err := s.WorkerList(ctx, at(100))
	if err != nil || len(ws) != 1 || ws[0].ID != "w3" || !ws[0].LastSeen.Equal(at(100)) {
		t.Fatalf("WorkerList(at(100)) after LeasesExtend = %+v, %v; want w3 seen at %v (a later extension seen earlier does not move it back)", ws, err, at(100))
	}

	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), MaxAttempts: 3})
	if err != nil {
		t.Fatalf("LeasesExpire: %v", err)
	}
	if g := sortedIDs(runIDs(exp.Crashed)); !reflect.DeepEqual(g, []string{"A", "B", "C", "D"}) {
		t.Errorf("LeasesExpire crashed %v, want [A B C D]", g)
	}
	if exp.Rescheduled != 2 || exp.TaskRuns != 1 {
		t.Errorf("LeasesExpire: Rescheduled %d TaskRuns %d, want 2 and 1", exp.Rescheduled, exp.TaskRuns)
	}
	for _, r := range exp.Crashed {
		checkRun(t, "run reported by LeasesExpire", r, getRun(t, s, r.ID))
	}

	// A and B: crashed, then rescheduled with the next attempt, no owner.
	for _, id := range []string{"A", "B"} {
		got := getRun(t, s, id)
		w := wantRuns[id]
		from := string(w.State)
		w.State, w.Attempt, w.UpdatedAt = store.RunScheduled, w.Attempt+1, at(20)
		w.WorkerID, w.LeaseUntil, w.OwnerHost, w.OwnerPID, w.OwnerStart = "", time.Time{}, "", 0, 0
		if got.Error == nil || got.Error.Kind != "crashed" || !strings.Contains(got.Error.Message, "w1") {
			t.Errorf("run %s: Error %+v, want kind crashed naming worker w1", id, got.Error)
		}
		w.Error = got.Error
		checkRun(t, "rescheduled run", got, w)
		checkRunEvents(t, s, id, true,
			store.Event{RunID: id, From: from, To: "CRASHED", Cause: "lease", At: at(20)},
			store.Event{RunID: id, From: "CRASHED", To: "AWAITING_RETRY", Cause: "policy", At: at(20)},
			store.Event{RunID: id, From: "AWAITING_RETRY", To: "SCHEDULED", Cause: "policy", At: at(20)})
	}
	// C: CANCELLING becomes CANCELLED.
	gotC := getRun(t, s, "C")
	wantC := wantRuns["C"]
	wantC.State, wantC.EndedAt, wantC.LeaseUntil, wantC.UpdatedAt, wantC.Error = store.RunCancelled, at(20), time.Time{}, at(20), gotC.Error
	checkRun(t, "cancelled run", gotC, wantC)
	checkRunEvents(t, s, "C", true, store.Event{RunID: "C", From: "CANCELLING", To: "CANCELLED", Cause: "lease", At: at(20)})
	// D: at MaxAttempts, it stays CRASHED.
	gotD := getRun(t, s, "D")
	wantD := wantRuns["D"]
	wantD.State, wantD.EndedAt, wantD.LeaseUntil, wantD.UpdatedAt = store.RunCrashed, at(20), time.Time{}, at(20)
	if gotD.Error == nil || gotD.Error.Kind != "crashed" || !strings.Contains(gotD.Error.Message, "w2") {
		t.Errorf("run D: Error %+v, want kind crashed naming worker w2", gotD.Error)
	}
	wantD.Error = gotD.Error
	checkRun(t, "crashed run", gotD, wantD)
	checkRunEvents(t, s, "D", true, store.Event{RunID: "D", From: "RUNNING", To: "CRASHED", Cause: "lease", At: at(20)})
	for _, id := range []string{"E", "F", "G", "H", "I"} {
		checkRun(t, "run without an expired lease", getRun(t, s, id), wantRuns[id])
	}

	// T1 goes back to PENDING without a worker.
	gotT1 := getTaskRun(t, s, "B", "k/T1", "T1")
	wantT1 := wantTRs["T1"]
	wantT1.State, wantT1.WorkerID, wantT1.LeaseUntil = store.TaskPending, "", time.Time{}
	if n := len(gotT1.History); n != 2 {
		t.Errorf("task run T1: %d transitions, want 2", n)
	} else {
		h := gotT1.History[1]
		if !h.At.Equal(at(20)) || h.From != "RUNNING" || h.To != "PENDING" || h.Cause != "lease" {
			t.Errorf("task run T1: transition %+v, want RUNNING -> PENDING by lease at %v", h, at(20))
		}
		wantT1.History = append(slices.Clone(wantT1.History), h)
	}
	checkTaskRun(t, "expired task run", gotT1, wantT1)
	for _, id := range []string{"T2", "T3", "T4"} {
		checkTaskRun(t, "task run without an expired lease", getTaskRun(t, s, "B", "k/"+id, id), wantTRs[id])
	}

	// Nothing more expires at the same time.
	exp, err = s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), MaxAttempts: 3})
	if err != nil || len(exp.Crashed) != 0 || exp.Rescheduled != 0 || exp.TaskRuns != 0 {
		t.Errorf("second LeasesExpire = %+v, %v; want nothing", exp, err)
	}
	// Later, with MaxAttempts 0, E and G crash without a retry and T2 is
	// taken back.
	exp, err = s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(300)})
	if err != nil {
		t.Fatalf("LeasesExpire: %v", err)
	}
	if g := sortedIDs(runIDs(exp.Crashed)); !reflect.DeepEqual(g, []string{"E", "G"}) || exp.Rescheduled != 0 ||
		exp.TaskRuns != 1 {
		t.Errorf("LeasesExpire at 300 = crashed %v rescheduled %d task runs %d; want [E G], 0, 1",
			g, exp.Rescheduled, exp.TaskRuns)
	}
	for _, id := range []string{"E", "G"} {
		if r := getRun(t, s, id); r.State != store.RunCrashed || r.Attempt != 1 {
			t.Errorf("run %s: %s attempt %d, want CRASHED attempt 1", id, r.State, r.Attempt)
		}
	}
	checkRun(t, "local run", getRun(t, s, "F"), wantRuns["F"])
	if tr := getTaskRun(t, s, "B", "k/T3", "T3"); tr.State != store.TaskRunning {
		t.Errorf("local task run is %s, want RUNNING", tr.State)
	}
}

func normWorker(w store.Worker) store.Worker {
	w.StartedAt, w.LastSeen = w.StartedAt.UTC(), w.LastSeen.UTC()
	return w
}

func checkWorkers(t *testing.T, s store.Store, since time.Time, want ...store.Worker) {
	t.Helper()
	got, err := s.WorkerList(context.Background(), since)
	if err != nil {
		t.Fatalf("WorkerList: %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("WorkerList(%v): %d workers, want %d: %+v", since, len(got), len(want), got)
	}
	for i := range want {
		if g, w := normWorker(got[i]), normWorker(want[i]); !reflect.DeepEqual(g, w) {
			t.Errorf("WorkerList(%v)[%d]:\n got  %+v\n want %+v", since, i, g, w)
		}
	}
}

func testWorkers(t *testing.T, s store.Store) {
	ctx := context.Background()
	w1 := store.Worker{ID: "w1", Name: "alpha", Host: "h1", PID: 11, Queues: []string{"q1", "q2"},
		Flows: []string{"f1"}, Tasks: []string{"t1", "t2"}, Capacity: 4, Slots: map[string]int{"q1": 2, "q2": 8},
		StartedAt: at(1), LastSeen: at(10)}
	w0 := store.Worker{ID: "w0", Name: "beta", Host: "h2", PID: 12, StartedAt: at(2), LastSeen: at(20)}
	for _, w := range []store.Worker{w1, w0} {
		if err := s.WorkerUpsert(ctx, w); err != nil {
			t.Fatalf("WorkerUpsert: %v", err)
		}
	}
	checkWorkers(t, s, at(0), w0, w1)
	checkWorkers(t, s, at(15), w0)
	checkWorkers(t, s, at(20), w0) // seen at the bound
	checkWorkers(t, s, at(21))

	w1b := store.Worker{ID: "w1", Name: "alpha2", Host: "h1", PID: 13, Queues: []string{"q3"}, Capacity: 1,
		StartedAt: at(25), LastSeen: at(30)}
	if err := s.WorkerUpsert(ctx, w1b); err != nil {
		t.Fatalf("WorkerUpsert: %v", err)
	}
	checkWorkers(t, s, at(0), w0, w1b)

	before := time.Now()
	if err := s.WorkerUpsert(ctx, store.Worker{ID: "w2", StartedAt: at(3)}); err != nil {
		t.Fatalf("WorkerUpsert: %v", err)
	}
	ws, err := s.WorkerList(ctx, before.Add(-time.Second))
	if err != nil || len(ws) != 1 || ws[0].ID != "w2" || ws[0].LastSeen.After(time.Now().Add(time.Second)) {
		t.Errorf("WorkerList after an upsert without LastSeen = %+v, %v; want w2 seen now", ws, err)
	}

	if err := s.WorkerRelease(ctx, "w0"); err != nil {
		t.Fatalf("WorkerRelease: %v", err)
	}
	ws, err = s.WorkerList(ctx, at(0))
	if err != nil || len(ws) != 2 || ws[0].ID != "w1" || ws[1].ID != "w2" {
		t.Errorf("WorkerList after WorkerRelease = %+v, %v; want w1 and w2", ws, err)
	}
}

func testWorkerRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, id := range []string{"w1", "w2"} {
		if err := s.WorkerUpsert(ctx, store.Worker{ID: id, Queues: []string{"q"}, StartedAt: at(0), LastSeen: at(1)}); err != nil {
			t.Fatalf("WorkerUpsert: %v", err)
		}
	}
	run := func(id string, state store.RunState, worker string, attempt int) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: "q", State: state, Attempt: attempt, CreatedAt: at(0),
			UpdatedAt: at(1), WorkerID: worker, LeaseUntil: at(100), OwnerHost: "h", OwnerPID: 1}
	}
	done := run("E", store.RunCompleted, "w1", 1)
	done.LeaseUntil, done.EndedAt = time.Time{}, at(5)
	runs := []store.Run{run("A", store.RunPending, "w1", 1), run("B", store.RunRunning, "w1", 2),
		run("C", store.RunCancelling, "w1", 1), run("D", store.RunRunning, "w2", 1), done}
	taskRun := func(id string, state store.TaskState, worker string) store.TaskRun {
		return store.TaskRun{ID: id, RunID: "B", Key: "k/" + id, Task: "work", Queue: "q", State: state,
			WorkerID: worker, LeaseUntil: at(100), CreatedAt: at(0), StartedAt: at(2)}
	}
	trs := []store.TaskRun{taskRun("T1", store.TaskRunning, "w1"), taskRun("T2", store.TaskRunning, "w2"),
		taskRun("T3", store.TaskCompleted, "w1")}
	write(t, s, store.Batch{Runs: runs, TaskRuns: trs})

	if err := s.WorkerRelease(ctx, "w1"); err != nil {
		t.Fatalf("WorkerRelease: %v", err)
	}
	ws, err := s.WorkerList(ctx, at(0))
	if err != nil || len(ws) != 1 || ws[0].ID != "w2" {
		t.Errorf("WorkerList after WorkerRelease = %+v, %v; want only w2", ws, err)
	}
	for i, id := range []string{"A", "B"} {
		r := getRun(t, s, id)
		if r.State != store.RunScheduled || r.Attempt != runs[i].Attempt+1 || r.WorkerID != "" ||
			!r.LeaseUntil.IsZero() || r.OwnerHost != "" || r.OwnerPID != 0 {
			t.Errorf("released run %s = %s, want SCHEDULED at attempt %d without worker, lease or owner",
				id, show(r), runs[i].Attempt+1)
		}
		var evs []store.Event
		for _, e := range events(t, s, id) {
			if e.TaskRunID == "" {
				evs = append(evs, e)
			}
		}
		if len(evs) != 1 || evs[0].From != string(runs[i].State) || evs[0].To != "SCHEDULED" ||
			evs[0].Cause != "worker:w1" || !strings.Contains(evs[0].Message, "worker stopped") {
			t.Errorf("events of released run %s = %+v, want one to SCHEDULED by worker:w1, \"worker stopped\"", id, evs)
		}
	}
	if r := getRun(t, s, "C"); r.State != store.RunCancelled || r.EndedAt.IsZero() || !r.LeaseUntil.IsZero() {
		t.Errorf("released cancelling run = %s, want CANCELLED with EndedAt and no lease", show(r))
	}
	checkRun(t, "run of another worker", getRun(t, s, "D"), runs[3])
	checkRun(t, "finished run", getRun(t, s, "E"), runs[4])
	t1 := getTaskRun(t, s, "B", "k/T1", "T1")
	if t1.State != store.TaskPending || t1.WorkerID != "" || !t1.LeaseUntil.IsZero() || len(t1.History) != 1 ||
		t1.History[0].From != "RUNNING" || t1.History[0].To != "PENDING" || t1.History[0].Cause != "worker:w1" {
		t.Errorf("released task run = %s %+v, want PENDING without worker, with a transition by worker:w1",
			show(t1), t1.History)
	}
	checkTaskRun(t, "task run of another worker", getTaskRun(t, s, "B", "k/T2", "T2"), trs[1])
	checkTaskRun(t, "finished task run", getTaskRun(t, s, "B", "k/T3", "T3"), trs[2])

	if err := s.WorkerRelease(ctx, "w1"); err != nil {
		t.Errorf("second WorkerRelease: %v", err)
	}
	if err := s.WorkerRelease(ctx, "nobody"); err != nil {
		t.Errorf("WorkerRelease of an unknown worker: %v", err)
	}
}

func testQueueList(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := func(id, queue string, state store.RunState, created int) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: queue, State: state, CreatedAt: at(created)}
	}
	taskRun := func(id, queue string, state store.TaskState) store.TaskRun {
		return store.TaskRun{ID: id, RunID: "r", Key: "k/" + id, Task: "t", Queue: queue, State: state, CreatedAt: at(0)}
	}
	write(t, s, store.Batch{
		Runs: []store.Run{
			run("a", "q1", store.RunScheduled, 5), run("b", "q1", store.RunScheduled, 3),
			run("c", "q1", store.RunRunning, 1), run("d", "q1", store.RunCompleted, 0),
			run("e", "q2", store.RunPending, 1), run("f", "q2", store.RunCancelling, 1),
			run("g", "q3", store.RunCompleted, 1), run("h", "q3", store.RunFailed, 1),
			run("i", "", store.RunRunning, 1), run("j", "", store.RunScheduled, 1),
		},
		TaskRuns: []store.TaskRun{
			taskRun("t1", "q1", store.TaskPending), taskRun("t2", "q1", store.TaskPending),
			taskRun("t3", "q1", store.TaskRunning), taskRun("t4", "q1", store.TaskCompleted),
			taskRun("t5", "q5", store.TaskRunning), taskRun("t6", "", store.TaskPending),
			taskRun("t7", "q8", store.TaskFailed),
		},
	})
	now := at(1000) // the caller's clock: the store reads none
	for _, w := range []store.Worker{
		{ID: "live", Queues: []string{"q1", "q6"}, StartedAt: now, LastSeen: now},
		{ID: "stale", Queues: []string{"q7"}, StartedAt: now.Add(-2 * time.Hour), LastSeen: now.Add(-2 * time.Hour)},
	} {
		if err := s.WorkerUpsert(ctx, w); err != nil {
			t.Fatalf("WorkerUpsert: %v", err)
		}
	}
	got, err := s.QueueList(ctx, now.Add(-store.LiveWorkerWindow))
	if err != nil {
		t.Fatalf("QueueList: %v", err)
	}
	want := []store.QueueStats{
		{Queue: "q1", RunsScheduled: 2, RunsRunning: 1, TasksPending: 2, TasksRunning: 1, OldestWaiting: at(3)},
		{Queue: "q2", RunsRunning: 2},
		{Queue: "q5", TasksRunning: 1},
		{Queue: "q6"},
	}
	for i := range got {
		got[i].OldestWaiting = got[i].OldestWaiting.UTC()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("QueueList:\n got  %+v\n want %+v", got, want)
	}
}

func testRetentionDelete(t *testing.T, s store.Store) {
	ctx := context.Background()
	final := func(id string, state store.RunState, ended int, ref string) store.Run {
		r := store.Run{ID: id, Flow: "f", State: state, ResultRef: ref, CreatedAt: at(0), EndedAt: at(ended)}
		if ended == 0 {
			r.EndedAt = time.Time{}
		}
		return r
	}
	taskRun := func(runID, key string, state store.TaskState, ref string) store.TaskRun {
		return store.TaskRun{ID: runID + "-" + key, RunID: runID, Key: key, State: state, ResultRef: ref, CreatedAt: at(0)}
	}
	var b store.Batch
	b.Runs = []store.Run{
		final("old1", store.RunCompleted, 10, "ref-run-old1"),
		final("old2", store.RunFailed, 20, "ref-shared-cache"),
		final("old3", store.RunCancelled, 30, ""),
		final("new1", store.RunCompleted, 1000, "ref-new1"),
		final("act", store.RunRunning, 0, ""),
		final("noend", store.RunCompleted, 0, ""),
	}
	// Inputs' large parts are blobs too: one only old1 uses, one it shares
	// with act's input, one with new1's result.
	withInput := func(tr store.TaskRun, ref string) store.TaskRun {
		tr.Input, tr.InputRef = raw(`{"parts_at":[0],"value":null}`), ref
		return tr
	}
	b.TaskRuns = []store.TaskRun{
		withInput(taskRun("old1", "k1", store.TaskCompleted, "ref-task-old1"), "ref-input-old1"),
		withInput(taskRun("old1", "k2", store.TaskCompleted, "ref-shared-task"), "ref-shared-input"),
		withInput(taskRun("old2", "k1", store.TaskFailed, ""), "ref-new1"),
		withInput(taskRun("act", "k1", store.TaskCached, "ref-shared-task"), "ref-shared-input"),
	}
	b.Cache = []store.CacheEntry{
		{Key: "c-old1", RunID: "old1", TaskRunID: "old1-k1", ResultRef: "ref-cache-old1", CreatedAt: at(0)},
		{Key: "c-act", RunID: "act", TaskRunID: "act-k1", ResultRef: "ref-shared-cache", CreatedAt: at(0)},
	}
	for _, id := range []string{"old1", "old2", "act"} {
		b.Events = append(b.Events, store.Event{RunID: id, To: "RUNNING", At: at(0)})
		b.Logs = append(b.Logs, store.LogRecord{RunID: id, Message: "hello", At: at(0)})
	}
	write(t, s, b)

	del := func(p store.RetentionParams, runs int, orphans ...string) {
		t.Helper()
		got, err := s.RetentionDelete(ctx, p)
		if err != nil {
			t.Fatalf("RetentionDelete(%+v): %v", p, err)
		}
		if got.Runs != runs || !reflect.DeepEqual(sortedIDs(got.OrphanRefs), sortedIDs(orphans)) {
			t.Errorf("RetentionDelete(%+v) = %d runs, orphans %v; want %d, %v", p, got.Runs, got.OrphanRefs, runs, orphans)
		}
	}
	del(store.RetentionParams{Before: at(25), Limit: 10}, 2, "ref-cache-old1", "ref-input-old1", "ref-run-old1", "ref-task-old1")
	for _, id := range []string{"old1", "old2"} {
		if _, err := s.RunGet(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RunGet of deleted run %s: err = %v, want ErrNotFound", id, err)
		}
		if trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: id}); err != nil || len(trs) != 0 {
			t.Errorf("task runs of deleted run %s: %d, %v", id, len(trs), err)
		}
		if evs := events(t, s, id); len(evs) != 0 {
			t.Errorf("events of deleted run %s: %d", id, len(evs))
		}
		if logs, err := s.LogList(ctx, store.LogListParams{RunID: id}); err != nil || len(logs) != 0 {
			t.Errorf("logs of deleted run %s: %d, %v", id, len(logs), err)
		}
	}
	if _, err := s.CacheGet(ctx, "c-old1", at(1)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("cache entry of a deleted run: err = %v, want ErrNotFound", err)
	}
	// What the remaining runs recorded is untouched.
	if _, err := s.CacheGet(ctx, "c-act", at(1)); err != nil {
		t.Errorf("cache entry of a kept run: %v", err)
	}
	if trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "act"}); err != nil || len(trs) != 1 {
		t.Errorf("task runs of a kept run: %d, %v", len(trs), err)
	}
	if evs := events(t, s, "act"); len(evs) != 1 {
		t.Errorf("events of a kept run: %d", len(evs))
	}
	if logs, err := s.LogList(ctx, store.LogListParams{RunID: "act"}); err != nil || len(logs) != 1 {
		t.Errorf("logs of a kept run: %d, %v", len(logs), err)
	}
	// Oldest first, at most Limit (0: a default of at least 2).
	del(store.RetentionParams{Before: at(2000), Limit: 1}, 1)
	if _, err := s.RunGet(ctx, "old3"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RetentionDelete with Limit 1 did not delete the oldest run old3: %v", err)
	}
	del(store.RetentionParams{Before: at(2000)}, 1, "ref-new1")
	del(store.RetentionParams{Before: at(2000)}, 0)
	for _, id := range []string{"act", "noend"} {
		getRun(t, s, id)
	}
}

func testNotifier(t *testing.T, s store.Store) {
	n, ok := s.(store.Notifier)
	if !ok {
		t.Skip("the store does not implement store.Notifier")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := n.Subscribe(ctx)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	// expect waits for a notification, which may also have come earlier
	// (the order of the notifications of one write is not specified).
	received := map[store.Notification]bool{}
	expect := func(kind, payload string) {
		t.Helper()
		want := store.Notification{Kind: kind, Payload: payload}
		timeout := time.After(5 * time.Second)
		for !received[want] {
			select {
			case got, ok := <-ch:
				if !ok {
					t.Fatalf("notification channel closed while waiting for %+v", want)
				}
				received[got] = true
			case <-timeout:
				t.Fatalf("no notification %+v within 5s (got %v)", want, received)
			}
		}
		delete(received, want)
	}
	bg := context.Background()
	if _, _, err := s.RunCreate(bg, store.RunCreateParams{Run: store.Run{ID: "n1", Flow: "f", Queue: "nq",
		State: store.RunScheduled, Attempt: 1, CreatedAt: at(0)}, Cause: "user"}); err != nil {
		t.Fatalf("RunCreate: %v", err)
	}
	expect("runs", "nq")

	runningRuns(t, s, "n0")
	write(t, s, store.Batch{TaskRuns: []store.TaskRun{{ID: "nt", RunID: "n0", Key: "k", Task: "t", Queue: "tq",
		State: store.TaskPending, CreatedAt: at(0)}}})
	expect("tasks", "tq")
	trs, err := s.TaskRunClaim(bg, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"tq"},
		Tasks: []string{"t"}, Limit: 1, LeaseUntil: at(100), At: at(1)})
	if err != nil || len(trs) != 1 {
		t.Fatalf("TaskRunClaim = %d, %v", len(trs), err)
	}
	if _, err := s.TaskRunComplete(bg, []store.TaskRunCompletion{{Ref: refOf(trs[0]), WorkerID: "w",
		State: store.TaskCompleted, Attempts: 1, Result: raw(`1`), At: at(2)}}); err != nil {
		t.Fatalf("TaskRunComplete: %v", err)
	}
	expect("done", "n0")

	if _, err := s.RunClaim(bg, store.RunClaimParams{WorkerID: "w", Queues: []string{"nq"}, Flows: []string{"f"},
		Limit: 1, LeaseUntil: at(100), At: at(3)}); err != nil {
		t.Fatalf("RunClaim: %v", err)
	}
	if _, err := s.RunTransition(bg, store.RunTransitionParams{ID: "n1", From: []store.RunState{store.RunPending},
		To: store.RunCancelling, Cause: "user", At: at(4)}); err != nil {
		t.Fatalf("RunTransition: %v", err)
	}
	expect("cancel", "n1")

	// A run going back to SCHEDULED (here: its worker stopped) notifies its queue.
	if err := s.WorkerRelease(bg, "w"); err != nil {
		t.Fatalf("WorkerRelease: %v", err)
	}
	if _, _, err := s.RunCreate(bg, store.RunCreateParams{Run: store.Run{ID: "n2", Flow: "f", Queue: "nq2",
		State: store.RunPending, Attempt: 1, WorkerID: "w2", LeaseUntil: at(100), CreatedAt: at(0)}}); err != nil {
		t.Fatalf("RunCreate: %v", err)
	}
	if err := s.WorkerRelease(bg, "w2"); err != nil {
		t.Fatalf("WorkerRelease: %v", err)
	}
	expect("runs", "nq2")

	// Expired leases put runs back on their queue and task runs back to
	// PENDING.
	write(t, s, store.Batch{
		Runs: []store.Run{{ID: "n3", Flow: "f", Queue: "nq3", State: store.RunRunning, Attempt: 1,
			WorkerID: "w9", LeaseUntil: at(10), CreatedAt: at(0)}},
		TaskRuns: []store.TaskRun{{ID: "nt3", RunID: "n3", Key: "k", Task: "t", Queue: "tq3",
			State: store.TaskRunning, WorkerID: "w9", LeaseUntil: at(10), CreatedAt: at(0)}},
	})
	if _, err := s.LeasesExpire(bg, store.LeasesExpireParams{At: at(20), MaxAttempts: 3}); err != nil {
		t.Fatalf("LeasesExpire: %v", err)
	}
	expect("runs", "nq3")
	expect("tasks", "tq3")

	// Cancelling ctx closes the channel.
	cancel()
	timeout := time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatalf("the notification channel is still open 5s after its context ended")
		}
	}
}

func testLeasesRelease(t *testing.T, s store.Store) {
	ctx := context.Background()
	run := func(id string, state store.RunState, worker string) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: "q", State: state, Attempt: 1, CreatedAt: at(0),
			UpdatedAt: at(1), WorkerID: worker, LeaseUntil: at(100)}
	}
	taskRun := func(id, worker string) store.TaskRun {
		return store.TaskRun{ID: id, RunID: "B", Key: "k/" + id, Task: "work", Queue: "q", State: store.TaskRunning,
			WorkerID: worker, LeaseUntil: at(100), CreatedAt: at(0), StartedAt: at(2)}
	}
	write(t, s, store.Batch{
		Runs: []store.Run{run("A", store.RunPending, "w1"), run("K", store.RunPending, "w1"),
			run("B", store.RunRunning, "w1"), run("O", store.RunPending, "w2")},
		TaskRuns: []store.TaskRun{taskRun("T1", "w1"), taskRun("T2", "w1"), taskRun("T3", "w2")},
	})
	err := s.LeasesRelease(ctx, store.LeasesReleaseParams{WorkerID: "w1", KeepRuns: []string{"K"},
		KeepTaskRuns: []store.TaskRunRef{{RunID: "B", Key: "k/T2", ID: "T2"}}})
	if err != nil {
		t.Fatalf("LeasesRelease: %v", err)
	}
	for id, want := range map[string]struct {
		state   store.RunState
		attempt int
		worker  string
	}{
		"A": {store.RunScheduled, 2, ""}, // claimed, never received: back to the queue
		"K": {store.RunPending, 1, "w1"}, // kept
		"B": {store.RunRunning, 1, "w1"}, // started: never released by this call
		"O": {store.RunPending, 1, "w2"}, // another worker's
	} {
		r, err := s.RunGet(ctx, id)
		if err != nil || r.State != want.state || r.Attempt != want.attempt || r.WorkerID != want.worker {
			t.Errorf("run %s after LeasesRelease: %s attempt %d worker %q (%v); want %s attempt %d worker %q",
				id, r.State, r.Attempt, r.WorkerID, err, want.state, want.attempt, want.worker)
		}
	}
	trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "B"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		want, worker := store.TaskRunning, tr.WorkerID
		if tr.ID == "T1" {
			want, worker = store.TaskPending, ""
		}
		if tr.State != want || tr.WorkerID != worker {
			t.Errorf("task run %s after LeasesRelease: %s worker %q; want %s", tr.ID, tr.State, tr.WorkerID, want)
		}
	}
	if tr := trs[0]; tr.ID == "T1" && tr.WorkerID != "" {
		t.Errorf("released task run keeps worker %q", tr.WorkerID)
	}
}

// testClaim: a claim applies its completions (only those of task runs the
// worker holds), claims the oldest SCHEDULED runs and the oldest PENDING
// task runs of each queue it names, in one call; without completions it
// only claims, with zero limits it only completes.
func testClaim(t *testing.T, s store.Store) {
	ctx := context.Background()
	var batch store.Batch
	ids := []string{"a", "b", "c", "d", "e", "f"}
	for i, id := range ids {
		batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: id, RunID: "run", Key: "k/" + id, Task: "work",
			Queue: "q", State: store.TaskPending, FlowAttempt: 1, CreatedAt: at(i)})
	}
	batch.TaskRuns = append(batch.TaskRuns, store.TaskRun{ID: "g", RunID: "run", Key: "k/g", Task: "work",
		Queue: "q2", State: store.TaskPending, FlowAttempt: 1, CreatedAt: at(0)})
	batch.Runs = append(batch.Runs, store.Run{ID: "sched", Flow: "f", Queue: "q", State: store.RunScheduled, Attempt: 1,
		CreatedAt: at(0), UpdatedAt: at(0)})
	runningRuns(t, s, "run")
	write(t, s, batch)
	tasks := func(queue string, n int) store.TaskRunClaimParams {
		return store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{queue}, Tasks: []string{"work"}, Limit: n,
			LeaseUntil: at(100), At: at(50)}
	}
	ref := func(id string) store.TaskRunRef { return store.TaskRunRef{RunID: "run", Key: "k/" + id, ID: id} }
	got, err := s.Claim(ctx, store.ClaimParams{Tasks: []store.TaskRunClaimParams{tasks("q", 2)}})
	if err != nil || len(got.Applied) != 0 || len(got.TaskRuns) != 1 || !reflect.DeepEqual(taskRunIDs(got.TaskRuns[0]), []string{"a", "b"}) {
		t.Fatalf("Claim(no completions) = %+v, %v; want [], [[a b]]", got, err)
	}
	got, err = s.Claim(ctx, store.ClaimParams{Completions: []store.TaskRunCompletion{
		{Ref: ref("a"), WorkerID: "w1", State: store.TaskCompleted, Attempts: 1, Result: raw(`1`), At: at(60)},
		{Ref: ref("b"), WorkerID: "w2", State: store.TaskCompleted, Attempts: 1, At: at(60)}, // not the holder
	}, Runs: store.RunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Flows: []string{"f"}, Limit: 5,
		LeaseUntil: at(100), At: at(50)},
		Tasks: []store.TaskRunClaimParams{tasks("q", 2), tasks("q2", 5)}})
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if len(got.Applied) != 1 || got.Applied[0] != ref("a") {
		t.Errorf("applied %v, want [a]", got.Applied)
	}
	if ids := runIDs(got.Runs); !reflect.DeepEqual(ids, []string{"sched"}) || got.Runs[0].State != store.RunPending ||
		got.Runs[0].WorkerID != "w1" {
		t.Errorf("claimed runs %v (%+v), want [sched] PENDING by w1", ids, got.Runs)
	}
	if len(got.TaskRuns) != 2 || !reflect.DeepEqual(taskRunIDs(got.TaskRuns[0]), []string{"c", "d"}) ||
		!reflect.DeepEqual(taskRunIDs(got.TaskRuns[1]), []string{"g"}) {
		t.Fatalf("claimed task runs %v, want [[c d] [g]]", got.TaskRuns)
	}
	for _, trs := range got.TaskRuns {
		for _, tr := range trs {
			if tr.State != store.TaskRunning || tr.WorkerID != "w1" || !tr.LeaseUntil.Equal(at(100)) || tr.History != nil {
				t.Errorf("claimed %s: %s by %q until %v with history %v, want RUNNING by w1 until %v without history",
					tr.ID, tr.State, tr.WorkerID, tr.LeaseUntil, tr.History, at(100))
			}
		}
	}
	if a := getTaskRun(t, s, "run", "k/a", "a"); a.State != store.TaskCompleted || string(a.Result) != `1` {
		t.Errorf("a: %s %s, want COMPLETED 1", a.State, a.Result)
	}
	if b := getTaskRun(t, s, "run", "k/b", "b"); b.State != store.TaskRunning || b.WorkerID != "w1" {
		t.Errorf("b: %s by %q, want still RUNNING by w1", b.State, b.WorkerID)
	}
	got, err = s.Claim(ctx, store.ClaimParams{Completions: []store.TaskRunCompletion{
		{Ref: ref("b"), WorkerID: "w1", State: store.TaskFailed, Attempts: 1, Error: &store.ErrorInfo{Message: "x"}, At: at(61)},
	}, Tasks: []store.TaskRunClaimParams{tasks("q", 0)}})
	if err != nil || len(got.Applied) != 1 || len(got.Runs) != 0 || len(got.TaskRuns) != 1 || len(got.TaskRuns[0]) != 0 {
		t.Fatalf("Claim(limit 0) = %+v, %v; want [b], [], [[]]", got, err)
	}
	if b := getTaskRun(t, s, "run", "k/b", "b"); b.State != store.TaskFailed {
		t.Errorf("b: %s, want FAILED", b.State)
	}
	for _, id := range []string{"e", "f"} {
		if tr := getTaskRun(t, s, "run", "k/"+id, id); tr.State != store.TaskPending {
			t.Errorf("%s: %s, want PENDING", id, tr.State)
		}
	}
}
