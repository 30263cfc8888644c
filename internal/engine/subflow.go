package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/batonhq/baton/internal/store"
)

// Subflow runs def as a child flow run of this run, linked to it by the step
// key, and returns its future. On replay a completed child is reused, and a
// failed or crashed child is retried as a new attempt of the same child run.
func (fc *FlowCtx) Subflow(def *FlowDef, params json.RawMessage, explicitKey string, decode func(json.RawMessage) (any, error)) *Future {
	natural := def.Name + "/" + strconv.Itoa(fc.reserve())
	if explicitKey != "" {
		if err := checkKey(explicitKey); err != nil {
			fc.cancel(err)
			return resolvedFuture(explicitKey, nil, err)
		}
	}
	hash := Hash(params)
	p, err := fc.place(kindFlow, def.Name, "", hash, explicitKey, natural)
	if err != nil {
		fc.cancel(err)
		return resolvedFuture(p.key, nil, err)
	}
	if fc.byKey != nil {
		fc.replayedOne(p.hit != nil)
	}
	deps := fc.graph.depsFor(nil)
	fc.graph.record(p.key, deps)
	if p.hit != nil {
		raw, err := fc.e.LoadResult(p.hit.Result, p.hit.ResultRef)
		if err != nil {
			return fc.fromJournal(p.key, p.key, nil, err)
		}
		v, err := decode(raw)
		return fc.fromJournal(p.key, p.key, v, err)
	}
	// A subflow step of an earlier attempt with this identity that did not
	// succeed (p.resume) has p.key: its child run is found by that key and
	// resumed from its own journal.
	s := &step{fc: fc, key: p.key, ident: p.ident, hash: hash, fut: fc.stepFuture(p.key, p.key), deps: deps,
		call: Call{Task: &TaskDef{Name: def.Name}}}
	s.hold() // the child run's unit of work, which execute holds
	fc.outstanding.Add(1)
	fc.active.Add(1)
	go s.runChild(def, params, decode)
	return s.fut
}

func (s *step) runChild(def *FlowDef, params json.RawMessage, decode func(json.RawMessage) (any, error)) {
	fc, e := s.fc, s.fc.e
	now := e.now()
	fc.ran.Add(1)
	s.tr = store.TaskRun{
		ID: NewID(), RunID: fc.runID, Key: s.key, Task: def.Name, Identity: s.ident, State: store.TaskPending,
		FlowAttempt: fc.attempt, InputHash: s.hash, CreatedAt: now, Deps: s.deps,
	}
	s.tr.Input, s.tr.InputRef = e.storeInput(params)
	child, done, err := e.childRun(fc.ctx, fc.runID, s.key, def, params, s.hash)
	if err != nil {
		if !errors.Is(err, ErrRunActive) && !errors.Is(err, store.ErrConflict) && fc.ctx.Err() == nil {
			fc.storeFailed(err) // the store failed: the step is not the flow's to fail
		}
		s.fail(store.TaskFailed, err)
		return
	}
	s.tr.ChildRunID = child.ID
	if done { // completed earlier, but the parent crashed before journaling it
		raw, rerr := e.LoadResult(child.Result, child.ResultRef)
		var v any
		if rerr == nil {
			v, rerr = decode(raw)
		}
		if rerr != nil {
			s.fail(store.TaskFailed, rerr)
			return
		}
		s.completeChild(child, v)
		return
	}
	s.track(true)
	s.mu.Lock()
	s.tr.Attempts, s.tr.StartedAt = 1, now
	s.moveLocked(store.TaskRunning, "engine", "subflow run "+child.ID)
	tr := s.tr
	s.mu.Unlock()
	e.w.add(write{taskRuns: []store.TaskRun{tr}}, nil)
	out := e.execute(fc.ctx, def, child, false)
	if errors.Is(out.Err, ErrStoreFailed) {
		fc.storeFailed(out.Err) // the child's end was not recorded: neither can the parent's be
	}
	switch out.Run.State {
	case store.RunCompleted:
		// The parent receives the value the child's recorded result decodes
		// to, as on replay (not the child's return value as such).
		raw, err := e.LoadResult(out.Run.Result, out.Run.ResultRef)
		var v any
		if err == nil {
			v, err = decode(raw)
		}
		if err != nil {
			s.fail(store.TaskFailed, fmt.Errorf("result of subflow %s (run %s): %w", def.Name, child.ID, err))
			return
		}
		s.completeChild(out.Run, v)
	case store.RunCancelled:
		s.fail(store.TaskCancelled, fmt.Errorf("subflow %s (run %s) was cancelled: %w", def.Name, child.ID, out.Err))
	default:
		s.fail(store.TaskFailed, fmt.Errorf("subflow %s (run %s) ended %s: %w", def.Name, child.ID, out.Run.State, out.Err))
	}
}

func (s *step) completeChild(child store.Run, v any) {
	fc := s.fc
	s.mu.Lock()
	if s.abandoned {
		s.mu.Unlock()
		return
	}
	s.tr.Result, s.tr.ResultRef, s.tr.EndedAt = child.Result, child.ResultRef, fc.e.now()
	if s.tr.StartedAt.IsZero() {
		s.tr.StartedAt = s.tr.EndedAt
	}
	s.moveLocked(store.TaskCompleted, "engine", "subflow run "+child.ID)
	s.finished = true
	tr := s.tr
	s.mu.Unlock()
	s.commit(write{taskRuns: []store.TaskRun{tr}}, v, nil)
}

// childRun finds or creates the child run for a subflow step and makes it
// ready to execute. done reports that the child already COMPLETED.
func (e *Engine) childRun(ctx context.Context, parentID, key string, def *FlowDef, params json.RawMessage, hash string) (store.Run, bool, error) {
	existing, err := e.cfg.Store.RunChildGet(ctx, parentID, key)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return store.Run{}, false, err
	case existing.Flow == def.Name && Hash(existing.Parameters) == hash:
		if existing, err = e.Reconcile(ctx, existing); err != nil {
			return store.Run{}, false, err
		}
		if existing.State == store.RunCompleted {
			return existing, true, nil
		}
		if e.cfg.Worker != "" && !existing.State.Final() && existing.State != store.RunCancelling &&
			(existing.WorkerID != "" || existing.Queue == "") {
			// The child of an earlier attempt of this parent, left behind
			// by a worker that crashed or gave the parent back (or
			// rescheduled by a lease expiry on a queue nobody claims):
			// only the parent's executor runs its children, and that is
			// us now, so take it over.
			run, err := e.cfg.Store.RunTransition(ctx, store.RunTransitionParams{
				ID: existing.ID, From: []store.RunState{store.RunPending, store.RunRunning, store.RunScheduled, store.RunAwaitingRetry},
				Attempt: existing.Attempt, To: store.RunRunning, NextAttempt: true, Owner: e.owner(), Cause: "engine",
				Message: fmt.Sprintf("parent run %s resumed; attempt %d of the subflow was left %s", parentID, existing.Attempt, existing.State),
			})
			return run, false, err
		}
		run, err := e.reopen(ctx, existing, store.RunTransitionParams{Cause: "engine", Message: "parent run " + parentID + " resumed"})
		return run, false, err
	}
	fresh := e.newRun(def, params, parentID, key)
	run, _, err := e.cfg.Store.RunCreate(ctx, store.RunCreateParams{
		Run: fresh, Cause: "engine", Message: "subflow of run " + parentID + " at step " + key,
	})
	if errors.Is(err, store.ErrConflict) {
		// A retried request whose first try was applied: the run is ours.
		if cur, gerr := e.cfg.Store.RunGet(ctx, fresh.ID); gerr == nil && cur.ParentRunID == parentID && cur.ParentStepKey == key {
			return cur, false, nil
		}
	}
	return run, false, err
}
