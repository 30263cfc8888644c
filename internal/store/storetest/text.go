package storetest

import (
	"context"
	"reflect"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// badTexts are free texts that code may produce and that every store must
// keep byte for byte: NUL bytes, bytes that are not UTF-8, and text that
// looks like the stores' own escapes (see store.EncodeText).
var badTexts = []string{
	"nul \x00 inside",
	"\x00",
	"invalid \xff\xfe utf-8 \xc3",
	"truncated rune \xe2\x82",
	"dle \x10 and \x1000 and \x10ff literal",
	"valid ünïcødé ✓ and \\u0000 text",
	"",
}

// testFreeText writes and reads back log messages and attributes, error
// messages, event messages and causes and task-run transition messages
// holding the bad texts, through every write path that records them.
func testFreeText(t *testing.T, s store.Store) {
	ctx := context.Background()
	for i, text := range badTexts {
		runID := "run-text-" + string(rune('a'+i))
		errInfo := &store.ErrorInfo{Message: "failed: " + text, Type: "*main.err", Kind: "permanent",
			Chain: []string{"failed: " + text, text}}
		run := store.Run{ID: runID, Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(1), UpdatedAt: at(1),
			StartedAt: at(1)}
		tr := store.TaskRun{ID: "tr-" + runID, RunID: runID, Key: "k/0", Task: "t", State: store.TaskFailed, Attempts: 1,
			FlowAttempt: 1, Error: errInfo, CreatedAt: at(2), StartedAt: at(2), EndedAt: at(3),
			History: []store.Transition{
				{At: at(2), From: "PENDING", To: "RUNNING", Cause: "engine", Message: "attempt 1 " + text},
				{At: at(3), From: "RUNNING", To: "FAILED", Cause: "worker:" + text, Message: text},
			}}
		ev := store.Event{RunID: runID, From: "", To: "RUNNING", Cause: "cause " + text, Message: "event " + text, At: at(1)}
		logs := []store.LogRecord{
			{RunID: runID, TaskRunID: tr.ID, TaskKey: "k/0", Level: "INFO", Message: text, At: at(2)},
			{RunID: runID, Level: "WARN", Message: "log " + text, Attrs: raw(`{"s":"` + text + `"}`), At: at(3)},
		}
		write(t, s, store.Batch{Runs: []store.Run{run}, TaskRuns: []store.TaskRun{tr}, Events: []store.Event{ev}, Logs: logs})

		got, err := s.LogList(ctx, store.LogListParams{RunID: runID})
		if err != nil {
			t.Fatalf("LogList(%q): %v", text, err)
		}
		if len(got) != len(logs) {
			t.Fatalf("LogList(%q): %d records, want %d", text, len(got), len(logs))
		}
		for j := range logs {
			g := normLog(got[j])
			g.ID = 0
			if w := normLog(logs[j]); !reflect.DeepEqual(g, w) {
				t.Errorf("log %q:\n got  %s\n want %s", text, show(g), show(w))
			}
		}
		trs, err := s.TaskRunList(ctx, store.TaskRunListParams{RunID: runID})
		if err != nil || len(trs) != 1 {
			t.Fatalf("TaskRunList(%q) = %d task runs, %v", text, len(trs), err)
		}
		checkTaskRun(t, "task run with text "+text, trs[0], tr)

		// A failing run: the transition's event message and the run's error.
		fin, err := s.RunTransition(ctx, store.RunTransitionParams{ID: runID, From: []store.RunState{store.RunRunning},
			To: store.RunFailed, Error: errInfo, Cause: "engine", Message: "attempt 1: " + text, At: at(4)})
		if err != nil {
			t.Fatalf("RunTransition with text %q: %v", text, err)
		}
		got1, err := s.RunGet(ctx, runID)
		if err != nil {
			t.Fatalf("RunGet: %v", err)
		}
		checkRun(t, "failed run with text "+text, got1, fin)
		if !reflect.DeepEqual(got1.Error, errInfo) {
			t.Errorf("run error with text %q: got %+v, want %+v", text, got1.Error, errInfo)
		}
		evs, err := s.EventList(ctx, runID)
		if err != nil {
			t.Fatalf("EventList: %v", err)
		}
		var msgs, causes []string
		for _, e := range evs {
			msgs, causes = append(msgs, e.Message), append(causes, e.Cause)
		}
		wantMsgs := []string{"event " + text, "attempt 1 " + text, text, "attempt 1: " + text}
		wantCauses := []string{"cause " + text, "engine", "worker:" + text, "engine"}
		if !reflect.DeepEqual(msgs, wantMsgs) || !reflect.DeepEqual(causes, wantCauses) {
			t.Errorf("events with text %q:\n got  %q %q\n want %q %q", text, msgs, causes, wantMsgs, wantCauses)
		}
	}
}

// testFreeTextDistributed records the bad texts through a worker's
// completion of a distributed task run.
func testFreeTextDistributed(t *testing.T, s store.Store) {
	ctx := context.Background()
	// Task runs are claimed only while their run is active.
	write(t, s, store.Batch{Runs: []store.Run{{ID: "run", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(0)}}})
	for i := range badTexts {
		id := "dtr-" + string(rune('a'+i))
		write(t, s, store.Batch{TaskRuns: []store.TaskRun{{ID: id, RunID: "run", Key: "k/" + id, Task: "work",
			Queue: "q", State: store.TaskPending, FlowAttempt: 1, CreatedAt: at(i)}}})
	}
	claimed, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"},
		Tasks: []string{"work"}, Limit: len(badTexts), LeaseUntil: at(100), At: at(50)})
	if err != nil || len(claimed) != len(badTexts) {
		t.Fatalf("TaskRunClaim = %d, %v", len(claimed), err)
	}
	var cs []store.TaskRunCompletion
	for i, text := range badTexts {
		id := "dtr-" + string(rune('a'+i))
		cs = append(cs, store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: "run", Key: "k/" + id, ID: id},
			WorkerID: "w1", State: store.TaskFailed, Attempts: 1, At: at(60),
			Error:   &store.ErrorInfo{Message: text, Chain: []string{text}},
			History: []store.Transition{{At: at(60), From: "RUNNING", To: "FAILED", Cause: "worker:w1", Message: text}}})
	}
	if applied, err := s.TaskRunComplete(ctx, cs); err != nil || len(applied) != len(cs) {
		t.Fatalf("TaskRunComplete = %d applied, %v", len(applied), err)
	}
	for i, text := range badTexts {
		id := "dtr-" + string(rune('a'+i))
		got := getTaskRun(t, s, "run", "k/"+id, id)
		if got.Error == nil || got.Error.Message != text || !reflect.DeepEqual(got.Error.Chain, []string{text}) {
			t.Errorf("completed task run %s: error %+v, want message %q", id, got.Error, text)
		}
		if n := len(got.History); n == 0 || got.History[n-1].Message != text {
			t.Errorf("completed task run %s: history %+v, want a last message %q", id, got.History, text)
		}
	}
}

// testResultBesideRef: a result in the blob store (ResultRef set) is never
// recorded with an inline value beside it, whatever the writer sent (a
// worker's nil result arrives as JSON null through the API), on every path
// that records results.
func testResultBesideRef(t *testing.T, s store.Store) {
	ctx := context.Background()
	null := raw(`null`)
	run := store.Run{ID: "run-ref", Flow: "f", State: store.RunCompleted, Attempt: 1, Result: null,
		ResultRef: "sha256:run", CreatedAt: at(1), UpdatedAt: at(1)}
	tr := store.TaskRun{ID: "tr-ref", RunID: "run-ref", Key: "k/0", Task: "t", State: store.TaskCompleted,
		Result: null, ResultRef: "sha256:tr", CreatedAt: at(1)}
	ce := store.CacheEntry{Key: "ck-ref", Task: "t", Result: null, ResultRef: "sha256:ce", CreatedAt: at(1)}
	write(t, s, store.Batch{Runs: []store.Run{run}, TaskRuns: []store.TaskRun{tr}, Cache: []store.CacheEntry{ce}})
	if got, err := s.RunGet(ctx, run.ID); err != nil || got.Result != nil || got.ResultRef != run.ResultRef {
		t.Errorf("run written with an inline null beside its ref: Result %q, ResultRef %q, %v", got.Result, got.ResultRef, err)
	}
	if got := getTaskRun(t, s, tr.RunID, tr.Key, tr.ID); got.Result != nil || got.ResultRef != tr.ResultRef {
		t.Errorf("task run written with an inline null beside its ref: Result %q, ResultRef %q", got.Result, got.ResultRef)
	}
	if got, err := s.CacheGet(ctx, ce.Key, at(2)); err != nil || got.Result != nil || got.ResultRef != ce.ResultRef {
		t.Errorf("cache entry written with an inline null beside its ref: Result %q, ResultRef %q, %v", got.Result, got.ResultRef, err)
	}
	if j, err := s.JournalList(ctx, tr.RunID); err != nil || len(j) != 1 || j[0].Result != nil || j[0].ResultRef != tr.ResultRef {
		t.Errorf("journal of a result in the blob store: %+v, %v", j, err)
	}

	// A run transition to COMPLETED.
	write(t, s, store.Batch{Runs: []store.Run{{ID: "run-ref2", Flow: "f", State: store.RunRunning, Attempt: 1,
		CreatedAt: at(1), UpdatedAt: at(1)}}})
	ret, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "run-ref2", From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, Result: null, ResultRef: "sha256:run2", At: at(2)})
	if err != nil || ret.Result != nil {
		t.Errorf("RunTransition to COMPLETED with an inline null beside the ref returned Result %q, %v", ret.Result, err)
	}
	if got, err := s.RunGet(ctx, "run-ref2"); err != nil || got.Result != nil || got.ResultRef != "sha256:run2" {
		t.Errorf("run completed with an inline null beside its ref: Result %q, ResultRef %q, %v", got.Result, got.ResultRef, err)
	}

	// A worker's completion, with its cache entry.
	write(t, s, store.Batch{Runs: []store.Run{{ID: "run-ref3", Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(1)}},
		TaskRuns: []store.TaskRun{{ID: "dtr-ref", RunID: "run-ref3", Key: "k/1", Task: "work",
			Queue: "q", State: store.TaskPending, CreatedAt: at(1)}}})
	if c, err := s.TaskRunClaim(ctx, store.TaskRunClaimParams{WorkerID: "w1", Queues: []string{"q"}, Tasks: []string{"work"},
		Limit: 1, LeaseUntil: at(100), At: at(2)}); err != nil || len(c) != 1 {
		t.Fatalf("TaskRunClaim = %d, %v", len(c), err)
	}
	ce2 := store.CacheEntry{Key: "ck-ref2", Task: "work", Result: null, ResultRef: "sha256:ce2", CreatedAt: at(3)}
	if applied, err := s.TaskRunComplete(ctx, []store.TaskRunCompletion{{Ref: store.TaskRunRef{RunID: "run-ref3", Key: "k/1", ID: "dtr-ref"},
		WorkerID: "w1", State: store.TaskCompleted, Attempts: 1, Result: null, ResultRef: "sha256:dtr", Cache: &ce2, At: at(3)}}); err != nil || len(applied) != 1 {
		t.Fatalf("TaskRunComplete = %v, %v", applied, err)
	}
	if got := getTaskRun(t, s, "run-ref3", "k/1", "dtr-ref"); got.Result != nil || got.ResultRef != "sha256:dtr" {
		t.Errorf("completion with an inline null beside its ref: Result %q, ResultRef %q", got.Result, got.ResultRef)
	}
	if got, err := s.CacheGet(ctx, ce2.Key, at(4)); err != nil || got.Result != nil || got.ResultRef != ce2.ResultRef {
		t.Errorf("completion's cache entry with an inline null beside its ref: Result %q, ResultRef %q, %v", got.Result, got.ResultRef, err)
	}
}
