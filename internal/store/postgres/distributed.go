package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

// The distributed mode: runs created on queues, claimed by workers under
// leases, distributed task runs, worker registrations, queue statistics and
// retention. Claims and take-backs select their rows with FOR UPDATE SKIP
// LOCKED, so concurrent servers never hand out or take back a row twice and
// never wait for each other's rows; the later one skips them.

// Literal SQL lists of states. Queries repeat the WHERE terms of the partial
// indexes of the migrations (0002 for the leased states) literally so that the planner can use
// them also in generic plans.
const (
	sqlLeasedRunStates = `state IN ('PENDING', 'RUNNING', 'CANCELLING', 'AWAITING_RETRY')`
	sqlFinalRunStates  = `('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')`
	sqlFinalTaskStates = `('COMPLETED', 'FAILED', 'TIMED_OUT', 'CACHED', 'CANCELLED', 'CRASHED')`
)

func nowIfZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

// runClaimSQL claims runs in one statement: the subquery locks the oldest
// matching SCHEDULED runs, skipping rows that concurrent claims hold, and
// the UPDATE moves them to PENDING; the creation of their events rides along.
// sqlClaimQueue matches the queues $1 of a claim. Claims of one queue (what
// servers send) compare with its single element, so that the claim index
// (queue, created_at, key...) yields the rows in claim order and the scan
// stops at the LIMIT; with = ANY the planner reads and sorts every candidate.
// Claims of several queues take the sorting path (claimSQL).
const sqlClaimQueue = `queue = ($1::text[])[1]`

// claimSQL returns the claim statement q for the number of queues claimed.
func claimSQL(q string, queues int) string {
	if queues == 1 {
		return q
	}
	return strings.Replace(q, sqlClaimQueue, "queue = ANY($1)", 1)
}

var runClaimSQL = `WITH claimed AS (
	UPDATE runs SET state = 'PENDING', worker_id = $4, lease_until = $5, updated_at = $6,
		owner_host = '', owner_pid = 0, owner_start = 0
	WHERE id IN (SELECT id FROM runs WHERE state = 'SCHEDULED' AND ` + sqlClaimQueue + ` AND flow = ANY($2)
		ORDER BY created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)
	RETURNING ` + runSelectCols + `
), ev AS (
	INSERT INTO events (run_id, from_state, to_state, cause, message, at)
	SELECT id, 'SCHEDULED', 'PENDING', $7, 'attempt ' || attempt || ' claimed by worker ' || $4::text, $6
	FROM claimed ORDER BY created_at, id
)
SELECT ` + runSelectCols + ` FROM claimed ORDER BY created_at, id`

// RunClaim moves the oldest matching SCHEDULED runs to PENDING, leased to
// p.WorkerID; see store.RunClaimParams.
func (s *Store) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Flows) == 0 {
		return nil, nil
	}
	out, err := s.Claim(ctx, store.ClaimParams{Runs: p})
	return out.Runs, err
}

// queueRunClaim adds to pb the statement of claim p; the claimed runs are
// stored in *out when the batch runs.
func queueRunClaim(pb *pgx.Batch, p store.RunClaimParams, out *[]store.Run) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Flows) == 0 {
		return
	}
	at := nowIfZero(p.At)
	pb.Queue(claimSQL(runClaimSQL, len(p.Queues)), p.Queues, p.Flows, int64(p.Limit), p.WorkerID, encTime(p.LeaseUntil), encTime(at),
		"worker:"+p.WorkerID).Query(func(rows pgx.Rows) (err error) {
		*out, err = collectRuns(rows, nil)
		return err
	})
}

// The claim lock of a worker, a transaction-level advisory lock (keys
// claimLockKey and the hash of the schema and the worker's id): every claim
// for the worker holds it shared, and a release of the worker's leases
// (LeasesRelease, WorkerRelease) takes it exclusive, so it waits for the
// claims in progress to commit or roll back and then sees what they
// claimed. A server that dies while it claims (the worker learns nothing
// of the claim and reports what it holds through another server) must not
// commit the claim after the release has looked: claims are explicit
// transactions, which commit only when the server sends COMMIT after its
// statement answered, and hold the lock from their start.
const (
	claimLockKey       = 0x636c6169 // "clai"
	claimLockSharedSQL = `SELECT pg_advisory_xact_lock_shared($1, hashtext(current_schema() || ':' || $2::text))`
	claimLockSQL       = `SELECT pg_advisory_xact_lock($1, hashtext(current_schema() || ':' || $2::text))`
)

// claimTx runs the claim statements that queue adds for worker in one
// transaction that first takes the worker's claim lock shared. BEGIN rides
// in the statements' batch (a transaction opened in a batch outlasts it),
// so a claim costs two round trips: the batch, then COMMIT.
func (s *Store) claimTx(ctx context.Context, op, worker string, queue func(pb *pgx.Batch) error) error {
	return s.retry(ctx, func() error {
		var pb pgx.Batch
		pb.Queue("BEGIN")
		pb.Queue(claimLockSharedSQL, int32(claimLockKey), worker)
		if err := queue(&pb); err != nil {
			return err
		}
		c, err := s.pool.Acquire(ctx)
		if err != nil {
			return translate(err, "%s: connect", op)
		}
		// A connection released inside a transaction (the COMMIT or the
		// ROLLBACK did not get through) is closed, which rolls it back.
		defer c.Release()
		if err := c.SendBatch(ctx, &pb).Close(); err != nil {
			c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
			return translate(err, "%s", op)
		}
		if s.claimed != nil {
			s.claimed()
		}
		_, err = c.Exec(ctx, "COMMIT")
		return translate(err, "%s: commit", op)
	})
}

// stopTaskRunsSQL cancels the PENDING task runs of run $1 and notifies
// their waiters when there were any.
var stopTaskRunsSQL = `WITH stopped AS (
	UPDATE task_runs SET state = 'CANCELLED', error = $2, ended_at = $3, worker_id = '', lease_until = 0,
		history = ` + historyAppend("history", "$4::text") + `
	WHERE run_id = $1 AND state = 'PENDING'
	RETURNING 1
)
SELECT pg_notify($5, 'done:' || $1::text) WHERE EXISTS (SELECT 1 FROM stopped)`

// runningTaskRunsNotifySQL notifies "cancel" for run $1 when distributed
// task runs of it are RUNNING. It looks through the run's own rows (the
// primary key): written as state = 'RUNNING', the generic plan of the
// prepared statement scanned the partial index of all RUNNING distributed
// task runs instead, dead entries included (after a large map, every run's
// end then cost milliseconds).
const runningTaskRunsNotifySQL = `SELECT pg_notify($2, 'cancel:' || $1::text) WHERE EXISTS
	(SELECT 1 FROM task_runs WHERE run_id = $1 AND state || '' = 'RUNNING' AND queue <> '')`

// queueStopTaskRuns adds to pb, for run r in its new state, the statements
// that cancel its PENDING task runs (store.StopsTaskRuns) and, when it
// ended, announce the distributed task runs of it still RUNNING so that
// servers tell their workers to stop them.
func (s *Store) queueStopTaskRuns(pb *pgx.Batch, r *store.Run, cause string, at time.Time) error {
	if !store.StopsTaskRuns(r.State) {
		return nil
	}
	e, err := encError(store.StoppedError(r.State))
	if err != nil {
		return err
	}
	h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskPending),
		To: string(store.TaskCancelled), Cause: cause, Message: store.StoppedMessage(r.State)}})
	if err != nil {
		return err
	}
	pb.Queue(stopTaskRunsSQL, r.ID, e, encTime(at), h, s.channel)
	if r.State.Final() {
		pb.Queue(runningTaskRunsNotifySQL, r.ID, s.channel)
	}
	return nil
}

// taskRunClaimSQL claims the oldest PENDING task runs of RUNNING runs. The
// run's state is a scalar subquery (a primary-key lookup per candidate), not
// an EXISTS: the planner turns an EXISTS into a join whose row estimate can
// be tiny, and then prefers reading and sorting every PENDING row of the
// queue to the claim index scan that stops at the LIMIT.
var taskRunClaimSQL = `UPDATE task_runs SET state = 'RUNNING', worker_id = $4, lease_until = $5,
	started_at = CASE WHEN started_at = 0 THEN $6 ELSE started_at END,
	history = ` + historyAppend("history", "$7::text") + `
	WHERE (run_id, key, id) IN (SELECT run_id, key, id FROM task_runs
		WHERE state = 'PENDING' AND queue <> '' AND ` + sqlClaimQueue + ` AND task = ANY($2)
		AND (SELECT runs.state FROM runs WHERE runs.id = task_runs.run_id) = 'RUNNING'
		ORDER BY created_at, run_id, key, id LIMIT $3 FOR UPDATE SKIP LOCKED)
	RETURNING ` + strings.Replace(taskRunSelectCols, "history", "NULL::text", 1) // see store.TaskRunClaimParams

// TaskRunClaim moves the oldest matching PENDING distributed task runs to
// RUNNING, leased to p.WorkerID; see store.TaskRunClaimParams.
func (s *Store) TaskRunClaim(ctx context.Context, p store.TaskRunClaimParams) ([]store.TaskRun, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
		return nil, nil
	}
	out, err := s.Claim(ctx, store.ClaimParams{Tasks: []store.TaskRunClaimParams{p}})
	if err != nil {
		return nil, err
	}
	return out.TaskRuns[0], nil
}

// queueTaskRunClaim adds to pb the statement of claim p; the claimed task
// runs are stored in *out when the batch runs.
func queueTaskRunClaim(pb *pgx.Batch, p store.TaskRunClaimParams, out *[]store.TaskRun) error {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
		return nil
	}
	at := nowIfZero(p.At)
	h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskPending),
		To: string(store.TaskRunning), Cause: "worker:" + p.WorkerID, Message: "claimed by worker " + p.WorkerID}})
	if err != nil {
		return err
	}
	pb.Queue(claimSQL(taskRunClaimSQL, len(p.Queues)), p.Queues, p.Tasks, int64(p.Limit), p.WorkerID, encTime(p.LeaseUntil), encTime(at),
		h).Query(func(rows pgx.Rows) (err error) {
		*out, err = collectTaskRuns(rows, nil)
		return err
	})
	return nil
}

// sortClaimed orders claimed task runs as the claim took them (RETURNING
// has no order).
func sortClaimed(out []store.TaskRun) {
	slices.SortFunc(out, func(a, b store.TaskRun) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.RunID+"\x00"+a.Key+"\x00"+a.ID, b.RunID+"\x00"+b.Key+"\x00"+b.ID)
	})
}

// taskRunCompleteSQL applies one completion if the task run is RUNNING and
// leased to the worker, writes its cache entry only then, and notifies the
// run's waiters; it returns one row when applied.
var taskRunCompleteSQL = `WITH done AS (
	UPDATE task_runs SET state = $5, attempts = $6, result = $7, result_ref = $8, error = $9,
		ended_at = $10, lease_until = 0, history = ` + historyAppend("history", "$11::text") + `
	WHERE run_id = $1 AND key = $2 AND id = $3 AND state = 'RUNNING' AND worker_id = $4 AND worker_id <> ''
	RETURNING run_id
), cached AS (
	INSERT INTO cache (key, task, result, result_ref, run_id, task_run_id, created_at, expires_at)
	SELECT $12::text, $13::text, $14::text, $15::text, $16::text, $17::text, $18::bigint, $19::bigint FROM done WHERE $20::bool
	ON CONFLICT (key) DO UPDATE SET task = excluded.task, result = excluded.result,
		result_ref = excluded.result_ref, run_id = excluded.run_id, task_run_id = excluded.task_run_id,
		created_at = excluded.created_at, expires_at = excluded.expires_at
)
SELECT pg_notify($21, 'done:' || run_id) FROM done`

// taskRunsCompleteSQL applies the completions of its array parameters (one
// element each) as taskRunCompleteSQL does without a cache entry, in the
// arrays' order (the primary-key order), and returns the refs applied.
var taskRunsCompleteSQL = `WITH c AS (
	SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
		$8::text[], $9::text[], $10::bigint[], $11::text[]) WITH ORDINALITY
		AS c(run_id, key, id, worker_id, state, attempts, result, result_ref, error, ended_at, history, n)
), done AS (
	UPDATE task_runs t SET state = c.state, attempts = c.attempts, result = c.result, result_ref = c.result_ref,
		error = c.error, ended_at = c.ended_at, lease_until = 0, history = ` + historyAppend("t.history", "c.history") + `
	FROM (SELECT * FROM c ORDER BY n) c
	WHERE t.run_id = c.run_id AND t.key = c.key AND t.id = c.id AND t.state = 'RUNNING' AND t.worker_id = c.worker_id
		AND t.worker_id <> ''
	RETURNING t.run_id, t.key, t.id
)
SELECT d.run_id, d.key, d.id FROM done d, LATERAL (SELECT pg_notify($12, 'done:' || d.run_id)) n`

// TaskRunComplete applies the completions whose task run is still RUNNING
// and leased to the reporting worker, and returns their refs. All
// completions are one pgx.Batch: one transaction, one round trip. They are
// applied in primary-key order, the order in which the other writers lock
// task runs (a worker reports them in the order they finished).
func (s *Store) TaskRunComplete(ctx context.Context, cs []store.TaskRunCompletion) ([]store.TaskRunRef, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	cs = sortCompletions(cs)
	var applied []store.TaskRunRef
	err := s.sendBatch(ctx, func(pb *pgx.Batch) error {
		applied = nil
		return s.queueCompletions(pb, cs, &applied)
	})
	if err != nil {
		return nil, translate(err, "complete task runs")
	}
	return applied, nil
}

// sortCompletions returns cs in primary-key order (a copy), the order in
// which every writer locks task runs.
func sortCompletions(cs []store.TaskRunCompletion) []store.TaskRunCompletion {
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(x, y store.TaskRunCompletion) int {
		return cmp.Or(strings.Compare(x.Ref.RunID, y.Ref.RunID), strings.Compare(x.Ref.Key, y.Ref.Key),
			strings.Compare(x.Ref.ID, y.Ref.ID))
	})
	return cs
}

// Claim applies a worker's claim in one transaction: its statements
// (completions in primary-key order, as TaskRunComplete, then the run claim
// and the task-run claims) travel in one batch, under the worker's claim
// lock; see claimTx.
func (s *Store) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	cs := sortCompletions(p.Completions)
	var out store.ClaimResult
	worker := p.Worker()
	err := s.claimTx(ctx, "claim for worker "+worker, worker, func(pb *pgx.Batch) error {
		out = store.ClaimResult{TaskRuns: make([][]store.TaskRun, len(p.Tasks))} // a retried transaction starts again
		if err := s.queueCompletions(pb, cs, &out.Applied); err != nil {
			return err
		}
		queueRunClaim(pb, p.Runs, &out.Runs)
		for i, tp := range p.Tasks {
			if err := queueTaskRunClaim(pb, tp, &out.TaskRuns[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.ClaimResult{}, err
	}
	for _, trs := range out.TaskRuns {
		sortClaimed(trs)
	}
	return out, nil
}

// queueCompletions adds to pb the statements that apply cs; the refs of
// the applied ones are appended to *applied when the batch runs.
func (s *Store) queueCompletions(pb *pgx.Batch, cs []store.TaskRunCompletion, applied *[]store.TaskRunRef) error {
	// The completions without a cache entry (nearly all) are one statement:
	// a statement per completion cost more than the updates themselves.
	var (
		runIDs, keys, ids, workers, states, results, refs, errs, hists []*string
		attempts, ends                                                 []int64
		plain                                                          []store.TaskRunRef
	)
	str := func(v string) *string { return &v }
	for i := range cs {
		c := &cs[i]
		at := nowIfZero(c.At)
		hist := c.History
		if n := len(hist); n == 0 || hist[n-1].To != string(c.State) {
			msg := ""
			if c.Error != nil {
				msg = c.Error.Message
			}
			hist = append(slices.Clip(hist), store.Transition{At: at.UTC(), From: string(store.TaskRunning),
				To: string(c.State), Cause: "worker:" + c.WorkerID, Message: msg})
		}
		h, err := encHistory(hist)
		if err != nil {
			return fmt.Errorf("task run %s: %w", c.Ref.ID, err)
		}
		e, err := encError(c.Error)
		if err != nil {
			return fmt.Errorf("task run %s: %w", c.Ref.ID, err)
		}
		if c.Cache == nil {
			runIDs, keys, ids = append(runIDs, str(c.Ref.RunID)), append(keys, str(c.Ref.Key)), append(ids, str(c.Ref.ID))
			workers, states = append(workers, str(c.WorkerID)), append(states, str(string(c.State)))
			attempts, ends = append(attempts, int64(c.Attempts)), append(ends, encTime(at))
			results, refs = append(results, encResult(c.Result, c.ResultRef)), append(refs, str(c.ResultRef))
			errs, hists = append(errs, e), append(hists, h)
			plain = append(plain, c.Ref)
			continue
		}
		ce := *c.Cache
		pb.Queue(taskRunCompleteSQL, c.Ref.RunID, c.Ref.Key, c.Ref.ID, c.WorkerID, string(c.State),
			int64(c.Attempts), encResult(c.Result, c.ResultRef), c.ResultRef, e, encTime(at), h,
			ce.Key, ce.Task, encResult(ce.Result, ce.ResultRef), ce.ResultRef, ce.RunID, ce.TaskRunID, encTime(ce.CreatedAt),
			encTime(ce.ExpiresAt), true, s.channel).Query(func(rows pgx.Rows) error {
			n := 0
			for rows.Next() {
				n++
			}
			if n > 0 {
				*applied = append(*applied, c.Ref)
			}
			return rows.Err()
		})
	}
	if len(plain) == 0 {
		return nil
	}
	pb.Queue(taskRunsCompleteSQL, runIDs, keys, ids, workers, states, attempts, results, refs, errs, ends, hists,
		s.channel).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var r store.TaskRunRef
			if err := rows.Scan(&r.RunID, &r.Key, &r.ID); err != nil {
				return err
			}
			*applied = append(*applied, r)
		}
		return rows.Err()
	})
	return nil
}

// TaskRunFinished returns those of refs whose task run is in a final state.
func (s *Store) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	runIDs, keys, ids := make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs))
	for i, r := range refs {
		runIDs[i], keys[i], ids[i] = r.RunID, r.Key, r.ID
	}
	// Only the outcome: waiters need neither the input nor the history.
	rows, err := s.pool.Query(ctx, "SELECT run_id, key, id, task, state, attempts, result, result_ref, error"+
		" FROM task_runs WHERE (run_id, key, id) IN (SELECT * FROM unnest($1::text[], $2::text[], $3::text[]))"+
		" AND state IN "+sqlFinalTaskStates, runIDs, keys, ids)
	if err != nil {
		return nil, translate(err, "finished task runs")
	}
	defer rows.Close()
	var out []store.TaskRun
	for rows.Next() {
		var (
			t             store.TaskRun
			state         string
			attempts      int64
			result, errJS *string
		)
		if err := rows.Scan(&t.RunID, &t.Key, &t.ID, &t.Task, &state, &attempts, &result, &t.ResultRef, &errJS); err != nil {
			return nil, translate(err, "finished task runs")
		}
		t.State, t.Attempts, t.Result = store.TaskState(state), int(attempts), decJSON(result)
		if t.Error, err = decError(errJS); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, translate(rows.Err(), "finished task runs")
}

// LeasesExtend extends the leases held by the workers to until (never
// shortening one) and records that they were seen now, in one transaction.
// It locks the rows it updates in the writers' order (see retry): the
// workers, then their runs by id, then their task runs by primary key; in
// the order of an index or of the heap, a lease extension deadlocked with
// batches, completions and releases locking the same rows by key.
func (s *Store) LeasesExtend(ctx context.Context, workerIDs []string, until time.Time) error {
	if len(workerIDs) == 0 {
		return nil
	}
	now := time.Now()
	err := s.sendBatch(ctx, func(pb *pgx.Batch) error {
		pb.Queue(leasesExtendWorkersSQL, workerIDs, encTime(now))
		pb.Queue(leasesExtendRunsSQL, workerIDs, encTime(until))
		pb.Queue(leasesExtendTaskRunsSQL, workerIDs, encTime(until))
		return nil
	})
	return translate(err, "extend leases")
}

// The statements of LeasesExtend. Each locks its rows in key order in an
// ARRAY subquery (an InitPlan, run to the end before the UPDATE starts)
// and the UPDATE repeats the conditions, which a concurrent change may
// have made false meanwhile.
var (
	leasesExtendWorkersSQL = `UPDATE workers SET last_seen = GREATEST(last_seen, $2)
	WHERE id = ANY(ARRAY(SELECT id FROM workers WHERE id = ANY($1) ORDER BY id FOR UPDATE))`
	leasesExtendRunsSQL = `UPDATE runs SET lease_until = GREATEST(lease_until, $2)
	WHERE id = ANY(ARRAY(SELECT id FROM runs WHERE ` + sqlLeasedRunStates + ` AND worker_id <> '' AND worker_id = ANY($1)
		ORDER BY id FOR UPDATE))
	AND ` + sqlLeasedRunStates + ` AND worker_id <> '' AND worker_id = ANY($1)`
	leasesExtendTaskRunsSQL = `UPDATE task_runs SET lease_until = GREATEST(lease_until, $2)
	WHERE (run_id, key, id) IN (SELECT run_id, key, id FROM task_runs
		WHERE state = 'RUNNING' AND queue <> '' AND worker_id = ANY($1) ORDER BY run_id, key, id FOR UPDATE)
	AND state = 'RUNNING' AND queue <> '' AND worker_id = ANY($1)`
)

// takeBack applies to a run held by a worker the transitions that give it
// back: it appends the events to b and the final row to b.Runs, and reports
// whether the run was rescheduled. reason names what happened to the worker.
func takeBack(r *store.Run, b *store.Batch, at time.Time, cause string, crash bool,
	maxAttempts int, reason string) (rescheduled bool) {
	step := func(p store.RunTransitionParams) {
		b.Events = append(b.Events, store.ApplyTransition(r, &p, at))
	}
	switch {
	case r.State == store.RunCancelling:
		msg := fmt.Sprintf("cancelled: %s while the run was cancelling", reason)
		step(store.RunTransitionParams{To: store.RunCancelled, Cause: cause, Message: msg,
			Error: &store.ErrorInfo{Message: msg, Kind: "cancelled"}})
	case crash:
		msg := fmt.Sprintf("attempt %d crashed: %s", r.Attempt, reason)
		if r.State == store.RunAwaitingRetry {
			// Its attempt had failed and its worker waited out the flow's
			// retry delay: the retry is rescheduled like a crashed attempt.
			msg = fmt.Sprintf("attempt %d failed and its retry was lost: %s", r.Attempt, reason)
		}
		step(store.RunTransitionParams{To: store.RunCrashed, Cause: cause, Message: msg,
			Error: &store.ErrorInfo{Message: msg, Kind: "crashed"}})
		if r.Attempt < maxAttempts {
			rescheduled = true
			step(store.RunTransitionParams{To: store.RunAwaitingRetry, Cause: "policy",
				Message: fmt.Sprintf("attempt %d of %d crashed; retrying", r.Attempt, maxAttempts)})
			step(store.RunTransitionParams{To: store.RunScheduled, NextAttempt: true, Cause: "policy",
				Message: fmt.Sprintf("attempt %d scheduled on queue %s", r.Attempt+1, r.Queue)})
		}
	default:
		rescheduled = true
		step(store.RunTransitionParams{To: store.RunScheduled, NextAttempt: true, Cause: cause,
			Message: fmt.Sprintf("%s; attempt %d scheduled", reason, r.Attempt+1)})
	}
	b.Runs = append(b.Runs, *r)
	return rescheduled
}

// releaseTaskRunsSQL puts RUNNING task runs (by key) back to PENDING without
// a worker, appending a transition to each one's history.
var releaseTaskRunsSQL = `UPDATE task_runs t SET state = 'PENDING', worker_id = '', lease_until = 0,
	history = ` + historyAppend("t.history", "r.h") + `
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS r(run_id, key, id, h)
	WHERE t.run_id = r.run_id AND t.key = r.key AND t.id = r.id AND t.state = 'RUNNING'`

// releaseTaskRuns queues the statement that puts trs (RUNNING, locked) back
// to PENDING, and their notifications.
func releaseTaskRuns(pb *pgx.Batch, trs []store.TaskRun, ns *notes, at time.Time, cause string,
	message func(t *store.TaskRun) string) error {
	if len(trs) == 0 {
		return nil
	}
	var runIDs, keys, ids, hs []string
	for i := range trs {
		t := &trs[i]
		h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskRunning),
			To: string(store.TaskPending), Cause: cause, Message: message(t)}})
		if err != nil {
			return err
		}
		runIDs, keys, ids, hs = append(runIDs, t.RunID), append(keys, t.Key), append(ids, t.ID), append(hs, *h)
		ns.Add("tasks", t.Queue)
	}
	pb.Queue(releaseTaskRunsSQL, runIDs, keys, ids, hs)
	return nil
}

// queueStopAfterRelease adds to pb, after the statements that take back
// runs (their new rows) and put the task runs trs back to PENDING, the
// cancellation of the PENDING task runs of each of those runs, and of the
// runs of trs, that is cancelling or ended (store.StopsTaskRuns).
func (s *Store) queueStopAfterRelease(ctx context.Context, tx pgx.Tx, pb *pgx.Batch, runs []store.Run,
	trs []store.TaskRun, cause string, at time.Time) error {
	states := map[string]store.RunState{}
	for _, r := range runs {
		states[r.ID] = r.State
	}
	var ask []string
	for _, t := range trs {
		if _, ok := states[t.RunID]; !ok {
			states[t.RunID] = ""
			ask = append(ask, t.RunID)
		}
	}
	if len(ask) > 0 {
		rows, err := tx.Query(ctx, "SELECT id, state FROM runs WHERE id = ANY($1)", ask)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, state string
			if err := rows.Scan(&id, &state); err != nil {
				rows.Close()
				return err
			}
			states[id] = store.RunState(state)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	ids := slices.Sorted(maps.Keys(states)) // one lock order for concurrent writers
	for _, id := range ids {
		if err := s.queueStopTaskRuns(pb, &store.Run{ID: id, State: states[id]}, cause, at); err != nil {
			return err
		}
	}
	return nil
}

// LeasesExpire takes back the expired leases of runs and task runs in one
// transaction; see store.LeasesExpireParams.
func (s *Store) LeasesExpire(ctx context.Context, p store.LeasesExpireParams) (store.LeaseExpiry, error) {
	at := nowIfZero(p.At)
	var out store.LeaseExpiry
	err := s.inTx(ctx, "expire leases", func(tx pgx.Tx) error {
		out = store.LeaseExpiry{}
		q, args, cause := " AND lease_until <> 0 AND lease_until < $1 ORDER BY lease_until, id FOR UPDATE SKIP LOCKED",
			[]any{encTime(at)}, "lease"
		if p.RunID != "" {
			// One run given back by its worker: wait for its lock rather
			// than skip it, or the worker would be told it holds nothing.
			q, args, cause = " AND id = $1 AND worker_id <> '' AND worker_id = $2 AND ($3::bigint = 0 OR attempt = $3::bigint) FOR UPDATE",
				[]any{p.RunID, p.WorkerID, int64(p.Attempt)}, "worker:"+p.WorkerID
		}
		runs, err := collectRuns(tx.Query(ctx, "SELECT "+runSelectCols+" FROM runs WHERE "+sqlLeasedRunStates+q, args...))
		if err != nil {
			return err
		}
		var trs []store.TaskRun
		if p.RunID == "" {
			trs, err = collectTaskRuns(tx.Query(ctx, "SELECT "+taskRunSelectCols+" FROM task_runs WHERE state = 'RUNNING'"+
				" AND queue <> '' AND lease_until <> 0 AND lease_until < $1 ORDER BY lease_until, run_id, key, id"+
				" FOR UPDATE SKIP LOCKED", encTime(at)))
			if err != nil {
				return err
			}
		}
		if len(runs) == 0 && len(trs) == 0 {
			return nil
		}
		var (
			b  store.Batch
			ns notes
			pb pgx.Batch
		)
		for _, r := range runs {
			reason := fmt.Sprintf("the lease of worker %s expired at %s", r.WorkerID,
				r.LeaseUntil.Format(time.RFC3339Nano))
			if p.RunID != "" {
				reason = store.GiveBackReason(r.WorkerID, p.Reason)
			}
			if takeBack(&r, &b, at, cause, true, p.MaxAttempts, reason) {
				out.Rescheduled++
			}
			out.Crashed = append(out.Crashed, roundRun(r))
		}
		if err := queueBatch(&pb, &b, &ns); err != nil {
			return err
		}
		out.TaskRuns = len(trs)
		if err := releaseTaskRuns(&pb, trs, &ns, at, "lease", func(t *store.TaskRun) string {
			return fmt.Sprintf("the lease of worker %s expired at %s", t.WorkerID, t.LeaseUntil.Format(time.RFC3339Nano))
		}); err != nil {
			return err
		}
		if err := s.queueStopAfterRelease(ctx, tx, &pb, b.Runs, trs, "lease", at); err != nil {
			return err
		}
		s.queueNotes(&pb, &ns)
		return tx.SendBatch(ctx, &pb).Close()
	})
	if err != nil {
		return store.LeaseExpiry{}, err
	}
	return out, nil
}

// WorkerUpsert registers or updates w.
func (s *Store) WorkerUpsert(ctx context.Context, w store.Worker) error {
	if w.LastSeen.IsZero() {
		w.LastSeen = time.Now()
	}
	enc := func(v any, empty bool) (*string, error) {
		if empty {
			return nil, nil
		}
		b, err := json.Marshal(v)
		s := string(b)
		return &s, err
	}
	var vals [4]*string
	var err error
	for i, x := range []struct {
		v     any
		empty bool
	}{{w.Queues, len(w.Queues) == 0}, {w.Flows, len(w.Flows) == 0}, {w.Tasks, len(w.Tasks) == 0},
		{w.Slots, len(w.Slots) == 0}} {
		if vals[i], err = enc(x.v, x.empty); err != nil {
			return fmt.Errorf("register worker %s: %w", w.ID, err)
		}
	}
	_, err = s.pool.Exec(ctx, `INSERT INTO workers (id, name, host, pid, queues, flows, tasks, slots,
		capacity, started_at, last_seen) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host, pid = excluded.pid,
		queues = excluded.queues, flows = excluded.flows, tasks = excluded.tasks, slots = excluded.slots,
		capacity = excluded.capacity, started_at = excluded.started_at, last_seen = excluded.last_seen`,
		w.ID, w.Name, w.Host, int64(w.PID), vals[0], vals[1], vals[2], vals[3], int64(w.Capacity),
		encTime(w.StartedAt), encTime(w.LastSeen))
	return translate(err, "register worker %s", w.ID)
}

// WorkerList returns the workers seen at or after seenSince, by ID.
func (s *Store) WorkerList(ctx context.Context, seenSince time.Time) ([]store.Worker, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, name, host, pid, queues, flows, tasks, slots, capacity,
		started_at, last_seen FROM workers WHERE last_seen >= $1 ORDER BY id`, encTime(seenSince))
	if err != nil {
		return nil, translate(err, "list workers")
	}
	defer rows.Close()
	var out []store.Worker
	for rows.Next() {
		var (
			w                            store.Worker
			pid, capacity, started, seen int64
			queues, flows, tasks, slots  *string
		)
		if err := rows.Scan(&w.ID, &w.Name, &w.Host, &pid, &queues, &flows, &tasks, &slots, &capacity,
			&started, &seen); err != nil {
			return nil, translate(err, "list workers")
		}
		w.PID, w.Capacity = int(pid), int(capacity)
		w.StartedAt, w.LastSeen = decTime(started), decTime(seen)
		for _, x := range []struct {
			raw *string
			dst any
		}{{queues, &w.Queues}, {flows, &w.Flows}, {tasks, &w.Tasks}, {slots, &w.Slots}} {
			if x.raw == nil {
				continue
			}
			if err := json.Unmarshal([]byte(*x.raw), x.dst); err != nil {
				return nil, fmt.Errorf("list workers: worker %s: %w", w.ID, err)
			}
		}
		out = append(out, w)
	}
	return out, translate(rows.Err(), "list workers")
}

// WorkerRelease deregisters a worker and gives back its runs and task runs.
func (s *Store) WorkerRelease(ctx context.Context, workerID string) error {
	return s.release(ctx, workerID, nil)
}

// LeasesRelease gives back the claims a worker does not hold (see store.Store).
func (s *Store) LeasesRelease(ctx context.Context, p store.LeasesReleaseParams) error {
	if p.WorkerID == "" {
		return nil
	}
	return s.release(ctx, p.WorkerID, &p)
}

// release gives back a worker's runs and task runs: with keep nil it
// deregisters the worker and releases everything; otherwise only unstarted
// runs and task runs missing from keep.
func (s *Store) release(ctx context.Context, workerID string, keep *store.LeasesReleaseParams) error {
	at := time.Now()
	cause := "worker:" + workerID
	reason := "worker stopped"
	runStates := sqlLeasedRunStates
	if keep != nil {
		reason = "claimed by a worker that never received it"
		runStates = "state = 'PENDING'"
	}
	return s.inTx(ctx, "release worker "+workerID, func(tx pgx.Tx) error {
		// Wait for the worker's claims in progress (see claimLockKey).
		if _, err := tx.Exec(ctx, claimLockSQL, int32(claimLockKey), workerID); err != nil {
			return err
		}
		if keep == nil {
			if _, err := tx.Exec(ctx, "DELETE FROM workers WHERE id = $1", workerID); err != nil {
				return err
			}
		}
		if workerID == "" {
			return nil // local runs are nobody's lease
		}
		runs, err := collectRuns(tx.Query(ctx, "SELECT "+runSelectCols+" FROM runs WHERE "+runStates+
			" AND worker_id <> '' AND worker_id = $1 ORDER BY id FOR UPDATE", workerID))
		if err != nil {
			return err
		}
		trs, err := collectTaskRuns(tx.Query(ctx, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE state = 'RUNNING' AND queue <> '' AND worker_id = $1"+
			" ORDER BY run_id, key, id FOR UPDATE", workerID))
		if err != nil {
			return err
		}
		if keep != nil {
			runs = slices.DeleteFunc(runs, func(r store.Run) bool { return slices.Contains(keep.KeepRuns, r.ID) })
			trs = slices.DeleteFunc(trs, func(t store.TaskRun) bool {
				return slices.Contains(keep.KeepTaskRuns, store.TaskRunRef{RunID: t.RunID, Key: t.Key, ID: t.ID})
			})
		}
		var (
			b  store.Batch
			ns notes
			pb pgx.Batch
		)
		for _, r := range runs {
			takeBack(&r, &b, at, cause, false, 0, reason)
		}
		if err := queueBatch(&pb, &b, &ns); err != nil {
			return err
		}
		if err := releaseTaskRuns(&pb, trs, &ns, at, cause, func(*store.TaskRun) string { return reason }); err != nil {
			return err
		}
		if err := s.queueStopAfterRelease(ctx, tx, &pb, b.Runs, trs, cause, at); err != nil {
			return err
		}
		if pb.Len() == 0 {
			return nil
		}
		s.queueNotes(&pb, &ns)
		return tx.SendBatch(ctx, &pb).Close()
	})
}

// RunStopList returns the CANCELLING runs and the finished runs with
// RUNNING distributed task runs, by ID.
func (s *Store) RunStopList(ctx context.Context) ([]store.RunStop, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, attempt FROM (
		SELECT id, attempt FROM runs WHERE state = 'CANCELLING'
		UNION SELECT id, attempt FROM runs WHERE id IN (SELECT run_id FROM task_runs
			WHERE state = 'RUNNING' AND queue <> '') AND state IN `+sqlFinalRunStates+`
	) AS stop ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, translate(err, "list runs to stop")
	}
	defer rows.Close()
	var out []store.RunStop
	for rows.Next() {
		var (
			r       store.RunStop
			attempt int64
		)
		if err := rows.Scan(&r.RunID, &attempt); err != nil {
			return nil, translate(err, "list runs to stop")
		}
		r.Attempt = int(attempt)
		out = append(out, r)
	}
	return out, translate(rows.Err(), "list runs to stop")
}

// liveWorkerWindow is how recently a worker must have been seen for
// QueueList to list its queues.
const liveWorkerWindow = time.Minute

// QueueList returns the statistics of the queues with unfinished work or a
// live worker, by name. The counts come from one snapshot (one statement).
func (s *Store) QueueList(ctx context.Context) ([]store.QueueStats, error) {
	rows, err := s.pool.Query(ctx, `WITH r AS (
		SELECT queue,
			count(*) FILTER (WHERE state = 'SCHEDULED') AS scheduled,
			count(*) FILTER (WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING')) AS running,
			min(created_at) FILTER (WHERE state = 'SCHEDULED') AS oldest
		FROM runs WHERE queue <> '' AND state NOT IN `+sqlFinalRunStates+` GROUP BY queue
	), t AS (
		SELECT queue,
			count(*) FILTER (WHERE state = 'PENDING') AS pending,
			count(*) FILTER (WHERE state = 'RUNNING') AS running
		FROM task_runs WHERE queue <> '' AND state IN ('PENDING', 'RUNNING') GROUP BY queue
	), w AS (
		SELECT DISTINCT q AS queue FROM workers, json_array_elements_text(queues::json) AS q
		WHERE last_seen >= $1 AND queues IS NOT NULL AND q <> ''
	), names AS (
		SELECT queue FROM r UNION SELECT queue FROM t UNION SELECT queue FROM w
	)
	SELECT n.queue, coalesce(r.scheduled, 0), coalesce(r.running, 0), coalesce(t.pending, 0),
		coalesce(t.running, 0), coalesce(r.oldest, 0)
	FROM names n LEFT JOIN r ON r.queue = n.queue LEFT JOIN t ON t.queue = n.queue
	ORDER BY n.queue COLLATE "C"`, encTime(time.Now().Add(-liveWorkerWindow)))
	if err != nil {
		return nil, translate(err, "list queues")
	}
	defer rows.Close()
	out := []store.QueueStats{}
	for rows.Next() {
		var (
			x                                              store.QueueStats
			scheduled, running, tpending, trunning, oldest int64
		)
		if err := rows.Scan(&x.Queue, &scheduled, &running, &tpending, &trunning, &oldest); err != nil {
			return nil, translate(err, "list queues")
		}
		x.RunsScheduled, x.RunsRunning = int(scheduled), int(running)
		x.TasksPending, x.TasksRunning = int(tpending), int(trunning)
		x.OldestWaiting = decTime(oldest)
		out = append(out, x)
	}
	return out, translate(rows.Err(), "list queues")
}

// defaultRetentionLimit is the number of runs RetentionDelete deletes when
// RetentionParams.Limit is 0.
const defaultRetentionLimit = 1000

// RetentionDelete deletes up to p.Limit finished runs that ended before
// p.Before with everything recorded for them, in one transaction, and
// returns the blob references nothing uses any more. Runs that a concurrent
// transaction holds are skipped (the next call deletes them).
func (s *Store) RetentionDelete(ctx context.Context, p store.RetentionParams) (store.RetentionResult, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultRetentionLimit
	}
	var out store.RetentionResult
	err := s.inTx(ctx, "delete old runs", func(tx pgx.Tx) error {
		out = store.RetentionResult{}
		rows, err := tx.Query(ctx, "SELECT id, result_ref FROM runs WHERE ended_at <> 0 AND ended_at < $1"+
			" AND state IN "+sqlFinalRunStates+" ORDER BY ended_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
			encTime(p.Before), int64(limit))
		if err != nil {
			return err
		}
		var ids []string
		refs := map[string]struct{}{}
		for rows.Next() {
			var id, ref string
			if err := rows.Scan(&id, &ref); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			if ref != "" {
				refs[ref] = struct{}{}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		var pb pgx.Batch
		collect := func(rows pgx.Rows) error {
			for rows.Next() {
				var ref string
				if err := rows.Scan(&ref); err != nil {
					return err
				}
				if ref != "" {
					refs[ref] = struct{}{}
				}
			}
			return rows.Err()
		}
		pb.Queue("DELETE FROM task_runs WHERE run_id = ANY($1) RETURNING result_ref", ids).Query(collect)
		pb.Queue("DELETE FROM cache WHERE run_id = ANY($1) RETURNING result_ref", ids).Query(collect)
		pb.Queue("DELETE FROM events WHERE run_id = ANY($1)", ids)
		pb.Queue("DELETE FROM logs WHERE run_id = ANY($1)", ids)
		pb.Queue("DELETE FROM runs WHERE id = ANY($1)", ids)
		if err := tx.SendBatch(ctx, &pb).Close(); err != nil {
			return err
		}
		out.Runs = len(ids)
		if len(refs) == 0 {
			return nil
		}
		cand := make([]string, 0, len(refs))
		for ref := range refs {
			cand = append(cand, ref)
		}
		rows, err = tx.Query(ctx, `SELECT ref FROM unnest($1::text[]) AS ref
			WHERE NOT EXISTS (SELECT 1 FROM runs WHERE result_ref = ref AND result_ref <> '')
			AND NOT EXISTS (SELECT 1 FROM task_runs WHERE result_ref = ref AND result_ref <> '')
			AND NOT EXISTS (SELECT 1 FROM cache WHERE result_ref = ref AND result_ref <> '')
			ORDER BY ref COLLATE "C"`, cand)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var ref string
			if err := rows.Scan(&ref); err != nil {
				return err
			}
			out.OrphanRefs = append(out.OrphanRefs, ref)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		slices.Sort(out.OrphanRefs)
		return nil
	})
	if err != nil {
		return store.RetentionResult{}, err
	}
	return out, nil
}
