package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The distributed mode: runs created on queues, claimed by workers under
// leases, distributed task runs, worker registrations, queue statistics and
// retention. Every write is one BEGIN IMMEDIATE transaction that holds the
// database's write lock from its start, so a select followed by a
// conditional update inside it is exclusive (across processes too).

// Literal SQL lists of states. Queries repeat the WHERE terms of the partial
// indexes of the migrations (0002 for the leased states) literally so that SQLite uses them.
const (
	sqlLeasedRunStates = `state IN ('PENDING', 'RUNNING', 'CANCELLING', 'AWAITING_RETRY')`
	sqlFinalRunStates  = `('COMPLETED', 'FAILED', 'CANCELLED', 'CRASHED')`
	sqlFinalTaskStates = `('COMPLETED', 'FAILED', 'TIMED_OUT', 'CACHED', 'CANCELLED', 'CRASHED')`
)

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

func nowIfZero(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}

func queryRuns(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]store.Run, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func queryTaskRuns(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, query string, args ...any) ([]store.TaskRun, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TaskRun
	for rows.Next() {
		t, err := scanTaskRun(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RunCreate inserts p.Run with an event, or returns the run that already has
// its idempotency key (created false).
func (s *Store) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	r := p.Run
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	var (
		existing *store.Run
		ns       notes
	)
	err := s.inTx(ctx, "create run "+r.ID, func(tx *sql.Tx) error {
		if r.IdempotencyKey != "" {
			old, err := scanRun(tx.QueryRowContext(ctx, "SELECT "+runSelectCols+
				" FROM runs WHERE idempotency_key = ? AND idempotency_key <> ''", r.IdempotencyKey))
			if err == nil {
				existing = &old
				return nil
			}
			if err != sql.ErrNoRows {
				return err
			}
		}
		args, err := runArgs(nil, &r)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, insertSQL("runs", runCols, 1, "")+" ON CONFLICT DO NOTHING", args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("run %s already exists: %w", r.ID, store.ErrConflict)
		}
		b := store.Batch{Events: []store.Event{{RunID: r.ID, To: string(r.State), Cause: p.Cause,
			Message: p.Message, At: r.CreatedAt}}}
		if err := s.writeBatch(ctx, tx, &b); err != nil {
			return err
		}
		ns.AddRun(&r)
		return nil
	})
	if err != nil {
		return store.Run{}, false, err
	}
	if existing != nil {
		return *existing, false, nil
	}
	s.notify.publish(ns.List)
	return roundRun(r), true, nil
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
	args := strArgs(nil, p.Queues...)
	args = strArgs(args, p.Flows...)
	args = append(args, int64(p.Limit))
	runs, err := queryRuns(ctx, tx, "SELECT "+runSelectCols+" FROM runs WHERE state = 'SCHEDULED' AND queue IN ("+
		placeholders(len(p.Queues))+") AND +flow IN ("+placeholders(len(p.Flows))+
		") ORDER BY created_at, id LIMIT ?", args...)
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
	e, err := encError(t.Error)
	if err != nil {
		return err
	}
	h, err := encHistory(t.History)
	if err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, string(t.State), int64(t.Attempts), encResult(t.Result, t.ResultRef), t.ResultRef, e,
		encTime(t.StartedAt), encTime(t.EndedAt), h, t.WorkerID, encTime(t.LeaseUntil),
		t.RunID, t.Key, t.ID, string(from))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("update task run %s: updated %d rows (%v)", t.ID, n, err)
	}
	return nil
}

// stopTaskRuns cancels the PENDING task runs of run r when its new state
// calls for it (store.StopsTaskRuns), inside the transaction that changed
// it, and notes "done" for their waiters; and it notes "cancel" when r ended
// while distributed task runs of it still run, so that servers tell their
// workers to stop them.
func stopTaskRuns(ctx context.Context, tx *sql.Tx, r *store.Run, cause string, at time.Time, ns *notes) error {
	if !store.StopsTaskRuns(r.State) {
		return nil
	}
	trs, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+
		" FROM task_runs WHERE run_id = ? AND state = 'PENDING'", r.ID)
	if err != nil {
		return err
	}
	if len(trs) > 0 {
		upd, err := tx.PrepareContext(ctx, updateTaskRunSQL)
		if err != nil {
			return err
		}
		defer upd.Close()
		for i := range trs {
			store.StopPendingTaskRun(&trs[i], r.State, cause, at)
			if err := updateTaskRun(ctx, upd, &trs[i], store.TaskPending); err != nil {
				return err
			}
		}
		ns.Add("done", r.ID)
	}
	if r.State.Final() {
		var running bool
		if err := tx.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM task_runs WHERE run_id = ?"+
			" AND state = 'RUNNING' AND queue <> '')", r.ID).Scan(&running); err != nil {
			return err
		}
		if running {
			ns.Add("cancel", r.ID)
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
	var out []store.TaskRun
	err := func() error {
		args := strArgs(nil, p.Queues...)
		args = strArgs(args, p.Tasks...)
		args = append(args, int64(p.Limit))
		trs, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE state = 'PENDING' AND queue <> '' AND queue IN ("+placeholders(len(p.Queues))+
			") AND +task IN ("+placeholders(len(p.Tasks))+")"+
			" AND EXISTS (SELECT 1 FROM runs WHERE runs.id = task_runs.run_id AND runs.state = 'RUNNING')"+
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
	s.notify.publish(ns.List)
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
			if out.TaskRuns[i], err = claimTaskRunsTx(ctx, tx, tp); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return store.ClaimResult{}, err
	}
	s.notify.publish(ns.List)
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
		}
		return s.writeBatch(ctx, tx, &b)
	}()
	if err != nil {
		return nil, notes{}, err
	}
	return applied, ns, nil
}

// TaskRunFinished returns those of refs whose task run is in a final state.
func (s *Store) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	var out []store.TaskRun
	for chunk := range slices.Chunk(refs, maxVars/3) {
		args := make([]any, 0, 3*len(chunk))
		for _, r := range chunk {
			args = append(args, r.RunID, r.Key, r.ID)
		}
		trs, err := queryTaskRuns(ctx, s.read, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE (run_id, key, id) IN (VALUES "+
			strings.TrimSuffix(strings.Repeat("(?, ?, ?), ", len(chunk)), ", ")+
			") AND state IN "+sqlFinalTaskStates, args...)
		if err != nil {
			return nil, translate(err, "finished task runs")
		}
		out = append(out, trs...)
	}
	return out, nil
}

// LeasesExtend extends the leases held by the workers to until and records
// that they were seen now.
func (s *Store) LeasesExtend(ctx context.Context, workerIDs []string, until time.Time) error {
	if len(workerIDs) == 0 {
		return nil
	}
	now := time.Now()
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

// takeBack applies to a run held by a worker the transitions that give it
// back: it appends the events to b and the final row to b.Runs, and reports
// whether the run was rescheduled. reason names what happened to the worker.
func takeBack(r *store.Run, b *store.Batch, ns *notes, at time.Time, cause string, crash bool,
	maxAttempts int, reason string) (rescheduled bool) {
	step := func(p store.RunTransitionParams) {
		b.Events = append(b.Events, store.ApplyTransition(r, &p, at))
	}
	switch {
	case r.State == store.RunCancelling:
		msg := fmt.Sprintf("cancelled: %s while the run was cancelling", reason)
		step(store.RunTransitionParams{To: store.RunCancelled, Cause: cause, Message: msg,
			Error: &store.ErrorInfo{Message: msg, Kind: "cancelled"}})
	case crash:
		msg := fmt.Sprintf("attempt %d crashed: %s", r.Attempt, reason)
		if r.State == store.RunAwaitingRetry {
			// Its attempt had failed and its worker waited out the flow's
			// retry delay: the retry is rescheduled like a crashed attempt.
			msg = fmt.Sprintf("attempt %d failed and its retry was lost: %s", r.Attempt, reason)
		}
		step(store.RunTransitionParams{To: store.RunCrashed, Cause: cause, Message: msg,
			Error: &store.ErrorInfo{Message: msg, Kind: "crashed"}})
		if r.Attempt < maxAttempts {
			rescheduled = true
			step(store.RunTransitionParams{To: store.RunAwaitingRetry, Cause: "policy",
				Message: fmt.Sprintf("attempt %d of %d crashed; retrying", r.Attempt, maxAttempts)})
			step(store.RunTransitionParams{To: store.RunScheduled, NextAttempt: true, Cause: "policy",
				Message: fmt.Sprintf("attempt %d scheduled on queue %s", r.Attempt+1, r.Queue)})
		}
	default:
		rescheduled = true
		step(store.RunTransitionParams{To: store.RunScheduled, NextAttempt: true, Cause: cause,
			Message: fmt.Sprintf("%s; attempt %d scheduled", reason, r.Attempt+1)})
	}
	b.Runs = append(b.Runs, *r)
	ns.AddRun(r)
	return rescheduled
}

// releaseTaskRuns puts the given RUNNING task runs back to PENDING without a
// worker, with a History transition.
func releaseTaskRuns(ctx context.Context, tx *sql.Tx, trs []store.TaskRun, ns *notes, at time.Time,
	cause string, message func(t *store.TaskRun) string) error {
	if len(trs) == 0 {
		return nil
	}
	upd, err := tx.PrepareContext(ctx, updateTaskRunSQL)
	if err != nil {
		return err
	}
	defer upd.Close()
	for _, t := range trs {
		t.History = append(t.History, store.Transition{At: at.UTC(), From: string(store.TaskRunning),
			To: string(store.TaskPending), Cause: cause, Message: message(&t)})
		t.State, t.WorkerID, t.LeaseUntil = store.TaskPending, "", time.Time{}
		if err := updateTaskRun(ctx, upd, &t, store.TaskRunning); err != nil {
			return err
		}
		ns.Add("tasks", t.Queue)
	}
	// Task runs of a run that is cancelling or ended are nobody's work any
	// more: they do not stay PENDING.
	seen := map[string]bool{}
	for _, t := range trs {
		if seen[t.RunID] {
			continue
		}
		seen[t.RunID] = true
		var state string
		err := tx.QueryRowContext(ctx, "SELECT state FROM runs WHERE id = ?", t.RunID).Scan(&state)
		if err == sql.ErrNoRows {
			continue
		}
		if err != nil {
			return err
		}
		if err := stopTaskRuns(ctx, tx, &store.Run{ID: t.RunID, State: store.RunState(state)}, cause, at, ns); err != nil {
			return err
		}
	}
	return nil
}

// LeasesExpire takes back the expired leases of runs and task runs; see
// store.LeasesExpireParams.
func (s *Store) LeasesExpire(ctx context.Context, p store.LeasesExpireParams) (store.LeaseExpiry, error) {
	at := nowIfZero(p.At)
	var (
		out store.LeaseExpiry
		ns  notes
	)
	err := s.inTx(ctx, "expire leases", func(tx *sql.Tx) error {
		out, ns = store.LeaseExpiry{}, notes{}
		q, args, cause := " AND lease_until <> 0 AND lease_until < ? ORDER BY lease_until, id", []any{encTime(at)}, "lease"
		if p.RunID != "" {
			q, args, cause = " AND id = ? AND worker_id <> '' AND worker_id = ?", []any{p.RunID, p.WorkerID}, "worker:"+p.WorkerID
			if p.Attempt != 0 {
				q, args = q+" AND attempt = ?", append(args, int64(p.Attempt))
			}
		}
		runs, err := queryRuns(ctx, tx, "SELECT "+runSelectCols+" FROM runs WHERE "+sqlLeasedRunStates+q, args...)
		if err != nil {
			return err
		}
		var b store.Batch
		for _, r := range runs {
			reason := fmt.Sprintf("the lease of worker %s expired at %s", r.WorkerID,
				r.LeaseUntil.Format(time.RFC3339Nano))
			if p.RunID != "" {
				reason = store.GiveBackReason(r.WorkerID, p.Reason)
			}
			if takeBack(&r, &b, &ns, at, cause, true, p.MaxAttempts, reason) {
				out.Rescheduled++
			}
			out.Crashed = append(out.Crashed, roundRun(r))
		}
		if err := s.writeBatch(ctx, tx, &b); err != nil {
			return err
		}
		for i := range b.Runs {
			if err := stopTaskRuns(ctx, tx, &b.Runs[i], "lease", at, &ns); err != nil {
				return err
			}
		}
		if p.RunID != "" {
			return nil
		}
		trs, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+" FROM task_runs WHERE state = 'RUNNING'"+
			" AND queue <> '' AND lease_until <> 0 AND lease_until < ?", encTime(at))
		if err != nil {
			return err
		}
		out.TaskRuns = len(trs)
		return releaseTaskRuns(ctx, tx, trs, &ns, at, "lease", func(t *store.TaskRun) string {
			return fmt.Sprintf("the lease of worker %s expired at %s", t.WorkerID, t.LeaseUntil.Format(time.RFC3339Nano))
		})
	})
	if err != nil {
		return store.LeaseExpiry{}, err
	}
	s.notify.publish(ns.List)
	return out, nil
}

// WorkerUpsert registers or updates w.
func (s *Store) WorkerUpsert(ctx context.Context, w store.Worker) error {
	if w.LastSeen.IsZero() {
		w.LastSeen = time.Now()
	}
	enc := func(v any, empty bool) (any, error) {
		if empty {
			return nil, nil
		}
		b, err := json.Marshal(v)
		return string(b), err
	}
	var vals [4]any
	var err error
	for i, x := range []struct {
		v     any
		empty bool
	}{{w.Queues, len(w.Queues) == 0}, {w.Flows, len(w.Flows) == 0}, {w.Tasks, len(w.Tasks) == 0},
		{w.Slots, len(w.Slots) == 0}} {
		if vals[i], err = enc(x.v, x.empty); err != nil {
			return fmt.Errorf("register worker %s: %w", w.ID, err)
		}
	}
	return s.inTx(ctx, "register worker "+w.ID, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO workers (id, name, host, pid, queues, flows, tasks, slots,
			capacity, started_at, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET name = excluded.name, host = excluded.host, pid = excluded.pid,
			queues = excluded.queues, flows = excluded.flows, tasks = excluded.tasks, slots = excluded.slots,
			capacity = excluded.capacity, started_at = excluded.started_at, last_seen = excluded.last_seen`,
			w.ID, w.Name, w.Host, int64(w.PID), vals[0], vals[1], vals[2], vals[3], int64(w.Capacity),
			encTime(w.StartedAt), encTime(w.LastSeen))
		return err
	})
}

// WorkerList returns the workers seen at or after seenSince, by ID.
func (s *Store) WorkerList(ctx context.Context, seenSince time.Time) ([]store.Worker, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, name, host, pid, queues, flows, tasks, slots, capacity,
		started_at, last_seen FROM workers WHERE last_seen >= ? ORDER BY id`, encTime(seenSince))
	if err != nil {
		return nil, translate(err, "list workers")
	}
	defer rows.Close()
	var out []store.Worker
	for rows.Next() {
		var (
			w                            store.Worker
			pid, capacity, started, seen int64
			queues, flows, tasks, slots  []byte
		)
		if err := rows.Scan(&w.ID, &w.Name, &w.Host, &pid, &queues, &flows, &tasks, &slots, &capacity,
			&started, &seen); err != nil {
			return nil, translate(err, "list workers")
		}
		w.PID, w.Capacity = int(pid), int(capacity)
		w.StartedAt, w.LastSeen = decTime(started), decTime(seen)
		for _, x := range []struct {
			raw []byte
			dst any
		}{{queues, &w.Queues}, {flows, &w.Flows}, {tasks, &w.Tasks}, {slots, &w.Slots}} {
			if x.raw == nil {
				continue
			}
			if err := json.Unmarshal(x.raw, x.dst); err != nil {
				return nil, fmt.Errorf("list workers: worker %s: %w", w.ID, err)
			}
		}
		out = append(out, w)
	}
	return out, translate(rows.Err(), "list workers")
}

// WorkerRelease deregisters a worker and gives back its runs and task runs.
func (s *Store) WorkerRelease(ctx context.Context, workerID string) error {
	return s.release(ctx, workerID, nil)
}

// LeasesRelease gives back the claims a worker does not hold (see store.Store).
func (s *Store) LeasesRelease(ctx context.Context, p store.LeasesReleaseParams) error {
	if p.WorkerID == "" {
		return nil
	}
	return s.release(ctx, p.WorkerID, &p)
}

// release gives back a worker's runs and task runs: with keep nil it
// deregisters the worker and releases everything; otherwise only unstarted
// runs and task runs missing from keep.
func (s *Store) release(ctx context.Context, workerID string, keep *store.LeasesReleaseParams) error {
	at := time.Now()
	cause := "worker:" + workerID
	reason := "worker stopped"
	runStates := sqlLeasedRunStates
	if keep != nil {
		reason = "claimed by a worker that never received it"
		runStates = "state = 'PENDING'"
	}
	var ns notes
	err := s.inTx(ctx, "release worker "+workerID, func(tx *sql.Tx) error {
		ns = notes{}
		if keep == nil {
			if _, err := tx.ExecContext(ctx, "DELETE FROM workers WHERE id = ?", workerID); err != nil {
				return err
			}
		}
		if workerID == "" {
			return nil // local runs are nobody's lease
		}
		runs, err := queryRuns(ctx, tx, "SELECT "+runSelectCols+" FROM runs WHERE "+runStates+
			" AND worker_id <> '' AND worker_id = ? ORDER BY id", workerID)
		if err != nil {
			return err
		}
		var b store.Batch
		for _, r := range runs {
			if keep != nil && slices.Contains(keep.KeepRuns, r.ID) {
				continue
			}
			takeBack(&r, &b, &ns, at, cause, false, 0, reason)
		}
		if err := s.writeBatch(ctx, tx, &b); err != nil {
			return err
		}
		for i := range b.Runs {
			if err := stopTaskRuns(ctx, tx, &b.Runs[i], cause, at, &ns); err != nil {
				return err
			}
		}
		trs, err := queryTaskRuns(ctx, tx, "SELECT "+taskRunSelectCols+
			" FROM task_runs WHERE state = 'RUNNING' AND queue <> '' AND worker_id = ?", workerID)
		if err != nil {
			return err
		}
		if keep != nil {
			trs = slices.DeleteFunc(trs, func(t store.TaskRun) bool {
				return slices.Contains(keep.KeepTaskRuns, store.TaskRunRef{RunID: t.RunID, Key: t.Key, ID: t.ID})
			})
		}
		return releaseTaskRuns(ctx, tx, trs, &ns, at, cause, func(*store.TaskRun) string { return reason })
	})
	if err != nil {
		return err
	}
	s.notify.publish(ns.List)
	return nil
}

// RunStopList returns the CANCELLING runs and the finished runs with
// RUNNING distributed task runs, by ID.
func (s *Store) RunStopList(ctx context.Context) ([]store.RunStop, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT id, attempt FROM runs WHERE state = 'CANCELLING'
		UNION SELECT id, attempt FROM runs WHERE id IN (SELECT run_id FROM task_runs
			WHERE state = 'RUNNING' AND queue <> '') AND state IN `+sqlFinalRunStates+`
		ORDER BY id`)
	if err != nil {
		return nil, translate(err, "list runs to stop")
	}
	defer rows.Close()
	var out []store.RunStop
	for rows.Next() {
		var (
			r       store.RunStop
			attempt int64
		)
		if err := rows.Scan(&r.RunID, &attempt); err != nil {
			return nil, translate(err, "list runs to stop")
		}
		r.Attempt = int(attempt)
		out = append(out, r)
	}
	return out, translate(rows.Err(), "list runs to stop")
}

// liveWorkerWindow is how recently a worker must have been seen for
// QueueList to list its queues.
const liveWorkerWindow = time.Minute

// QueueList returns the statistics of the queues with unfinished work or a
// live worker, by name.
func (s *Store) QueueList(ctx context.Context) ([]store.QueueStats, error) {
	qs := map[string]*store.QueueStats{}
	get := func(q string) *store.QueueStats {
		if x, ok := qs[q]; ok {
			return x
		}
		x := &store.QueueStats{Queue: q}
		qs[q] = x
		return x
	}
	// One read transaction: the counts come from one snapshot.
	tx, err := s.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, translate(err, "list queues")
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT queue,
		count(*) FILTER (WHERE state = 'SCHEDULED'),
		count(*) FILTER (WHERE state IN ('PENDING', 'RUNNING', 'CANCELLING')),
		min(created_at) FILTER (WHERE state = 'SCHEDULED')
		FROM runs INDEXED BY runs_active WHERE queue <> '' AND state NOT IN `+sqlFinalRunStates+`
		GROUP BY queue`)
	if err != nil {
		return nil, translate(err, "list queues")
	}
	for rows.Next() {
		var (
			q                  string
			scheduled, running int64
			oldest             sql.NullInt64
		)
		if err := rows.Scan(&q, &scheduled, &running, &oldest); err != nil {
			rows.Close()
			return nil, translate(err, "list queues")
		}
		x := get(q)
		x.RunsScheduled, x.RunsRunning = int(scheduled), int(running)
		x.OldestWaiting = decTime(oldest.Int64)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, translate(err, "list queues")
	}
	for _, state := range []store.TaskState{store.TaskPending, store.TaskRunning} {
		// One query per state, each served by its partial index.
		rows, err := tx.QueryContext(ctx, "SELECT queue, count(*) FROM task_runs WHERE state = '"+string(state)+
			"' AND queue <> '' GROUP BY queue")
		if err != nil {
			return nil, translate(err, "list queues")
		}
		for rows.Next() {
			var q string
			var n int64
			if err := rows.Scan(&q, &n); err != nil {
				rows.Close()
				return nil, translate(err, "list queues")
			}
			if state == store.TaskPending {
				get(q).TasksPending = int(n)
			} else {
				get(q).TasksRunning = int(n)
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, translate(err, "list queues")
		}
	}
	wrows, err := tx.QueryContext(ctx, "SELECT queues FROM workers WHERE last_seen >= ? AND queues IS NOT NULL",
		encTime(time.Now().Add(-liveWorkerWindow)))
	if err != nil {
		return nil, translate(err, "list queues")
	}
	for wrows.Next() {
		var raw []byte
		var names []string
		if err := wrows.Scan(&raw); err != nil {
			wrows.Close()
			return nil, translate(err, "list queues")
		}
		if err := json.Unmarshal(raw, &names); err != nil {
			wrows.Close()
			return nil, fmt.Errorf("list queues: worker queues: %w", err)
		}
		for _, q := range names {
			if q != "" {
				get(q)
			}
		}
	}
	wrows.Close()
	if err := wrows.Err(); err != nil {
		return nil, translate(err, "list queues")
	}
	out := make([]store.QueueStats, 0, len(qs))
	for _, x := range qs {
		out = append(out, *x)
	}
	slices.SortFunc(out, func(a, b store.QueueStats) int { return strings.Compare(a.Queue, b.Queue) })
	return out, nil
}

// defaultRetentionLimit is the number of runs RetentionDelete deletes when
// RetentionParams.Limit is 0.
const defaultRetentionLimit = 1000

// RetentionDelete deletes up to p.Limit finished runs that ended before
// p.Before with everything recorded for them, and returns the blob
// references nothing uses any more.
func (s *Store) RetentionDelete(ctx context.Context, p store.RetentionParams) (store.RetentionResult, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultRetentionLimit
	}
	var out store.RetentionResult
	err := s.inTx(ctx, "delete old runs", func(tx *sql.Tx) error {
		out = store.RetentionResult{}
		rows, err := tx.QueryContext(ctx, "SELECT id, result_ref FROM runs WHERE ended_at <> 0 AND ended_at < ?"+
			" AND state IN "+sqlFinalRunStates+" ORDER BY ended_at, id LIMIT ?", encTime(p.Before), int64(limit))
		if err != nil {
			return err
		}
		var ids []string
		refs := map[string]struct{}{}
		for rows.Next() {
			var id, ref string
			if err := rows.Scan(&id, &ref); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
			if ref != "" {
				refs[ref] = struct{}{}
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		for chunk := range slices.Chunk(ids, maxVars) {
			in := "(" + placeholders(len(chunk)) + ")"
			args := strArgs(nil, chunk...)
			for _, q := range []string{
				"SELECT result_ref FROM task_runs WHERE run_id IN " + in + " AND result_ref <> ''",
				"SELECT result_ref FROM cache WHERE run_id IN " + in + " AND result_ref <> ''",
			} {
				rows, err := tx.QueryContext(ctx, q, args...)
				if err != nil {
					return err
				}
				for rows.Next() {
					var ref string
					if err := rows.Scan(&ref); err != nil {
						rows.Close()
						return err
					}
					refs[ref] = struct{}{}
				}
				rows.Close()
				if err := rows.Err(); err != nil {
					return err
				}
			}
			for _, q := range []string{
				"DELETE FROM task_runs WHERE run_id IN " + in,
				"DELETE FROM events WHERE run_id IN " + in,
				"DELETE FROM logs WHERE run_id IN " + in,
				"DELETE FROM cache WHERE run_id IN " + in,
				"DELETE FROM runs WHERE id IN " + in,
			} {
				if _, err := tx.ExecContext(ctx, q, args...); err != nil {
					return err
				}
			}
		}
		out.Runs = len(ids)
		used, err := tx.PrepareContext(ctx, `SELECT
			EXISTS (SELECT 1 FROM runs WHERE result_ref = ?1 AND result_ref <> '') OR
			EXISTS (SELECT 1 FROM task_runs WHERE result_ref = ?1 AND result_ref <> '') OR
			EXISTS (SELECT 1 FROM cache WHERE result_ref = ?1 AND result_ref <> '')`)
		if err != nil {
			return err
		}
		defer used.Close()
		for ref := range refs {
			var inUse bool
			if err := used.QueryRowContext(ctx, ref).Scan(&inUse); err != nil {
				return err
			}
			if !inUse {
				out.OrphanRefs = append(out.OrphanRefs, ref)
			}
		}
		slices.Sort(out.OrphanRefs)
		return nil
	})
	if err != nil {
		return store.RetentionResult{}, err
	}
	return out, nil
}
