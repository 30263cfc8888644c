// Package api defines Baton's HTTP API v1: the paths and the JSON bodies
// shared by the server (internal/server) and its Go client (client).
//
// Public resources (runs, workers, queues, retention) use snake_case JSON
// views. The worker protocol under /api/v1/workers/{id}/... and the engine
// protocol under /api/v1/engine/... carry the store's records (internal/store
// types, encoded with their Go field names): they are how a worker's engine
// reads and writes through the server, never touching the database.
package api

import (
	"encoding/json"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// Error is the body of every error response.
type Error struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error: a stable code and a human message.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes.
const (
	CodeBadRequest    = "bad_request"    // 400: malformed or invalid input
	CodeNotFound      = "not_found"      // 404: unknown id or path
	CodeConflict      = "invalid_state"  // 409: the change is not allowed in the current state
	CodeTooLarge      = "body_too_large" // 413
	CodeMethod        = "method_not_allowed"
	CodeInternal      = "internal"    // 500
	CodeUnavailable   = "unavailable" // 503
	CodeUnknownWorker = "unknown_worker"
	// CodeIdempotencyConflict (409): the idempotency key belongs to a run
	// created with another flow, queue or parameters.
	CodeIdempotencyConflict = "idempotency_conflict"
	// CodeUnsupportedMedia (415): the body is not application/json.
	CodeUnsupportedMedia = "unsupported_media_type"
)

// CreateRun is the body of POST /api/v1/runs.
type CreateRun struct {
	Flow           string          `json:"flow"`
	Parameters     json.RawMessage `json:"parameters,omitempty"`
	Queue          string          `json:"queue,omitempty"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
}

// RetryRun is the optional body of POST /api/v1/runs/{id}/retry.
type RetryRun struct {
	// Parameters, when set, are merged over the run's parameters (as those
	// of a new run over the flow's defaults) and validated; the new attempt
	// and later ones run with the result, reusing every step whose input
	// did not change. The edit is recorded on the run.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// By names who asks, recorded with an edit. The API does not
	// authenticate: the server records it as given, with the address the
	// request came from. `baton runs retry` sends the OS user.
	By string `json:"by,omitempty"`
}

// DefaultQueue is the queue of runs created without one.
const DefaultQueue = "default"

// Retention is the body of POST /api/v1/retention.
type Retention struct {
	OlderThan string `json:"older_than"` // e.g. "30d", "12h"
}

// RetentionResult is the response of POST /api/v1/retention.
type RetentionResult struct {
	DeletedRuns  int `json:"deleted_runs"`
	DeletedBlobs int `json:"deleted_blobs"`
}

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
