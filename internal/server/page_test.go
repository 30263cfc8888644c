package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// TestGetRunPaged: GET /runs/{id} with paging parameters reads a page of
// the task runs and events with their totals and a summary; without them
// it is the whole detail.
func TestGetRunPaged(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now()
	batch := store.Batch{Runs: []store.Run{{ID: "big", Flow: "f", State: store.RunFailed, Attempt: 1,
		Parameters: json.RawMessage(`null`), CreatedAt: now, UpdatedAt: now, StartedAt: now, EndedAt: now}}}
	for i := range 30 {
		tr := store.TaskRun{ID: fmt.Sprintf("t%02d", i), RunID: "big", Key: fmt.Sprintf("sq/0.%d", i), Task: "sq",
			State: store.TaskCompleted, Attempts: 1, CreatedAt: now.Add(time.Duration(i) * time.Millisecond),
			StartedAt: now, EndedAt: now.Add(time.Duration(i) * time.Second),
			History: []store.Transition{{At: now, To: "RUNNING"}}}
		if i%10 == 4 {
			tr.State, tr.Error = store.TaskFailed, &store.ErrorInfo{Message: "broke"}
		}
		batch.TaskRuns = append(batch.TaskRuns, tr)
	}
	if err := b.st.BatchWrite(ctx, batch); err != nil {
		t.Fatal(err)
	}
	p, err := b.c.GetRunPage(ctx, "big", apitype.PageQuery{Summary: true, TaskRunsOffset: 5, TaskRunsLimit: 3, EventsLimit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if p.TaskRunsTotal == nil || *p.TaskRunsTotal != 30 || len(p.TaskRuns) != 3 || p.TaskRuns[0].ID != "t05" ||
		p.EventsTotal == nil || *p.EventsTotal != 30 || len(p.Events) != 2 {
		t.Errorf("page: totals %v %v, %d task runs, %d events", p.TaskRunsTotal, p.EventsTotal, len(p.TaskRuns), len(p.Events))
	}
	s := p.Summary
	if s == nil || s.TaskRuns != 30 || s.FailedTotal != 3 || len(s.Failed) != 3 || s.Failed[0].ID != "t04" ||
		len(s.Slowest) != api.SummarySlowest || s.Slowest[0].ID != "t29" ||
		len(s.Counts) != 2 || s.Counts[0] != (apitype.TaskRunCount{Task: "sq", State: "COMPLETED", N: 27}) {
		t.Errorf("summary: %+v", s)
	}
	// No task runs, no events: the counts only.
	p, err = b.c.GetRunPage(ctx, "big", apitype.PageQuery{Summary: true})
	if err != nil || len(p.TaskRuns) != 0 || len(p.Events) != 0 || p.EventsTotal != nil || *p.TaskRunsTotal != 30 {
		t.Errorf("summary only: %v %+v", err, p)
	}
	// Without parameters: everything, no totals.
	d, err := b.c.GetRun(ctx, "big")
	if err != nil || len(d.TaskRuns) != 30 || len(d.Events) != 30 {
		t.Errorf("whole detail: %v, %d task runs, %d events", err, len(d.TaskRuns), len(d.Events))
	}
	for _, q := range []string{"summary=maybe", "task_runs_limit=-1", "events_offset=x"} {
		if code, body := b.call(t, "GET", apitype.Prefix+"/runs/big?"+q, ""); code != http.StatusBadRequest {
			t.Errorf("?%s: %d %v", q, code, body)
		}
	}
}
