package batontest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// This file holds what drives waits from a test: starting a run without
// waiting for its end (Start), waiting until it is PAUSED on a wait
// (WaitPaused), and giving it what it waits for (SendInput, Resume,
// SendEvent), with the clock held still meanwhile.
//
// The clock moves by itself only while the test waits: while one of its
// goroutines is in Run, Retry, a Handle's Wait, or a WaitPaused whose wait
// has not begun. Between two of these, a run of Start that waits
// (WaitForInput, Pause, Sleep, WaitForEvent) keeps the clock still, so
// that its deadline cannot pass before the test sends what it waits for;
// and once a WaitPaused has seen its wait begin, the clock stays still
// until the test acts again (sends, moves the clock, or waits).

// Actor is who the input and events sent by this package's helpers come
// from, in the runs' histories.
const Actor = "batontest"

// started is a run of Start that did not end.
type started struct {
	id     string
	cancel context.CancelFunc
}

// watch is a WaitPaused call whose wait had not begun when the clock last
// asked.
type watch struct {
	runID, wait string
	reached     bool
}

// startKey is the context key under which Start learns its run's ID.
type startKey struct{}

// startStore is the environment's store as its engine sees it: it tells
// Start the ID of the run it creates.
type startStore struct{ store.Store }

func (s startStore) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	run, created, err := s.Store.RunCreate(ctx, p)
	if f, ok := ctx.Value(startKey{}).(func(store.Run)); ok && err == nil && p.Run.ParentRunID == "" {
		f(run)
	}
	return run, created, err
}

// block notes a goroutine of the test that waits for runs: the clock may
// move by itself meanwhile. It returns the function that ends the wait.
func (env *Env) block() func() {
	env.hmu.Lock()
	env.blocked++
	env.held = false
	env.hmu.Unlock()
	env.clock.poke()
	return func() {
		env.hmu.Lock()
		env.blocked--
		env.hmu.Unlock()
		env.clock.poke()
	}
}

// release ends the hold of a WaitPaused: the test acted.
func (env *Env) release() {
	env.hmu.Lock()
	env.held = false
	env.hmu.Unlock()
	env.clock.poke()
}

// holdClock is asked by the clock before it moves by itself.
func (env *Env) holdClock() bool {
	env.hmu.Lock()
	defer env.hmu.Unlock()
	if env.closing {
		return false
	}
	for _, w := range env.watches {
		if !w.reached {
			if tr, _ := env.waitingStep(w.runID, w.wait); tr != nil {
				env.reachLocked(w)
			}
		}
	}
	if env.held {
		return true
	}
	if env.blocked > 0 {
		return false
	}
	for s := range env.live {
		if trs, err := env.st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: s.id,
			States: []store.TaskState{store.TaskWaiting}, Limit: 1}); err == nil && len(trs) > 0 {
			return true
		}
	}
	return false
}

// reachLocked notes that w's wait began: the clock holds still until the
// test acts. env.hmu must be held.
func (env *Env) reachLocked(w *watch) {
	w.reached = true
	env.held = true
	env.blocked--
}

// waitingStep returns the WAITING wait step of run runID that wait names
// (see WaitPaused), or nil.
func (env *Env) waitingStep(runID, wait string) (*store.TaskRun, error) {
	trs, err := env.st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID,
		States: []store.TaskState{store.TaskWaiting}})
	if err != nil {
		return nil, err
	}
	for i, tr := range trs {
		spec, ok := specOf(tr)
		if ok && (wait == "" || wait == tr.Task || ((spec.Kind == store.WaitInput || spec.Kind == store.WaitEvent) && wait == spec.Key)) {
			return &trs[i], nil
		}
	}
	return nil, nil
}

// specOf decodes the wait spec of a wait step.
func specOf(tr store.TaskRun) (store.WaitSpec, bool) {
	spec, err := store.DecodeWaitSpec(tr.Input)
	if err != nil || spec.Check() != nil || store.WaitTask(spec) != tr.Task {
		return spec, false
	}
	return spec, true
}

// waitOf describes the wait of a wait step, or returns nil for a task run.
func waitOf(tr store.TaskRun) *Wait {
	spec, ok := specOf(tr)
	if !ok {
		return nil
	}
	return &Wait{Kind: spec.Kind, Key: spec.Key, Prompt: spec.Prompt, Deadline: spec.Deadline(tr.CreatedAt),
		Schema: spec.Schema, Default: spec.Default}
}

// pausedPoll is how often WaitPaused reads the store (on the wall clock).
const pausedPoll = time.Millisecond

// WaitPaused blocks until run runID is PAUSED on the wait that wait
// names, and returns its wait step. wait is the wait's task name
// ("input:KEY", "pause", "sleep", "event:NAME"), or the key of a
// WaitForInput or the name of a WaitForEvent, or "" for any wait. The
// clock moves by itself while WaitPaused waits; once the wait has begun it
// stands still until the test acts again: sends (SendInput, Resume,
// SendEvent), moves it (Advance), or waits (Run, Retry, Handle.Wait,
// WaitPaused). So a deadline (baton.Within) cannot pass before the test
// answers. WaitPaused fails the test when the run ends without waiting so.
func (env *Env) WaitPaused(runID, wait string) TaskRun {
	env.t.Helper()
	w := &watch{runID: runID, wait: wait}
	env.hmu.Lock()
	env.blocked++
	env.held = false
	env.watches = append(env.watches, w)
	env.hmu.Unlock()
	env.clock.poke()
	defer func() {
		env.hmu.Lock()
		if !w.reached {
			env.blocked--
		}
		env.watches = slices.DeleteFunc(env.watches, func(x *watch) bool { return x == w })
		env.hmu.Unlock()
		env.clock.poke()
	}()
	tick := time.NewTicker(pausedPoll)
	defer tick.Stop()
	ctx := context.Background()
	for {
		env.hmu.Lock()
		tr, err := env.waitingStep(runID, wait)
		if err == nil && tr != nil && !w.reached {
			env.reachLocked(w)
		}
		env.hmu.Unlock()
		if err != nil {
			env.t.Fatalf("batontest: read the waits of run %s: %v", runID, err)
		}
		run, err := env.st.RunGet(ctx, runID)
		if err != nil {
			env.t.Fatalf("batontest: read run %s: %v", runID, err)
		}
		if tr != nil && run.State == store.RunPaused {
			trs := env.taskRuns(runID)
			for _, v := range trs {
				if v.ID == tr.ID {
					return v
				}
			}
		}
		if run.State.Final() {
			env.t.Fatalf("batontest: run %s ended %s without waiting for %q", runID, run.State, wait)
		}
		<-tick.C
	}
}

// SendInput sends value as the input of run runID's WaitForInput of key,
// as `baton runs resume RUN_ID --key KEY --input JSON` does: it is
// validated against the wait's JSON Schema, and refused with every
// violation (nothing recorded) when it does not satisfy it. Input for a
// key the run does not wait for yet is kept for its first wait of it.
// The run's engine reads it at once.
func SendInput(env *Env, runID, key string, value any) error {
	raw, err := json.Marshal(value)
	if err != nil {
		return fmt.Errorf("batontest: encode the input for %s: %w", key, err)
	}
	if key == "" {
		return fmt.Errorf("batontest: input for run %s needs a key", runID)
	}
	return env.sendInput(runID, apitype.InputRequest{Key: key, Value: raw})
}

// Resume resumes run runID from its baton.Pause, as `baton runs resume
// RUN_ID` does.
func Resume(env *Env, runID string) error {
	return env.sendInput(runID, apitype.InputRequest{})
}

func (env *Env) sendInput(runID string, req apitype.InputRequest) error {
	defer env.release()
	_, err := api.SendInputAt(context.Background(), env.st, runID, req, store.Actor{Name: Actor}, env.Now())
	if err != nil {
		return fmt.Errorf("input for run %s refused: %w", runID, err)
	}
	env.eng.PollWaits()
	return nil
}

// SendEvent sends the event name with payload (encoded as JSON) to the
// environment's runs, as `baton events send NAME --payload JSON` does: it
// wakes every run that waits for it (baton.WaitForEvent) with a payload
// that fits the wait's Match, and is kept for the waits that begin later
// (within the store's event retention). It returns how many waits it
// woke.
func SendEvent(env *Env, name string, payload any) (int, error) {
	defer env.release()
	raw, err := json.Marshal(payload)
	if err != nil {
		return 0, fmt.Errorf("batontest: encode the payload of event %s: %w", name, err)
	}
	res, err := api.SendEventAt(context.Background(), env.st, apitype.EventRequest{Name: name, Payload: raw},
		store.Actor{Name: Actor}, env.Now())
	if err != nil {
		return 0, fmt.Errorf("event %s refused: %w", name, err)
	}
	env.eng.PollWaits()
	return len(res.Delivered), nil
}

// Handle is a run of Start in progress.
type Handle[R any] struct {
	// ID is the run's ID.
	ID string

	env  *Env
	s    *started
	done chan struct{}
	run  *FlowRun[R]
	err  error
	once sync.Once
}

// Start starts a run of flow with params in the environment and returns
// once the run is recorded, without waiting for its end: the test can
// then wait for it to pause (WaitPaused), send what it waits for, and
// read its outcome with Wait. While the test does not wait, the run's
// waits hold the clock still (see WaitPaused). A run still going when the
// test ends is cancelled.
func Start[P, R any](env *Env, flow *baton.FlowDef[P, R], params P) (*Handle[R], error) {
	return StartContext(context.Background(), env, flow, params)
}

// StartContext is Start with a context: cancelling ctx cancels the run.
func StartContext[P, R any](ctx context.Context, env *Env, flow *baton.FlowDef[P, R], params P) (*Handle[R], error) {
	def, err := flowDef(flow)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("batontest: encode parameters of flow %s: %w", def.Name, err)
	}
	env.hmu.Lock()
	if env.closing {
		env.hmu.Unlock()
		return nil, fmt.Errorf("batontest: the environment is closed")
	}
	env.runs.Add(1)
	env.hmu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	h := &Handle[R]{env: env, s: &started{cancel: cancel}, done: make(chan struct{})}
	created := make(chan struct{})
	ctx = context.WithValue(ctx, startKey{}, func(run store.Run) {
		h.once.Do(func() {
			h.ID, h.s.id = run.ID, run.ID
			env.hmu.Lock()
			env.live[h.s] = struct{}{}
			env.hmu.Unlock()
			close(created)
		})
	})
	go func() {
		defer env.runs.Done()
		defer cancel()
		out, err := env.eng.Start(ctx, def, raw)
		h.run, h.err = flowRun[R](env, out, err)
		env.hmu.Lock()
		delete(env.live, h.s)
		env.hmu.Unlock()
		close(h.done)
		env.clock.poke()
	}()
	select {
	case <-created:
		return h, nil
	case <-h.done:
		select {
		case <-created:
			return h, nil // it ended at once
		default:
		}
		if h.err == nil {
			h.err = fmt.Errorf("batontest: the run of flow %s was not recorded", def.Name)
		}
		return nil, h.err
	}
}

// Wait waits for the run's end and returns it as Run does: the clock moves
// by itself meanwhile.
func (h *Handle[R]) Wait() (*FlowRun[R], error) {
	defer h.env.block()()
	<-h.done
	return h.run, h.err
}

// Cancel cancels the run (it ends CANCELLED, or stays PAUSED when it waits)
// and returns once it ended.
func (h *Handle[R]) Cancel() (*FlowRun[R], error) {
	h.s.cancel()
	return h.Wait()
}
