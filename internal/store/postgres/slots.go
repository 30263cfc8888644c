package postgres

import (
	"fmt"
	"strings"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
)

// Slot claims: the task-run claims of task runs that carry tags
// (AWAITING_SLOT). A claim's first batch (claimTx) ends with the probe
// (queueSlotProbe): a read, locking nothing, of how many of the oldest
// AWAITING_SLOT task runs the claim could start had every limited tag they
// carry a free slot as the probe sees it, and which of those tags have one.
// Only when there are any, the second round trip (the one that carries
// COMMIT) holds, in order: slotLockSQL, which locks those tags'
// concurrency_limits rows FOR UPDATE in tag order (waiting for a claim that
// holds one: claims hold them only while the database executes their last
// statements, never across a round trip), then a slotClaimSQL per task-run
// claim: a statement that starts after the lock was granted, so its snapshot
// holds every slot that the claims before it took and committed. Two claims
// of one limited tag therefore never count its slots at once, on any number
// of servers: at most max_running task runs with the tag are RUNNING at any
// instant. An idle worker's claim while the tag is full reads and locks
// nothing more. Without AWAITING_SLOT task runs (task runs without tags) a
// claim pays one statement that reads an empty partial index, and no round
// trip.

// slotWindow is how many of the oldest AWAITING_SLOT task runs of a queue a
// slot claim considers for a claim of limit task runs: the ones behind it
// wait for the next claim.
func slotWindow(limit int) int { return min(16+2*limit, 1000) }

// slotLock is what the probe returned: how many candidates the claim may
// start, and the limited tags with a free slot, which the claim then locks.
// A claim that found every candidate's limit full runs no slot claim.
type slotLock struct {
	waiting int64
	locked  []string
}

// slotCandidatesSQL returns the SELECT of the oldest AWAITING_SLOT task runs
// of claim p (columns cols), with p's parameters appended to args. A claim
// of one queue compares with it, so that task_runs_slot_claim yields the
// rows in claim order and the scan stops at the LIMIT: limit, an expression
// of type bigint, or when empty slotWindow(p.Limit).
func slotCandidatesSQL(cols string, p store.TaskRunClaimParams, args *[]any, limit string) string {
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
	tasks := add(p.Tasks)
	if limit == "" {
		limit = add(int64(slotWindow(p.Limit))) + "::bigint"
	}
	return "SELECT " + cols + " FROM task_runs WHERE state = 'AWAITING_SLOT' AND " + queue +
		" AND task = ANY(" + tasks + "::text[])" +
		" AND (SELECT runs.state FROM runs WHERE runs.id = task_runs.run_id) IN ('RUNNING', 'PAUSED')" +
		" ORDER BY created_at, run_id, key, id LIMIT " + limit
}

// queueSlotProbe adds to pb the statement that reads, without locking
// anything, which candidates of the task-run claims ps could start: those
// whose limited tags all have a free slot as the statement sees them. Its
// result lands in *out: the count, and the limited tags with a free slot,
// which the second round trip locks (slotLockSQL).
func queueSlotProbe(pb *pgx.Batch, ps []store.TaskRunClaimParams, out *slotLock) {
	*out = slotLock{}
	var (
		args  []any
		parts []string
	)
	for _, p := range ps {
		if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
			continue
		}
		parts = append(parts, "("+slotCandidatesSQL("tags", p, &args, "")+")")
	}
	if len(parts) == 0 {
		return
	}
	args = append(args, encTime(nowIfZero(ps[0].At)))
	nowP := fmt.Sprintf("$%d::bigint", len(args))
	// free holds the candidates' limited tags with a slot free; waiting
	// counts the candidates none of whose limited tags is full.
	q := `WITH cand AS (` + strings.Join(parts, " UNION ALL ") + `), lim AS MATERIALIZED (
		SELECT l.tag, l.max_running FROM concurrency_limits l WHERE l.tag IN
			(SELECT json_array_elements_text(NULLIF(tags, '')::json) FROM cand)
	), free AS MATERIALIZED (
		SELECT lim.tag FROM lim LEFT JOIN (
			SELECT tg.tag, count(*) AS n
			FROM task_runs t CROSS JOIN LATERAL json_array_elements_text(NULLIF(t.tags, '')::json) AS tg(tag)
			WHERE ` + sqlcore.SlotHeld("t", nowP) + ` AND tg.tag IN (SELECT tag FROM lim)
			GROUP BY tg.tag
		) u ON u.tag = lim.tag
		WHERE coalesce(u.n, 0) < lim.max_running
	)
	SELECT (SELECT count(*) FROM cand c WHERE NOT EXISTS (
			SELECT 1 FROM json_array_elements_text(NULLIF(c.tags, '')::json) AS t(tag)
			JOIN lim ON lim.tag = t.tag
			WHERE NOT EXISTS (SELECT 1 FROM free WHERE free.tag = t.tag))),
		ARRAY(SELECT tag FROM free ORDER BY tag)`
	pb.Queue(q, args...).QueryRow(func(row pgx.Row) error {
		return row.Scan(&out.waiting, &out.locked)
	})
}

// slotLockSQL locks the limit rows $1 (sorted) until the claim commits. It
// is a statement of its own in the round trip that carries the slot claims
// and COMMIT, so the slot claims start after it was granted (their
// snapshots hold every slot that the claims before took and committed), and
// the lock is held only while the database executes them, never across a
// round trip to the server.
const slotLockSQL = `SELECT tag FROM concurrency_limits WHERE tag = ANY($1::text[]) ORDER BY tag FOR UPDATE`

// slotClaimSQL starts, among the candidates of a claim (slotCandidatesSQL,
// locked, skipping rows that other claims hold), the oldest ones that have
// a free slot of every limited tag they carry, as sqlcore.AdmitSlots
// decides: a candidate whose tag is full still counts against the
// candidates of the tag behind it, and a limited tag whose row the claim
// did not lock ($n, slotLock.locked) keeps its candidate waiting.
//
// The UPDATE finds the admitted rows by primary key: its state condition
// concatenates an empty string to the state so that it cannot match the
// partial index of the AWAITING_SLOT rows (task_runs_slot_claim). Written state =
// 'AWAITING_SLOT', the planner, with the statistics of a task_runs that a
// map had just filled (thousands of AWAITING_SLOT rows estimated at two),
// read every entry of that index and hash-joined them with the few
// admitted rows, while the claim held its tags' limit rows: 5–16 ms of the
// 8–20 ms that a slot claim took in the tag-limit bench (docs/performance.md).
func slotClaimSQL(p store.TaskRunClaimParams, limit int, locked []string, worker string, lease, at int64,
	hist *string) (string, []any) {
	var args []any
	cand := slotCandidatesSQL("run_id, key, id, tags, created_at, queue", p, &args, "")
	add := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	lockedP, limitP, queuesP, nowP := add(locked), add(int64(limit)), add(p.Queues), add(at)
	q := `WITH cand AS (` + cand + ` FOR UPDATE SKIP LOCKED
	), ct AS (
		SELECT c.run_id, c.key, c.id, tg.tag, l.max_running,
			row_number() OVER (PARTITION BY tg.tag ORDER BY c.created_at, c.run_id, c.key, c.id) - 1 AS ahead
		FROM cand c CROSS JOIN LATERAL json_array_elements_text(NULLIF(c.tags, '')::json) AS tg(tag)
		JOIN concurrency_limits l ON l.tag = tg.tag
	), used AS (
		SELECT tg.tag, count(*) AS n
		FROM task_runs t CROSS JOIN LATERAL json_array_elements_text(NULLIF(t.tags, '')::json) AS tg(tag)
		WHERE ` + sqlcore.SlotHeld("t", nowP+"::bigint") + ` AND tg.tag IN (SELECT tag FROM ct)
		GROUP BY tg.tag
	), blocked AS (
		SELECT DISTINCT ct.run_id, ct.key, ct.id FROM ct LEFT JOIN used u ON u.tag = ct.tag
		WHERE NOT (ct.tag = ANY(` + lockedP + `::text[])) OR coalesce(u.n, 0) + ct.ahead >= ct.max_running
	), free AS (
		SELECT c.run_id, c.key, c.id, c.created_at, c.queue FROM cand c
		WHERE NOT EXISTS (SELECT 1 FROM blocked b WHERE b.run_id = c.run_id AND b.key = c.key AND b.id = c.id)
	), qleft AS (` + queueLeftCTE(queuesP+"::text[]", queueTaskHoldersSQL) + `
	), admit AS (
		` + queueCapSQL("c.run_id, c.key, c.id", "free", "created_at, run_id, key, id", "qleft") + `
		ORDER BY c.created_at, c.run_id, c.key, c.id LIMIT ` + limitP + `::bigint
	)
	UPDATE task_runs SET state = 'RUNNING', worker_id = ` + add(worker) + `::text, lease_until = ` + add(lease) + `::bigint,
		started_at = CASE WHEN started_at = 0 THEN ` + add(at) + `::bigint ELSE started_at END,
		history = ` + historyAppend("history", add(hist)+"::text") + `
	WHERE (run_id, key, id) IN (SELECT run_id, key, id FROM admit) AND state || '' = 'AWAITING_SLOT'
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
	pb.Queue(slotLockSQL, lk.locked)
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

// Slot hand-off: a claim that carries completions of task runs holding
// slots of limited tags starts, in its first batch and without the limit
// rows' lock, waiting task runs with those slots (slotHandOffSQL): a task
// run that leaves RUNNING in the same transaction as one that enters it
// keeps the count of RUNNING task runs of each tag unchanged, so it needs
// neither the count under the lock nor the second round trip's wait for
// it. The slot claims of other claims count under the lock in a snapshot
// that holds either both changes or neither. The probe that follows in the
// batch sees the hand-off, so a tag whose freed slots were all handed off
// takes no lock at all.

// sqlXact matches the rows written by the current transaction.
const sqlXact = `xmin = pg_current_xact_id()::xid`

// slotHandOffSQL starts, for the task-run claim p of a claim whose
// completions are the refs (runIDs, keys, ids), the oldest AWAITING_SLOT
// candidates of p (as slotCandidatesSQL, locked, skipping rows that other
// claims hold) whose every tag that has a limit had a slot freed by those
// completions (the applied ones: rows the transaction wrote that left
// RUNNING), at most as many per tag as were freed less what earlier
// hand-offs of the transaction started, and at most p.Limit less what the
// transaction claimed for the worker in p's queues. It admits as
// slotClaimSQL does (oldest first per tag: a waiting candidate counts
// against the ones of its tags behind it), also against the tag's count and
// max_running: a tag over its limit (a lowered limit) hands nothing off, so
// its count converges down. Candidates without a limited tag are left to
// the slot claim. Without any limit (no row in concurrency_limits) it
// looks nothing up: reports of untagged task runs pay one statement that
// reads nothing.
func slotHandOffSQL(p store.TaskRunClaimParams, runIDs, keys, ids []string, worker string, lease, at int64,
	hist *string) (string, []any) {
	var args []any
	add := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	refs := `SELECT * FROM unnest(` + add(runIDs) + `::text[], ` + add(keys) + `::text[], ` + add(ids) + `::text[])`
	workerP, leaseP, limitP, queuesP, nowP := add(worker), add(lease), add(int64(p.Limit)), add(p.Queues), add(at)
	// The candidates' window: the slots freed, within the worker's room.
	window := `(SELECT CASE WHEN coalesce(sum(n), 0) = 0 THEN 0 ELSE least(sum(n), ` + limitP +
		`::bigint - (SELECT count(*) FROM mine m WHERE m.queue = ANY(` + queuesP + `::text[]))) END FROM freed)`
	cand := slotCandidatesSQL("run_id, key, id, tags, created_at, queue", p, &args, "greatest("+window+", 0)")
	q := `WITH done AS MATERIALIZED (
		SELECT t.tags FROM task_runs t WHERE (t.run_id, t.key, t.id) IN (` + refs + `) AND t.` + sqlXact + `
			AND t.tags <> '' AND t.state <> 'RUNNING' AND EXISTS (SELECT 1 FROM concurrency_limits)
	), mine AS MATERIALIZED (
		SELECT t.queue, t.tags FROM task_runs t WHERE t.state = 'RUNNING' AND t.queue <> '' AND t.worker_id = ` + workerP + `::text
			AND t.lease_until = ` + leaseP + `::bigint AND t.` + sqlXact + `
	), freed AS MATERIALIZED (
		SELECT tg.tag, count(*) - coalesce((SELECT count(*) FROM mine m
			CROSS JOIN LATERAL json_array_elements_text(NULLIF(m.tags, '')::json) AS mt(tag) WHERE mt.tag = tg.tag), 0) AS n
		FROM done d CROSS JOIN LATERAL json_array_elements_text(d.tags::json) AS tg(tag)
		WHERE tg.tag IN (SELECT tag FROM concurrency_limits)
		GROUP BY tg.tag
	), cand AS (` + cand + ` FOR UPDATE SKIP LOCKED
	), ct AS (
		SELECT c.run_id, c.key, c.id, tg.tag, l.max_running,
			row_number() OVER (PARTITION BY tg.tag ORDER BY c.created_at, c.run_id, c.key, c.id) - 1 AS ahead
		FROM cand c CROSS JOIN LATERAL json_array_elements_text(NULLIF(c.tags, '')::json) AS tg(tag)
		JOIN concurrency_limits l ON l.tag = tg.tag
	), used AS (
		SELECT tg.tag, count(*) AS n
		FROM task_runs t CROSS JOIN LATERAL json_array_elements_text(NULLIF(t.tags, '')::json) AS tg(tag)
		WHERE ` + sqlcore.SlotHeld("t", nowP+"::bigint") + ` AND tg.tag IN (SELECT tag FROM ct)
		GROUP BY tg.tag
	), blocked AS (
		SELECT DISTINCT ct.run_id, ct.key, ct.id FROM ct LEFT JOIN used u ON u.tag = ct.tag LEFT JOIN freed f ON f.tag = ct.tag
		WHERE ct.ahead >= coalesce(f.n, 0) OR coalesce(u.n, 0) + ct.ahead >= ct.max_running
	), free AS (
		SELECT c.run_id, c.key, c.id, c.created_at, c.queue FROM cand c
		WHERE EXISTS (SELECT 1 FROM ct WHERE ct.run_id = c.run_id AND ct.key = c.key AND ct.id = c.id)
			AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.run_id = c.run_id AND b.key = c.key AND b.id = c.id)
	), qleft AS (` + queueLeftCTE(queuesP+"::text[]", queueTaskHoldersSQL) + `
	), admit AS (
		` + queueCapSQL("c.run_id, c.key, c.id", "free", "created_at, run_id, key, id", "qleft") + `
		ORDER BY c.created_at, c.run_id, c.key, c.id LIMIT greatest(` + window + `, 0)
	)
	UPDATE task_runs SET state = 'RUNNING', worker_id = ` + workerP + `::text, lease_until = ` + leaseP + `::bigint,
		started_at = CASE WHEN started_at = 0 THEN ` + nowP + `::bigint ELSE started_at END,
		history = ` + historyAppend("history", add(hist)+"::text") + `
	WHERE (run_id, key, id) IN (SELECT run_id, key, id FROM admit) AND state || '' = 'AWAITING_SLOT'
	RETURNING ` + strings.Replace(taskRunSelectCols, "history", "NULL::text", 1)
	return q, args
}

// queueSlotHandOffs adds to pb, after the completions cs and the plain
// task-run claims, the slot hand-off of each task-run claim of ps; the task
// runs started are appended to out[i].
func queueSlotHandOffs(pb *pgx.Batch, ps []store.TaskRunClaimParams, cs []store.TaskRunCompletion, out [][]store.TaskRun) error {
	if len(cs) == 0 {
		return nil
	}
	runIDs, keys, ids := make([]string, len(cs)), make([]string, len(cs)), make([]string, len(cs))
	for i, c := range cs {
		runIDs[i], keys[i], ids[i] = c.Ref.RunID, c.Ref.Key, c.Ref.ID
	}
	for i, p := range ps {
		if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
			continue
		}
		at := nowIfZero(p.At)
		h, err := encHistory([]store.Transition{{At: at.UTC(), From: string(store.TaskAwaitingSlot),
			To: string(store.TaskRunning), Cause: "worker:" + p.WorkerID, Message: "claimed by worker " + p.WorkerID + " with a slot"}})
		if err != nil {
			return err
		}
		q, args := slotHandOffSQL(p, runIDs, keys, ids, p.WorkerID, encTime(p.LeaseUntil), encTime(at), h)
		dst := &out[i]
		pb.Queue(q, args...).Query(func(rows pgx.Rows) error {
			trs, err := collectTaskRuns(rows, nil)
			*dst = append(*dst, trs...)
			return err
		})
	}
	return nil
}
