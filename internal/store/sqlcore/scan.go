package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// RunWriteCols are the columns of runs that RunArgs writes, in its order.
// pause_request is not among them: only RunPause and WaitBegin change it,
// so a batch that writes a run never undoes a request.
const RunWriteCols = `id, flow, state, attempt, parent_run_id, parent_step_key, parameters, result,
	result_ref, error, created_at, updated_at, started_at, ended_at, owner_host, owner_pid, owner_start,
	queue, idempotency_key, worker_id, lease_until, attempts`

// RunCols are the columns of runs that ScanRun reads, in its order.
const RunCols = RunWriteCols + `, pause_request, deployment, schedule_id, scheduled_at`

// runCreateCols are the columns a run's creation writes: RunWriteCols and
// the columns fixed at creation (runCreateArgs), which no batch changes.
const runCreateCols = RunWriteCols + `, deployment, schedule_id, scheduled_at`

// runCreateArgs returns the values of runCreateCols for r; a zero
// ScheduledAt is its CreatedAt.
func runCreateArgs(r *store.Run) ([]any, error) {
	args, err := RunArgs(nil, r)
	if err != nil {
		return nil, err
	}
	at := r.ScheduledAt
	if at.IsZero() {
		at = r.CreatedAt
	}
	return append(args, r.Deployment, r.ScheduleID, EncTime(at)), nil
}

// TaskRunCols are the columns of task_runs that ScanTaskRun reads, in its
// order.
const TaskRunCols = `id, run_id, key, task, child_run_id, state, attempts, flow_attempt,
	input_hash, identity, input, input_ref, result, result_ref, error, cached_from, cached_from_run, created_at,
	started_at, ended_at, history, queue, worker_id, lease_until, tags, deps, map_key`

// taskRunBriefCols are TaskRunCols with NULL for the large columns
// (input, result, history): TaskRunListParams.Brief. Made from
// TaskRunCols, so a column added there is read here too.
var taskRunBriefCols = func() string {
	cols := strings.Split(TaskRunCols, ",")
	for i, c := range cols {
		switch strings.TrimSpace(c) {
		case "input", "result", "history":
			cols[i] = " NULL"
		}
	}
	return strings.Join(cols, ",")
}()

// RunArgs appends the values of RunWriteCols for r.
func RunArgs(dst []any, r *store.Run) ([]any, error) {
	e, err := EncError(r.Error)
	if err != nil {
		return dst, fmt.Errorf("run %s: %w", r.ID, err)
	}
	a, err := EncAttempts(r.Attempts)
	if err != nil {
		return dst, fmt.Errorf("run %s: %w", r.ID, err)
	}
	return append(dst, r.ID, r.Flow, string(r.State), int64(r.Attempt), r.ParentRunID, r.ParentStepKey,
		EncJSON(r.Parameters), EncResult(r.Result, r.ResultRef), r.ResultRef, e, EncTime(r.CreatedAt),
		EncTime(r.UpdatedAt), EncTime(r.StartedAt), EncTime(r.EndedAt), r.OwnerHost,
		int64(r.OwnerPID), r.OwnerStart, r.Queue, r.IdempotencyKey, r.WorkerID, EncTime(r.LeaseUntil), a), nil
}

// createRunSQL inserts one run unless its ID or idempotency key exists
// (ON CONFLICT DO NOTHING without a target: on PostgreSQL after waiting for
// a concurrent insert of the same key to commit or roll back) and returns
// it.
var createRunSQL = func() string {
	var a Args
	vals := make([]string, 25)
	for i := range vals {
		vals[i] = a.Add(nil)
	}
	return "INSERT INTO runs (" + runCreateCols + ") VALUES (" + strings.Join(vals, ", ") + ") ON CONFLICT DO NOTHING RETURNING " + RunCols
}()

// runScan holds the destinations of a row of RunCols, reused from row to
// row: one allocation per query instead of one per column and row.
type runScan struct {
	r                                            store.Run
	state                                        string
	attempt, pid                                 int64
	params, result, errJSON, attempts, pause     []byte
	created, updated, started, ended, own, lease int64
	scheduled                                    int64
	dest                                         []any
}

func newRunScan() *runScan {
	x := &runScan{}
	r := &x.r
	x.dest = []any{&r.ID, &r.Flow, &x.state, &x.attempt, &r.ParentRunID, &r.ParentStepKey, &x.params,
		&x.result, &r.ResultRef, &x.errJSON, &x.created, &x.updated, &x.started, &x.ended, &r.OwnerHost,
		&x.pid, &x.own, &r.Queue, &r.IdempotencyKey, &r.WorkerID, &x.lease, &x.attempts, &x.pause,
		&r.Deployment, &r.ScheduleID, &x.scheduled}
	return x
}

func (x *runScan) scan(sc Row) (store.Run, error) {
	if err := sc.Scan(x.dest...); err != nil {
		return store.Run{}, err
	}
	r := x.r
	var err error
	if r.Error, err = DecError(x.errJSON); err != nil {
		return store.Run{}, err
	}
	if r.Attempts, err = DecAttempts(x.attempts); err != nil {
		return store.Run{}, err
	}
	r.State = store.RunState(x.state)
	r.Attempt = int(x.attempt)
	r.OwnerPID = int(x.pid)
	r.OwnerStart = x.own
	r.Parameters = DecJSON(x.params)
	r.Result = DecJSON(x.result)
	r.CreatedAt, r.UpdatedAt = DecTime(x.created), DecTime(x.updated)
	r.StartedAt, r.EndedAt = DecTime(x.started), DecTime(x.ended)
	r.LeaseUntil = DecTime(x.lease)
	r.ScheduledAt = time.Time{}
	if x.scheduled != x.created {
		r.ScheduledAt = DecTime(x.scheduled)
	}
	r.PauseRequest = nil
	if len(x.pause) > 0 {
		var pr store.PauseRequest
		if err := json.Unmarshal(x.pause, &pr); err != nil {
			return store.Run{}, fmt.Errorf("run %s: pause request: %w", r.ID, err)
		}
		r.PauseRequest = &pr
	}
	return r, nil
}

// ScanRun reads a row of RunCols.
func ScanRun(sc Row) (store.Run, error) { return newRunScan().scan(sc) }

// taskRunScan holds the destinations of a row of TaskRunCols, reused from
// row to row.
type taskRunScan struct {
	t                              store.TaskRun
	state                          string
	attempts, flowAttempt          int64
	input, result, errJSON, hist   []byte
	tags, deps                     string
	created, started, ended, lease int64
	dest                           []any
}

func newTaskRunScan() *taskRunScan {
	x := &taskRunScan{}
	t := &x.t
	x.dest = []any{&t.ID, &t.RunID, &t.Key, &t.Task, &t.ChildRunID, &x.state, &x.attempts,
		&x.flowAttempt, &t.InputHash, &t.Identity, &x.input, &t.InputRef, &x.result, &t.ResultRef, &x.errJSON, &t.CachedFrom,
		&t.CachedFromRun, &x.created, &x.started, &x.ended, &x.hist, &t.Queue, &t.WorkerID, &x.lease, &x.tags, &x.deps, &t.Map}
	return x
}

func (x *taskRunScan) scan(sc Row) (store.TaskRun, error) {
	if err := sc.Scan(x.dest...); err != nil {
		return store.TaskRun{}, err
	}
	t := x.t
	var err error
	if t.Error, err = DecError(x.errJSON); err != nil {
		return store.TaskRun{}, err
	}
	if t.History, err = DecHistory(x.hist); err != nil {
		return store.TaskRun{}, err
	}
	t.State = store.TaskState(x.state)
	t.Attempts = int(x.attempts)
	t.FlowAttempt = int(x.flowAttempt)
	t.Input = DecJSON(x.input)
	t.Result = DecJSON(x.result)
	t.CreatedAt, t.StartedAt, t.EndedAt = DecTime(x.created), DecTime(x.started), DecTime(x.ended)
	t.LeaseUntil = DecTime(x.lease)
	if t.Tags, err = store.DecTags(x.tags); err != nil {
		return store.TaskRun{}, err
	}
	if t.Deps, err = store.DecTags(x.deps); err != nil {
		return store.TaskRun{}, err
	}
	return t, nil
}

// ScanTaskRun reads a row of TaskRunCols.
func ScanTaskRun(sc Row) (store.TaskRun, error) { return newTaskRunScan().scan(sc) }

// CollectRuns reads rows of RunCols to the end; the caller closes rows.
func CollectRuns(rows Rows) ([]store.Run, error) { return collect(rows, newRunScan().scan) }

// CollectTaskRuns reads rows of TaskRunCols to the end; the caller closes
// rows.
func CollectTaskRuns(rows Rows) ([]store.TaskRun, error) {
	return collect(rows, newTaskRunScan().scan)
}

func collect[T any](rows Rows, scan func(Row) (T, error)) ([]T, error) {
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// queryAll runs a statement on q and scans each of its rows with scan.
func queryAll[T any](ctx context.Context, q Querier, scan func(Row) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := q.Query(ctx, func(rows Rows) (err error) {
		out, err = collect(rows, scan)
		return err
	}, sql, args...)
	return out, err
}
