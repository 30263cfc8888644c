package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// This file holds steering from outside a run: pause requests (runs
// pause) and the run's current parameters (runs update, baton.Settings).
//
// A pause request is recorded on the run in the store (Run.PauseRequest).
// At each step boundary (every call the flow makes: a task, a subflow, a
// wait) the engine reads the run at most every PausePoll, through its store
// (RunGet: the local store, or the engine protocol on a worker). Before a
// new step starts while a request is pending, it records a pause wait (a
// wait step of kind pause, like baton.Pause, whose prompt says who asked
// and why) in the transaction that consumes the request, and the calling
// goroutine waits for it as for baton.Pause: the run goes PAUSED (a
// worker's run is suspended) until `runs resume`.
//
// The pause is a recorded step, keyed by the identity of the step it came
// before ("pause@" + that identity), so a replay finds it again at the same
// place: a resolved one is passed, one still WAITING is waited for again.

// pauseKeyPrefix starts the key of a pause wait made for a pause request.
const pauseKeyPrefix = "pause@"

// steering is an attempt's state of pause requests.
type steering struct {
	mu      sync.Mutex          // held while a boundary reads or makes a pause
	read    time.Time           // the last read of the run for a request (or the attempt's start)
	pending *store.PauseRequest // a request seen and not yet made
	made    *store.PauseRequest // the last request made here: a stale read of it is not made again
}

// notePause records the pause request of a local run that its cancel
// watch read (nil: none), for the run's step boundaries.
func (e *Engine) notePause(runID string, req *store.PauseRequest) {
	if req == nil {
		e.pauses.Delete(runID)
		return
	}
	e.pauses.Store(runID, req)
}

// boundary is called when the flow places a step (p), before the step
// starts. It replays a pause recorded before the step by an earlier
// execution, or, when a pause was requested, makes it, and returns when the
// pause is resolved (or with the error that ended it). A request is known
// from the run as the attempt started, from the cancel watch of a local
// run (every CancelPoll), or from a read of the run at a boundary at least
// PausePoll after the last one.
func (fc *FlowCtx) boundary(p placement, explicit bool) error {
	if err := fc.awaitSuspension(); err != nil {
		return err // a worker released the run while this call was made
	}
	key := pauseKeyPrefix + p.ident
	if explicit {
		key = pauseKeyPrefix + "k." + p.key
	}
	if fc.byKey != nil {
		if _, ok := fc.byKey[key]; ok {
			fc.replayedOne(true) // a pause that was resumed: go on
			return nil
		}
		if fl, ok := fc.flying["k:"+key]; ok && fl.State == store.TaskWaiting && fl.Task == store.WaitTask(store.WaitSpec{Kind: store.WaitPause}) {
			return fc.requestedPause(key, nil, &fl)
		}
	}
	if p.hit != nil {
		return nil // replayed steps are no boundary: nothing starts
	}
	st := &fc.steer
	st.mu.Lock()
	defer st.mu.Unlock()
	req := st.pending
	if v, ok := fc.e.pauses.Load(fc.runID); ok && req == nil {
		req = v.(*store.PauseRequest)
	}
	now := fc.e.now()
	if poll := fc.e.cfg.PausePoll; req == nil && (poll < 0 || now.Sub(st.read) >= poll) {
		st.read = now
		if run, err := fc.e.cfg.Store.RunGet(fc.ctx, fc.runID); err == nil {
			req = run.PauseRequest // a failed read is read again at a later boundary
		}
	}
	st.pending = nil
	if req == nil || (st.made != nil && samePause(*st.made, *req)) {
		return nil
	}
	st.made = req
	fc.e.pauses.CompareAndDelete(fc.runID, req)
	return fc.requestedPause(key, req, nil)
}

// requestedPause records the pause wait key for req (or waits again for
// the one an earlier execution recorded, resume) and waits for it.
func (fc *FlowCtx) requestedPause(key string, req *store.PauseRequest, resume *store.JournalEntry) error {
	spec := store.WaitSpec{Kind: store.WaitPause}
	if req != nil {
		spec.Prompt = "pause requested by " + req.By.String()
		if req.Reason != "" {
			spec.Prompt += ": " + req.Reason
		}
	}
	task := store.WaitTask(spec)
	in, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encode pause: %w", err)
	}
	hash := Hash(in)
	s := &step{fc: fc, call: Call{Task: waitDef(task), InputJSON: in, Decode: decodeNothing}, key: key, ident: key,
		hash: hash, fut: fc.newFuture(key), wait: &spec, consume: true}
	s.hold()
	fc.outstanding.Add(1)
	fc.active.Add(1)
	s.track(true)
	if resume != nil {
		s.tr = store.TaskRun{ID: resume.ID, RunID: fc.runID, Key: key, Task: task, Identity: key, State: resume.State,
			InputHash: resume.InputHash}
		s.awaitWait()
	} else {
		fc.mu.Lock()
		if fc.taken != nil {
			fc.taken[key] = struct{}{}
		}
		fc.mu.Unlock()
		go s.beginWait()
	}
	_, err = s.fut.Wait(fc.ctx)
	if err != nil {
		return fmt.Errorf("paused before this step: %w", err)
	}
	return nil
}

// samePause reports whether a and b are one request (read twice).
func samePause(a, b store.PauseRequest) bool {
	return a.By == b.By && a.Reason == b.Reason && a.At.Equal(b.At)
}

func decodeNothing(json.RawMessage) (any, error) { return struct{}{}, nil }

// Parameters returns the current parameters of run runID as its store
// holds them (a run update changes them while the run executes).
func (e *Engine) Parameters(ctx context.Context, runID string) (json.RawMessage, error) {
	r, err := e.cfg.Store.RunGet(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("read the settings of run %s: %w", runID, err)
	}
	return r.Parameters, nil
}
