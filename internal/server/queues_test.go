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
