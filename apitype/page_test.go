package apitype

import (
	"net/url"
	"testing"
)

func TestParsePageQuery(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		query   string
		want    PageQuery
		paged   bool
		wantErr bool
	}{
		{"", FullPage, false, false},
		{"summary=true", PageQuery{Summary: true, TaskRunsLimit: -1, EventsLimit: -1}, true, false},
		{"task_runs_offset=5&task_runs_limit=10&events_limit=0", PageQuery{TaskRunsOffset: 5, TaskRunsLimit: 10, EventsLimit: 0}, true, false},
		{"events_offset=3", PageQuery{TaskRunsLimit: -1, EventsOffset: 3, EventsLimit: -1}, true, false},
		{"summary=yes", PageQuery{}, true, true},
		{"task_runs_limit=-1", PageQuery{}, true, true},
		{"events_offset=1.5", PageQuery{}, true, true},
	} {
		v, _ := url.ParseQuery(tt.query)
		q, paged, err := ParsePageQuery(v)
		if (err != nil) != tt.wantErr || paged != tt.paged || (err == nil && q != tt.want) {
			t.Errorf("ParsePageQuery(%q) = %+v, %v, %v; want %+v, %v, error %v", tt.query, q, paged, err, tt.want, tt.paged, tt.wantErr)
		}
	}
}

// FuzzParsePageQuery: any query parses or is refused without a panic, and
// what parses encodes back to the same query.
func FuzzParsePageQuery(f *testing.F) {
	for _, s := range []string{"", "summary=true&task_runs_limit=3", "events_offset=9&events_limit=0", "task_runs_offset=-1", "summary=%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, _, err := ParsePageQuery(v)
		if err != nil {
			return
		}
		if q.TaskRunsOffset < 0 || q.EventsOffset < 0 || q.TaskRunsLimit < -1 || q.EventsLimit < -1 {
			t.Fatalf("ParsePageQuery(%q) = %+v: out of range", raw, q)
		}
		back, _, err := ParsePageQuery(q.Values())
		if err != nil || back != q {
			t.Fatalf("round trip of %+v: %+v, %v", q, back, err)
		}
	})
}
