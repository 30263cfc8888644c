package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 2, 10, 0, 30, 0, time.UTC)

type bundle struct {
	st  store.Store
	clk *clock.Fake
	svc *deploy.Service
}

// backends runs fn on SQLite and, when available, PostgreSQL.
func backends(t *testing.T, fn func(t *testing.T, b *bundle)) {
	t.Helper()
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			var st store.Store
			var err error
			if name == "sqlite" {
				st, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
			} else {
				st, err = postgres.Open(ctx, pgtest.SchemaURL(t))
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			clk := clock.NewFake(t0)
			fn(t, &bundle{st: st, clk: clk, svc: deploy.New(deploy.Config{Store: st, Clock: clk})})
		})
	}
}

func (b *bundle) put(t *testing.T, mode string, req apitype.DeploymentRequest) store.Deployment {
	t.Helper()
	d, _, err := b.svc.Put(context.Background(), mode, req, store.SourceAPI, store.Actor{Name: "test", Verified: true})
	if err != nil {
		t.Fatalf("put %s: %v", req.Name, err)
	}
	return d
}

func (b *bundle) tick(t *testing.T) deploy.TickResult {
	t.Helper()
	res, err := b.svc.Tick(context.Background())
	if err != nil {
		t.Fatalf("tick: %v", err)
	}
	return res
}

func (b *bundle) runs(t *testing.T, name string, states ...store.RunState) []store.Run {
	t.Helper()
	runs, err := b.st.DeploymentRuns(context.Background(), store.DeploymentRunsParams{Deployment: name, States: states, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// noDuplicates fails when two runs of a deployment share a schedule and a
// planned start.
func noDuplicates(t *testing.T, runs []store.Run) {
	t.Helper()
	seen := map[string]string{}
	for _, r := range runs {
		k := r.ScheduleID + "@" + r.PlannedAt().String()
		if r.ScheduleID == "" {
			continue
		}
		if other, ok := seen[k]; ok {
			t.Fatalf("runs %s and %s share schedule and planned start %s", other, r.ID, k)
		}
		seen[k] = r.ID
	}
}

func every(d string) apitype.DeploymentRequest {
	return apitype.DeploymentRequest{Name: "sweep", Flow: "f", Schedules: []apitype.ScheduleRequest{{Interval: d, Overlap: "allow_all"}}}
}

func TestPlanAheadAndRedeploy(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		d := b.put(t, store.PutCreate, every("1m"))
		if len(d.Schedules) != 1 || d.Schedules[0].ID == "" {
			t.Fatalf("schedules: %+v", d.Schedules)
		}
		id := d.Schedules[0].ID
		res := b.tick(t)
		// Fire times 10:01 .. 10:05 (the horizon is 5 minutes).
		if res.Created != 5 {
			t.Fatalf("created %d runs, want 5", res.Created)
		}
		runs := b.runs(t, "sweep")
		if got := runs[0].PlannedAt(); !got.Equal(time.Date(2026, 3, 2, 10, 1, 0, 0, time.UTC)) {
			t.Fatalf("first planned start %s", got)
		}
		if res := b.tick(t); res.Created != 0 {
			t.Fatalf("a second pass created %d runs", res.Created)
		}
		// Nothing is claimable before its planned start.
		claimed, err := b.st.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"default"}, Flows: []string{"f"},
			Limit: 10, LeaseUntil: b.clk.Now().Add(time.Minute), At: b.clk.Now()})
		if err != nil || len(claimed) != 0 {
			t.Fatalf("claimed %d runs before their planned start (%v)", len(claimed), err)
		}
		// Redeploy the same declaration: nothing changes.
		d2, changed, err := b.svc.Put(ctx, store.PutRegister, every("1m"), store.SourceAPI, store.Actor{})
		if err != nil || changed || d2.Schedules[0].ID != id {
			t.Fatalf("register again: changed %v, schedule %s, err %v", changed, d2.Schedules[0].ID, err)
		}
		// A changed declaration keeps the schedule (same spec) and its runs.
		req := every("1m")
		req.Description = "now described"
		d3, changed, err := b.svc.Put(ctx, store.PutRegister, req, store.SourceAPI, store.Actor{})
		if err != nil || !changed || d3.Schedules[0].ID != id || !d3.Schedules[0].LastFire.Equal(d.Schedules[0].NextFire.Add(4*time.Minute)) {
			t.Fatalf("register changed: changed %v, %+v, err %v", changed, d3.Schedules, err)
		}
		b.clk.Advance(90 * time.Second)
		// 10:02:00: the horizon reaches 10:07.
		if res := b.tick(t); res.Created != 2 {
			t.Fatalf("after 90s created %d, want 2", res.Created)
		}
		claimed, err = b.st.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"default"}, Flows: []string{"f"},
			Limit: 10, LeaseUntil: b.clk.Now().Add(time.Minute), At: b.clk.Now()})
		if err != nil || len(claimed) != 2 { // 10:01 and 10:02
			t.Fatalf("claimed %d due runs, want 2 (%v)", len(claimed), err)
		}
		runs = b.runs(t, "sweep")
		noDuplicates(t, runs)
		if len(runs) != 7 {
			t.Fatalf("%d runs, want 7", len(runs))
		}
		// Another spec replaces the schedule: its runs not started are cancelled.
		b.put(t, store.PutUpdate, every("2m"))
		if n := len(b.runs(t, "sweep", store.RunScheduled)); n != 0 {
			t.Fatalf("%d runs of the removed schedule still SCHEDULED", n)
		}
		hist, err := b.st.DeploymentHistoryList(ctx, "sweep", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, h := range hist {
			actions = append(actions, h.Action)
		}
		want := "deployment_created deployment_updated deployment_updated schedule_added schedule_removed"
		if got := strings.Join(actions, " "); got != want {
			t.Fatalf("history %s, want %s", got, want)
		}
		// The run's history says which deployment and fire time created it.
		h, err := b.st.HistoryList(ctx, store.HistoryListParams{RunID: runs[0].ID})
		if err != nil || len(h) == 0 || !strings.Contains(string(h[0].Payload), `"schedule_id":"`+id+`"`) ||
			!strings.Contains(string(h[0].Payload), `"scheduled_at":"2026-03-02T10:01:00Z"`) {
			t.Fatalf("run history %+v (%v)", h, err)
		}
	})
}

func TestCatchupAfterDowntime(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		catchup string
	}{
		{"0"},   // only the latest missed fire time
		{"1h"},  // those within the hour before the restart
		{"all"}, // every missed one
		{"10h"},
	} {
		t.Run(tc.catchup, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, b *bundle) {
				req := apitype.DeploymentRequest{Name: "hourly", Flow: "f", Schedules: []apitype.ScheduleRequest{
					{Interval: "15m", Catchup: tc.catchup, Overlap: "allow_all"}}}
				b.put(t, store.PutCreate, req)
				b.tick(t)
				before := len(b.runs(t, "hourly"))
				b.clk.Advance(10 * time.Hour) // the scheduler was down
				b.tick(t)
				now := b.clk.Now()
				missed := 0
				for _, r := range b.runs(t, "hourly") {
					if r.PlannedAt().Before(now) && r.PlannedAt().After(t0.Add(5*time.Minute)) {
						missed++
					}
				}
				// 15-minute schedule: 40 fire times (10:15 .. 20:00) in
				// the 10 hours; none was within the 5-minute horizon
				// before the downtime.
				want := map[string]int{"0": 1, "1h": 4, "all": 40, "10h": 40}[tc.catchup]
				if missed != want {
					t.Fatalf("catchup %s: %d missed runs created, want %d (created before: %d)", tc.catchup, missed, want, before)
				}
				noDuplicates(t, b.runs(t, "hourly"))
			})
		})
	}
}

func TestOverlapPolicies(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		overlap                           string
		wantCancelled, wantWait, wantLive int
	}{
		{"skip", 2, 0, 1},
		{"buffer_one", 1, 1, 1},
		{"buffer_all", 0, 2, 1},
		{"cancel_other", 0, 0, 1},
		{"allow_all", 0, 0, 3},
	} {
		t.Run(tc.overlap, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, b *bundle) {
				ctx := context.Background()
				b.put(t, store.PutCreate, apitype.DeploymentRequest{Name: "d", Flow: "f", Schedules: []apitype.ScheduleRequest{
					{Interval: "1m", Overlap: tc.overlap}}})
				lease := func() {
					// A worker takes every due run and keeps it running.
					claimed, err := b.st.RunClaim(ctx, store.RunClaimParams{WorkerID: "w", Queues: []string{"default"}, Flows: []string{"f"},
						Limit: 10, LeaseUntil: b.clk.Now().Add(time.Hour), At: b.clk.Now()})
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range claimed {
						if _, err := b.st.RunTransition(ctx, store.RunTransitionParams{ID: r.ID, From: []store.RunState{store.RunPending},
							To: store.RunRunning, At: b.clk.Now()}); err != nil {
							t.Fatal(err)
						}
					}
				}
				b.tick(t)
				for range 3 { // three fire times pass while the first run runs
					b.clk.Advance(time.Minute)
					b.tick(t)
					lease()
				}
				count := func(states ...store.RunState) int {
					n := 0
					for _, r := range b.runs(t, "d", states...) {
						if !r.PlannedAt().After(b.clk.Now()) {
							n++
						}
					}
					return n
				}
				live := count(store.RunRunning)
				if tc.overlap == "cancel_other" {
					live = count(store.RunRunning, store.RunCancelling) - count(store.RunCancelling)
				}
				if got := count(store.RunCancelled); got != tc.wantCancelled && tc.overlap != "cancel_other" {
					t.Errorf("cancelled %d, want %d", got, tc.wantCancelled)
				}
				if got := count(store.RunAwaitingSlot); got != tc.wantWait {
					t.Errorf("waiting %d, want %d", got, tc.wantWait)
				}
				if live != tc.wantLive {
					t.Errorf("running %d, want %d", live, tc.wantLive)
				}
				if tc.overlap == "buffer_all" {
					// The running run ends: the oldest waiting one gets the slot.
					r := b.runs(t, "d", store.RunRunning)[0]
					if _, err := b.st.RunTransition(ctx, store.RunTransitionParams{ID: r.ID, From: []store.RunState{store.RunRunning},
						To: store.RunCompleted, At: b.clk.Now()}); err != nil {
						t.Fatal(err)
					}
					if res := b.tick(t); res.Promoted != 1 {
						t.Fatalf("promoted %d, want 1", res.Promoted)
					}
				}
			})
		})
	}
}

func TestBackfillTwice(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		b.put(t, store.PutCreate, apitype.DeploymentRequest{Name: "bf", Flow: "f", Schedules: []apitype.ScheduleRequest{{Interval: "1h"}}})
		from, to := t0.Add(-24*time.Hour), t0.Add(-12*time.Hour)
		created, existed, err := b.svc.Backfill(ctx, "bf", from, to, store.Actor{})
		if err != nil || len(created) != 12 || existed != 0 {
			t.Fatalf("backfill: %d created, %d existed, %v", len(created), existed, err)
		}
		created, existed, err = b.svc.Backfill(ctx, "bf", from, to, store.Actor{})
		if err != nil || len(created) != 0 || existed != 12 {
			t.Fatalf("backfill again: %d created, %d existed, %v", len(created), existed, err)
		}
		noDuplicates(t, b.runs(t, "bf"))
		if _, _, err := b.svc.Backfill(ctx, "bf", to, from, store.Actor{}); err == nil {
			t.Fatal("a backfill from after to passed")
		}
	})
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		for _, tc := range []struct {
			req  apitype.DeploymentRequest
			want string
		}{
			{apitype.DeploymentRequest{Flow: "f"}, `"name" is required`},
			{apitype.DeploymentRequest{Name: "x"}, `"flow" is required`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", MaxActive: -1}, `"max_active" must be 0`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Collision: "nope"}, `unknown policy "nope"`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Schedules: []apitype.ScheduleRequest{{Interval: "1m", Overlap: "nope"}}}, `"overlap": unknown policy`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Schedules: []apitype.ScheduleRequest{{Cron: "61 * * * *"}}}, `cron`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Schedules: []apitype.ScheduleRequest{{Cron: "0 3 * * *", Timezone: "Mars/Olympus"}}}, `timezone`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Schedules: []apitype.ScheduleRequest{{Interval: "soon"}}}, `interval`},
			{apitype.DeploymentRequest{Name: "x", Flow: "f", Parameters: json.RawMessage(`[1]`)}, `"parameters": expected a JSON object`},
		} {
			_, _, err := b.svc.Put(ctx, store.PutCreate, tc.req, store.SourceAPI, store.Actor{})
			var de *deploy.Error
			if !errors.As(err, &de) || de.Status != http.StatusBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("%+v: error %v, want a 400 containing %q", tc.req, err, tc.want)
			}
		}
		var de *deploy.Error
		if _, err := b.svc.Get(ctx, "missing"); !errors.As(err, &de) || de.Status != http.StatusNotFound {
			t.Errorf("unknown deployment: %v", err)
		}
		b.put(t, store.PutCreate, every("1m"))
		if _, _, err := b.svc.Put(ctx, store.PutCreate, every("1m"), store.SourceAPI, store.Actor{}); !errors.As(err, &de) || de.Status != http.StatusConflict {
			t.Errorf("create twice: %v", err)
		}
		if _, err := b.svc.Pause(ctx, "sweep", "nope", true, "", store.Actor{}); !errors.As(err, &de) || de.Status != http.StatusNotFound {
			t.Errorf("pause an unknown schedule: %v", err)
		}
	})
}

func TestPauseWithNote(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, b *bundle) {
		ctx := context.Background()
		b.put(t, store.PutCreate, every("1m"))
		b.tick(t)
		d, err := b.svc.Pause(ctx, "sweep", "", true, "robot in maintenance", store.Actor{Name: "ana", Verified: true})
		if err != nil || !d.Paused || d.PauseNote != "robot in maintenance" {
			t.Fatalf("pause: %+v %v", d, err)
		}
		if n := len(b.runs(t, "sweep", store.RunScheduled)); n != 0 {
			t.Fatalf("%d runs still SCHEDULED while paused", n)
		}
		b.clk.Advance(3 * time.Minute)
		if res := b.tick(t); res.Created != 0 || res.Promoted != 0 {
			t.Fatalf("a paused deployment's pass: %+v", res)
		}
		if _, err := b.svc.Pause(ctx, "sweep", "", false, "done", store.Actor{}); err != nil {
			t.Fatal(err)
		}
		if n := len(b.runs(t, "sweep", store.RunAwaitingSlot)); n != 0 {
			t.Fatalf("%d runs still held after resume", n)
		}
		hist, _ := b.st.DeploymentHistoryList(ctx, "sweep", 0, 0)
		found := false
		for _, h := range hist {
			found = found || (h.Action == store.ActionDeploymentPaused && h.Reason == "robot in maintenance" && h.Actor.Name == "ana")
		}
		if !found {
			t.Fatalf("no pause entry with its note: %+v", hist)
		}
	})
}

// TestDaylightSavingThroughTheScheduler: a daily job at 02:30 in two
// zones, across both transitions of 2026, gets exactly one run per local
// day: in the spring gap at 03:00 (the first instant after it), in the
// autumn overlap once (at the first 02:30).
func TestDaylightSavingThroughTheScheduler(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		zone           string
		spring, autumn time.Time // local days of the transitions
	}{
		{"Europe/Berlin", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC)},
		{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
	} {
		t.Run(tc.zone, func(t *testing.T) {
			t.Parallel()
			loc, err := time.LoadLocation(tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			for _, day := range []time.Time{tc.spring, tc.autumn} {
				ctx := context.Background()
				st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "baton.db"))
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				start := time.Date(day.Year(), day.Month(), day.Day()-2, 12, 0, 0, 0, loc)
				clk := clock.NewFake(start)
				svc := deploy.New(deploy.Config{Store: st, Clock: clk})
				if _, _, err := svc.Put(ctx, store.PutCreate, apitype.DeploymentRequest{Name: "daily", Flow: "f",
					Schedules: []apitype.ScheduleRequest{{Cron: "30 2 * * *", Timezone: tc.zone, Overlap: "allow_all"}}},
					store.SourceAPI, store.Actor{}); err != nil {
					t.Fatal(err)
				}
				// Four days of passes every 10 minutes.
				for clk.Now().Before(start.Add(96 * time.Hour)) {
					if _, err := svc.Tick(ctx); err != nil {
						t.Fatal(err)
					}
					clk.Advance(10 * time.Minute)
				}
				runs, err := st.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: "daily"})
				if err != nil {
					t.Fatal(err)
				}
				perDay := map[string][]string{}
				for _, r := range runs {
					l := r.PlannedAt().In(loc)
					perDay[l.Format("2006-01-02")] = append(perDay[l.Format("2006-01-02")], l.Format("15:04 MST"))
				}
				for d, times := range perDay {
					if len(times) != 1 {
						t.Errorf("%s %s: %d runs %v, want 1", tc.zone, d, len(times), times)
					}
				}
				key := day.Format("2006-01-02")
				want := "02:30"
				if day == tc.spring {
					want = "03:00"
				}
				if got := perDay[key]; len(got) != 1 || !strings.HasPrefix(got[0], want) {
					t.Errorf("%s %s: runs %v, want one at %s", tc.zone, key, got, want)
				}
				if len(perDay) < 4 {
					t.Errorf("%s: runs on %d days, want at least 4: %v", tc.zone, len(perDay), perDay)
				}
			}
		})
	}
}

// TestMaxActiveCollisions: runs started by hand beyond max_active wait
// (queue, promoted when a slot frees), are skipped, or cancel the oldest.
func TestMaxActiveCollisions(t *testing.T) {
	t.Parallel()
	for _, collision := range []string{"queue", "skip", "cancel_oldest"} {
		t.Run(collision, func(t *testing.T) {
			t.Parallel()
			backends(t, func(t *testing.T, b *bundle) {
				ctx := context.Background()
				b.put(t, store.PutCreate, apitype.DeploymentRequest{Name: "m", Flow: "f", MaxActive: 1, Collision: collision})
				first, err := b.svc.Run(ctx, "m", nil, store.Actor{})
				if err != nil || first.State != store.RunScheduled {
					t.Fatalf("first run: %s %v", first.State, err)
				}
				second, err := b.svc.Run(ctx, "m", nil, store.Actor{})
				if err != nil {
					t.Fatal(err)
				}
				got, _ := b.st.RunGet(ctx, first.ID)
				switch collision {
				case "queue":
					if second.State != store.RunAwaitingSlot {
						t.Fatalf("second run %s, want AWAITING_SLOT", second.State)
					}
					if why := api.WaitingReason(ctx, b.st, second, b.clk.Now()); !strings.Contains(why, `deployment "m": 1 of its runs are active`) {
						t.Errorf("waiting reason %q, want one naming the deployment and its active run", why)
					}
					if _, err := b.st.RunTransition(ctx, store.RunTransitionParams{ID: first.ID, From: []store.RunState{store.RunScheduled},
						To: store.RunCompleted, At: b.clk.Now()}); err != nil {
						t.Fatal(err)
					}
					if res := b.tick(t); res.Promoted != 1 {
						t.Fatalf("promoted %d, want 1", res.Promoted)
					}
					if r, _ := b.st.RunGet(ctx, second.ID); r.State != store.RunScheduled {
						t.Fatalf("second run after the first ended: %s", r.State)
					}
				case "skip":
					if second.State != store.RunCancelled || got.State != store.RunScheduled {
						t.Fatalf("states %s, %s; want the second CANCELLED", got.State, second.State)
					}
				case "cancel_oldest":
					if second.State != store.RunScheduled || got.State != store.RunCancelled {
						t.Fatalf("states %s, %s; want the first CANCELLED", got.State, second.State)
					}
				}
			})
		})
	}
}
