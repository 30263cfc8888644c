package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// graphFixture writes a running run: load/0 (done), a map sq/1 of 10
// items after it (4 COMPLETED, 1 FAILED, 5 RUNNING), report/2 after
// load/0 (done), and a subflow step child/3 after report/2, running.
func graphFixture(t *testing.T, b *bundle) time.Time {
	t.Helper()
	t0 := b.clk.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	trs := []store.TaskRun{
		{ID: "tr-load", RunID: "g-run", Key: "load/0", Task: "load", State: store.TaskCompleted, Attempts: 1, CreatedAt: at(0), StartedAt: at(0), EndedAt: at(2)},
		{ID: "tr-report", RunID: "g-run", Key: "report/2", Task: "report", State: store.TaskCompleted, Attempts: 2, Deps: []string{"load/0"},
			CreatedAt: at(3), StartedAt: at(3), EndedAt: at(4)},
		{ID: "tr-child", RunID: "g-run", Key: "child/3", Task: "child", ChildRunID: "g-child", State: store.TaskRunning, Attempts: 1,
			Deps: []string{"report/2"}, CreatedAt: at(5), StartedAt: at(5)},
	}
	for i := range 10 {
		tr := store.TaskRun{ID: fmt.Sprintf("tr-sq%02d", i), RunID: "g-run", Key: fmt.Sprintf("sq/1.%d", i), Task: "sq", Map: "sq/1",
			Deps: []string{"load/0"}, Attempts: 1, CreatedAt: at(2).Add(time.Duration(i) * time.Millisecond), StartedAt: at(2)}
		switch {
		case i < 4:
			tr.State, tr.EndedAt = store.TaskCompleted, at(12)
		case i == 4:
			tr.State, tr.EndedAt, tr.Error = store.TaskFailed, at(7), &store.ErrorInfo{Message: "bad item"}
		default:
			tr.State = store.TaskRunning
		}
		trs = append(trs, tr)
	}
	run := store.Run{ID: "g-run", Flow: "graphs", State: store.RunRunning, Attempt: 1, CreatedAt: at(0), StartedAt: at(0)}
	if err := b.st.BatchWrite(context.Background(), store.Batch{Runs: []store.Run{run}, TaskRuns: trs}); err != nil {
		t.Fatal(err)
	}
	return t0
}

// TestRunGraphEndpoint: GET /api/v1/runs/{id}/graph returns the steps and
// the map as one node with its counts, progress and ETA, the recorded
// edges, the subflow group, and the timeline with the critical path.
func TestRunGraphEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	t0 := graphFixture(t, b)
	status, _ := b.call(t, "GET", "/api/v1/runs/g-run/graph", "")
	if status != 200 {
		t.Fatalf("GET graph: %d", status)
	}
	resp, err := b.ts.Client().Get(b.ts.URL + "/api/v1/runs/g-run/graph")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var g apitype.RunGraph
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		t.Fatal(err)
	}
	var ids []string
	nodes := map[string]apitype.GraphNode{}
	for _, n := range g.Nodes {
		ids = append(ids, n.ID+":"+n.Kind+":"+n.State)
		nodes[n.ID] = n
	}
	if want := []string{"load/0:task:COMPLETED", "sq/1:map:RUNNING", "report/2:task:COMPLETED", "child/3:subflow:RUNNING"}; !slices.Equal(ids, want) {
		t.Fatalf("nodes %v, want %v", ids, want)
	}
	m := nodes["sq/1"].Map
	if m == nil || m.Total != 10 || m.Finished != 5 || m.Progress != 0.5 || m.Counts["COMPLETED"] != 4 || m.Counts["FAILED"] != 1 || m.Counts["RUNNING"] != 5 {
		t.Fatalf("map group %+v", m)
	}
	// Five of ten items finished in the 58 s since the first started: the
	// other five take as long again.
	start := t0.Add(2 * time.Second)
	wantETA := g.Now.Add(g.Now.Sub(start)).Truncate(time.Millisecond)
	if m.ETA == nil || m.ETA.Sub(wantETA).Abs() > time.Millisecond {
		t.Errorf("ETA %v, want %v", m.ETA, wantETA)
	}
	if m.MeanMS == nil || *m.MeanMS != (4*10000+5000)/5 {
		t.Errorf("mean %v ms, want 9000", m.MeanMS)
	}
	if m.Items != "/api/v1/runs/g-run/graph/maps/sq%2F1/items" {
		t.Errorf("items path %q", m.Items)
	}
	if c := nodes["child/3"].Subflow; c == nil || c.RunID != "g-child" || c.Graph != "/api/v1/runs/g-child/graph" {
		t.Errorf("subflow group %+v", c)
	}
	var edges []string
	for _, e := range g.Edges {
		edges = append(edges, fmt.Sprintf("%s>%s:%v", e.From, e.To, e.Critical))
	}
	if want := []string{"load/0>sq/1:true", "load/0>report/2:false", "report/2>child/3:false"}; !slices.Equal(edges, want) {
		t.Errorf("edges %v, want %v", edges, want)
	}
	// The map and the subflow both run until now: the map comes first
	// (ties go to the earlier node), after load/0.
	if want := []string{"load/0", "sq/1"}; !slices.Equal(g.CriticalPath, want) {
		t.Errorf("critical path %v, want %v", g.CriticalPath, want)
	}
	if g.TaskRunsTotal != 13 || g.StepsTotal != 3 || g.Truncated {
		t.Errorf("totals: task runs %d, steps %d, truncated %v", g.TaskRunsTotal, g.StepsTotal, g.Truncated)
	}
	var bars []string
	for _, bar := range g.Timeline.Bars {
		bars = append(bars, fmt.Sprintf("%s:%v:%v", bar.Node, bar.Running, bar.Critical))
	}
	if want := []string{"load/0:false:true", "sq/1:true:true", "report/2:false:false", "child/3:true:false"}; !slices.Equal(bars, want) {
		t.Errorf("timeline %v, want %v", bars, want)
	}
	if g.Timeline.Start == nil || !g.Timeline.Start.Equal(t0) || g.Timeline.End == nil || !g.Timeline.End.Equal(g.Now) {
		t.Errorf("timeline span %v – %v, want %v – %v", g.Timeline.Start, g.Timeline.End, t0, g.Now)
	}

	if status, body := b.call(t, "GET", "/api/v1/runs/nope/graph", ""); status != 404 {
		t.Errorf("graph of an unknown run: %d %v", status, body)
	}
}

// TestMapItemsEndpoint: the items of a map come in pages with a link to
// the next, filtered by state; bad parameters are 400s naming them.
func TestMapItemsEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	graphFixture(t, b)
	path := "/api/v1/runs/g-run/graph/maps/" + url.PathEscape("sq/1") + "/items"
	status, body := b.call(t, "GET", path+"?limit=4", "")
	items, _ := body["items"].([]any)
	if status != 200 || len(items) != 4 {
		t.Fatalf("first page: %d %v", status, body)
	}
	next, _ := body["next"].(string)
	if !strings.Contains(next, "offset=4") {
		t.Fatalf("next %q", next)
	}
	var keys []string
	for next != "" {
		status, body = b.call(t, "GET", next, "")
		if status != 200 {
			t.Fatalf("GET %s: %d %v", next, status, body)
		}
		items, _ := body["items"].([]any)
		for _, it := range items {
			keys = append(keys, it.(map[string]any)["key"].(string))
		}
		next, _ = body["next"].(string)
	}
	if want := []string{"sq/1.4", "sq/1.5", "sq/1.6", "sq/1.7", "sq/1.8", "sq/1.9"}; !slices.Equal(keys, want) {
		t.Errorf("later pages %v, want %v", keys, want)
	}
	status, body = b.call(t, "GET", path+"?state=failed", "")
	items, _ = body["items"].([]any)
	if status != 200 || len(items) != 1 || items[0].(map[string]any)["error"] != "bad item" {
		t.Errorf("failed items: %d %v", status, body)
	}
	for _, tc := range []struct{ path, param string }{
		{path + "?offset=-1", "offset"},
		{path + "?limit=0", "limit"},
		{path + "?limit=1001", "limit"},
		{path + "?state=NOPE", "state"},
	} {
		status, body := b.call(t, "GET", tc.path, "")
		e, _ := body["error"].(map[string]any)
		if msg, _ := e["message"].(string); status != 400 || !strings.Contains(msg, `"`+tc.param+`"`) {
			t.Errorf("GET %s: %d %v, want a 400 naming %q", tc.path, status, body, tc.param)
		}
	}
	if status, _ := b.call(t, "GET", "/api/v1/runs/g-run/graph/maps/nomap/items", ""); status != 404 {
		t.Errorf("unknown map: %d, want 404", status)
	}
	if status, _ := b.call(t, "GET", "/api/v1/runs/nope/graph/maps/sq%2F1/items", ""); status != 404 {
		t.Errorf("unknown run: %d, want 404", status)
	}
}
