package apitype

import "time"

// Node kinds of RunGraph (GraphNode.Kind).
const (
	NodeTask    = "task"
	NodeMap     = "map"
	NodeSubflow = "subflow"
	NodeWait    = "wait"
)

// MapItemsQueryParams are the query parameters of GET
// /api/v1/runs/{id}/graph/maps/{key}/items: the page (offset, limit) and
// an optional state filter.
var MapItemsQueryParams = []string{"offset", "limit", "state"}

// RunGraph is GET /api/v1/runs/{id}/graph: the run as it executes, as the
// server aggregates it. Its nodes are the run's steps of their own (task
// runs, subflow calls, waits: the latest task run of each step key) and
// its maps, each one node with its items counted per state; its edges are
// the dependencies the engine recorded (WaitFor, and the results the flow
// had received when it made a call). The timeline has one bar per node
// that started, the critical path marked. A run never sends its task runs
// one by one: a map's items are paged by MapItems.
type RunGraph struct {
	RunID string `json:"run_id"`
	State string `json:"state"` // the run's state
	// Now is the server's time of the answer: bars of nodes still running
	// end there, and ETAs are computed from it.
	Now   time.Time   `json:"now"`
	Nodes []GraphNode `json:"nodes"`
	Edges []GraphEdge `json:"edges"`
	// StepsTotal counts the run's steps of their own; when it exceeds the
	// steps among Nodes (Truncated), the oldest ones are shown.
	StepsTotal int  `json:"steps_total"`
	Truncated  bool `json:"truncated"`
	// TaskRunsTotal counts the run's steps of their own and its maps'
	// items (the latest task run of each step key), also those of steps
	// left out.
	TaskRunsTotal int      `json:"task_runs_total"`
	Timeline      Timeline `json:"timeline"`
	// CriticalPath lists the node IDs of the critical path, first to
	// last: from the node that ended last, back through the dependency
	// that ended last before each, to one without dependencies.
	CriticalPath []string `json:"critical_path"`
}

// GraphNode is one node of a RunGraph.
type GraphNode struct {
	// ID is the step key, or the map's key for a map.
	ID   string `json:"id"`
	Kind string `json:"kind"` // NodeTask, NodeMap, NodeSubflow or NodeWait
	Task string `json:"task"`
	// State is the task run's state; for a map, RUNNING (or PENDING when
	// no item started) while items are unfinished, then COMPLETED when
	// every item succeeded, else FAILED (CANCELLED when the others
	// succeeded and some were cancelled).
	State      string     `json:"state"`
	TaskRunID  string     `json:"task_run_id,omitempty"`
	Attempts   int        `json:"attempts,omitempty"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	DurationMS *int64     `json:"duration_ms"`
	Critical   bool       `json:"critical,omitempty"`
	// Map is set for a map node, Subflow for a subflow call.
	Map     *MapGroup     `json:"map,omitempty"`
	Subflow *SubflowGroup `json:"subflow,omitempty"`
}

// MapGroup is what a map node aggregates of its items.
type MapGroup struct {
	Total int `json:"total"`
	// Counts are the items per state.
	Counts   map[string]int `json:"counts"`
	Finished int            `json:"finished"`
	// Progress is Finished / Total, from 0 to 1.
	Progress float64 `json:"progress"`
	// MeanMS is the mean duration of the finished items that ran; nil
	// before one finished.
	MeanMS *int64 `json:"mean_ms"`
	// ETA is when the map should end at the pace of its items so far
	// (finished items per elapsed time since the first started); nil when
	// the map finished, or no item has finished yet, or the run ended.
	ETA *time.Time `json:"eta"`
	// Items is the path of the map's items (GET
	// /api/v1/runs/{id}/graph/maps/{key}/items).
	Items string `json:"items"`
}

// SubflowGroup is the child run of a subflow node: its own graph is at
// Graph, which a client expands the node with.
type SubflowGroup struct {
	RunID string `json:"run_id"`
	Graph string `json:"graph"`
}

// GraphEdge is a dependency: To was called after From's result was
// received, or waited for From (WaitFor).
type GraphEdge struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Critical bool   `json:"critical,omitempty"`
}

// Timeline is the Gantt chart of a run: one bar per node that started,
// ordered by start.
type Timeline struct {
	Start *time.Time    `json:"start"`
	End   *time.Time    `json:"end"`
	Bars  []TimelineBar `json:"bars"`
}

// TimelineBar is one node's span: from its (first item's) start to its
// (last item's) end, or to RunGraph.Now while it runs (Running).
type TimelineBar struct {
	Node     string    `json:"node"`
	Kind     string    `json:"kind"`
	State    string    `json:"state"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Running  bool      `json:"running,omitempty"`
	Critical bool      `json:"critical,omitempty"`
}

// MapItems is GET /api/v1/runs/{id}/graph/maps/{key}/items: a page of a
// map's items (the latest task run of each item), in creation order.
type MapItems struct {
	RunID  string    `json:"run_id"`
	Map    string    `json:"map"`
	Offset int       `json:"offset"`
	Limit  int       `json:"limit"`
	Items  []MapItem `json:"items"`
	// Next is the path of the next page, "" on the last one.
	Next string `json:"next,omitempty"`
}

// MapItem is one item of a map: its task run, without input and result
// (GET /api/v1/runs/{id}?task_runs_... has them).
type MapItem struct {
	TaskRunID  string     `json:"task_run_id"`
	Key        string     `json:"key"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	StartedAt  *time.Time `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	DurationMS *int64     `json:"duration_ms"`
	Error      string     `json:"error,omitempty"`
}
