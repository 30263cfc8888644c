package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// WorkerList returns the workers seen at or after seenSince, by ID.
func (c *Core) WorkerList(ctx context.Context, seenSince time.Time) ([]store.Worker, error) {
	out, err := queryAll(ctx, c.d, func(sc Row) (store.Worker, error) {
		var (
			w                            store.Worker
			pid, capacity, started, seen int64
			queues, flows, tasks, slots  []byte
			res                          []byte
		)
		if err := sc.Scan(&w.ID, &w.Name, &w.Host, &pid, &queues, &flows, &tasks, &slots, &capacity,
			&started, &seen, &res); err != nil {
			return w, err
		}
		if err := decWorkerResources(&w, res); err != nil {
			return w, err
		}
		w.PID, w.Capacity = int(pid), int(capacity)
		w.StartedAt, w.LastSeen = DecTime(started), DecTime(seen)
		for _, x := range []struct {
			raw []byte
			dst any
		}{{queues, &w.Queues}, {flows, &w.Flows}, {tasks, &w.Tasks}, {slots, &w.Slots}} {
			if x.raw == nil {
				continue
			}
			if err := json.Unmarshal(x.raw, x.dst); err != nil {
				return w, fmt.Errorf("worker %s: %w", w.ID, err)
			}
		}
		return w, nil
	}, `SELECT id, name, host, pid, queues, flows, tasks, slots, capacity, started_at, last_seen, resources
		FROM workers WHERE last_seen >= $1 ORDER BY id`, EncTime(seenSince))
	return out, c.d.Translate(err, "list workers")
}

// RunStopList returns the CANCELLING runs and the finished runs with
// RUNNING distributed task runs, by ID.
func (c *Core) RunStopList(ctx context.Context) ([]store.RunStop, error) {
	out, err := queryAll(ctx, c.d, func(sc Row) (store.RunStop, error) {
		var (
			r       store.RunStop
			attempt int64
		)
		err := sc.Scan(&r.RunID, &attempt)
		r.Attempt = int(attempt)
		return r, err
	}, `SELECT id, attempt FROM (
		SELECT id, attempt FROM runs WHERE state = 'CANCELLING'
		UNION SELECT id, attempt FROM runs WHERE id IN (SELECT run_id FROM task_runs
			WHERE state = 'RUNNING' AND queue <> '') AND state IN `+finalRunStates+`
	) AS stop ORDER BY id`+c.sx.ByteOrder)
	return out, c.d.Translate(err, "list runs to stop")
}

// QueueList returns the statistics of the queues with unfinished work or a
// live worker, by name. The counts come from one statement (one snapshot):
// the unfinished runs of queues, the PENDING and the RUNNING distributed
// task runs (each state on its own, so that each reads its partial index),
// and the queues of the workers seen at or after seenSince.
func (c *Core) QueueList(ctx context.Context, seenSince time.Time) ([]store.QueueStats, error) {
	out := []store.QueueStats{}
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var (
				x                                                     store.QueueStats
				scheduled, running, tpending, tslot, trunning, oldest int64
			)
			if err := rows.Scan(&x.Queue, &scheduled, &running, &tpending, &trunning, &oldest, &tslot); err != nil {
				return err
			}
			x.RunsScheduled, x.RunsRunning = int(scheduled), int(running)
			x.TasksPending, x.TasksRunning, x.TasksAwaitingSlot = int(tpending), int(trunning), int(tslot)
			x.OldestWaiting = DecTime(oldest)
			out = append(out, x)
		}
		return nil
	}, `WITH r AS (
		SELECT queue,
			count(*) FILTER (WHERE state = 'SCHEDULED') AS scheduled,
			count(*) FILTER (WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING')) AS running,
			min(created_at) FILTER (WHERE state = 'SCHEDULED') AS oldest
		FROM `+c.sx.ActiveRunsFrom+` WHERE queue <> '' AND state NOT IN `+finalRunStates+` GROUP BY queue
	), tp AS (
		SELECT queue, count(*) AS n FROM task_runs WHERE state = 'PENDING' AND queue <> '' GROUP BY queue
	), tr AS (
		SELECT queue, count(*) AS n FROM task_runs WHERE state = 'RUNNING' AND queue <> '' GROUP BY queue
	), ts AS (
		SELECT queue, count(*) AS n FROM task_runs WHERE state = 'AWAITING_SLOT' GROUP BY queue
	), w AS (
		SELECT DISTINCT value AS queue FROM workers, `+c.sx.JSONStrings("workers.queues")+`
		WHERE last_seen >= $1 AND queues IS NOT NULL AND value <> ''
	), names AS (
		SELECT queue FROM r UNION SELECT queue FROM tp UNION SELECT queue FROM tr UNION SELECT queue FROM ts
		UNION SELECT queue FROM w
	)
	SELECT n.queue, coalesce(r.scheduled, 0), coalesce(r.running, 0), coalesce(tp.n, 0),
		coalesce(tr.n, 0), coalesce(r.oldest, 0), coalesce(ts.n, 0)
	FROM names n LEFT JOIN r ON r.queue = n.queue LEFT JOIN tp ON tp.queue = n.queue
		LEFT JOIN tr ON tr.queue = n.queue LEFT JOIN ts ON ts.queue = n.queue
	ORDER BY n.queue`+c.sx.ByteOrder, EncTime(seenSince))
	if err != nil {
		return nil, c.d.Translate(err, "list queues")
	}
	return out, nil
}

// RunsHeld counts the runs in LeasedRunStates per worker; see
// store.Store.
func (c *Core) RunsHeld(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	in := make([]string, len(store.LeasedRunStates))
	for i, st := range store.LeasedRunStates {
		in[i] = "'" + string(st) + "'"
	}
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var worker string
			var n int64
			if err := rows.Scan(&worker, &n); err != nil {
				return err
			}
			out[worker] = int(n)
		}
		return rows.Err()
	}, "SELECT worker_id, COUNT(*) FROM runs WHERE state IN ("+strings.Join(in, ", ")+") AND worker_id <> '' GROUP BY worker_id")
	return out, c.d.Translate(err, "count the runs held by workers")
}

// RunsScheduledAhead counts the SCHEDULED runs of a queue created before
// a run; see store.Store.
func (c *Core) RunsScheduledAhead(ctx context.Context, queue string, createdAt time.Time, id string) (int, error) {
	var n int64
	err := c.d.QueryRow(ctx, `SELECT COUNT(*) FROM runs WHERE state = 'SCHEDULED' AND queue = $1
		AND (created_at < $2 OR (created_at = $2 AND id < $3))`, queue, EncTime(createdAt), id).Scan(&n)
	return int(n), c.d.Translate(err, "count the runs ahead in queue %s", queue)
}
