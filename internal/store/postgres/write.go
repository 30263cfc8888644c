package postgres

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
)

// queueBatch adds the statements writing b to pb and the notifications
// they call for to ns. Each table gets one INSERT ... SELECT FROM
// unnest($1::text[], ...) statement whatever the number of rows (upserts
// for runs, task runs and cache entries; rows of one key in a batch are
// first reduced to the last, since one INSERT ... ON CONFLICT cannot touch a
// row twice). Upserted rows are sorted by primary key so that concurrent
// batches lock shared rows in the same order as each other and as the other
// writers; a batch aborted for a deadlock even so is sent again (see
// retry). BatchWrite (the core's, through tx.WriteBatch) is these
// statements and the notifications in one pgx.Batch, which PostgreSQL runs
// as one implicit transaction: one round trip.
func queueBatch(pb *pgx.Batch, b *store.Batch, ns *notes) error {
	if len(b.Runs) > 0 {
		runs := lastByKey(b.Runs, func(r *store.Run) string { return r.ID })
		slices.SortStableFunc(runs, func(x, y store.Run) int { return strings.Compare(x.ID, y.ID) })
		var c runColumns
		for i := range runs {
			if err := c.add(&runs[i]); err != nil {
				return err
			}
			ns.AddRun(&runs[i])
		}
		pb.Queue(upsertRunsSQL, c.args()...)
	}
	if len(b.TaskRuns) > 0 {
		trs := lastByKey(b.TaskRuns, func(t *store.TaskRun) string { return t.RunID + "\x00" + t.Key + "\x00" + t.ID })
		slices.SortStableFunc(trs, func(x, y store.TaskRun) int {
			return cmp.Or(strings.Compare(x.RunID, y.RunID), strings.Compare(x.Key, y.Key), strings.Compare(x.ID, y.ID))
		})
		var c taskRunColumns
		for i := range trs {
			if err := c.add(&trs[i]); err != nil {
				return err
			}
			if t := &trs[i]; t.Queue != "" && t.State.Waiting() {
				ns.Add("tasks", t.Queue)
			}
		}
		pb.Queue(upsertTaskRunsSQL, c.args()...)
	}
	if len(b.Events) > 0 {
		var c eventColumns
		for i := range b.Events {
			c.add(&b.Events[i])
		}
		pb.Queue(insertEventsSQL, c.args()...)
	}
	if len(b.Logs) > 0 {
		var c logColumns
		for i := range b.Logs {
			c.add(&b.Logs[i])
		}
		pb.Queue(insertLogsSQL, c.args()...)
	}
	if len(b.Cache) > 0 {
		entries := lastByKey(b.Cache, func(c *store.CacheEntry) string { return c.Key })
		slices.SortStableFunc(entries, func(x, y store.CacheEntry) int { return strings.Compare(x.Key, y.Key) })
		var c cacheColumns
		for i := range entries {
			c.add(&entries[i])
		}
		pb.Queue(upsertCacheSQL, c.args()...)
	}
	return nil
}

// lastByKey returns a copy of rows without the rows whose key occurs again
// later: the last write of a key wins. (With fewer than two rows it returns
// rows itself.)
func lastByKey[T any](rows []T, key func(*T) string) []T {
	if len(rows) < 2 {
		return rows
	}
	last := make(map[string]int, len(rows))
	for i := range rows {
		last[key(&rows[i])] = i
	}
	if len(last) == len(rows) {
		return slices.Clone(rows)
	}
	out := make([]T, 0, len(last))
	for i := range rows {
		if last[key(&rows[i])] == i {
			out = append(out, rows[i])
		}
	}
	return out
}

// column is a table column with its PostgreSQL array type for unnest.
type column struct{ name, typ string }

var (
	runColumnList = []column{{"id", "text"}, {"flow", "text"}, {"state", "text"}, {"attempt", "int8"},
		{"parent_run_id", "text"}, {"parent_step_key", "text"}, {"parameters", "text"}, {"result", "text"},
		{"result_ref", "text"}, {"error", "text"}, {"created_at", "int8"}, {"updated_at", "int8"},
		{"started_at", "int8"}, {"ended_at", "int8"}, {"owner_host", "text"}, {"owner_pid", "int8"},
		{"owner_start", "int8"}, {"queue", "text"}, {"idempotency_key", "text"}, {"worker_id", "text"},
		{"lease_until", "int8"}, {"attempts", "text"}}
	taskRunColumnList = []column{{"id", "text"}, {"run_id", "text"}, {"key", "text"}, {"task", "text"},
		{"child_run_id", "text"}, {"state", "text"}, {"attempts", "int8"}, {"flow_attempt", "int8"},
		{"input_hash", "text"}, {"identity", "text"}, {"input", "text"}, {"input_ref", "text"}, {"result", "text"}, {"result_ref", "text"},
		{"error", "text"}, {"cached_from", "text"}, {"cached_from_run", "text"}, {"created_at", "int8"},
		{"started_at", "int8"}, {"ended_at", "int8"}, {"history", "text"}, {"queue", "text"},
		{"worker_id", "text"}, {"lease_until", "int8"}, {"tags", "text"}, {"deps", "text"}, {"map_key", "text"}}
	eventColumnList = []column{{"run_id", "text"}, {"task_run_id", "text"}, {"task_key", "text"},
		{"from_state", "text"}, {"to_state", "text"}, {"cause", "text"}, {"message", "text"}, {"at", "int8"}}
	logColumnList = []column{{"run_id", "text"}, {"task_run_id", "text"}, {"task_key", "text"},
		{"level", "text"}, {"message", "text"}, {"attrs", "text"}, {"at", "int8"}}
	cacheColumnList = []column{{"key", "text"}, {"task", "text"}, {"result", "text"}, {"result_ref", "text"},
		{"run_id", "text"}, {"task_run_id", "text"}, {"created_at", "int8"}, {"expires_at", "int8"}}
)

// unnestInsertSQL returns INSERT INTO table (cols) SELECT * FROM
// unnest($1::type[], ...), an upsert on the conflict columns when set.
func unnestInsertSQL(table string, cols []column, conflict ...string) string {
	var b strings.Builder
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.name
	}
	fmt.Fprintf(&b, "INSERT INTO %s (%s) SELECT * FROM unnest(", table, strings.Join(names, ", "))
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d::%s[]", i+1, c.typ)
	}
	b.WriteString(")")
	if len(conflict) > 0 {
		fmt.Fprintf(&b, " ON CONFLICT (%s) DO UPDATE SET ", strings.Join(conflict, ", "))
		first := true
		for _, c := range cols {
			if slices.Contains(conflict, c.name) {
				continue
			}
			if !first {
				b.WriteString(", ")
			}
			first = false
			fmt.Fprintf(&b, "%s = excluded.%s", c.name, c.name)
		}
	}
	return b.String()
}

var (
	upsertRunsSQL     = unnestInsertSQL("runs", runColumnList, "id")
	upsertTaskRunsSQL = unnestInsertSQL("task_runs", taskRunColumnList, "run_id", "key", "id") + " WHERE " + sqlcore.TaskRunUpsertGuard
	insertEventsSQL   = unnestInsertSQL("events", eventColumnList)
	insertLogsSQL     = unnestInsertSQL("logs", logColumnList)
	upsertCacheSQL    = unnestInsertSQL("cache", cacheColumnList, "key")
)

// The *Columns types collect a table's rows column by column, the arrays
// that the unnest statements take.

type runColumns struct {
	id, flow, state, parentRunID, parentStepKey, resultRef, ownerHost, queue, idemKey, workerID []string
	parameters, result, errJSON, attempts                                                       []*string
	attempt, createdAt, updatedAt, startedAt, endedAt, ownerPID, ownerStart, leaseUntil         []int64
}

func (c *runColumns) add(r *store.Run) error {
	e, err := encError(r.Error)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	a, err := sqlcore.EncAttempts(r.Attempts)
	if err != nil {
		return fmt.Errorf("run %s: %w", r.ID, err)
	}
	c.id = append(c.id, r.ID)
	c.flow = append(c.flow, r.Flow)
	c.state = append(c.state, string(r.State))
	c.attempt = append(c.attempt, int64(r.Attempt))
	c.parentRunID = append(c.parentRunID, r.ParentRunID)
	c.parentStepKey = append(c.parentStepKey, r.ParentStepKey)
	c.parameters = append(c.parameters, encJSON(r.Parameters))
	c.result = append(c.result, encResult(r.Result, r.ResultRef))
	c.resultRef = append(c.resultRef, r.ResultRef)
	c.errJSON = append(c.errJSON, e)
	c.createdAt = append(c.createdAt, encTime(r.CreatedAt))
	c.updatedAt = append(c.updatedAt, encTime(r.UpdatedAt))
	c.startedAt = append(c.startedAt, encTime(r.StartedAt))
	c.endedAt = append(c.endedAt, encTime(r.EndedAt))
	c.ownerHost = append(c.ownerHost, r.OwnerHost)
	c.ownerPID = append(c.ownerPID, int64(r.OwnerPID))
	c.ownerStart = append(c.ownerStart, r.OwnerStart)
	c.queue = append(c.queue, r.Queue)
	c.idemKey = append(c.idemKey, r.IdempotencyKey)
	c.workerID = append(c.workerID, r.WorkerID)
	c.leaseUntil = append(c.leaseUntil, encTime(r.LeaseUntil))
	c.attempts = append(c.attempts, textElem(a))
	return nil
}

func (c *runColumns) args() []any {
	return []any{c.id, c.flow, c.state, c.attempt, c.parentRunID, c.parentStepKey, c.parameters, c.result,
		c.resultRef, c.errJSON, c.createdAt, c.updatedAt, c.startedAt, c.endedAt, c.ownerHost, c.ownerPID,
		c.ownerStart, c.queue, c.idemKey, c.workerID, c.leaseUntil, c.attempts}
}

type taskRunColumns struct {
	id, runID, key, task, childRunID, state, inputHash, identity, inputRef, resultRef, cachedFrom, cachedFromRun, queue, workerID, tags, deps, mapKey []string
	input, result, errJSON, history                                                                                                                   []*string
	attempts, flowAttempt, createdAt, startedAt, endedAt, leaseUntil                                                                                  []int64
}

func (c *taskRunColumns) add(t *store.TaskRun) error {
	e, err := encError(t.Error)
	if err != nil {
		return fmt.Errorf("task run %s: %w", t.ID, err)
	}
	h, err := encHistory(t.History)
	if err != nil {
		return fmt.Errorf("task run %s: %w", t.ID, err)
	}
	c.id = append(c.id, t.ID)
	c.runID = append(c.runID, t.RunID)
	c.key = append(c.key, t.Key)
	c.task = append(c.task, t.Task)
	c.childRunID = append(c.childRunID, t.ChildRunID)
	c.state = append(c.state, string(t.State))
	c.attempts = append(c.attempts, int64(t.Attempts))
	c.flowAttempt = append(c.flowAttempt, int64(t.FlowAttempt))
	c.inputHash = append(c.inputHash, t.InputHash)
	c.identity = append(c.identity, t.Identity)
	c.inputRef = append(c.inputRef, t.InputRef)
	c.input = append(c.input, encJSON(t.Input))
	c.result = append(c.result, encResult(t.Result, t.ResultRef))
	c.resultRef = append(c.resultRef, t.ResultRef)
	c.errJSON = append(c.errJSON, e)
	c.cachedFrom = append(c.cachedFrom, t.CachedFrom)
	c.cachedFromRun = append(c.cachedFromRun, t.CachedFromRun)
	c.createdAt = append(c.createdAt, encTime(t.CreatedAt))
	c.startedAt = append(c.startedAt, encTime(t.StartedAt))
	c.endedAt = append(c.endedAt, encTime(t.EndedAt))
	c.history = append(c.history, h)
	c.queue = append(c.queue, t.Queue)
	c.workerID = append(c.workerID, t.WorkerID)
	c.leaseUntil = append(c.leaseUntil, encTime(t.LeaseUntil))
	c.tags = append(c.tags, store.EncTags(t.Tags))
	c.deps = append(c.deps, store.EncTags(t.Deps))
	c.mapKey = append(c.mapKey, t.Map)
	return nil
}

func (c *taskRunColumns) args() []any {
	return []any{c.id, c.runID, c.key, c.task, c.childRunID, c.state, c.attempts, c.flowAttempt, c.inputHash,
		c.identity, c.input, c.inputRef, c.result, c.resultRef, c.errJSON, c.cachedFrom, c.cachedFromRun, c.createdAt, c.startedAt,
		c.endedAt, c.history, c.queue, c.workerID, c.leaseUntil, c.tags, c.deps, c.mapKey}
}

type eventColumns struct {
	runID, taskRunID, taskKey, from, to, cause, message []string
	at                                                  []int64
}

func (c *eventColumns) add(e *store.Event) {
	c.runID = append(c.runID, e.RunID)
	c.taskRunID = append(c.taskRunID, e.TaskRunID)
	c.taskKey = append(c.taskKey, e.TaskKey)
	c.from = append(c.from, e.From)
	c.to = append(c.to, e.To)
	c.cause = append(c.cause, store.EncodeText(e.Cause))
	c.message = append(c.message, store.EncodeText(e.Message))
	c.at = append(c.at, encTime(e.At))
}

func (c *eventColumns) args() []any {
	return []any{c.runID, c.taskRunID, c.taskKey, c.from, c.to, c.cause, c.message, c.at}
}

type logColumns struct {
	runID, taskRunID, taskKey, level, message []string
	attrs                                     []*string
	at                                        []int64
}

func (c *logColumns) add(l *store.LogRecord) {
	c.runID = append(c.runID, l.RunID)
	c.taskRunID = append(c.taskRunID, l.TaskRunID)
	c.taskKey = append(c.taskKey, l.TaskKey)
	c.level = append(c.level, l.Level)
	c.message = append(c.message, store.EncodeText(l.Message))
	c.attrs = append(c.attrs, encJSON(l.Attrs))
	c.at = append(c.at, encTime(l.At))
}

func (c *logColumns) args() []any {
	return []any{c.runID, c.taskRunID, c.taskKey, c.level, c.message, c.attrs, c.at}
}

type cacheColumns struct {
	key, task, resultRef, runID, taskRunID []string
	result                                 []*string
	createdAt, expiresAt                   []int64
}

func (c *cacheColumns) add(e *store.CacheEntry) {
	c.key = append(c.key, e.Key)
	c.task = append(c.task, e.Task)
	c.result = append(c.result, encResult(e.Result, e.ResultRef))
	c.resultRef = append(c.resultRef, e.ResultRef)
	c.runID = append(c.runID, e.RunID)
	c.taskRunID = append(c.taskRunID, e.TaskRunID)
	c.createdAt = append(c.createdAt, encTime(e.CreatedAt))
	c.expiresAt = append(c.expiresAt, encTime(e.ExpiresAt))
}

func (c *cacheColumns) args() []any {
	return []any{c.key, c.task, c.result, c.resultRef, c.runID, c.taskRunID, c.createdAt, c.expiresAt}
}
