package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

const runSelectCols = `id, flow, state, attempt, parent_run_id, parent_step_key, parameters, result,
	result_ref, error, created_at, updated_at, started_at, ended_at, owner_host, owner_pid, owner_start,
	queue, idempotency_key, worker_id, lease_until`

func scanRun(sc pgx.Row) (store.Run, error) {
	var (
		r                                            store.Run
		state                                        string
		attempt, pid                                 int64
		params, result, errJSON                      *string
		created, updated, started, ended, own, lease int64
	)
	if err := sc.Scan(&r.ID, &r.Flow, &state, &attempt, &r.ParentRunID, &r.ParentStepKey, &params,
		&result, &r.ResultRef, &errJSON, &created, &updated, &started, &ended, &r.OwnerHost,
		&pid, &own, &r.Queue, &r.IdempotencyKey, &r.WorkerID, &lease); err != nil {
		return store.Run{}, err
	}
	var err error
	if r.Error, err = decError(errJSON); err != nil {
		return store.Run{}, err
	}
	r.State = store.RunState(state)
	r.Attempt = int(attempt)
	r.OwnerPID = int(pid)
	r.OwnerStart = own
	r.Parameters = decJSON(params)
	r.Result = decJSON(result)
	r.CreatedAt, r.UpdatedAt = decTime(created), decTime(updated)
	r.StartedAt, r.EndedAt = decTime(started), decTime(ended)
	r.LeaseUntil = decTime(lease)
	return r, nil
}

func collectRuns(rows pgx.Rows, err error) ([]store.Run, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const taskRunSelectCols = `id, run_id, key, task, child_run_id, state, attempts, flow_attempt,
	input_hash, input, result, result_ref, error, cached_from, cached_from_run, created_at,
	started_at, ended_at, history, queue, worker_id, lease_until`

func scanTaskRun(sc pgx.Row) (store.TaskRun, error) {
	var (
		t                              store.TaskRun
		state                          string
		attempts, flowAttempt          int64
		input, result, errJSON, hist   *string
		created, started, ended, lease int64
	)
	if err := sc.Scan(&t.ID, &t.RunID, &t.Key, &t.Task, &t.ChildRunID, &state, &attempts,
		&flowAttempt, &t.InputHash, &input, &result, &t.ResultRef, &errJSON, &t.CachedFrom,
		&t.CachedFromRun, &created, &started, &ended, &hist, &t.Queue, &t.WorkerID, &lease); err != nil {
		return store.TaskRun{}, err
	}
	var err error
	if t.Error, err = decError(errJSON); err != nil {
		return store.TaskRun{}, err
	}
	if t.History, err = decHistory(hist); err != nil {
		return store.TaskRun{}, err
	}
	t.State = store.TaskState(state)
	t.Attempts = int(attempts)
	t.FlowAttempt = int(flowAttempt)
	t.Input = decJSON(input)
	t.Result = decJSON(result)
	t.CreatedAt, t.StartedAt, t.EndedAt = decTime(created), decTime(started), decTime(ended)
	t.LeaseUntil = decTime(lease)
	return t, nil
}

func collectTaskRuns(rows pgx.Rows, err error) ([]store.TaskRun, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TaskRun
	for rows.Next() {
		t, err := scanTaskRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RunGet returns the run with the given ID or an error wrapping
// store.ErrNotFound.
func (s *Store) RunGet(ctx context.Context, id string) (store.Run, error) {
	r, err := scanRun(s.pool.QueryRow(ctx, "SELECT "+runSelectCols+" FROM runs WHERE id = $1", id))
	if err != nil {
		return store.Run{}, translate(err, "run %s", id)
	}
	return r, nil
}

// RunList returns runs matching p, newest (by CreatedAt, then ID) first, at
// most p.Limit of them (100 when 0).
func (s *Store) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	var (
		where []string
		args  []any
	)
	arg := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if p.Flow != "" {
		arg("flow = $%d", p.Flow)
	}
	if p.State != "" {
		arg("state = $%d", string(p.State))
	}
	if p.ParentRunID != "" {
		arg("parent_run_id = $%d", p.ParentRunID)
	}
	if p.Queue != "" {
		arg("queue = $%d", p.Queue)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	q := "SELECT " + runSelectCols + " FROM runs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, int64(limit))
	q += fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT $%d", len(args))
	out, err := collectRuns(s.pool.Query(ctx, q, args...))
	return out, translate(err, "list runs")
}

// RunChildGet returns the subflow run created by the step stepKey of the run
// parentRunID, or an error wrapping store.ErrNotFound. If several match
// (which the engine does not do), the newest is returned.
func (s *Store) RunChildGet(ctx context.Context, parentRunID, stepKey string) (store.Run, error) {
	if parentRunID == "" {
		return store.Run{}, translate(pgx.ErrNoRows, "child run of %q at step %q", parentRunID, stepKey)
	}
	r, err := scanRun(s.pool.QueryRow(ctx, "SELECT "+runSelectCols+
		" FROM runs WHERE parent_run_id = $1 AND parent_step_key = $2 ORDER BY created_at DESC, id DESC LIMIT 1",
		parentRunID, stepKey))
	if err != nil {
		return store.Run{}, translate(err, "child run of %s at step %q", parentRunID, stepKey)
	}
	return r, nil
}

// TaskRunList returns the task runs of p.RunID (only those of step p.Key
// when set) ordered by creation time, then ID.
func (s *Store) TaskRunList(ctx context.Context, p store.TaskRunListParams) ([]store.TaskRun, error) {
	q, args := store.TaskRunListQuery("SELECT "+taskRunSelectCols+" FROM task_runs", p,
		func(i int) string { return "$" + strconv.Itoa(i) })
	out, err := collectTaskRuns(s.pool.Query(ctx, q, args...))
	return out, translate(err, "list task runs of %s", p.RunID)
}

// TaskRunCounts counts a run's task runs per task and state.
func (s *Store) TaskRunCounts(ctx context.Context, runID string) ([]store.TaskRunCount, error) {
	rows, err := s.pool.Query(ctx, `SELECT task, state, COUNT(*) FROM task_runs WHERE run_id = $1
		GROUP BY task, state ORDER BY task, state`, runID)
	if err != nil {
		return nil, translate(err, "count task runs of %s", runID)
	}
	defer rows.Close()
	var out []store.TaskRunCount
	for rows.Next() {
		var c store.TaskRunCount
		var state string
		var n int64
		if err := rows.Scan(&c.Task, &state, &n); err != nil {
			return nil, translate(err, "count task runs of %s", runID)
		}
		c.State, c.N = store.TaskState(state), int(n)
		out = append(out, c)
	}
	return out, translate(rows.Err(), "count task runs of %s", runID)
}

// JournalList returns, for each step key of the run, its latest (by
// CreatedAt, then ID) COMPLETED or CACHED task run, ordered by key.
func (s *Store) JournalList(ctx context.Context, runID string) ([]store.JournalEntry, error) {
	rows, err := s.pool.Query(ctx, `SELECT key, task, input_hash, result, result_ref, child_run_id, id, state
		FROM task_runs WHERE run_id = $1 AND (state IN ('COMPLETED', 'CACHED') OR (queue <> '' AND state IN ('PENDING', 'RUNNING')))
		ORDER BY key, created_at, id`, runID)
	if err != nil {
		return nil, translate(err, "journal of run %s", runID)
	}
	defer rows.Close()
	var rs []store.JournalEntry
	for rows.Next() {
		var e store.JournalEntry
		var result *string
		var state string
		if err := rows.Scan(&e.Key, &e.Task, &e.InputHash, &result, &e.ResultRef, &e.ChildRunID, &e.ID, &state); err != nil {
			return nil, translate(err, "journal of run %s", runID)
		}
		e.Result, e.State = decJSON(result), store.TaskState(state)
		rs = append(rs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err, "journal of run %s", runID)
	}
	return store.JournalFromRows(rs), nil
}

// EventList returns the events of a run merged with the History of its
// task runs, in time order (store.SortEvents).
func (s *Store) EventList(ctx context.Context, runID string) ([]store.Event, error) {
	var pb pgx.Batch
	var out []store.Event
	pb.Queue(`SELECT id, run_id, task_run_id, task_key, from_state, to_state, cause, message, at
		FROM events WHERE run_id = $1 ORDER BY id`, runID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var e store.Event
			var at int64
			if err := rows.Scan(&e.ID, &e.RunID, &e.TaskRunID, &e.TaskKey, &e.From, &e.To, &e.Cause,
				&e.Message, &at); err != nil {
				return err
			}
			e.At, e.Cause, e.Message = decTime(at), decText(e.Cause), decText(e.Message)
			out = append(out, e)
		}
		return rows.Err()
	})
	pb.Queue(`SELECT id, key, history FROM task_runs WHERE run_id = $1 AND history IS NOT NULL
		ORDER BY created_at, id`, runID).Query(func(rows pgx.Rows) error {
		for rows.Next() {
			var id, key string
			var raw *string
			if err := rows.Scan(&id, &key, &raw); err != nil {
				return err
			}
			h, err := decHistory(raw)
			if err != nil {
				return err
			}
			for _, tr := range h {
				out = append(out, store.Event{RunID: runID, TaskRunID: id, TaskKey: key, From: tr.From, To: tr.To,
					Cause: tr.Cause, Message: tr.Message, At: tr.At})
			}
		}
		return rows.Err()
	})
	if err := s.pool.SendBatch(ctx, &pb).Close(); err != nil {
		return nil, translate(err, "events of run %s", runID)
	}
	store.SortEvents(out)
	return out, nil
}

// LogList returns the logs of p.RunID (only those of step p.TaskKey when set)
// in the order they were written, at most p.Limit when it is positive.
func (s *Store) LogList(ctx context.Context, p store.LogListParams) ([]store.LogRecord, error) {
	q := `SELECT id, run_id, task_run_id, task_key, level, message, attrs, at FROM logs WHERE run_id = $1`
	args := []any{p.RunID}
	if p.TaskKey != "" {
		args = append(args, p.TaskKey)
		q += fmt.Sprintf(" AND task_key = $%d", len(args))
	}
	q += " ORDER BY id"
	if p.Limit > 0 {
		args = append(args, int64(p.Limit))
		q += fmt.Sprintf(" LIMIT $%d", len(args))
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, translate(err, "logs of run %s", p.RunID)
	}
	defer rows.Close()
	var out []store.LogRecord
	for rows.Next() {
		var l store.LogRecord
		var attrs *string
		var at int64
		if err := rows.Scan(&l.ID, &l.RunID, &l.TaskRunID, &l.TaskKey, &l.Level, &l.Message, &attrs, &at); err != nil {
			return nil, translate(err, "logs of run %s", p.RunID)
		}
		l.Attrs, l.Message = decJSON(attrs), decText(l.Message)
		l.At = decTime(at)
		out = append(out, l)
	}
	return out, translate(rows.Err(), "logs of run %s", p.RunID)
}

// CacheGet returns the cache entry for key, or an error wrapping
// store.ErrNotFound when there is none or it expired at or before now.
func (s *Store) CacheGet(ctx context.Context, key string, now time.Time) (store.CacheEntry, error) {
	var (
		c                  store.CacheEntry
		result             *string
		created, expiresAt int64
	)
	err := s.pool.QueryRow(ctx, `SELECT key, task, result, result_ref, run_id, task_run_id,
		created_at, expires_at FROM cache WHERE key = $1`, key).Scan(&c.Key, &c.Task, &result,
		&c.ResultRef, &c.RunID, &c.TaskRunID, &created, &expiresAt)
	if err != nil {
		return store.CacheEntry{}, translate(err, "cache entry %q", key)
	}
	c.Result = decJSON(result)
	c.CreatedAt, c.ExpiresAt = decTime(created), decTime(expiresAt)
	if !c.ExpiresAt.IsZero() && !c.ExpiresAt.After(now) {
		return store.CacheEntry{}, translate(pgx.ErrNoRows, "cache entry %q expired at %s", key, c.ExpiresAt.Format(time.RFC3339Nano))
	}
	return c, nil
}
