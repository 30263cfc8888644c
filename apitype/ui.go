package apitype

import (
	"encoding/json"
	"time"
)

// RunsQueryParams are the query parameters of GET /api/v1/runs and GET
// /api/v1/runs/stream: filters (flow, state, queue, q: text in the ID,
// flow name or parameters) and the page (limit, offset).
var RunsQueryParams = []string{"flow", "state", "queue", "q", "limit", "offset"}

// InboxItem is a run that needs a person: it waits for input (a value
// that its JSON Schema checks) or for a resume.
type InboxItem struct {
	Run Run `json:"run"`
	// Step is the key of the wait step; Kind is "input" or "pause"; Key
	// the input's key, to send with POST /api/v1/runs/{id}/input.
	Step   string          `json:"step"`
	Kind   string          `json:"kind"`
	Key    string          `json:"key"`
	Prompt string          `json:"prompt,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	// Since is when the run began waiting.
	Since time.Time `json:"since"`
}

// Inbox is GET /api/v1/inbox: the runs waiting for a person, oldest first.
type Inbox struct {
	Items []InboxItem `json:"items"`
}

// StreamRun is the data of a "run" event of GET /api/v1/runs/{id}/stream:
// the run with the counts of its task runs per task and state (never the
// task runs themselves).
type StreamRun struct {
	Run
	TaskRunsTotal int            `json:"task_runs_total"`
	Counts        []TaskRunCount `json:"counts"`
}
