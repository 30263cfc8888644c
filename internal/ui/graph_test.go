package ui_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/apitype"
	"github.com/chromedp/chromedp"
)

// childFlow is the subflow of mappedFlow: one quick step.
var childFlow = baton.Flow("ui-test.child", func(ctx baton.Context, n int) (int, error) {
	return quickStep.Run(ctx, n)
})

// mappedFlow maps the quick step over six items, then the gated step over
// two (behind one gate), then runs childFlow: its graph has two map nodes,
// the second RUNNING until the gate opens, then a subflow node.
var mappedFlow = baton.Flow("ui-test.mapped", func(ctx baton.Context, p gateParams) (int, error) {
	vs, err := baton.WaitAll(ctx, quickStep.Map(ctx, []int{1, 2, 3, 4, 5, 6}))
	if err != nil {
		return 0, err
	}
	outs, err := baton.WaitAll(ctx, gatedStep.Map(ctx, []gateParams{p, p}))
	if err != nil {
		return 0, err
	}
	return childFlow.Run(ctx, vs[5]+len(outs))
})

// The nodes of mappedFlow's graph.
var (
	quickMap = quickStep.Name() + "/0"
	gatedMap = gatedStep.Name() + "/1"
	subflow  = childFlow.Name() + "/2"
)

// startMapped starts mappedFlow and waits until its gated items run.
func startMapped(t *testing.T, c *cluster) (id, gateName string) {
	t.Helper()
	gateName = newGate(t)
	id = c.create(t, mappedFlow.Name(), `{"gate":"`+gateName+`"}`)
	c.wait(t, id, "running its gated items", func(d apitype.RunDetail) bool {
		n := 0
		for _, tr := range d.TaskRuns {
			if tr.Task == gatedStep.Name() && tr.State == "RUNNING" {
				n++
			}
		}
		return n == 2
	})
	return id, gateName
}

// TestGraphWithoutScripts: the run page's first HTML has the graph's nodes
// (a map as one row with its counts), the timeline, and pages of a map's
// items.
func TestGraphWithoutScripts(t *testing.T) {
	t.Parallel()
	c := newCluster(t)
	id, gateName := startMapped(t, c)
	defer close(gate(gateName))
	_, _, body := get(t, c.url, "/runs/"+id)
	mustContain(t, "run page", body, `id="graph"`, `data-node="`+quickMap+`" data-kind="map" data-state="COMPLETED"`,
		`data-node="`+gatedMap+`" data-kind="map" data-state="RUNNING"`, `<span class="n total">6</span> items`,
		`<span class="n total">2</span> items`, `id="timeline-svg"`, `/ui/static/graph.js`, "Critical path",
		"?map="+url.QueryEscape(quickMap)+"#graph-items")
	if strings.Count(body, `data-kind="map"`) != 2 {
		t.Errorf("want two map rows, one per map, not one per item:\n%s", body)
	}
	_, _, body = get(t, c.url, "/runs/"+id+"?map="+url.QueryEscape(quickMap))
	mustContain(t, "map items page", body, `id="graph-items"`, "<code>"+quickMap+".0</code>", "<code>"+quickMap+".5</code>")
	if status, _, body := get(t, c.url, "/runs/"+id+"?map="+url.QueryEscape(quickMap)+"&map_offset=-1"); status != 400 || !strings.Contains(body, "map_offset") {
		t.Errorf("map_offset=-1: %d, want a 400 page naming it", status)
	}
	if status, _, _ := get(t, c.url, "/runs/"+id+"?map=nomap"); status != 404 {
		t.Errorf("an unknown map: %d, want 404", status)
	}
}

// TestBrowserGraph: the run page draws the graph of a run with maps (each
// one node with its counts), opens a map's items on click, shows the
// running map turn COMPLETED and the subflow appear live, without a
// reload, and expands the subflow in place.
func TestBrowserGraph(t *testing.T) {
	c := newCluster(t)
	id, gateName := startMapped(t, c)
	ctx := tab(t)
	row := func(node string) string {
		return fmt.Sprintf(`document.querySelector('#graph-body tr[data-node=%q]')`, node)
	}
	run(t, ctx, "open the run's graph",
		chromedp.Navigate(c.url+"/runs/"+id),
		until(`document.getElementById("graph").dataset.version >= "1"`),
		until(`Number(document.getElementById("graph-canvas").dataset.drawn) === 2`),
		until(row(quickMap)+`?.dataset.state === "COMPLETED"`),
		until(row(quickMap)+`.querySelector(".items-cell").textContent.includes("6 items")`),
		until(row(gatedMap)+`?.dataset.state === "RUNNING"`),
		until(row(gatedMap)+`.querySelector(".items-cell").textContent.includes("RUNNING 2")`),
		eval(`window.notReloaded = true`),
		eval(`window.quickButton = document.querySelector('#graph-body button[data-node="`+quickMap+`"]')`))
	run(t, ctx, "open the map's items",
		click(`#graph-body button[data-node="`+quickMap+`"]`),
		until(`document.querySelector("#graph-detail .graph-items table")?.textContent.includes("`+quickMap+`.5") ?? false`))
	close(gate(gateName))
	run(t, ctx, "watch the gated map finish",
		until(row(gatedMap)+`?.dataset.state === "COMPLETED"`),
		until(row(gatedMap)+`.querySelector(".items-cell").textContent.includes("COMPLETED 2")`),
		until(row(subflow)+`?.dataset.state === "COMPLETED"`),
		until(`document.querySelector("#timeline-svg .running") === null`),
		until(`Number(document.getElementById("graph-canvas").dataset.drawn) === 3`),
		until(`window.notReloaded === true`),
		// Live re-renders keep the rows that did not change: a button being
		// clicked is never swapped out between press and release.
		until(`window.quickButton.isConnected`),
		// and the open map's items stay shown.
		until(`document.querySelector("#graph-detail .graph-items table")?.textContent.includes("`+quickMap+`.5") ?? false`))
	run(t, ctx, "expand the subflow",
		click(`#graph-body button[data-node="`+subflow+`"]`),
		until(`[...document.querySelectorAll("#graph-detail button")].some((b) => b.textContent === "Expand the subflow")`),
		eval(`[...document.querySelectorAll("#graph-detail button")].find((b) => b.textContent === "Expand the subflow").click()`),
		until(`Number(document.getElementById("graph-canvas").dataset.drawn) === 4`),
		until(`window.batonGraph.layout.groups.length === 1`))
	c.waitState(t, id, "COMPLETED")
}
