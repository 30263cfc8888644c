package engine

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"sync"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// inFlightStore holds the journal of an earlier attempt whose distributed
// step is still queued, under a key that is not where the new attempt
// calls it; it records what is written and polled, and finishes the step
// when polled.
type inFlightStore struct {
	refusingStore
	journal []store.JournalEntry
	mu      sync.Mutex
	written []store.TaskRun
	polled  []store.TaskRunRef
}

func (s *inFlightStore) JournalList(context.Context, string) ([]store.JournalEntry, error) {
	return s.journal, nil
}

func (s *inFlightStore) BatchWrite(_ context.Context, b store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.written = append(s.written, b.TaskRuns...)
	return nil
}

func (s *inFlightStore) TaskRunFinished(_ context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error) {
	s.mu.Lock()
	s.polled = append(s.polled, refs...)
	s.mu.Unlock()
	var out []store.TaskRun
	for _, r := range refs {
		out = append(out, store.TaskRun{RunID: r.RunID, Key: r.Key, ID: r.ID, Task: "t", State: store.TaskCompleted,
			Attempts: 1, Result: json.RawMessage(`"from the earlier dispatch"`)})
	}
	return out, nil
}

// TestInFlightStepAdoptedByIdentity: a new attempt on a worker waits for
// the distributed step an earlier attempt dispatched with the same
// identity, whatever key the call has now (calls were inserted before it),
// instead of dispatching it again; a call of another input is not matched.
func TestInFlightStepAdoptedByIdentity(t *testing.T) {
	t.Parallel()
	td := &TaskDef{Name: "t", Policy: TaskPolicy{Queue: "q"}}
	c := content(kindTask, "t", "", Hash([]byte(`1`)))
	ident := hex.EncodeToString(c[:16]) + ".0"
	st := &inFlightStore{refusingStore: refusingStore{runs: map[string]store.Run{}},
		journal: []store.JournalEntry{{Key: "t/7", Task: "t", Identity: ident, InputHash: Hash([]byte(`1`)), ID: "earlier", State: store.TaskPending}}}
	call := func(fc *FlowCtx, in string) *Future {
		return fc.Call(Call{Task: td, InputJSON: json.RawMessage(in),
			Fn:     func(context.Context) (any, error) { return nil, nil },
			Decode: func(raw json.RawMessage) (any, error) { return string(raw), nil }})
	}
	var keys []string
	flow := &FlowDef{Name: "f", Body: func(fc *FlowCtx, _ json.RawMessage) (any, error) {
		other := call(fc, `2`) // inserted: takes position 0
		same := call(fc, `1`)
		keys = append(keys, other.Key(), same.Key())
		if _, err := other.Wait(fc.Context()); err != nil {
			return nil, err
		}
		return same.Wait(fc.Context())
	}}
	e, err := New(Config{Store: st, Blobs: noBlobs{}, LogOutput: io.Discard, Worker: "w1", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	claimed := store.Run{ID: "r", Flow: "f", State: store.RunPending, Attempt: 2, WorkerID: "w1", Parameters: json.RawMessage(`{}`)}
	st.runs["r"] = claimed
	out, err := e.ExecuteClaimed(context.Background(), flow, claimed)
	if err != nil || out.Err != nil || out.Result != `"from the earlier dispatch"` {
		t.Fatalf("ExecuteClaimed: %v, %v, %v; want the earlier dispatch's result", out.Result, out.Err, err)
	}
	if keys[0] != "t/0" || keys[1] != "t/7" {
		t.Errorf("keys %v, want [t/0 t/7]: the new call at its position, the adopted one under its recorded key", keys)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, tr := range st.written {
		if tr.Identity == ident {
			t.Errorf("the in-flight step was dispatched again: %+v", tr)
		}
	}
	found := false
	for _, r := range st.polled {
		found = found || r.ID == "earlier"
	}
	if !found {
		t.Errorf("polled %v, want the earlier dispatch's task run", st.polled)
	}
	run := st.runs["r"]
	if a := run.AttemptRecord(2); a == nil || a.Steps == nil || *a.Steps != (store.StepCounts{Ran: 2}) {
		t.Errorf("attempt 2 record %+v, want 2 steps ran (one waited for)", a)
	}
}
