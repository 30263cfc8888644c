package server

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// graphRoutes are the routes of the run graph (the run page's graph and
// timeline).
func (s *Server) graphRoutes() []route {
	p := apitype.Prefix
	return []route{
		{method: "GET", pattern: p + "/runs/{id}/graph", summary: "The run's graph as it executes: steps, maps (one node each, with counts per state, progress and ETA) and subflows as nodes, recorded dependencies as edges, and the timeline with the critical path; aggregated on the server", tag: "runs", response: "RunGraph", handle: s.getGraph},
		{method: "GET", pattern: p + "/runs/{id}/graph/maps/{key}/items", summary: "A page of a map's items, in creation order (offset, limit up to 1000, state: only items in these states)", tag: "runs", query: apitype.MapItemsQueryParams, response: "MapItems", handle: s.getMapItems},
	}
}

func (s *Server) getGraph(w http.ResponseWriter, r *http.Request) error {
	g, err := s.runGraph(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, g)
}

func (s *Server) getMapItems(w http.ResponseWriter, r *http.Request) error {
	page, err := s.mapItems(r.Context(), r.PathValue("id"), r.PathValue("key"), r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, page)
}

// runGraph reads GET /api/v1/runs/{id}/graph.
func (s *Server) runGraph(ctx context.Context, id string) (apitype.RunGraph, error) {
	run, err := s.lookupRun(ctx, id)
	if err != nil {
		return apitype.RunGraph{}, err
	}
	return api.Graph(ctx, s.st, run, s.clk.Now())
}

// mapItems reads GET /api/v1/runs/{id}/graph/maps/{key}/items with the
// query q.
func (s *Server) mapItems(ctx context.Context, id, key string, q url.Values) (apitype.MapItems, error) {
	if err := checkIdentifiers(identifier{"key", "map key", key}); err != nil {
		return apitype.MapItems{}, err
	}
	if key == "" {
		return apitype.MapItems{}, errBadRequest("the map key is required: GET %s/runs/{id}/graph/maps/{key}/items", apitype.Prefix)
	}
	var offset, limit int
	if o := q.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return apitype.MapItems{}, errBadRequest("query parameter \"offset\" must be a non-negative integer, got %q", o)
		}
		offset = n
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > api.MapItemsMax {
			return apitype.MapItems{}, errBadRequest("query parameter \"limit\" must be an integer from 1 to %d, got %q", api.MapItemsMax, l)
		}
		limit = n
	}
	var states []store.TaskState
	for _, v := range q["state"] {
		for st := range strings.SplitSeq(v, ",") {
			state := store.TaskState(strings.ToUpper(strings.TrimSpace(st)))
			if !slices.Contains(store.TaskStates, state) {
				return apitype.MapItems{}, errBadRequest("query parameter \"state\": unknown task state %q; valid states: %v", st, store.TaskStates)
			}
			states = append(states, state)
		}
	}
	run, err := s.lookupRun(ctx, id)
	if err != nil {
		return apitype.MapItems{}, err
	}
	page, err := api.MapItemsPage(ctx, s.st, run.ID, key, states, offset, limit)
	if err != nil {
		return apitype.MapItems{}, err
	}
	if len(page.Items) == 0 && offset == 0 && len(states) == 0 {
		return apitype.MapItems{}, errNotFound("run %s has no map %q", run.ID, key)
	}
	return page, nil
}

func (u uiSource) Graph(ctx context.Context, id string) (apitype.RunGraph, error) {
	return u.s.runGraph(ctx, id)
}

func (u uiSource) MapItems(ctx context.Context, id, key string, q url.Values) (apitype.MapItems, error) {
	return u.s.mapItems(ctx, id, key, q)
}
