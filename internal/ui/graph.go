package ui

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
)

// The run page's graph section (templates/graph.html, static/graph.js):
// rendered on the server from GET /api/v1/runs/{id}/graph as a table of
// its nodes and an SVG timeline, readable without scripts; the script lays
// the graph out (vendored @dagrejs/dagre), draws it on a canvas and keeps
// it live. A map's items are paged on the server (?map=KEY&map_offset=N on
// the run page, GET /api/v1/runs/{id}/graph/maps/{key}/items for the
// script).

// GraphSource is what the graph section reads. A Source that implements it
// gets the section on its run pages.
type GraphSource interface {
	// Graph is GET /api/v1/runs/{id}/graph.
	Graph(ctx context.Context, id string) (apitype.RunGraph, error)
	// MapItems is GET /api/v1/runs/{id}/graph/maps/{key}/items with the
	// query q.
	MapItems(ctx context.Context, id, key string, q url.Values) (apitype.MapItems, error)
}

// Sizes of the graph section.
const (
	graphBarsShown = 300 // timeline bars rendered on the server
	mapItemsPage   = 50  // items of a map per page
)

// graphView is what templates/graph.html renders.
type graphView struct {
	apitype.RunGraph
	Path     string // the JSON twin
	Stream   string // the run's event stream while it is not finished
	Rows     []graphRow
	Bars     []graphBar
	BarsMore int    // bars not rendered
	Span     string // the timeline's length
	Items    *mapItemsView
}

// graphRow is one node of the table.
type graphRow struct {
	apitype.GraphNode
	Counts   []stateCount
	Deps     []string
	Progress int    // percent, for maps
	ItemsURL string // the run page with the map's items
}

// graphBar is one bar of the timeline, in percent of its span.
type graphBar struct {
	apitype.TimelineBar
	X, W float64
	Y    int
}

// mapItemsView is a page of a map's items.
type mapItemsView struct {
	apitype.MapItems
	Prev, NextPage string
	From, To       int
}

// graphRowHeight is the height of a timeline row in the SVG's units.
const graphRowHeight = 18

// runGraph builds the graph section of run id for request r; nil when the
// Source has no graph.
func (h *Handler) runGraph(r *http.Request, id string, finished bool) (*graphView, error) {
	gs, ok := h.src.(GraphSource)
	if !ok {
		return nil, nil
	}
	ctx := r.Context()
	g, err := gs.Graph(ctx, id)
	if err != nil {
		return nil, err
	}
	self := "/runs/" + url.PathEscape(id)
	v := &graphView{RunGraph: g, Path: apitype.Prefix + "/runs/" + url.PathEscape(id) + "/graph"}
	if !finished {
		v.Stream = apitype.Prefix + "/runs/" + url.PathEscape(id) + "/stream"
	}
	deps := map[string][]string{}
	for _, e := range g.Edges {
		deps[e.To] = append(deps[e.To], e.From)
	}
	for _, n := range g.Nodes {
		row := graphRow{GraphNode: n, Deps: deps[n.ID]}
		if n.Map != nil {
			for _, s := range taskStateOrder(n.Map.Counts) {
				row.Counts = append(row.Counts, stateCount{s, n.Map.Counts[s]})
			}
			row.Progress = int(n.Map.Progress * 100)
			row.ItemsURL = self + "?" + url.Values{"map": {n.ID}}.Encode() + "#graph-items"
		}
		v.Rows = append(v.Rows, row)
	}
	if tl := g.Timeline; tl.Start != nil && tl.End != nil {
		span := tl.End.Sub(*tl.Start)
		v.Span = span.Round(time.Millisecond).String()
		for i, b := range tl.Bars {
			if i == graphBarsShown {
				v.BarsMore = len(tl.Bars) - i
				break
			}
			gb := graphBar{TimelineBar: b, Y: i * graphRowHeight}
			if span > 0 {
				gb.X = 100 * float64(b.Start.Sub(*tl.Start)) / float64(span)
				gb.W = max(100*float64(b.End.Sub(b.Start))/float64(span), 0.3)
			} else {
				gb.W = 100
			}
			v.Bars = append(v.Bars, gb)
		}
	}
	if key := r.URL.Query().Get("map"); key != "" {
		offset := 0
		if o := r.URL.Query().Get("map_offset"); o != "" {
			n, err := strconv.Atoi(o)
			if err != nil || n < 0 {
				return nil, badRequest("query parameter \"map_offset\" must be a non-negative integer, got %q", o)
			}
			offset = n
		}
		page, err := gs.MapItems(ctx, id, key, url.Values{"offset": {strconv.Itoa(offset)}, "limit": {strconv.Itoa(mapItemsPage)}})
		if err != nil {
			return nil, err
		}
		iv := &mapItemsView{MapItems: page, From: offset + 1, To: offset + len(page.Items)}
		link := func(off int) string {
			return self + "?" + url.Values{"map": {key}, "map_offset": {strconv.Itoa(off)}}.Encode() + "#graph-items"
		}
		if offset > 0 {
			iv.Prev = link(max(offset-mapItemsPage, 0))
		}
		if page.Next != "" {
			iv.NextPage = link(offset + mapItemsPage)
		}
		v.Items = iv
	}
	return v, nil
}

// taskStates orders task states for display: unfinished first, then
// finished.
var taskStates = []string{"PENDING", "AWAITING_SLOT", "WAITING", "RUNNING", "AWAITING_RETRY", "COMPLETED", "CACHED",
	"FAILED", "TIMED_OUT", "CANCELLED", "CRASHED"}

// taskStateOrder returns the states of counts in display order.
func taskStateOrder(counts map[string]int) []string {
	var out []string
	for _, s := range taskStates {
		if _, ok := counts[s]; ok {
			out = append(out, s)
		}
	}
	var rest []string
	for s := range counts {
		if !slices.Contains(taskStates, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// joinPath renders a critical path.
func joinPath(ids []string) string { return strings.Join(ids, " → ") }

func init() {
	funcs["joinPath"] = joinPath
	funcs["timelineHeight"] = func(bars []graphBar) int { return len(bars)*graphRowHeight + 2 }
}
