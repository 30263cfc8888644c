package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// testRunListSearch: RunList's Search matches the ID, the flow name and the
// parameters (ASCII case-insensitive, wildcards literal) and Offset pages.
func testRunListSearch(t *testing.T, s store.Store) {
	ctx := context.Background()
	write(t, s, store.Batch{Runs: []store.Run{
		{ID: "run-alpha", Flow: "etl.Daily", State: store.RunCompleted, CreatedAt: at(1), Parameters: raw(`{"city":"Lyon"}`)},
		{ID: "run-beta", Flow: "report", State: store.RunFailed, CreatedAt: at(2), Parameters: raw(`{"pct":"50%"}`)},
		{ID: "run-gamma", Flow: "etl_hourly", State: store.RunFailed, CreatedAt: at(3)},
		{ID: "run-delta", Flow: "etlxhourly", State: store.RunRunning, CreatedAt: at(4)},
	}})
	for _, tc := range []struct {
		p    store.RunListParams
		want []string
	}{
		{store.RunListParams{Search: "alpha"}, []string{"run-alpha"}},
		{store.RunListParams{Search: "DAILY"}, []string{"run-alpha"}},
		{store.RunListParams{Search: "lyon"}, []string{"run-alpha"}},
		{store.RunListParams{Search: "etl_"}, []string{"run-gamma"}},
		{store.RunListParams{Search: "50%"}, []string{"run-beta"}},
		{store.RunListParams{Search: "%"}, []string{"run-beta"}},
		{store.RunListParams{Search: "etl", State: store.RunFailed}, []string{"run-gamma"}},
		{store.RunListParams{Search: "nothing"}, []string{}},
		{store.RunListParams{Limit: 2}, []string{"run-delta", "run-gamma"}},
		{store.RunListParams{Limit: 2, Offset: 2}, []string{"run-beta", "run-alpha"}},
		{store.RunListParams{Limit: 2, Offset: 4}, []string{}},
		{store.RunListParams{State: store.RunFailed, Offset: 1}, []string{"run-beta"}},
	} {
		got, err := s.RunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("RunList(%+v): %v", tc.p, err)
		}
		ids := []string{}
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("RunList(%+v) = %v, want %v", tc.p, ids, tc.want)
		}
	}
}

// testLogListAfter: LogList's After lists the records after an ID.
func testLogListAfter(t *testing.T, s store.Store) {
	ctx := context.Background()
	write(t, s, store.Batch{Logs: []store.LogRecord{
		{RunID: "r", Level: "INFO", Message: "one", At: at(1)},
		{RunID: "r", Level: "INFO", Message: "two", At: at(2)},
		{RunID: "r", Level: "INFO", Message: "three", At: at(3)},
	}})
	all, err := s.LogList(ctx, store.LogListParams{RunID: "r"})
	if err != nil || len(all) != 3 {
		t.Fatalf("LogList: %d records, %v", len(all), err)
	}
	rest, err := s.LogList(ctx, store.LogListParams{RunID: "r", After: all[0].ID})
	if err != nil || len(rest) != 2 || rest[0].Message != "two" || rest[1].Message != "three" {
		t.Fatalf("LogList after %d: %+v, %v; want two and three", all[0].ID, rest, err)
	}
	one, err := s.LogList(ctx, store.LogListParams{RunID: "r", After: all[0].ID, Limit: 1})
	if err != nil || len(one) != 1 || one[0].Message != "two" {
		t.Fatalf("LogList after %d limit 1: %+v, %v; want two", all[0].ID, one, err)
	}
	none, err := s.LogList(ctx, store.LogListParams{RunID: "r", After: all[2].ID})
	if err != nil || len(none) != 0 {
		t.Fatalf("LogList after the last: %+v, %v; want none", none, err)
	}
}

// testRunListFilters: RunList's Deployment, Tag (a run carries its
// deployment's tags, matched exactly) and created time range filters, alone
// and with the others.
func testRunListFilters(t *testing.T, s store.Store) {
	ctx := context.Background()
	for _, d := range []store.Deployment{
		{Name: "nightly", Flow: "etl", Tags: []string{"prod", "team-a"}},
		{Name: "hourly", Flow: "etl", Tags: []string{"Prod"}},
		{Name: "adhoc", Flow: "report"},
	} {
		d.Queue, d.Collision, d.Source, d.Hash = "q", store.CollisionQueue, store.SourceAPI, d.Name
		if _, _, err := s.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, Deployment: d, At: at(0)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []store.Run{
		{ID: "f-1", Flow: "etl", State: store.RunCompleted, Deployment: "nightly", CreatedAt: at(1)},
		{ID: "f-2", Flow: "etl", State: store.RunFailed, Deployment: "nightly", CreatedAt: at(2)},
		{ID: "f-3", Flow: "etl", State: store.RunFailed, Deployment: "hourly", CreatedAt: at(3)},
		{ID: "f-4", Flow: "report", State: store.RunCompleted, Deployment: "adhoc", CreatedAt: at(4)},
		{ID: "f-5", Flow: "etl", State: store.RunFailed, CreatedAt: at(5)},
	} {
		r.Attempt = 1
		if _, _, err := s.RunCreate(ctx, store.RunCreateParams{Run: r, Cause: "user"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		p    store.RunListParams
		want []string
	}{
		{"deployment", store.RunListParams{Deployment: "nightly"}, []string{"f-2", "f-1"}},
		{"deployment and state", store.RunListParams{Deployment: "nightly", State: store.RunFailed}, []string{"f-2"}},
		{"unknown deployment", store.RunListParams{Deployment: "weekly"}, []string{}},
		{"tag", store.RunListParams{Tag: "prod"}, []string{"f-2", "f-1"}},
		{"tag is case-sensitive", store.RunListParams{Tag: "Prod"}, []string{"f-3"}},
		{"tag of one deployment", store.RunListParams{Tag: "team-a", State: store.RunCompleted}, []string{"f-1"}},
		{"tag no deployment has", store.RunListParams{Tag: "staging"}, []string{}},
		{"created from", store.RunListParams{CreatedFrom: at(4)}, []string{"f-5", "f-4"}},
		{"created to (exclusive)", store.RunListParams{CreatedTo: at(3)}, []string{"f-2", "f-1"}},
		{"created range", store.RunListParams{CreatedFrom: at(2), CreatedTo: at(5)}, []string{"f-4", "f-3", "f-2"}},
		{"range, flow and state", store.RunListParams{CreatedFrom: at(2), Flow: "etl", State: store.RunFailed}, []string{"f-5", "f-3", "f-2"}},
		{"range paged", store.RunListParams{CreatedFrom: at(2), Limit: 2, Offset: 1}, []string{"f-4", "f-3"}},
		{"empty range", store.RunListParams{CreatedFrom: at(3), CreatedTo: at(3)}, []string{}},
	} {
		got, err := s.RunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("%s: RunList(%+v): %v", tc.name, tc.p, err)
		}
		ids := []string{}
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("%s: RunList(%+v) = %v, want %v", tc.name, tc.p, ids, tc.want)
		}
	}
}

// testRunStats: RunStats counts the runs of a range by bucket of creation
// time and by state, leaving out the runs outside the range.
func testRunStats(t *testing.T, s store.Store) {
	ctx := context.Background()
	write(t, s, store.Batch{Runs: []store.Run{
		{ID: "s-0", Flow: "f", State: store.RunCompleted, CreatedAt: at(0)},   // before the range
		{ID: "s-1", Flow: "f", State: store.RunCompleted, CreatedAt: at(10)},  // bucket 0
		{ID: "s-2", Flow: "f", State: store.RunFailed, CreatedAt: at(12)},     // bucket 0
		{ID: "s-3", Flow: "f", State: store.RunCompleted, CreatedAt: at(19)},  // bucket 0
		{ID: "s-4", Flow: "g", State: store.RunRunning, CreatedAt: at(30)},    // bucket 2
		{ID: "s-5", Flow: "g", State: store.RunFailed, CreatedAt: at(39)},     // bucket 2
		{ID: "s-6", Flow: "g", State: store.RunFailed, CreatedAt: at(40)},     // at the end: out
		{ID: "s-7", Flow: "g", State: store.RunScheduled, CreatedAt: at(100)}, // after the range
	}})
	got, err := s.RunStats(ctx, store.RunStatsParams{Since: at(10), Until: at(40), Bucket: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.RunBucketCount{
		{Bucket: 0, State: store.RunCompleted, N: 2}, {Bucket: 0, State: store.RunFailed, N: 1},
		{Bucket: 2, State: store.RunFailed, N: 1}, {Bucket: 2, State: store.RunRunning, N: 1},
	}
	if !slices.Equal(got, want) {
		t.Errorf("RunStats = %+v, want %+v", got, want)
	}
	if _, err := s.RunStats(ctx, store.RunStatsParams{Since: at(10), Until: at(10), Bucket: time.Second}); err == nil {
		t.Error("RunStats of an empty range: no error")
	}
	if _, err := s.RunStats(ctx, store.RunStatsParams{Since: at(10), Until: at(20)}); err == nil {
		t.Error("RunStats with a zero bucket: no error")
	}
}
