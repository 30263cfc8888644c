package apitype

import (
	"encoding/json"
	"time"
)

// RunsQueryParams are the query parameters of GET /api/v1/runs and GET
// /api/v1/runs/stream: filters (flow, state, queue, q: text in the ID,
// flow name or parameters; deployment; tag: a tag of the run's
// deployment; created_from and created_to: the range of creation times,
// from inclusive, to exclusive, as RFC 3339 times, "2006-01-02T15:04" or
// "2006-01-02" in UTC) and the page (limit, offset).
var RunsQueryParams = []string{"flow", "state", "queue", "q", "deployment", "tag", "created_from", "created_to", "limit", "offset"}

// RunStatsQueryParams are the query parameters of GET /api/v1/stats/runs:
// since (an RFC 3339 time, or a duration before now such as "24h";
// default 24h), until (default now) and bucket (a duration, default 1h).
var RunStatsQueryParams = []string{"since", "until", "bucket"}

// RunStats answers GET /api/v1/stats/runs: the runs created in
// [since, until) counted by bucket of creation time and by their state now.
type RunStats struct {
	Since         time.Time `json:"since"`
	Until         time.Time `json:"until"`
	BucketSeconds int64     `json:"bucket_seconds"`
	// States are the states counted in some bucket, in the UI's order.
	States []string `json:"states"`
	// Buckets are every bucket of the range, oldest first, empty ones
	// included.
	Buckets []RunStatsBucket `json:"buckets"`
}

// RunStatsBucket is one bucket of RunStats: its start, and its runs by
// state (states without runs absent) and in total.
type RunStatsBucket struct {
	Start  time.Time      `json:"start"`
	Counts map[string]int `json:"counts"`
	Total  int            `json:"total"`
}

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
