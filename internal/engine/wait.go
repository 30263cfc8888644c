package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// This file holds waits: steps that record what a flow waits for (typed
// input, a resume, a timer, an event) as a task run WAITING in the store
// until someone or something resolves it there (store.WaitBeginParams and
// the rest). A local run's process waits for it, polling the store, and
// fires its own due timers; the run is PAUSED meanwhile. On a worker, a
// run whose only work in flight is waits is suspended after SuspendGrace:
// it goes PAUSED without a worker, its attempt stops, and the store
// reschedules it when a wait is resolved, for a worker to replay it from
// its journal (where the wait now has its outcome).

// ErrSuspended ends an attempt on a worker whose run waits: the run is
// PAUSED in the store, held by no one, and is rescheduled when a wait of it
// is resolved.
var ErrSuspended = errors.New("the run waits: its worker released it")

// ErrDetached ends the execution of a local run that waits when its
// process is interrupted: the run stays PAUSED, and a later resume (or a
// worker, for a run on a queue) continues it from its journal.
var ErrDetached = errors.New("the run waits: this process stopped waiting for it")

// ErrWaitTimedOut is wrapped by the error of a wait whose deadline passed
// without a default.
var ErrWaitTimedOut = errors.New("wait timed out")

// WaitError is the error of a wait that did not get what it waited for.
type WaitError struct {
	Key     string // the wait step's key
	Message string
	State   store.TaskState // TIMED_OUT, CANCELLED, ...
}

func (e *WaitError) Error() string { return "wait " + e.Key + ": " + e.Message }

// Unwrap returns ErrWaitTimedOut for a wait that timed out.
func (e *WaitError) Unwrap() error {
	if e.State == store.TaskTimedOut {
		return ErrWaitTimedOut
	}
	return nil
}

// kindWait is the kind of a wait step in identities.
const kindWait = 'w'

// waitDefs are the engine definitions of wait steps, by task name.
var waitDefs sync.Map

func waitDef(task string) *TaskDef {
	if d, ok := waitDefs.Load(task); ok {
		return d.(*TaskDef)
	}
	d, _ := waitDefs.LoadOrStore(task, &TaskDef{Name: task})
	return d.(*TaskDef)
}

// flowWaits is the waiting state of a flow attempt.
type flowWaits struct {
	mu     sync.Mutex
	open   map[*step]struct{} // waits in flight
	paused bool               // the run is PAUSED in the store (a local run)
	armed  bool               // a suspension check is pending (a worker's run)
	// suspending is true while suspend records the suspension; stopped
	// once it did.
	suspending, stopped bool
	// deciding is suspending for the flow's calls, read without the lock
	// (FlowCtx.awaitSuspension); decided is closed when the suspension in
	// progress is decided.
	deciding atomic.Bool
	decided  chan struct{}
	// held are the outcomes of waits and distributed task runs that
	// arrived while the suspension was being recorded: delivered if the
	// attempt goes on, dropped if it stopped (the run's next execution
	// reads them from its journal).
	held []func()
}

// Wait records a wait of spec and returns its future, resolved with the
// value decode makes of what arrived. A wait made again on replay (the same
// spec, by the replay rule) returns its recorded outcome.
func (fc *FlowCtx) Wait(spec store.WaitSpec, decode func(json.RawMessage) (any, error)) *Future {
	task := store.WaitTask(spec)
	if err := spec.Check(); err != nil {
		return resolvedFuture(task, nil, err)
	}
	in, err := json.Marshal(spec)
	if err != nil {
		return resolvedFuture(task, nil, fmt.Errorf("encode wait: %w", err))
	}
	idx := fc.reserve()
	hash := Hash(in)
	p, err := fc.place(kindWait, task, "", hash, "", task+"/"+strconv.Itoa(idx))
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
		v, err := decode(p.hit.Result)
		return fc.fromJournal(p.key, p.key, v, err)
	}
	s := &step{fc: fc, call: Call{Task: waitDef(task), InputJSON: in, Decode: decode}, key: p.key, ident: p.ident,
		hash: hash, fut: fc.stepFuture(p.key, p.key), wait: &spec, deps: deps}
	s.hold()
	fc.outstanding.Add(1)
	fc.active.Add(1)
	if fl := p.resume; fl != nil && fl.State == store.TaskWaiting {
		// Begun by an earlier execution of this run: wait for it again.
		s.tr = store.TaskRun{ID: fl.ID, RunID: fc.runID, Key: p.key, Task: task, Identity: p.ident, State: fl.State,
			InputHash: hash, Input: in}
		s.track(true)
		s.awaitWait()
		return s.fut
	}
	s.track(true)
	go s.beginWait()
	return s.fut
}

// beginWait records the wait step; the store may answer it at once.
func (s *step) beginWait() {
	fc, e := s.fc, s.fc.e
	if err := fc.ctx.Err(); err != nil {
		s.finish(nil, context.Cause(fc.ctx))
		return
	}
	now := e.now()
	fc.ran.Add(1)
	s.tr = store.TaskRun{ID: NewID(), RunID: fc.runID, Key: s.key, Task: s.call.Task.Name, Identity: s.ident,
		State: store.TaskWaiting, FlowAttempt: fc.attempt, InputHash: s.hash, Input: s.call.InputJSON, CreatedAt: now,
		Deps: s.deps}
	// Steps recorded lazily land first: the journal keeps the flow's order.
	if err := e.w.sync(write{}); err != nil {
		fc.storeFailed(err)
		s.finish(nil, storeFailed(err))
		return
	}
	tr, err := e.cfg.Store.WaitBegin(fc.ctx, store.WaitBeginParams{TaskRun: s.tr, Spec: *s.wait, At: now,
		EventsSince: now.Add(-store.DefaultEventRetention), Validate: e.cfg.ValidateInput,
		ConsumePause: s.consume})
	if err != nil {
		if fc.ctx.Err() == nil {
			fc.storeFailed(err)
		}
		s.finish(nil, fmt.Errorf("begin wait %s: %w", s.key, err))
		return
	}
	s.mu.Lock()
	s.tr = tr
	s.mu.Unlock()
	if tr.State.Final() {
		s.waitDone(tr)
		return
	}
	s.awaitWait()
}

// awaitWait hands the WAITING step to the engine's waits poller.
func (s *step) awaitWait() {
	fc := s.fc
	s.mu.Lock()
	s.remote = true
	ref := store.TaskRunRef{RunID: s.tr.RunID, Key: s.tr.Key, ID: s.tr.ID}
	var due time.Time
	if !s.tr.CreatedAt.IsZero() { // unknown for a wait begun by an earlier execution
		due = s.wait.Deadline(s.tr.CreatedAt)
	}
	s.mu.Unlock()
	// Until the poller has read the store for the wait once, that is
	// work: its unit is taken before the step lets go of its own, so that
	// a fake clock cannot move past what the store has already resolved.
	aw := fc.e.waitsAwaiter()
	fc.e.act(1)
	s.letGo() // waiting for people, events or the clock is not work
	fc.waitOpened(s)
	aw.addWait(ref, s, due)
}

// waitDone resolves a wait step from its final task run.
func (s *step) waitDone(tr store.TaskRun) {
	fc := s.fc
	s.mu.Lock()
	if s.finished || s.abandoned {
		s.mu.Unlock()
		return
	}
	s.finished = true
	s.tr = tr
	s.mu.Unlock()
	s.hold()
	defer fc.waitClosed(s)
	if tr.State != store.TaskCompleted {
		msg := string(tr.State)
		if tr.Error != nil {
			msg = tr.Error.Message
		}
		s.finish(nil, &WaitError{Key: s.key, Message: msg, State: tr.State})
		return
	}
	v, err := s.call.Decode(tr.Result)
	if err != nil {
		err = fmt.Errorf("value of wait %s: %w", s.key, err)
	}
	s.finish(v, err)
}

// awaiter returns the awaiter that polls for the step.
func (s *step) awaiter() *awaiter {
	if s.wait != nil {
		return s.fc.e.waitsAwaiter()
	}
	return s.fc.e.remote
}

// localWaitPoll is how often a local run's process reads the store for
// the outcome of its waits (and fires their due timers) by default
// (Config.WaitPoll).
const localWaitPoll = 250 * time.Millisecond

// PollWaits makes the engine read the store for the outcome of its waits
// in flight at once, rather than at its next poll: a program that resolved
// a wait in the store (sent input or an event) calls it to wake its run
// without delay. Until that read is done it counts as work
// (Config.Activity), so a fake clock does not move meanwhile.
func (e *Engine) PollWaits() {
	if a := e.waitsAwaiter(); a != nil { // nil once the engine is closed
		a.poke()
	}
}

// waitsAwaiter returns the poller of wait steps, started on first use: the
// distributed steps' awaiter on a worker (the server long-polls), else one
// that polls the store every Config.WaitPoll, and at the earliest deadline
// of its waits, and fires the due timers of the runs it waits for.
func (e *Engine) waitsAwaiter() *awaiter {
	e.waitsOnce.Do(func() {
		if e.cfg.Worker != "" && e.remote != nil {
			e.waits = e.remote
			return
		}
		fire, _ := e.cfg.Store.(interface {
			TimersFire(context.Context, store.TimersFireParams) (int, error)
		})
		var before func(context.Context, []store.TaskRunRef)
		if fire != nil {
			before = func(ctx context.Context, refs []store.TaskRunRef) {
				now := e.now()
				seen := map[string]bool{}
				for _, r := range refs {
					if !seen[r.RunID] {
						seen[r.RunID] = true
						_, _ = fire.TimersFire(ctx, store.TimersFireParams{Now: now, RunID: r.RunID})
					}
				}
			}
		}
		e.waits = newAwaiter(e, e.cfg.WaitPoll, before)
	})
	return e.waits
}

// waitOpened notes a wait in flight: a local run goes PAUSED; a worker's
// run checks whether it can be suspended.
func (fc *FlowCtx) waitOpened(s *step) {
	w := &fc.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.open == nil {
		w.open = map[*step]struct{}{}
	}
	w.open[s] = struct{}{}
	if fc.e.cfg.Worker != "" {
		fc.armSuspendLocked()
		return
	}
	if !w.paused && fc.ctx.Err() == nil {
		if _, err := fc.e.cfg.Store.RunTransition(fc.ctx, store.RunTransitionParams{ID: fc.runID,
			From: []store.RunState{store.RunRunning}, To: store.RunPaused, Attempt: fc.attempt, Cause: "flow",
			Message: "waiting for " + s.call.Task.Name}); err == nil {
			w.paused = true
		}
	}
}

// waitClosed notes the end of a wait: a local run without other waits
// is RUNNING again.
func (fc *FlowCtx) waitClosed(s *step) {
	w := &fc.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.open, s)
	if len(w.open) > 0 || !w.paused || fc.ctx.Err() != nil {
		return
	}
	if _, err := fc.e.cfg.Store.RunTransition(fc.ctx, store.RunTransitionParams{ID: fc.runID,
		From: []store.RunState{store.RunPaused}, To: store.RunRunning, Attempt: fc.attempt, Cause: "flow",
		Message: s.call.Task.Name + " resolved"}); err == nil {
		w.paused = false
	}
}

// markDispatched counts the step as a distributed task run in flight.
func (s *step) markDispatched() {
	if s.dispatched.CompareAndSwap(false, true) {
		s.fc.dispatched.Add(1)
	}
}

// stepDone is told of every step that finishes, and of every step
// dispatched to workers: a worker's run may now wait for nothing but its
// waits and distributed task runs.
func (fc *FlowCtx) stepDone() {
	if fc.e.cfg.Worker == "" {
		return
	}
	w := &fc.waits
	w.mu.Lock()
	fc.armSuspendLocked()
	w.mu.Unlock()
}

// waitingOnly reports whether every step in flight is a wait or a
// distributed task run, and there is one (the caller holds waits.mu).
func (fc *FlowCtx) waitingOnly() bool {
	n := int64(len(fc.waits.open)) + fc.dispatched.Load()
	return n > 0 && fc.active.Load() == n
}

// armSuspendLocked schedules a suspension check when the attempt's only
// steps in flight are waits and distributed task runs: after SuspendGrace
// when only waits, after RemoteSuspendGrace when workers execute some of
// them (a run waiting seconds for its tasks would be replayed for
// nothing). The check suspends the run if the flow made no call meanwhile
// and still waits only.
func (fc *FlowCtx) armSuspendLocked() {
	w := &fc.waits
	if w.armed || w.stopped || !fc.waitingOnly() {
		return
	}
	w.armed = true
	calls := fc.calls.Load()
	grace := fc.e.cfg.SuspendGrace
	if fc.dispatched.Load() > 0 {
		grace = fc.e.cfg.RemoteSuspendGrace
	}
	fc.e.cfg.Clock.AfterFunc(grace, func() {
		w.mu.Lock()
		w.armed = false
		idle := fc.calls.Load() == calls && fc.waitingOnly()
		w.mu.Unlock()
		if idle {
			fc.suspend(calls)
		} else {
			fc.stepDone()
		}
	})
}

// suspend moves the run to PAUSED without a worker, unless a wait of it was
// resolved meanwhile (then the attempt goes on), and stops the attempt.
// calls is the count of the flow's calls when the suspension was armed.
//
// While the transition is on its way the attempt stands still: the
// outcomes of its waits and distributed task runs that arrive are held
// (holdOutcome), and a call the flow makes waits at its boundary
// (awaitSuspension). Once the store has the run PAUSED and released,
// someone may resolve a wait and a worker replay the run: nothing of this
// attempt may run after that, or a step would run in two executions (the
// one here cut short by the cancel, recorded CANCELLED, then again in the
// replay).
func (fc *FlowCtx) suspend(calls int64) {
	w := &fc.waits
	w.mu.Lock()
	if w.stopped || w.suspending || !fc.waitingOnly() || fc.ctx.Err() != nil {
		w.mu.Unlock()
		return
	}
	w.suspending = true
	w.decided = make(chan struct{})
	w.deciding.Store(true)
	w.mu.Unlock()
	// A call counted before deciding was set may have passed its boundary:
	// the flow is not idle (a call counted after it waits at its boundary).
	if fc.calls.Load() != calls {
		fc.decideSuspension(false)
		fc.stepDone()
		return
	}
	// What it waits for: its waits and the task runs workers execute; the
	// store suspends it only while none of them has finished.
	fc.mu.Lock()
	var refs []store.TaskRunRef
	names := ""
	for s := range fc.inflight {
		if s.wait == nil && !s.dispatched.Load() {
			continue
		}
		s.mu.Lock()
		refs = append(refs, store.TaskRunRef{RunID: s.tr.RunID, Key: s.tr.Key, ID: s.tr.ID})
		s.mu.Unlock()
		if names == "" || s.wait != nil {
			names = s.call.Task.Name
		}
	}
	fc.mu.Unlock()
	// Not under waits.mu: the writer's callbacks take it (stepDone).
	err := fc.e.w.sync(write{})
	if err == nil && len(refs) > 0 {
		_, err = fc.e.cfg.Store.RunTransition(fc.ctx, store.RunTransitionParams{ID: fc.runID,
			From: []store.RunState{store.RunRunning}, To: store.RunPaused, Attempt: fc.attempt, Owner: &store.Owner{},
			WaitingOn: refs, Cause: "worker:" + fc.e.cfg.Worker,
			Message: fmt.Sprintf("waiting for %s; released by worker %s", names, fc.e.cfg.Worker)})
	}
	fc.decideSuspension(err == nil && len(refs) > 0)
	// Else something it waits for arrived meanwhile, or the run is being
	// cancelled: it goes on.
}

// decideSuspension ends the suspension in progress: when stopped, the
// attempt is cancelled (ErrSuspended) before anything held is let go, and
// the held outcomes are dropped; else they are delivered.
func (fc *FlowCtx) decideSuspension(stopped bool) {
	w := &fc.waits
	w.mu.Lock()
	w.suspending = false
	if stopped {
		w.stopped = true
	}
	stopped = w.stopped
	held, decided := w.held, w.decided
	w.held, w.decided = nil, nil
	w.mu.Unlock()
	if stopped {
		fc.cancel(ErrSuspended)
	}
	// Calls pass their boundary again only now: after a suspension, with
	// the attempt's context cancelled.
	w.deciding.Store(false)
	close(decided)
	if !stopped {
		for _, deliver := range held {
			deliver()
		}
	}
}

// holdOutcome reports whether the outcome of a wait or distributed task
// run of this attempt, which deliver resolves, is not to be delivered now:
// it is held while a suspension is being recorded, and dropped once the
// attempt stopped (stopWaiting lets the step go).
func (fc *FlowCtx) holdOutcome(deliver func()) bool {
	w := &fc.waits
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.suspending {
		w.held = append(w.held, deliver)
		return true
	}
	return w.stopped
}

// awaitSuspension is called at every step boundary, after the call was
// counted (FlowCtx.calls): while the run's suspension is being recorded
// the call waits for the outcome, and fails once the attempt stopped.
func (fc *FlowCtx) awaitSuspension() error {
	w := &fc.waits
	if !w.deciding.Load() {
		return nil
	}
	w.mu.Lock()
	decided := w.decided
	w.mu.Unlock()
	if decided != nil {
		<-decided
	}
	w.mu.Lock()
	stopped := w.stopped
	w.mu.Unlock()
	if stopped {
		return ErrSuspended
	}
	return nil
}

// stopWaiting ends an attempt whose run waits and is not to be finished
// here: on a worker that suspended it (ErrSuspended), or in a local process
// interrupted while its run is PAUSED (ErrDetached). The waits in flight
// are let go without a record: the store keeps them WAITING. It returns nil
// when the attempt is to be finished as usual.
func (fc *FlowCtx) stopWaiting(parent context.Context) error {
	w := &fc.waits
	w.mu.Lock()
	stopped, paused := w.stopped, w.paused
	w.mu.Unlock()
	var err error
	switch {
	case stopped:
		err = ErrSuspended
	case paused && parent.Err() != nil && !errors.Is(context.Cause(parent), ErrCancelRequested):
		err = ErrDetached
		fc.cancel(err)
	default:
		return nil
	}
	fc.abandonSteps(func(s *step) bool { return s.wait != nil || s.dispatched.Load() })
	fc.abandon(fc.e.cfg.AbandonGrace, 0)
	return err
}

// Resume continues a PAUSED run of def in this process from its journal:
// a local run whose process stopped waiting for it (or any paused run
// whose waits have their outcome), until it ends or waits again. It refuses
// a run that is not PAUSED, and one that a live process on this host or a
// worker still holds.
func (e *Engine) Resume(ctx context.Context, def *FlowDef, runID string) (Outcome, error) {
	run, err := e.cfg.Store.RunGet(ctx, runID)
	if err != nil {
		return Outcome{}, err
	}
	if run.State != store.RunPaused {
		return Outcome{Run: run}, fmt.Errorf("run %s is %s, not PAUSED: %w", run.ID, run.State, store.ErrConflict)
	}
	if run.WorkerID != "" {
		return Outcome{Run: run}, fmt.Errorf("run %s is held by worker %s: %w", run.ID, run.WorkerID, ErrRunActive)
	}
	owner := Process{Host: run.OwnerHost, PID: run.OwnerPID, Start: run.OwnerStart}
	if alive, _ := owner.Alive(); alive && owner != e.self {
		return Outcome{Run: run}, fmt.Errorf("run %s waits in pid %d on %s; send it what it waits for instead: %w",
			run.ID, run.OwnerPID, run.OwnerHost, ErrRunActive)
	}
	o := e.owner()
	run, err = e.cfg.Store.RunTransition(ctx, store.RunTransitionParams{ID: run.ID, From: []store.RunState{store.RunPaused},
		To: store.RunRunning, Attempt: run.Attempt, Owner: o, Actor: e.cfg.Actor, Cause: "user",
		Message: fmt.Sprintf("resumed by pid %d on %s", e.self.PID, e.self.Host)})
	if err != nil {
		return Outcome{Run: run}, err
	}
	return e.run(ctx, def, run, true), nil
}
