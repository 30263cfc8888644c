package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Column lists, in the order of the encoders below.
var (
	runCols = []string{"id", "flow", "state", "attempt", "parent_run_id", "parent_step_key",
		"parameters", "result", "result_ref", "error", "created_at", "updated_at", "started_at",
		"ended_at", "owner_host", "owner_pid", "owner_start"}
	taskRunCols = []string{"id", "run_id", "key", "task", "child_run_id", "state", "attempts",
		"flow_attempt", "input_hash", "input", "result", "result_ref", "error", "cached_from",
		"cached_from_run", "created_at", "started_at", "ended_at", "history"}
	eventCols = []string{"run_id", "id", "task_run_id", "task_key", "from_state", "to_state", "cause",
		"message", "at"}
	logCols   = []string{"run_id", "task_run_id", "task_key", "level", "message", "attrs", "at"}
	cacheCols = []string{"key", "task", "result", "result_ref", "run_id", "task_run_id",
		"created_at", "expires_at"}
)

// chunkRows is the number of rows of one multi-row INSERT statement. Fewer
// statement executions per row amortize database/sql's per-call overhead;
// 64 rows of 18 columns stay far below SQLite's 32766 variables.
const chunkRows = 64

// insertSQL returns an INSERT of n rows into table. With conflict set, a row
// whose conflict column exists replaces all other columns (an upsert).
func insertSQL(table string, cols []string, n int, conflict string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %s (%s) VALUES ", table, strings.Join(cols, ", "))
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
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
		for _, c := range cols {
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
	runGet                              *sql.Stmt
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
	if err = prep(&w.taskRuns, "task_runs", taskRunCols, "run_id, key, id"); err != nil {
		return err
	}
	if err = prep(&w.events, "events", eventCols, ""); err != nil {
		return err
	}
	if err = prep(&w.logs, "logs", logCols, ""); err != nil {
		return err
	}
	if err = prep(&w.cache, "cache", cacheCols, "key"); err != nil {
		return err
	}
	w.runGet, err = db.PrepareContext(ctx, "SELECT "+runSelectCols+" FROM runs WHERE id = ?")
	return err
}

func (w *writeStmts) close() {
	for _, s := range []*sql.Stmt{w.runs.one, w.runs.many, w.taskRuns.one, w.taskRuns.many,
		w.events.one, w.events.many, w.logs.one, w.logs.many, w.cache.one, w.cache.many, w.runGet} {
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

// BatchWrite applies all writes of b in one write transaction: runs, task
// runs and cache entries are upserted, events and logs appended.
func (s *Store) BatchWrite(ctx context.Context, b store.Batch) error {
	if b.Empty() {
		return nil
	}
	return s.inTx(ctx, "batch write", func(tx *sql.Tx) error {
		return s.writeBatch(ctx, tx, &b)
	})
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
		return runArgs(dst, &b.Runs[i])
	}); err != nil {
		return fmt.Errorf("write runs: %w", err)
	}
	if args, err = writeRows(ctx, tx, s.stmts.taskRuns, len(b.TaskRuns), len(taskRunCols), args, func(dst []any, i int) ([]any, error) {
		return taskRunArgs(dst, &b.TaskRuns[i])
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

func runArgs(dst []any, r *store.Run) ([]any, error) {
	e, err := encError(r.Error)
	if err != nil {
		return dst, fmt.Errorf("run %s: %w", r.ID, err)
	}
	return append(dst, r.ID, r.Flow, string(r.State), int64(r.Attempt), r.ParentRunID, r.ParentStepKey,
		encJSON(r.Parameters), encJSON(r.Result), r.ResultRef, e, encTime(r.CreatedAt),
		encTime(r.UpdatedAt), encTime(r.StartedAt), encTime(r.EndedAt), r.OwnerHost,
		int64(r.OwnerPID), r.OwnerStart), nil
}

func taskRunArgs(dst []any, t *store.TaskRun) ([]any, error) {
	e, err := encError(t.Error)
	if err != nil {
		return dst, fmt.Errorf("task run %s: %w", t.ID, err)
	}
	h, err := encHistory(t.History)
	if err != nil {
		return dst, fmt.Errorf("task run %s: %w", t.ID, err)
	}
	return append(dst, t.ID, t.RunID, t.Key, t.Task, t.ChildRunID, string(t.State), int64(t.Attempts),
		int64(t.FlowAttempt), t.InputHash, encJSON(t.Input), encJSON(t.Result), t.ResultRef, e,
		t.CachedFrom, t.CachedFromRun, encTime(t.CreatedAt), encTime(t.StartedAt),
		encTime(t.EndedAt), h), nil
}

func eventArgs(dst []any, e *store.Event) []any {
	id := e.ID
	if id == 0 {
		id = nextEventID()
	}
	return append(dst, e.RunID, id, e.TaskRunID, e.TaskKey, e.From, e.To, e.Cause, e.Message, encTime(e.At))
}

func logArgs(dst []any, l *store.LogRecord) []any {
	return append(dst, l.RunID, l.TaskRunID, l.TaskKey, l.Level, l.Message, encJSON(l.Attrs), encTime(l.At))
}

func cacheArgs(dst []any, c *store.CacheEntry) []any {
	return append(dst, c.Key, c.Task, encJSON(c.Result), c.ResultRef, c.RunID, c.TaskRunID,
		encTime(c.CreatedAt), encTime(c.ExpiresAt))
}

// RunTransition atomically applies p.Update to the run when it is in one of
// p.From, sets its UpdatedAt to now and records an event from the old to the
// new state. Otherwise it returns an error wrapping store.ErrConflict that
// names the current state, or store.ErrNotFound when the run does not exist.
func (s *Store) RunTransition(ctx context.Context, p store.RunTransitionParams, cause, message string) (store.Run, error) {
	var out store.Run
	err := s.inTx(ctx, "run transition "+p.ID, func(tx *sql.Tx) error {
		get := tx.StmtContext(ctx, s.stmts.runGet)
		defer get.Close()
		r, err := scanRun(get.QueryRowContext(ctx, p.ID))
		if err != nil {
			return translate(err, "run %s", p.ID)
		}
		if !slices.Contains(p.From, r.State) {
			return fmt.Errorf("run %s is %s: %w", p.ID, r.State, store.ErrConflict)
		}
		old := r.State
		if p.Update != nil {
			p.Update(&r)
			r.ID = p.ID // the update may not move the row
		}
		now := time.Now()
		r.UpdatedAt = now
		b := store.Batch{
			Runs: []store.Run{r},
			Events: []store.Event{{RunID: r.ID, From: string(old), To: string(r.State),
				Cause: cause, Message: message, At: now}},
		}
		if err := s.writeBatch(ctx, tx, &b); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return store.Run{}, err
	}
	// Return the row as a reader would see it (UTC, nanosecond times).
	out.UpdatedAt = decTime(encTime(out.UpdatedAt))
	return out, nil
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
