package engine

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// FlowCtx is the engine side of one attempt of a flow run: it hands out
// step keys, answers steps from the journal and runs the rest.
//
// A call's identity is its task (or subflow), the task's version, its
// input hash and its occurrence among the earlier calls of this attempt
// with the same three (the k-th identical call is occurrence k); a call
// with an explicit key (baton.Key) is identified by that key. A retried
// attempt reuses the recorded completion of the same identity, whatever
// the order, goroutine or position of the call, so a result can only go
// to a call of the same task with the same input. Keys stay readable
// ("task/N" from a per-attempt call counter, "task/N.i" for map items): a
// reused step keeps its recorded key, a new one takes its position's key
// unless a recorded step of another identity holds it ("task/N#2" then).
type FlowCtx struct {
	e       *Engine
	def     *FlowDef
	runID   string
	attempt int
	ctx     context.Context
	cancel  context.CancelCauseFunc
	pool    *pool

	// The journal of earlier attempts, fixed once loaded (attempt > 1).
	byIdent  map[string]store.JournalEntry // successful steps of derived keys, by identity
	byKey    map[string]store.JournalEntry // successful steps by key (explicit keys; rows without identity)
	flying   map[string]store.JournalEntry // unfinished steps to resume, by "i:"+identity and "k:"+key
	journalN int                           // successful steps

	mu       sync.Mutex
	next     int
	seen     map[uint64]uint32   // occurrences of each call content in this attempt
	taken    map[string]struct{} // keys a new step may not take (replayed attempts only)
	inflight map[*step]struct{}

	outstanding sync.WaitGroup
	// active counts the steps in flight (outstanding's count), calls the
	// calls the flow made; waits is the attempt's waiting state (wait.go).
	active, calls atomic.Int64
	// dispatched counts the steps in flight that are distributed task
	// runs (executed by workers; this attempt only waits for them).
	dispatched atomic.Int64
	waits      flowWaits
	logger     *slog.Logger
	// replaying is true from the start of a retried attempt until the flow
	// makes a call that the journal does not answer or has used every
	// journal entry (counted in replayed).
	replaying atomic.Bool
	replayed  atomic.Int64
	// reused and ran count the attempt's steps (store.StepCounts).
	reused, ran atomic.Int64
	// steer is the attempt's view of pause requests (steer.go).
	steer steering
	// graph is what the attempt knows of the run graph (graph.go).
	graph flowGraph
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

// steps returns the attempt's step counts.
func (fc *FlowCtx) steps() *store.StepCounts {
	return &store.StepCounts{Reused: int(fc.reused.Load()), Ran: int(fc.ran.Load())}
}

func (fc *FlowCtx) loadJournal() error {
	entries, err := fc.e.cfg.Store.JournalList(fc.ctx, fc.runID)
	if err != nil {
		return fmt.Errorf("load journal of run %s: %w", fc.runID, err)
	}
	fc.byIdent = map[string]store.JournalEntry{}
	fc.byKey = make(map[string]store.JournalEntry, len(entries))
	fc.flying = map[string]store.JournalEntry{}
	fc.taken = make(map[string]struct{}, len(entries))
	for _, j := range entries {
		fc.taken[j.Key] = struct{}{}
		if !j.State.Succeeded() {
			fc.flying["k:"+j.Key] = j
			if j.Identity != "" {
				fc.flying["i:"+j.Identity] = j
			}
			continue
		}
		fc.journalN++
		fc.byKey[j.Key] = j
		if strings.Contains(j.Identity, ".") {
			fc.byIdent[j.Identity] = j
		}
	}
	fc.replaying.Store(fc.journalN > 0)
	return nil
}

// Call is one invocation of a task from flow code.
type Call struct {
	Task      *TaskDef
	Key       string // explicit step key; empty derives one from the call position
	Input     any    // the typed input (for custom cache keys)
	InputJSON json.RawMessage
	// Fn runs the task function; the SDK's decodes InputJSON, so the task
	// sees the value its recorded input decodes to.
	Fn func(ctx context.Context) (any, error)
	// Decode turns a recorded result into the typed output. Every result
	// the flow receives goes through it, also on the first run.
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

// Step kinds, part of the content of an identity.
const (
	kindTask = 't'
	kindFlow = 'f'
)

// placement is where a call lands: its step key and identity, and what the
// journal of earlier attempts holds for it.
type placement struct {
	key, ident string
	hit        *store.JournalEntry // a recorded completion to reuse
	resume     *store.JournalEntry // an unfinished step of an earlier attempt with this identity
}

// content hashes what identifies a call apart from its occurrence.
func content(kind byte, name, version, hash string) [sha256.Size]byte {
	b := make([]byte, 0, 3+len(name)+len(version)+len(hash))
	b = append(b, kind, 0)
	b = append(b, name...)
	b = append(b, 0)
	b = append(b, version...)
	b = append(b, 0)
	b = append(b, hash...)
	return sha256.Sum256(b)
}

// place finds the key and identity of a call of the named task (or
// subflow) with the given version and input hash, under an explicit key
// or at the derived key natural, and what the journal holds for it. A
// recorded explicit key of another task is a NonDeterminismError, unless
// that task is one of also (the task's fallback, which a distributed task
// run may have become).
func (fc *FlowCtx) place(kind byte, name, version, hash, explicit, natural string, also ...string) (placement, error) {
	p, err := fc.placeStep(kind, name, version, hash, explicit, natural, also...)
	if err != nil {
		return p, err
	}
	if err := fc.boundary(p, explicit != ""); err != nil {
		return p, err
	}
	return p, nil
}

// placeStep is place without the step boundary (steer.go).
func (fc *FlowCtx) placeStep(kind byte, name, version, hash, explicit, natural string, also ...string) (placement, error) {
	fc.calls.Add(1)
	c := content(kind, name, version, hash)
	base := hex.EncodeToString(c[:16])
	if explicit != "" {
		p := placement{key: explicit, ident: base}
		if fc.byKey == nil {
			return p, nil
		}
		if j, ok := fc.byKey[explicit]; ok {
			if j.Task != name && !slices.Contains(also, j.Task) {
				return p, &NonDeterminismError{Key: explicit, Recorded: j.Task, Called: name}
			}
			if j.Identity == base || (j.Identity == "" && version == "" && j.InputHash == hash) {
				p.hit = &j
				return p, nil
			}
		}
		if fl, ok := fc.flying["k:"+explicit]; ok && (fl.Task == name || slices.Contains(also, fl.Task)) && fl.Identity == base {
			p.resume = &fl
		}
		fc.mu.Lock()
		fc.taken[explicit] = struct{}{}
		fc.mu.Unlock()
		return p, nil
	}
	occ := binary.LittleEndian.Uint64(c[:8])
	fc.mu.Lock()
	k := fc.seen[occ]
	fc.seen[occ] = k + 1
	fc.mu.Unlock()
	p := placement{key: natural, ident: base + "." + strconv.FormatUint(uint64(k), 10)}
	if fc.byKey == nil {
		return p, nil // a first attempt: position keys are unique
	}
	if j, ok := fc.byIdent[p.ident]; ok {
		p.key, p.hit = j.Key, &j
		return p, nil
	}
	if j, ok := fc.byKey[natural]; ok && j.Identity == "" && j.Task == name && j.InputHash == hash && version == "" && k == 0 {
		p.hit = &j // recorded before identities: matched by position, as then
		return p, nil
	}
	if fl, ok := fc.flying["i:"+p.ident]; ok {
		p.key, p.resume = fl.Key, &fl
		return p, nil
	}
	p.key = fc.freeKey(natural)
	return p, nil
}

// freeKey returns natural, or natural#2, natural#3... when a recorded step
// or a step of this attempt holds it, and marks the key taken.
func (fc *FlowCtx) freeKey(natural string) string {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	key := natural
	for n := 2; ; n++ {
		if _, ok := fc.taken[key]; !ok {
			break
		}
		key = natural + "#" + strconv.Itoa(n)
	}
	fc.taken[key] = struct{}{}
	return key
}

// replayedOne notes a call the journal answered, or (hit false) one it did
// not, for the replaying flag of logs.
func (fc *FlowCtx) replayedOne(hit bool) {
	if hit {
		fc.reused.Add(1)
	}
	if !hit || fc.replayed.Add(1) >= int64(fc.journalN) {
		fc.replaying.Store(false)
	}
}

// Submit schedules a task call and returns its future at once.
func (fc *FlowCtx) Submit(c Call) *Future {
	idx := fc.reserve()
	return fc.submitMode(c, c.Key, c.Task.Name+"/"+strconv.Itoa(idx), false, nil)
}

// Call runs a task call on the calling goroutine (a sequential Run saves the
// hand-off to a pool goroutine) and returns its future; retries and calls
// with dependencies still go through the pool.
func (fc *FlowCtx) Call(c Call) *Future {
	idx := fc.reserve()
	return fc.submitMode(c, c.Key, c.Task.Name+"/"+strconv.Itoa(idx), len(c.After) == 0, nil)
}

// SubmitMap schedules n calls of one task, one per item, under one call
// index; mk builds the i-th call. The items are one node of the run graph,
// keyed by their keys' common prefix (the map's explicit key, or
// "task/N"), which they record as their Map.
func (fc *FlowCtx) SubmitMap(n int, mk func(i int) Call) []*Future {
	idx := fc.reserve()
	prefix := ""
	var m *mapItem
	futs := make([]*Future, n)
	for i := range n {
		c := mk(i)
		item := strconv.Itoa(i)
		explicit := ""
		if c.Key != "" {
			if err := checkKey(c.Key); err != nil {
				fc.cancel(err)
				futs[i] = resolvedFuture(c.Key+"."+item, nil, err)
				continue
			}
			explicit = c.Key + "." + item
		}
		if prefix == "" {
			prefix = c.Task.Name + "/" + strconv.Itoa(idx) + "."
		}
		if m == nil {
			m = &mapItem{key: strings.TrimSuffix(prefix, "."), deps: fc.graph.depsFor(c.After)}
			if c.Key != "" {
				m.key = c.Key
			}
			fc.graph.record(m.key, m.deps)
		}
		futs[i] = fc.submitMode(c, explicit, prefix+item, false, m)
	}
	return futs
}

// submitMode places a call (under the explicit key, or at the derived key
// natural) and answers it from the journal or starts its step: inline on
// the calling goroutine, or on the pool. m is set for the items of a map.
func (fc *FlowCtx) submitMode(c Call, explicit, natural string, inline bool, m *mapItem) *Future {
	hash := Hash(c.InputJSON)
	if explicit != "" {
		if err := checkKey(explicit); err != nil {
			fc.cancel(err)
			return resolvedFuture(explicit, nil, err)
		}
	}
	var also []string
	if fb := c.Task.Policy.Fallback; fb != nil && c.Task.Policy.Queue != "" {
		also = []string{fb.Name}
	}
	p, err := fc.place(kindTask, c.Task.Name, c.Task.Policy.Version, hash, explicit, natural, also...)
	if err != nil {
		fc.cancel(err)
		return resolvedFuture(p.key, nil, err)
	}
	if fc.byKey != nil {
		fc.replayedOne(p.hit != nil)
	}
	node, deps, mapKey := p.key, []string(nil), ""
	if m != nil {
		node, deps, mapKey = m.key, m.deps, m.key
	} else {
		deps = fc.graph.depsFor(c.After)
		fc.graph.record(node, deps)
	}
	if p.hit != nil {
		raw, err := fc.e.LoadResult(p.hit.Result, p.hit.ResultRef)
		if err != nil {
			return fc.fromJournal(p.key, node, nil, err)
		}
		v, err := c.Decode(raw)
		return fc.fromJournal(p.key, node, v, err)
	}
	s := &step{fc: fc, call: c, key: p.key, ident: p.ident, hash: hash, fut: fc.stepFuture(p.key, node), deps: deps, mapKey: mapKey}
	s.hold()
	fc.outstanding.Add(1)
	fc.active.Add(1)
	if fl := p.resume; fl != nil && fl.ChildRunID == "" && fc.e.remote != nil {
		// An earlier attempt dispatched this step and it is still queued or
		// running on a worker: wait for it rather than run it twice.
		s.tr = store.TaskRun{ID: fl.ID, RunID: fc.runID, Key: p.key, Task: fl.Task, Identity: p.ident, State: fl.State,
			InputHash: hash, Queue: c.Task.Policy.Queue}
		s.remote, s.adopted = true, true
		s.markDispatched()
		s.track(true)
		fc.e.remote.add(store.TaskRunRef{RunID: fc.runID, Key: p.key, ID: fl.ID}, s)
		fc.stepDone() // the flow may wait for nothing but workers
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
	if remoteGrace < grace {
		if !fc.e.sleep(done, remoteGrace) {
			return
		}
		fc.abandonSteps(func(s *step) bool { return s.isRemote() })
		grace -= remoteGrace
	}
	if !fc.e.sleep(done, grace) {
		return
	}
	fc.abandonSteps(func(*step) bool { return true })
}

// newFuture returns the future of a step of this attempt.
func (fc *FlowCtx) newFuture(key string) *Future {
	f := newFuture(key)
	f.act = fc.e.cfg.Activity
	return f
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
	fc    *FlowCtx
	call  Call
	key   string
	ident string // see store.TaskRun.Identity
	hash  string
	fut   *Future
	// deps and mapKey are the step's store.TaskRun.Deps and Map.
	deps   []string
	mapKey string

	mu        sync.Mutex
	tr        store.TaskRun
	finished  bool
	abandoned bool
	remote    bool            // dispatched to a worker: the store holds its state
	adopted   bool            // dispatched by an earlier attempt, which this one waits for
	wait      *store.WaitSpec // a wait step's spec (nil for tasks and subflows)
	// consume marks the pause wait made for a pause request
	// (WaitBeginParams.ConsumePause).
	consume bool
	// dispatched is true while the step is a distributed task run in
	// flight, counted in FlowCtx.dispatched.
	dispatched atomic.Bool

	// held is true while the step holds its unit of work (Config.Activity):
	// from its call to its result but for its retry delays. gone refuses
	// it once the step is finished or abandoned.
	held, gone atomic.Bool
}

// hold takes the step's unit of work, unless it holds it or is gone.
func (s *step) hold() {
	if !s.gone.Load() && s.held.CompareAndSwap(false, true) {
		s.fc.e.act(1)
	}
}

// letGo releases the step's unit of work, if it holds it.
func (s *step) letGo() {
	if s.held.CompareAndSwap(true, false) {
		s.fc.e.act(-1)
	}
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
	fc.ran.Add(1)
	s.tr = store.TaskRun{
		ID: NewID(), RunID: fc.runID, Key: s.key, Task: s.call.Task.Name, Identity: s.ident, State: store.TaskPending,
		FlowAttempt: fc.attempt, InputHash: s.hash, CreatedAt: now, Tags: s.call.Task.Policy.Tags,
		Deps: s.deps, Map: s.mapKey,
	}
	s.tr.Input, s.tr.InputRef = fc.e.storeInput(s.call.InputJSON)
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
	if ce.ResultRef != "" {
		// This task run will hold the blob's reference: store it again,
		// which keeps it from a retention pass that is deleting the
		// entry's run (or writes it back if that pass just deleted it).
		if _, err := fc.e.puts.Put(raw); err != nil {
			return false
		}
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
	version := p.Version
	if v := c.Task.Policy.Version; v != "" {
		version += "|v=" + v // the task's version (baton.Version) after the cache's own
	}
	return c.Task.Name + "|" + version + "|" + k, nil
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
	prev := s.tr
	s.tr.Attempts++
	s.moveLocked(store.TaskRunning, "engine", fmt.Sprintf("attempt %d", s.tr.Attempts))
	if s.tr.StartedAt.IsZero() {
		s.tr.StartedAt = s.tr.History[len(s.tr.History)-1].At
	}
	slots := s.slotStore()
	if slots != nil {
		s.tr.WorkerID, s.tr.LeaseUntil = fc.e.slotHolder(), fc.e.now().Add(fc.e.cfg.SlotLease)
	}
	tr := s.tr
	s.mu.Unlock()
	if slots != nil {
		if !s.takeSlots(slots, prev, tr) {
			return // it waits AWAITING_SLOT, and tries again
		}
		defer s.keepSlots(slots)()
	}
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
	fc.e.cfg.Clock.AfterFunc(delay, func() {
		s.hold()
		fc.enqueue(s.attempt)
	})
	s.letGo() // the callback takes it again before the attempt is queued
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
	fn := s.call.Fn
	if r := fc.e.cfg.Replace; r != nil {
		if mock := r(s.call.Task.Name); mock != nil {
			input := s.call.InputJSON
			fn = func(ctx context.Context) (any, error) { return mock(ctx, input) }
		}
	}
	timeout := s.call.Task.Policy.Timeout
	if timeout <= 0 {
		return fc.e.callTask(ctx, fn)
	}
	terr := &TimeoutError{What: fmt.Sprintf("task %s attempt %d", s.call.Task.Name, attempt), Timeout: timeout}
	ctx, cancel := withTimeoutCause(ctx, fc.e.cfg.Clock, timeout, terr)
	defer cancel()
	type result struct {
		v   any
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fc.e.callTask(ctx, fn)
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

// callTask runs a task function, as a unit of work of its own
// (Config.Activity) for as long as it runs.
func (e *Engine) callTask(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	e.act(1)
	defer e.act(-1)
	return safeCall(ctx, fn)
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
	enc, err := marshalResult(val)
	if err == nil && s.call.Decode != nil {
		// The flow gets the value the recorded JSON decodes to, exactly as
		// a replay will give it: not val itself, whose unexported fields
		// (or fields JSON leaves out) a replay could not restore.
		if val, err = s.call.Decode(enc); err != nil {
			err = &PermanentError{Err: fmt.Errorf("the result of task %s does not decode from its JSON, so a replay could not return it: %w",
				s.call.Task.Name, err)}
		}
	}
	var raw json.RawMessage
	var ref string
	if err == nil {
		raw, ref, err = fc.e.storeResult(enc)
	}
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
	s.gone.Store(true)
	s.fut.resolve(v, err) // which counts the flow waiting for it as working
	s.letGo()
	if s.dispatched.CompareAndSwap(true, false) {
		s.fc.dispatched.Add(-1)
	}
	s.fc.active.Add(-1)
	s.fc.outstanding.Done()
	s.fc.stepDone()
}

// abandon records a step whose goroutine outlived its flow attempt.
func (s *step) abandon() {
	s.mu.Lock()
	if s.finished || s.abandoned {
		s.mu.Unlock()
		return
	}
	s.abandoned = true
	s.gone.Store(true)
	s.letGo() // a task function still running holds its own unit
	if s.remote {
		// The server owns the state of a dispatched task run; cancelling the
		// flow run cancels it there.
		s.mu.Unlock()
		s.awaiter().remove(store.TaskRunRef{RunID: s.tr.RunID, Key: s.tr.Key, ID: s.tr.ID})
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
