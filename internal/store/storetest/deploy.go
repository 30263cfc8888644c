package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

func deployment(hash string, schedules ...store.DeploymentSchedule) store.Deployment {
	return store.Deployment{Name: "nightly", Flow: "f", Queue: "q", Collision: store.CollisionQueue, Source: store.SourceAPI,
		Hash: hash, Parameters: raw(`{"n":1}`), Tags: []string{"a", "b"}, Schedules: schedules}
}

func sched(id string, next time.Time) store.DeploymentSchedule {
	return store.DeploymentSchedule{ID: id, Interval: time.Minute, Overlap: store.OverlapSkip, NextFire: next}
}

// testDeploymentPut: the modes of DeploymentPut, a register of the same
// hash writing nothing, a changed declaration keeping operational state
// and kept schedules' marks, and a removed schedule's planned runs
// cancelled.
func testDeploymentPut(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutUpdate, Deployment: deployment("h1"), At: at(0)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("update of a missing deployment: %v", err)
	}
	d, changed, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, At: at(0),
		Deployment: deployment("h1", sched("s1", at(60)), sched("s2", at(60)))})
	if err != nil || !changed || len(d.Schedules) != 2 || !d.CreatedAt.Equal(at(0)) || d.Tags[1] != "b" || !store.SameJSON(d.Parameters, raw(`{"n":1}`)) {
		t.Fatalf("create: %+v %v %v", d, changed, err)
	}
	if _, _, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, Deployment: deployment("h1"), At: at(1)}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("create twice: %v", err)
	}
	if _, _, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutRegister, Deployment: deployment("h1"), At: at(1)}); err != nil {
		t.Fatal(err)
	}
	if h, _ := s.DeploymentHistoryList(ctx, "nightly", 0, 0); len(h) != 1 {
		t.Fatalf("a register of the same hash wrote history: %+v", h)
	}
	// Fire s1 and s2 ahead, pause, then redeploy without s2.
	for _, id := range []string{"s1", "s2"} {
		if _, err := s.DeploymentFire(ctx, store.DeploymentFireParams{Deployment: "nightly", ScheduleID: id, At: at(2),
			LastFire: at(120), NextFire: at(180), Runs: []store.Run{{ID: "r-" + id, Flow: "f", State: store.RunScheduled, Attempt: 1,
				Queue: "q", Deployment: "nightly", ScheduleID: id, ScheduledAt: at(120), CreatedAt: at(2)}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeploymentPause(ctx, store.DeploymentPauseParams{Name: "nightly", ScheduleID: "s1", Paused: true, Note: "lab closed", Actor: alice, At: at(3)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RunGet(ctx, "r-s1"); r.State != store.RunAwaitingSlot {
		t.Fatalf("a paused schedule's planned run is %s", r.State)
	}
	d2 := deployment("h2", sched("s1", at(999)))
	d2.Description = "changed"
	got, changed, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutRegister, Deployment: d2, At: at(4), Actor: alice})
	if err != nil || !changed || len(got.Schedules) != 1 || got.Description != "changed" {
		t.Fatalf("register a change: %+v %v %v", got, changed, err)
	}
	s1 := got.Schedules[0]
	if !s1.Paused || s1.PauseNote != "lab closed" || !s1.LastFire.Equal(at(120)) || !s1.NextFire.Equal(at(180)) {
		t.Fatalf("the kept schedule lost its state: %+v", s1)
	}
	if r, _ := s.RunGet(ctx, "r-s2"); r.State != store.RunCancelled {
		t.Fatalf("the removed schedule's planned run is %s", r.State)
	}
	if _, err := s.DeploymentPause(ctx, store.DeploymentPauseParams{Name: "nightly", ScheduleID: "s1", Paused: false, At: at(5)}); err != nil {
		t.Fatal(err)
	}
	if r, _ := s.RunGet(ctx, "r-s1"); r.State != store.RunScheduled {
		t.Fatalf("after resume the planned run is %s", r.State)
	}
	h, err := s.DeploymentHistoryList(ctx, "nightly", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range h {
		actions = append(actions, e.Action)
		if e.Action == store.ActionSchedulePaused && (e.Reason != "lab closed" || e.Actor != alice) {
			t.Errorf("pause entry %+v", e)
		}
	}
	want := []string{store.ActionDeploymentCreated, store.ActionSchedulePaused, store.ActionDeploymentUpdated,
		store.ActionScheduleRemoved, store.ActionScheduleResumed}
	if len(actions) != len(want) {
		t.Fatalf("history %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("history %v, want %v", actions, want)
		}
	}
	if err := s.DeploymentDelete(ctx, "nightly", alice, at(6)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeploymentGet(ctx, "nightly"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if h, _ := s.DeploymentHistoryList(ctx, "nightly", 0, 0); len(h) != len(want)+1 {
		t.Fatalf("the history of a deleted deployment: %d entries", len(h))
	}
}

// testDeploymentFireOnce: a planned start of a schedule gets one run, and
// DeploymentDue lists the deployment until its runs reach the horizon.
func testDeploymentFireOnce(t *testing.T, s store.Store) {
	ctx := context.Background()
	if _, _, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, At: at(0),
		Deployment: deployment("h", sched("s1", at(60)))}); err != nil {
		t.Fatal(err)
	}
	due, err := s.DeploymentDue(ctx, at(100), "", 10)
	if err != nil || len(due) != 1 || len(due[0].Schedules) != 1 {
		t.Fatalf("due: %+v %v", due, err)
	}
	fire := func(id string, lastFire time.Time) []store.Run {
		created, err := s.DeploymentFire(ctx, store.DeploymentFireParams{Deployment: "nightly", ScheduleID: "s1", At: at(1),
			LastFire: lastFire, NextFire: at(180), Runs: []store.Run{{ID: id, Flow: "f", State: store.RunScheduled, Attempt: 1,
				Queue: "q", Deployment: "nightly", ScheduleID: "s1", ScheduledAt: at(60), CreatedAt: at(1)}}})
		if err != nil {
			t.Fatal(err)
		}
		return created
	}
	if c := fire("a", at(60)); len(c) != 1 || !c[0].ScheduledAt.Equal(at(60)) || c[0].Deployment != "nightly" {
		t.Fatalf("first fire: %+v", c)
	}
	if c := fire("b", time.Time{}); len(c) != 0 {
		t.Fatalf("the same planned start fired again: %+v", c)
	}
	if _, err := s.RunGet(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused run exists: %v", err)
	}
	if due, _ := s.DeploymentDue(ctx, at(100), "", 10); len(due) != 0 {
		t.Fatalf("still due after the fire: %+v", due)
	}
	h, err := s.HistoryList(ctx, store.HistoryListParams{RunID: "a"})
	if err != nil || len(h) != 1 || h[0].Action != store.ActionCreated {
		t.Fatalf("run history: %+v %v", h, err)
	}
}

// testClaimWaitsForPlannedStart: a claim hands out no run before its
// planned start, and due runs in planned-start order.
func testClaimWaitsForPlannedStart(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, r := range []store.Run{
		{ID: "later", ScheduledAt: at(100), CreatedAt: at(0)},
		{ID: "due2", ScheduledAt: at(20), CreatedAt: at(1)},
		{ID: "due1", CreatedAt: at(10)},
	} {
		r.Flow, r.State, r.Attempt, r.Queue = "f", store.RunScheduled, 1, "q"
		if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r}); err != nil {
			t.Fatal(err)
		}
	}
	claim := func(now time.Time) []string {
		rs, err := s.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"q"}, Flows: []string{"f"}, Limit: 10,
			LeaseUntil: now.Add(time.Minute), At: now})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return ids
	}
	if got := claim(at(50)); len(got) != 2 || got[0] != "due1" || got[1] != "due2" {
		t.Fatalf("claim at 50: %v, want [due1 due2]", got)
	}
	if got := claim(at(99)); len(got) != 0 {
		t.Fatalf("claim at 99: %v", got)
	}
	if got := claim(at(100)); len(got) != 1 || got[0] != "later" {
		t.Fatalf("claim at 100: %v", got)
	}
}
