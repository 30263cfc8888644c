package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// This file holds the distributed side of the engine: dispatching task runs
// to the workers of a queue and waiting for their results (on the worker
// that executes the flow), and executing a claimed task run (on the worker
// that serves the queue).

// awaiter waits for distributed task runs to finish and resolves their
// steps. One goroutine polls the store for all outstanding task runs at once;
// a store that long-polls (the server API) makes that cheap.
type awaiter struct {
	e *Engine
	// idle is how long the loop waits after a poll that found nothing
	// finished, for a store that answers at once (no long poll).
	idle time.Duration
	// beforePoll, when set, runs before each poll with the refs it sends
	// (the waits' awaiter of a local engine fires their due timers).
	beforePoll func(ctx context.Context, refs []store.TaskRunRef)

	mu      sync.Mutex
	waiting map[store.TaskRunRef]*step
	// due holds the deadlines of waiting wait steps (a sleep's end, a
	// Within): a poll after a quiet one comes no later than the earliest.
	// It may hold refs no longer waiting (dropped as it is read).
	due map[store.TaskRunRef]time.Time
	// pokes counts the PollWaits calls that the next poll answers; each
	// holds a unit of work (Config.Activity) until that poll is done.
	pokes int
	order []store.TaskRunRef // FIFO of waiting refs (may hold resolved ones)
	// interrupt ends the poll in flight, which does not hold the refs
	// added since it started (nil when none or when it holds pollBatch).
	interrupt context.CancelFunc
	wake      chan struct{}
	quit      chan struct{}
	done      chan struct{}
}

func newAwaiter(e *Engine, idle time.Duration, beforePoll func(context.Context, []store.TaskRunRef)) *awaiter {
	a := &awaiter{e: e, idle: idle, beforePoll: beforePoll, waiting: map[store.TaskRunRef]*step{},
		due: map[store.TaskRunRef]time.Time{}, wake: make(chan struct{}, 1),
		quit: make(chan struct{}), done: make(chan struct{})}
	go a.loop()
	return a
}

// pollBatch bounds the refs sent per poll: task runs are claimed oldest
// first, so the oldest outstanding ones are the ones finishing, and a poll
// costs the same whether 100 or 100,000 are outstanding.
const pollBatch = 2000

// pollGap is the least time between the starts of two polls. Each poll sends
// (and the server re-reads) up to pollBatch refs, whatever finished: back to
// back polls while completions trickle in cost a full poll per completion
// report. Waiting for the gap lets the next poll collect what finished
// meanwhile; a poll after a quiet period starts at once. (A variable for
// tests.)
var pollGap = 10 * time.Millisecond

// add waits for the task run ref of step s. A long poll in flight does not
// watch it (its refs were sent), and may wait long for the ones it does
// watch: it is ended, so that the next poll, after pollGap, watches all.
func (a *awaiter) add(ref store.TaskRunRef, s *step) {
	a.mu.Lock()
	a.waiting[ref] = s
	a.order = append(a.order, ref)
	interrupt := a.interrupt
	a.interrupt = nil
	a.mu.Unlock()
	if interrupt != nil {
		interrupt()
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// addWait waits for the wait step s, whose deadline is due (zero: none).
// The caller took a unit of work (Config.Activity), which the first poll
// that reads the step releases, as for a poke.
func (a *awaiter) addWait(ref store.TaskRunRef, s *step, due time.Time) {
	a.mu.Lock()
	if !due.IsZero() {
		a.due[ref] = due
	}
	a.pokes++
	a.mu.Unlock()
	a.add(ref, s)
}

// poke makes the loop poll at once, without waiting for pollGap, and
// counts a unit of work until that poll is done.
func (a *awaiter) poke() {
	select {
	case <-a.quit:
		return // stopped: no poll is to come
	default:
	}
	a.e.act(1)
	a.mu.Lock()
	a.pokes++
	interrupt := a.interrupt
	a.interrupt = nil
	a.mu.Unlock()
	if interrupt != nil {
		interrupt()
	}
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// pause waits d on the engine's clock, or until a poke (or, with
// anyWake, an add), and reports false when the awaiter stops. The timer
// ends the wait with a poke: the poll that follows counts as work
// (Config.Activity), so that a fake clock does not move on while it reads
// the store.
func (a *awaiter) pause(d time.Duration, anyWake bool) bool {
	t := a.e.cfg.Clock.AfterFunc(d, a.poke)
	defer t.Stop()
	for {
		select {
		case <-a.wake:
			if anyWake || a.poked() {
				return true
			}
		case <-a.quit:
			return false
		}
	}
}

// takePokes returns the pokes that the poll about to start answers.
func (a *awaiter) takePokes() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.pokes
	a.pokes = 0
	return n
}

// poked reports whether PollWaits was called since takePokes.
func (a *awaiter) poked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pokes > 0
}

// quiet returns how long to wait after a poll that found nothing: idle,
// or less when a deadline of the waits comes sooner (then the timer
// that ends the wait fires before that poll), but at least pollGap.
func (a *awaiter) quiet() time.Duration {
	d := a.idle
	a.mu.Lock()
	defer a.mu.Unlock()
	for ref, due := range a.due {
		if _, ok := a.waiting[ref]; !ok {
			delete(a.due, ref)
			continue
		}
		d = min(d, max(a.e.cfg.Clock.Until(due), pollGap))
	}
	return d
}

func (a *awaiter) remove(ref store.TaskRunRef) {
	a.mu.Lock()
	delete(a.waiting, ref)
	a.mu.Unlock()
}

// oldest returns up to pollBatch of the longest-waiting refs, dropping
// resolved ones from the head of the queue.
func (a *awaiter) oldest() []store.TaskRunRef {
	a.mu.Lock()
	defer a.mu.Unlock()
	refs := make([]store.TaskRunRef, 0, min(len(a.waiting), pollBatch))
	kept := a.order[:0]
	for i, r := range a.order {
		if _, ok := a.waiting[r]; !ok {
			continue
		}
		if len(refs) < pollBatch {
			refs = append(refs, r)
			kept = append(kept, r)
			continue
		}
		kept = append(kept, a.order[i:]...)
		break
	}
	clear(a.order[len(kept):])
	a.order = kept
	return refs
}

func (a *awaiter) stop() {
	close(a.quit)
	<-a.done
}

func (a *awaiter) loop() {
	defer close(a.done)
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-a.quit; cancel() }()
	clk := a.e.cfg.Clock
	backoff := time.Duration(0)
	refused := 0       // consecutive polls the store refused (not an outage)
	var last time.Time // start of the previous poll
	poked := 0         // pokes the poll in progress answers
	defer func() { a.e.act(-poked - a.takePokes()) }()
	for {
		refs := a.oldest()
		if len(refs) == 0 {
			a.e.act(-a.takePokes()) // nothing to poll for
			select {
			case <-a.wake:
				continue
			case <-a.quit:
				return
			}
		}
		// A poke (PollWaits) skips or ends the gap.
		if poked = a.takePokes(); poked == 0 {
			if wait := pollGap - clk.Since(last); wait > 0 {
				if !a.pause(wait, false) {
					return
				}
				poked = a.takePokes()
				refs = a.oldest()
			}
		}
		pctx, interrupt := context.WithCancel(ctx)
		if len(refs) < pollBatch {
			a.mu.Lock()
			a.interrupt = interrupt
			a.mu.Unlock()
		}
		last = clk.Now()
		if a.beforePoll != nil {
			a.beforePoll(pctx, refs)
		}
		done, err := a.e.cfg.Store.TaskRunFinished(pctx, refs)
		a.mu.Lock()
		a.interrupt = nil
		a.mu.Unlock()
		interrupted := pctx.Err() != nil
		interrupt()
		if ctx.Err() != nil {
			return
		}
		if interrupted && err != nil {
			// Ended for refs added meanwhile, or for a poke: poll again
			// with them, answering the pokes this poll did not.
			a.mu.Lock()
			a.pokes += poked
			a.mu.Unlock()
			poked = 0
			continue
		}
		if err != nil {
			backoff = min(max(2*backoff, 50*time.Millisecond), 2*time.Second)
			if refused++; errors.Is(err, store.ErrUnavailable) {
				refused = 0 // an outage: keep waiting, the leases tell when to stop
			}
			if refused >= maxRefusedPolls {
				// The store will not answer: end the waiting attempts
				// rather than let their runs wait forever.
				a.failAll(refs, fmt.Errorf("wait for distributed steps: %w", err))
				refused = 0
			}
		} else {
			backoff, refused = 0, 0
		}
		for _, tr := range done {
			ref := store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}
			a.mu.Lock()
			s := a.waiting[ref]
			delete(a.waiting, ref)
			a.mu.Unlock()
			if s != nil {
				s.remoteDone(tr)
			}
		}
		// The steps resolved hold their own units now.
		a.e.act(-poked)
		poked = 0
		if len(done) == 0 && err == nil {
			// A store without long polling answers at once: do not spin.
			backoff = a.quiet()
		}
		if backoff > 0 && !a.poked() && !a.pause(backoff, true) {
			return
		}
	}
}

// maxRefusedPolls is how many polls in a row the store may refuse (with an
// error that is not an outage) before the awaiter gives up on the steps.
const maxRefusedPolls = 5

// failAll resolves the steps of refs with err as a store failure: their
// attempts end and, on a worker, their runs are given back.
func (a *awaiter) failAll(refs []store.TaskRunRef, err error) {
	for _, ref := range refs {
		a.mu.Lock()
		s := a.waiting[ref]
		delete(a.waiting, ref)
		a.mu.Unlock()
		if s == nil {
			continue
		}
		s.mu.Lock()
		if s.finished || s.abandoned {
			s.mu.Unlock()
			continue
		}
		s.finished = true
		s.mu.Unlock()
		s.fc.storeFailed(err)
		s.finish(nil, err)
	}
}

// dispatch records the step as a PENDING task run on its queue; a worker
// serving the queue claims and runs it, and the awaiter resolves the step.
func (s *step) dispatch() {
	fc := s.fc
	s.mu.Lock()
	s.remote = true
	s.markDispatched()
	s.tr.Queue = s.call.Task.Policy.Queue
	if len(s.tr.Tags) > 0 {
		s.moveLocked(store.TaskAwaitingSlot, "engine", "queued on "+s.tr.Queue+", awaiting a slot")
	} else {
		s.moveLocked(store.TaskPending, "engine", "queued on "+s.tr.Queue)
	}
	tr := s.tr
	s.mu.Unlock()
	ref := store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}
	fc.e.w.add(write{taskRuns: []store.TaskRun{tr}}, func(err error) {
		if err != nil {
			s.mu.Lock()
			s.finished = true
			s.mu.Unlock()
			err = fmt.Errorf("dispatch step %s to queue %s: %w", s.key, tr.Queue, err)
			fc.storeFailed(err)
			s.finish(nil, err)
			return
		}
		fc.e.remote.add(ref, s)
		fc.stepDone() // the flow may now wait for nothing but workers
	})
}

// remoteDone resolves a dispatched step from its final task run.
func (s *step) remoteDone(tr store.TaskRun) {
	if s.fc.holdOutcome(func() { s.remoteDone(tr) }) {
		return // the run's suspension is being recorded, or was
	}
	if s.wait != nil {
		s.waitDone(tr)
		return
	}
	fc := s.fc
	s.mu.Lock()
	if s.finished || s.abandoned {
		s.mu.Unlock()
		return
	}
	if s.adopted && (tr.State == store.TaskCancelled || tr.State == store.TaskCrashed) && fc.ctx.Err() == nil {
		// An earlier attempt's dispatch that was stopped with that attempt
		// (it was cancelled or ended): this attempt runs the step itself.
		s.adopted = false
		s.mu.Unlock()
		fc.enqueue(s.start)
		return
	}
	s.finished = true
	s.tr = tr
	s.mu.Unlock()
	if s.adopted {
		fc.ran.Add(1) // it ran during this attempt, dispatched by an earlier one
	}
	if tr.State != store.TaskCompleted {
		msg := string(tr.State)
		if tr.Error != nil {
			msg = tr.Error.Message
		}
		var err error = errors.New(msg)
		if tr.State == store.TaskTimedOut {
			err = &TimeoutError{What: "task " + tr.Task, Timeout: s.call.Task.Policy.Timeout}
		}
		s.finish(nil, &TaskError{Key: s.key, Task: tr.Task, Attempts: tr.Attempts, Err: err})
		return
	}
	raw, err := fc.e.LoadResult(tr.Result, tr.ResultRef)
	var v any
	if err == nil {
		v, err = s.call.Decode(raw)
	}
	if err != nil {
		s.finish(nil, fmt.Errorf("result of step %s: %w", s.key, err))
		return
	}
	if p := s.call.Task.Policy.Cache; p != nil {
		if key, err := cacheKey(s.call, s.hash); err == nil {
			ce := store.CacheEntry{Key: key, Task: tr.Task, Result: tr.Result, ResultRef: tr.ResultRef, RunID: tr.RunID, TaskRunID: tr.ID, CreatedAt: fc.e.now()}
			if p.Expiry > 0 {
				ce.ExpiresAt = ce.CreatedAt.Add(p.Expiry)
			}
			fc.e.w.add(write{cache: []store.CacheEntry{ce}}, nil)
		}
	}
	s.finish(v, nil)
}

// RunTask executes a distributed task run that this worker claimed: every
// attempt its policy allows, honouring its timeout, and returns the
// completion to report. Cancelling ctx cancels the attempt in progress.
func (e *Engine) RunTask(ctx context.Context, td *TaskDef, tr store.TaskRun) store.TaskRunCompletion {
	e.act(1) // the task run's unit of work (Config.Activity)
	defer e.act(-1)
	fc := &FlowCtx{e: e, runID: tr.RunID, attempt: tr.FlowAttempt, ctx: ctx, inflight: map[*step]struct{}{}}
	c := store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}, WorkerID: e.cfg.Worker}
	input, err := e.LoadInput(tr.Input, tr.InputRef)
	if err != nil {
		// The input's blob cannot be read (the client already retried what
		// was transient): no attempt can run.
		err = fmt.Errorf("task %s: %w", tr.Task, err)
		s := &step{fc: fc, key: tr.Key, tr: tr}
		s.tr.History = nil
		c.Attempts, c.State, c.Error = 1, store.TaskFailed, ErrorInfo(err)
		s.moveLocked(store.TaskFailed, "worker:"+e.cfg.Worker, err.Error())
		e.taskFailed(TaskFailure{RunID: tr.RunID, Key: tr.Key, Task: tr.Task, Attempt: 1, Err: err, Final: true, State: c.State})
		c.History, c.At = s.tr.History, e.now()
		return c
	}
	s := &step{fc: fc, key: tr.Key, tr: tr, call: Call{Task: td, InputJSON: input,
		Fn: func(ctx context.Context) (any, error) { return td.Invoke(ctx, input) }}}
	s.tr.History = nil
	for attempt := 1; ; attempt++ {
		c.Attempts = attempt
		val, err := s.invoke(attempt)
		if err == nil {
			raw, ref, encErr := e.encodeResult(val)
			if encErr == nil {
				c.State, c.Result, c.ResultRef = store.TaskCompleted, raw, ref
				s.moveLocked(store.TaskCompleted, "worker:"+e.cfg.Worker, "")
				break
			}
			err = encErr
		}
		if ctx.Err() != nil {
			c.State, c.Error = store.TaskCancelled, ErrorInfo(err)
			s.moveLocked(store.TaskCancelled, "worker:"+e.cfg.Worker, err.Error())
			break
		}
		if !td.Policy.shouldRetry(err, attempt) {
			c.State, c.Error = store.TaskFailed, ErrorInfo(err)
			var te *TimeoutError
			if errors.As(err, &te) {
				c.State = store.TaskTimedOut
			}
			s.moveLocked(c.State, "worker:"+e.cfg.Worker, err.Error())
			e.taskFailed(TaskFailure{RunID: tr.RunID, Key: tr.Key, Task: tr.Task, Attempt: attempt, Err: err, Final: true, State: c.State})
			break
		}
		delay := td.Policy.Delay(attempt + 1)
		e.taskFailed(TaskFailure{RunID: tr.RunID, Key: tr.Key, Task: tr.Task, Attempt: attempt, Err: err, RetryIn: delay})
		s.moveLocked(store.TaskAwaitingRetry, "policy", fmt.Sprintf("attempt %d failed: %v; retrying in %s", attempt, err, delay.Round(time.Millisecond)))
		e.sleep(ctx.Done(), delay)
		s.moveLocked(store.TaskRunning, "worker:"+e.cfg.Worker, fmt.Sprintf("attempt %d", attempt+1))
	}
	c.History, c.At = s.tr.History, e.now()
	return c
}
