package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// waitRun writes a RUNNING run (on queue, "" for a local run) and returns it.
func waitRun(t *testing.T, s store.Store, id, queue string) store.Run {
	t.Helper()
	r := store.Run{ID: id, Flow: "campaign", State: store.RunRunning, Attempt: 1, Queue: queue,
		CreatedAt: at(0), UpdatedAt: at(0), StartedAt: at(0)}
	write(t, s, store.Batch{Runs: []store.Run{r}})
	return r
}

// beginWait records a wait step of spec in run runID at time when.
func beginWait(t *testing.T, s store.Store, runID, key string, spec store.WaitSpec, when time.Time,
	validate func(schema, value json.RawMessage) error) store.TaskRun {
	t.Helper()
	in, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := s.WaitBegin(context.Background(), store.WaitBeginParams{
		TaskRun: store.TaskRun{ID: "w-" + key, RunID: runID, Key: key, Task: store.WaitTask(spec), Input: in, InputHash: "h"},
		Spec:    spec, At: when, EventsSince: when.Add(-store.DefaultEventRetention), Validate: validate,
	})
	if err != nil {
		t.Fatalf("WaitBegin %s: %v", key, err)
	}
	return tr
}

// taskRunState reads the state and result of a run's task run by key.
func taskRunAt(t *testing.T, s store.Store, runID, key string) store.TaskRun {
	t.Helper()
	trs, err := s.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range trs {
		if tr.Key == key {
			return tr
		}
	}
	t.Fatalf("run %s has no task run %s", runID, key)
	return store.TaskRun{}
}

// historyActions lists the actions of a run's history with their actors.
func historyActions(t *testing.T, s store.Store, runID string) []string {
	t.Helper()
	hs, err := s.HistoryList(context.Background(), store.HistoryListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, h.Action+" by "+h.Actor.String())
	}
	return out
}

// errViolation is the refusal of the test's validator.
var errViolation = errors.New("/weight: must be >= 1")

// positive accepts a JSON object whose weight is a number of at least 1.
func positive(schema, value json.RawMessage) error {
	if len(schema) == 0 {
		return fmt.Errorf("no schema given to the validator")
	}
	var v struct{ Weight float64 }
	if json.Unmarshal(value, &v) != nil || v.Weight < 1 {
		return errViolation
	}
	return nil
}

var alice = store.Actor{Name: "alice", Verified: false}

func testWaitInput(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-in", "")
	spec := store.WaitSpec{Kind: store.WaitInput, Key: "decision", Prompt: "go on?", Schema: raw(`{"type":"object"}`)}
	tr := beginWait(t, s, "run-in", "input:decision/0", spec, at(1), positive)
	if tr.State != store.TaskWaiting {
		t.Fatalf("new wait is %s, want WAITING", tr.State)
	}
	// A value the schema refuses: the validator's error, nothing recorded.
	_, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-in", Key: "decision", Value: raw(`{"weight":0}`),
		Actor: alice, At: at(2), Validate: positive})
	if !errors.Is(err, errViolation) {
		t.Fatalf("invalid input: %v, want the validator's error", err)
	}
	if got := taskRunAt(t, s, "run-in", tr.Key); got.State != store.TaskWaiting {
		t.Fatalf("after refused input the wait is %s", got.State)
	}
	res, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-in", Key: "decision", Value: raw(`{"weight":3}`),
		Actor: alice, At: at(3), Validate: positive})
	if err != nil || res.Kept || res.Step.Key != tr.Key || res.Woke {
		t.Fatalf("InputSend: %+v, %v; want delivered to %s (a local run is not woken)", res, err, tr.Key)
	}
	got := taskRunAt(t, s, "run-in", tr.Key)
	if got.State != store.TaskCompleted || !store.SameJSON(got.Result, raw(`{"weight":3}`)) {
		t.Fatalf("wait after input: %s %s, want COMPLETED with the value", got.State, got.Result)
	}
	done, err := s.TaskRunFinished(ctx, []store.TaskRunRef{{RunID: "run-in", Key: tr.Key, ID: tr.ID}})
	if err != nil || len(done) != 1 {
		t.Fatalf("TaskRunFinished of the resolved wait: %v, %v", done, err)
	}
	// A second input for the same wait names the first sender.
	_, err = s.InputSend(ctx, store.InputSendParams{RunID: "run-in", Key: "decision", Value: raw(`{"weight":5}`),
		Actor: store.Actor{Name: "bob"}, At: at(4), Validate: positive})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("second input: %v, want a conflict naming alice", err)
	}
	hist := strings.Join(historyActions(t, s, "run-in"), "; ")
	if !strings.Contains(hist, store.ActionInputReceived+" by alice (unverified)") {
		t.Errorf("history %q has no input_received by alice", hist)
	}
	// Unknown runs and finished runs.
	if _, err := s.InputSend(ctx, store.InputSendParams{RunID: "nope", Key: "decision"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("input for an unknown run: %v, want ErrNotFound", err)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-in", From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, At: at(5)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-in", Key: "other", At: at(6)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("input for a finished run: %v, want ErrConflict", err)
	}
}

func testWaitInputKept(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-kept", "")
	res, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", Key: "bounds", Value: raw(`{"weight":2}`),
		Actor: alice, At: at(1), Validate: positive})
	if err != nil || !res.Kept {
		t.Fatalf("input before the wait: %+v, %v; want kept", res, err)
	}
	_, err = s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", Key: "bounds", Value: raw(`{"weight":4}`),
		Actor: store.Actor{Name: "bob"}, At: at(2)})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "alice") {
		t.Fatalf("second input before the wait: %v, want a conflict naming alice", err)
	}
	spec := store.WaitSpec{Kind: store.WaitInput, Key: "bounds", Schema: raw(`{"type":"object"}`)}
	tr := beginWait(t, s, "run-kept", "input:bounds/0", spec, at(3), positive)
	if tr.State != store.TaskCompleted || !store.SameJSON(tr.Result, raw(`{"weight":2}`)) {
		t.Fatalf("wait begun after its input: %s %s, want COMPLETED with the kept value", tr.State, tr.Result)
	}
	// Kept input that the wait's schema refuses is not delivered.
	if _, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", Key: "weight", Value: raw(`{"weight":0}`),
		Actor: alice, At: at(4)}); err != nil {
		t.Fatal(err)
	}
	tr = beginWait(t, s, "run-kept", "input:weight/0", store.WaitSpec{Kind: store.WaitInput, Key: "weight",
		Schema: raw(`{"type":"object"}`)}, at(5), positive)
	if tr.State != store.TaskWaiting {
		t.Fatalf("wait begun after input its schema refuses: %s, want WAITING", tr.State)
	}
	if hist := strings.Join(historyActions(t, s, "run-kept"), "; "); !strings.Contains(hist, store.ActionInputRefused) {
		t.Errorf("history %q does not record the refused input", hist)
	}
	// An empty key names the only wait; a pause is resumed with no value.
	pause := beginWait(t, s, "run-kept", "pause/0", store.WaitSpec{Kind: store.WaitPause}, at(6), nil)
	_, err = s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", At: at(7)})
	if !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "several") {
		t.Fatalf("input without a key while two waits are open: %v, want a conflict", err)
	}
	res, err = s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", Key: "weight", Value: raw(`{"weight":7}`),
		At: at(8), Validate: positive})
	if err != nil || res.Step.Key != "input:weight/0" {
		t.Fatalf("input for weight: %+v, %v", res, err)
	}
	res, err = s.InputSend(ctx, store.InputSendParams{RunID: "run-kept", Actor: alice, At: at(9)})
	if err != nil || res.Step.Key != pause.Key {
		t.Fatalf("resume: %+v, %v; want the pause resolved", res, err)
	}
	if got := taskRunAt(t, s, "run-kept", pause.Key); got.State != store.TaskCompleted || string(got.Result) != "null" {
		t.Fatalf("resumed pause: %s %s", got.State, got.Result)
	}
}

func testWaitWakesPausedRun(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-wake", "q")
	tr := beginWait(t, s, "run-wake", "input:go/0", store.WaitSpec{Kind: store.WaitInput, Key: "go"}, at(1), nil)
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-wake", From: []store.RunState{store.RunRunning},
		To: store.RunPaused, Owner: &store.Owner{}, At: at(2)}); err != nil {
		t.Fatal(err)
	}
	res, err := s.InputSend(ctx, store.InputSendParams{RunID: "run-wake", Key: "go", Value: raw(`true`), Actor: alice, At: at(3)})
	if err != nil || !res.Woke || res.Step.ID != tr.ID {
		t.Fatalf("input to a paused worker run: %+v, %v; want it woken", res, err)
	}
	r, err := s.RunGet(ctx, "run-wake")
	if err != nil || r.State != store.RunScheduled {
		t.Fatalf("woken run is %s (%v), want SCHEDULED", r.State, err)
	}
	claimed, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Flows: []string{"campaign"},
		Limit: 1, LeaseUntil: at(60), At: at(4)})
	if err != nil || len(claimed) != 1 {
		t.Fatalf("claim of the woken run: %v, %v", claimed, err)
	}
	hist := strings.Join(historyActions(t, s, "run-wake"), "; ")
	for _, want := range []string{store.ActionPaused, store.ActionInputReceived, store.ActionResumed} {
		if !strings.Contains(hist, want) {
			t.Errorf("history %q lacks %s", hist, want)
		}
	}
}

func testWaitEvents(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-ev", "")
	waitRun(t, s, "run-ev2", "")
	// Sent before anyone waits: kept, and delivered to the first wait.
	first, err := s.EventSend(ctx, store.EventSendParams{Name: "plate-ready", Payload: raw(`{"plate":1}`), Actor: alice, At: at(1)})
	if err != nil || len(first.Delivered) != 0 || first.Seq == 0 {
		t.Fatalf("early event: %+v, %v", first, err)
	}
	w0 := beginWait(t, s, "run-ev", "event:plate-ready/0", store.WaitSpec{Kind: store.WaitEvent, Key: "plate-ready"}, at(2), nil)
	if w0.State != store.TaskCompleted || !store.SameJSON(w0.Result, raw(`{"plate":1}`)) {
		t.Fatalf("wait after an early event: %s %s", w0.State, w0.Result)
	}
	// The next wait of the run for the name does not get it again, nor an
	// event older than its window.
	w1 := beginWait(t, s, "run-ev", "event:plate-ready/1", store.WaitSpec{Kind: store.WaitEvent, Key: "plate-ready"}, at(3), nil)
	if w1.State != store.TaskWaiting {
		t.Fatalf("second wait got %s %s, want WAITING", w1.State, w1.Result)
	}
	old := beginWait(t, s, "run-ev2", "event:plate-ready/0", store.WaitSpec{Kind: store.WaitEvent, Key: "plate-ready",
		Match: map[string]json.RawMessage{"plate": raw(`2`)}}, at(1).Add(store.DefaultEventRetention+time.Hour), nil)
	if old.State != store.TaskWaiting {
		t.Fatalf("wait with a match got %s %s, want WAITING", old.State, old.Result)
	}
	// A match on a field: plate 3 wakes only run-ev's wait, plate 2 run-ev2's.
	res, err := s.EventSend(ctx, store.EventSendParams{Name: "plate-ready", Payload: raw(`{"plate":3,"reader":"a"}`), At: at(4)})
	if err != nil || len(res.Delivered) != 1 || res.Delivered[0].RunID != "run-ev" {
		t.Fatalf("event plate 3: %+v, %v; want only run-ev's wait", res, err)
	}
	res, err = s.EventSend(ctx, store.EventSendParams{Name: "plate-ready", Payload: raw(`{"plate":2.0}`), At: at(5)})
	if err != nil || len(res.Delivered) != 1 || res.Delivered[0].RunID != "run-ev2" {
		t.Fatalf("event plate 2: %+v, %v; want run-ev2's wait", res, err)
	}
	if got := taskRunAt(t, s, "run-ev2", old.Key); got.State != store.TaskCompleted || !store.SameJSON(got.Result, raw(`{"plate":2}`)) {
		t.Fatalf("matched wait: %s %s", got.State, got.Result)
	}
	if _, err := s.EventSend(ctx, store.EventSendParams{Name: "x", Payload: raw(`{nope`)}); err == nil {
		t.Error("an event whose payload is not JSON was accepted")
	}
}

func testTimersFire(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-t", "q")
	sleep := beginWait(t, s, "run-t", "sleep/0", store.WaitSpec{Kind: store.WaitSleep, Duration: "1h"}, at(0), nil)
	deflt := beginWait(t, s, "run-t", "input:a/0", store.WaitSpec{Kind: store.WaitInput, Key: "a", Within: "30m",
		Default: raw(`"left"`)}, at(0), nil)
	fail := beginWait(t, s, "run-t", "input:b/0", store.WaitSpec{Kind: store.WaitInput, Key: "b", Within: "30m"}, at(0), nil)
	past := beginWait(t, s, "run-t", "sleep/1", store.WaitSpec{Kind: store.WaitSleep, Until: at(-10)}, at(0), nil)
	if past.State != store.TaskCompleted {
		t.Fatalf("a sleep until the past is %s, want COMPLETED at once", past.State)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-t", From: []store.RunState{store.RunRunning},
		To: store.RunPaused, Owner: &store.Owner{}, At: at(1)}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.TimersFire(ctx, store.TimersFireParams{Now: at(29 * 60)}); err != nil || n != 0 {
		t.Fatalf("timers before any is due: %d, %v", n, err)
	}
	// Two firings at once (two servers): each timer fires once.
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.TimersFire(ctx, store.TimersFireParams{Now: at(30 * 60)})
			if err != nil {
				t.Errorf("TimersFire: %v", err)
			}
			counts[i] = n
		}()
	}
	wg.Wait()
	if total := counts[0] + counts[1] + counts[2] + counts[3]; total != 2 {
		t.Fatalf("concurrent firings resolved %v timers, want 2 in all", counts)
	}
	if got := taskRunAt(t, s, "run-t", deflt.Key); got.State != store.TaskCompleted || string(got.Result) != `"left"` {
		t.Errorf("wait with a default at its deadline: %s %s", got.State, got.Result)
	}
	if got := taskRunAt(t, s, "run-t", fail.Key); got.State != store.TaskTimedOut || got.Error == nil || got.Error.Kind != "timeout" {
		t.Errorf("wait without a default at its deadline: %s %+v", got.State, got.Error)
	}
	if r, _ := s.RunGet(ctx, "run-t"); r.State != store.RunScheduled {
		t.Errorf("paused run after its timers fired is %s, want SCHEDULED", r.State)
	}
	if n, err := s.TimersFire(ctx, store.TimersFireParams{Now: at(3600), RunID: "run-t"}); err != nil || n != 1 {
		t.Fatalf("sleep end: %d, %v", n, err)
	}
	if got := taskRunAt(t, s, "run-t", sleep.Key); got.State != store.TaskCompleted {
		t.Errorf("sleep after its end: %s", got.State)
	}
	if hist := strings.Join(historyActions(t, s, "run-t"), "; "); !strings.Contains(hist, store.ActionTimerFired) {
		t.Errorf("history %q lacks timer_fired", hist)
	}
}

func testWaitRunEnd(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-end", "q")
	tr := beginWait(t, s, "run-end", "sleep/0", store.WaitSpec{Kind: store.WaitSleep, Duration: "1m"}, at(0), nil)
	beginWait(t, s, "run-end", "event:e/0", store.WaitSpec{Kind: store.WaitEvent, Key: "e"}, at(0), nil)
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-end", From: []store.RunState{store.RunRunning},
		To: store.RunCancelled, At: at(1)}); err != nil {
		t.Fatal(err)
	}
	if got := taskRunAt(t, s, "run-end", tr.Key); got.State != store.TaskCancelled {
		t.Fatalf("wait of a cancelled run is %s, want CANCELLED", got.State)
	}
	if n, err := s.TimersFire(ctx, store.TimersFireParams{Now: at(3600)}); err != nil || n != 0 {
		t.Errorf("timers of a cancelled run fired: %d, %v", n, err)
	}
	if res, err := s.EventSend(ctx, store.EventSendParams{Name: "e", At: at(2)}); err != nil || len(res.Delivered) != 0 {
		t.Errorf("event delivered to a cancelled run: %+v, %v", res, err)
	}
	_, err := s.WaitBegin(ctx, store.WaitBeginParams{TaskRun: store.TaskRun{ID: "late", RunID: "run-end", Key: "sleep/1",
		Task: "sleep", Input: raw(`{"kind":"sleep","duration":"1s"}`)}, Spec: store.WaitSpec{Kind: store.WaitSleep, Duration: "1s"}})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("a wait of an ended run: %v, want ErrConflict", err)
	}
}
