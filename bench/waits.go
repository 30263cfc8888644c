package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/postgres"
)

// The wait measures (waitceiling, paused, timers) at -scale 1.
const (
	waitRuns     = 10_000 // paused runs resumed, and timers due in the same second
	waitSenders  = 16     // goroutines creating the runs and sending the inputs
	waitWorkers  = 2      // workers of the queue waits
	waitSlots    = 5_000  // --concurrency of each: every run can wait at once
	waitsQueue   = "waits"
	timerBatchSz = 500 // the server's batch of TimersFire (internal/server timerBatch)
	// timerLeadBase and timerLeadPerRun set how far ahead the timers are
	// due: every run must have begun its sleep before then.
	timerLeadBase   = 5 * time.Second
	timerLeadPerRun = 2 * time.Millisecond
)

// Names in the bench program (bench/internal/benchprog).
const (
	flowWaitInput  = "bench.wait-input"
	flowSleepUntil = "bench.sleep-until"
)

// startWaiters starts, once, the workers serving the queue waits with
// enough flow slots for every run of a wait measure to be held at once
// (a run that waits holds its slot for the engine's SuspendGrace, 1 s,
// before it is suspended), and waits until they are registered.
func (d *dist) startWaiters(ctx context.Context) error {
	c := d.cl
	if c.waiters != nil {
		return nil
	}
	bin := filepath.Join(d.dir, "bin")
	base := []string{"BATON_HOME=" + filepath.Join(c.dir, "home"), "BATON_DB=", "BATON_SERVER=", "BENCH_CPUPROFILE="}
	for i := range waitWorkers {
		name := fmt.Sprintf("waitworker%d", i)
		p, err := c.start(name, filepath.Join(bin, "benchprog"), base,
			"worker", "--server", c.url, "--queue", waitsQueue, "--concurrency", strconv.Itoa(waitSlots),
			"--name", "bench-"+name)
		if err != nil {
			return err
		}
		c.waiters = append(c.waiters, p)
	}
	return c.waitFor(ctx, fmt.Sprintf("%d wait workers to register", waitWorkers), func(ctx context.Context) (bool, error) {
		ws, err := c.cl.Workers(ctx)
		if err != nil {
			return false, nil
		}
		n := 0
		for _, w := range ws {
			if strings.HasPrefix(w.Name, "bench-waitworker") {
				n++
			}
		}
		return n >= waitWorkers, nil
	})
}

// createWaitRuns creates n runs of flow on the queue waits from
// waitSenders goroutines, with the parameters params(i), and returns their
// IDs in order.
func (d *dist) createWaitRuns(ctx context.Context, flow string, n int, params func(i int) json.RawMessage) ([]string, error) {
	ids := make([]string, n)
	err := parallel(n, func(i int) error {
		run, _, err := d.cl.cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: flow, Queue: waitsQueue, Parameters: params(i)})
		ids[i] = run.ID
		return err
	})
	return ids, err
}

// parallel calls fn(0..n-1) from waitSenders goroutines and returns the
// first error, with how many calls failed.
func parallel(n int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		fails int
		next  = make(chan int)
	)
	for range min(waitSenders, n) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					mu.Lock()
					fails++
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		return fmt.Errorf("%d of %d calls failed; first: %w", fails, n, first)
	}
	return nil
}

// waitPaused waits until no run of flow is SCHEDULED, PENDING or RUNNING
// and checks that want of them are PAUSED.
func (d *dist) waitPaused(ctx context.Context, flow string, want int) error {
	c := d.cl
	if err := c.waitFor(ctx, "the "+flow+" runs to pause", func(ctx context.Context) (bool, error) {
		for _, st := range []store.RunState{store.RunScheduled, store.RunPending, store.RunRunning} {
			runs, err := c.cl.ListRuns(ctx, client.ListRunsParams{Flow: flow, State: string(st), Limit: 1})
			if err != nil {
				return false, fmt.Errorf("list runs: %w", err)
			}
			if len(runs) > 0 {
				return false, nil
			}
		}
		return true, nil
	}); err != nil {
		return err
	}
	runs, err := c.cl.ListRuns(ctx, client.ListRunsParams{Flow: flow, State: string(store.RunPaused), Limit: min(listLimit, want)})
	if err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	if want <= listLimit && len(runs) != want {
		return fmt.Errorf("%d runs of %s PAUSED, want %d", len(runs), flow, want)
	}
	return nil
}

// schemaBytes compacts the tables of the database URL's schema (VACUUM
// FULL: dead row versions left by updates do not count) and returns their
// total size on disk: rows, indexes and TOAST.
func schemaBytes(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT schemaname, tablename FROM pg_tables WHERE schemaname = current_schema()")
	if err != nil {
		return 0, err
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var s, t string
		err := r.Scan(&s, &t)
		return pgx.Identifier{s, t}.Sanitize(), err
	})
	if err != nil {
		return 0, err
	}
	if len(tables) == 0 {
		return 0, fmt.Errorf("no tables in the schema of %s", redact(url))
	}
	var total int64
	for _, t := range tables {
		if _, err := conn.Exec(ctx, "VACUUM FULL "+t); err != nil {
			return 0, fmt.Errorf("vacuum %s: %w", t, err)
		}
		var n int64
		if err := conn.QueryRow(ctx, "SELECT pg_total_relation_size($1::regclass)", t).Scan(&n); err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

// measureWaitCeiling measures the store alone (PostgreSQL), on a fresh
// schema: the bytes of the least a paused run writes (a RUNNING run, its
// input wait step and the transition to PAUSED), the rate at which
// InputSend resolves those waits from waitSenders goroutines, and the time
// TimersFire takes to fire waitRuns due sleeps in the server's batches.
func measureWaitCeiling(ctx context.Context, b *bench) error {
	d := distOf(b)
	url, err := d.newSchema(ctx, "waitceiling")
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	n := b.n(waitRuns)
	schema, err := json.Marshal(params.SchemaFor(reflect.TypeFor[int]()))
	if err != nil {
		return err
	}
	before, err := schemaBytes(ctx, url)
	if err != nil {
		return err
	}
	now := time.Now()
	inputs, err := pausedRuns(ctx, st, "in", n, now, store.WaitSpec{Kind: store.WaitInput, Key: "go", Schema: schema})
	if err != nil {
		return err
	}
	after, err := schemaBytes(ctx, url)
	if err != nil {
		return err
	}
	perRun := float64(after-before) / float64(n)
	b.progress("waitceiling: %d paused runs written by the store alone: %d bytes (%.0f per run)", n, after-before, perRun)
	b.report("postgres_paused_run_bytes_floor", perRun, 0)

	t0 := time.Now()
	if err := parallel(n, func(i int) error {
		res, err := st.InputSend(ctx, store.InputSendParams{RunID: inputs[i], Key: "go", Value: json.RawMessage(strconv.Itoa(i)),
			Actor: store.Actor{Name: "bench"}, Validate: params.ValidateJSON})
		if err == nil && !res.Woke {
			err = fmt.Errorf("input to run %s did not wake it: %+v", inputs[i], res)
		}
		return err
	}); err != nil {
		return fmt.Errorf("send input: %w", err)
	}
	dur := time.Since(t0)
	rate := float64(n) / dur.Seconds()
	b.progress("waitceiling: InputSend to %d paused runs from %d goroutines in %s: %.0f inputs/s", n, waitSenders, dur.Round(time.Millisecond), rate)
	b.report("postgres_input_ceiling_per_s", rate, 0)

	due := now.Add(time.Hour)
	if _, err := pausedRuns(ctx, st, "sleep", n, now, store.WaitSpec{Kind: store.WaitSleep, Until: due}); err != nil {
		return err
	}
	t0 = time.Now()
	fired := 0
	for {
		k, err := st.TimersFire(ctx, store.TimersFireParams{Now: due, Limit: timerBatchSz})
		if err != nil {
			return fmt.Errorf("fire timers: %w", err)
		}
		fired += k
		if k < timerBatchSz {
			break
		}
	}
	fireDur := time.Since(t0)
	if fired != n {
		return fmt.Errorf("TimersFire fired %d timers, want %d", fired, n)
	}
	ms := float64(fireDur) / float64(time.Millisecond)
	b.progress("waitceiling: TimersFire fired %d due timers in batches of %d in %s", n, timerBatchSz, fireDur.Round(time.Millisecond))
	b.report("postgres_timer_fire_ceiling_ms", ms, 1)
	return st.Close()
}

// pausedRuns writes n RUNNING runs on the queue waits, begins a wait of
// spec in each and pauses them, as a worker's run that is suspended, and
// returns their IDs.
func pausedRuns(ctx context.Context, st store.Store, prefix string, n int, now time.Time, spec store.WaitSpec) ([]string, error) {
	ids := make([]string, n)
	runs := make([]store.Run, n)
	for i := range runs {
		ids[i] = prefix + "-" + engine.NewID()
		runs[i] = store.Run{ID: ids[i], Flow: flowWaitInput, State: store.RunRunning, Attempt: 1, Queue: waitsQueue,
			CreatedAt: now, UpdatedAt: now, StartedAt: now}
	}
	for lo := 0; lo < n; lo += 2_000 {
		if err := st.BatchWrite(ctx, store.Batch{Runs: runs[lo:min(lo+2_000, n)]}); err != nil {
			return nil, fmt.Errorf("write runs: %w", err)
		}
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	key := store.WaitTask(spec) + "/0"
	err = parallel(n, func(i int) error {
		tr, err := st.WaitBegin(ctx, store.WaitBeginParams{
			TaskRun: store.TaskRun{ID: engine.NewID(), RunID: ids[i], Key: key, Task: store.WaitTask(spec), State: store.TaskWaiting,
				FlowAttempt: 1, Input: in, InputHash: "h", CreatedAt: now},
			Spec: spec, At: now, EventsSince: now.Add(-store.DefaultEventRetention), Validate: params.ValidateJSON,
		})
		if err != nil {
			return fmt.Errorf("begin wait: %w", err)
		}
		if tr.State != store.TaskWaiting {
			return fmt.Errorf("wait of run %s is %s, want WAITING", ids[i], tr.State)
		}
		_, err = st.RunTransition(ctx, store.RunTransitionParams{ID: ids[i], From: []store.RunState{store.RunRunning},
			To: store.RunPaused, Owner: &store.Owner{}, At: now})
		return err
	})
	return ids, err
}

// measurePaused pauses waitRuns runs on WaitForInput through the server
// (the wait workers run them and suspend them), measures the database's
// growth per paused run, then resumes them all through the API
// (POST /api/v1/runs/{id}/input from waitSenders goroutines) and measures
// from the first input sent to the last run's end.
func measurePaused(ctx context.Context, b *bench) error {
	d := distOf(b)
	if err := d.startWaiters(ctx); err != nil {
		return err
	}
	n := b.n(waitRuns)
	before, err := schemaBytes(ctx, d.cl.db)
	if err != nil {
		return err
	}
	t0 := time.Now()
	ids, err := d.createWaitRuns(ctx, flowWaitInput, n, func(int) json.RawMessage { return nil })
	if err != nil {
		return fmt.Errorf("create runs: %w", err)
	}
	if err := d.waitPaused(ctx, flowWaitInput, n); err != nil {
		return err
	}
	b.progress("paused: %d runs created and PAUSED on WaitForInput in %s", n, time.Since(t0).Round(time.Millisecond))
	after, err := schemaBytes(ctx, d.cl.db)
	if err != nil {
		return err
	}
	perRun := float64(after-before) / float64(n)
	b.progress("paused: the database grew by %d bytes: %.0f per paused run", after-before, perRun)
	b.report("paused_run_bytes", perRun, 0)

	t0 = time.Now()
	if err := parallel(n, func(i int) error {
		_, err := d.cl.cl.SendInput(ctx, ids[i], apitype.InputRequest{Key: "go", Value: json.RawMessage(strconv.Itoa(i))})
		return err
	}); err != nil {
		return fmt.Errorf("send input: %w", err)
	}
	b.progress("paused: sent %d inputs in %s", n, time.Since(t0).Round(time.Millisecond))
	runs, end, err := d.waitRuns(ctx, flowWaitInput, n)
	if err != nil {
		return err
	}
	want := make(map[string]string, n)
	for i, id := range ids {
		want[id] = strconv.Itoa(i)
	}
	for _, r := range runs {
		if got := strings.TrimSpace(string(r.Result)); got != want[r.ID] {
			return fmt.Errorf("run %s returned %s, want the input sent to it, %s", r.ID, got, want[r.ID])
		}
	}
	dur := end.Sub(t0)
	rate := float64(n) / dur.Seconds()
	b.progress("paused: %d paused runs resumed and COMPLETED in %s: %.0f runs/s", n, dur.Round(time.Millisecond), rate)
	b.report("paused_runs_resumed_per_s", rate, 0)
	return nil
}

// measureTimers creates waitRuns runs that sleep until one instant (a
// durable timer each), far enough ahead for every run to begin its sleep
// before it, and measures per timer the lag from that instant to the
// resolution of the run's sleep step (its recorded end).
func measureTimers(ctx context.Context, b *bench) error {
	d := distOf(b)
	if err := d.startWaiters(ctx); err != nil {
		return err
	}
	n := b.n(waitRuns)
	due := time.Now().Add(timerLeadBase + time.Duration(n)*timerLeadPerRun).UTC()
	p, _ := json.Marshal(map[string]time.Time{"until": due})
	if _, err := d.createWaitRuns(ctx, flowSleepUntil, n, func(int) json.RawMessage { return p }); err != nil {
		return fmt.Errorf("create runs: %w", err)
	}
	if left := time.Until(due); left < time.Second {
		return fmt.Errorf("the %d runs were created %s before their timers are due; a run may begin its sleep late", n, left)
	}
	b.progress("timers: created %d runs sleeping until %s (in %s)", n, due.Format(time.RFC3339Nano), time.Until(due).Round(time.Millisecond))
	if _, _, err := d.waitRuns(ctx, flowSleepUntil, n); err != nil {
		return err
	}
	conn, err := pgx.Connect(ctx, d.cl.db)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT run_id, created_at, ended_at FROM task_runs WHERE task = 'sleep' AND state = 'COMPLETED'")
	if err != nil {
		return err
	}
	type step struct {
		run            string
		created, ended int64
	}
	steps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (step, error) {
		var s step
		err := r.Scan(&s.run, &s.created, &s.ended)
		return s, err
	})
	if err != nil {
		return err
	}
	if len(steps) != n {
		return fmt.Errorf("%d sleep steps COMPLETED, want %d", len(steps), n)
	}
	lag := make([]float64, 0, n)
	for _, s := range steps {
		if s.created >= due.UnixNano() {
			return fmt.Errorf("run %s began its sleep %s after it was due", s.run, time.Duration(s.created-due.UnixNano()))
		}
		lag = append(lag, float64(s.ended-due.UnixNano())/float64(time.Millisecond))
	}
	slices.Sort(lag)
	p50, p99 := percentile(lag, 0.5), percentile(lag, 0.99)
	b.progress("timers: %d timers due at one instant: lag to the sleep's end min %.2f ms, p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		n, lag[0], p50, p99, lag[len(lag)-1])
	b.report("timer_fire_lag_p99_ms", p99, 3)
	return nil
}
