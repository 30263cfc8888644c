package sqlcore

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Take-backs of what workers hold: leases that expired (LeasesExpire), a
// run a worker gives back (LeasesExpire with RunID), a worker that stops
// (WorkerRelease) and claims a worker never received (LeasesRelease). Each
// is one write transaction that locks, in the writers' one order, the
// worker, then its runs by id, then its task runs by primary key; expiry
// skips rows that others hold instead (Syntax.SkipLocked).

// WorkerRelease deregisters a worker and gives back its runs and task runs.
func (c *Core) WorkerRelease(ctx context.Context, workerID string) error {
	return c.release(ctx, workerID, nil)
}

// LeasesRelease gives back the claims a worker does not hold (see
// store.Store).
func (c *Core) LeasesRelease(ctx context.Context, p store.LeasesReleaseParams) error {
	if p.WorkerID == "" {
		return nil
	}
	return c.release(ctx, p.WorkerID, &p)
}

// release gives back a worker's runs and task runs: with keep nil it
// deregisters the worker and releases everything; otherwise only unstarted
// runs and task runs missing from keep.
func (c *Core) release(ctx context.Context, workerID string, keep *store.LeasesReleaseParams) error {
	at := time.Now()
	cause := "worker:" + workerID
	reason := "worker stopped"
	runStates := LeasedRunStates
	if keep != nil {
		reason = "claimed by a worker that never received it"
		runStates = "state = 'PENDING'"
	}
	return c.d.WriteTx(ctx, "release worker "+workerID, func(tx Tx) error {
		if err := tx.AwaitClaims(ctx, workerID); err != nil {
			return err
		}
		if keep == nil {
			if err := tx.Exec(ctx, "DELETE FROM workers WHERE id = $1", workerID); err != nil {
				return err
			}
		}
		if workerID == "" {
			return nil // local runs are nobody's lease
		}
		var (
			runs []store.Run
			trs  []store.TaskRun
		)
		err := tx.Batch(ctx, Stmt{
			SQL: "SELECT " + RunCols + " FROM runs WHERE " + runStates +
				" AND worker_id <> '' AND worker_id = $1 ORDER BY id" + c.sx.ForUpdate,
			Args: []any{workerID},
			Scan: func(rows Rows) (err error) { runs, err = CollectRuns(rows); return err },
		}, Stmt{
			SQL: "SELECT " + TaskRunCols + " FROM task_runs WHERE state = 'RUNNING' AND queue <> '' AND worker_id = $1" +
				" ORDER BY run_id, key, id" + c.sx.ForUpdate,
			Args: []any{workerID},
			Scan: func(rows Rows) (err error) { trs, err = CollectTaskRuns(rows); return err },
		})
		if err != nil {
			return err
		}
		if keep != nil {
			runs = slices.DeleteFunc(runs, func(r store.Run) bool { return slices.Contains(keep.KeepRuns, r.ID) })
			trs = slices.DeleteFunc(trs, func(t store.TaskRun) bool {
				return slices.Contains(keep.KeepTaskRuns, store.TaskRunRef{RunID: t.RunID, Key: t.Key, ID: t.ID})
			})
		}
		var b store.Batch
		var h []store.HistoryEntry
		for _, r := range runs {
			takeBack(&r, &b, &h, at, cause, false, 0, reason)
		}
		if err := appendHistory(ctx, tx, at, h); err != nil {
			return err
		}
		return c.giveBack(ctx, tx, &b, trs, at, cause, cause, func(*store.TaskRun) string { return reason })
	})
}

// LeasesExpire takes back the expired leases of runs and task runs in one
// transaction, or the one run a worker gives back; see
// store.LeasesExpireParams.
func (c *Core) LeasesExpire(ctx context.Context, p store.LeasesExpireParams) (store.LeaseExpiry, error) {
	at := NowIfZero(p.At)
	var out store.LeaseExpiry
	err := c.d.WriteTx(ctx, "expire leases", func(tx Tx) error {
		out = store.LeaseExpiry{}
		a := Args{EncTime(at)}
		q, cause := " AND lease_until <> 0 AND lease_until < $1 ORDER BY lease_until, id"+c.sx.SkipLocked, "lease"
		if p.RunID != "" {
			// One run given back by its worker: wait for its lock rather
			// than skip it, or the worker would be told it holds nothing.
			a, cause = nil, "worker:"+p.WorkerID
			q = " AND id = " + a.Add(p.RunID) + " AND worker_id <> '' AND worker_id = " + a.Add(p.WorkerID)
			if p.Attempt != 0 {
				q += " AND attempt = " + a.Add(int64(p.Attempt))
			}
			q += c.sx.ForUpdate
		}
		var (
			runs []store.Run
			trs  []store.TaskRun
		)
		stmts := []Stmt{{SQL: "SELECT " + RunCols + " FROM runs WHERE " + LeasedRunStates + q, Args: a,
			Scan: func(rows Rows) (err error) { runs, err = CollectRuns(rows); return err }}}
		if p.RunID == "" {
			stmts = append(stmts, Stmt{SQL: "SELECT " + TaskRunCols + " FROM task_runs WHERE state = 'RUNNING'" +
				" AND queue <> '' AND lease_until <> 0 AND lease_until < $1 ORDER BY lease_until, run_id, key, id" +
				c.sx.SkipLocked, Args: a,
				Scan: func(rows Rows) (err error) { trs, err = CollectTaskRuns(rows); return err }})
		}
		if err := tx.Batch(ctx, stmts...); err != nil {
			return err
		}
		if len(runs) == 0 && len(trs) == 0 {
			return nil
		}
		var b store.Batch
		var h []store.HistoryEntry
		for _, r := range runs {
			reason := fmt.Sprintf("the lease of worker %s expired at %s", r.WorkerID,
				r.LeaseUntil.Format(time.RFC3339Nano))
			if p.RunID != "" {
				reason = store.GiveBackReason(r.WorkerID, p.Reason)
			}
			if takeBack(&r, &b, &h, at, cause, true, p.MaxAttempts, reason) {
				out.Rescheduled++
			}
			out.Crashed = append(out.Crashed, RoundRun(r))
		}
		out.TaskRuns = len(trs)
		if err := appendHistory(ctx, tx, at, h); err != nil {
			return err
		}
		return c.giveBack(ctx, tx, &b, trs, at, "lease", "lease", func(t *store.TaskRun) string {
			return fmt.Sprintf("the lease of worker %s expired at %s", t.WorkerID, t.LeaseUntil.Format(time.RFC3339Nano))
		})
	})
	if err != nil {
		return store.LeaseExpiry{}, err
	}
	return out, nil
}

// giveBack writes b (the runs taken back, with their events), puts the task
// runs trs back to PENDING with transitions of cause taskCause, and then
// cancels the PENDING task runs of each of those runs, and of the runs of
// trs, that is cancelling or ended (store.StopsTaskRuns), with cause
// stopCause.
func (c *Core) giveBack(ctx context.Context, tx Tx, b *store.Batch, trs []store.TaskRun, at time.Time,
	taskCause, stopCause string, message func(t *store.TaskRun) string) error {
	states := map[string]store.RunState{}
	for _, r := range b.Runs {
		states[r.ID] = r.State
	}
	var ask []string
	for _, t := range trs {
		if _, ok := states[t.RunID]; !ok {
			states[t.RunID] = ""
			ask = append(ask, t.RunID)
		}
	}
	// Read before the writes, which a dialect may then send at once.
	if len(ask) > 0 {
		var a Args
		err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var id, state string
				if err := rows.Scan(&id, &state); err != nil {
					return err
				}
				states[id] = store.RunState(state)
			}
			return nil
		}, "SELECT id, state FROM runs WHERE id"+a.in(&c.sx, ask), a...)
		if err != nil {
			return err
		}
	}
	if err := tx.WriteBatch(ctx, b); err != nil {
		return err
	}
	if err := tx.ReleaseTaskRuns(ctx, trs, at, taskCause, message); err != nil {
		return err
	}
	for _, id := range slices.Sorted(maps.Keys(states)) { // one lock order for concurrent writers
		if err := tx.StopTaskRuns(ctx, &store.Run{ID: id, State: states[id]}, stopCause, at); err != nil {
			return err
		}
	}
	return nil
}

// takeBack applies to a run held by a worker the transitions that give it
// back: it appends the events to b and the final row to b.Runs, and reports
// whether the run was rescheduled. reason names what happened to the worker.
// It appends the history entries of the transitions to h: the first one is
// the run's lease lost (cause "lease") or given back (a worker's cause).
func takeBack(r *store.Run, b *store.Batch, h *[]store.HistoryEntry, at time.Time, cause string, crash bool,
	maxAttempts int, reason string) (rescheduled bool) {
	first := true
	step := func(p store.RunTransitionParams) {
		worker := r.WorkerID
		ev := store.ApplyTransition(r, &p, at)
		b.Events = append(b.Events, ev)
		if first && cause != "lease" && p.To != store.RunCancelled {
			p.Action = store.ActionGivenBack
		}
		e := store.TransitionEntry(r, ev, store.Actor{}, p.Action)
		if first && worker != "" && r.WorkerID == "" {
			// Entering SCHEDULED cleared it: name the worker it was taken from.
			e = store.TransitionEntry(&store.Run{ID: r.ID, Attempt: r.Attempt, Queue: r.Queue, WorkerID: worker}, ev,
				store.Actor{}, p.Action)
		}
		*h = append(*h, e)
		first = false
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
	return rescheduled
}
