package storetest

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// graphRun writes a run with steps a/0 and b/2 (b after a, retried: its
// first task run FAILED, its second COMPLETED), a map sq/1 of five items
// (one of them run again by a second attempt), a subflow step, a step
// whose key sorts after the map's items, and another run's task runs.
func graphRun(t *testing.T, s store.Store) {
	t.Helper()
	trs := []store.TaskRun{
		{ID: "t-a", RunID: "g", Key: "a/0", Task: "a", State: store.TaskCompleted, Attempts: 1, CreatedAt: at(1), StartedAt: at(1), EndedAt: at(3)},
		{ID: "t-b1", RunID: "g", Key: "b/2", Task: "b", State: store.TaskFailed, Attempts: 3, Deps: []string{"sq/1"}, CreatedAt: at(10), StartedAt: at(10), EndedAt: at(11),
			Error: &store.ErrorInfo{Message: "boom", Chain: []string{"boom"}}},
		{ID: "t-b2", RunID: "g", Key: "b/2", Task: "b", State: store.TaskCompleted, Attempts: 1, Deps: []string{"sq/1"}, FlowAttempt: 2, CreatedAt: at(20), StartedAt: at(20), EndedAt: at(22)},
		{ID: "t-c", RunID: "g", Key: "child/3", Task: "child", ChildRunID: "g-child", State: store.TaskRunning, Attempts: 1, Deps: []string{"a/0", "b/2"}, CreatedAt: at(23), StartedAt: at(23)},
		{ID: "t-tail", RunID: "g", Key: "tail/5", Task: "tail", State: store.TaskPending, Deps: []string{"child/3"}, CreatedAt: at(24)},
		{ID: "other", RunID: "h", Key: "sq/1.0", Task: "sq", Map: "sq/1", State: store.TaskCompleted, CreatedAt: at(1)},
	}
	for i := range 5 {
		tr := store.TaskRun{ID: fmt.Sprintf("t-sq%d", i), RunID: "g", Key: fmt.Sprintf("sq/1.%d", i), Task: "sq", Map: "sq/1",
			Deps: []string{"a/0"}, Attempts: 1, CreatedAt: at(4).Add(time.Duration(i) * time.Millisecond)}
		switch {
		case i < 2:
			tr.State, tr.StartedAt, tr.EndedAt = store.TaskCompleted, at(4), at(6) // 2 s each
		case i == 2:
			tr.State, tr.StartedAt, tr.EndedAt = store.TaskFailed, at(4), at(5) // 1 s, retried below
		default:
			tr.State, tr.StartedAt = store.TaskRunning, at(5)
		}
		trs = append(trs, tr)
	}
	trs = append(trs, store.TaskRun{ID: "t-sq2b", RunID: "g", Key: "sq/1.2", Task: "sq", Map: "sq/1", Deps: []string{"a/0"},
		State: store.TaskCompleted, Attempts: 1, FlowAttempt: 2, CreatedAt: at(7), StartedAt: at(7), EndedAt: at(9)})
	write(t, s, store.Batch{TaskRuns: trs})
}

// testGraphGet: GraphGet returns the latest task run of each step key
// that is no map item, with its deps and error, and each map counted per
// state over the latest task run of each item key.
func testGraphGet(t *testing.T, s store.Store) {
	ctx := context.Background()
	graphRun(t, s)
	g, err := s.GraphGet(ctx, store.GraphGetParams{RunID: "g"})
	if err != nil {
		t.Fatalf("GraphGet: %v", err)
	}
	var keys []string
	for _, st := range g.Steps {
		keys = append(keys, st.Key+"="+st.ID+":"+string(st.State))
	}
	if want := []string{"a/0=t-a:COMPLETED", "b/2=t-b2:COMPLETED", "child/3=t-c:RUNNING", "tail/5=t-tail:PENDING"}; !slices.Equal(keys, want) || g.StepsTotal != 4 {
		t.Fatalf("steps %v (total %d), want %v (4)", keys, g.StepsTotal, want)
	}
	c := g.Steps[2]
	if c.ChildRunID != "g-child" || !slices.Equal(c.Deps, []string{"a/0", "b/2"}) || !c.StartedAt.Equal(at(23)) || !c.EndedAt.IsZero() || c.Attempts != 1 {
		t.Errorf("subflow step: %+v", c)
	}
	if len(g.Steps[0].Deps) != 0 || !g.Steps[0].EndedAt.Equal(at(3)) {
		t.Errorf("step a/0: %+v", g.Steps[0])
	}
	if len(g.Maps) != 1 {
		t.Fatalf("maps: %+v, want one", g.Maps)
	}
	m := g.Maps[0]
	wantCounts := []store.StateCount{{State: store.TaskRunning, N: 2}, {State: store.TaskCompleted, N: 3}}
	if m.Key != "sq/1" || m.Task != "sq" || m.Total != 5 || !reflect.DeepEqual(m.Counts, wantCounts) || !slices.Equal(m.Deps, []string{"a/0"}) {
		t.Errorf("map: %+v, want sq/1 of 5 items %v after a/0", m, wantCounts)
	}
	if m.Finished != 3 || m.Busy != 6*time.Second || !m.StartedAt.Equal(at(4)) || !m.EndedAt.Equal(at(9)) || !m.CreatedAt.Equal(at(4)) {
		t.Errorf("map timing: finished %d busy %v started %v ended %v created %v; want 3, 6s, %v, %v, %v",
			m.Finished, m.Busy, m.StartedAt, m.EndedAt, m.CreatedAt, at(4), at(9), at(4))
	}

	g, err = s.GraphGet(ctx, store.GraphGetParams{RunID: "g", Steps: 2})
	if err != nil {
		t.Fatalf("GraphGet(Steps 2): %v", err)
	}
	if len(g.Steps) != 2 || g.StepsTotal != 4 || g.Steps[1].Key != "b/2" {
		t.Errorf("GraphGet(Steps 2): %d steps (total %d)", len(g.Steps), g.StepsTotal)
	}
	g, err = s.GraphGet(ctx, store.GraphGetParams{RunID: "nope"})
	if err != nil || len(g.Steps) != 0 || len(g.Maps) != 0 || g.StepsTotal != 0 {
		t.Errorf("GraphGet(unknown run) = %+v, %v; want empty", g, err)
	}
}

// testMapItemList: MapItemList pages the latest task run of each item of
// one map of one run, in creation order, filtered by state.
func testMapItemList(t *testing.T, s store.Store) {
	ctx := context.Background()
	graphRun(t, s)
	for _, tc := range []struct {
		p    store.MapItemListParams
		want []string
	}{
		{store.MapItemListParams{RunID: "g", Map: "sq/1"}, []string{"t-sq0", "t-sq1", "t-sq3", "t-sq4", "t-sq2b"}},
		{store.MapItemListParams{RunID: "g", Map: "sq/1", Limit: 2}, []string{"t-sq0", "t-sq1"}},
		{store.MapItemListParams{RunID: "g", Map: "sq/1", Limit: 2, Offset: 4}, []string{"t-sq2b"}},
		{store.MapItemListParams{RunID: "g", Map: "sq/1", States: []store.TaskState{store.TaskRunning}}, []string{"t-sq3", "t-sq4"}},
		{store.MapItemListParams{RunID: "g", Map: "sq/1", States: []store.TaskState{store.TaskFailed}}, []string{}},
		{store.MapItemListParams{RunID: "g", Map: "sq"}, []string{}},
		{store.MapItemListParams{RunID: "h", Map: "sq/1"}, []string{"other"}},
	} {
		got, err := s.MapItemList(ctx, tc.p)
		if err != nil {
			t.Fatalf("MapItemList(%+v): %v", tc.p, err)
		}
		ids := []string{}
		for _, tr := range got {
			ids = append(ids, tr.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("MapItemList(%+v) = %v, want %v", tc.p, ids, tc.want)
		}
	}
	if got, err := s.MapItemList(ctx, store.MapItemListParams{RunID: "g", Map: "sq/1", Limit: 1}); err != nil || len(got) != 1 ||
		got[0].Map != "sq/1" || !slices.Equal(got[0].Deps, []string{"a/0"}) {
		t.Errorf("MapItemList item = %+v, %v; want its map and deps", got, err)
	}
	if _, err := s.MapItemList(ctx, store.MapItemListParams{RunID: "g"}); err == nil {
		t.Error("MapItemList without a map key: no error")
	}
}
