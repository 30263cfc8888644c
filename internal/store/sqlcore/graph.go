package sqlcore

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The run graph (store.Graph) is aggregated here, in SQL, so that a run of
// 100,000 task runs costs the reader a few hundred rows: one per step of
// its own and one per map, state and set of dependencies. "Latest task run
// of a key" is ROW_NUMBER() over the key's rows, newest (created_at, then
// id) first; both dialects have window functions.

// latestRows selects the columns cols of the latest task run of each key of
// run $1 that matches cond.
func latestRows(cols, cond string) string {
	return "SELECT " + cols + " FROM (SELECT " + cols +
		", ROW_NUMBER() OVER (PARTITION BY key ORDER BY created_at DESC, id DESC) AS rn FROM task_runs WHERE run_id = $1 AND " +
		cond + ") latest WHERE rn = 1"
}

var (
	graphStepsSQL = "SELECT id, key, task, child_run_id, state, attempts, deps, error, created_at, started_at, ended_at, COUNT(*) OVER () FROM (" +
		latestRows("id, key, task, child_run_id, state, attempts, deps, error, created_at, started_at, ended_at", "map_key = ''") +
		") steps ORDER BY created_at, id LIMIT $2"
	graphMapsSQL = `SELECT map_key, MIN(task), state, deps, COUNT(*), MIN(created_at),
		COALESCE(MIN(CASE WHEN started_at <> 0 THEN started_at END), 0), MAX(ended_at),
		CAST(SUM(CASE WHEN started_at <> 0 AND ended_at <> 0 THEN ended_at - started_at ELSE 0 END) AS BIGINT)
		FROM (` + latestRows("map_key, task, state, deps, created_at, started_at, ended_at", "map_key <> ''") + `) items
		GROUP BY map_key, state, deps`
)

// GraphGet returns the aggregated graph of a run; see store.Graph.
func (c *Core) GraphGet(ctx context.Context, p store.GraphGetParams) (store.Graph, error) {
	limit := p.Steps
	if limit <= 0 {
		limit = store.GraphStepsMax
	}
	var g store.Graph
	err := c.d.Batch(ctx, Stmt{
		SQL: graphStepsSQL, Args: []any{p.RunID, int64(limit)},
		Scan: func(rows Rows) error {
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
			return nil
		},
	}, Stmt{
		SQL: graphMapsSQL, Args: []any{p.RunID},
		Scan: func(rows Rows) error {
			byKey := map[string]*store.GraphMap{}
			for rows.Next() {
				var (
					key, task, state, deps           string
					n, created, started, ended, busy int64
				)
				if err := rows.Scan(&key, &task, &state, &deps, &n, &created, &started, &ended, &busy); err != nil {
					return err
				}
				ds, err := store.DecTags(deps)
				if err != nil {
					return err
				}
				m := byKey[key]
				if m == nil {
					m = &store.GraphMap{Key: key, Task: task}
					byKey[key] = m
				}
				addMapGroup(m, store.TaskState(state), int(n), ds, DecTime(created), DecTime(started), DecTime(ended), time.Duration(busy))
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for _, m := range byKey {
				g.Maps = append(g.Maps, *m)
			}
			slices.SortFunc(g.Maps, func(a, b store.GraphMap) int {
				if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
					return c
				}
				return strings.Compare(a.Key, b.Key)
			})
			return nil
		},
	})
	return g, c.d.Translate(err, "graph of run %s", p.RunID)
}

// addMapGroup adds one aggregated row (the items of a map in one state with
// one set of dependencies) to m.
func addMapGroup(m *store.GraphMap, state store.TaskState, n int, deps []string, created, started, ended time.Time, busy time.Duration) {
	m.Total += n
	i, found := slices.BinarySearchFunc(m.Counts, state, func(c store.StateCount, s store.TaskState) int { return strings.Compare(string(c.State), string(s)) })
	if found {
		m.Counts[i].N += n
	} else {
		m.Counts = slices.Insert(m.Counts, i, store.StateCount{State: state, N: n})
	}
	for _, d := range deps {
		if j, ok := slices.BinarySearch(m.Deps, d); !ok {
			m.Deps = slices.Insert(m.Deps, j, d)
		}
	}
	if m.CreatedAt.IsZero() || created.Before(m.CreatedAt) {
		m.CreatedAt = created
	}
	if !started.IsZero() && (m.StartedAt.IsZero() || started.Before(m.StartedAt)) {
		m.StartedAt = started
	}
	if state.Final() {
		m.Finished += n
		if ended.After(m.EndedAt) {
			m.EndedAt = ended
		}
	}
	m.Busy += busy
}

// MapItemList returns a page of a map's items; see store.MapItemListParams.
func (c *Core) MapItemList(ctx context.Context, p store.MapItemListParams) ([]store.TaskRun, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 100
	}
	// Item keys are the map's key, ".", then the item (the engine's
	// SubmitMap): the key range reads only the map's part of the run's
	// primary key; map_key = keeps it exact.
	var a Args
	var b strings.Builder
	b.WriteString("SELECT " + TaskRunCols + " FROM task_runs t WHERE run_id = " + a.Add(p.RunID) +
		" AND key > " + a.Add(p.Map+".") + " AND key < " + a.Add(p.Map+"/") + " AND map_key = " + a.Add(p.Map))
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
	b.WriteString(` AND NOT EXISTS (SELECT 1 FROM task_runs n WHERE n.run_id = t.run_id AND n.key = t.key
		AND (n.created_at > t.created_at OR (n.created_at = t.created_at AND n.id > t.id)))
		ORDER BY created_at, id LIMIT ` + a.Add(int64(limit)) + " OFFSET " + a.Add(int64(p.Offset)))
	out, err := queryAll(ctx, c.d, newTaskRunScan().scan, b.String(), a...)
	return out, c.d.Translate(err, "items of map %s of run %s", p.Map, p.RunID)
}
