package apitype

import (
	"encoding/json"
	"time"
)

// RunAwaitingSlot is the state of a run of a deployment that waits for a
// slot: the deployment's limit of active runs is reached (collision policy
// queue), its schedule's overlap policy buffers it, or its deployment is
// paused. It becomes SCHEDULED in the order of planned starts.
const RunAwaitingSlot = "AWAITING_SLOT"

// RunLate is the state `baton runs list` prints, and filters with --state
// LATE, for a run whose Late is true.
const RunLate = "LATE"

// DeploymentRequest is the declaration of a deployment: the body of POST
// /api/v1/deployments (create), PUT /api/v1/deployments/{name} (register:
// idempotent, what programs send for their baton.Deploy declarations) and
// POST /api/v1/deployments/{name}/update (replace the declaration). The
// operational state (paused, notes) is not part of it.
type DeploymentRequest struct {
	// Name is unique; in the path for PUT and update (the body's may be
	// empty).
	Name string `json:"name,omitempty"`
	Flow string `json:"flow"`
	// Description says what the deployment is for.
	Description string `json:"description,omitempty"`
	// Parameters is a JSON object of default parameters of the runs,
	// merged over the flow's defaults and validated against its schema.
	Parameters json.RawMessage `json:"parameters,omitempty"`
	// Queue is the work queue of its runs; empty: DefaultQueue.
	Queue string   `json:"queue,omitempty"`
	Tags  []string `json:"tags,omitempty"`
	// MaxActive bounds the deployment's active runs (0: no limit);
	// Collision says what a run beyond it does: "queue" (the default: it
	// waits in AWAITING_SLOT), "skip" (it is cancelled) or "cancel_oldest".
	MaxActive int    `json:"max_active,omitempty"`
	Collision string `json:"collision,omitempty"`
	// Schedules of the deployment (none: it runs only when asked).
	Schedules []ScheduleRequest `json:"schedules,omitempty"`
}

// ScheduleRequest is one schedule of a deployment: exactly one of Cron
// (5 or 6 fields, or a macro such as @hourly), Interval (a duration such
// as "15m", with an optional Anchor) and RRule (RFC 5545), in Timezone
// (IANA; empty: UTC).
type ScheduleRequest struct {
	Cron     string     `json:"cron,omitempty"`
	Interval string     `json:"interval,omitempty"`
	Anchor   *time.Time `json:"anchor,omitempty"`
	RRule    string     `json:"rrule,omitempty"`
	Timezone string     `json:"timezone,omitempty"`
	// Overlap is what a fire does while an earlier run of the deployment
	// is active: "skip" (the default), "buffer_one", "buffer_all",
	// "cancel_other" or "allow_all".
	Overlap string `json:"overlap,omitempty"`
	// Catchup is how far back fire times missed while no scheduler ran are
	// created: a duration, "0" (the default: only the latest missed one) or
	// "all".
	Catchup string `json:"catchup,omitempty"`
	// Jitter delays each run by a deterministic amount below it ("30s").
	Jitter string `json:"jitter,omitempty"`
}

// Deployment is a deployment with its schedules.
type Deployment struct {
	Name        string          `json:"name"`
	Flow        string          `json:"flow"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Queue       string          `json:"queue"`
	Tags        []string        `json:"tags"`
	MaxActive   int             `json:"max_active"`
	Collision   string          `json:"collision"`
	Paused      bool            `json:"paused"`
	PauseNote   string          `json:"pause_note,omitempty"`
	// Source is "code" (declared with baton.Deploy) or "api".
	Source    string     `json:"source"`
	Hash      string     `json:"hash"`
	CreatedAt time.Time  `json:"created_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	Schedules []Schedule `json:"schedules"`
	// ParameterSchema is the JSON Schema of the flow's parameters as its
	// latest worker registered it (GET of one deployment only; absent when
	// no worker registered the flow or it sent none).
	ParameterSchema json.RawMessage `json:"parameter_schema,omitempty"`
	// History is the deployment's history, oldest first (GET of one
	// deployment only): changes, pauses with their notes, and the runs its
	// policies skipped or cancelled.
	History []DeploymentHistoryEntry `json:"history,omitempty"`
}

// Schedule is one schedule of a deployment.
type Schedule struct {
	// ID is derived from the schedule's spec: a redeploy of the same spec
	// keeps it.
	ID       string     `json:"id"`
	Cron     string     `json:"cron,omitempty"`
	Interval string     `json:"interval,omitempty"`
	Anchor   *time.Time `json:"anchor,omitempty"`
	RRule    string     `json:"rrule,omitempty"`
	Timezone string     `json:"timezone,omitempty"`
	Overlap  string     `json:"overlap"`
	Catchup  string     `json:"catchup"`
	Jitter   string     `json:"jitter,omitempty"`
	Paused   bool       `json:"paused"`
	// PauseNote says why the schedule is paused.
	PauseNote string `json:"pause_note,omitempty"`
	// LastFire is the latest fire time a run was created for; NextFire the
	// one after it. Null when none.
	LastFire *time.Time `json:"last_fire"`
	NextFire *time.Time `json:"next_fire"`
}

// DeploymentHistoryEntry is one entry of a deployment's history.
type DeploymentHistoryEntry struct {
	Seq    int64           `json:"seq"`
	At     time.Time       `json:"at"`
	Actor  string          `json:"actor"`
	Action string          `json:"action"`
	Reason string          `json:"reason,omitempty"`
	Data   json.RawMessage `json:"data,omitempty"`
}

// DeploymentPauseRequest is the optional body of POST
// /api/v1/deployments/{name}/pause and /resume: a note for the history,
// and the schedule concerned (empty: the whole deployment).
type DeploymentPauseRequest struct {
	Note     string `json:"note,omitempty"`
	Schedule string `json:"schedule,omitempty"`
}

// DeploymentRunRequest is the optional body of POST
// /api/v1/deployments/{name}/run: parameters merged over the
// deployment's, then the flow's defaults, and validated.
type DeploymentRunRequest struct {
	Parameters json.RawMessage `json:"parameters,omitempty"`
}

// FireTime is one coming fire time of a deployment's schedule.
type FireTime struct {
	Schedule string    `json:"schedule"`
	At       time.Time `json:"at"`
	// Local is At in the schedule's time zone, with its offset.
	Local string `json:"local"`
}

// DeploymentNext answers GET /api/v1/deployments/{name}/next: the next
// fire times of all its schedules, in time order.
type DeploymentNext struct {
	Deployment string     `json:"deployment"`
	Fires      []FireTime `json:"fires"`
}

// BackfillRequest is the body of POST /api/v1/deployments/{name}/backfill:
// the runs of the fire times from < t <= to of every schedule are created
// (at most 10,000), SCHEDULED to start now, unless they exist.
type BackfillRequest struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// BackfillResult answers a backfill: the runs it created, and how many of
// the range's fire times had a run already.
type BackfillResult struct {
	Created []Run `json:"created"`
	Existed int   `json:"existed"`
}
