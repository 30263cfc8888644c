// Package apitype holds the JSON documents of Baton's HTTP API v1 (under
// Prefix): what the server answers and accepts for runs, workers, queues
// and retention, and its error responses. The Go client (package client)
// takes and returns these types, the server (and `baton ... --json`)
// encodes them, so one definition is the contract: field names and JSON
// shapes change only compatibly.
//
// Times are RFC 3339 with nanoseconds. Parameters, inputs and results are
// the recorded JSON values, embedded as they are (null when absent), with
// large results read from the blob store. The package imports only the
// standard library.
package apitype

import (
	"encoding/json"
	"time"
)

// Prefix is the path prefix of every API route.
const Prefix = "/api/v1"

// DefaultQueue is the queue of runs created without one.
const DefaultQueue = "default"

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

// ErrorBody describes an error: a stable code and a human message.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes of ErrorBody.
const (
	CodeBadRequest    = "bad_request"    // 400: malformed or invalid input
	CodeNotFound      = "not_found"      // 404: unknown id or path
	CodeConflict      = "invalid_state"  // 409: the change is not allowed in the current state
	CodeInvalidInput  = "invalid_input"  // 422: input that fails its wait's JSON Schema
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

// States of a run (Run.State).
const (
	RunScheduled     = "SCHEDULED"
	RunPending       = "PENDING"
	RunRunning       = "RUNNING"
	RunAwaitingRetry = "AWAITING_RETRY"
	RunPaused        = "PAUSED"
	RunCancelling    = "CANCELLING"
	RunCompleted     = "COMPLETED"
	RunFailed        = "FAILED"
	RunCancelled     = "CANCELLED"
	RunCrashed       = "CRASHED"
)

// Ended reports whether a run in state has ended: COMPLETED, FAILED,
// CANCELLED or CRASHED. It changes again only when someone retries it (or,
// for CRASHED, resumes it).
func Ended(state string) bool {
	switch state {
	case RunCompleted, RunFailed, RunCancelled, RunCrashed:
		return true
	}
	return false
}

// CreateRunRequest is the body of POST /api/v1/runs.
type CreateRunRequest struct {
	Flow string `json:"flow"`
	// Parameters is a JSON object merged over the flow's defaults and
	// validated against its parameter schema; empty: the defaults.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Queue is the queue whose workers may execute the run; empty:
	// DefaultQueue.
	Queue string `json:"queue,omitempty"`
	// IdempotencyKey, when set, creates the run only once: the same key
	// with the same request returns the first run.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
}

// RetryRunRequest is the optional body of POST /api/v1/runs/{id}/retry.
type RetryRunRequest struct {
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

// InputRequest is the body of POST /api/v1/runs/{id}/input: input for
// the run's wait for Key (the value of a baton.WaitForInput), or, with no
// Value, the resume of a baton.Pause. An empty Key names the run's only
// open wait for input or a resume.
type InputRequest struct {
	Key   string          `json:"key,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
}

// InputResult answers POST /api/v1/runs/{id}/input.
type InputResult struct {
	RunID string `json:"run_id"`
	Key   string `json:"key,omitempty"`
	// Step is the wait step the input resolved; empty when the run does
	// not wait for the key yet and the input is kept for its first wait.
	Step string `json:"step,omitempty"`
	Kept bool   `json:"kept"`
	// Resumed is true when the run was PAUSED on a worker's queue and is
	// SCHEDULED again (a local run's process goes on by itself).
	Resumed bool `json:"resumed"`
}

// EventRequest is the body of POST /api/v1/events: an event that wakes
// the runs waiting for Name (baton.WaitForEvent) whose match Payload fits.
type EventRequest struct {
	Name    string          `json:"name"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// EventResult answers POST /api/v1/events.
type EventResult struct {
	Seq int64 `json:"seq"` // the event's number in the store
	// Delivered lists the waits it resolved; an event no run waits for is
	// kept for waits that begin within 24 hours.
	Delivered []EventDelivery `json:"delivered"`
}

// EventDelivery is one wait an event resolved.
type EventDelivery struct {
	RunID string `json:"run_id"`
	Step  string `json:"step"`
}

// RetentionRequest is the body of POST /api/v1/retention.
type RetentionRequest struct {
	OlderThan string `json:"older_than"` // e.g. "30d", "12h"
}

// RetentionResult is the response of POST /api/v1/retention.
type RetentionResult struct {
	DeletedRuns  int `json:"deleted_runs"`
	DeletedBlobs int `json:"deleted_blobs"`
}

// ErrorInfo is a recorded error. All four fields are always present; chain
// is an empty array when the error wraps nothing.
type ErrorInfo struct {
	Message string `json:"message"`
	// Type is the Go type of the error, such as "*fault.TaskError" (which
	// package baton names TaskError).
	Type string `json:"type"`
	// Kind classifies it: "timeout", "panic", "permanent", "cancelled",
	// "nondeterminism", or empty.
	Kind string `json:"kind"`
	// Chain lists the errors it wraps, outermost first, as "TYPE: message".
	Chain []string `json:"chain"`
}

// Run is a flow run. started_at and ended_at are null until set.
type Run struct {
	ID            string          `json:"id"`
	Flow          string          `json:"flow"`
	State         string          `json:"state"`
	Attempt       int             `json:"attempt"`
	CreatedAt     time.Time       `json:"created_at"`
	StartedAt     *time.Time      `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	ParentRunID   string          `json:"parent_run_id,omitempty"`
	ParentStepKey string          `json:"parent_step_key,omitempty"`
	Parameters    json.RawMessage `json:"parameters"`
	// Result is the flow's result once the run COMPLETED.
	Result   json.RawMessage `json:"result"`
	Error    *ErrorInfo      `json:"error"`
	Queue    string          `json:"queue,omitempty"`
	WorkerID string          `json:"worker_id,omitempty"`
	// WaitingReason says why a SCHEDULED run has not started (no live
	// worker serves the run's flow and queue, its position in the queue,
	// a paused queue), or what its waiting task runs wait for (a tag
	// limit's slots and who holds them, no live worker serving their task,
	// no live worker serving their queue that could ever fit what they
	// need).
	WaitingReason string `json:"waiting_reason,omitempty"`
	// Attempts is what the run recorded of its attempts, oldest first;
	// absent for runs recorded before attempts were.
	Attempts []Attempt `json:"attempts,omitempty"`
	// PauseRequest is a pause asked with POST /api/v1/runs/{id}/pause that
	// the run has not made yet (it pauses at its next step boundary).
	PauseRequest *PauseRequest `json:"pause_request,omitempty"`
	// ScheduledAt is the run's planned start: its creation, or for a run
	// of a deployment's schedule the fire time (plus jitter). No worker
	// starts it before.
	ScheduledAt time.Time `json:"scheduled_at"`
	// Deployment and Schedule name the deployment and schedule that
	// created the run.
	Deployment string `json:"deployment,omitempty"`
	Schedule   string `json:"schedule,omitempty"`
	// Late is true for a run that has not started by its ScheduledAt plus
	// the grace period (a server setting, default 1 minute): SCHEDULED or
	// AWAITING_SLOT past that time. baton runs list prints it as LATE.
	Late bool `json:"late,omitempty"`
}

// PauseRequest is a pending request to pause a run: who asked, why, when.
type PauseRequest struct {
	By     string    `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// PauseRunRequest is the (optional) body of POST /api/v1/runs/{id}/pause:
// the reason, shown with the pause and recorded in the history.
type PauseRunRequest struct {
	Reason string `json:"reason,omitempty"`
}

// UpdateRunRequest is the body of POST /api/v1/runs/{id}/update: a change
// of a running or paused run's parameters, merged over the run's current
// ones and validated against the flow's parameter schema as a retry's
// edited parameters are. The flow reads them with baton.Settings.
type UpdateRunRequest struct {
	Parameters json.RawMessage `json:"parameters"`
	// Reason says why, recorded in the history.
	Reason string `json:"reason,omitempty"`
}

// Attempt is what a run recorded of one attempt: how many steps it reused
// from the journal of earlier attempts and how many it ran (null until the
// attempt ended, or when it ended without its process recording it), and
// the parameter edit it was started with.
type Attempt struct {
	Attempt int         `json:"attempt"`
	Steps   *StepCounts `json:"steps"`
	Edit    *ParamsEdit `json:"edit,omitempty"`
}

// StepCounts counts an attempt's steps.
type StepCounts struct {
	Reused int `json:"reused"`
	Ran    int `json:"ran"`
}

// ParamsEdit is a retry's change of a run's parameters.
type ParamsEdit struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
	By   string          `json:"by"`
	At   time.Time       `json:"at"`
}

// TaskRun is a task run (or a subflow step, which has child_run_id).
// duration_ms is null until the task run has ended. input is the whole
// input, also when its large parts are stored as the blob input_ref
// (shared by the task runs whose inputs have the same large parts).
type TaskRun struct {
	ID            string          `json:"id"`
	Key           string          `json:"key"`
	Task          string          `json:"task"`
	State         string          `json:"state"`
	Attempts      int             `json:"attempts"`
	StartedAt     *time.Time      `json:"started_at"`
	EndedAt       *time.Time      `json:"ended_at"`
	DurationMS    *int64          `json:"duration_ms"`
	CachedFrom    string          `json:"cached_from,omitempty"`
	CachedFromRun string          `json:"cached_from_run,omitempty"`
	ChildRunID    string          `json:"child_run_id,omitempty"`
	Input         json.RawMessage `json:"input"`
	InputRef      string          `json:"input_ref,omitempty"`
	Result        json.RawMessage `json:"result"`
	Error         *ErrorInfo      `json:"error"`
	// Queue is the work queue of a distributed task run.
	Queue string `json:"queue,omitempty"`
	// Tags are the task run's tags (baton.Tags).
	Tags []string `json:"tags,omitempty"`

	// WaitingReason says why a PENDING task run of a task that needs
	// resources may never start: no live worker serving its queue could
	// ever fit it (and whether it falls back to another task).
	WaitingReason string `json:"waiting_reason,omitempty"`
}

// Event is a state change. task_key is empty for run-level events; from is
// empty for a creation.
type Event struct {
	At      time.Time `json:"at"`
	TaskKey string    `json:"task_key"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Cause   string    `json:"cause"`
	Message string    `json:"message"`
}

// RunDetail is GET /api/v1/runs/{id} (and `baton runs show --json`): the
// run with its task runs (in creation order) and its events (in order).
type RunDetail struct {
	Run
	TaskRuns []TaskRun `json:"task_runs"`
	Events   []Event   `json:"events"`
}

// TaskRunCount counts the task runs of a run with one task and state.
type TaskRunCount struct {
	Task  string `json:"task"`
	State string `json:"state"`
	N     int    `json:"n"`
}

// RunSummary summarises the task runs of a run without listing them:
// counts per task and state (ordered by task, then state), the first
// failed ones (FAILED, TIMED_OUT, CANCELLED, CRASHED) and the slowest.
type RunSummary struct {
	TaskRuns    int            `json:"task_runs"`
	Counts      []TaskRunCount `json:"counts"`
	FailedTotal int            `json:"failed_total"`
	Failed      []TaskRun      `json:"failed"`
	Slowest     []TaskRun      `json:"slowest"`
}

// RunPage is GET /api/v1/runs/{id} with paging parameters (PageQuery): the
// run detail with a page of its task runs and of its events, their totals,
// and a summary when asked for.
type RunPage struct {
	RunDetail
	TaskRunsTotal *int        `json:"task_runs_total,omitempty"`
	EventsTotal   *int        `json:"events_total,omitempty"`
	Summary       *RunSummary `json:"summary,omitempty"`
	// ParametersSchema is the JSON Schema of the flow's parameters that
	// its workers registered, with the summary (for the form of a retry
	// with edited parameters); absent when none is known.
	ParametersSchema json.RawMessage `json:"parameters_schema,omitempty"`
}

// Log is a log record of a run.
type Log struct {
	// ID orders a run's logs: GET /api/v1/runs/{id}/logs?after=ID lists
	// the ones after it.
	ID        int64           `json:"id,omitempty"`
	At        time.Time       `json:"at"`
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	TaskKey   string          `json:"task_key,omitempty"`
	TaskRunID string          `json:"task_run_id,omitempty"`
	Attrs     json.RawMessage `json:"attrs,omitempty"`
}

// Worker is a live worker.
type Worker struct {
	ID        string         `json:"id"`
	Name      string         `json:"name"`
	Host      string         `json:"host"`
	PID       int            `json:"pid"`
	Queues    []string       `json:"queues"`
	Flows     []string       `json:"flows"`
	Tasks     []string       `json:"tasks"`
	Capacity  int            `json:"capacity"`
	Slots     map[string]int `json:"slots,omitempty"`
	StartedAt time.Time      `json:"started_at"`
	LastSeen  time.Time      `json:"last_seen"`
	Runs      []string       `json:"runs"` // runs it holds now

	// Resources is what the worker has for task runs that need resources
	// (absent when it registered none).
	Resources *Resources `json:"resources,omitempty"`
}

// Resources is an amount of compute: CPUs (fractions down to a
// thousandth), memory in bytes, GPUs.
type Resources struct {
	CPU         float64 `json:"cpu"`
	MemoryBytes int64   `json:"memory_bytes"`
	GPU         int64   `json:"gpu"`
}

// Queue is a queue's depth.
type Queue struct {
	Queue         string     `json:"queue"`
	RunsScheduled int        `json:"runs_scheduled"`
	RunsRunning   int        `json:"runs_running"`
	TasksPending  int        `json:"tasks_pending"`
	TasksRunning  int        `json:"tasks_running"`
	OldestWaiting *time.Time `json:"oldest_waiting"`
	// TasksAwaitingSlot counts the task runs with tags that wait
	// (AWAITING_SLOT), besides TasksPending.
	TasksAwaitingSlot int `json:"tasks_awaiting_slot"`
	// Declared is whether the queue was declared (queues create; default
	// always is); an undeclared queue has priority 0 and is not paused.
	Declared bool `json:"declared"`
	Priority int  `json:"priority"`
	// Limit is the queue's concurrency limit, 0 for none: at most Limit
	// of its flow runs are held by workers and, counted apart, at most
	// Limit of its task runs are RUNNING, across every worker and server.
	Limit       int        `json:"limit"`
	Paused      bool       `json:"paused"`
	PauseNote   string     `json:"pause_note,omitempty"`
	PausedBy    string     `json:"paused_by,omitempty"`
	PausedAt    *time.Time `json:"paused_at,omitempty"`
	Description string     `json:"description,omitempty"`
}

// QueueRequest is the body of POST /api/v1/queues (Name required) and of
// POST /api/v1/queues/{name}[/pause|/resume]; nil fields keep their value.
type QueueRequest struct {
	Name     string `json:"name,omitempty"`
	Priority *int   `json:"priority,omitempty"`
	// Limit sets the queue's concurrency limit (see Queue.Limit): 0 or
	// more, 0 lifts it.
	Limit       *int    `json:"limit,omitempty"`
	Description *string `json:"description,omitempty"`
	// Note says why a queue is paused (pause only).
	Note string `json:"note,omitempty"`
}
