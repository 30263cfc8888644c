package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// FlowCtx is the engine side of one attempt of a flow run: it hands out
// step keys, answers steps from the journal and runs the rest.
type FlowCtx struct {
	e       *Engine
	def     *FlowDef
	runID   string
	attempt int
	ctx     context.Context
	cancel  context.CancelCauseFunc
	pool    *pool

	journal map[string]store.JournalEntry
	flying  map[string]store.JournalEntry // distributed task runs of earlier attempts still in flight
	idxTask map[int]string                // call index -> task recorded there (derived keys)

	mu       sync.Mutex
	next     int
	inflight map[*step]struct{}

	outstanding sync.WaitGroup
	logger      *slog.Logger
	// replaying is true from the start of a retried attempt until the flow
	// makes a call that the journal does not answer or has used every
	// journal entry (counted in replayed).
	replaying atomic.Bool
	replayed  atomic.Int64
}

// Context returns the run's context, cancelled when the run is cancelled,
// times out or fails.
func (fc *FlowCtx) Context() context.Context { return fc.ctx }

// RunID returns the ID of the flow run.
func (fc *FlowCtx) RunID() string { return fc.runID }

// Attempt returns the attempt number, starting at 1.
func (fc *FlowCtx) Attempt() int { return fc.attempt }

// Engine returns the engine executing the run.
func (fc *FlowCtx) Engine() *Engine { return fc.e }

// Logger returns the logger of the flow run.
func (fc *FlowCtx) Logger() *slog.Logger {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if fc.logger == nil {
		fc.logger = fc.e.newLogger(fc.runID, "", "", fc.replaying.Load)
	}
	return fc.logger
}

var derivedKey = regexp.MustCompile(`^(.+)/(\d+)(?:\.\d+)?$`)

func (fc *FlowCtx) loadJournal() error {
	entries, err := fc.e.cfg.Store.JournalList(fc.ctx, fc.runID)
	if err != nil {
		return fmt.Errorf("load journal of run %s: %w", fc.runID, err)
	}
	fc.journal = make(map[string]store.JournalEntry, len(entries))
	fc.flying = map[string]store.JournalEntry{}
	fc.idxTask = map[int]string{}
	for _, j := range entries {
		if !j.State.Succeeded() {
			fc.flying[j.Key] = j
		} else {
			fc.journal[j.Key] = j
		}
		if m := derivedKey.FindStringSubmatch(j.Key); m != nil {
			if i, err := strconv.Atoi(m[2]); err == nil {
				fc.idxTask[i] = m[1]
			}
		}
	}
	fc.replaying.Store(len(fc.journal) > 0)
	return nil
}

// Call is one invocation of a task from flow code.
type Call struct {
	Task      *TaskDef
	Key       string // explicit step key; empty derives one from the call position
	Input     any    // the typed input (for custom cache keys)
	InputJSON json.RawMessage
	// Fn runs the task function on the typed input.
	Fn func(ctx context.Context) (any, error)
	// Decode turns a recorded result back into the typed output.
	Decode func(json.RawMessage) (any, error)
	// After lists futures that must succeed before the task starts.
	After []*Future
}

// reserve returns the next call index.
func (fc *FlowCtx) reserve() int {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	i := fc.next
	fc.next++
	return i
}

// lookup checks a step against the journal. It returns the recorded entry
// when the step can be reused, or an error when the code diverged.
func (fc *FlowCtx) lookup(key, name string, index int, hash string) (store.JournalEntry, bool, error) {
	if fc.journal == nil {
		return store.JournalEntry{}, false, nil
	}
	if index >= 0 {
		if rec, ok := fc.idxTask[index]; ok && rec != name {
			return store.JournalEntry{}, false, &NonDeterminismError{Key: key, Recorded: rec, Called: name}
		}
	}
	j, ok := fc.journal[key]
	if ok && j.Task != name {
		return j, false, &NonDeterminismError{Key: key, Recorded: j.Task, Called: name}
	}
	hit := ok && j.InputHash == hash
	if !hit || fc.replayed.Add(1) >= int64(len(fc.journal)) {
		fc.replaying.Store(false)
	}
	return j, hit, nil
}

// Submit schedules a task call and returns its future at once.
func (fc *FlowCtx) Submit(c Call) *Future {
	idx := fc.reserve()
	key := c.Key
	if key == "" {
		key = c.Task.Name + "/" + strconv.Itoa(idx)
	}
	return fc.submit(c, key, idx)
}

// Call runs a task call on the calling goroutine (a sequential Run saves the
// hand-off to a pool goroutine) and returns its future; retries and calls
// with dependencies still go through the pool.
func (fc *FlowCtx) Call(c Call) *Future {
	idx := fc.reserve()
	key := c.Key
	if key == "" {
		key = c.Task.Name + "/" + strconv.Itoa(idx)
	}
	return fc.submitMode(c, key, idx, len(c.After) == 0)
}

// SubmitMap schedules n calls of one task, one per item, under one call
// index; mk builds the i-th call.
func (fc *FlowCtx) SubmitMap(n int, mk func(i int) Call) []*Future {
	idx := fc.reserve()
	futs := make([]*Future, n)
	for i := range n {
		c := mk(i)
		var key string
		if c.Key != "" {
			key = c.Key + "." + strconv.Itoa(i)
		} else {
			key = c.Task.Name + "/" + strconv.Itoa(idx) + "." + strconv.Itoa(i)
		}
		futs[i] = fc.submit(c, key, idx)
	}
	return futs
}

func (fc *FlowCtx) submit(c Call, key string, idx int) *Future {
	return fc.submitMode(c, key, idx, false)
}

func (fc *FlowCtx) submitMode(c Call, key string, idx int, inline bool) *Future {
	hash := Hash(c.InputJSON)
	if c.Key != "" {
		idx = -1
		if err := checkKey(c.Key); err != nil {
			fc.cancel(err)
			return resolvedFuture(key, nil, err)
		}
	}
	j, hit, err := fc.lookup(key, c.Task.Name, idx, hash)
	if err != nil {
		fc.cancel(err)
		return resolvedFuture(key, nil, err)
	}
	if hit {
		raw, err := fc.e.LoadResult(j.Result, j.ResultRef)
		if err != nil {
			return resolvedFuture(key, nil, err)
		}
		v, err := c.Decode(raw)
		return resolvedFuture(key, v, err)
	}
	s := &step{fc: fc, call: c, key: key, hash: hash, fut: newFuture(key)}
	fc.outstanding.Add(1)
	if fl, ok := fc.flying[key]; ok && fl.Task == c.Task.Name && fl.InputHash == hash && fc.e.remote != nil {
		// An earlier attempt dispatched this step and it is still queued or
		// running on a worker: wait for it rather than run it twice.
		s.tr = store.TaskRun{ID: fl.ID, RunID: fc.runID, Key: key, Task: fl.Task, State: fl.State, InputHash: hash, Queue: c.Task.Policy.Queue}
		s.remote, s.adopted = true, true
		s.track(true)
		fc.e.remote.add(store.TaskRunRef{RunID: fc.runID, Key: key, ID: fl.ID}, s)
		return s.fut
	}
	if inline {
		s.start()
		return s.fut
	}
	if len(c.After) == 0 {
		fc.enqueue(s.start)
		return s.fut
	}
	go func() {
		for _, dep := range c.After {
			if _, err := dep.Wait(fc.ctx); err != nil {
				s.finish(nil, fmt.Errorf("upstream step %s did not succeed: %w", dep.Key(), err))
				return
			}
		}
		fc.enqueue(s.start)
	}()
	return s.fut
}

// enqueue runs job on the pool, or at once (to resolve it as cancelled)
// when the attempt is over.
func (fc *FlowCtx) enqueue(job func()) {
	if !fc.pool.push(job) {
		go job()
	}
}

// abandon waits up to grace for in-flight steps, then records those still
// running as CANCELLED: their goroutines may still be running, but their
// results will be ignored. Distributed steps (dispatched to workers) are
// waited for only remoteGrace (at most grace): the store keeps their state,
// and the workers running them stop them once the run has ended.
func (fc *FlowCtx) abandon(grace, remoteGrace time.Duration) {
	done := make(chan struct{})
	go func() { fc.outstanding.Wait(); close(done) }()
	start := time.Now()
	if remoteGrace < grace {
		select {
		case <-done:
			return
		case <-time.After(remoteGrace):
		}
		fc.abandonSteps(func(s *step) bool { return s.isRemote() })
	}
	select {
	case <-done:
		return
	case <-time.After(grace - time.Since(start)):
	}
	fc.abandonSteps(func(*step) bool { return true })
}

// abandonSteps abandons the in-flight steps that match.
func (fc *FlowCtx) abandonSteps(match func(*step) bool) {
	fc.mu.Lock()
	steps := make([]*step, 0, len(fc.inflight))
	for s := range fc.inflight {
		steps = append(steps, s)
	}
	fc.mu.Unlock()
	for _, s := range steps {
		if match(s) {
			s.abandon()
		}
	}
}

func (s *step) isRemote() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.remote
}

// step is one task run in progress.
type step struct {
	fc   *FlowCtx
	call Call
	key  string
	hash string
	fut  *Future

	mu        sync.Mutex
	tr        store.TaskRun
	finished  bool
	abandoned bool
	remote    bool // dispatched to a worker: the store holds its state
	adopted   bool // dispatched by an earlier attempt, which this one waits for
}

func (s *step) track(on bool) {
	s.fc.mu.Lock()
	if on {
		s.fc.inflight[s] = struct{}{}
	} else {
		delete(s.fc.inflight, s)
	}
	s.fc.mu.Unlock()
}

// start runs on a pool worker: cache lookup, then the first attempt.
func (s *step) start() {
	fc := s.fc
	if err := fc.ctx.Err(); err != nil {
		s.finish(nil, context.Cause(fc.ctx))
		return
	}
	now := fc.e.now()
	s.tr = store.TaskRun{
		ID: NewID(), RunID: fc.runID, Key: s.key, Task: s.call.Task.Name, State: store.TaskPending,
		FlowAttempt: fc.attempt, InputHash: s.hash, Input: s.call.InputJSON, CreatedAt: now,
	}
	if s.call.Task.Policy.Cache != nil && s.fromCache() {
		return
	}
	s.track(true)
	if fc.e.remote != nil && s.call.Task.Policy.Queue != "" {
		s.dispatch()
		return
	}
	s.attempt()
}

func (s *step) fromCache() bool {
	fc := s.fc
	key, err := cacheKey(s.call, s.hash)
	if err != nil {
		s.fail(store.TaskFailed, fmt.Errorf("compute cache key: %w", err))
		return true
	}
	ce, err := fc.e.cfg.Store.CacheGet(fc.ctx, key, fc.e.now())
	if err != nil {
		return false // a miss (or an unreadable cache) runs the task
	}
	raw, err := fc.e.LoadResult(ce.Result, ce.ResultRef)
	if err != nil {
		return false
	}
	v, err := s.call.Decode(raw)
	if err != nil {
		return false
	}
	now := fc.e.now()
	s.tr.Result, s.tr.ResultRef = ce.Result, ce.ResultRef
	s.tr.CachedFrom, s.tr.CachedFromRun = ce.TaskRunID, ce.RunID
	s.tr.StartedAt, s.tr.EndedAt = now, now
	s.moveLocked(store.TaskCached, "cache", "result reused from run "+ce.RunID)
	s.commit(write{taskRuns: []store.TaskRun{s.tr}}, v, nil)
	return true
}

func cacheKey(c Call, hash string) (string, error) {
	p := c.Task.Policy.Cache
	k := hash
	if p.Key != nil {
		custom, err := p.Key(c.Input)
		if err != nil {
			return "", err
		}
		if err := store.CheckIdentifier("cache key", custom); err != nil {
			return "", err
		}
		k = "custom:" + custom
	}
	return c.Task.Name + "|" + p.Version + "|" + k, nil
}

// attempt runs one attempt and decides what follows.
func (s *step) attempt() {
	fc := s.fc
	if err := fc.ctx.Err(); err != nil {
		s.fail(store.TaskCancelled, context.Cause(fc.ctx))
		return
	}
	s.mu.Lock()
	if s.abandoned {
		s.mu.Unlock()
		return
	}
	s.tr.Attempts++
	s.moveLocked(store.TaskRunning, "engine", fmt.Sprintf("attempt %d", s.tr.Attempts))
	if s.tr.StartedAt.IsZero() {
		s.tr.StartedAt = s.tr.History[len(s.tr.History)-1].At
	}
	tr := s.tr
	s.mu.Unlock()
	fc.e.w.add(write{taskRuns: []store.TaskRun{tr}}, nil)

	val, err := s.invoke(tr.Attempts)
	if err == nil {
		s.complete(val)
		return
	}
	pol := s.call.Task.Policy
	if fc.ctx.Err() != nil {
		s.fail(store.TaskCancelled, err)
		return
	}
	if !pol.shouldRetry(err, tr.Attempts) {
		state := store.TaskFailed
		var te *TimeoutError
		if errors.As(err, &te) {
			state = store.TaskTimedOut
		}
		s.fail(state, err)
		return
	}
	delay := pol.Delay(tr.Attempts + 1)
	s.mu.Lock()
	if s.abandoned {
		s.mu.Unlock()
		return
	}
	s.tr.Error = ErrorInfo(err)
	s.moveLocked(store.TaskAwaitingRetry, "policy",
		fmt.Sprintf("attempt %d failed: %v; retrying in %s", s.tr.Attempts, err, delay.Round(time.Millisecond)))
	tr = s.tr
	s.mu.Unlock()
	fc.e.w.add(write{taskRuns: []store.TaskRun{tr}}, nil)
	fc.e.taskFailed(TaskFailure{RunID: fc.runID, Key: s.key, Task: tr.Task, Attempt: tr.Attempts, Err: err, RetryIn: delay})
	time.AfterFunc(delay, func() { fc.enqueue(s.attempt) })
}

// moveLocked moves the task run to state to and appends the transition to
// its history. s.mu must be held (or the step not yet shared).
func (s *step) moveLocked(to store.TaskState, cause, msg string) {
	s.tr.History = append(s.tr.History, store.Transition{
		At: s.fc.e.now(), From: stateStr(s.tr.State), To: string(to), Cause: cause, Message: msg,
	})
	s.tr.State = to
}

func stateStr(s store.TaskState) string {
	if s == store.TaskPending {
		return ""
	}
	return string(s)
}

// invoke calls the task function with the attempt's context. With a timeout
// the function runs on its own goroutine so that the step moves on when the
// timeout fires even if the function ignores its context; that goroutine is
// left to finish on its own and its result is dropped.
func (s *step) invoke(attempt int) (any, error) {
	fc := s.fc
	ctx := context.WithValue(fc.ctx, taskCtxKey{}, &taskInfo{fc: fc, trID: s.tr.ID, key: s.key, attempt: attempt})
	timeout := s.call.Task.Policy.Timeout
	if timeout <= 0 {
		return safeCall(ctx, s.call.Fn)
	}
	terr := &TimeoutError{What: fmt.Sprintf("task %s attempt %d", s.call.Task.Name, attempt), Timeout: timeout}
	ctx, cancel := context.WithTimeoutCause(ctx, timeout, terr)
	defer cancel()
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := safeCall(ctx, s.call.Fn)
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil && context.Cause(ctx) == terr {
			return nil, terr
		}
		return r.v, r.err
	case <-ctx.Done():
		if fc.ctx.Err() != nil {
			return nil, context.Cause(fc.ctx)
		}
		return nil, terr
	}
}

func safeCall(ctx context.Context, fn func(context.Context) (any, error)) (v any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: stack()}
		}
	}()
	return fn(ctx)
}

func stack() string {
	const max = 4096
	b := debug.Stack()
	if len(b) > max {
		b = b[:max]
	}
	return string(b)
}

func (s *step) complete(val any) {
	fc := s.fc
	raw, ref, err := fc.e.encodeResult(val)
	if err != nil {
		s.fail(store.TaskFailed, err)
		return
	}
	s.mu.Lock()
	if s.abandoned {
		s.mu.Unlock()
		return
	}
	s.tr.Result, s.tr.ResultRef, s.tr.Error = raw, ref, nil
	s.moveLocked(store.TaskCompleted, "engine", "")
	now := s.tr.History[len(s.tr.History)-1].At
	s.tr.EndedAt = now
	tr := s.tr
	s.finished = true
	s.mu.Unlock()
	wr := write{taskRuns: []store.TaskRun{tr}}
	if p := s.call.Task.Policy.Cache; p != nil {
		if key, err := cacheKey(s.call, s.hash); err == nil {
			ce := store.CacheEntry{Key: key, Task: tr.Task, Result: raw, ResultRef: ref, RunID: fc.runID, TaskRunID: tr.ID, CreatedAt: now}
			if p.Expiry > 0 {
				ce.ExpiresAt = now.Add(p.Expiry)
			}
			wr.cache = []store.CacheEntry{ce}
		}
	}
	s.commit(wr, val, nil)
}

// fail records a final failure of the step.
func (s *step) fail(state store.TaskState, err error) {
	fc := s.fc
	s.mu.Lock()
	if s.abandoned || s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	if s.tr.ID == "" { // never started: nothing to record
		s.mu.Unlock()
		s.finish(nil, err)
		return
	}
	s.tr.Error, s.tr.EndedAt = ErrorInfo(err), fc.e.now()
	s.moveLocked(state, "engine", err.Error())
	tr := s.tr
	s.mu.Unlock()
	if state == store.TaskFailed || state == store.TaskTimedOut {
		fc.e.taskFailed(TaskFailure{RunID: fc.runID, Key: s.key, Task: tr.Task, Attempt: tr.Attempts, Err: err, Final: true, State: state})
	}
	terr := &TaskError{Key: s.key, Task: tr.Task, Attempts: tr.Attempts, Err: err}
	s.commit(write{taskRuns: []store.TaskRun{tr}}, nil, terr)
}

// commit writes wr and resolves the future once it is durable.
func (s *step) commit(wr write, v any, err error) {
	s.fc.e.w.add(wr, func(werr error) {
		if werr != nil {
			v, err = nil, fmt.Errorf("record step %s: %w", s.key, werr)
			s.fc.storeFailed(err)
		}
		s.finish(v, err)
	})
}

// storeFailed ends the attempt of a run whose step could not be recorded:
// what the flow code would see next is not in the journal, so the attempt
// must not go on (a flow that shrugs off the step's error must not complete
// without it). On a worker the run is then given back and a new attempt
// resumes from the journal; a local run ends FAILED with the error.
func (fc *FlowCtx) storeFailed(err error) {
	if fc.cancel != nil {
		fc.cancel(storeFailed(err))
	}
}

func (s *step) finish(v any, err error) {
	s.track(false)
	s.fut.resolve(v, err)
	s.fc.outstanding.Done()
}

// abandon records a step whose goroutine outlived its flow attempt.
func (s *step) abandon() {
	s.mu.Lock()
	if s.finished || s.abandoned {
		s.mu.Unlock()
		return
	}
	s.abandoned = true
	if s.remote {
		// The server owns the state of a dispatched task run; cancelling the
		// flow run cancels it there.
		s.mu.Unlock()
		s.fc.e.remote.remove(store.TaskRunRef{RunID: s.tr.RunID, Key: s.tr.Key, ID: s.tr.ID})
		s.finish(nil, &TaskError{Key: s.key, Task: s.tr.Task, Attempts: s.tr.Attempts, Err: context.Cause(s.fc.ctx)})
		return
	}
	err := errors.New("abandoned: the flow attempt ended while this task was still running; its goroutine may still run but its result is ignored")
	s.tr.Error, s.tr.EndedAt = ErrorInfo(err), s.fc.e.now()
	s.moveLocked(store.TaskCancelled, "engine", err.Error())
	tr := s.tr
	s.mu.Unlock()
	s.commit(write{taskRuns: []store.TaskRun{tr}}, nil, &TaskError{Key: s.key, Task: tr.Task, Attempts: tr.Attempts, Err: err})
}
