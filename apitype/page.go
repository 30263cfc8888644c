package apitype

import (
	"fmt"
	"net/url"
	"strconv"
)

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
