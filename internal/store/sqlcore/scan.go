package sqlcore

import (
	"context"
	"strings"

	"github.com/batonhq/baton/internal/store"
)

// RunCols are the columns of runs that ScanRun reads, in its order.
const RunCols = `id, flow, state, attempt, parent_run_id, parent_step_key, parameters, result,
	result_ref, error, created_at, updated_at, started_at, ended_at, owner_host, owner_pid, owner_start,
	queue, idempotency_key, worker_id, lease_until`

// TaskRunCols are the columns of task_runs that ScanTaskRun reads, in its
// order.
const TaskRunCols = `id, run_id, key, task, child_run_id, state, attempts, flow_attempt,
	input_hash, input, result, result_ref, error, cached_from, cached_from_run, created_at,
	started_at, ended_at, history, queue, worker_id, lease_until`

// Qualified returns the column list cols with each column prefixed by
// alias.
func Qualified(alias, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = alias + "." + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// ScanRun reads a row of RunCols.
func ScanRun(sc Row) (store.Run, error) {
	var (
		r                                            store.Run
		state                                        string
		attempt, pid                                 int64
		params, result, errJSON                      []byte
		created, updated, started, ended, own, lease int64
	)
	if err := sc.Scan(&r.ID, &r.Flow, &state, &attempt, &r.ParentRunID, &r.ParentStepKey, &params,
		&result, &r.ResultRef, &errJSON, &created, &updated, &started, &ended, &r.OwnerHost,
		&pid, &own, &r.Queue, &r.IdempotencyKey, &r.WorkerID, &lease); err != nil {
		return store.Run{}, err
	}
	var err error
	if r.Error, err = DecError(errJSON); err != nil {
		return store.Run{}, err
	}
	r.State = store.RunState(state)
	r.Attempt = int(attempt)
	r.OwnerPID = int(pid)
	r.OwnerStart = own
	r.Parameters = DecJSON(params)
	r.Result = DecJSON(result)
	r.CreatedAt, r.UpdatedAt = DecTime(created), DecTime(updated)
	r.StartedAt, r.EndedAt = DecTime(started), DecTime(ended)
	r.LeaseUntil = DecTime(lease)
	return r, nil
}

// ScanTaskRun reads a row of TaskRunCols.
func ScanTaskRun(sc Row) (store.TaskRun, error) {
	var (
		t                              store.TaskRun
		state                          string
		attempts, flowAttempt          int64
		input, result, errJSON, hist   []byte
		created, started, ended, lease int64
	)
	if err := sc.Scan(&t.ID, &t.RunID, &t.Key, &t.Task, &t.ChildRunID, &state, &attempts,
		&flowAttempt, &t.InputHash, &input, &result, &t.ResultRef, &errJSON, &t.CachedFrom,
		&t.CachedFromRun, &created, &started, &ended, &hist, &t.Queue, &t.WorkerID, &lease); err != nil {
		return store.TaskRun{}, err
	}
	var err error
	if t.Error, err = DecError(errJSON); err != nil {
		return store.TaskRun{}, err
	}
	if t.History, err = DecHistory(hist); err != nil {
		return store.TaskRun{}, err
	}
	t.State = store.TaskState(state)
	t.Attempts = int(attempts)
	t.FlowAttempt = int(flowAttempt)
	t.Input = DecJSON(input)
	t.Result = DecJSON(result)
	t.CreatedAt, t.StartedAt, t.EndedAt = DecTime(created), DecTime(started), DecTime(ended)
	t.LeaseUntil = DecTime(lease)
	return t, nil
}

// CollectRuns reads rows of RunCols to the end; the caller closes rows.
func CollectRuns(rows Rows) ([]store.Run, error) { return collect(rows, ScanRun) }

// CollectTaskRuns reads rows of TaskRunCols to the end; the caller closes
// rows.
func CollectTaskRuns(rows Rows) ([]store.TaskRun, error) { return collect(rows, ScanTaskRun) }

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
