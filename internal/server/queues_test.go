package server_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// TestQueuePriorityAndPause: a worker serving two queues claims the runs
// of the higher-priority queue first (oldest first within it) and then the
// lower one's; a paused queue hands out nothing, its waiting reason says
// so, and once resumed its runs are claimed again.
func TestQueuePriorityAndPause(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b *bundle) {
		now := time.Now()
		var runs []store.Run
		for i, q := range []string{"lo", "lo", "hi", "hi", "hi"} {
			runs = append(runs, store.Run{ID: q + string(rune('a'+i)), Flow: "f", Queue: q, State: store.RunScheduled,
				Attempt: 1, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := b.st.BatchWrite(ctx, store.Batch{Runs: runs}); err != nil {
			t.Fatal(err)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues", `{"name":"hi","priority":5}`); status != 201 || body["priority"] != float64(5) {
			t.Fatalf("create hi: %d %v", status, body)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues", `{"name":"hi"}`); status != 409 {
			t.Fatalf("create hi again: %d %v", status, body)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues", `{"name":"x","priority":9999999}`); status != 400 {
			t.Fatalf("bad priority: %d %v", status, body)
		}
		reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"lo", "hi"},
			Flows: []api.FlowInfo{{Name: "f"}}, Capacity: 4})
		if err != nil {
			t.Fatal(err)
		}
		claim := func(n int) []string {
			t.Helper()
			got, err := b.w.Claim(ctx, reg.ID, api.Claim{Runs: n})
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got.Runs {
				ids = append(ids, r.ID)
			}
			slices.Sort(ids)
			return ids
		}
		if got := claim(2); !slices.Equal(got, []string{"hic", "hid"}) {
			t.Fatalf("first claim = %v, want the oldest of hi", got)
		}
		if got := claim(2); !slices.Equal(got, []string{"hie", "loa"}) {
			t.Fatalf("second claim = %v, want the rest of hi, then the oldest of lo", got)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues/lo/pause", `{"note":"robot maintenance"}`); status != 200 || body["paused"] != true {
			t.Fatalf("pause lo: %d %v", status, body)
		}
		if got := claim(2); len(got) != 0 {
			t.Fatalf("claim of a paused queue = %v, want none", got)
		}
		_, body := b.call(t, "GET", "/api/v1/runs/lob", "")
		if r, _ := body["waiting_reason"].(string); !strings.Contains(r, `queue "lo" is paused by anonymous: robot maintenance`) {
			t.Errorf("waiting reason of a run of a paused queue: %q", r)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues/lo/resume", ""); status != 200 || body["paused"] != false {
			t.Fatalf("resume lo: %d %v", status, body)
		}
		if got := claim(2); !slices.Equal(got, []string{"lob"}) {
			t.Fatalf("claim after resume = %v, want lob", got)
		}
	})
}

// TestQueueLimit: a queue's limit is set and shown through the API, a
// negative one is a 400 naming the field, a worker claims no more flow runs
// of the queue than the limit, and a run held back says why.
func TestQueueLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b *bundle) {
		now := time.Now()
		var runs []store.Run
		for i := range 3 {
			runs = append(runs, store.Run{ID: "lim" + string(rune('a'+i)), Flow: "f", Queue: "robot", State: store.RunScheduled,
				Attempt: 1, CreatedAt: now.Add(time.Duration(i) * time.Millisecond)})
		}
		if err := b.st.BatchWrite(ctx, store.Batch{Runs: runs}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct{ method, path, body string }{
			{"POST", "/api/v1/queues", `{"name":"robot","limit":-1}`},
			{"POST", "/api/v1/queues/robot", `{"limit":-4}`},
		} {
			status, body := b.call(t, tc.method, tc.path, tc.body)
			msg, _ := body["error"].(map[string]any)["message"].(string)
			if status != 400 || msg != "limit: must be 0 or more, got "+strings.TrimSuffix(strings.Split(tc.body, ":")[len(strings.Split(tc.body, ":"))-1], "}") {
				t.Errorf("%s %s %s = %d %q, want 400 naming limit", tc.method, tc.path, tc.body, status, msg)
			}
		}
		if status, body := b.call(t, "POST", "/api/v1/queues", `{"name":"robot","limit":2}`); status != 201 || body["limit"] != float64(2) {
			t.Fatalf("create robot with a limit: %d %v", status, body)
		}
		if status, body := b.call(t, "GET", "/api/v1/queues/robot", ""); status != 200 || body["limit"] != float64(2) {
			t.Fatalf("show robot: %d %v", status, body)
		}
		reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "w", Queues: []string{"robot"},
			Flows: []api.FlowInfo{{Name: "f"}}, Capacity: 8})
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.w.Claim(ctx, reg.ID, api.Claim{Runs: 8})
		if err != nil || len(got.Runs) != 2 {
			t.Fatalf("claim of 8 on a queue of limit 2 = %d runs, %v", len(got.Runs), err)
		}
		_, body := b.call(t, "GET", "/api/v1/runs/limc", "")
		if r, _ := body["waiting_reason"].(string); !strings.Contains(r, `queue "robot" is at its limit: 2 of 2 flow-run slots held by run lima (f) on worker `+reg.ID) {
			t.Errorf("waiting reason of a run held back by its queue's limit: %q", r)
		}
		if status, body := b.call(t, "POST", "/api/v1/queues/robot", `{"limit":3}`); status != 200 || body["limit"] != float64(3) {
			t.Fatalf("raise the limit: %d %v", status, body)
		}
		if got, err := b.w.Claim(ctx, reg.ID, api.Claim{Runs: 8}); err != nil || len(got.Runs) != 1 {
			t.Fatalf("claim after raising the limit = %d runs, %v; want 1", len(got.Runs), err)
		}
	})
}

// TestWaitingForAFreeSlotOnlyWhenTrue: a SCHEDULED run that a live worker
// with a free slot serves is not said to wait for a slot (it is about to
// be claimed); once the worker's slots are all held, it is.
func TestWaitingForAFreeSlotOnlyWhenTrue(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	eachStore(t, func(t *testing.T, b *bundle) {
		now := time.Now()
		if err := b.st.BatchWrite(ctx, store.Batch{Runs: []store.Run{
			{ID: "slota", Flow: "f", Queue: "default", State: store.RunScheduled, Attempt: 1, CreatedAt: now},
			{ID: "slotb", Flow: "f", Queue: "default", State: store.RunScheduled, Attempt: 1, CreatedAt: now.Add(time.Millisecond)},
		}}); err != nil {
			t.Fatal(err)
		}
		reg, err := b.w.RegisterWorker(ctx, api.RegisterWorker{Name: "solo", Queues: []string{"default"},
			Flows: []api.FlowInfo{{Name: "f"}}, Capacity: 1})
		if err != nil {
			t.Fatal(err)
		}
		reason := func(id string) string {
			_, body := b.call(t, "GET", "/api/v1/runs/"+id, "")
			r, _ := body["waiting_reason"].(string)
			return r
		}
		if r := reason("slotb"); !strings.HasPrefix(r, api.FreeSlotPrefix+` "solo"`) || strings.Contains(r, "waiting for a free slot") {
			t.Errorf("idle worker: waiting reason %q, want that a free slot claims it next", r)
		}
		if got, err := b.w.Claim(ctx, reg.ID, api.Claim{Runs: 1}); err != nil || len(got.Runs) != 1 {
			t.Fatalf("claim = %v, %v", got.Runs, err)
		}
		if r := reason("slotb"); !strings.HasPrefix(r, `waiting for a free slot on 1 worker(s) serving flow "f" on queue "default"`) {
			t.Errorf("busy worker: waiting reason %q, want it to wait for a slot", r)
		}
	})
}
