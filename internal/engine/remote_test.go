package engine

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// tricklingStore answers every TaskRunFinished at once with one finished
// task run, as a long-polling server does while completions trickle in one
// report at a time, and records when each poll came.
type tricklingStore struct {
	refusingStore
	pollMu sync.Mutex
	polls  []time.Time
}

func (s *tricklingStore) BatchWrite(context.Context, store.Batch) error { return nil }

func (s *tricklingStore) TaskRunFinished(_ context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	s.pollMu.Lock()
	s.polls = append(s.polls, time.Now())
	s.pollMu.Unlock()
	r := refs[0]
	return []store.TaskRun{{RunID: r.RunID, Key: r.Key, ID: r.ID, Task: "t", State: store.TaskCompleted,
		Attempts: 1, Result: json.RawMessage(`1`)}}, nil
}

// TestAwaiterCoalescesPolls: while distributed steps finish one at a time,
// the awaiter does not send its (up to pollBatch) refs once per finished
// task run back to back: polls start at least pollGap apart, so each
// collects what finished meanwhile.
func TestAwaiterCoalescesPolls(t *testing.T) {
	t.Parallel()
	const n = 6
	td := &TaskDef{Name: "t", Policy: TaskPolicy{Queue: "q"}}
	flow := &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
		var hs []*Future
		for i := range n {
			hs = append(hs, fc.Call(Call{Task: td, Key: "t/" + string(rune('a'+i)), InputJSON: json.RawMessage(`1`),
				Fn:     func(context.Context) (any, error) { return 1, nil },
				Decode: func(raw json.RawMessage) (any, error) { return raw, nil }}))
		}
		for _, h := range hs {
			if _, err := h.Wait(fc.Context()); err != nil {
				return nil, err
			}
		}
		return n, nil
	}}
	st := &tricklingStore{refusingStore: refusingStore{runs: map[string]store.Run{}}}
	e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: "w1", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	claimed := store.Run{ID: "r", Flow: "f", State: store.RunPending, Attempt: 1, WorkerID: "w1", Parameters: json.RawMessage(`{}`)}
	st.runs["r"] = claimed
	out, err := e.ExecuteClaimed(context.Background(), flow, claimed)
	if err != nil || out.Err != nil || out.Run.State != store.RunCompleted {
		t.Fatalf("ExecuteClaimed: %v, %v, %v; want COMPLETED", out.Run.State, out.Err, err)
	}
	st.pollMu.Lock()
	defer st.pollMu.Unlock()
	if len(st.polls) < 2 {
		t.Fatalf("%d polls, want several", len(st.polls))
	}
	for i := 1; i < len(st.polls); i++ {
		if gap := st.polls[i].Sub(st.polls[i-1]); gap < pollGap-time.Millisecond {
			t.Errorf("poll %d started %s after the previous one, want >= %s", i, gap, pollGap)
		}
	}
}

// longPollStore answers TaskRunFinished as a long-polling server does: at
// once with the refs that are finished, else when one of them finishes or
// the poll ends. Every ref but "t/a" is finished; "t/a" finishes once a
// poll has watched "t/b". polled is closed at the first poll.
type longPollStore struct {
	refusingStore
	polled   chan struct{}
	once     sync.Once
	mu       sync.Mutex
	sawB     bool
	finished chan struct{} // closed when "t/a" finishes
}

func (s *longPollStore) BatchWrite(context.Context, store.Batch) error { return nil }

func (s *longPollStore) TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	s.once.Do(func() { close(s.polled) })
	var out []store.TaskRun
	done := func(r store.TaskRunRef) store.TaskRun {
		return store.TaskRun{RunID: r.RunID, Key: r.Key, ID: r.ID, Task: "t", State: store.TaskCompleted, Attempts: 1, Result: json.RawMessage(`1`)}
	}
	for _, r := range refs {
		if r.Key != "t/a" {
			out = append(out, done(r))
			s.mu.Lock()
			if !s.sawB {
				s.sawB = true
				close(s.finished)
			}
			s.mu.Unlock()
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	select {
	case <-s.finished:
		return []store.TaskRun{done(refs[0])}, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// TestAwaiterWatchesStepsAddedDuringAPoll: a distributed step dispatched
// while the awaiter's long poll waits for an earlier one is watched at once
// (the poll is ended and sent again with it), not when that poll ends.
func TestAwaiterWatchesStepsAddedDuringAPoll(t *testing.T) {
	t.Parallel()
	st := &longPollStore{refusingStore: refusingStore{runs: map[string]store.Run{}}, polled: make(chan struct{}), finished: make(chan struct{})}
	td := &TaskDef{Name: "t", Policy: TaskPolicy{Queue: "q"}}
	call := func(fc *FlowCtx, key string) *Future {
		return fc.Call(Call{Task: td, Key: key, InputJSON: json.RawMessage(`1`),
			Fn:     func(context.Context) (any, error) { return 1, nil },
			Decode: func(raw json.RawMessage) (any, error) { return raw, nil }})
	}
	flow := &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
		a := call(fc, "t/a")
		<-st.polled // a poll watches t/a alone and waits
		if _, err := call(fc, "t/b").Wait(fc.Context()); err != nil {
			return nil, err
		}
		return a.Wait(fc.Context())
	}}
	e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: "w1", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	claimed := store.Run{ID: "r", Flow: "f", State: store.RunPending, Attempt: 1, WorkerID: "w1", Parameters: json.RawMessage(`{}`)}
	st.runs["r"] = claimed
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := e.ExecuteClaimed(ctx, flow, claimed)
	if err != nil || out.Err != nil || out.Run.State != store.RunCompleted {
		t.Fatalf("ExecuteClaimed: %v, %v, %v; want COMPLETED (t/b watched while the poll for t/a waited)", out.Run.State, out.Err, err)
	}
}
