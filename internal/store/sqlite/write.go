package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// Column lists, in the order of the encoders below.
var (
	runCols = []string{"id", "flow", "state", "attempt", "parent_run_id", "parent_step_key",
		"parameters", "result", "result_ref", "error", "created_at", "updated_at", "started_at",
		"ended_at", "owner_host", "owner_pid", "owner_start", "queue", "idempotency_key", "worker_id",
		"lease_until", "attempts"}
	taskRunCols = []string{"id", "run_id", "key", "task", "child_run_id", "state", "attempts",
		"flow_attempt", "input_hash", "identity", "input", "input_ref", "result", "result_ref", "error", "cached_from",
		"cached_from_run", "created_at", "started_at", "ended_at", "history", "deps", "map_key", "tags", "queue",
		"worker_id", "lease_until"}
	eventCols = []string{"run_id", "id", "task_run_id", "task_key", "from_state", "to_state", "cause",
		"message", "at"}
	logCols   = []string{"run_id", "task_run_id", "task_key", "level", "message", "attrs", "at"}
	cacheCols = []string{"key", "task", "result", "result_ref", "run_id", "task_run_id",
		"created_at", "expires_at"}
)

// taskRunLocalCols are the columns of a local task run without tags (no
// tags, queue, worker or lease): BatchWrite sets the others to their zero
// values with constants when no task run of the batch is distributed or
// tagged, which spares binding four arguments per row on its hot path
// (about 5% of its time).
var (
	taskRunLocalCols     = taskRunCols[:len(taskRunCols)-4]
	taskRunLocalDefaults = map[string]string{"tags": "''", "queue": "''", "worker_id": "''", "lease_until": "0"}
)

// chunkRows is the number of rows of one multi-row INSERT statement. Fewer
// statement executions per row amortize database/sql's per-call overhead;
// 64 rows of 24 columns stay far below SQLite's 32766 variables.
const chunkRows = 64

// insertSQL returns an INSERT of n rows into table. With conflict set, a row
// whose conflict column exists replaces all other columns (an upsert).
func insertSQL(table string, cols []string, n int, conflict string) string {
	return insertConstSQL(table, cols, nil, n, conflict)
}

// insertConstSQL is insertSQL where the columns of consts (column -> SQL
// constant) are set to constants instead of bound values.
func insertConstSQL(table string, cols []string, consts map[string]string, n int, conflict string) string {
	var b strings.Builder
	constCols := slices.Sorted(maps.Keys(consts))
	var constVals []string
	for _, c := range constCols {
		constVals = append(constVals, consts[c])
	}
	all := append(slices.Clone(cols), constCols...)
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(all, ", "))
	row := "(" + strings.Join(append(slices.Repeat([]string{"?"}, len(cols)), constVals...), ", ") + ")"
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	if conflict != "" {
		fmt.Fprintf(&b, " ON CONFLICT(%s) DO UPDATE SET ", conflict)
		first := true
		keys := strings.Split(conflict, ", ")
		for _, c := range all {
			if slices.Contains(keys, c) {
				continue
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&b, "%s = excluded.%s", c, c)
		}
	}
	return b.String()
}

// chunkedStmt is an insert prepared for one row and for chunkRows rows.
type chunkedStmt struct {
	one, many *sql.Stmt
}

// writeStmts are the statements of BatchWrite, prepared once on the write
// connection and bound to each transaction with Tx.StmtContext (which reuses
// the connection's prepared statement).
type writeStmts struct {
	runs, taskRuns, events, logs, cache chunkedStmt
	taskRunsLocal                       chunkedStmt // task runs without queue, worker and lease
}

func (w *writeStmts) prepare(ctx context.Context, db *sql.DB) error {
	prep := func(dst *chunkedStmt, table string, cols []string, conflict string) error {
		var err error
		if dst.one, err = db.PrepareContext(ctx, insertSQL(table, cols, 1, conflict)); err != nil {
			return err
		}
		dst.many, err = db.PrepareContext(ctx, insertSQL(table, cols, chunkRows, conflict))
		return err
	}
	var err error
	if err = prep(&w.runs, "runs", runCols, "id"); err != nil {
		return err
	}
	guard := " WHERE " + sqlcore.TaskRunUpsertGuard
	for _, n := range []int{1, chunkRows} {
		dst := &w.taskRuns.one
		local := &w.taskRunsLocal.one
		if n > 1 {
			dst, local = &w.taskRuns.many, &w.taskRunsLocal.many
		}
		if *dst, err = db.PrepareContext(ctx, insertSQL("task_runs", taskRunCols, n, "run_id, key, id")+guard); err != nil {
			return err
		}
		if *local, err = db.PrepareContext(ctx, insertConstSQL("task_runs", taskRunLocalCols,
			taskRunLocalDefaults, n, "run_id, key, id")+guard); err != nil {
			return err
		}
	}
	if err = prep(&w.events, "events", eventCols, ""); err != nil {
		return err
	}
	if err = prep(&w.logs, "logs", logCols, ""); err != nil {
		return err
	}
	return prep(&w.cache, "cache", cacheCols, "key")
}

func (w *writeStmts) close() {
	for _, s := range []*sql.Stmt{w.runs.one, w.runs.many, w.taskRuns.one, w.taskRuns.many,
		w.taskRunsLocal.one, w.taskRunsLocal.many,
		w.events.one, w.events.many, w.logs.one, w.logs.many, w.cache.one, w.cache.many} {
		if s != nil {
			s.Close()
		}
	}
}

// writeRows executes stmt for n rows in chunks, appending each row's
// arguments with enc.
func writeRows(ctx context.Context, tx *sql.Tx, st chunkedStmt, n, ncols int, args []any,
	enc func(dst []any, i int) ([]any, error)) ([]any, error) {
	if n == 0 {
		return args, nil
	}
	var many, one *sql.Stmt
	i := 0
	if n >= chunkRows {
		many = tx.StmtContext(ctx, st.many)
		defer many.Close()
		for ; i+chunkRows <= n; i += chunkRows {
			args = slices.Grow(args[:0], chunkRows*ncols)
			var err error
			for j := i; j < i+chunkRows; j++ {
				if args, err = enc(args, j); err != nil {
					return args, err
				}
			}
			if _, err := many.ExecContext(ctx, args...); err != nil {
				return args, err
			}
		}
	}
	if i < n {
		one = tx.StmtContext(ctx, st.one)
		defer one.Close()
		for ; i < n; i++ {
			var err error
			if args, err = enc(args[:0], i); err != nil {
				return args, err
			}
			if _, err := one.ExecContext(ctx, args...); err != nil {
				return args, err
			}
		}
	}
	return args, nil
}

// inTx runs fn in a write transaction (BEGIN IMMEDIATE) and commits it.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return translate(err, "%s: begin", op)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		if isStoreErr(err) {
			return err
		}
		return translate(err, "%s", op)
	}
	return translate(tx.Commit(), "%s: commit", op)
}

// isStoreErr reports whether err already wraps a store sentinel.
func isStoreErr(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrNotBatonStore) || errors.Is(err, store.ErrSchemaTooNew)
}

func (s *Store) writeBatch(ctx context.Context, tx *sql.Tx, b *store.Batch) error {
	var args []any
	var err error
	if args, err = writeRows(ctx, tx, s.stmts.runs, len(b.Runs), len(runCols), args, func(dst []any, i int) ([]any, error) {
		return sqlcore.RunArgs(dst, &b.Runs[i])
	}); err != nil {
		return fmt.Errorf("write runs: %w", err)
	}
	// One statement for all task runs of the batch, so that the last write
	// of an ID wins: the shorter one when none is distributed.
	local := true
	for i := range b.TaskRuns {
		if t := &b.TaskRuns[i]; t.Queue != "" || t.WorkerID != "" || !t.LeaseUntil.IsZero() || len(t.Tags) > 0 {
			local = false
			break
		}
	}
	trStmt, trCols := s.stmts.taskRuns, len(taskRunCols)
	if local {
		trStmt, trCols = s.stmts.taskRunsLocal, len(taskRunLocalCols)
	}
	if args, err = writeRows(ctx, tx, trStmt, len(b.TaskRuns), trCols, args, func(dst []any, i int) ([]any, error) {
		return taskRunArgs(dst, &b.TaskRuns[i], !local)
	}); err != nil {
		return fmt.Errorf("write task runs: %w", err)
	}
	if args, err = writeRows(ctx, tx, s.stmts.events, len(b.Events), len(eventCols), args, func(dst []any, i int) ([]any, error) {
		return eventArgs(dst, &b.Events[i]), nil
	}); err != nil {
		return fmt.Errorf("write events: %w", err)
	}
	if args, err = writeRows(ctx, tx, s.stmts.logs, len(b.Logs), len(logCols), args, func(dst []any, i int) ([]any, error) {
		return logArgs(dst, &b.Logs[i]), nil
	}); err != nil {
		return fmt.Errorf("write logs: %w", err)
	}
	if _, err = writeRows(ctx, tx, s.stmts.cache, len(b.Cache), len(cacheCols), args, func(dst []any, i int) ([]any, error) {
		return cacheArgs(dst, &b.Cache[i]), nil
	}); err != nil {
		return fmt.Errorf("write cache: %w", err)
	}
	return nil
}

// taskRunArgs appends the values of taskRunCols, or of taskRunLocalCols
// unless distributed (or tagged) is set.
func taskRunArgs(dst []any, t *store.TaskRun, distributed bool) ([]any, error) {
	e, err := sqlcore.EncError(t.Error)
	if err != nil {
		return dst, fmt.Errorf("task run %s: %w", t.ID, err)
	}
	h, err := encHistory(t.History)
	if err != nil {
		return dst, fmt.Errorf("task run %s: %w", t.ID, err)
	}
	dst = append(dst, t.ID, t.RunID, t.Key, t.Task, t.ChildRunID, string(t.State), int64(t.Attempts),
		int64(t.FlowAttempt), t.InputHash, t.Identity, sqlcore.EncJSON(t.Input), t.InputRef, sqlcore.EncResult(t.Result, t.ResultRef), t.ResultRef, e,
		t.CachedFrom, t.CachedFromRun, sqlcore.EncTime(t.CreatedAt), sqlcore.EncTime(t.StartedAt),
		sqlcore.EncTime(t.EndedAt), h, store.EncTags(t.Deps), t.Map)
	if distributed {
		dst = append(dst, store.EncTags(t.Tags), t.Queue, t.WorkerID, sqlcore.EncTime(t.LeaseUntil))
	}
	return dst, nil
}

func eventArgs(dst []any, e *store.Event) []any {
	id := e.ID
	if id == 0 {
		id = nextEventID()
	}
	return append(dst, e.RunID, id, e.TaskRunID, e.TaskKey, e.From, e.To, store.EncodeText(e.Cause), store.EncodeText(e.Message), sqlcore.EncTime(e.At))
}

func logArgs(dst []any, l *store.LogRecord) []any {
	return append(dst, l.RunID, l.TaskRunID, l.TaskKey, l.Level, store.EncodeText(l.Message), sqlcore.EncJSON(l.Attrs), sqlcore.EncTime(l.At))
}

func cacheArgs(dst []any, c *store.CacheEntry) []any {
	return append(dst, c.Key, c.Task, sqlcore.EncResult(c.Result, c.ResultRef), c.ResultRef, c.RunID, c.TaskRunID,
		sqlcore.EncTime(c.CreatedAt), sqlcore.EncTime(c.ExpiresAt))
}

var lastEventID atomic.Int64

// nextEventID returns a process-wide strictly increasing ID taken from the
// wall clock in nanoseconds, so events of one run sort in write order, also
// across processes that write the same run one after the other.
func nextEventID() int64 {
	for {
		last := lastEventID.Load()
		id := max(time.Now().UnixNano(), last+1)
		if lastEventID.CompareAndSwap(last, id) {
			return id
		}
	}
}
