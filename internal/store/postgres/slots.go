package postgres

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

// Slot claims: the task-run claims of task runs that carry tags
// (AWAITING_SLOT). A claim's first batch (claimTx) ends with slotLockSQL:
// it locks, FOR UPDATE SKIP LOCKED in tag order, the concurrency_limits
// rows of the tags of the oldest AWAITING_SLOT task runs the claim could
// start, and returns how many there are and which tags it locked. A limit
// row another claim holds is skipped, not waited for: that claim takes the
// free slots of the tag, and this one starts none of its task runs (they
// stay for the next claim) instead of queueing behind it; every idle
// worker's claim contended for the row otherwise. Only when there are
// any, the second round trip (the one that carries COMMIT) holds a
// slotClaimSQL per task-run claim: a statement that starts after the lock
// was granted, so its snapshot holds every slot that the claims before it
// took and committed. Two claims of one limited tag therefore never count
// its slots at once, on any number of servers: at most max_running task
// runs with the tag are RUNNING at any instant. Without AWAITING_SLOT task
// runs (task runs without tags) a claim pays one statement that reads an
// empty partial index, and no round trip.

// slotWindow is how many of the oldest AWAITING_SLOT task runs of a queue a
// slot claim considers for a claim of limit task runs: the ones behind it
// wait for the next claim.
func slotWindow(limit int) int { return min(16+2*limit, 1000) }

// slotLock is what slotLockSQL returned: how many candidates the claim
// may start (their limited tags are locked by it), and the tags it locked.
// A claim that found every candidate's limit held by another claim runs no
// slot claim: it would lock candidates it cannot start.
type slotLock struct {
	waiting int64
	locked  []string
}

// slotCandidatesSQL returns the SELECT of the oldest AWAITING_SLOT task runs
// of claim p (columns cols), with p's parameters appended to args. A claim
// of one queue compares with it, so that task_runs_slot_claim yields the
// rows in claim order and the scan stops at the LIMIT.
func slotCandidatesSQL(cols string, p store.TaskRunClaimParams, args *[]any) string {
	add := func(v any) string {
		*args = append(*args, v)
		return fmt.Sprintf("$%d", len(*args))
	}
	var queue string
	if len(p.Queues) == 1 {
		queue = "queue = " + add(p.Queues[0]) + "::text"
	} else {
		queue = "queue = ANY(" + add(p.Queues) + "::text[])"
	}
	return "SELECT " + cols + " FROM task_runs WHERE state = 'AWAITING_SLOT' AND " + queue +
		" AND task = ANY(" + add(p.Tasks) + "::text[])" +
		" AND (SELECT runs.state FROM runs WHERE runs.id = task_runs.run_id) IN ('RUNNING', 'PAUSED')" +
		" ORDER BY created_at, run_id, key, id LIMIT " + add(int64(slotWindow(p.Limit))) + "::bigint"
}

// queueSlotLock adds to pb the statement that locks the limits of the
// candidates of the task-run claims ps; its result lands in *out.
func queueSlotLock(pb *pgx.Batch, ps []store.TaskRunClaimParams, out *slotLock) {
	*out = slotLock{}
	var (
		args  []any
		parts []string
	)
	for _, p := range ps {
		if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
			continue
		}
		parts = append(parts, "("+slotCandidatesSQL("tags", p, &args)+")")
	}
	if len(parts) == 0 {
		return
	}
	// waiting counts the candidates the claim may start: those whose
	// limited tags it all locked (none for tags without limits).
	q := `WITH cand AS (` + strings.Join(parts, " UNION ALL ") + `), lk AS MATERIALIZED (
		SELECT tag FROM concurrency_limits WHERE tag IN
			(SELECT json_array_elements_text(NULLIF(tags, '')::json) FROM cand)
		ORDER BY tag FOR UPDATE SKIP LOCKED
	)
	SELECT (SELECT count(*) FROM cand c WHERE NOT EXISTS (
			SELECT 1 FROM json_array_elements_text(NULLIF(c.tags, '')::json) AS t(tag)
			JOIN concurrency_limits l ON l.tag = t.tag
			WHERE NOT EXISTS (SELECT 1 FROM lk WHERE lk.tag = t.tag))),
		ARRAY(SELECT tag FROM lk)`
	pb.Queue(q, args...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.waiting, &out.locked)
	})
}

// slotClaimSQL starts, among the candidates of a claim (slotCandidatesSQL,
// locked, skipping rows that other claims hold), the oldest ones that have
// a free slot of every limited tag they carry, as sqlcore.AdmitSlots
// decides: a candidate whose tag is full still counts against the
// candidates of the tag behind it, and a limited tag whose row the claim
// did not lock ($n, slotLock.locked) keeps its candidate waiting.
func slotClaimSQL(p store.TaskRunClaimParams, limit int, locked []string, worker string, lease, at int64,
	hist *string) (string, []any) {
	var args []any
	cand := slotCandidatesSQL("run_id, key, id, tags, created_at", p, &args)
	add := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	lockedP, limitP := add(locked), add(int64(limit))
	q := `WITH cand AS (` + cand + ` FOR UPDATE SKIP LOCKED
	), ct AS (
		SELECT c.run_id, c.key, c.id, tg.tag, l.max_running,
			row_number() OVER (PARTITION BY tg.tag ORDER BY c.created_at, c.run_id, c.key, c.id) - 1 AS ahead
		FROM cand c CROSS JOIN LATERAL json_array_elements_text(NULLIF(c.tags, '')::json) AS tg(tag)
		JOIN concurrency_limits l ON l.tag = tg.tag
	), used AS (
		SELECT tg.tag, count(*) AS n
		FROM task_runs t CROSS JOIN LATERAL json_array_elements_text(NULLIF(t.tags, '')::json) AS tg(tag)
		WHERE t.state = 'RUNNING' AND t.tags <> '' AND tg.tag IN (SELECT tag FROM ct)
		GROUP BY tg.tag
	), blocked AS (
		SELECT DISTINCT ct.run_id, ct.key, ct.id FROM ct LEFT JOIN used u ON u.tag = ct.tag
		WHERE NOT (ct.tag = ANY(` + lockedP + `::text[])) OR coalesce(u.n, 0) + ct.ahead >= ct.max_running
	), admit AS (
		SELECT c.run_id, c.key, c.id FROM cand c
		WHERE NOT EXISTS (SELECT 1 FROM blocked b WHERE b.run_id = c.run_id AND b.key = c.key AND b.id = c.id)
		ORDER BY c.created_at, c.run_id, c.key, c.id LIMIT ` + limitP + `::bigint
	)
	UPDATE task_runs SET state = 'RUNNING', worker_id = ` + add(worker) + `::text, lease_until = ` + add(lease) + `::bigint,
		started_at = CASE WHEN started_at = 0 THEN ` + add(at) + `::bigint ELSE started_at END,
		history = ` + historyAppend("history", add(hist)+"::text") + `
	WHERE (run_id, key, id) IN (SELECT run_id, key, id FROM admit) AND state = 'AWAITING_SLOT'
	RETURNING ` + strings.Replace(taskRunSelectCols, "history", "NULL::text", 1)
	return q, args
}

// queueSlotClaims adds to pb, when the lock found candidates, the slot
// claim of each task-run claim of ps for what its plain claim left of its
// limit; the task runs started are appended to out[i].
func queueSlotClaims(pb *pgx.Batch, ps []store.TaskRunClaimParams, lk *slotLock, out [][]store.TaskRun) error {
	if lk.waiting == 0 {
		return nil
	}
	for i, p := range ps {
		if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
			continue
		}
		left := p.Limit - len(out[i])
		if left < 1 {
			continue
		}
		at := nowIfZero(p.At)
		h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskAwaitingSlot),
			To: string(store.TaskRunning), Cause: "worker:" + p.WorkerID, Message: "claimed by worker " + p.WorkerID + " with a slot"}})
		if err != nil {
			return err
		}
		q, args := slotClaimSQL(p, left, lk.locked, p.WorkerID, encTime(p.LeaseUntil), encTime(at), h)
		dst := &out[i]
		pb.Queue(q, args...).Query(func(rows pgx.Rows) error {
			trs, err := collectTaskRuns(rows, nil)
			*dst = append(*dst, trs...)
			return err
		})
	}
	return nil
}
