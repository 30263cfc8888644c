package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// historyOf returns a run's whole history, read in pages of two entries
// (so that the cursor is exercised), checking that seqs ascend.
func historyOf(t *testing.T, s store.Store, runID string) []store.HistoryEntry {
	t.Helper()
	var all []store.HistoryEntry
	var after int64
	for {
		page, err := s.HistoryList(context.Background(), store.HistoryListParams{RunID: runID, After: after, Limit: 2})
		if err != nil {
			t.Fatalf("HistoryList(%s, after %d): %v", runID, after, err)
		}
		if len(page) > 2 {
			t.Fatalf("HistoryList(%s, limit 2) returned %d entries", runID, len(page))
		}
		for _, e := range page {
			if e.Seq <= after {
				t.Fatalf("HistoryList(%s): seq %d after cursor %d", runID, e.Seq, after)
			}
			if e.RunID != runID {
				t.Fatalf("HistoryList(%s) returned an entry of run %s", runID, e.RunID)
			}
			after = e.Seq
			e.At = e.At.UTC()
			all = append(all, e)
		}
		if len(page) < 2 {
			return all
		}
	}
}

// brief is what the history tests compare of an entry.
type brief struct {
	Actor  store.Actor
	Action string
	Reason string
	At     time.Time
}

func briefs(es []store.HistoryEntry) []brief {
	out := make([]brief, len(es))
	for i, e := range es {
		out[i] = brief{e.Actor, e.Action, e.Reason, e.At.UTC()}
	}
	return out
}

func payloadOf(t *testing.T, e store.HistoryEntry) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Payload, &m); err != nil {
		t.Fatalf("payload of %s: %v (%s)", e.Action, err, e.Payload)
	}
	return m
}

// testHistory: creation, transitions by people and by the system, a retry
// that edits parameters and entries appended alone are all in the run's
// history, in order, with their actors; refused changes append nothing.
func testHistory(t *testing.T, s store.Store) {
	ctx := context.Background()
	alice := store.Actor{Name: "alice", Verified: false}
	bob := store.Actor{Name: "bob@host", Verified: true}
	r := store.Run{ID: "H", Flow: "f", State: store.RunScheduled, Attempt: 1, Parameters: raw(`{"n":1}`), Queue: "q",
		CreatedAt: at(1), UpdatedAt: at(1)}
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Cause: "user", Message: "created through the API", Actor: alice}); err != nil {
		t.Fatal(err)
	}
	// A duplicate creation (same ID) appends nothing.
	if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Actor: bob}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second RunCreate: %v, want ErrConflict", err)
	}
	tr := func(p store.RunTransitionParams) {
		t.Helper()
		p.ID = "H"
		if _, err := s.RunTransition(ctx, p); err != nil {
			t.Fatalf("RunTransition to %s: %v", p.To, err)
		}
	}
	tr(store.RunTransitionParams{From: []store.RunState{store.RunScheduled}, To: store.RunCancelled, Cause: "user",
		Message: "cancel requested", Actor: bob, At: at(2)})
	// A transition whose condition fails appends nothing.
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "H", From: []store.RunState{store.RunRunning},
		To: store.RunCompleted, At: at(3)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("conflicting transition: %v", err)
	}
	tr(store.RunTransitionParams{From: []store.RunState{store.RunCancelled}, To: store.RunScheduled, NextAttempt: true,
		Cause: "user", Message: "retry requested", Actor: alice, At: at(4), Parameters: raw(`{"n":2}`), EditBy: "alice",
		History: []store.HistoryEntry{{Action: "note", Reason: "the extra entry of a change", Payload: raw(`{"k":"v"}`)}}})
	tr(store.RunTransitionParams{From: []store.RunState{store.RunScheduled}, To: store.RunRunning, Cause: "engine",
		Message: "attempt 2", At: at(5)})
	tr(store.RunTransitionParams{From: []store.RunState{store.RunRunning}, To: store.RunCompleted, Cause: "engine",
		Message: "attempt 2", At: at(6), Result: raw(`1`)})
	if err := s.HistoryAppend(ctx, []store.HistoryEntry{{RunID: "H", At: at(7), Actor: alice, Action: "comment",
		Reason: "looks good \x00\xff", Payload: raw(`{"text":"ok"}`)}}); err != nil {
		t.Fatalf("HistoryAppend: %v", err)
	}

	got := historyOf(t, s, "H")
	want := []brief{
		{alice, store.ActionCreated, "created through the API", at(1)},
		{bob, store.ActionCancelled, "cancel requested", at(2)},
		{alice, store.ActionRetried, "retry requested", at(4)},
		{alice, store.ActionParametersEdited, "retry requested", at(4)},
		{alice, "note", "the extra entry of a change", at(4)},
		{store.SystemActor, store.ActionStarted, "attempt 2", at(5)},
		{store.SystemActor, store.ActionCompleted, "attempt 2", at(6)},
		{alice, "comment", "looks good \x00\xff", at(7)},
	}
	if !reflect.DeepEqual(briefs(got), want) {
		t.Fatalf("history:\n got %s\nwant %s", show(briefs(got)), show(want))
	}
	if p := payloadOf(t, got[0]); p["flow"] != "f" || p["queue"] != "q" || p["state"] != "SCHEDULED" ||
		fmt.Sprint(p["parameters"]) != "map[n:1]" {
		t.Errorf("created payload = %v", p)
	}
	if p := payloadOf(t, got[2]); p["from"] != "CANCELLED" || p["to"] != "SCHEDULED" || p["attempt"] != 2.0 {
		t.Errorf("retried payload = %v", p)
	}
	if p := payloadOf(t, got[3]); fmt.Sprint(p["from"]) != "map[n:1]" || fmt.Sprint(p["to"]) != "map[n:2]" {
		t.Errorf("parameters_edited payload = %v", p)
	}
	if string(got[4].Payload) != `{"k":"v"}` || string(got[7].Payload) != `{"text":"ok"}` {
		t.Errorf("payloads %s, %s; want them as given", got[4].Payload, got[7].Payload)
	}

	// Paging: the cursor and the limit.
	page, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "H", After: got[2].Seq, Limit: 3})
	if err != nil || len(page) != 3 || page[0].Seq != got[3].Seq || page[2].Seq != got[5].Seq {
		t.Errorf("HistoryList after entry 3, limit 3 = %d entries, %v; want entries 4 to 6", len(page), err)
	}
	if page, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "H", After: got[7].Seq}); err != nil || len(page) != 0 {
		t.Errorf("HistoryList after the last entry = %d entries, %v; want none", len(page), err)
	}

	// Unknown runs; bad entries append nothing, not even the good ones.
	if _, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "nope"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("HistoryList of an unknown run: %v, want ErrNotFound", err)
	}
	for name, es := range map[string][]store.HistoryEntry{
		"unknown run":    {{RunID: "H", Action: "x"}, {RunID: "nope", Action: "x"}},
		"no action":      {{RunID: "H", Action: "x"}, {RunID: "H"}},
		"payload array":  {{RunID: "H", Action: "x"}, {RunID: "H", Action: "x", Payload: raw(`[1]`)}},
		"payload broken": {{RunID: "H", Action: "x"}, {RunID: "H", Action: "x", Payload: raw(`{`)}},
	} {
		if err := s.HistoryAppend(ctx, es); err == nil {
			t.Errorf("HistoryAppend with %s: no error", name)
		}
	}
	if _, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "H", From: []store.RunState{store.RunCompleted},
		To: store.RunFailed, History: []store.HistoryEntry{{RunID: "other", Action: "x"}}}); err == nil {
		t.Error("RunTransition with an entry of another run: no error")
	}
	if after := historyOf(t, s, "H"); !reflect.DeepEqual(after, got) {
		t.Errorf("history changed by refused writes:\n got %s\nwant %s", show(briefs(after)), show(want))
	}
}

// testHistoryLeases: what happens to a run held by a worker (its lease
// expires, the worker gives it back or stops) is in its history, by the
// system, naming the worker.
func testHistoryLeases(t *testing.T, s store.Store) {
	ctx := context.Background()
	held := func(id string) store.Run {
		return store.Run{ID: id, Flow: "f", Queue: "q", State: store.RunRunning, Attempt: 1, CreatedAt: at(0),
			UpdatedAt: at(1), StartedAt: at(1), WorkerID: "w1", LeaseUntil: at(10)}
	}
	for _, id := range []string{"L", "G", "R"} {
		r := held(id)
		if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Message: "created"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), RunID: "G", WorkerID: "w1", MaxAttempts: 3,
		Reason: "store failed"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(20), MaxAttempts: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.WorkerUpsert(ctx, store.Worker{ID: "w2", Name: "w2", Queues: []string{"q"}}); err != nil {
		t.Fatal(err)
	}
	// R was rescheduled by the expiry; a second worker claims it and stops.
	claimed, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w2", Queues: []string{"q"}, Flows: []string{"f"},
		Limit: 10, LeaseUntil: at(100), At: at(21)})
	if err != nil || len(claimed) != 3 {
		t.Fatalf("RunClaim = %d runs, %v; want the 3 rescheduled ones", len(claimed), err)
	}
	if err := s.WorkerRelease(ctx, "w2"); err != nil {
		t.Fatal(err)
	}
	actions := func(id string) []string {
		var out []string
		for _, e := range historyOf(t, s, id) {
			if e.Actor != store.SystemActor {
				t.Errorf("%s: %s by %v, want the system", id, e.Action, e.Actor)
			}
			out = append(out, e.Action)
		}
		return out
	}
	wantL := []string{store.ActionCreated, store.ActionLeaseLost, store.ActionRetryScheduled, store.ActionRescheduled,
		store.ActionGivenBack}
	if got := actions("L"); !reflect.DeepEqual(got, wantL) {
		t.Errorf("history of L (lease expired, then released) = %v, want %v", got, wantL)
	}
	wantG := []string{store.ActionCreated, store.ActionGivenBack, store.ActionRetryScheduled, store.ActionRescheduled,
		store.ActionGivenBack}
	if got := actions("G"); !reflect.DeepEqual(got, wantG) {
		t.Errorf("history of G (given back, then released) = %v, want %v", got, wantG)
	}
	h := historyOf(t, s, "L")
	if p := payloadOf(t, h[1]); p["worker"] != "w1" || p["cause"] != "lease" {
		t.Errorf("lease_lost payload = %v; want worker w1, cause lease", p)
	}
	if p := payloadOf(t, h[4]); p["worker"] != "w2" || p["to"] != "SCHEDULED" || p["queue"] != "q" {
		t.Errorf("given_back payload = %v; want worker w2, to SCHEDULED on q", p)
	}
}

// testHistoryAppendOnly: nothing that changes runs rewrites their earlier
// entries, and retention deletes a run's history with the run only.
func testHistoryAppendOnly(t *testing.T, s store.Store) {
	ctx := context.Background()
	mk := func(id string) {
		r := store.Run{ID: id, Flow: "f", State: store.RunRunning, Attempt: 1, CreatedAt: at(0), UpdatedAt: at(0),
			OwnerHost: "h", OwnerPID: 1}
		if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Message: "created"}); err != nil {
			t.Fatal(err)
		}
	}
	mk("keep")
	mk("old")
	snapshot := historyOf(t, s, "keep")
	steps := []func() error{
		func() error {
			_, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "keep", From: []store.RunState{store.RunRunning},
				To: store.RunFailed, At: at(1), Message: "boom"})
			return err
		},
		func() error {
			_, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "keep", From: []store.RunState{store.RunFailed},
				To: store.RunRunning, NextAttempt: true, At: at(2), Parameters: raw(`{"a":1}`)})
			return err
		},
		func() error {
			// An upsert of the run (as an engine's batch writes) is no
			// history action and leaves the entries alone.
			r := getRun(t, s, "keep")
			r.Parameters = raw(`{"a":2}`)
			return s.BatchWrite(ctx, store.Batch{Runs: []store.Run{r}})
		},
		func() error {
			return s.HistoryAppend(ctx, []store.HistoryEntry{{RunID: "keep", Action: "comment", Reason: "x"}})
		},
		func() error {
			_, err := s.RunTransition(ctx, store.RunTransitionParams{ID: "old", From: []store.RunState{store.RunRunning},
				To: store.RunCompleted, At: at(3)})
			return err
		},
		func() error {
			_, err := s.LeasesExpire(ctx, store.LeasesExpireParams{At: at(1000), MaxAttempts: 5})
			return err
		},
		func() error {
			res, err := s.RetentionDelete(ctx, store.RetentionParams{Before: at(100)})
			if err == nil && res.Runs != 1 {
				err = fmt.Errorf("retention deleted %d runs, want 1 (old)", res.Runs)
			}
			return err
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		now := historyOf(t, s, "keep")
		if len(now) < len(snapshot) || !reflect.DeepEqual(now[:len(snapshot)], snapshot) {
			t.Fatalf("step %d changed earlier entries:\n got %s\nwant a continuation of %s", i, show(now), show(snapshot))
		}
		snapshot = now
	}
	if len(snapshot) != 5 {
		t.Errorf("history of keep has %d entries, want 5 (created, failed, retried, parameters_edited, comment): %s",
			len(snapshot), show(briefs(snapshot)))
	}
	if _, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "old"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("history of a run retention deleted: %v, want ErrNotFound", err)
	}
	// A run created again with the ID of a deleted one starts a new history.
	mk("old")
	if h := historyOf(t, s, "old"); len(h) != 1 || h[0].Action != store.ActionCreated {
		t.Errorf("history of a re-created run = %s; want its creation only", show(briefs(h)))
	}
}
