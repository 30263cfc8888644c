package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// These tests cover what the conformance suite cannot: several Store
// values (as several servers would have) on one database, and
// LISTEN/NOTIFY across them.

var t0 = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// TestClaimAcrossStores claims runs and task runs from several stores (each
// its own pool, as separate servers) at once: every row is claimed exactly
// once.
func TestClaimAcrossStores(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	const nStores, nRuns = 4, 300
	stores := make([]*Store, nStores)
	for i := range stores {
		stores[i] = openAt(t, u)
	}
	b := store.Batch{Runs: []store.Run{{ID: "parent", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: t0}}}
	for i := range nRuns {
		b.Runs = append(b.Runs, store.Run{ID: fmt.Sprintf("run-%04d", i), Flow: "f", State: store.RunScheduled,
			Attempt: 1, Queue: "q", CreatedAt: t0.Add(time.Duration(i) * time.Millisecond)})
		b.TaskRuns = append(b.TaskRuns, store.TaskRun{ID: fmt.Sprintf("tr-%04d", i), RunID: "parent",
			Key: fmt.Sprintf("k/%d", i), Task: "t", State: store.TaskPending, Queue: "q",
			CreatedAt: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	if err := stores[0].BatchWrite(ctx, b); err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		runs     = map[string]int{}
		taskRuns = map[string]int{}
		wg       sync.WaitGroup
	)
	for w := range 16 {
		s := stores[w%nStores]
		worker := fmt.Sprintf("w%d", w)
		wg.Go(func() {
			for {
				rs, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Flows: []string{"f"}, Limit: 7, LeaseUntil: time.Now().Add(time.Minute)})
				if err != nil {
					t.Error(err)
					return
				}
				trs, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: worker, Queues: []string{"q"},
					Tasks: []string{"t"}, Limit: 5, LeaseUntil: time.Now().Add(time.Minute)})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, r := range rs {
					runs[r.ID]++
					if r.State != store.RunPending || r.WorkerID != worker {
						t.Errorf("claimed run %s: state %s worker %s", r.ID, r.State, r.WorkerID)
					}
				}
				for _, tr := range trs {
					taskRuns[tr.ID]++
					if tr.State != store.TaskRunning || tr.WorkerID != worker || tr.History != nil {
						t.Errorf("claimed task run %s: state %s worker %s history %+v", tr.ID, tr.State, tr.WorkerID, tr.History)
					}
				}
				mu.Unlock()
				if len(rs) == 0 && len(trs) == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	if len(runs) != nRuns || len(taskRuns) != nRuns {
		t.Errorf("claimed %d runs and %d task runs, want %d each", len(runs), len(taskRuns), nRuns)
	}
	for id, n := range runs {
		if n != 1 {
			t.Errorf("run %s claimed %d times", id, n)
		}
	}
	for id, n := range taskRuns {
		if n != 1 {
			t.Errorf("task run %s claimed %d times", id, n)
		}
	}
	evs, err := stores[1].EventList(ctx, "run-0007")
	if err != nil || len(evs) != 1 || evs[0].From != "SCHEDULED" || evs[0].To != "PENDING" {
		t.Errorf("events of a claimed run: %+v, %v", evs, err)
	}
}

// TestDistributedLifecycle walks a run and a task run through the
// distributed operations on one store.
func TestDistributedLifecycle(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	run := store.Run{ID: "r1", Flow: "f", State: store.RunScheduled, Attempt: 1, Queue: "q",
		IdempotencyKey: "key-1", Parameters: json.RawMessage(`{"a": 1}`), CreatedAt: t0}
	got, created, err := s.RunCreate(ctx, store.RunCreateParams{Run: run, Cause: "user", Message: "hi"})
	if err != nil || !created || got.UpdatedAt.IsZero() || string(got.Parameters) != `{"a": 1}` {
		t.Fatalf("RunCreate: %+v %v %v", got, created, err)
	}
	dup := run
	dup.ID = "r2"
	got, created, err = s.RunCreate(ctx, store.RunCreateParams{Run: dup})
	if err != nil || created || got.ID != "r1" {
		t.Fatalf("RunCreate with the same key: %s %v %v", got.ID, created, err)
	}
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: "r1", Flow: "f"}}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunCreate with the same ID: %v, want ErrConflict", err)
	}

	if err := s.WorkerUpsert(ctx, store.Worker{ID: "w1", Name: "one", Queues: []string{"q", "other"},
		Flows: []string{"f"}, Tasks: []string{"t"}, Capacity: 2, Slots: map[string]int{"q": 3}, StartedAt: t0}); err != nil {
		t.Fatal(err)
	}
	ws, err := s.WorkerList(ctx, time.Now().Add(-time.Minute))
	if err != nil || len(ws) != 1 || ws[0].Slots["q"] != 3 || len(ws[0].Queues) != 2 {
		t.Fatalf("WorkerList: %+v %v", ws, err)
	}

	lease := time.Now().Add(time.Minute)
	claimed, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Flows: []string{"f"},
		Limit: 10, LeaseUntil: lease})
	if err != nil || len(claimed) != 1 || claimed[0].State != store.RunPending || claimed[0].WorkerID != "w1" {
		t.Fatalf("RunClaim: %+v %v", claimed, err)
	}
	running, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunPending},
		To: store.RunRunning, Attempt: 1, Owner: &store.Owner{Host: "h", PID: 7, WorkerID: "w1", LeaseUntil: lease},
		Cause: "worker:w1"})
	if err != nil || running.State != store.RunRunning || running.StartedAt.IsZero() || running.OwnerPID != 7 {
		t.Fatalf("RunTransition: %+v %v", running, err)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, Attempt: 2}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("RunTransition at the wrong attempt: %v", err)
	}

	tr := store.TaskRun{ID: "tr1", RunID: "r1", Key: "k", Task: "t", State: store.TaskPending, Queue: "q",
		Input: json.RawMessage(`[1]`), CreatedAt: t0,
		History: []store.Transition{{At: t0, To: "PENDING", Cause: "engine", Message: "queued on q"}}}
	if err := s.BatchWrite(ctx, store.Batch{TaskRuns: []store.TaskRun{tr}}); err != nil {
		t.Fatal(err)
	}
	trs, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Tasks: []string{"t"},
		Limit: 5, LeaseUntil: lease})
	if err != nil || len(trs) != 1 || trs[0].History != nil {
		t.Fatalf("TaskRunClaim: %+v %v; want one task run without its history", trs, err)
	}
	if got, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: "r1", Key: "k"}); err != nil || len(got) != 1 ||
		len(got[0].History) != 2 || got[0].History[1].To != "RUNNING" {
		t.Fatalf("claimed task run: %+v %v; want its history to end in RUNNING", got, err)
	}
	if err := s.LeasesExtend(ctx, store.LeasesExtendParams{WorkerIDs: []string{"w1"}, Until: lease.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RunGet(ctx, "r1"); !r.LeaseUntil.Equal(lease.Add(time.Hour)) {
		t.Errorf("lease after LeasesExtend: %v", r.LeaseUntil)
	}

	ref := store.TaskRunRef{RunID: "r1", Key: "k", ID: "tr1"}
	fin, err := s.TaskRunFinished(ctx, []store.TaskRunRef{ref})
	if err != nil || len(fin) != 0 {
		t.Fatalf("TaskRunFinished before completion: %+v %v", fin, err)
	}
	cache := &store.CacheEntry{Key: "c1", Task: "t", ResultRef: "blob:1", RunID: "r1",
		TaskRunID: "tr1", CreatedAt: t0}
	applied, err := s.TaskRunComplete(ctx, []store.TaskRunCompletion{
		{Ref: ref, WorkerID: "w2", State: store.TaskCompleted}, // not its lease
		{Ref: ref, WorkerID: "w1", State: store.TaskCompleted, Attempts: 1,
			ResultRef: "blob:1", Cache: cache, History: []store.Transition{{At: t0, From: "RUNNING", To: "COMPLETED"}}},
		{Ref: ref, WorkerID: "w1", State: store.TaskFailed}, // already done
	})
	if err != nil || len(applied) != 1 {
		t.Fatalf("TaskRunComplete: %+v %v", applied, err)
	}
	fin, err = s.TaskRunFinished(ctx, []store.TaskRunRef{ref, {RunID: "r1", Key: "k", ID: "nope"}})
	if err != nil || len(fin) != 1 || fin[0].State != store.TaskCompleted || fin[0].Result != nil || fin[0].ResultRef != "blob:1" {
		t.Fatalf("TaskRunFinished: %+v %v", fin, err)
	}
	trs, err = s.TaskRunList(ctx, store.TaskRunListParams{RunID: "r1", Key: "k"})
	if err != nil || len(trs) != 1 || len(trs[0].History) != 3 || trs[0].WorkerID != "w1" || !trs[0].LeaseUntil.IsZero() {
		t.Fatalf("task run after completion: %+v %v", trs, err)
	}
	if _, err := s.CacheGet(ctx, "c1", t0); err != nil {
		t.Errorf("CacheGet after completion: %v", err)
	}

	qs, err := s.QueueList(ctx, time.Now().Add(-store.LiveWorkerWindow))
	if err != nil || len(qs) != 2 || qs[0].Queue != "other" || qs[1].Queue != "q" || qs[1].RunsRunning != 1 {
		t.Fatalf("QueueList: %+v %v", qs, err)
	}

	// The lease expires: the run crashes and is rescheduled.
	exp, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: lease.Add(2 * time.Hour), MaxAttempts: 3})
	if err != nil || len(exp.Crashed) != 1 || exp.Rescheduled != 1 || exp.Crashed[0].State != store.RunScheduled ||
		exp.Crashed[0].Attempt != 2 || exp.Crashed[0].WorkerID != "" {
		t.Fatalf("LeasesExpire: %+v %v", exp, err)
	}
	// Claimed again, then the worker leaves: back to SCHEDULED.
	if c, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Flows: []string{"f"},
		Limit: 1, LeaseUntil: lease}); err != nil || len(c) != 1 {
		t.Fatalf("RunClaim again: %+v %v", c, err)
	}
	if err := s.WorkerRelease(ctx, "w1"); err != nil {
		t.Fatal(err)
	}
	r, err := s.RunGet(ctx, "r1")
	if err != nil || r.State != store.RunScheduled || r.Attempt != 3 || r.WorkerID != "" {
		t.Fatalf("after WorkerRelease: %+v %v", r, err)
	}
	if ws, _ := s.WorkerList(ctx, time.Time{}); len(ws) != 0 {
		t.Errorf("workers after release: %+v", ws)
	}

	// Retention removes finished runs and reports blobs nobody uses.
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "r1", From: []store.RunState{store.RunScheduled},
		To: store.RunCancelled, At: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.RetentionDelete(ctx, store.RetentionParams{Before: t0.Add(2 * time.Hour)})
	if err != nil || res.Runs != 1 || len(res.OrphanRefs) != 1 || res.OrphanRefs[0] != "blob:1" {
		t.Fatalf("RetentionDelete: %+v %v", res, err)
	}
	if _, err := s.RunGet(ctx, "r1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunGet after retention: %v", err)
	}
	if evs, _ := s.EventList(ctx, "r1"); len(evs) != 0 {
		t.Errorf("events after retention: %d", len(evs))
	}
}

// recv waits for a notification of kind and payload on ch.
func recv(t *testing.T, ch <-chan store.Notification, kind, payload string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case n, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed waiting for %s:%s", kind, payload)
			}
			if n.Kind == kind && n.Payload == payload {
				return
			}
		case <-timeout:
			t.Fatalf("no notification %s:%s", kind, payload)
		}
	}
}

// TestNotifications checks that another store on the same schema (another
// server) hears the notifications of the writes, also after its listening
// connection was killed.
func TestNotifications(t *testing.T) {
	ctx := context.Background()
	u := schemaURL(t)
	writer, listener := openAt(t, u), openAt(t, u)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch, err := listener.Subscribe(sctx)
	if err != nil {
		t.Fatal(err)
	}
	ch2, err := listener.Subscribe(sctx)
	if err != nil {
		t.Fatal(err)
	}

	if _, _, err := writer.RunCreate(ctx, store.RunCreateParams{Run: store.Run{ID: "r", Flow: "f",
		State: store.RunScheduled, Queue: "q1"}}); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "runs", "q1")
	recv(t, ch2, "runs", "q1")
	if err := writer.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "rt", Flow: "f", State: store.RunRunning}},
		TaskRuns: []store.TaskRun{{ID: "t", RunID: "rt", Key: "k", Task: "x", State: store.TaskPending, Queue: "q2"}}}); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "tasks", "q2")
	if _, err := writer.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"q1"}, Flows: []string{"f"},
		Limit: 1, LeaseUntil: time.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := writer.RunTransition(ctx, store.RunTransitionParams{ID: "r", From: []store.RunState{store.RunPending},
		To: store.RunCancelling}); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "cancel", "r")

	// Kill the listening connection: the store reconnects, says so with
	// empty wake-ups, and hears later notifications again.
	if _, err := admin(t).Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE 'LISTEN %' AND query LIKE '%'||$1||'%'`, listener.channel); err != nil {
		t.Fatal(err)
	}
	recv(t, ch, "done", "")
	if _, err := writer.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"q2"},
		Tasks: []string{"x"}, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	applied, err := writer.TaskRunComplete(ctx, []store.TaskRunCompletion{{Ref: store.TaskRunRef{RunID: "rt", Key: "k", ID: "t"},
		WorkerID: "w", State: store.TaskCompleted}})
	if err != nil || len(applied) != 1 {
		t.Fatalf("TaskRunComplete: %v %v", applied, err)
	}
	recv(t, ch, "done", "rt")

	cancel()
	for range ch {
	}
	for range ch2 {
	}
	// Closing the store closes the channels of live subscribers.
	ch3, err := listener.Subscribe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	listener.Close()
	for range ch3 {
	}
	if _, err := listener.Subscribe(ctx); err == nil {
		t.Error("Subscribe on a closed store succeeded")
	}
}

// TestClaimPlansReadInOrder checks that a claim of one queue reads the
// claim index in claim order and stops at its LIMIT, instead of reading and
// sorting every waiting row of the queue (which made each claim cost
// O(queue length): 10 ms per claim with 4,000 task runs PENDING).
func TestClaimPlansReadInOrder(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t)
	const n = 4000
	b := store.Batch{Runs: []store.Run{{ID: "parent", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: t0}}}
	for i := range n {
		at := t0.Add(time.Duration(i) * time.Microsecond)
		b.Runs = append(b.Runs, store.Run{ID: fmt.Sprintf("run-%05d", i), Flow: "f", State: store.RunScheduled,
			Attempt: 1, Queue: "q", CreatedAt: at})
		b.TaskRuns = append(b.TaskRuns, store.TaskRun{ID: fmt.Sprintf("tr-%05d", i), RunID: "parent",
			Key: fmt.Sprintf("k/%d", i), Task: "t", State: store.TaskPending, Queue: "q", CreatedAt: at})
	}
	if err := s.BatchWrite(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.pool.Exec(ctx, "ANALYZE runs; ANALYZE task_runs"); err != nil {
		t.Fatal(err)
	}
	lease, at := encTime(time.Now().Add(time.Minute)), encTime(time.Now())
	for _, c := range []struct {
		name string
		sql  string
		args []any
	}{
		{"runs", claimSQL(runClaimSQL, 1), []any{[]string{"q"}, []string{"f"}, int64(8), "w", lease, at, "worker:w"}},
		{"task runs", claimSQL(taskRunClaimSQL, 1), []any{[]string{"q"}, []string{"t"}, int64(8), "w", lease, at, "[]"}},
	} {
		rows, err := s.pool.Query(ctx, "EXPLAIN "+c.sql, c.args...)
		if err != nil {
			t.Fatalf("explain %s claim: %v", c.name, err)
		}
		var plan []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, line)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		text := strings.Join(plan, "\n")
		if !strings.Contains(text, "_claim") || strings.Contains(text, "Sort Key: task_runs.created_at") ||
			strings.Contains(text, "Sort Key: runs.created_at") {
			t.Errorf("%s claim does not read the claim index in order:\n%s", c.name, text)
		}
	}
	// The claims still take the oldest rows.
	rs, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"q"}, Flows: []string{"f"}, Limit: 3,
		LeaseUntil: time.Now().Add(time.Minute)})
	if err != nil || len(rs) != 3 || rs[0].ID != "run-00000" || rs[2].ID != "run-00002" {
		t.Fatalf("RunClaim = %v, %v; want run-00000..run-00002", rs, err)
	}
	trs, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w", Queues: []string{"q"}, Tasks: []string{"t"},
		Limit: 3, LeaseUntil: time.Now().Add(time.Minute)})
	if err != nil || len(trs) != 3 || trs[0].ID != "tr-00000" || trs[2].ID != "tr-00002" {
		t.Fatalf("TaskRunClaim = %v, %v; want tr-00000..tr-00002", trs, err)
	}
}
