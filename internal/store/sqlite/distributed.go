package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

// The distributed mode of this backend: claims of runs and task runs by
// workers, completions, lease extension, and the statements of the core's
// take-backs (tx.StopTaskRuns, tx.ReleaseTaskRuns). Every write is one
// BEGIN IMMEDIATE transaction that holds the database's write lock from its
// start, so a select followed by a conditional update inside it is
// exclusive (across processes too).

// sqlLeasedRunStates is the literal condition of the leased states, which
// the partial indexes repeat (so that SQLite uses them).
const sqlLeasedRunStates = sqlcore.LeasedRunStates

// maxVars bounds the number of bound parameters of one IN list.
const maxVars = 500

// placeholders returns "?, ?, ..." with n marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// strArgs appends ss to args.
func strArgs(args []any, ss ...string) []any {
	for _, s := range ss {
		args = append(args, s)
	}
	return args
}

// queryRuns runs a query of runSelectCols in tx.
func queryRuns(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]store.Run, error) {
	return queryRows(ctx, tx, sqlcore.CollectRuns, q, args...)
}

// queryTaskRuns runs a query of taskRunSelectCols in tx.
func queryTaskRuns(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]store.TaskRun, error) {
	return queryRows(ctx, tx, sqlcore.CollectTaskRuns, q, args...)
}

func queryRows[T any](ctx context.Context, tx *sql.Tx, collect func(sqlcore.Rows) ([]T, error), q string,
	args ...any) ([]T, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return collect(rows)
}

// RunClaim moves the oldest matching SCHEDULED runs to PENDING, leased to
// p.WorkerID; see store.RunClaimParams.
func (s *Store) RunClaim(ctx context.Context, p store.RunClaimParams) ([]store.Run, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Flows) == 0 {
		return nil, nil
	}
	var out []store.Run
	err := s.inTx(ctx, "claim runs for worker "+p.WorkerID, func(tx *sql.Tx) (err error) {
		out, err = s.claimRunsTx(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimRunsTx is RunClaim within tx.
func (s *Store) claimRunsTx(ctx context.Context, tx *sql.Tx, p store.RunClaimParams) ([]store.Run, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Flows) == 0 {
		return nil, nil
	}
	at := nowIfZero(p.At)
	left, err := queueLeft(ctx, tx, queueRunHolders, p.Queues)
	if err != nil {
		return nil, err
	}
	if p.Queues = openQueues(p.Queues, left); len(p.Queues) == 0 {
		return nil, nil
	}
	args := strArgs(nil, p.Queues...)
	args = strArgs(args, p.Flows...)
	args = append(args, encTime(at), int64(p.Limit))
	// scheduled_at: no run before its planned start (deployments create
	// runs ahead); the claim index is in this order.
	runs, err := queryRuns(ctx, tx, "SELECT "+runSelectCols+" FROM runs WHERE state = 'SCHEDULED' AND queue IN ("+
		placeholders(len(p.Queues))+") AND +flow IN ("+placeholders(len(p.Flows))+
		") AND scheduled_at <= ? ORDER BY scheduled_at, created_at, id LIMIT ?", args...)
	if err != nil || len(runs) == 0 {
		return nil, err
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE runs SET state = 'PENDING', worker_id = ?, lease_until = ?,
		updated_at = ?, owner_host = '', owner_pid = 0, owner_start = 0 WHERE id = ? AND state = 'SCHEDULED'`)
	if err != nil {
		return nil, err
	}
	defer upd.Close()
	var out []store.Run
	b := store.Batch{Events: make([]store.Event, 0, len(runs))}
	for _, r := range runs {
		if !takeSlot(left, r.Queue) {
			continue // its queue's limit is full: it waits for the next claim
		}
		res, err := upd.ExecContext(ctx, p.WorkerID, encTime(p.LeaseUntil), encTime(at), r.ID)
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return nil, fmt.Errorf("claim run %s: updated %d rows (%v)", r.ID, n, err)
		}
		r.State, r.WorkerID, r.LeaseUntil, r.UpdatedAt = store.RunPending, p.WorkerID, p.LeaseUntil, at
		r.OwnerHost, r.OwnerPID, r.OwnerStart = "", 0, 0
		b.Events = append(b.Events, store.Event{RunID: r.ID, From: string(store.RunScheduled),
			To: string(store.RunPending), Cause: "worker:" + p.WorkerID,
			Message: fmt.Sprintf("attempt %d claimed by worker %s", r.Attempt, p.WorkerID), At: at})
		out = append(out, roundRun(r))
	}
	return out, s.writeBatch(ctx, tx, &b)
}

// updateTaskRunSQL rewrites the fields of a task run that the distributed
// operations change, if the row is still in the expected state.
const updateTaskRunSQL = `UPDATE task_runs SET state = ?, attempts = ?, result = ?, result_ref = ?, error = ?,
	started_at = ?, ended_at = ?, history = ?, worker_id = ?, lease_until = ?
	WHERE run_id = ? AND key = ? AND id = ? AND state = ?`

// updateTaskRun writes t over the row that is in state from.
func updateTaskRun(ctx context.Context, st *sql.Stmt, t *store.TaskRun, from store.TaskState) error {
	e, err := sqlcore.EncError(t.Error)
	if err != nil {
		return err
	}
	h, err := encHistory(t.History)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, string(t.State), int64(t.Attempts), sqlcore.EncResult(t.Result, t.ResultRef), t.ResultRef, e,
		sqlcore.EncTime(t.StartedAt), sqlcore.EncTime(t.EndedAt), h, t.WorkerID, sqlcore.EncTime(t.LeaseUntil),
		t.RunID, t.Key, t.ID, string(from))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update task run %s: updated %d rows (%v)", t.ID, n, err)
	}
	return nil
}

// StopTaskRuns cancels the PENDING task runs of run r when its new state
// calls for it (store.StopsTaskRuns), inside the transaction that changed
// it, and notes "done" for their waiters; and it notes "cancel" when r ended
// while distributed task runs of it still run, so that servers tell their
// workers to stop them.
func (t *tx) StopTaskRuns(ctx context.Context, r *store.Run, cause string, at time.Time) error {
	if !store.StopsTaskRuns(r.State) {
		return nil
	}
	var trs []store.TaskRun
	if err := t.Query(ctx, func(rows sqlcore.Rows) (err error) {
		trs, err = sqlcore.CollectTaskRuns(rows)
		return err
	}, "SELECT "+taskRunSelectCols+" FROM task_runs WHERE run_id = ? AND state IN ('PENDING', 'WAITING', 'AWAITING_SLOT')", r.ID); err != nil {
		return err
	}
	if len(trs) > 0 {
		upd, err := t.stmt(ctx, updateTaskRunSQL)
		if err != nil {
			return err
		}
		for i := range trs {
			was := trs[i].State
			store.StopPendingTaskRun(&trs[i], r.State, cause, at)
			if err := updateTaskRun(ctx, upd, &trs[i], was); err != nil {
				return err
			}
		}
		if err := t.Exec(ctx, "UPDATE waits SET active = 0 WHERE run_id = $1 AND active = 1", r.ID); err != nil {
			return err
		}
		t.notes.Add("done", r.ID)
	}
	if r.State.Final() {
		var running bool
		if err := t.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM task_runs WHERE run_id = ?"+
			" AND state = 'RUNNING' AND queue <> '')", r.ID).Scan(&running); err != nil {
			return err
		}
		if running {
			t.notes.Add("cancel", r.ID)
		}
	}
	return nil
}

// TaskRunClaim moves the oldest matching PENDING distributed task runs of
// RUNNING runs to RUNNING, leased to p.WorkerID; see store.TaskRunClaimParams.
func (s *Store) TaskRunClaim(ctx context.Context, p store.TaskRunClaimParams) ([]store.TaskRun, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
		return nil, nil
	}
	var out []store.TaskRun
	err := s.inTx(ctx, "claim task runs for worker "+p.WorkerID, func(tx *sql.Tx) (err error) {
		out, err = claimTaskRunsTx(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// claimTaskRunsTx is TaskRunClaim within tx.
func claimTaskRunsTx(ctx context.Context, tx *sql.Tx, p store.TaskRunClaimParams) ([]store.TaskRun, error) {
	if p.Limit < 1 || len(p.Queues) == 0 || len(p.Tasks) == 0 {
		return nil, nil
	}
	at := nowIfZero(p.At)
	left, err := queueLeft(ctx, tx, queueTaskHolders, p.Queues)
	if err != nil {
		return nil, err
	}
	if p.Queues = openQueues(p.Queues, left); len(p.Queues) == 0 {
		return nil, nil
	}
	var out []store.TaskRun
	err = func() error {
		args := strArgs(nil, p.Queues...)
		args = strArgs(args, p.Tasks...)
		args = append(args, int64(p.Limit))
		trs, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE state = 'PENDING' AND queue <> '' AND queue IN ("+placeholders(len(p.Queues))+
			") AND +task IN ("+placeholders(len(p.Tasks))+")"+
			" AND EXISTS (SELECT 1 FROM runs WHERE runs.id = task_runs.run_id AND runs.state IN ('RUNNING', 'PAUSED'))"+
			" ORDER BY created_at, run_id, key, id LIMIT ?", args...)
		if err != nil || len(trs) == 0 {
			return err
		}
		upd, err := tx.PrepareContext(ctx, updateTaskRunSQL)
		if err != nil {
			return err
		}
		defer upd.Close()
		for _, t := range trs {
			if !takeSlot(left, t.Queue) {
				continue // its queue's limit is full
			}
			t.State, t.WorkerID, t.LeaseUntil = store.TaskRunning, p.WorkerID, p.LeaseUntil
			if t.StartedAt.IsZero() {
				t.StartedAt = at
			}
			t.History = append(t.History, store.Transition{At: at.UTC(), From: string(store.TaskPending),
				To: string(store.TaskRunning), Cause: "worker:" + p.WorkerID, Message: "claimed by worker " + p.WorkerID})
			if err := updateTaskRun(ctx, upd, &t, store.TaskPending); err != nil {
				return err
			}
			t.History = nil // see store.TaskRunClaimParams
			out = append(out, roundTaskRun(t))
		}
		return nil
	}()
	if err != nil {
		return nil, err
	}
	if p.Queues = openQueues(p.Queues, left); len(p.Queues) == 0 {
		return out, nil
	}
	n := p.Limit - len(out)
	if len(left) == len(p.Queues) { // every queue limited: no more than they have left
		sum := 0
		for _, q := range p.Queues {
			sum += left[q]
		}
		n = min(n, sum)
	}
	if n > 0 {
		more, err := claimSlotsTx(ctx, tx, p, n, left, at)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}

// claimSlotsTx starts up to limit of the oldest AWAITING_SLOT task runs
// of claim p that have a free slot of every limited tag they carry
// (sqlcore.AdmitSlots). The write transaction excludes every other writer,
// so the slots it counts are all the slots in use.
//
// left holds what the limited queues of p have left (queueLeft); the task
// runs started count against it.
func claimSlotsTx(ctx context.Context, tx *sql.Tx, p store.TaskRunClaimParams, limit int, left map[string]int,
	at time.Time) ([]store.TaskRun, error) {
	args := strArgs(nil, p.Queues...)
	args = strArgs(args, p.Tasks...)
	args = append(args, int64(min(16+2*p.Limit, 1000)))
	cands, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+
		" FROM task_runs WHERE state = 'AWAITING_SLOT' AND queue IN ("+placeholders(len(p.Queues))+
		") AND +task IN ("+placeholders(len(p.Tasks))+")"+
		" AND EXISTS (SELECT 1 FROM runs WHERE runs.id = task_runs.run_id AND runs.state IN ('RUNNING', 'PAUSED'))"+
		" ORDER BY created_at, run_id, key, id LIMIT ?", args...)
	if err != nil || len(cands) == 0 {
		return nil, err
	}
	if len(left) > 0 {
		// Candidates of a queue at its limit cannot start: leave them out
		// (the ones beyond what a queue has left are skipped below).
		cands = slices.DeleteFunc(cands, func(t store.TaskRun) bool { n, limited := left[t.Queue]; return limited && n < 1 })
	}
	var tags []string
	sc := make([]sqlcore.SlotCandidate, len(cands))
	for i, c := range cands {
		sc[i] = sqlcore.SlotCandidate{Ref: store.TaskRunRef{RunID: c.RunID, Key: c.Key, ID: c.ID}, Tags: c.Tags, CreatedAt: c.CreatedAt}
		for _, t := range c.Tags {
			if !slices.Contains(tags, t) {
				tags = append(tags, t)
			}
		}
	}
	limits, used, locked := map[string]int{}, map[string]int{}, map[string]bool{}
	tagList := sqlcore.JSONStrings(tags)
	rows, err := tx.QueryContext(ctx, "SELECT tag, max_running FROM concurrency_limits WHERE tag IN (SELECT value FROM json_each(?))", tagList)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var (
			tag string
			n   int64
		)
		if err := rows.Scan(&tag, &n); err != nil {
			rows.Close()
			return nil, err
		}
		limits[tag], locked[tag] = int(n), true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(limits) > 0 {
		rows, err := tx.QueryContext(ctx, "SELECT value, count(*) FROM task_runs t, json_each(NULLIF(t.tags, ''))"+
			" WHERE "+sqlcore.SlotHeld("t", "?")+" AND value IN (SELECT tag FROM concurrency_limits"+
			" WHERE tag IN (SELECT value FROM json_each(?))) GROUP BY value", encTime(at), tagList)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				tag string
				n   int64
			)
			if err := rows.Scan(&tag, &n); err != nil {
				rows.Close()
				return nil, err
			}
			used[tag] = int(n)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	admit := sqlcore.AdmitSlots(sc, limits, used, locked, limit)
	if len(admit) == 0 {
		return nil, nil
	}
	upd, err := tx.PrepareContext(ctx, updateTaskRunSQL)
	if err != nil {
		return nil, err
	}
	defer upd.Close()
	out := make([]store.TaskRun, 0, len(admit))
	for _, i := range admit {
		t := cands[i]
		if !takeSlot(left, t.Queue) {
			continue
		}
		t.State, t.WorkerID, t.LeaseUntil = store.TaskRunning, p.WorkerID, p.LeaseUntil
		if t.StartedAt.IsZero() {
			t.StartedAt = at
		}
		t.History = append(t.History, store.Transition{At: at.UTC(), From: string(store.TaskAwaitingSlot),
			To: string(store.TaskRunning), Cause: "worker:" + p.WorkerID, Message: "claimed by worker " + p.WorkerID + " with a slot"})
		if err := updateTaskRun(ctx, upd, &t, store.TaskAwaitingSlot); err != nil {
			return nil, err
		}
		t.History = nil // see store.TaskRunClaimParams
		out = append(out, roundTaskRun(t))
	}
	return out, nil
}

// TaskRunComplete applies the completions whose task run is still RUNNING
// and leased to the reporting worker, and returns their refs.
func (s *Store) TaskRunComplete(ctx context.Context, cs []store.TaskRunCompletion) ([]store.TaskRunRef, error) {
	if len(cs) == 0 {
		return nil, nil
	}
	var (
		applied []store.TaskRunRef
		ns      notes
	)
	err := s.inTx(ctx, "complete task runs", func(tx *sql.Tx) (err error) {
		applied, ns, err = s.completeTx(ctx, tx, cs)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.notify.Publish(ns.List)
	return applied, nil
}

// Claim applies a worker's claim in one transaction; see store.Store.
func (s *Store) Claim(ctx context.Context, p store.ClaimParams) (store.ClaimResult, error) {
	var (
		out store.ClaimResult
		ns  notes
	)
	err := s.inTx(ctx, "claim for worker "+p.Worker(), func(tx *sql.Tx) (err error) {
		out = store.ClaimResult{TaskRuns: make([][]store.TaskRun, len(p.Tasks))}
		if out.Applied, ns, err = s.completeTx(ctx, tx, p.Completions); err != nil {
			return err
		}
		if out.Runs, err = s.claimRunsTx(ctx, tx, p.Runs); err != nil {
			return err
		}
		for i, tp := range p.Tasks {
			if !tp.Need.IsZero() {
				continue // see store.TaskRunClaimParams.Need
			}
			if out.TaskRuns[i], err = claimTaskRunsTx(ctx, tx, tp); err != nil {
				return err
			}
		}
		return store.ClaimNeeds(p, out.TaskRuns, func(tp store.TaskRunClaimParams) ([]store.TaskRun, error) {
			return claimTaskRunsTx(ctx, tx, tp)
		})
	})
	if err != nil {
		return store.ClaimResult{}, err
	}
	s.notify.Publish(ns.List)
	return out, nil
}

// completeTx is TaskRunComplete within tx; it returns the notifications to
// publish after the commit.
func (s *Store) completeTx(ctx context.Context, tx *sql.Tx, cs []store.TaskRunCompletion) ([]store.TaskRunRef, notes, error) {
	applied, ns := []store.TaskRunRef(nil), notes{}
	if len(cs) == 0 {
		return nil, ns, nil
	}
	err := func() error {
		get, err := tx.PrepareContext(ctx, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE run_id = ? AND key = ? AND id = ?")
		if err != nil {
			return err
		}
		defer get.Close()
		upd, err := tx.PrepareContext(ctx, updateTaskRunSQL)
		if err != nil {
			return err
		}
		defer upd.Close()
		var b store.Batch
		limited := map[string]bool{}
		limitedQueue := func(q string) (bool, error) {
			l, ok := limited[q]
			if !ok {
				var err error
				if l, err = queueLimited(ctx, tx, q); err != nil {
					return false, err
				}
				limited[q] = l
			}
			return l, nil
		}
		for i := range cs {
			c := &cs[i]
			t, err := scanTaskRun(get.QueryRowContext(ctx, c.Ref.RunID, c.Ref.Key, c.Ref.ID))
			if err == sql.ErrNoRows {
				continue
			}
			if err != nil {
				return err
			}
			if t.State != store.TaskRunning || t.WorkerID != c.WorkerID || t.WorkerID == "" {
				continue
			}
			at := nowIfZero(c.At)
			t.State, t.Attempts, t.Error = c.State, c.Attempts, c.Error
			t.Result, t.ResultRef = c.Result, c.ResultRef
			t.EndedAt, t.LeaseUntil = at, time.Time{}
			t.History = append(t.History, c.History...)
			if n := len(t.History); n == 0 || t.History[n-1].To != string(c.State) {
				msg := ""
				if c.Error != nil {
					msg = c.Error.Message
				}
				t.History = append(t.History, store.Transition{At: at.UTC(), From: string(store.TaskRunning),
					To: string(c.State), Cause: "worker:" + c.WorkerID, Message: msg})
			}
			if err := updateTaskRun(ctx, upd, &t, store.TaskRunning); err != nil {
				return err
			}
			if c.Cache != nil {
				b.Cache = append(b.Cache, *c.Cache)
			}
			applied = append(applied, c.Ref)
			ns.Add("done", c.Ref.RunID)
			if len(t.Tags) > 0 {
				ns.Add("tasks", t.Queue) // its slots are free
			} else if limited, err := limitedQueue(t.Queue); err != nil {
				return err
			} else if limited {
				ns.Add("tasks", t.Queue) // its queue's slot is free
			}
		}
		hist, err := wakeOnCompletion(ctx, tx, applied, &b, &ns)
		if err != nil {
			return err
		}
		if err := s.writeBatch(ctx, tx, &b); err != nil {
			return err
		}
		return sqlcore.AppendHistory(ctx, sqlcore.SQLTx{Tx: tx}, time.Now(), hist)
	}()
	if err != nil {
		return nil, notes{}, err
	}
	return applied, ns, nil
}

// wakeOnCompletion adds to b the rescheduling of the runs of the applied
// completions that are PAUSED on a worker's queue (suspended while workers
// executed their task runs), as PostgreSQL's wakeOnCompletionSQL does, and
// returns their history entries.
func wakeOnCompletion(ctx context.Context, tx *sql.Tx, applied []store.TaskRunRef, b *store.Batch, ns *notes) ([]store.HistoryEntry, error) {
	var hist []store.HistoryEntry
	seen := map[string]bool{}
	for _, ref := range applied {
		if seen[ref.RunID] {
			continue
		}
		seen[ref.RunID] = true
		r, err := sqlcore.ScanRun(tx.QueryRowContext(ctx, "SELECT "+sqlcore.RunCols+" FROM runs WHERE id = ?", ref.RunID))
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.State != store.RunPaused || r.Queue == "" {
			continue
		}
		p := store.RunTransitionParams{ID: r.ID, To: store.RunScheduled, Cause: "task", Action: store.ActionResumed,
			Message: store.WokenByTaskMessage}
		ev := store.ApplyTransition(&r, &p, time.Now())
		b.Runs, b.Events = append(b.Runs, r), append(b.Events, ev)
		hist = append(hist, store.TransitionEntry(&r, ev, store.Actor{}, store.ActionResumed))
		ns.Add("runs", r.Queue)
	}
	return hist, nil
}

// LeasesExtend extends the leases held by the workers to p.Until and
// records that they were seen at p.At.
func (s *Store) LeasesExtend(ctx context.Context, p store.LeasesExtendParams) error {
	workerIDs, until := p.WorkerIDs, p.Until
	if len(workerIDs) == 0 {
		return nil
	}
	now := sqlcore.NowIfZero(p.At)
	return s.inTx(ctx, "extend leases", func(tx *sql.Tx) error {
		for ids := range slices.Chunk(workerIDs, maxVars) {
			in := placeholders(len(ids))
			args := strArgs([]any{encTime(until)}, ids...)
			if _, err := tx.ExecContext(ctx, "UPDATE runs SET lease_until = max(lease_until, ?) WHERE "+
				sqlLeasedRunStates+" AND worker_id <> '' AND worker_id IN ("+in+")", args...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, "UPDATE task_runs SET lease_until = max(lease_until, ?) "+
				"WHERE state = 'RUNNING' AND queue <> '' AND worker_id IN ("+in+")", args...); err != nil {
				return err
			}
			args[0] = encTime(now)
			if _, err := tx.ExecContext(ctx, "UPDATE workers SET last_seen = max(last_seen, ?) WHERE id IN ("+in+")",
				args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// ReleaseTaskRuns puts the given RUNNING task runs back to PENDING without
// a worker, with a History transition (see sqlcore.Tx).
func (t *tx) ReleaseTaskRuns(ctx context.Context, trs []store.TaskRun, at time.Time, cause string,
	message func(t *store.TaskRun) string) error {
	if len(trs) == 0 {
		return nil
	}
	upd, err := t.stmt(ctx, updateTaskRunSQL)
	if err != nil {
		return err
	}
	for _, tr := range trs {
		to := store.WaitingState(tr.Tags)
		tr.History = append(tr.History, store.Transition{At: at.UTC(), From: string(store.TaskRunning),
			To: string(to), Cause: cause, Message: message(&tr)})
		tr.State, tr.WorkerID, tr.LeaseUntil = to, "", time.Time{}
		if err := updateTaskRun(ctx, upd, &tr, store.TaskRunning); err != nil {
			return err
		}
		t.notes.Add("tasks", tr.Queue)
	}
	return nil
}
