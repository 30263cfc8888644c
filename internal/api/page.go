package api

import (
	"context"
	"fmt"
	"net/url"
	"strconv"

	"github.com/batonhq/baton/internal/store"
)

// Sizes of the lists of a RunSummaryView.
const (
	SummaryFailed  = 10 // the first failed task runs
	SummarySlowest = 5  // the slowest task runs
)

// FailedTaskStates are the states a summary counts and lists as failed.
var FailedTaskStates = []store.TaskState{store.TaskFailed, store.TaskTimedOut, store.TaskCancelled, store.TaskCrashed}

// TaskRunCountView counts the task runs of a run with one task and state.
type TaskRunCountView struct {
	Task  string `json:"task"`
	State string `json:"state"`
	N     int    `json:"n"`
}

// RunSummaryView summarises the task runs of a run without listing them:
// counts per task and state (ordered by task, then state), the first
// failed ones (FAILED, TIMED_OUT, CANCELLED, CRASHED) and the slowest.
type RunSummaryView struct {
	TaskRuns    int                `json:"task_runs"`
	Counts      []TaskRunCountView `json:"counts"`
	FailedTotal int                `json:"failed_total"`
	Failed      []TaskRunView      `json:"failed"`
	Slowest     []TaskRunView      `json:"slowest"`
}

// RunPageView is GET /runs/{id} with paging parameters: the run detail
// with a page of its task runs and of its events, their totals, and a
// summary when asked for.
type RunPageView struct {
	RunDetailView
	TaskRunsTotal *int            `json:"task_runs_total,omitempty"`
	EventsTotal   *int            `json:"events_total,omitempty"`
	Summary       *RunSummaryView `json:"summary,omitempty"`
}

// PageQuery says which parts of a run's detail to read. A negative limit
// means all, 0 none.
type PageQuery struct {
	Summary        bool
	TaskRunsOffset int
	TaskRunsLimit  int
	EventsOffset   int
	EventsLimit    int
}

// FullPage reads everything, as GET /runs/{id} without parameters.
var FullPage = PageQuery{TaskRunsLimit: -1, EventsLimit: -1}

// PageQueryParams are the query parameters of GET /runs/{id} that
// PageQuery reads.
var PageQueryParams = []string{"summary", "task_runs_offset", "task_runs_limit", "events_offset", "events_limit"}

// ParsePageQuery reads the paging parameters of GET /runs/{id}; ok is false
// when none is given (the whole detail). Limits default to all.
func ParsePageQuery(v url.Values) (q PageQuery, ok bool, err error) {
	q = FullPage
	for _, name := range PageQueryParams {
		if v.Has(name) {
			ok = true
		}
	}
	if s := v.Get("summary"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return q, ok, fmt.Errorf("summary must be true or false, got %q", s)
		}
		q.Summary = b
	}
	for _, f := range []struct {
		name string
		dst  *int
	}{{"task_runs_offset", &q.TaskRunsOffset}, {"task_runs_limit", &q.TaskRunsLimit},
		{"events_offset", &q.EventsOffset}, {"events_limit", &q.EventsLimit}} {
		s := v.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, ok, fmt.Errorf("%s must be a non-negative integer, got %q", f.name, s)
		}
		*f.dst = n
	}
	return q, ok, nil
}

// Values encodes q as the query of GET /runs/{id}.
func (q PageQuery) Values() url.Values {
	v := url.Values{}
	if q.Summary {
		v.Set("summary", "true")
	}
	set := func(name string, n int, skip bool) {
		if !skip {
			v.Set(name, strconv.Itoa(n))
		}
	}
	set("task_runs_offset", q.TaskRunsOffset, q.TaskRunsOffset == 0)
	set("task_runs_limit", q.TaskRunsLimit, q.TaskRunsLimit < 0)
	set("events_offset", q.EventsOffset, q.EventsOffset == 0)
	set("events_limit", q.EventsLimit, q.EventsLimit < 0)
	return v
}

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
func RunPage(ctx context.Context, st DetailReader, run store.Run, q PageQuery, load ResultLoader) (v RunPageView, warn, err error) {
	counts, err := st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return RunPageView{}, nil, fmt.Errorf("count task runs of %s: %w", run.ID, err)
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
			return RunPageView{}, nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
	}
	var evs []store.Event
	var evTotal *int
	if q.EventsLimit != 0 {
		all, err := st.EventList(ctx, run.ID)
		if err != nil {
			return RunPageView{}, nil, fmt.Errorf("read events of %s: %w", run.ID, err)
		}
		n := len(all)
		evTotal = &n
		evs = pageOf(all, q.EventsOffset, q.EventsLimit)
	}
	d, derr := RunDetailViewOf(run, trs, evs, load)
	out := RunPageView{RunDetailView: d, TaskRunsTotal: &total, EventsTotal: evTotal}
	if !q.Summary {
		return out, derr, nil
	}
	sum := &RunSummaryView{TaskRuns: total, FailedTotal: failed, Counts: make([]TaskRunCountView, len(counts))}
	for i, c := range counts {
		sum.Counts[i] = TaskRunCountView{Task: c.Task, State: string(c.State), N: c.N}
	}
	brief := func(p store.TaskRunListParams) ([]TaskRunView, error) {
		p.RunID = run.ID
		rows, err := st.TaskRunList(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("read task runs of %s: %w", run.ID, err)
		}
		views := make([]TaskRunView, len(rows))
		for i, tr := range rows {
			tr.Input, tr.InputRef, tr.Result, tr.ResultRef = nil, "", nil, "" // a summary names task runs; their values are in the detail
			views[i] = TaskRunJSON(tr, nil)
		}
		return views, nil
	}
	if sum.Failed, err = brief(store.TaskRunListParams{States: FailedTaskStates, Limit: SummaryFailed}); err != nil {
		return RunPageView{}, nil, err
	}
	if sum.Slowest, err = brief(store.TaskRunListParams{Slowest: true, Limit: SummarySlowest}); err != nil {
		return RunPageView{}, nil, err
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
