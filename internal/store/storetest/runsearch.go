package storetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/batonhq/baton/internal/store"
)

// searchFillers is how many newer runs testRunListSearchIndexed writes
// above the runs it searches for: more than RunList reads newest first
// (10,000 besides the page) before it asks the search index.
const searchFillers = 10_300

// testRunListSearchIndexed: RunList's Search among more runs than it scans
// newest first, so that the rare terms go through the search index
// (migration 0014) and the common ones fill the page by the scan: both give
// what a substring test of the id, the flow and the parameters (ASCII
// case-insensitive, wildcards literal, other characters as they are)
// gives, in RunList's order and pages; the index follows the parameters
// that RunUpdate changes and the runs that RetentionDelete deletes.
func testRunListSearchIndexed(t *testing.T, s store.Store) {
	ctx := context.Background()
	runs := []store.Run{
		{ID: "run-Alpha-1", Flow: "etl.Daily", State: store.RunCompleted, CreatedAt: at(1), EndedAt: at(20_000),
			Parameters: raw(`{"city":"Lyon"}`)},
		{ID: "run-beta", Flow: "report", State: store.RunFailed, CreatedAt: at(2), EndedAt: at(20_000),
			Parameters: raw(`{"note":"a_b","pct":"50%"}`)},
		{ID: "run-gamma", Flow: "Étalon", State: store.RunRunning, CreatedAt: at(3), Parameters: raw(`{"ville":"Zürich"}`)},
		{ID: "run-delta", Flow: "etl_hourly", State: store.RunRunning, CreatedAt: at(4), Parameters: raw(`{"k":"x"}`)},
		{ID: "run-eps", Flow: "old", State: store.RunCompleted, CreatedAt: at(5), EndedAt: at(6)},
	}
	for i := range searchFillers {
		r := store.Run{ID: fmt.Sprintf("f-%05d", i), Flow: "filler", State: store.RunRunning, CreatedAt: at(1000 + i)}
		switch {
		case i%1000 == 0:
			r.Parameters = raw(`{"city":"LYON"}`)
		case i%2 == 0:
			r.Parameters = raw(`{"n":"even"}`)
		}
		runs = append(runs, r)
	}
	write(t, s, store.Batch{Runs: runs})
	if _, err := s.RunUpdate(ctx, store.RunUpdateParams{ID: "run-delta", Parameters: raw(`{"k":"Grenoble"}`)}); err != nil {
		t.Fatalf("RunUpdate: %v", err)
	}
	runs[3].Parameters = raw(`{"k":"Grenoble"}`)
	if res, err := s.RetentionDelete(ctx, store.RetentionParams{Before: at(7)}); err != nil || res.Runs != 1 {
		t.Fatalf("RetentionDelete: %+v, %v; want run-eps deleted", res, err)
	}
	runs = slices.Delete(runs, 4, 5)
	slices.Reverse(runs) // newest first: RunList's order
	lower := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'A' && r <= 'Z' {
				return r + 'a' - 'A'
			}
			return r
		}, s)
	}
	want := func(p store.RunListParams) []string {
		ids := []string{}
		term := lower(p.Search)
		for _, r := range runs {
			if (p.State == "" || r.State == p.State) && (strings.Contains(lower(r.ID), term) ||
				strings.Contains(lower(r.Flow), term) || strings.Contains(lower(string(r.Parameters)), term)) {
				ids = append(ids, r.ID)
			}
		}
		limit := p.Limit
		if limit == 0 {
			limit = 100
		}
		ids = ids[min(p.Offset, len(ids)):]
		return ids[:min(limit, len(ids))]
	}
	for _, tc := range []struct {
		p    store.RunListParams
		want []string // checked besides the reference, when set
	}{
		{store.RunListParams{Search: "alpha"}, []string{"run-Alpha-1"}}, // id, other case
		{store.RunListParams{Search: "ALPHA-1"}, []string{"run-Alpha-1"}},
		{store.RunListParams{Search: "daily"}, []string{"run-Alpha-1"}},                     // flow
		{store.RunListParams{Search: "yon"}, nil},                                           // parameters: 11 fillers and run-Alpha-1
		{store.RunListParams{Search: "LYON", Limit: 5, Offset: 8}, nil},                     // a page of them
		{store.RunListParams{Search: `"pct"`}, []string{"run-beta"}},                        // a quote
		{store.RunListParams{Search: "50%"}, []string{"run-beta"}},                          // % is literal
		{store.RunListParams{Search: "a_b"}, []string{"run-beta"}},                          // _ is literal
		{store.RunListParams{Search: "l_h"}, []string{"run-delta"}},                         // not a wildcard
		{store.RunListParams{Search: "%"}, []string{"run-beta"}},                            // 1 character
		{store.RunListParams{Search: "_h"}, []string{"run-delta"}},                          // 2 characters
		{store.RunListParams{Search: "Étalon"}, []string{"run-gamma"}},                      // non-ASCII
		{store.RunListParams{Search: "étalon"}, []string{}},                                 // not folded
		{store.RunListParams{Search: "ZüRICH"}, []string{"run-gamma"}},                      // ASCII folded
		{store.RunListParams{Search: "zÜrich"}, []string{}},                                 // the rest not
		{store.RunListParams{Search: "grenoble"}, []string{"run-delta"}},                    // updated
		{store.RunListParams{Search: `"k":"x"`}, []string{}},                                // the old value
		{store.RunListParams{Search: "run-eps"}, []string{}},                                // deleted
		{store.RunListParams{Search: "f-10299"}, []string{"f-10299"}},                       // the newest
		{store.RunListParams{Search: "f-00000"}, []string{"f-00000"}},                       // the oldest filler
		{store.RunListParams{Search: "even", Limit: 51}, nil},                               // many: the scan
		{store.RunListParams{Search: "even", Limit: 3, Offset: 5000}, nil},                  // past the scan
		{store.RunListParams{Search: "run-", State: store.RunFailed}, []string{"run-beta"}}, // and a state
		{store.RunListParams{Search: "er", Limit: 4, Offset: 1}, nil},                       // 2 characters, many
		{store.RunListParams{Search: "nothing here"}, []string{}},                           // none
	} {
		got, err := s.RunList(ctx, tc.p)
		if err != nil {
			t.Fatalf("RunList(%q): %v", tc.p.Search, err)
		}
		ids := []string{}
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		ref := want(tc.p)
		if !slices.Equal(ids, ref) || (tc.want != nil && !slices.Equal(ids, tc.want)) {
			t.Errorf("RunList(search %q, state %q, limit %d, offset %d) = %v, want %v (expected %v)",
				tc.p.Search, tc.p.State, tc.p.Limit, tc.p.Offset, ids, ref, tc.want)
		}
	}
}
