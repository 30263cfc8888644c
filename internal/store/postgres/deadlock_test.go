package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

// TestLeaseExtensionLockOrder provokes, deterministically, the lock-order
// cycles between the server's lease extension and the other writers of the
// same rows: a transaction of the test holds the row that one writer
// ("first") locks first, "first" waits for it, "second" locks what it locks
// before that row and waits for it too; when the test's transaction ends,
// "first" gets the row and goes on to a row that "second" holds. With one
// lock order for all writers, "second" waits instead of holding that row,
// and both succeed. Each case runs without the retry of aborted
// transactions (the order alone must prevent the deadlock) and with it.
func TestLeaseExtensionLockOrder(t *testing.T) {
	t.Parallel()
	type env struct {
		st   *Store
		lock func(sql string, args ...any) // the test's transaction locks a row
	}
	lease := func(sec int) time.Time { return time.Unix(1_900_000_000+int64(sec), 0) }
	run := func(id, worker string, leaseSec int) store.Run {
		return store.Run{ID: id, Flow: "f", State: store.RunRunning, Attempt: 1, Queue: "q", WorkerID: worker,
			LeaseUntil: lease(leaseSec), CreatedAt: time.Unix(1_800_000_000, 0)}
	}
	taskRun := func(runID, key, worker string, leaseSec int) store.TaskRun {
		return store.TaskRun{ID: "tr-" + key, RunID: runID, Key: key, Task: "t", State: store.TaskRunning,
			Attempts: 1, FlowAttempt: 1, Queue: "q", WorkerID: worker, LeaseUntil: lease(leaseSec),
			CreatedAt: time.Unix(1_800_000_000, 0)}
	}
	done := func(tr store.TaskRun) store.TaskRunCompletion {
		return store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID},
			WorkerID: tr.WorkerID, State: store.TaskCompleted, Attempts: 1}
	}
	extend := func(e env) error {
		return e.st.LeasesExtend(context.Background(), store.LeasesExtendParams{WorkerIDs: []string{"w1"}, Until: lease(100)})
	}
	// Rows are written one batch each, so that their order in the heap is
	// the order given (not the key order), and with leases in that order.
	setup := func(t *testing.T, st *Store, b ...store.Batch) {
		t.Helper()
		if err := st.WorkerUpsert(context.Background(), store.Worker{ID: "w1", Queues: []string{"q"}}); err != nil {
			t.Fatal(err)
		}
		for _, x := range b {
			if err := st.BatchWrite(context.Background(), x); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Run ids and task-run keys: "a" sorts before "b".
	ra, rb := run("run-a", "w1", 2), run("run-b", "w1", 1)
	tx1, ty1 := taskRun("run-a", "x", "w1", 2), taskRun("run-a", "y", "w1", 1) // y first in heap and lease order
	tx2, ty2 := taskRun("run-a", "x", "w1", 1), taskRun("run-a", "y", "w1", 2) // x first
	cases := []struct {
		name          string
		setup         func(t *testing.T, st *Store)
		hold          func(e env)
		first, second func(e env) error
	}{{
		// A batch of the engine writes two runs (in id order) while the
		// server extends their worker's leases.
		name: "batch of runs, extension",
		setup: func(t *testing.T, st *Store) {
			setup(t, st, store.Batch{Runs: []store.Run{rb}}, store.Batch{Runs: []store.Run{ra}})
		},
		hold: func(e env) { e.lock("SELECT id FROM runs WHERE id = 'run-a' FOR UPDATE") },
		first: func(e env) error {
			a, b := ra, rb
			a.UpdatedAt, b.UpdatedAt = time.Now(), time.Now()
			return e.st.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{a, b}})
		},
		second: extend,
	}, {
		// A worker reports two completions (in key order) while the server
		// extends its leases.
		name: "completions, extension",
		setup: func(t *testing.T, st *Store) {
			setup(t, st, store.Batch{Runs: []store.Run{run("run-a", "w0", 1)}},
				store.Batch{TaskRuns: []store.TaskRun{ty1}}, store.Batch{TaskRuns: []store.TaskRun{tx1}})
		},
		hold: func(e env) { e.lock("SELECT id FROM task_runs WHERE key = 'x' FOR UPDATE") },
		first: func(e env) error {
			_, err := e.st.TaskRunComplete(context.Background(), []store.TaskRunCompletion{done(tx1), done(ty1)})
			return err
		},
		second: extend,
	}, {
		// A worker reports two completions in the order they finished (not
		// key order) while the server extends its leases.
		name: "completions out of key order, extension",
		setup: func(t *testing.T, st *Store) {
			setup(t, st, store.Batch{Runs: []store.Run{run("run-a", "w0", 1)}},
				store.Batch{TaskRuns: []store.TaskRun{tx2}}, store.Batch{TaskRuns: []store.TaskRun{ty2}})
		},
		hold: func(e env) { e.lock("SELECT id FROM task_runs WHERE key = 'y' FOR UPDATE") },
		first: func(e env) error {
			_, err := e.st.TaskRunComplete(context.Background(), []store.TaskRunCompletion{done(ty2), done(tx2)})
			return err
		},
		second: extend,
	}, {
		// A worker deregisters (its runs and task runs are given back)
		// while a server extends its leases.
		name: "extension, worker release",
		setup: func(t *testing.T, st *Store) {
			setup(t, st, store.Batch{Runs: []store.Run{run("run-a", "w1", 1)}}, store.Batch{TaskRuns: []store.TaskRun{tx2}})
		},
		hold:   func(e env) { e.lock("SELECT id FROM task_runs WHERE key = 'x' FOR UPDATE") },
		first:  extend,
		second: func(e env) error { return e.st.WorkerRelease(context.Background(), "w1") },
	}}
	for _, c := range cases {
		for _, retry := range []bool{false, true} {
			name := c.name + ", no retry"
			if retry {
				name = c.name + ", retry"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				var b [4]byte
				rand.Read(b[:])
				app := "deadlock_" + hex.EncodeToString(b[:])
				st := openAt(t, schemaURL(t)+"&application_name="+app)
				if !retry {
					st.txAttempts = 1
				}
				c.setup(t, st)
				ctx := context.Background()
				holder, err := st.pool.Begin(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer holder.Rollback(ctx)
				e := env{st: st, lock: func(sql string, args ...any) {
					if _, err := holder.Exec(ctx, sql, args...); err != nil {
						t.Fatal(err)
					}
				}}
				c.hold(e)
				waitLockWaiters(t, st, app, 0)
				errs := make(chan error, 2)
				go func() { errs <- c.first(e) }()
				waitLockWaiters(t, st, app, 1)
				go func() { errs <- c.second(e) }()
				waitLockWaiters(t, st, app, 2)
				if err := holder.Commit(ctx); err != nil {
					t.Fatal(err)
				}
				for range 2 {
					if err := <-errs; err != nil {
						t.Errorf("concurrent writer failed: %v", err)
					}
				}
			})
		}
	}
}

// waitLockWaiters waits until n backends of the application app wait for a
// lock.
func waitLockWaiters(t *testing.T, st *Store, app string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var got int
		if err := admin(t).QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d backends wait for a lock, want %d", got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRetryDeadlock checks that a transaction PostgreSQL aborts for a
// deadlock is run again: the first attempt locks one row and then waits for
// a row that the test's transaction holds, which then waits for the first
// row; the attempt (with the shorter deadlock_timeout) is the one aborted.
func TestRetryDeadlock(t *testing.T) {
	t.Parallel()
	st := openStore(t)
	ctx := context.Background()
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "a", Flow: "f", State: store.RunRunning},
		{ID: "b", Flow: "f", State: store.RunRunning}}}); err != nil {
		t.Fatal(err)
	}
	holder, err := st.pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback(ctx)
	for _, q := range []string{"SET LOCAL deadlock_timeout = '10s'", "SELECT id FROM runs WHERE id = 'b' FOR UPDATE"} {
		if _, err := holder.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var attempts atomic.Int32
	locked := make(chan struct{}, 1)
	holderErr := make(chan error, 1)
	quit := make(chan struct{})
	go func() {
		select {
		case <-locked:
		case <-quit:
			holderErr <- nil
			return
		}
		// Wait for the attempt to wait for row b, then close the cycle.
		for {
			var waiting bool
			if err := admin(t).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks l JOIN pg_stat_activity a
				ON a.pid = l.pid WHERE NOT l.granted AND a.query LIKE '%id = ''b''%deadlock test%')`).Scan(&waiting); err != nil {
				holderErr <- err
				return
			}
			if waiting {
				break
			}
			select {
			case <-quit:
				holderErr <- nil
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		_, err := holder.Exec(ctx, "SELECT id FROM runs WHERE id = 'a' FOR UPDATE")
		if err == nil {
			err = holder.Commit(ctx)
		}
		holderErr <- err
	}()
	err = st.inTx(ctx, "deadlock test", func(tx pgx.Tx) error {
		n := attempts.Add(1)
		if _, err := tx.Exec(ctx, "SET LOCAL deadlock_timeout = '50ms'"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT id FROM runs WHERE id = 'a' FOR UPDATE"); err != nil {
			return err
		}
		if n == 1 {
			locked <- struct{}{}
		}
		_, err := tx.Exec(ctx, "SELECT id FROM runs WHERE id = 'b' FOR UPDATE /* deadlock test */")
		return err
	})
	close(quit)
	if herr := <-holderErr; herr != nil {
		t.Errorf("holder: %v", herr)
	}
	if err != nil {
		t.Fatalf("inTx: %v", err)
	}
	if n := attempts.Load(); n < 2 {
		t.Errorf("%d attempts, want at least 2 (aborted for the deadlock, then one that succeeds)", n)
	}

	// A refusal that is not a deadlock is not retried.
	attempts.Store(0)
	err = st.inTx(ctx, "refused", func(tx pgx.Tx) error {
		attempts.Add(1)
		return store.ErrConflict
	})
	if !errors.Is(err, store.ErrConflict) || attempts.Load() != 1 {
		t.Errorf("refusal: err %v after %d attempts, want ErrConflict after 1", err, attempts.Load())
	}
}

// TestReleaseWaitsForClaimInProgress: a server that dies while it claims
// for a worker may have its claim committed after the worker, told nothing,
// reported what it holds through another server. The release of what the
// worker does not hold must wait for that claim and give back what it
// claimed; before, the claim committed after the release had looked, and
// the task run stayed RUNNING, leased (and heartbeated) to a worker that
// never ran it.
func TestReleaseWaitsForClaimInProgress(t *testing.T) {
	t.Parallel()
	var b [4]byte
	rand.Read(b[:])
	app := "claimrace_" + hex.EncodeToString(b[:])
	st := openAt(t, schemaURL(t)+"&application_name="+app)
	ctx := context.Background()
	if err := st.WorkerUpsert(ctx, store.Worker{ID: "w1", Queues: []string{"q"}}); err != nil {
		t.Fatal(err)
	}
	tr := store.TaskRun{ID: "tr-x", RunID: "run-a", Key: "x", Task: "t", State: store.TaskPending, FlowAttempt: 1,
		Queue: "q", CreatedAt: time.Now()}
	if err := st.BatchWrite(ctx, store.Batch{Runs: []store.Run{{ID: "run-a", Flow: "f", State: store.RunRunning,
		Attempt: 1, Queue: "q", WorkerID: "w0", LeaseUntil: time.Now().Add(time.Hour)}}, TaskRuns: []store.TaskRun{tr}}); err != nil {
		t.Fatal(err)
	}
	entered, proceed := make(chan struct{}), make(chan struct{})
	st.claimed = func() { close(entered); <-proceed }
	claimDone := make(chan error, 1)
	go func() {
		trs, err := st.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Tasks: []string{"t"},
			Limit: 1, LeaseUntil: time.Now().Add(time.Hour)})
		if err == nil && len(trs) != 1 {
			err = errors.New("the claim claimed nothing")
		}
		claimDone <- err
	}()
	<-entered // claimed, not committed: the server dies now
	released := make(chan error, 1)
	go func() {
		released <- st.LeasesRelease(ctx, store.LeasesReleaseParams{WorkerID: "w1"}) // holds nothing
	}()
	// The release waits for the claim (or, wrongly, returns at once).
	deadline := time.Now().Add(10 * time.Second)
	var early error
	waiting := false
	for !waiting && time.Now().Before(deadline) {
		select {
		case early = <-released:
			deadline = time.Time{}
			continue
		default:
		}
		var n int
		if err := admin(t).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&n); err != nil {
			t.Fatal(err)
		}
		waiting = n == 1
		time.Sleep(5 * time.Millisecond)
	}
	close(proceed) // the claim commits (its server died after sending COMMIT)
	if err := <-claimDone; err != nil {
		t.Fatalf("claim: %v", err)
	}
	if waiting {
		if err := <-released; err != nil {
			t.Fatalf("release: %v", err)
		}
	} else if early != nil {
		t.Fatalf("release: %v", early)
	}
	got, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: "run-a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State != store.TaskPending || got[0].WorkerID != "" {
		t.Fatalf("task run after the release: %+v, want PENDING without a worker (the worker never received it)", got)
	}
}
