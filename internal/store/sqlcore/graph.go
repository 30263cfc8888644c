package sqlcore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The run graph (store.Graph) is aggregated here, in SQL, so that a run of
// 100,000 task runs costs the reader a few rows: one per step of its own
// and one per map. A map's items are counted from the partial index
// task_runs_map (migration 0012), in its order, without reading their
// rows; the steps of their own are read by ranges of the primary key that
// leave the maps' items out (an item's key is its map's key, ".", then
// the item). "Latest task run of a key" matters only for keys that a later
// attempt ran again (flow_attempt > 1): the counts of the earlier rows of
// those keys are taken back, found with ROW_NUMBER() (both dialects have
// window functions).

// graphMapStates are the states GraphGet counts the items of a map in,
// one column each: the aggregate streams in index order.
var graphMapStates = store.TaskStates

// graphStepRanges bounds the maps whose key ranges the steps' read skips;
// a run with more maps reads its steps in one scan.
const graphStepRanges = 32

// busySQL is the time an item ran, 0 unless it started and ended.
const busySQL = "CASE WHEN started_at <> 0 AND ended_at <> 0 THEN ended_at - started_at ELSE 0 END"

var graphMapsSQL = func() string {
	var b strings.Builder
	b.WriteString("SELECT map_key")
	for _, st := range graphMapStates {
		b.WriteString(", SUM(CASE WHEN state = '" + string(st) + "' THEN 1 ELSE 0 END)")
	}
	b.WriteString(`, COUNT(*), MIN(created_at), COALESCE(MIN(CASE WHEN started_at <> 0 THEN started_at END), 0),
		MAX(ended_at), CAST(SUM(` + busySQL + `) AS BIGINT), SUM(CASE WHEN flow_attempt > 1 THEN 1 ELSE 0 END)
		FROM task_runs WHERE run_id = $1 AND map_key <> '' GROUP BY map_key`)
	return b.String()
}()

// graphMapHeadSQL reads the task and deps of one item of a map (the items
// of one Map call share them).
const graphMapHeadSQL = `SELECT task, deps FROM task_runs WHERE run_id = $1 AND map_key = $2 AND map_key <> '' LIMIT 1`

// graphMapRetriedSQL counts, per state, the rows of a map's items that a
// later row of the same key replaced, and their time.
const graphMapRetriedSQL = `SELECT state, COUNT(*), CAST(SUM(busy) AS BIGINT) FROM (SELECT state, ` + busySQL + ` AS busy,
		ROW_NUMBER() OVER (PARTITION BY key ORDER BY created_at DESC, id DESC) AS rn
		FROM task_runs WHERE run_id = $1 AND map_key = $2 AND map_key <> '' AND key IN
		(SELECT key FROM task_runs WHERE run_id = $1 AND map_key = $2 AND map_key <> '' AND flow_attempt > 1)) replaced
		WHERE rn > 1 GROUP BY state`

const graphStepCols = "id, key, task, child_run_id, state, attempts, deps, error, created_at, started_at, ended_at"

// graphStepsSQL reads the latest task run of each step key of its own in
// the ranges of keys (lo, hi), oldest first, at most $2; an empty bound is
// open.
func graphStepsSQL(ranges [][2]string) (string, []any) {
	a := Args{nil, nil} // $1 run, $2 limit
	var parts []string
	for _, r := range ranges {
		q := "SELECT " + graphStepCols + " FROM task_runs WHERE run_id = $1 AND map_key = ''"
		if r[0] != "" {
			q += " AND key >= " + a.Add(r[0])
		}
		if r[1] != "" {
			q += " AND key < " + a.Add(r[1])
		}
		parts = append(parts, q)
	}
	return "SELECT " + graphStepCols + ", COUNT(*) OVER () FROM (SELECT " + graphStepCols +
		", ROW_NUMBER() OVER (PARTITION BY key ORDER BY created_at DESC, id DESC) AS rn FROM (" +
		strings.Join(parts, " UNION ALL ") + ") own) latest WHERE rn = 1 ORDER BY created_at, id LIMIT $2", a
}

// stepRanges returns the ranges of keys (lo inclusive, hi exclusive, ""
// open) outside the key ranges of the items of maps: one open range when
// there are more than graphStepRanges maps. Keys of their own that begin
// with a map's key and a dot (explicit keys chosen so) are left out with
// the map's items.
func stepRanges(maps []string) [][2]string {
	if len(maps) == 0 || len(maps) > graphStepRanges {
		return [][2]string{{"", ""}}
	}
	type span struct{ lo, hi string }
	spans := make([]span, 0, len(maps))
	for _, m := range maps {
		spans = append(spans, span{m + ".", m + "/"})
	}
	slices.SortFunc(spans, func(a, b span) int { return strings.Compare(a.lo, b.lo) })
	var out [][2]string
	lo := ""
	for i := 0; i < len(spans); {
		cur := spans[i]
		j := i + 1
		for ; j < len(spans) && spans[j].lo < cur.hi; j++ { // nested or overlapping
			if spans[j].hi > cur.hi {
				cur.hi = spans[j].hi
			}
		}
		out = append(out, [2]string{lo, cur.lo})
		lo, i = cur.hi, j
	}
	return append(out, [2]string{lo, ""})
}

// GraphGet returns the aggregated graph of a run; see store.Graph.
func (c *Core) GraphGet(ctx context.Context, p store.GraphGetParams) (store.Graph, error) {
	limit := p.Steps
	if limit <= 0 {
		limit = store.GraphStepsMax
	}
	var g store.Graph
	var retried []int // indexes in g.Maps of the maps with items run again
	err := c.d.Query(ctx, func(rows Rows) error {
		counts := make([]int64, len(graphMapStates))
		dest := make([]any, 0, len(counts)+7)
		var key string
		var n, created, started, ended, busy, again int64
		dest = append(dest, &key)
		for i := range counts {
			dest = append(dest, &counts[i])
		}
		dest = append(dest, &n, &created, &started, &ended, &busy, &again)
		for rows.Next() {
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			m := store.GraphMap{Key: key, Total: int(n), CreatedAt: DecTime(created), StartedAt: DecTime(started),
				Busy: time.Duration(busy)}
			counted := 0
			for i, st := range graphMapStates {
				if counts[i] > 0 {
					m.Counts = append(m.Counts, store.StateCount{State: st, N: int(counts[i])})
					counted += int(counts[i])
					if st.Final() {
						m.Finished += int(counts[i])
					}
				}
			}
			if rest := int(n) - counted; rest > 0 { // a state this reader does not know
				m.Counts = append(m.Counts, store.StateCount{State: "UNKNOWN", N: rest})
			}
			if m.Finished > 0 {
				m.EndedAt = DecTime(ended)
			}
			if again > 0 {
				retried = append(retried, len(g.Maps))
			}
			g.Maps = append(g.Maps, m)
		}
		return rows.Err()
	}, graphMapsSQL, p.RunID)
	if err != nil {
		return g, c.d.Translate(err, "graph of run %s", p.RunID)
	}
	keys := make([]string, len(g.Maps))
	for i, m := range g.Maps {
		keys[i] = m.Key
	}
	stepsSQL, stepArgs := graphStepsSQL(stepRanges(keys))
	stepArgs[0], stepArgs[1] = p.RunID, int64(limit)
	stmts := []Stmt{{SQL: stepsSQL, Args: stepArgs, Scan: func(rows Rows) error {
		for rows.Next() {
			var (
				s                       store.GraphStep
				state, deps             string
				attempts, total         int64
				errJSON                 []byte
				created, started, ended int64
			)
			if err := rows.Scan(&s.ID, &s.Key, &s.Task, &s.ChildRunID, &state, &attempts, &deps, &errJSON,
				&created, &started, &ended, &total); err != nil {
				return err
			}
			var err error
			if s.Deps, err = store.DecTags(deps); err != nil {
				return err
			}
			e, err := DecError(errJSON)
			if err != nil {
				return err
			}
			if e != nil {
				s.Error = e.Message
			}
			s.State, s.Attempts = store.TaskState(state), int(attempts)
			s.CreatedAt, s.StartedAt, s.EndedAt = DecTime(created), DecTime(started), DecTime(ended)
			g.Steps, g.StepsTotal = append(g.Steps, s), int(total)
		}
		return rows.Err()
	}}}
	for i := range g.Maps {
		m := &g.Maps[i]
		stmts = append(stmts, Stmt{SQL: graphMapHeadSQL, Args: []any{p.RunID, m.Key}, Scan: func(rows Rows) error {
			for rows.Next() {
				var deps string
				if err := rows.Scan(&m.Task, &deps); err != nil {
					return err
				}
				var err error
				if m.Deps, err = store.DecTags(deps); err != nil {
					return err
				}
			}
			return rows.Err()
		}})
	}
	for _, i := range retried {
		m := &g.Maps[i]
		stmts = append(stmts, Stmt{SQL: graphMapRetriedSQL, Args: []any{p.RunID, m.Key}, Scan: func(rows Rows) error {
			for rows.Next() {
				var state string
				var n, busy int64
				if err := rows.Scan(&state, &n, &busy); err != nil {
					return err
				}
				uncount(m, store.TaskState(state), int(n), time.Duration(busy))
			}
			return rows.Err()
		}})
	}
	if err := c.d.Batch(ctx, stmts...); err != nil {
		return g, c.d.Translate(err, "graph of run %s", p.RunID)
	}
	slices.SortFunc(g.Maps, func(a, b store.GraphMap) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	return g, nil
}

// uncount removes from m's counts n rows in state that later rows of
// their keys replaced, with their busy time.
func uncount(m *store.GraphMap, state store.TaskState, n int, busy time.Duration) {
	i := slices.IndexFunc(m.Counts, func(c store.StateCount) bool { return c.State == state })
	if i < 0 {
		return
	}
	n = min(n, m.Counts[i].N)
	if m.Counts[i].N -= n; m.Counts[i].N == 0 {
		m.Counts = slices.Delete(m.Counts, i, i+1)
	}
	m.Total -= n
	if state.Final() {
		m.Finished -= n
	}
	m.Busy -= busy
}

// qualifiedTaskRunCols is TaskRunCols of the table named tr.
var qualifiedTaskRunCols = func() string {
	cols := strings.Split(TaskRunCols, ",")
	for i, c := range cols {
		cols[i] = "tr." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}()

// MapItemList returns a page of a map's items; see store.MapItemListParams.
// It reads task_runs_map in its order (creation, then key and ID); the
// check that an item is the latest of its key runs only when some item of
// the map was run again by a later attempt (asked first: without it the
// page is an index range, and PostgreSQL plans it without JIT).
func (c *Core) MapItemList(ctx context.Context, p store.MapItemListParams) ([]store.TaskRun, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	again := false
	err := c.d.Query(ctx, func(rows Rows) error {
		again = rows.Next()
		return rows.Err()
	}, `SELECT 1 FROM task_runs WHERE run_id = $1 AND map_key = $2 AND map_key <> '' AND flow_attempt > 1 LIMIT 1`, p.RunID, p.Map)
	if err != nil {
		return nil, c.d.Translate(err, "items of map %s of run %s", p.Map, p.RunID)
	}
	var a Args
	var b strings.Builder
	run, mk := a.Add(p.RunID), a.Add(p.Map)
	// The page's keys come from the index alone (an OFFSET of 99,950
	// steps over index entries, not rows); only the page's rows are read.
	b.WriteString("SELECT " + qualifiedTaskRunCols + " FROM (SELECT key, id, created_at FROM task_runs t WHERE run_id = " + run +
		" AND map_key = " + mk + " AND map_key <> ''")
	if len(p.States) > 0 {
		b.WriteString(" AND state IN (")
		for i, st := range p.States {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.Add(string(st)))
		}
		b.WriteString(")")
	}
	if again {
		b.WriteString(` AND NOT EXISTS (SELECT 1 FROM task_runs n WHERE n.run_id = t.run_id AND n.key = t.key
			AND (n.created_at > t.created_at OR (n.created_at = t.created_at AND n.id > t.id)))`)
	}
	b.WriteString(" ORDER BY created_at, key, id LIMIT " + a.Add(int64(limit)) + " OFFSET " + a.Add(int64(p.Offset)) +
		") page JOIN task_runs tr ON tr.run_id = " + run + " AND tr.key = page.key AND tr.id = page.id ORDER BY page.created_at, page.key, page.id")
	out, err := queryAll(ctx, c.d, newTaskRunScan().scan, b.String(), a...)
	return out, c.d.Translate(err, "items of map %s of run %s", p.Map, p.RunID)
}
