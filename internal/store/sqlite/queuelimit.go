package sqlite

import (
	"context"
	"database/sql"

	"github.com/batonhq/baton/internal/store/sqlcore"
)

// Queue concurrency limits (store.WorkQueue.MaxRunning): a claim reads, in
// its write transaction (which excludes every other writer), how many slots
// each limited queue it claims from has left, and takes no more. The
// holders are counted as PostgreSQL's claims count them: the flow runs of
// the queue on a worker's lease, or the RUNNING task runs of the queue.

// Holder counts of a queue's limit, per kind of claim.
const (
	queueRunHolders  = `SELECT count(*) FROM runs r WHERE r.queue = w.name AND r.` + sqlcore.LeasedRunStates + ` AND r.worker_id <> ''`
	queueTaskHolders = `SELECT count(*) FROM task_runs t WHERE t.queue = w.name AND t.state = 'RUNNING'`
)

// queueLeft returns, for the queues among queues that have a concurrency
// limit, how many more holders (holders: queueRunHolders or
// queueTaskHolders) the limit admits now (0 or more). Queues without a
// limit are absent.
func queueLeft(ctx context.Context, tx *sql.Tx, holders string, queues []string) (map[string]int, error) {
	rows, err := tx.QueryContext(ctx, "SELECT w.name, w.max_running - ("+holders+") FROM work_queues w WHERE w.max_running > 0"+
		" AND w.name IN ("+placeholders(len(queues))+")", strArgs(nil, queues...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out map[string]int
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return nil, err
		}
		if out == nil {
			out = map[string]int{}
		}
		out[name] = max(0, int(n))
	}
	return out, rows.Err()
}

// openQueues returns the queues of queues that a claim may take from given
// left (queueLeft): those without a limit or with a slot left.
func openQueues(queues []string, left map[string]int) []string {
	if len(left) == 0 {
		return queues
	}
	var out []string
	for _, q := range queues {
		if n, limited := left[q]; !limited || n > 0 {
			out = append(out, q)
		}
	}
	return out
}

// takeSlot reports whether a candidate of queue q may be claimed given
// left, and counts it.
func takeSlot(left map[string]int, q string) bool {
	n, limited := left[q]
	if !limited {
		return true
	}
	if n < 1 {
		return false
	}
	left[q] = n - 1
	return true
}

// queueLimited reports whether queue q has a concurrency limit.
func queueLimited(ctx context.Context, tx *sql.Tx, q string) (bool, error) {
	var n int64
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM work_queues WHERE name = ? AND max_running > 0", q).Scan(&n)
	return n > 0, err
}
