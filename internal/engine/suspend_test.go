package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/batonhq/baton/internal/store"
)

// suspendingStore is a worker's store whose suspension transition
// (RUNNING -> PAUSED, released, WaitingOn its waits) is applied at once and
// answered only when release is closed: meanwhile the run is PAUSED and
// held by no one, as when a slow answer or a descheduled goroutine delays
// the worker. With resolve set, the transition also resolves the run's
// waits (someone resumed the run as soon as it was PAUSED): the waiters'
// long polls (TaskRunFinished) return them.
type suspendingStore struct {
	refusingStore
	resolve   bool
	suspended chan struct{} // closed when the suspension is applied
	release   chan struct{} // answers it
	resolved  chan struct{} // closed when the waits are resolved

	wmu     sync.Mutex
	written map[string][]store.TaskState // the states of the task runs written, by key
}

func newSuspendingStore(resolve bool) *suspendingStore {
	return &suspendingStore{refusingStore: refusingStore{runs: map[string]store.Run{}}, resolve: resolve,
		suspended: make(chan struct{}), release: make(chan struct{}), resolved: make(chan struct{}),
		written: map[string][]store.TaskState{}}
}

func (s *suspendingStore) BatchWrite(_ context.Context, b store.Batch) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for _, tr := range b.TaskRuns {
		s.written[tr.Key] = append(s.written[tr.Key], tr.State)
	}
	return nil
}

func (s *suspendingStore) wrote(key string) []store.TaskState {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.written[key]
}

func (s *suspendingStore) WaitBegin(_ context.Context, p store.WaitBeginParams) (store.TaskRun, error) {
	return p.TaskRun, nil // WAITING
}

func (s *suspendingStore) RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error) {
	r, err := s.refusingStore.RunTransition(ctx, p)
	if err != nil || p.To != store.RunPaused || len(p.WaitingOn) == 0 {
		return r, err
	}
	if s.resolve {
		close(s.resolved)
	}
	close(s.suspended)
	<-s.release
	return r, nil
}

func (s *suspendingStore) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	select {
	case <-s.resolved:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]store.TaskRun, 0, len(refs))
	for _, r := range refs {
		out = append(out, store.TaskRun{RunID: r.RunID, Key: r.Key, ID: r.ID, Task: "pause", State: store.TaskCompleted,
			Attempts: 1, Result: json.RawMessage(`null`)})
	}
	return out, nil
}

// TestNothingRunsWhileSuspending: once a worker's run waits only and its
// suspension is on its way to the store, the attempt stands still until
// the store answers: the outcome of a wait resolved as soon as the run is
// PAUSED is not handed to the flow, and a call the flow makes then does
// not start its step. The attempt then stops (ErrSuspended); a replay
// runs what follows, once. Before, the flow went on while the run was
// PAUSED (and rescheduled, for a worker to replay it): a step started
// there was cut short by the cancel (recorded CANCELLED) and run again by
// the replay.
func TestNothingRunsWhileSuspending(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// resolve: the wait is resolved while the suspension is recorded;
		// else the flow, busy without a step, makes a call meanwhile.
		resolve bool
	}{
		{"the wait is resolved meanwhile", true},
		{"the flow makes a call meanwhile", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				st := newSuspendingStore(tc.resolve)
				var ran, decoded atomic.Bool
				proceed := make(chan struct{})
				next := &TaskDef{Name: "next"}
				flow := &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
					w := fc.Wait(store.WaitSpec{Kind: store.WaitPause, Prompt: "look"}, func(json.RawMessage) (any, error) {
						decoded.Store(true)
						return nil, nil
					})
					if tc.resolve {
						if _, err := w.Wait(fc.Context()); err != nil {
							return nil, err
						}
					} else {
						<-proceed // work that is no step, while the wait is open
					}
					return fc.Call(Call{Task: next, InputJSON: json.RawMessage(`1`),
						Fn:     func(context.Context) (any, error) { ran.Store(true); return 1, nil },
						Decode: func(raw json.RawMessage) (any, error) { return raw, nil }}).Wait(fc.Context())
				}}
				e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: "w1", Distributed: true})
				if err != nil {
					t.Fatal(err)
				}
				defer e.Close()
				claimed := store.Run{ID: "r", Flow: "f", State: store.RunPending, Attempt: 1, WorkerID: "w1",
					Parameters: json.RawMessage(`{}`)}
				st.runs["r"] = claimed
				type result struct {
					out Outcome
					err error
				}
				done := make(chan result, 1)
				go func() {
					out, err := e.ExecuteClaimed(context.Background(), flow, claimed)
					done <- result{out, err}
				}()
				<-st.suspended // the store has the run PAUSED, released; the worker does not know yet
				close(proceed)
				synctest.Wait() // everything that can run meanwhile has run
				if decoded.Load() || ran.Load() {
					t.Errorf("while the suspension was recorded: the wait's outcome delivered %v, step next started %v; want neither",
						decoded.Load(), ran.Load())
				}
				close(st.release)
				r := <-done
				if r.err != nil || !errors.Is(r.out.Err, ErrSuspended) {
					t.Fatalf("ExecuteClaimed: %v, %v; want ErrSuspended", r.out.Err, r.err)
				}
				if ran.Load() || len(st.wrote("next/1")) > 0 {
					t.Errorf("step next ran in the suspended attempt (recorded %v); want it left to the replay", st.wrote("next/1"))
				}
			})
		})
	}
}
