package store

import (
	"context"
	"encoding/json"
	"time"
)

// RunAwaitingSlot is the state of a run of a deployment that waits for a
// slot: its deployment's limit of active runs is reached (collision policy
// queue) or its schedule's overlap policy buffers it while the previous run
// is still active. The scheduler moves it to SCHEDULED, in the order of
// planned starts, when a slot frees; claims never hand it out.
const RunAwaitingSlot RunState = "AWAITING_SLOT"

// Collision policies of a deployment's limit of active runs (MaxActive).
const (
	CollisionQueue        = "queue"         // the new run waits in AWAITING_SLOT
	CollisionSkip         = "skip"          // the new run is CANCELLED
	CollisionCancelOldest = "cancel_oldest" // the oldest active run is cancelled
)

// Collisions lists the collision policies, the default first.
var Collisions = []string{CollisionQueue, CollisionSkip, CollisionCancelOldest}

// Overlap policies of a schedule: what a fire does while an earlier run of
// the deployment is still active.
const (
	OverlapSkip        = "skip"         // the due run is CANCELLED
	OverlapBufferOne   = "buffer_one"   // at most one due run waits (AWAITING_SLOT); later ones are skipped
	OverlapBufferAll   = "buffer_all"   // every due run waits, in order
	OverlapCancelOther = "cancel_other" // the active runs are cancelled
	OverlapAllowAll    = "allow_all"    // the due run starts anyway
)

// Overlaps lists the overlap policies, the default first.
var Overlaps = []string{OverlapSkip, OverlapBufferOne, OverlapBufferAll, OverlapCancelOther, OverlapAllowAll}

// Sources of a deployment's declaration.
const (
	SourceCode = "code" // baton.Deploy in a program, registered by its worker or `deploy`
	SourceAPI  = "api"  // the API or `baton deployments create`
)

// CatchupAll is the catch-up window of a schedule that creates every fire
// time missed while no scheduler ran.
const CatchupAll time.Duration = -1

// Deployment is a named way to run a flow: default parameters, a work
// queue, tags, a description, an optional limit of active runs, and
// schedules.
type Deployment struct {
	Name        string          `json:",omitzero"`
	Flow        string          `json:",omitzero"`
	Description string          `json:",omitzero"`
	Parameters  json.RawMessage `json:",omitzero"` // JSON object of default parameters, nil for none
	Queue       string          `json:",omitzero"`
	Tags        []string        `json:",omitzero"`
	// MaxActive bounds the deployment's active runs (0: no limit), with
	// Collision (one of Collisions) for the run that would exceed it.
	MaxActive int    `json:",omitzero"`
	Collision string `json:",omitzero"`
	// Paused stops the scheduler from creating runs; PauseNote says why.
	// Neither is part of the declaration: a redeploy keeps them.
	Paused    bool   `json:",omitzero"`
	PauseNote string `json:",omitzero"`
	Source    string `json:",omitzero"` // SourceCode or SourceAPI
	// Hash identifies the declaration (every field but the operational
	// state and the times); registering the same hash again writes nothing.
	Hash      string               `json:",omitzero"`
	CreatedAt time.Time            `json:",omitzero"`
	UpdatedAt time.Time            `json:",omitzero"`
	Schedules []DeploymentSchedule `json:",omitzero"`
	// GatedUntil is how far the scheduler applied the overlap and
	// concurrency policies to the deployment's due runs.
	GatedUntil time.Time `json:",omitzero"`
}

// DeploymentSchedule is one schedule of a deployment: exactly one of Cron,
// Interval (with Anchor) and RRule, in Timezone (IANA; empty: UTC).
type DeploymentSchedule struct {
	// ID is derived from the spec (cron, interval and anchor, rrule,
	// timezone): the same spec keeps its ID across redeploys, and with it
	// the runs already created for it.
	ID       string        `json:",omitzero"`
	Cron     string        `json:",omitzero"`
	Interval time.Duration `json:",omitzero"`
	Anchor   time.Time     `json:",omitzero"`
	RRule    string        `json:",omitzero"`
	Timezone string        `json:",omitzero"`
	// Overlap is one of Overlaps.
	Overlap string `json:",omitzero"`
	// Catchup is how far back the scheduler creates the fire times it
	// missed while it did not run: 0 only the latest missed one,
	// CatchupAll every one.
	Catchup time.Duration `json:",omitzero"`
	// Jitter delays each run by a deterministic amount in [0, Jitter).
	Jitter    time.Duration `json:",omitzero"`
	Paused    bool          `json:",omitzero"`
	PauseNote string        `json:",omitzero"`
	// LastFire is the latest fire time a run was created for (zero: none
	// yet); NextFire the fire time after it (zero: none). The scheduler
	// sets both (DeploymentFire).
	LastFire  time.Time `json:",omitzero"`
	NextFire  time.Time `json:",omitzero"`
	CreatedAt time.Time `json:",omitzero"`
}

// Deployment history actions.
const (
	ActionDeploymentCreated  = "deployment_created"
	ActionDeploymentUpdated  = "deployment_updated"
	ActionDeploymentDeleted  = "deployment_deleted"
	ActionDeploymentPaused   = "deployment_paused"
	ActionDeploymentResumed  = "deployment_resumed"
	ActionScheduleAdded      = "schedule_added"
	ActionScheduleRemoved    = "schedule_removed"
	ActionSchedulePaused     = "schedule_paused"
	ActionScheduleResumed    = "schedule_resumed"
	ActionScheduledRunSkip   = "run_skipped"   // a policy cancelled a due run before it started
	ActionScheduledRunCancel = "run_cancelled" // a policy cancelled an active run
	ActionScheduledRunQueued = "run_queued"    // a run waits for a slot (AWAITING_SLOT)
	ActionBackfill           = "backfilled"
)

// DeploymentHistoryEntry is one entry of a deployment's append-only
// history.
type DeploymentHistoryEntry struct {
	Seq        int64           `json:",omitzero"`
	Deployment string          `json:",omitzero"`
	At         time.Time       `json:",omitzero"`
	Actor      Actor           `json:",omitzero"`
	Action     string          `json:",omitzero"`
	Reason     string          `json:",omitzero"`
	Payload    json.RawMessage `json:",omitzero"`
}

// DeploymentPutParams writes a deployment's declaration. Mode is
// "create" (ErrConflict when the name exists), "update" (ErrNotFound when
// it does not) or "register" (either); an update or register whose
// Deployment.Hash equals the stored one writes nothing. The declaration replaces the stored one;
// the operational state (Paused, PauseNote, and each kept schedule's
// Paused, PauseNote, LastFire, NextFire) stays. Schedules absent from the
// new declaration are deleted, and their runs not started yet (SCHEDULED
// for after At, or AWAITING_SLOT) are cancelled. A change
// is recorded in the deployment's history by Actor, at At (zero: now).
type DeploymentPutParams struct {
	Mode       string
	Deployment Deployment
	Actor      Actor
	At         time.Time
}

// Modes of DeploymentPutParams.
const (
	PutCreate   = "create"
	PutUpdate   = "update"
	PutRegister = "register"
)

// DeploymentPauseParams pauses (Paused true) or resumes a deployment, or
// one of its schedules when ScheduleID is set, with a note recorded in the
// history. Resuming a schedule or deployment does not create the fire
// times that passed while it was paused: the scheduler starts again from
// At.
type DeploymentPauseParams struct {
	Name       string
	ScheduleID string
	Paused     bool
	Note       string
	Actor      Actor
	At         time.Time
}

// DeploymentFireParams records what the scheduler (or a backfill) planned
// for a schedule, in one transaction: Runs are created unless a run of the
// same deployment, schedule and ScheduledAt exists (then silently left
// out), each with its creation history; the schedule's LastFire and
// NextFire move to the given values when LastFire is later than the stored
// one (a backfill passes a zero LastFire and moves nothing). History is
// appended to the deployment's history.
type DeploymentFireParams struct {
	Deployment string
	ScheduleID string
	Runs       []Run
	LastFire   time.Time
	NextFire   time.Time
	History    []DeploymentHistoryEntry
	Message    string // the reason of the runs' creation entries
	At         time.Time
}

// DeploymentRunsParams selects runs of a deployment in the given states,
// ordered by planned start, then creation, then ID. ScheduledBefore, when
// set, keeps only runs planned at or before it; ScheduledAfter only those
// planned after it.
type DeploymentRunsParams struct {
	Deployment      string
	States          []RunState
	ScheduledAfter  time.Time
	ScheduledBefore time.Time
	Limit           int // 0: 1000
}

// DeploymentStore is the part of Store that keeps deployments.
type DeploymentStore interface {
	// DeploymentPut writes a declaration; see DeploymentPutParams. It
	// returns the stored deployment and whether anything changed.
	DeploymentPut(ctx context.Context, p DeploymentPutParams) (Deployment, bool, error)
	// DeploymentGet returns a deployment with its schedules, or ErrNotFound.
	DeploymentGet(ctx context.Context, name string) (Deployment, error)
	// DeploymentList returns every deployment with its schedules, by name.
	DeploymentList(ctx context.Context) ([]Deployment, error)
	// DeploymentDelete deletes a deployment and its schedules, cancels its
	// runs not started yet and records the deletion in its history (which
	// stays); ErrNotFound when it does not exist.
	DeploymentDelete(ctx context.Context, name string, actor Actor, at time.Time) error
	// DeploymentPause pauses or resumes; see DeploymentPauseParams.
	DeploymentPause(ctx context.Context, p DeploymentPauseParams) (Deployment, error)
	// DeploymentFire creates planned runs, for each of ps, in one
	// transaction; see DeploymentFireParams. It returns the runs it
	// created.
	DeploymentFire(ctx context.Context, ps ...DeploymentFireParams) ([]Run, error)
	// DeploymentDue returns, with their schedules and by name, the
	// deployments, not paused, that have a schedule, not paused, whose
	// NextFire is at or before until (those whose planned runs do not reach
	// until yet), at most limit, after the name after.
	DeploymentDue(ctx context.Context, until time.Time, after string, limit int) ([]Deployment, error)
	// DeploymentRuns lists runs of a deployment; see DeploymentRunsParams.
	DeploymentRuns(ctx context.Context, p DeploymentRunsParams) ([]Run, error)
	// DeploymentGating returns the deployments with a policy to apply
	// (MaxActive set, or a schedule whose overlap is not allow_all) that
	// have SCHEDULED runs planned after their GatedUntil and at or before
	// until, and the deployments with runs waiting for a slot
	// (AWAITING_SLOT), by name: those whose overlap and concurrency
	// policies the scheduler applies next.
	DeploymentGating(ctx context.Context, until time.Time, limit int) ([]string, error)
	// DeploymentTransition applies the conditional state change p to a run
	// (as RunTransition does) and appends hist to its deployment's history,
	// in one transaction: a policy's action on a run.
	DeploymentTransition(ctx context.Context, p RunTransitionParams, hist []DeploymentHistoryEntry) (Run, error)
	// DeploymentGate records that the policies were applied to the due runs
	// of a deployment up to until (it never goes back).
	DeploymentGate(ctx context.Context, name string, until time.Time) error
	// DeploymentHistoryAppend appends entries to deployments' histories.
	DeploymentHistoryAppend(ctx context.Context, entries []DeploymentHistoryEntry) error
	// DeploymentHistoryList returns a deployment's history after the seq
	// after, oldest first, at most limit (0: 1000) entries; it also lists
	// the history of a deleted deployment.
	DeploymentHistoryList(ctx context.Context, name string, after int64, limit int) ([]DeploymentHistoryEntry, error)
}

// SchedulerLocker is implemented by backends where several servers share
// the database (PostgreSQL): exactly one of them schedules at a time.
type SchedulerLocker interface {
	// SchedulerLock tries to become the scheduler without waiting: it
	// returns a nil lock when another process holds it. The lock lasts
	// until Release, or until its connection is lost (then another
	// process may take it).
	SchedulerLock(ctx context.Context) (SchedulerLock, error)
}

// SchedulerLock is a held scheduler lock. Its methods are safe for
// concurrent use.
type SchedulerLock interface {
	// Check reports an error when the lock may be gone (its connection
	// does not answer); the holder then stops scheduling and releases it.
	Check(ctx context.Context) error
	// Release gives the lock back; safe to call twice.
	Release()
}
