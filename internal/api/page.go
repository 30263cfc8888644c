package api

import (
	"context"
	"fmt"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// Sizes of the lists of a apitype.RunSummary.
const (
	SummaryFailed  = 10 // the first failed task runs
	SummarySlowest = 5  // the slowest task runs
)

// FailedTaskStates are the states a summary counts and lists as failed.
var FailedTaskStates = []store.TaskState{store.TaskFailed, store.TaskTimedOut, store.TaskCancelled, store.TaskCrashed}

// DetailReader is what RunPage reads of a store.
type DetailReader interface {
	TaskRunList(ctx context.Context, p store.TaskRunListParams) ([]store.TaskRun, error)
	TaskRunCounts(ctx context.Context, runID string) ([]store.TaskRunCount, error)
	EventList(ctx context.Context, runID string) ([]store.Event, error)
}

// RunPage reads the parts of run's detail that q asks for: a page of its
// task runs (read as a page), of its events, their totals and a summary
// (from counts and two small reads). Results that cannot be loaded are
// null and warn lists them, one a line; err is a failed read.
func RunPage(ctx context.Context, st DetailReader, run store.Run, q apitype.PageQuery, load ResultLoader) (v apitype.RunPage, warn, err error) {
	counts, err := st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return apitype.RunPage{}, nil, fmt.Errorf("count task runs of %s: %w", run.ID, err)
	}
	total, failed := 0, 0
	for _, c := range counts {
		total += c.N
		if isFailed(c.State) {
			failed += c.N
		}
	}
	var trs []store.TaskRun
	if q.TaskRunsLimit != 0 {
		p := store.TaskRunListParams{RunID: run.ID, Offset: q.TaskRunsOffset, Limit: max(q.TaskRunsLimit, 0)}
		if trs, err = st.TaskRunList(ctx, p); err != nil {
			return apitype.RunPage{}, nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
	}
	var evs []store.Event
	var evTotal *int
	if q.EventsLimit != 0 {
		all, err := st.EventList(ctx, run.ID)
		if err != nil {
			return apitype.RunPage{}, nil, fmt.Errorf("read events of %s: %w", run.ID, err)
		}
		n := len(all)
		evTotal = &n
		evs = pageOf(all, q.EventsOffset, q.EventsLimit)
	}
	d, derr := RunDetailViewOf(run, trs, evs, load)
	out := apitype.RunPage{RunDetail: d, TaskRunsTotal: &total, EventsTotal: evTotal}
	if !q.Summary {
		return out, derr, nil
	}
	sum := &apitype.RunSummary{TaskRuns: total, FailedTotal: failed, Counts: make([]apitype.TaskRunCount, len(counts))}
	for i, c := range counts {
		sum.Counts[i] = apitype.TaskRunCount{Task: c.Task, State: string(c.State), N: c.N}
	}
	brief := func(p store.TaskRunListParams) ([]apitype.TaskRun, error) {
		p.RunID = run.ID
		rows, err := st.TaskRunList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
		views := make([]apitype.TaskRun, len(rows))
		for i, tr := range rows {
			tr.Input, tr.InputRef, tr.Result, tr.ResultRef = nil, "", nil, "" // a summary names task runs; their values are in the detail
			views[i] = TaskRunJSON(tr, nil)
		}
		return views, nil
	}
	// The counts tell when there is no failed task run to read.
	sum.Failed = []apitype.TaskRun{}
	if failed > 0 {
		if sum.Failed, err = brief(store.TaskRunListParams{States: FailedTaskStates, Limit: SummaryFailed}); err != nil {
			return apitype.RunPage{}, nil, err
		}
	}
	if sum.Slowest, err = brief(store.TaskRunListParams{Slowest: true, Limit: SummarySlowest}); err != nil {
		return apitype.RunPage{}, nil, err
	}
	out.Summary = sum
	return out, derr, nil
}

func isFailed(s store.TaskState) bool {
	for _, f := range FailedTaskStates {
		if s == f {
			return true
		}
	}
	return false
}

// pageOf returns at most limit (negative: all) items of s from offset on.
func pageOf[T any](s []T, offset, limit int) []T {
	if offset >= len(s) {
		return s[:0]
	}
	s = s[offset:]
	if limit >= 0 && limit < len(s) {
		s = s[:limit]
	}
	return s
}
