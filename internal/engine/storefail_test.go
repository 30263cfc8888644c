package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// refusingStore keeps runs in memory and refuses, as a database would for
// good, every batch holding a task run whose key contains "bad", and every
// journal read while noJournal is set.
type refusingStore struct {
	store.Store
	mu        sync.Mutex
	runs      map[string]store.Run
	noJournal bool
}

var errRefused = errors.New("refused by the database")

func (s *refusingStore) BatchWrite(_ context.Context, b store.Batch) error {
	for _, tr := range b.TaskRuns {
		if strings.Contains(tr.Key, "bad") {
			return errRefused
		}
	}
	return nil
}

func (s *refusingStore) RunCreate(_ context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.runs[p.Run.ID] = p.Run
	return p.Run, true, nil
}

func (s *refusingStore) RunGet(_ context.Context, id string) (store.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[id]
	if !ok {
		return r, store.ErrNotFound
	}
	return r, nil
}

func (s *refusingStore) RunTransition(_ context.Context, p store.RunTransitionParams) (store.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.runs[p.ID]
	if !ok {
		return r, store.ErrNotFound
	}
	if !slices.Contains(p.From, r.State) || (p.Attempt != 0 && p.Attempt != r.Attempt) {
		return r, store.ErrConflict
	}
	store.ApplyTransition(&r, &p, time.Now())
	s.runs[p.ID] = r
	return r, nil
}

func (s *refusingStore) JournalList(context.Context, string) ([]store.JournalEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.noJournal {
		return nil, errRefused
	}
	return nil, nil
}

func (s *refusingStore) TaskRunFinished(context.Context, []store.TaskRunRef) ([]store.TaskRun, error) {
	return nil, errRefused
}

type noBlobs struct{}

func (noBlobs) Put([]byte) (string, error) { return "", errors.New("no blobs") }
func (noBlobs) Get(string) ([]byte, error) { return nil, errors.New("no blobs") }

// TestStoreFailureOnWorker: when a worker's engine cannot record a step or
// read the journal, or the store refuses to say whether a distributed step
// finished, the attempt ends with ErrStoreFailed and no final state
// (the worker gives the run back); a local run ends FAILED. Neither goes on
// as if the step had been recorded.
func TestStoreFailureOnWorker(t *testing.T) {
	t.Parallel()
	flow := func(key, queue string) *FlowDef {
		td := &TaskDef{Name: "t", Policy: TaskPolicy{Queue: queue}}
		return &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
			v, err := fc.Call(Call{Task: td, Key: key, InputJSON: json.RawMessage(`1`),
				Fn:     func(context.Context) (any, error) { return 1, nil },
				Decode: func(raw json.RawMessage) (any, error) { return raw, nil }}).Wait(fc.Context())
			if err != nil {
				// A flow that shrugs off the failure must not complete
				// with a step the journal does not have.
				return "ignored", nil
			}
			return v, nil
		}}
	}
	tests := []struct {
		name      string
		worker    string
		key       string
		queue     string
		attempt   int
		noJournal bool
		want      store.RunState
		storeErr  bool
	}{
		{"step not recorded on a worker", "w1", "badkey", "", 1, false, store.RunRunning, true},
		{"journal not read on a worker", "w1", "ok", "", 2, true, store.RunRunning, true},
		{"distributed step never answered", "w1", "ok", "q", 1, false, store.RunRunning, true},
		{"step not recorded locally", "", "badkey", "", 1, false, store.RunFailed, true},
		{"recorded on a worker", "w1", "ok", "", 1, false, store.RunCompleted, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := &refusingStore{runs: map[string]store.Run{}, noJournal: tt.noJournal}
			e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: tt.worker, Distributed: tt.worker != ""})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			claimed := store.Run{ID: "r", Flow: "f", State: store.RunPending, Attempt: tt.attempt, WorkerID: tt.worker, Parameters: json.RawMessage(`{}`)}
			st.runs["r"] = claimed
			out, err := e.ExecuteClaimed(context.Background(), flow(tt.key, tt.queue), claimed)
			if err != nil {
				t.Fatalf("ExecuteClaimed: %v", err)
			}
			if errors.Is(out.Err, ErrStoreFailed) != tt.storeErr {
				t.Errorf("outcome error %v; wraps ErrStoreFailed: %v", out.Err, !tt.storeErr)
			}
			if got := st.runs["r"].State; got != tt.want {
				t.Errorf("run recorded %s, want %s", got, tt.want)
			}
		})
	}
}

func (s *refusingStore) RunChildGet(_ context.Context, parentID, key string) (store.Run, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.runs {
		if r.ParentRunID == parentID && r.ParentStepKey == key {
			return r, nil
		}
	}
	return store.Run{}, store.ErrNotFound
}

// TestSubflowTakenOver: a new attempt of a parent on a worker takes over
// the subflow run that an earlier attempt left RUNNING (its worker crashed
// or gave the parent back) instead of failing on it.
func TestSubflowTakenOver(t *testing.T) {
	t.Parallel()
	child := &FlowDef{Name: "g", Body: func(*FlowCtx, json.RawMessage) (any, error) { return 7, nil }}
	parent := &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
		return fc.Subflow(child, json.RawMessage(`{}`), "", func(raw json.RawMessage) (any, error) { return raw, nil }).Wait(fc.Context())
	}}
	for _, left := range []store.RunState{store.RunRunning, store.RunScheduled} {
		t.Run(string(left), func(t *testing.T) {
			t.Parallel()
			st := &refusingStore{runs: map[string]store.Run{}}
			e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: "w2", Distributed: true})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			old := store.Run{ID: "c", Flow: "g", State: left, Attempt: 1, ParentRunID: "p", ParentStepKey: "g/0",
				Parameters: json.RawMessage(`{}`)}
			if left == store.RunRunning {
				old.WorkerID = "w1"
			}
			st.runs["c"] = old
			claimed := store.Run{ID: "p", Flow: "f", State: store.RunPending, Attempt: 2, WorkerID: "w2", Parameters: json.RawMessage(`{}`)}
			st.runs["p"] = claimed
			out, err := e.ExecuteClaimed(context.Background(), parent, claimed)
			if err != nil || out.Run.State != store.RunCompleted {
				t.Fatalf("parent: %s, %v, %v; want COMPLETED", out.Run.State, out.Err, err)
			}
			if c := st.runs["c"]; c.State != store.RunCompleted || c.Attempt != 2 || c.WorkerID != "w2" {
				t.Errorf("subflow: %s attempt %d worker %q; want COMPLETED at attempt 2 by w2", c.State, c.Attempt, c.WorkerID)
			}
		})
	}
}
