package api

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// GraphReader is what Graph and MapItems read of the store.
type GraphReader interface {
	GraphGet(ctx context.Context, p store.GraphGetParams) (store.Graph, error)
	MapItemList(ctx context.Context, p store.MapItemListParams) ([]store.TaskRun, error)
}

// MapItemsMax bounds the items of one page of MapItems; MapItemsDefault is
// the page's size without a limit.
const (
	MapItemsMax     = 1000
	MapItemsDefault = 50
)

// Graph returns GET /api/v1/runs/{id}/graph of run at time now: the
// store's aggregated graph with its edges, the maps' progress and ETA, the
// timeline and its critical path.
func Graph(ctx context.Context, st GraphReader, run store.Run, now time.Time) (apitype.RunGraph, error) {
	g, err := st.GraphGet(ctx, store.GraphGetParams{RunID: run.ID})
	if err != nil {
		return apitype.RunGraph{}, err
	}
	return GraphJSON(run, g, now), nil
}

// GraphJSON converts a store graph of run into its document at time now.
func GraphJSON(run store.Run, g store.Graph, now time.Time) apitype.RunGraph {
	now = now.UTC()
	out := apitype.RunGraph{RunID: run.ID, State: string(run.State), Now: now, StepsTotal: g.StepsTotal,
		Truncated: g.StepsTotal > len(g.Steps), Nodes: []apitype.GraphNode{}, Edges: []apitype.GraphEdge{},
		CriticalPath: []string{}, Timeline: apitype.Timeline{Bars: []apitype.TimelineBar{}}}
	base := apitype.Prefix + "/runs/" + url.PathEscape(run.ID)
	deps := map[string][]string{}
	// Maps first: a step key equal to a map's key (an explicit key taken
	// twice) is drawn as the map.
	for _, m := range g.Maps {
		n := apitype.GraphNode{ID: m.Key, Kind: apitype.NodeMap, Task: m.Task, State: mapState(m),
			StartedAt: timePtr(m.StartedAt)}
		if m.Finished == m.Total {
			n.EndedAt = timePtr(m.EndedAt)
		}
		n.DurationMS = durationMS(n.StartedAt, n.EndedAt)
		mg := &apitype.MapGroup{Total: m.Total, Counts: map[string]int{}, Finished: m.Finished,
			Items: base + "/graph/maps/" + url.PathEscape(m.Key) + "/items"}
		for _, c := range m.Counts {
			mg.Counts[string(c.State)] = c.N
		}
		if m.Total > 0 {
			mg.Progress = float64(m.Finished) / float64(m.Total)
		}
		if m.Finished > 0 {
			ms := (m.Busy / time.Duration(m.Finished)).Milliseconds()
			mg.MeanMS = &ms
		}
		if eta, ok := mapETA(m, now); ok && !run.State.Final() {
			mg.ETA = &eta
		}
		n.Map = mg
		out.TaskRunsTotal += m.Total
		deps[m.Key] = m.Deps
		out.Nodes = append(out.Nodes, n)
	}
	for _, s := range g.Steps {
		if _, dup := deps[s.Key]; dup {
			continue
		}
		n := apitype.GraphNode{ID: s.Key, Kind: stepKind(s), Task: s.Task, State: string(s.State), TaskRunID: s.ID,
			Attempts: s.Attempts, Error: s.Error, StartedAt: timePtr(s.StartedAt), EndedAt: timePtr(s.EndedAt)}
		n.DurationMS = durationMS(n.StartedAt, n.EndedAt)
		if s.ChildRunID != "" {
			n.Subflow = &apitype.SubflowGroup{RunID: s.ChildRunID, Graph: apitype.Prefix + "/runs/" + url.PathEscape(s.ChildRunID) + "/graph"}
		}
		deps[s.Key] = s.Deps
		out.Nodes = append(out.Nodes, n)
	}
	out.TaskRunsTotal += g.StepsTotal
	// Nodes in the order they were created (a map by its first item).
	created := map[string]time.Time{}
	for _, m := range g.Maps {
		created[m.Key] = m.CreatedAt
	}
	for _, s := range g.Steps {
		if _, ok := created[s.Key]; !ok {
			created[s.Key] = s.CreatedAt
		}
	}
	slices.SortStableFunc(out.Nodes, func(a, b apitype.GraphNode) int { return created[a.ID].Compare(created[b.ID]) })
	index := make(map[string]int, len(out.Nodes))
	for i, n := range out.Nodes {
		index[n.ID] = i
	}
	for _, n := range out.Nodes {
		for _, d := range deps[n.ID] {
			if _, ok := index[d]; ok && d != n.ID {
				out.Edges = append(out.Edges, apitype.GraphEdge{From: d, To: n.ID})
			}
		}
	}
	markCritical(&out, deps, index, now)
	timeline(&out, now)
	return out
}

// stepKind is the node kind of a step.
func stepKind(s store.GraphStep) string {
	switch {
	case s.ChildRunID != "":
		return apitype.NodeSubflow
	case s.State == store.TaskWaiting || isWaitTask(s.Task):
		return apitype.NodeWait
	}
	return apitype.NodeTask
}

// isWaitTask reports whether task is the name of a wait step
// (store.WaitTask).
func isWaitTask(task string) bool {
	kind, _, _ := strings.Cut(task, ":")
	switch kind {
	case store.WaitInput, store.WaitEvent:
		return strings.Contains(task, ":")
	case store.WaitPause, store.WaitSleep:
		return true
	}
	return false
}

// mapState is the state shown for a map (see apitype.GraphNode.State).
func mapState(m store.GraphMap) string {
	if m.Finished < m.Total {
		if m.StartedAt.IsZero() {
			return string(store.TaskPending)
		}
		return string(store.TaskRunning)
	}
	state := store.TaskCompleted
	for _, c := range m.Counts {
		switch {
		case c.State.Succeeded():
		case c.State == store.TaskCancelled:
			if state == store.TaskCompleted {
				state = store.TaskCancelled
			}
		default:
			state = store.TaskFailed
		}
	}
	return string(state)
}

// mapETA extrapolates when an unfinished map ends: the remaining items at
// the pace of the finished ones since the first item started.
func mapETA(m store.GraphMap, now time.Time) (time.Time, bool) {
	if m.Finished == 0 || m.Finished >= m.Total || m.StartedAt.IsZero() || !now.After(m.StartedAt) {
		return time.Time{}, false
	}
	elapsed := now.Sub(m.StartedAt)
	left := time.Duration(float64(elapsed) * float64(m.Total-m.Finished) / float64(m.Finished))
	return now.Add(left).UTC().Truncate(time.Millisecond), true
}

// markCritical finds the critical path: from the node that ends last (a
// running one at now), back through the dependency that ended last, and
// marks its nodes and edges.
func markCritical(out *apitype.RunGraph, deps map[string][]string, index map[string]int, now time.Time) {
	end := func(n *apitype.GraphNode) (time.Time, bool) {
		if n.StartedAt == nil {
			return time.Time{}, false
		}
		if n.EndedAt != nil {
			return *n.EndedAt, true
		}
		return now, true
	}
	last := -1
	var lastEnd time.Time
	for i := range out.Nodes {
		if e, ok := end(&out.Nodes[i]); ok && (last < 0 || e.After(lastEnd)) {
			last, lastEnd = i, e
		}
	}
	seen := map[string]bool{}
	var path []string
	for cur := last; cur >= 0; {
		n := &out.Nodes[cur]
		if seen[n.ID] {
			break
		}
		seen[n.ID] = true
		n.Critical = true
		path = append(path, n.ID)
		next := -1
		var nextEnd time.Time
		for _, d := range deps[n.ID] {
			j, ok := index[d]
			if !ok || seen[d] {
				continue
			}
			if e, ok := end(&out.Nodes[j]); ok && (next < 0 || e.After(nextEnd)) {
				next, nextEnd = j, e
			}
		}
		cur = next
	}
	slices.Reverse(path)
	out.CriticalPath = path
	on := map[[2]string]bool{}
	for i := 1; i < len(path); i++ {
		on[[2]string{path[i-1], path[i]}] = true
	}
	for i := range out.Edges {
		out.Edges[i].Critical = on[[2]string{out.Edges[i].From, out.Edges[i].To}]
	}
}

// timeline adds the bars of the nodes that started, ordered by start.
func timeline(out *apitype.RunGraph, now time.Time) {
	tl := &out.Timeline
	for _, n := range out.Nodes {
		if n.StartedAt == nil {
			continue
		}
		b := apitype.TimelineBar{Node: n.ID, Kind: n.Kind, State: n.State, Start: *n.StartedAt, Critical: n.Critical}
		if n.EndedAt != nil {
			b.End = *n.EndedAt
		} else {
			b.End, b.Running = now, true
		}
		if tl.Start == nil || b.Start.Before(*tl.Start) {
			s := b.Start
			tl.Start = &s
		}
		if tl.End == nil || b.End.After(*tl.End) {
			e := b.End
			tl.End = &e
		}
		tl.Bars = append(tl.Bars, b)
	}
	slices.SortStableFunc(tl.Bars, func(a, b apitype.TimelineBar) int { return a.Start.Compare(b.Start) })
}

// MapItemsPage returns GET /api/v1/runs/{id}/graph/maps/{key}/items: the
// items of map of run, offset and limit already checked (limit 0:
// MapItemsDefault).
func MapItemsPage(ctx context.Context, st GraphReader, runID, mapKey string, states []store.TaskState, offset, limit int) (apitype.MapItems, error) {
	if limit <= 0 {
		limit = MapItemsDefault
	}
	trs, err := st.MapItemList(ctx, store.MapItemListParams{RunID: runID, Map: mapKey, States: states, Offset: offset, Limit: limit + 1})
	if err != nil {
		return apitype.MapItems{}, err
	}
	out := apitype.MapItems{RunID: runID, Map: mapKey, Offset: offset, Limit: limit, Items: []apitype.MapItem{}}
	if len(trs) > limit {
		trs = trs[:limit]
		q := url.Values{"offset": {strconv.Itoa(offset + limit)}, "limit": {strconv.Itoa(limit)}}
		for _, s := range states {
			q.Add("state", string(s))
		}
		out.Next = apitype.Prefix + "/runs/" + url.PathEscape(runID) + "/graph/maps/" + url.PathEscape(mapKey) + "/items?" + q.Encode()
	}
	for _, tr := range trs {
		it := apitype.MapItem{TaskRunID: tr.ID, Key: tr.Key, State: string(tr.State), Attempts: tr.Attempts,
			StartedAt: timePtr(tr.StartedAt), EndedAt: timePtr(tr.EndedAt)}
		it.DurationMS = durationMS(it.StartedAt, it.EndedAt)
		if tr.Error != nil {
			it.Error = tr.Error.Message
		}
		out.Items = append(out.Items, it)
	}
	return out, nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func durationMS(start, end *time.Time) *int64 {
	if start == nil || end == nil {
		return nil
	}
	ms := end.Sub(*start).Milliseconds()
	return &ms
}
