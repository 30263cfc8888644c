package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The distributed mode of this backend: claims of runs and task runs by
// workers, completions, lease extension, and the statements of the core's
// take-backs (tx.StopTaskRuns, tx.ReleaseTaskRuns). Claims select their rows
// with FOR UPDATE SKIP LOCKED, so concurrent servers never hand out a row
// twice and never wait for each other's rows; the later one skips them.

// runClaimSQL claims runs in one statement: the subquery locks the oldest
// matching SCHEDULED runs, skipping rows that concurrent claims hold, and
// the UPDATE moves them to PENDING; the creation of their events rides along.
// sqlClaimQueue matches the queues $1 of a claim. Claims of one queue (what
// servers send) compare with its single element, so that the claim index
// (runs_claim, on queue then the claim order; the task runs' likewise)
// yields the rows in claim order and the scan stops at the LIMIT; with
// = ANY the planner reads and sorts every candidate.
// Claims of several queues take the sorting path (claimSQL).
const sqlClaimQueue = `queue = ($1::text[])[1]`

// claimSQL returns the claim statement q for the number of queues claimed.
func claimSQL(q string, queues int) string {
	if queues == 1 {
		return q
	}
	return strings.Replace(q, sqlClaimQueue, "queue = ANY($1)", 1)
}

// The candidates beyond what a limited queue has left (queueCapSQL) stay
// locked, unclaimed, until the claim commits.
var runClaimSQL = `WITH cand AS (
	SELECT id, queue, scheduled_at, created_at FROM runs WHERE state = 'SCHEDULED' AND ` + sqlClaimQueue + ` AND flow = ANY($2)
		AND scheduled_at <= $6 ORDER BY scheduled_at, created_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
), qleft AS (` + queueLeftCTE("$1::text[]", queueRunHoldersSQL) + `
), claimed AS (
	UPDATE runs SET state = 'PENDING', worker_id = $4, lease_until = $5, updated_at = $6,
		owner_host = '', owner_pid = 0, owner_start = 0
	WHERE id IN (` + queueCapSQL("c.id", "cand", "scheduled_at, created_at, id", "qleft") + `)
	RETURNING ` + runSelectCols + `
), ev AS (
	INSERT INTO events (run_id, from_state, to_state, cause, message, at)
	SELECT id, 'SCHEDULED', 'PENDING', $7, 'attempt ' || attempt || ' claimed by worker ' || $4::text, $6
	FROM claimed ORDER BY scheduled_at, created_at, id
)
SELECT ` + runSelectCols + ` FROM claimed ORDER BY scheduled_at, created_at, id`

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
// so a claim costs two round trips: the batch, then COMMIT. When then is
// set, it is called after the batch with its results read: it may run
// statements of its own on the transaction's connection (the claims of
// task runs that need resources, which depend on what the batch claimed),
// and the statements it adds to its batch (the slot claims, which need
// what the batch read) ride with the COMMIT.
func (s *Store) claimTx(ctx context.Context, op, worker string, queue func(pb *pgx.Batch) error,
	then func(ctx context.Context, c *pgxpool.Conn, pb *pgx.Batch) error) error {
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
		if then != nil {
			var pb2 pgx.Batch
			if err := then(ctx, c, &pb2); err != nil {
				c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
				return translate(err, "%s", op)
			}
			if pb2.Len() > 0 {
				if s.claimed != nil {
					s.claimed()
				}
				pb2.Queue("COMMIT")
				if err := c.SendBatch(ctx, &pb2).Close(); err != nil {
					c.Exec(context.WithoutCancel(ctx), "ROLLBACK")
					return translate(err, "%s", op)
				}
				return nil
			}
		}
		if s.claimed != nil {
			s.claimed()
		}
		_, err = c.Exec(ctx, "COMMIT")
		return translate(err, "%s: commit", op)
	})
}

// stopTaskRunsSQL cancels the PENDING and AWAITING_SLOT task runs and the
// WAITING wait steps of run $1 (the history transition $4 from PENDING, $6
// from WAITING, $7 from AWAITING_SLOT), marks its waits inactive, and notifies their waiters when
// there were any.
var stopTaskRunsSQL = `WITH stopped AS (
	UPDATE task_runs SET state = 'CANCELLED', error = $2, ended_at = $3, worker_id = '', lease_until = 0,
		history = ` + historyAppend("history",
	"(CASE state WHEN 'WAITING' THEN $6::text WHEN 'AWAITING_SLOT' THEN $7::text ELSE $4::text END)") + `
	WHERE run_id = $1 AND state IN ('PENDING', 'WAITING', 'AWAITING_SLOT')
	RETURNING 1
), waits_stopped AS (
	UPDATE waits SET active = 0 WHERE run_id = $1 AND active = 1
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
	var h [3]any // the history transition from PENDING, from WAITING and from AWAITING_SLOT
	for i, from := range []store.TaskState{store.TaskPending, store.TaskWaiting, store.TaskAwaitingSlot} {
		if h[i], err = encHistory([]store.Transition{{At: at.UTC(), From: string(from),
			To: string(store.TaskCancelled), Cause: cause, Message: store.StoppedMessage(r.State)}}); err != nil {
			return err
		}
	}
	pb.Queue(stopTaskRunsSQL, r.ID, e, encTime(at), h[0], s.channel, h[1], h[2])
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
// The candidates beyond what a limited queue has left (queueCapSQL) stay
// locked, unclaimed, until the claim commits.
var taskRunClaimSQL = `WITH cand AS (
	SELECT run_id, key, id, queue, created_at FROM task_runs
		WHERE state = 'PENDING' AND queue <> '' AND ` + sqlClaimQueue + ` AND task = ANY($2)
		AND (SELECT runs.state FROM runs WHERE runs.id = task_runs.run_id) IN ('RUNNING', 'PAUSED')
		ORDER BY created_at, run_id, key, id LIMIT $3 FOR UPDATE SKIP LOCKED
), qleft AS (` + queueLeftCTE("$1::text[]", queueTaskHoldersSQL) + `
)
UPDATE task_runs SET state = 'RUNNING', worker_id = $4, lease_until = $5,
	started_at = CASE WHEN started_at = 0 THEN $6 ELSE started_at END,
	history = ` + historyAppend("history", "$7::text") + `
	WHERE (run_id, key, id) IN (` + queueCapSQL("c.run_id, c.key, c.id", "cand", "created_at, run_id, key, id", "qleft") + `)
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
	RETURNING run_id, tags, queue
), freed AS (
	SELECT pg_notify($21, 'tasks:' || queue) FROM done WHERE tags <> ''
		OR queue IN (SELECT name FROM work_queues WHERE max_running > 0)
), cached AS (
	INSERT INTO cache (key, task, result, result_ref, run_id, task_run_id, created_at, expires_at)
	SELECT $12::text, $13::text, $14::text, $15::text, $16::text, $17::text, $18::bigint, $19::bigint FROM done WHERE $20::bool
	ON CONFLICT (key) DO UPDATE SET task = excluded.task, result = excluded.result,
		result_ref = excluded.result_ref, run_id = excluded.run_id, task_run_id = excluded.task_run_id,
		created_at = excluded.created_at, expires_at = excluded.expires_at
)
SELECT pg_notify($21, 'done:' || run_id) FROM done, (SELECT count(*) FROM freed) f`

// taskRunsCompleteSQL applies the completions of its array parameters (one
// element each) as taskRunCompleteSQL does without a cache entry, in the
// arrays' order (the primary-key order), notifies each run with applied
// completions once (not once per completion: a worker's report holds
// hundreds of one run's task runs), notifies "tasks" for the queues of
// applied task runs that carry tags (their slots are free: claims waiting
// for one may start a task run now), and returns the refs applied.
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
	RETURNING t.run_id, t.key, t.id, t.tags, t.queue
), notified AS (
	SELECT count(pg_notify($12, 'done:' || run_id)) FROM (SELECT DISTINCT run_id FROM done) r
), freed AS (
	SELECT count(pg_notify($12, 'tasks:' || queue)) FROM (SELECT DISTINCT queue FROM done WHERE tags <> ''
		OR queue IN (SELECT name FROM work_queues WHERE max_running > 0)) q
)
SELECT d.run_id, d.key, d.id FROM done d, notified, freed`

// wakeOnCompletionSQL reschedules the runs of $1 that are PAUSED on a
// worker's queue (suspended while workers executed their task runs, or
// while they waited): a task run of theirs finished, so their worker
// replays them. It writes what RunTransition to SCHEDULED writes (the
// run, its event, its history entry as store.TransitionEntry makes it, the
// runs notification) at $2 with the reason $3.
var wakeOnCompletionSQL = `WITH woke AS (
	UPDATE runs SET state = 'SCHEDULED', owner_host = '', owner_pid = 0, owner_start = 0, worker_id = '',
		lease_until = 0, ended_at = 0, updated_at = $2
	WHERE id = ANY($1::text[]) AND state = 'PAUSED' AND queue <> ''
	RETURNING id, attempt, queue
), ev AS (
	INSERT INTO events (run_id, from_state, to_state, cause, message, at)
	SELECT id, 'PAUSED', 'SCHEDULED', 'task', $3, $2 FROM woke
), hist AS (
	INSERT INTO run_history (run_id, at, actor, verified, action, reason, payload)
	SELECT id, $2, 'system', 1, 'resumed', $3, json_build_object('from', 'PAUSED', 'to', 'SCHEDULED',
		'attempt', attempt, 'cause', 'task', 'queue', queue)::text FROM woke
)
SELECT pg_notify($4, 'runs:' || queue) FROM woke`

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
	var slots slotLock
	plain := withoutNeeds(p.Tasks) // the entries with a Need are claimNeeds'
	err := s.claimTx(ctx, "claim for worker "+worker, worker, func(pb *pgx.Batch) error {
		out = store.ClaimResult{TaskRuns: make([][]store.TaskRun, len(p.Tasks))} // a retried transaction starts again
		queueQueueLock(pb, p)
		if err := s.queueCompletions(pb, cs, &out.Applied); err != nil {
			return err
		}
		queueRunClaim(pb, p.Runs, &out.Runs)
		for i, tp := range p.Tasks {
			if !tp.Need.IsZero() {
				continue // see store.TaskRunClaimParams.Need and claimNeeds
			}
			if err := queueTaskRunClaim(pb, tp, &out.TaskRuns[i]); err != nil {
				return err
			}
		}
		if err := queueSlotHandOffs(pb, plain, cs, out.TaskRuns); err != nil {
			return err
		}
		queueSlotProbe(pb, plain, &slots)
		return nil
	}, func(ctx context.Context, c *pgxpool.Conn, pb *pgx.Batch) error {
		if err := claimNeeds(ctx, c, p, &out); err != nil {
			return err
		}
		return queueSlotClaims(pb, plain, &slots, out.TaskRuns)
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
	if len(cs) > 0 {
		defer s.queueWakes(pb, cs)
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

// queueWakes adds to pb, after the completions cs, the statement that
// reschedules their runs that are PAUSED on a worker's queue.
func (s *Store) queueWakes(pb *pgx.Batch, cs []store.TaskRunCompletion) {
	ids := make([]string, 0, 1)
	for _, c := range cs {
		if !slices.Contains(ids, c.Ref.RunID) {
			ids = append(ids, c.Ref.RunID)
		}
	}
	pb.Queue(wakeOnCompletionSQL, ids, encTime(nowIfZero(cs[0].At)), store.WokenByTaskMessage, s.channel)
}

// LeasesExtend extends the leases held by the workers to p.Until (never
// shortening one) and records that they were seen at p.At, in one
// transaction.
// It locks the rows it updates in the writers' order (see retry): the
// workers, then their runs by id, then their task runs by primary key; in
// the order of an index or of the heap, a lease extension deadlocked with
// batches, completions and releases locking the same rows by key.
func (s *Store) LeasesExtend(ctx context.Context, p store.LeasesExtendParams) error {
	workerIDs, until := p.WorkerIDs, p.Until
	if len(workerIDs) == 0 {
		return nil
	}
	now := p.At
	if now.IsZero() {
		now = time.Now()
	}
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

// releaseTaskRunsSQL puts RUNNING task runs (by key) back to PENDING (to
// AWAITING_SLOT when they carry tags: store.WaitingState) without a worker,
// appending a transition to each one's history.
var releaseTaskRunsSQL = `UPDATE task_runs t SET state = r.state, worker_id = '', lease_until = 0,
	history = ` + historyAppend("t.history", "r.h") + `
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS r(run_id, key, id, h, state)
	WHERE t.run_id = r.run_id AND t.key = r.key AND t.id = r.id AND t.state = 'RUNNING'`

// releaseTaskRuns queues the statement that puts trs (RUNNING, locked) back
// to PENDING, and their notifications.
func releaseTaskRuns(pb *pgx.Batch, trs []store.TaskRun, ns *notes, at time.Time, cause string,
	message func(t *store.TaskRun) string) error {
	if len(trs) == 0 {
		return nil
	}
	var runIDs, keys, ids, hs, states []string
	for i := range trs {
		t := &trs[i]
		to := store.WaitingState(t.Tags)
		h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskRunning),
			To: string(to), Cause: cause, Message: message(t)}})
		if err != nil {
			return err
		}
		runIDs, keys, ids, hs = append(runIDs, t.RunID), append(keys, t.Key), append(ids, t.ID), append(hs, *h)
		states = append(states, string(to))
		ns.Add("tasks", t.Queue)
	}
	pb.Queue(releaseTaskRunsSQL, runIDs, keys, ids, hs, states)
	return nil
}
