// Package api is the server's side of Baton's HTTP API v1 that users do not
// see: the bodies of the worker protocol under /api/v1/workers/{id}/... and
// the engine protocol under /api/v1/engine/..., which carry the store's
// records (internal/store types, encoded with their Go field names) and are
// how a worker's engine reads and writes through the server without
// touching the database; and the conversion of records into the public
// JSON documents of package apitype (runs, task runs, events, logs,
// workers, queues, run pages), which the server, the command lines and
// retention share.
package api

import (
	"encoding/json"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// FlowInfo is what a worker registers about a flow it can run.
type FlowInfo struct {
	Name       string          `json:"name"`
	Parameters map[string]any  `json:"parameters,omitempty"` // JSON Schema
	Defaults   json.RawMessage `json:"defaults,omitempty"`
}

// RegisterWorker is the body of POST /api/v1/workers.
type RegisterWorker struct {
	Name     string         `json:"name"`
	Host     string         `json:"host"`
	PID      int            `json:"pid"`
	Queues   []string       `json:"queues"`
	Flows    []FlowInfo     `json:"flows"`
	Tasks    []string       `json:"tasks"`
	Capacity int            `json:"capacity"`
	Slots    map[string]int `json:"slots,omitempty"` // distributed task runs at once per queue

	// Resources is what the worker has for distributed task runs (absent:
	// nothing), and TaskSpecs what its code says of those of its tasks
	// that need resources or have a fallback.
	Resources *store.Resources          `json:"resources,omitempty"`
	TaskSpecs map[string]store.TaskSpec `json:"task_specs,omitempty"`
}

// Registered is the response to RegisterWorker.
type Registered struct {
	ID                  string `json:"id"`
	LeaseTimeoutMS      int64  `json:"lease_timeout_ms"`
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
}

// HeartbeatRequest is the (optional) body of POST
// /api/v1/workers/{id}/heartbeat. With WaitMS set and Generation equal to
// the server's current one, the server holds the request until its list of
// runs to stop changes or WaitMS passes (a long poll), so that a cancel
// reaches workers at once.
type HeartbeatRequest struct {
	WaitMS     int64 `json:"wait_ms,omitempty"`
	Generation int64 `json:"generation,omitempty"`
}

// Heartbeat is the response of POST /api/v1/workers/{id}/heartbeat: the runs
// whose work must stop (cancelling, or ended while task runs of theirs still
// run), so the worker cancels their flow and task contexts.
type Heartbeat struct {
	Cancel []string `json:"cancel"`
	// Attempts is, per run in Cancel, the attempt being stopped: work of a
	// later attempt (the run was retried since) goes on.
	Attempts map[string]int `json:"attempts,omitempty"`
	// Generation identifies this list; send it back to wait for the next.
	Generation int64 `json:"generation,omitempty"`
}

// Claim is the body of POST /api/v1/workers/{id}/claim: how many flow runs
// and task runs (per queue) the worker can take now, and how long the server
// may hold the request open waiting for work. Completions, when given, are
// applied first, as by Complete, so that a worker reports finished task runs
// and refills their slots in one round trip. Seq numbers a worker's claims
// in the order it computed them: a claim that comes back with fewer than
// asked makes the worker's claims with a lower Seq answer at once (they may
// not ask for the capacity it left), so that the worker asks again for all
// it can take. A claim without Seq is never made to answer early.
type Claim struct {
	Runs        int                       `json:"runs"`
	Tasks       map[string]int            `json:"tasks,omitempty"`
	WaitMS      int64                     `json:"wait_ms"`
	Seq         int64                     `json:"seq,omitempty"`
	Completions []store.TaskRunCompletion `json:"completions,omitempty"`

	// Free is what the worker has free for the task runs of its tasks
	// that need resources (absent: nothing); the server never hands it
	// more than fits.
	Free *store.Resources `json:"free,omitempty"`
}

// Claimed is the response to Claim. Applied lists the completions of the
// request that took effect.
type Claimed struct {
	Runs     []store.Run        `json:"runs"`
	TaskRuns []store.TaskRun    `json:"task_runs"`
	Applied  []store.TaskRunRef `json:"applied,omitempty"`
}

// Holding is the body of POST /api/v1/workers/{id}/holding: what the worker
// really holds. The server gives back everything else leased to it (claims
// whose response the worker never received).
type Holding struct {
	Runs     []string           `json:"runs"`
	TaskRuns []store.TaskRunRef `json:"task_runs"`
}

// GiveBack is the body of POST /api/v1/workers/{id}/runs/{run}/give-back:
// the worker cannot go on executing the run at Attempt (its engine could not
// record it), for Reason. The server crashes the run at once and reschedules
// it from its journal (as for an expired lease, up to the attempt limit);
// its subflow runs held by the worker become CRASHED, to be resumed by the
// run's next attempt.
type GiveBack struct {
	Attempt int    `json:"attempt"`
	Reason  string `json:"reason"`
}

// Complete is the body of POST /api/v1/workers/{id}/complete.
type Complete struct {
	Completions []store.TaskRunCompletion `json:"completions"`
}

// Completed is the response to Complete.
type Completed struct {
	Applied []store.TaskRunRef `json:"applied"`
}

// Finished is the body of POST /api/v1/engine/finished: wait up to WaitMS
// for any of Refs to reach a final state.
type Finished struct {
	Refs   []store.TaskRunRef `json:"refs"`
	WaitMS int64              `json:"wait_ms"`
}

// FinishedResult is the response to Finished.
type FinishedResult struct {
	TaskRuns []store.TaskRun `json:"task_runs"`
}

// SlotAcquired is the answer of POST /api/v1/engine/slots: whether the
// task run now holds its slots (store.SlotAcquireParams).
type SlotAcquired struct {
	Acquired bool `json:"acquired"`
}

// CreatedRun is the response of POST /api/v1/engine/runs.
type CreatedRun struct {
	Run     store.Run `json:"run"`
	Created bool      `json:"created"`
}

// BlobRef is the response of PUT /api/v1/blobs.
type BlobRef struct {
	Ref string `json:"ref"`
}

// Duration is a JSON duration in milliseconds.
func Duration(ms int64) time.Duration { return time.Duration(ms) * time.Millisecond }
