package storetest

import (
	"context"
	"slices"
	"testing"

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
