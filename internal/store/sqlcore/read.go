package sqlcore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/batonhq/baton/internal/store"
)

// Literal SQL lists of states. Statements repeat the WHERE terms of the
// partial indexes of the migrations (0002 for the leased states) literally,
// so that the planners use them (PostgreSQL also in generic plans).
const (
	// LeasedRunStates is the condition that a run is in
	// store.LeasedRunStates.
	LeasedRunStates = `state IN ('PENDING', 'RUNNING', 'CANCELLING', 'AWAITING_RETRY')`
	finalRunStates  = `('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')`
	finalTaskStates = `('COMPLETED', 'FAILED', 'TIMED_OUT', 'CACHED', 'CANCELLED', 'CRASHED')`
)

// RunGet returns the run with the given ID or an error wrapping
// store.ErrNotFound.
func (c *Core) RunGet(ctx context.Context, id string) (store.Run, error) {
	r, err := ScanRun(c.d.QueryRow(ctx, "SELECT "+RunCols+" FROM runs WHERE id = $1", id))
	if err != nil {
		return store.Run{}, c.d.Translate(err, "run %s", id)
	}
	return r, nil
}

// RunList returns runs matching p, newest (by CreatedAt, then creation
// order) first, at most p.Limit of them (100 when 0).
func (c *Core) RunList(ctx context.Context, p store.RunListParams) ([]store.Run, error) {
	var (
		where []string
		a     Args
	)
	if p.Flow != "" {
		where = append(where, "flow = "+a.Add(p.Flow))
	}
	if p.State != "" {
		where = append(where, "state = "+a.Add(string(p.State)))
	}
	if p.ParentRunID != "" {
		where = append(where, "parent_run_id = "+a.Add(p.ParentRunID))
	}
	if p.Queue != "" {
		// The literal term lets SQLite use its partial index on queue.
		where = append(where, "queue = "+a.Add(p.Queue)+" AND queue <> ''")
	}
	if p.Deployment != "" {
		// The literal term lets SQLite use its partial index on deployment.
		where = append(where, "deployment = "+a.Add(p.Deployment)+" AND deployment <> ''")
	}
	if p.Tag != "" {
		names, err := c.deploymentsTagged(ctx, p.Tag)
		if err != nil {
			return nil, err
		}
		if len(names) == 0 {
			return []store.Run{}, nil
		}
		in := make([]string, len(names))
		for i, n := range names {
			in[i] = a.Add(n)
		}
		where = append(where, "deployment IN ("+strings.Join(in, ", ")+") AND deployment <> ''")
	}
	if !p.CreatedFrom.IsZero() {
		where = append(where, "created_at >= "+a.Add(EncTime(p.CreatedFrom)))
	}
	if !p.CreatedTo.IsZero() {
		where = append(where, "created_at < "+a.Add(EncTime(p.CreatedTo)))
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	list := func(where []string, a Args) ([]store.Run, error) {
		q := "SELECT " + RunCols + " FROM runs"
		if len(where) > 0 {
			q += " WHERE " + strings.Join(where, " AND ")
		}
		q += " ORDER BY created_at DESC, " + c.sx.RunTieBreak + " DESC LIMIT " + a.Add(int64(limit))
		if p.Offset > 0 {
			q += " OFFSET " + a.Add(int64(p.Offset))
		}
		out, err := queryAll(ctx, c.d, newRunScan().scan, q, a...)
		return out, c.d.Translate(err, "list runs")
	}
	if p.Search == "" {
		return list(where, a)
	}
	filters, fa := slices.Clone(where), slices.Clone(a)
	pred := c.searchPredicate(&a, p.Search)
	where = append(where, pred)
	if c.sx.SearchCandidates == nil || !searchIndexable(p.Search) {
		return list(where, a)
	}
	// The newest runs of the other filters first, at most
	// searchScanBudget more than the page needs: a term that many runs
	// hold fills the page there. The bound is the creation time of the
	// last of them (no bound when the filters hold fewer runs: the scan
	// reads them all).
	bound, err := c.searchBound(ctx, filters, fa, searchScanBudget+p.Offset+limit)
	if err != nil {
		return nil, err
	}
	if bound == nil {
		return list(where, a)
	}
	ba := slices.Clone(a)
	out, err := list(append(slices.Clone(where), "created_at >= "+ba.Add(*bound)), ba)
	if err != nil || len(out) == limit {
		return out, err
	}
	// Too few of the newest runs match: the runs the index finds, with the
	// same predicate, in the same order.
	return list(append(where, c.sx.SearchCandidates(&a, p.Search, pred)), a)
}

// searchScanBudget is how many runs RunList's search reads newest first,
// besides the page's offset and limit, before it turns to the search index
// (see docs/performance.md: measured at a million runs).
const searchScanBudget = 10_000

// searchPredicate appends the arguments of the condition that a run's id,
// flow or parameters hold term, folding ASCII case only (as
// LogListParams.Search; other characters compare as they are), and
// returns it.
func (c *Core) searchPredicate(a *Args, term string) string {
	pat := a.Add("%" + likeEscape(asciiLower(term)) + "%")
	fold := c.sx.FoldLike
	return "(" + fold("id") + " LIKE " + pat + " ESCAPE '\\' OR " + fold("flow") + " LIKE " + pat +
		" ESCAPE '\\' OR " + fold("COALESCE(parameters, '')") + " LIKE " + pat + " ESCAPE '\\')"
}

// searchIndexable reports whether the search indexes can find the runs
// that hold term: trigram indexes need 3 characters, and valid UTF-8
// without NUL (which no stored column holds).
func searchIndexable(term string) bool {
	return utf8.ValidString(term) && !strings.ContainsRune(term, 0) && utf8.RuneCountInString(term) >= 3
}

// searchBound returns the creation time of the n-th newest run that the
// conditions where hold, or nil when they hold fewer runs. It reads
// index entries only where an index serves the conditions.
func (c *Core) searchBound(ctx context.Context, where []string, a Args, n int) (*int64, error) {
	q := "SELECT created_at FROM runs"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY created_at DESC, " + c.sx.RunTieBreak + " DESC LIMIT 1 OFFSET " + a.Add(int64(n-1))
	var at int64
	err := c.d.QueryRow(ctx, q, a...).Scan(&at)
	if err = c.d.Translate(err, "list runs"); isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &at, nil
}

// RunStats counts runs by bucket of creation time and state (see
// store.RunStatsParams), reading the range of the created_at index.
func (c *Core) RunStats(ctx context.Context, p store.RunStatsParams) ([]store.RunBucketCount, error) {
	if p.Bucket <= 0 || !p.Until.After(p.Since) {
		return nil, fmt.Errorf("run stats: bucket %v must be positive and the range [%v, %v) not empty", p.Bucket, p.Since, p.Until)
	}
	var out []store.RunBucketCount
	since := EncTime(p.Since)
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var (
				b, n  int64
				state string
			)
			if err := rows.Scan(&b, &state, &n); err != nil {
				return err
			}
			out = append(out, store.RunBucketCount{Bucket: int(b), State: store.RunState(state), N: int(n)})
		}
		return nil
	}, `SELECT b, state, count(*) FROM (SELECT (created_at - $1) / $2 AS b, state FROM runs
		WHERE created_at >= $1 AND created_at < $3) x GROUP BY b, state ORDER BY b, state`,
		since, int64(p.Bucket), EncTime(p.Until))
	return out, c.d.Translate(err, "run stats")
}

// deploymentsTagged returns the names of the deployments with the tag
// (exactly: the tags column's LIKE would ignore ASCII case on SQLite only).
func (c *Core) deploymentsTagged(ctx context.Context, tag string) ([]string, error) {
	var names []string
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var (
				name string
				raw  []byte
				tags []string
			)
			if err := rows.Scan(&name, &raw); err != nil {
				return err
			}
			if err := json.Unmarshal(raw, &tags); err != nil {
				return fmt.Errorf("deployment %s: tags: %w", name, err)
			}
			if slices.Contains(tags, tag) {
				names = append(names, name)
			}
		}
		return nil
	}, "SELECT name, tags FROM deployments WHERE tags IS NOT NULL")
	return names, c.d.Translate(err, "list runs: deployments tagged %q", tag)
}

// RunChildGet returns the subflow run created by the step stepKey of the run
// parentRunID, or an error wrapping store.ErrNotFound. If several match
// (which the engine does not do), the newest is returned.
func (c *Core) RunChildGet(ctx context.Context, parentRunID, stepKey string) (store.Run, error) {
	if parentRunID == "" {
		return store.Run{}, fmt.Errorf("child run of %q at step %q: %w", parentRunID, stepKey, store.ErrNotFound)
	}
	r, err := ScanRun(c.d.QueryRow(ctx, "SELECT "+RunCols+
		" FROM runs WHERE parent_run_id = $1 AND parent_step_key = $2 ORDER BY created_at DESC, "+
		c.sx.RunTieBreak+" DESC LIMIT 1", parentRunID, stepKey))
	if err != nil {
		return store.Run{}, c.d.Translate(err, "child run of %s at step %q", parentRunID, stepKey)
	}
	return r, nil
}

// inOrder is the term of PostgreSQL's partial index task_runs_order
// (migration 0015), true of every task run: the statements that read a
// run's task runs in creation order write it so that the index serves
// them, and no other statement may use the index (SQLite's is not partial;
// the term costs it nothing).
const inOrder = "created_at >= 0"

// TaskRunList returns the task runs of p.RunID (only those of step p.Key
// when set) ordered by creation time, then ID.
func (c *Core) TaskRunList(ctx context.Context, p store.TaskRunListParams) ([]store.TaskRun, error) {
	q, args := taskRunListQuery(p)
	out, err := queryAll(ctx, c.d, newTaskRunScan().scan, q, args...)
	return out, c.d.Translate(err, "list task runs of %s", p.RunID)
}

// taskRunListQuery builds the statement of TaskRunList and its arguments.
func taskRunListQuery(p store.TaskRunListParams) (string, []any) {
	var a Args
	var b strings.Builder
	cols := TaskRunCols
	if p.Brief {
		cols = taskRunBriefCols
	}
	b.WriteString("SELECT " + cols + " FROM task_runs WHERE run_id = " + a.Add(p.RunID) + " AND " + inOrder)
	if p.Key != "" {
		b.WriteString(" AND key = " + a.Add(p.Key))
	}
	if p.ID != "" {
		b.WriteString(" AND id = " + a.Add(p.ID))
	}
	if len(p.States) > 0 {
		// Known states are written as literals, so that the planners use
		// the partial index of the failed ones (task_runs_failed, 0012).
		b.WriteString(" AND state IN (")
		for i, st := range p.States {
			if i > 0 {
				b.WriteString(", ")
			}
			if slices.Contains(store.TaskStates, st) {
				b.WriteString("'" + string(st) + "'")
			} else {
				b.WriteString(a.Add(string(st)))
			}
		}
		b.WriteString(")")
	}
	if p.Slowest {
		b.WriteString(" AND started_at <> 0 AND ended_at <> 0 ORDER BY ended_at - started_at DESC, created_at, id")
	} else {
		b.WriteString(" ORDER BY created_at, id")
	}
	if p.Limit > 0 || p.Offset > 0 {
		limit := int64(p.Limit)
		if limit <= 0 {
			limit = math.MaxInt64
		}
		b.WriteString(" LIMIT " + a.Add(limit) + " OFFSET " + a.Add(int64(max(p.Offset, 0))))
	}
	return b.String(), a
}

// TaskRunCounts counts a run's task runs per task and state.
func (c *Core) TaskRunCounts(ctx context.Context, runID string) ([]store.TaskRunCount, error) {
	out, err := queryAll(ctx, c.d, func(sc Row) (store.TaskRunCount, error) {
		var (
			n     store.TaskRunCount
			state string
			count int64
		)
		err := sc.Scan(&n.Task, &state, &count)
		n.State, n.N = store.TaskState(state), int(count)
		return n, err
	}, `SELECT task, state, COUNT(*) FROM task_runs WHERE run_id = $1 AND `+inOrder+` GROUP BY task, state ORDER BY task, state`, runID)
	return out, c.d.Translate(err, "count task runs of %s", runID)
}

// JournalList returns, for each step key of the run, its latest (by
// CreatedAt, then ID) COMPLETED or CACHED task run, and its latest
// distributed one in flight, or subflow step that did not succeed, after
// it (store.JournalFromRows), ordered by key.
func (c *Core) JournalList(ctx context.Context, runID string) ([]store.JournalEntry, error) {
	var (
		e      store.JournalEntry
		result []byte
		state  string
	)
	dest := []any{&e.Key, &e.Task, &e.Identity, &e.InputHash, &result, &e.ResultRef, &e.ChildRunID, &e.ID, &state}
	rs, err := queryAll(ctx, c.d, func(sc Row) (store.JournalEntry, error) {
		if err := sc.Scan(dest...); err != nil {
			return store.JournalEntry{}, err
		}
		x := e
		x.Result, x.State = DecJSON(result), store.TaskState(state)
		return x, nil
	}, `SELECT key, task, identity, input_hash, result, result_ref, child_run_id, id, state
		FROM task_runs WHERE run_id = $1 AND (state IN ('COMPLETED', 'CACHED', 'WAITING') OR (queue <> '' AND state IN ('PENDING', 'AWAITING_SLOT', 'RUNNING')) OR child_run_id <> '')
		ORDER BY key, created_at, id`, runID)
	if err != nil {
		return nil, c.d.Translate(err, "journal of run %s", runID)
	}
	return store.JournalFromRows(rs), nil
}

// EventList returns the events of a run merged with the History of its
// task runs, in time order (store.SortEvents). Both are read in one batch.
func (c *Core) EventList(ctx context.Context, runID string) ([]store.Event, error) {
	var out []store.Event
	err := c.d.Batch(ctx, Stmt{
		SQL: `SELECT id, run_id, task_run_id, task_key, from_state, to_state, cause, message, at
			FROM events WHERE run_id = $1 ORDER BY id`,
		Args: []any{runID},
		Scan: func(rows Rows) error {
			for rows.Next() {
				var e store.Event
				var at int64
				if err := rows.Scan(&e.ID, &e.RunID, &e.TaskRunID, &e.TaskKey, &e.From, &e.To, &e.Cause,
					&e.Message, &at); err != nil {
					return err
				}
				e.At, e.Cause, e.Message = DecTime(at), store.DecodeText(e.Cause), store.DecodeText(e.Message)
				out = append(out, e)
			}
			return nil
		},
	}, Stmt{
		SQL: `SELECT id, key, history FROM task_runs WHERE run_id = $1 AND history IS NOT NULL
			ORDER BY created_at, id`,
		Args: []any{runID},
		Scan: func(rows Rows) error {
			for rows.Next() {
				var id, key string
				var raw []byte
				if err := rows.Scan(&id, &key, &raw); err != nil {
					return err
				}
				h, err := DecHistory(raw)
				if err != nil {
					return err
				}
				for _, tr := range h {
					out = append(out, store.Event{RunID: runID, TaskRunID: id, TaskKey: key, From: tr.From, To: tr.To,
						Cause: tr.Cause, Message: tr.Message, At: tr.At})
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, c.d.Translate(err, "events of run %s", runID)
	}
	store.SortEvents(out)
	return out, nil
}

// LogList returns the logs of p.RunID (only those of step p.TaskKey when set)
// in the order they were written, at most p.Limit when it is positive.
func (c *Core) LogList(ctx context.Context, p store.LogListParams) ([]store.LogRecord, error) {
	var a Args
	q := `SELECT id, run_id, task_run_id, task_key, level, message, attrs, at FROM logs WHERE run_id = ` + a.Add(p.RunID)
	if p.TaskKey != "" {
		q += " AND task_key = " + a.Add(p.TaskKey)
	}
	if p.TaskRunID != "" {
		q += " AND task_run_id = " + a.Add(p.TaskRunID)
	}
	if p.After > 0 {
		q += " AND id > " + a.Add(p.After)
	}
	if p.Search != "" {
		// Messages are stored through store.EncodeText, so is the text
		// searched for: its plain parts are the same in both.
		q += " AND " + c.sx.ASCIILower("message") + " LIKE " + a.Add("%"+likeEscape(asciiLower(store.EncodeText(p.Search)))+"%") + " ESCAPE '\\'"
	}
	if p.MinLevel != "" {
		prefixes, ok := store.LogLevelAtLeast(p.MinLevel)
		if !ok {
			return nil, fmt.Errorf("logs of run %s: unknown level %q; levels: %v", p.RunID, p.MinLevel, store.LogLevels)
		}
		if len(prefixes) > 0 {
			ors := make([]string, len(prefixes))
			for i, pre := range prefixes {
				ors[i] = "UPPER(level) LIKE " + a.Add(pre+"%")
			}
			q += " AND (" + strings.Join(ors, " OR ") + ")"
		}
	}
	q += " ORDER BY id"
	if p.Limit > 0 {
		q += " LIMIT " + a.Add(int64(p.Limit))
	}
	out, err := queryAll(ctx, c.d, func(sc Row) (store.LogRecord, error) {
		var (
			l     store.LogRecord
			attrs []byte
			at    int64
		)
		err := sc.Scan(&l.ID, &l.RunID, &l.TaskRunID, &l.TaskKey, &l.Level, &l.Message, &attrs, &at)
		l.Attrs, l.Message, l.At = DecJSON(attrs), store.DecodeText(l.Message), DecTime(at)
		return l, err
	}, q, a...)
	return out, c.d.Translate(err, "logs of run %s", p.RunID)
}

// CacheGet returns the cache entry for key, or an error wrapping
// store.ErrNotFound when there is none or it expired at or before now.
func (c *Core) CacheGet(ctx context.Context, key string, now time.Time) (store.CacheEntry, error) {
	var (
		e                  store.CacheEntry
		result             []byte
		created, expiresAt int64
	)
	err := c.d.QueryRow(ctx, `SELECT key, task, result, result_ref, run_id, task_run_id,
		created_at, expires_at FROM cache WHERE key = $1`, key).Scan(&e.Key, &e.Task, &result,
		&e.ResultRef, &e.RunID, &e.TaskRunID, &created, &expiresAt)
	if err != nil {
		return store.CacheEntry{}, c.d.Translate(err, "cache entry %q", key)
	}
	e.Result = DecJSON(result)
	e.CreatedAt, e.ExpiresAt = DecTime(created), DecTime(expiresAt)
	if !e.ExpiresAt.IsZero() && !e.ExpiresAt.After(now) {
		return store.CacheEntry{}, fmt.Errorf("cache entry %q expired at %s: %w", key,
			e.ExpiresAt.Format(time.RFC3339Nano), store.ErrNotFound)
	}
	return e, nil
}

// FlowGet returns the latest registration of a flow, or store.ErrNotFound.
func (c *Core) FlowGet(ctx context.Context, name string) (store.Flow, error) {
	var (
		parameters, defaults []byte
		at                   int64
	)
	err := c.d.QueryRow(ctx, "SELECT parameters, defaults, registered_at FROM flows WHERE name = $1", name).
		Scan(&parameters, &defaults, &at)
	if err != nil {
		return store.Flow{}, c.d.Translate(err, "get flow %q", name)
	}
	return store.Flow{Name: name, Parameters: DecJSON(parameters), Defaults: DecJSON(defaults), RegisteredAt: DecTime(at)}, nil
}

// FlowList returns the latest registration of every flow, ordered by name.
func (c *Core) FlowList(ctx context.Context) ([]store.Flow, error) {
	out, err := queryAll(ctx, c.d, func(sc Row) (store.Flow, error) {
		var (
			f                    store.Flow
			parameters, defaults []byte
			at                   int64
		)
		if err := sc.Scan(&f.Name, &parameters, &defaults, &at); err != nil {
			return f, err
		}
		f.Parameters, f.Defaults, f.RegisteredAt = DecJSON(parameters), DecJSON(defaults), DecTime(at)
		return f, nil
	}, "SELECT name, parameters, defaults, registered_at FROM flows ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list flows: %w", err)
	}
	return out, nil
}

// TaskRunFinished returns those of refs whose task run is in a final state,
// with their outcome only (waiters need neither the input nor the history).
func (c *Core) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var a Args
	in := c.sx.RefsIn(&a, refs)
	out, err := queryAll(ctx, c.d, func(sc Row) (store.TaskRun, error) {
		var (
			t              store.TaskRun
			state          string
			attempts       int64
			result, errJSN []byte
		)
		if err := sc.Scan(&t.RunID, &t.Key, &t.ID, &t.Task, &state, &attempts, &result, &t.ResultRef, &errJSN); err != nil {
			return t, err
		}
		t.State, t.Attempts, t.Result = store.TaskState(state), int(attempts), DecJSON(result)
		var err error
		t.Error, err = DecError(errJSN)
		return t, err
	}, "SELECT run_id, key, id, task, state, attempts, result, result_ref, error FROM task_runs WHERE "+in+
		" AND state IN "+finalTaskStates, a...)
	return out, c.d.Translate(err, "finished task runs")
}

// isNotFound reports whether a translated error means that no row matched.
func isNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// asciiLower lower-cases the ASCII letters of s only, as SQLite's LOWER
// does, so that a search means the same in both stores.
func asciiLower(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, s)
}

// LikeEscape escapes the LIKE wildcards of s with backslash (the ESCAPE
// character of RunList's search, and the default of PostgreSQL's LIKE).
func LikeEscape(s string) string { return likeEscape(s) }

// likeEscape is LikeEscape.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(s)
}
