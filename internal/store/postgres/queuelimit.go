package postgres

import (
	"slices"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

// Queue concurrency limits (store.WorkQueue.MaxRunning). A claim's first
// batch locks, right after the worker's claim lock, the work_queues rows
// of the limited queues it claims from (queueLockSQL, FOR UPDATE in name
// order; queues without a limit lock nothing). Every claim statement after
// it takes its snapshot once the lock was granted, so it sees every slot
// that the claims before took and committed (and those its own transaction
// took in earlier statements), and each one caps, per queue, what it
// claims by what the queue has left (queueLeftCTE): two claims of one
// limited queue never count at once, on any number of servers. The lock is
// held until the claim's COMMIT: claims of a limited queue take turns,
// which costs a round trip each; claims of other queues are not delayed.

// queueLockSQL locks the rows of the limited queues among $1 until the
// claim commits.
const queueLockSQL = `SELECT name FROM work_queues WHERE name = ANY($1::text[]) AND max_running > 0 ORDER BY name FOR UPDATE`

// The holders of a queue's slots (w.name), per kind of claim: the flow runs
// of the queue on a worker's lease, the RUNNING task runs of the queue.
const (
	queueRunHoldersSQL  = `SELECT count(*) FROM runs r WHERE r.queue = w.name AND r.` + sqlLeasedRunStates + ` AND r.worker_id <> ''`
	queueTaskHoldersSQL = `SELECT count(*) FROM task_runs t WHERE t.queue = w.name AND t.state = 'RUNNING'`
)

// queueLeftCTE is the body of a CTE of the limited queues among queues
// (a text[] expression) with what each has left (columns name, left_n).
func queueLeftCTE(queues, holders string) string {
	return `SELECT w.name, w.max_running - (` + holders + `) AS left_n FROM work_queues w
		WHERE w.name = ANY(` + queues + `) AND w.max_running > 0`
}

// queueCapSQL returns a SELECT of the columns cols of the rows of cand (a
// CTE holding a queue column and the order columns order) that fit in what
// their queues have left in qleft (a queueLeftCTE): the first left_n of
// each limited queue in order, every row of the others.
func queueCapSQL(cols, cand, order, qleft string) string {
	return `SELECT ` + cols + ` FROM (SELECT *, row_number() OVER (PARTITION BY queue ORDER BY ` + order + `) AS queue_n
		FROM ` + cand + `) c LEFT JOIN ` + qleft + ` ql ON ql.name = c.queue WHERE ql.name IS NULL OR c.queue_n <= ql.left_n`
}

// queueQueueLock adds to pb the lock of the limited queues of claim p.
func queueQueueLock(pb *pgx.Batch, p store.ClaimParams) {
	var queues []string
	if p.Runs.Limit > 0 && len(p.Runs.Flows) > 0 {
		queues = append(queues, p.Runs.Queues...)
	}
	for _, tp := range p.Tasks {
		if tp.Limit > 0 && len(tp.Tasks) > 0 {
			queues = append(queues, tp.Queues...)
		}
	}
	if len(queues) == 0 {
		return
	}
	slices.Sort(queues)
	pb.Queue(queueLockSQL, slices.Compact(queues))
}
