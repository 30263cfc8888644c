package storetest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

func testRunPause(t *testing.T, s store.Store) {
	ctx := context.Background()
	waitRun(t, s, "run-pz", "")
	r, err := s.RunPause(ctx, store.RunPauseParams{ID: "run-pz", Reason: "check the sensor", Actor: alice, At: at(1)})
	if err != nil || r.PauseRequest == nil || r.PauseRequest.By != alice || r.PauseRequest.Reason != "check the sensor" {
		t.Fatalf("RunPause: %+v, %v; want the request by alice", r.PauseRequest, err)
	}
	got, err := s.RunGet(ctx, "run-pz")
	if err != nil || got.PauseRequest == nil || !got.PauseRequest.At.Equal(at(1)) || got.State != store.RunRunning {
		t.Fatalf("RunGet after RunPause: %s %+v, %v; want RUNNING with the request", got.State, got.PauseRequest, err)
	}
	// A second request while one is pending records nothing.
	if _, err := s.RunPause(ctx, store.RunPauseParams{ID: "run-pz", Reason: "again", Actor: store.Actor{Name: "bob"}, At: at(2)}); err != nil {
		t.Fatalf("second RunPause: %v", err)
	}
	// A batch that writes the run (as engines do) keeps the request.
	got.UpdatedAt = at(3)
	write(t, s, store.Batch{Runs: []store.Run{got}})
	if got, _ = s.RunGet(ctx, "run-pz"); got.PauseRequest == nil || got.PauseRequest.Reason != "check the sensor" {
		t.Fatalf("after a batch the request is %+v", got.PauseRequest)
	}
	// The engine's pause wait consumes it; a plain wait does not.
	beginWait(t, s, "run-pz", "sleep/0", store.WaitSpec{Kind: store.WaitSleep, Duration: "1h"}, at(4), nil)
	if got, _ = s.RunGet(ctx, "run-pz"); got.PauseRequest == nil {
		t.Fatal("a sleep consumed the pause request")
	}
	spec := store.WaitSpec{Kind: store.WaitPause, Prompt: "paused by alice: check the sensor"}
	in := raw(`{"kind":"pause"}`)
	tr, err := s.WaitBegin(ctx, store.WaitBeginParams{TaskRun: store.TaskRun{ID: "w-p", RunID: "run-pz", Key: "pause@x",
		Task: store.WaitTask(spec), Input: in, InputHash: "h"}, Spec: spec, At: at(5), ConsumePause: true})
	if err != nil || tr.State != store.TaskWaiting {
		t.Fatalf("pause wait: %s, %v", tr.State, err)
	}
	if got, _ = s.RunGet(ctx, "run-pz"); got.PauseRequest != nil {
		t.Fatalf("after the pause wait the request is %+v, want none", got.PauseRequest)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-pz", From: []store.RunState{store.RunRunning},
		To: store.RunPaused, At: at(6)}); err != nil {
		t.Fatal(err)
	}
	// A PAUSED run: a no-op.
	if r, err := s.RunPause(ctx, store.RunPauseParams{ID: "run-pz", Actor: alice, At: at(7)}); err != nil || r.PauseRequest != nil {
		t.Fatalf("RunPause of a PAUSED run: %+v, %v; want a no-op", r.PauseRequest, err)
	}
	hist := strings.Join(historyActions(t, s, "run-pz"), "; ")
	if strings.Count(hist, store.ActionPauseRequested) != 1 || !strings.Contains(hist, store.ActionPauseRequested+" by alice (unverified)") {
		t.Errorf("history %q: want one pause_requested by alice", hist)
	}
	if _, err := s.RunPause(ctx, store.RunPauseParams{ID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunPause of an unknown run: %v, want ErrNotFound", err)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-pz", From: []store.RunState{store.RunPaused},
		To: store.RunCompleted, At: at(8)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunPause(ctx, store.RunPauseParams{ID: "run-pz", Actor: alice, At: at(9)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunPause of a finished run: %v, want ErrConflict", err)
	}
	// A request still pending when its run ends goes with it.
	waitRun(t, s, "run-pz2", "q")
	if _, err := s.RunPause(ctx, store.RunPauseParams{ID: "run-pz2", Actor: alice, At: at(1)}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-pz2", From: []store.RunState{store.RunRunning},
		To: store.RunFailed, At: at(2)}); err != nil || r.PauseRequest != nil {
		t.Fatalf("ended with a pending request: %+v, %v; want none", r.PauseRequest, err)
	}
	if r, _ := s.RunGet(ctx, "run-pz2"); r.PauseRequest != nil {
		t.Errorf("a FAILED run keeps its pause request %+v", r.PauseRequest)
	}
}

func testRunUpdate(t *testing.T, s store.Store) {
	ctx := context.Background()
	r := waitRun(t, s, "run-up", "")
	r.Parameters = raw(`{"batch":4}`)
	write(t, s, store.Batch{Runs: []store.Run{r}})
	got, err := s.RunUpdate(ctx, store.RunUpdateParams{ID: "run-up", Parameters: raw(`{"batch":8}`), Actor: alice,
		Reason: "more points", At: at(2)})
	if err != nil || !store.SameJSON(got.Parameters, raw(`{"batch":8}`)) {
		t.Fatalf("RunUpdate: %s, %v", got.Parameters, err)
	}
	if got, _ = s.RunGet(ctx, "run-up"); !store.SameJSON(got.Parameters, raw(`{"batch":8}`)) || got.State != store.RunRunning {
		t.Fatalf("RunGet after RunUpdate: %s %s", got.State, got.Parameters)
	}
	hs, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "run-up"})
	if err != nil || len(hs) == 0 {
		t.Fatalf("history: %v, %v", hs, err)
	}
	last := hs[len(hs)-1]
	if last.Action != store.ActionParametersEdited || last.Actor != alice || last.Reason != "more points" ||
		!store.SameJSON(last.Payload, raw(`{"from":{"batch":4},"to":{"batch":8}}`)) {
		t.Errorf("history entry of the update: %+v (payload %s)", last, last.Payload)
	}
	if _, err := s.RunUpdate(ctx, store.RunUpdateParams{ID: "run-up", Parameters: raw(`{`)}); err == nil {
		t.Error("RunUpdate with parameters that are not JSON: no error")
	}
	if _, err := s.RunUpdate(ctx, store.RunUpdateParams{ID: "nope", Parameters: raw(`{}`)}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RunUpdate of an unknown run: %v, want ErrNotFound", err)
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-up", From: []store.RunState{store.RunRunning},
		To: store.RunFailed, At: at(3)}); err != nil {
		t.Fatal(err)
	}
	n := len(hs)
	if _, err := s.RunUpdate(ctx, store.RunUpdateParams{ID: "run-up", Parameters: raw(`{"batch":2}`), At: at(4)}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RunUpdate of a finished run: %v, want ErrConflict", err)
	}
	if hs, _ = s.HistoryList(ctx, store.HistoryListParams{RunID: "run-up"}); len(hs) != n+1 { // + failed
		t.Errorf("a refused update recorded something: %d entries, want %d", len(hs), n+1)
	}
	if got, _ = s.RunGet(ctx, "run-up"); !store.SameJSON(got.Parameters, raw(`{"batch":8}`)) {
		t.Errorf("a refused update changed the parameters to %s", got.Parameters)
	}
}
