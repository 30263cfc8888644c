// Package store defines the persistence contract of Baton: flow runs, task
// runs, their state-change events, logs and the cross-run result cache.
//
// Every backend (SQLite in internal/store/sqlite, PostgreSQL in
// internal/store/postgres) implements Store and passes the conformance
// suite in internal/store/storetest.
// Backends translate their driver errors into the sentinels of this package
// in exactly one place each.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Sentinel errors every backend returns (wrapped) so callers can test them
// with errors.Is.
var (
	// ErrNotFound means the requested run, task run or cache entry does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a conditional update found the row in another state.
	ErrConflict = errors.New("conflict")
	// ErrNotBatonStore means the database exists but was not created by Baton.
	ErrNotBatonStore = errors.New("not a Baton store")
	// ErrSchemaTooNew means the database was migrated by a newer Baton.
	ErrSchemaTooNew = errors.New("store schema is newer than this binary")
	// ErrUnavailable means the database could not be reached or is shutting
	// down or starting up: the operation may succeed if tried again later.
	// Whether a write that failed so was applied is unknown.
	ErrUnavailable = errors.New("database unavailable")
)

// RunState is the state of a flow run.
type RunState string

// Flow-run states. See docs/architecture.md for the state machine.
const (
	RunScheduled     RunState = "SCHEDULED"
	RunPending       RunState = "PENDING"
	RunRunning       RunState = "RUNNING"
	RunCompleted     RunState = "COMPLETED"
	RunFailed        RunState = "FAILED"
	RunCancelling    RunState = "CANCELLING"
	RunCancelled     RunState = "CANCELLED"
	RunCrashed       RunState = "CRASHED"
	RunPaused        RunState = "PAUSED"
	RunAwaitingRetry RunState = "AWAITING_RETRY"
)

// Final reports whether no further transition happens without a user action.
func (s RunState) Final() bool {
	switch s {
	case RunCompleted, RunFailed, RunCancelled, RunCrashed:
		return true
	}
	return false
}

// LeasedRunStates are the states in which a run is held by whoever executes
// it: a worker's lease (heartbeats extend it, LeasesExpire and WorkerRelease
// take it back) or a local process (which must be alive). AWAITING_RETRY is
// one of them: the executor waits out the flow's retry delay itself.
var LeasedRunStates = []RunState{RunPending, RunRunning, RunCancelling, RunAwaitingRetry}

// RunStates lists every flow-run state, for validation of user input.
var RunStates = []RunState{RunScheduled, RunPending, RunRunning, RunCompleted, RunFailed,
	RunCancelling, RunCancelled, RunCrashed, RunPaused, RunAwaitingRetry, RunAwaitingSlot}

// TaskState is the state of a task run (or of a subflow step).
type TaskState string

// Task-run states.
const (
	TaskPending       TaskState = "PENDING"
	TaskRunning       TaskState = "RUNNING"
	TaskCompleted     TaskState = "COMPLETED"
	TaskFailed        TaskState = "FAILED"
	TaskTimedOut      TaskState = "TIMED_OUT"
	TaskCached        TaskState = "CACHED"
	TaskAwaitingRetry TaskState = "AWAITING_RETRY"
	TaskCancelled     TaskState = "CANCELLED"
	TaskCrashed       TaskState = "CRASHED"
)

// Succeeded reports whether the task run produced a usable result.
func (s TaskState) Succeeded() bool { return s == TaskCompleted || s == TaskCached }

// Final reports whether the task run has ended (TaskRunFinished returns it).
func (s TaskState) Final() bool {
	switch s {
	case TaskCompleted, TaskFailed, TaskTimedOut, TaskCached, TaskCancelled, TaskCrashed:
		return true
	}
	return false
}

// ErrorInfo is a recorded error: its message, its Go type and the messages
// of the chain of wrapped errors, outermost first.
type ErrorInfo struct {
	Message string   `json:"message"`
	Type    string   `json:"type,omitempty"`
	Kind    string   `json:"kind,omitempty"` // "timeout", "permanent", "cancelled", "nondeterminism", "panic", ...
	Chain   []string `json:"chain,omitempty"`
}

// Run is one flow run. Its ID stays the same across attempts.
type Run struct {
	ID            string          `json:",omitzero"`
	Flow          string          `json:",omitzero"`
	State         RunState        `json:",omitzero"`
	Attempt       int             `json:",omitzero"`
	ParentRunID   string          `json:",omitzero"` // set for subflow runs
	ParentStepKey string          `json:",omitzero"` // the step key of the subflow call in the parent
	Parameters    json.RawMessage `json:",omitzero"`
	Result        json.RawMessage `json:",omitzero"` // nil until COMPLETED
	ResultRef     string          `json:",omitzero"` // blob reference when the result is large (then Result is nil)
	Error         *ErrorInfo      `json:",omitzero"`
	CreatedAt     time.Time       `json:",omitzero"`
	UpdatedAt     time.Time       `json:",omitzero"`
	StartedAt     time.Time       `json:",omitzero"` // zero until the first attempt starts
	EndedAt       time.Time       `json:",omitzero"` // zero until a final state
	OwnerHost     string          `json:",omitzero"` // host of the process executing the run
	OwnerPID      int             `json:",omitzero"` // pid of that process
	OwnerStart    int64           `json:",omitzero"` // start time of that process (pid reuse guard)
	// Queue is the work queue the run waits in for a worker ("" for runs
	// started locally, which never wait).
	Queue string `json:",omitzero"`
	// IdempotencyKey, when set, is unique: creating a second run with the
	// same key returns the first.
	IdempotencyKey string `json:",omitzero"`
	// WorkerID is the worker holding the run's lease (empty when local).
	WorkerID string `json:",omitzero"`
	// LeaseUntil is when the worker's lease expires; zero when not leased.
	LeaseUntil time.Time `json:",omitzero"`
	// Attempts records what the run's attempts did, oldest first: the steps
	// an attempt reused and ran (recorded when it ends) and the parameter
	// edit that started it. Attempts with nothing recorded are absent.
	Attempts []AttemptInfo `json:",omitzero"`
	// PauseRequest is a pause asked from outside (runs pause) that the
	// engine has not made yet; nil when none.
	PauseRequest *PauseRequest `json:",omitzero"`
	// Deployment is the deployment that created the run, ScheduleID its
	// schedule (empty for a run started by hand), both fixed at creation
	// (RunCreate, DeploymentFire) and never changed by writes.
	Deployment string `json:",omitzero"`
	ScheduleID string `json:",omitzero"`
	// ScheduledAt is the run's planned start when it differs from
	// CreatedAt (zero: planned at its creation; see PlannedAt): no claim
	// hands the run out before it.
	ScheduledAt time.Time `json:",omitzero"`
}

// PlannedAt is the run's planned start: ScheduledAt, or CreatedAt when
// that is zero.
func (r *Run) PlannedAt() time.Time {
	if r.ScheduledAt.IsZero() {
		return r.CreatedAt
	}
	return r.ScheduledAt
}

// AttemptInfo is what a run records of one of its attempts.
type AttemptInfo struct {
	Attempt int `json:"attempt"`
	// Steps counts the attempt's steps; nil until the attempt ended (an
	// attempt given back by its worker, or whose process died, has none).
	Steps *StepCounts `json:"steps,omitempty"`
	// Edit is the change of parameters the attempt was started with, if any.
	Edit *ParamsEdit `json:"edit,omitempty"`
}

// StepCounts counts the steps of one attempt of a run: those answered from
// the journal of earlier attempts, and those it ran (task runs and subflow
// steps it recorded, cached ones included, and distributed steps of an
// earlier attempt it waited for).
type StepCounts struct {
	Reused int `json:"reused"`
	Ran    int `json:"ran"`
}

// ParamsEdit records that a retry changed a run's parameters: the values
// before and after, who asked, and when.
type ParamsEdit struct {
	From json.RawMessage `json:"from"`
	To   json.RawMessage `json:"to"`
	By   string          `json:"by"`
	At   time.Time       `json:"at"`
}

// AttemptRecord returns the record of attempt n, or nil.
func (r *Run) AttemptRecord(n int) *AttemptInfo {
	for i := range r.Attempts {
		if r.Attempts[i].Attempt == n {
			return &r.Attempts[i]
		}
	}
	return nil
}

// TaskRun is one execution of a task (all its attempts) or one subflow call
// inside a flow run, identified within the run by its step Key.
type TaskRun struct {
	ID    string `json:",omitzero"`
	RunID string `json:",omitzero"`
	Key   string `json:",omitzero"`
	Task  string `json:",omitzero"`
	// Identity is what replay matches the step by: for a step of a derived
	// key, the hash of its task (or subflow), the task's version and its
	// input hash, then "." and its occurrence among identical calls of its
	// attempt; for an explicit key, the hash alone. Empty for rows written
	// before identities existed.
	Identity    string          `json:",omitzero"`
	ChildRunID  string          `json:",omitzero"` // for subflow steps
	State       TaskState       `json:",omitzero"`
	Attempts    int             `json:",omitzero"`
	FlowAttempt int             `json:",omitzero"` // the flow-run attempt that created it
	InputHash   string          `json:",omitzero"` // hash of the whole input (both pieces when InputRef is set)
	Input       json.RawMessage `json:",omitzero"`
	// InputRef, when set, is the blob reference of the large parts of the
	// input, and Input holds the rest: blob.Join(Input, blob) is the input.
	// Inputs that share their large parts (one dataset passed to many
	// tasks) share the blob.
	InputRef      string          `json:",omitzero"`
	Result        json.RawMessage `json:",omitzero"`
	ResultRef     string          `json:",omitzero"`
	Error         *ErrorInfo      `json:",omitzero"`
	CachedFrom    string          `json:",omitzero"` // task-run ID the CACHED result came from
	CachedFromRun string          `json:",omitzero"` // run ID the CACHED result came from
	CreatedAt     time.Time       `json:",omitzero"`
	StartedAt     time.Time       `json:",omitzero"`
	EndedAt       time.Time       `json:",omitzero"`
	// Queue, when set, makes this a distributed task run: it is PENDING
	// until a worker serving Queue that registered Task claims it.
	Queue      string    `json:",omitzero"`
	WorkerID   string    `json:",omitzero"` // the worker holding the lease of a distributed task run
	LeaseUntil time.Time `json:",omitzero"` // zero when not leased
	// Tags are the task's tags (baton.Tags), sorted: a distributed task run
	// with tags waits in AWAITING_SLOT and starts only holding a slot of
	// every tag of them that has a concurrency limit (see Limit).
	Tags []string `json:",omitzero"`
	// Deps are the nodes of the run graph this step depends on (see
	// docs/architecture.md, "The run graph"): the keys of the steps whose
	// results the flow code had received when it made the call and of the
	// steps it waited for (baton.WaitFor), a map named by its Map key. Nil
	// when none (and for rows written before the graph was recorded).
	Deps []string `json:",omitzero"`
	// Map is the key of the map (one Map call) the step is an item of; ""
	// for a step of its own. The graph draws a map as one node.
	Map string `json:",omitzero"`
	// History is the task run's state transitions, oldest first. They live
	// in the row itself so that a step's commit writes one record; EventList
	// returns them merged with the run's events.
	History []Transition `json:",omitzero"`
}

// Transition is one state change of a task run.
type Transition struct {
	At      time.Time `json:"at"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Cause   string    `json:"cause,omitempty"`
	Message string    `json:"message,omitempty"`
}

// JournalEntry is the part of a task run that replay needs: a successful
// one (State COMPLETED or CACHED); a distributed one still in flight
// (State PENDING or RUNNING), which a new attempt waits for instead of
// dispatching the step again; or a subflow step that did not succeed, whose
// child run a new attempt resumes.
type JournalEntry struct {
	Key        string          `json:",omitzero"`
	Task       string          `json:",omitzero"`
	Identity   string          `json:",omitzero"`
	InputHash  string          `json:",omitzero"`
	Result     json.RawMessage `json:",omitzero"`
	ResultRef  string          `json:",omitzero"`
	ChildRunID string          `json:",omitzero"`
	ID         string          `json:",omitzero"`
	State      TaskState       `json:",omitzero"`
}

// Event records one state transition of a run or task run, or a human action.
type Event struct {
	ID        int64     `json:",omitzero"`
	RunID     string    `json:",omitzero"`
	TaskRunID string    `json:",omitzero"` // empty for run-level events
	TaskKey   string    `json:",omitzero"`
	From      string    `json:",omitzero"`
	To        string    `json:",omitzero"`
	Cause     string    `json:",omitzero"` // "engine", "user", "policy", "timer", "worker:<name>", ...
	Message   string    `json:",omitzero"`
	At        time.Time `json:",omitzero"`
}

// LogRecord is one log line emitted through baton.Logger.
type LogRecord struct {
	ID        int64           `json:",omitzero"`
	RunID     string          `json:",omitzero"`
	TaskRunID string          `json:",omitzero"`
	TaskKey   string          `json:",omitzero"`
	Level     string          `json:",omitzero"`
	Message   string          `json:",omitzero"`
	Attrs     json.RawMessage `json:",omitzero"` // JSON object of the record's attributes
	At        time.Time       `json:",omitzero"`
}

// CacheEntry is a cached task result shared across runs.
type CacheEntry struct {
	Key       string          `json:",omitzero"`
	Task      string          `json:",omitzero"`
	Result    json.RawMessage `json:",omitzero"`
	ResultRef string          `json:",omitzero"`
	RunID     string          `json:",omitzero"`
	TaskRunID string          `json:",omitzero"`
	CreatedAt time.Time       `json:",omitzero"`
	ExpiresAt time.Time       `json:",omitzero"` // zero: never expires
}

// Batch is a set of writes applied in one transaction. Runs and TaskRuns are
// upserts keyed by ID (the full row is written); Events and Logs are appended;
// Cache entries are upserts keyed by Key. A task run already in a final state,
// or a distributed one (Queue set) that a worker has claimed, is never
// overwritten: a resent batch cannot undo a completion or a claim.
type Batch struct {
	Runs     []Run        `json:",omitzero"`
	TaskRuns []TaskRun    `json:",omitzero"`
	Events   []Event      `json:",omitzero"`
	Logs     []LogRecord  `json:",omitzero"`
	Cache    []CacheEntry `json:",omitzero"`
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool {
	return len(b.Runs) == 0 && len(b.TaskRuns) == 0 && len(b.Events) == 0 && len(b.Logs) == 0 && len(b.Cache) == 0
}

// RunListParams filters RunList. Zero fields do not filter.
type RunListParams struct {
	Flow        string
	State       RunState
	ParentRunID string
	Queue       string
	Limit       int // 0 means 100
	// Search, when set, keeps the runs whose ID, flow name or parameters
	// contain it (case-insensitive for ASCII); Offset skips that many runs
	// of the list (the web UI's pages).
	Search string
	Offset int
	// Deployment keeps the runs created by that deployment; Tag the runs
	// of the deployments with that tag (a run carries its deployment's
	// tags; exact match). CreatedFrom and CreatedTo, when set, keep the
	// runs created at or after CreatedFrom and before CreatedTo.
	Deployment  string
	Tag         string
	CreatedFrom time.Time
	CreatedTo   time.Time
}

// RunStatsParams selects the runs RunStats counts: created at or after
// Since and before Until, in buckets of Bucket from Since (bucket i holds
// the runs created in [Since+i*Bucket, Since+(i+1)*Bucket)). Bucket must
// be positive and Until after Since.
type RunStatsParams struct {
	Since, Until time.Time
	Bucket       time.Duration
}

// RunBucketCount is how many runs of a bucket of RunStats are in a state
// now; buckets and states without runs are absent. RunStats orders them
// by bucket, then state.
type RunBucketCount struct {
	Bucket int
	State  RunState
	N      int
}

// Owner is who executes a run: a local process, or a worker with a lease.
type Owner struct {
	Host       string
	PID        int
	Start      int64
	WorkerID   string
	LeaseUntil time.Time
}

// RunTransitionParams is a conditional state change of a run. It applies
// only when the run is in one of From (and, when Attempt is non-zero, at that
// attempt); otherwise RunTransition returns ErrConflict. The change records
// an event from the old to the new state with Cause and Message, at At.
// To is required.
//
// Fields follow the new state, in this order:
//   - NextAttempt increments Attempt; a non-empty Queue replaces the queue;
//     a non-nil Owner replaces OwnerHost, OwnerPID, OwnerStart, WorkerID and
//     LeaseUntil, except that the lease of a run the same worker already
//     holds never gets shorter (heartbeats may have extended it).
//   - Entering RUNNING sets StartedAt (when zero) and clears Result,
//     ResultRef and Error.
//   - COMPLETED stores Result and ResultRef and clears Error (no inline
//     Result when ResultRef is set: a record never holds both).
//   - FAILED, CANCELLED and CRASHED store Error (even nil) and clear Result
//     and ResultRef.
//   - Entering SCHEDULED clears the owner, WorkerID and LeaseUntil.
//   - Any other state keeps Error unless Error is non-nil (AWAITING_RETRY
//     usually records the failure that caused the retry).
//   - A final state sets EndedAt and clears LeaseUntil (WorkerID stays, as
//     the record of who ran it); any other state clears EndedAt.
//   - UpdatedAt is set to At.
//   - Steps, when set, is recorded as the step counts of the attempt the
//     run was at before NextAttempt (the attempt this transition ends).
//   - Parameters, when non-nil, replace the run's parameters, and the change
//     is recorded (old and new values, EditBy, At) as the Edit of the
//     attempt the run is at after NextAttempt.
//
// Entering CANCELLING or a final state also cancels, in the same
// transaction, the run's PENDING task runs (see StopsTaskRuns): nothing may
// start them any more.
type RunTransitionParams struct {
	ID          string
	From        []RunState
	To          RunState
	Attempt     int    // if non-zero, the run's attempt must equal it
	NextAttempt bool   // increment the attempt number
	Queue       string // if non-empty, the run's new queue (e.g. a local run retried on a queue)
	Owner       *Owner
	Result      json.RawMessage
	ResultRef   string
	Error       *ErrorInfo
	Cause       string
	Message     string
	At          time.Time   // zero means now
	Steps       *StepCounts // the step counts of the attempt that ends
	// Parameters replace the run's (see above) when non-nil; omitted from
	// the JSON of the engine protocol when nil, where a null would read
	// back as a non-nil "null".
	Parameters json.RawMessage `json:",omitzero"`
	EditBy     string          `json:",omitzero"` // who changed the parameters
	// Actor is who made the change, for the run's history (zero: the
	// system). The change is recorded as a history entry of Action (empty:
	// derived from the states, TransitionAction) with Message as its
	// reason, and a change of Parameters as a second entry
	// (ActionParametersEdited, with the old and new values).
	Actor  Actor  `json:",omitzero"`
	Action string `json:",omitzero"`
	// History holds more entries to append in the transaction of the
	// change (their RunID, At and Actor default to the run's, the change's
	// and Actor).
	History []HistoryEntry `json:",omitzero"`
	// WaitingOn, when set, makes the change conditional on these wait
	// steps of the run all still WAITING (ErrConflict otherwise): a worker
	// suspends a run only while nothing it waits for has arrived.
	WaitingOn []TaskRunRef `json:",omitzero"`
}

// RunCreateParams creates a run. When Run.IdempotencyKey is set and a run
// with that key exists, that run is returned instead (created is false) and
// nothing is written. The run's creation is recorded as an event from "" to
// its state with Cause and Message, at CreatedAt. A zero CreatedAt is set to
// now and a zero UpdatedAt to CreatedAt. Creating a run whose ID exists
// (without a matching idempotency key) fails with ErrConflict.
//
// The creation is also the first entry of the run's history (ActionCreated,
// by Actor, zero meaning the system, with Message as its reason).
type RunCreateParams struct {
	Run     Run
	Cause   string
	Message string
	Actor   Actor `json:",omitzero"`
}

// RunClaimParams claims SCHEDULED runs for a worker whose planned start
// (ScheduledAt) is at or before At: the first (by ScheduledAt, then
// CreatedAt, then ID) at most Limit runs whose Queue is in Queues and whose
// Flow is in Flows move to PENDING, leased to WorkerID until LeaseUntil
// (the owner process fields are cleared, UpdatedAt is set to At), with an
// event SCHEDULED -> PENDING of cause "worker:<WorkerID>" at At (zero: now). No run is ever handed to
// two claimers, also under concurrent claims. Empty Queues or Flows, or a
// Limit below 1, claim nothing.
type RunClaimParams struct {
	WorkerID   string
	Queues     []string
	Flows      []string
	Limit      int
	LeaseUntil time.Time
	At         time.Time
}

// TaskRunClaimParams claims PENDING distributed task runs (Queue non-empty),
// then for what is left of Limit AWAITING_SLOT ones that have a free slot of
// every limited tag they carry (see Limit; oldest first, transition
// AWAITING_SLOT -> RUNNING),
// of RUNNING runs, and of PAUSED ones (suspended while workers execute
// their task runs; a completion reschedules them): the oldest (by CreatedAt) at most Limit whose Queue is in
// Queues and Task in Tasks move to RUNNING (StartedAt set when zero, a transition PENDING ->
// RUNNING of cause "worker:<WorkerID>" appended to History), leased to
// WorkerID until LeaseUntil. At zero means now. No task run is handed to two
// claimers. Empty Queues or Tasks, or a Limit below 1, claim nothing. The
// claimed task runs are returned without their History (it is stored; the
// claimant records its own transitions).
type TaskRunClaimParams struct {
	WorkerID   string
	Queues     []string
	Tasks      []string
	Limit      int
	LeaseUntil time.Time
	At         time.Time

	// Need, when not zero, is what each task run of Tasks needs (see
	// ClaimParams.Free): the entry is claimed after every entry without a
	// Need, and takes at most its Limit less what the earlier entries of
	// the same Queues took in this claim (they share the queue's free
	// slots), and at most as many as fit in what is left of Free.
	Need Resources
}

// ClaimParams is one claim of a worker (see Store.Claim). A zero Runs (or
// one with a Limit below 1) claims no run; Tasks holds one task-run claim
// per queue the worker has free slots in.
type ClaimParams struct {
	Completions []TaskRunCompletion
	Runs        RunClaimParams
	Tasks       []TaskRunClaimParams

	// Free is what the worker has free for the entries of Tasks with a
	// Need, taken in their order: a claim never hands out more than it.
	Free Resources
}

// Worker returns the ID of the worker the claim is for.
func (p ClaimParams) Worker() string {
	if p.Runs.WorkerID != "" {
		return p.Runs.WorkerID
	}
	for _, t := range p.Tasks {
		if t.WorkerID != "" {
			return t.WorkerID
		}
	}
	for _, c := range p.Completions {
		return c.WorkerID
	}
	return ""
}

// ClaimResult is what a Claim did: the refs of the completions it applied,
// the runs it claimed, and the task runs it claimed for each entry of
// ClaimParams.Tasks (TaskRuns[i] for Tasks[i]).
type ClaimResult struct {
	Applied  []TaskRunRef
	Runs     []Run
	TaskRuns [][]TaskRun
}

// TaskRunRef identifies a task run (its primary key).
type TaskRunRef struct {
	RunID string `json:"run_id"`
	Key   string `json:"key"`
	ID    string `json:"id"`
}

// TaskRunCompletion is a worker's report of the end of a distributed task
// run. It applies only while the task run is RUNNING and leased to WorkerID.
// It sets State, Attempts, Result, ResultRef, Error and EndedAt (At; zero
// means now), clears LeaseUntil (WorkerID stays) and appends History; when
// History does not end in State, the store appends a transition RUNNING ->
// State of cause "worker:<WorkerID>".
type TaskRunCompletion struct {
	Ref       TaskRunRef      `json:",omitzero"`
	WorkerID  string          `json:",omitzero"`
	State     TaskState       `json:",omitzero"` // COMPLETED, FAILED, TIMED_OUT or CANCELLED
	Attempts  int             `json:",omitzero"`
	Result    json.RawMessage `json:",omitzero"`
	ResultRef string          `json:",omitzero"`
	Error     *ErrorInfo      `json:",omitzero"`
	History   []Transition    `json:",omitzero"` // appended to the task run's history
	Cache     *CacheEntry     `json:",omitzero"` // written with the completion when set
	At        time.Time       `json:",omitzero"`
}

// Worker is a registered worker process. Empty Queues, Flows, Tasks and
// Slots read back as nil.
type Worker struct {
	ID        string
	Name      string
	Host      string
	PID       int
	Queues    []string
	Flows     []string
	Tasks     []string
	Capacity  int            // flow runs it executes at once
	Slots     map[string]int // distributed task runs it executes at once, per queue
	StartedAt time.Time
	LastSeen  time.Time

	// Resources is what the worker has for the task runs it claims, and
	// TaskSpecs what its code says of those of its tasks that need
	// resources or have a fallback (nil when none).
	Resources Resources
	TaskSpecs map[string]TaskSpec
}

// Flow is what the latest worker registration (with any server sharing the
// store) said about a flow: its parameters' JSON Schema and the JSON of its
// default parameters, each nil when the worker sent none.
type Flow struct {
	Name         string
	Parameters   json.RawMessage
	Defaults     json.RawMessage
	RegisteredAt time.Time
}

// FlowUpsertParams records worker registrations of flows: each of Flows
// replaces what is recorded under its name (the latest registration wins).
type FlowUpsertParams struct {
	Flows []Flow
}

// LeasesExtendParams names the workers whose leases a server extends.
// The store reads no clock: the caller passes the times, from its own.
type LeasesExtendParams struct {
	// WorkerIDs are the workers heard from.
	WorkerIDs []string
	// Until is the new end of the leases of everything the workers hold
	// (runs in LeasedRunStates, task runs RUNNING); a lease never gets
	// shorter.
	Until time.Time
	// At is when the workers were heard from, recorded as their last_seen
	// (which never goes back). Zero means the system's now.
	At time.Time
}

// LiveWorkerWindow is how recently a worker must have been seen for its
// queues to be listed as served (QueueList's seenSince).
const LiveWorkerWindow = time.Minute

// LeasesReleaseParams names a worker and what it still holds.
type LeasesReleaseParams struct {
	WorkerID     string
	KeepRuns     []string
	KeepTaskRuns []TaskRunRef
}

// LeaseExpiry is the outcome of LeasesExpire.
type LeaseExpiry struct {
	Crashed     []Run // runs whose lease expired (now CRASHED, SCHEDULED or CANCELLED)
	Rescheduled int   // of which went back to SCHEDULED for a new attempt
	TaskRuns    int   // distributed task runs put back to PENDING (AWAITING_SLOT when they carry tags)
}

// RunStop names a run whose work must stop, at the attempt it had then:
// work of a later attempt (after a retry) is not concerned.
type RunStop struct {
	RunID   string `json:"run_id"`
	Attempt int    `json:"attempt"`
}

// LeasesExpireParams says which leases LeasesExpire takes back: runs
// (PENDING, RUNNING, CANCELLING, AWAITING_RETRY: LeasedRunStates) and task
// runs (RUNNING) whose lease ended before At (zero: now); a zero
// LeaseUntil is no lease and never expires. A CANCELLING run becomes
// CANCELLED; any other run becomes CRASHED (an ErrorInfo of kind "crashed"
// naming the worker) and, while its attempt is below MaxAttempts, goes
// through AWAITING_RETRY back to SCHEDULED with the next attempt number and
// no owner. Events have cause "lease" (and "policy" for the retry). Task
// runs go back to PENDING (AWAITING_SLOT when they carry tags: their slots
// are free) without a worker, with a History transition of
// cause "lease". Then the PENDING task runs of every run that is CANCELLING
// or ended (among them those taken back as CANCELLED, or CRASHED without a
// new attempt) are cancelled as RunTransition does. WorkerRelease and
// LeasesRelease do the same for what they give back.
//
// With RunID set, a worker gives back one run at once: only that run is
// taken back, whatever its lease, and only while it is in LeasedRunStates,
// leased to WorkerID and (when Attempt is non-zero) at Attempt;
// the transitions are the same with cause "worker:<WorkerID>", Reason names
// why in the message and the error, and task runs are left alone. Crashed is
// then empty when the run was not held so (already given back, or taken
// over).
type LeasesExpireParams struct {
	At          time.Time
	MaxAttempts int
	RunID       string
	WorkerID    string
	Attempt     int
	Reason      string
}

// GiveBackReason is the reason a backend records when a worker gives a run
// back (LeasesExpireParams.RunID): it names the worker and why, with NUL
// bytes and invalid UTF-8 escaped (why is often the error that could not be
// written) and at most 2,000 bytes of why.
func GiveBackReason(workerID, why string) string {
	why = strings.ToValidUTF8(strings.ReplaceAll(why, "\x00", `\x00`), "\uFFFD")
	if len(why) > 2000 {
		why = strings.ToValidUTF8(why[:2000], "") + "…"
	}
	if why == "" {
		why = "no reason given"
	}
	return fmt.Sprintf("worker %s gave the run back: %s", workerID, why)
}

// QueueStats counts what waits and runs in one queue. Task counts are of
// distributed task runs (non-empty Queue).
type QueueStats struct {
	Queue         string
	RunsScheduled int
	RunsRunning   int // PENDING, RUNNING or CANCELLING
	TasksPending  int
	TasksRunning  int
	// TasksAwaitingSlot counts the task runs with tags waiting (see
	// TaskAwaitingSlot).
	TasksAwaitingSlot int
	OldestWaiting     time.Time // creation time of the oldest SCHEDULED run; zero if none
}

// RetentionParams deletes up to Limit (0: 1000) runs in a final state that
// ended before Before, oldest first, with their task runs, events, logs and
// the cache entries they created.
type RetentionParams struct {
	Before time.Time
	Limit  int
}

// RetentionResult reports a RetentionDelete.
type RetentionResult struct {
	Runs int
	// OrphanRefs are the blob references (ResultRef, InputRef) of the
	// deleted rows that no remaining run, task run or cache entry uses,
	// sorted, without duplicates: the caller may delete those blobs, unless
	// a writer stored one again meanwhile (blob.Store.Remove checks).
	OrphanRefs []string
}

// Notification is a wake-up sent through Notifier.
type Notification struct {
	Kind    string // "runs" (Payload: queue), "tasks" (queue), "done" (run ID), "cancel" (run ID)
	Payload string
}

// Notifier is implemented by backends that can wake up waiters in other
// processes (PostgreSQL LISTEN/NOTIFY) or in this one (SQLite). Backends send,
// after the commit of the write that caused it: "runs" when a run with a
// queue becomes SCHEDULED (RunCreate, RunTransition, LeasesExpire,
// WorkerRelease, or a BatchWrite of such a run), "tasks" when a distributed
// task run becomes PENDING (BatchWrite, LeasesExpire, WorkerRelease), "done"
// when one finishes (TaskRunComplete, and a run's PENDING task runs
// cancelled with it), "cancel" when a run becomes CANCELLING or ends while
// distributed task runs of it are RUNNING (RunTransition, LeasesExpire,
// WorkerRelease: the payload is the run ID). A notification may be sent without a change (waiters must
// check) and several changes may share one notification.
type Notifier interface {
	// Subscribe delivers the notifications of the writes committed after it
	// returns, until ctx is done (or the store is closed); then the channel
	// is closed. Delivery is best effort: a slow subscriber may miss some,
	// so waiters also poll rarely.
	Subscribe(ctx context.Context) (<-chan Notification, error)
}

// TaskRunListParams filters and pages TaskRunList.
type TaskRunListParams struct {
	RunID  string
	Key    string      // optional exact key
	ID     string      // optional exact task-run ID
	States []TaskState // optional: only task runs in one of these states
	// Brief leaves out the large parts of the rows: Input, Result and
	// History are read as nil (InputRef and ResultRef are kept), for
	// reads of every task run of a large run that need the rest.
	Brief bool
	// Slowest lists only task runs that started and ended, longest
	// (EndedAt-StartedAt) first, then in creation order.
	Slowest bool
	Offset  int // skip this many
	Limit   int // 0: no limit
}

// TaskRunCount is how many task runs of a run have one task and state.
type TaskRunCount struct {
	Task  string
	State TaskState
	N     int
}

// LogListParams filters LogList.
type LogListParams struct {
	RunID   string
	TaskKey string // optional: only this step's logs (by step key: every task run of the key)
	// TaskRunID, when set, lists only the logs of this task run (one of
	// the step's attempts' task runs).
	TaskRunID string
	Limit     int // 0: no limit
	// After, when set, lists only the records after the one with this ID
	// (LogRecord.ID): the next page, or the lines written since.
	After int64
	// Search, when set, lists only the records whose message contains it,
	// ASCII case-insensitively; LIKE's wildcards in it are literal.
	Search string
	// MinLevel, when set, lists only the records at this level or above:
	// one of LogLevels (see LogLevelAtLeast). "" (or DEBUG) lists all.
	MinLevel string
}

// LogLevels are the named levels of log records, lowest first: the names
// of log/slog's levels. A record's level is such a name, optionally with
// an offset (slog writes INFO+2 for a level between INFO and WARN).
var LogLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

// CheckLogLevel validates a minimum level that users give (field names
// the input: "query parameter \"level\"", "--level"), case-insensitively,
// and returns it upper-cased; "" stays "" (every line).
func CheckLogLevel(field, value string) (string, error) {
	v := strings.ToUpper(strings.TrimSpace(value))
	if v == "" {
		return "", nil
	}
	if !slices.Contains(LogLevels, v) {
		return "", fmt.Errorf("%s must be one of %s (the lowest level to list), got %q", field, strings.Join(LogLevels, ", "), value)
	}
	return v, nil
}

// LogLevelAtLeast returns the level prefixes a record's level (upper-cased)
// starts with when it is at min or above, nil for every record (min
// DEBUG, the lowest), or ok false when min is not one of LogLevels (it is
// matched case-insensitively). A level that starts with none of the names
// (written by another SDK) counts as DEBUG.
func LogLevelAtLeast(min string) (prefixes []string, ok bool) {
	i := slices.Index(LogLevels, strings.ToUpper(strings.TrimSpace(min)))
	if i < 0 {
		return nil, false
	}
	if i == 0 {
		return nil, true
	}
	return LogLevels[i:], true
}

// Store persists Baton's records. Implementations are safe for concurrent use
// by multiple goroutines and by multiple processes sharing one database.
type Store interface {
	// DeploymentStore keeps deployments and their schedules.
	DeploymentStore
	// BatchWrite applies all writes of b in one transaction.
	BatchWrite(ctx context.Context, b Batch) error
	// RunGet returns the run with the given ID or ErrNotFound.
	RunGet(ctx context.Context, id string) (Run, error)
	// RunList returns runs, newest first.
	RunList(ctx context.Context, p RunListParams) ([]Run, error)
	// RunStats counts the runs created in [p.Since, p.Until) by bucket of
	// creation time and state; see RunStatsParams.
	RunStats(ctx context.Context, p RunStatsParams) ([]RunBucketCount, error)
	// RunTransition applies a conditional state change (see
	// RunTransitionParams) and returns the new row; ErrConflict (wrapped,
	// naming the current state) when the condition fails, ErrNotFound when
	// the run does not exist.
	RunTransition(ctx context.Context, p RunTransitionParams) (Run, error)
	// RunCreate inserts a run with an event, or returns the run that has the
	// same idempotency key (created false).
	RunCreate(ctx context.Context, p RunCreateParams) (r Run, created bool, err error)
	// RunClaim hands SCHEDULED runs to a worker; see RunClaimParams.
	RunClaim(ctx context.Context, p RunClaimParams) ([]Run, error)
	// TaskRunClaim hands PENDING distributed task runs to a worker.
	TaskRunClaim(ctx context.Context, p TaskRunClaimParams) ([]TaskRun, error)
	// TaskRunComplete applies completions; it returns the refs it applied
	// (the others were no longer leased to their worker).
	TaskRunComplete(ctx context.Context, cs []TaskRunCompletion) ([]TaskRunRef, error)
	// Claim applies a worker's claim in one transaction (and, on
	// PostgreSQL, one round trip for its statements): completions as
	// TaskRunComplete does, then runs as RunClaim does, then task runs as
	// TaskRunClaim does for each entry of p.Tasks (those with a Need last,
	// within p.Free: see TaskRunClaimParams.Need). It is a worker's report
	// that claims the slots it freed, or a claim for several kinds of
	// capacity at once. On error nothing is applied.
	Claim(ctx context.Context, p ClaimParams) (ClaimResult, error)
	// WaitBegin records a wait step and answers it at once from what
	// arrived before; see WaitBeginParams.
	WaitBegin(ctx context.Context, p WaitBeginParams) (TaskRun, error)
	// InputSend delivers input (or a resume) to a run's wait, or keeps it
	// for the run's first wait of its key; see InputSendParams.
	InputSend(ctx context.Context, p InputSendParams) (InputResult, error)
	// RunPause asks a run to pause at its next step boundary; see
	// RunPauseParams.
	RunPause(ctx context.Context, p RunPauseParams) (Run, error)
	// RunUpdate changes the parameters of a run that is not finished; see
	// RunUpdateParams.
	RunUpdate(ctx context.Context, p RunUpdateParams) (Run, error)
	// EventSend records an event and resolves the waits it matches.
	EventSend(ctx context.Context, p EventSendParams) (EventResult, error)
	// TimersFire resolves the waits whose deadline passed and returns how
	// many; see TimersFireParams.
	TimersFire(ctx context.Context, p TimersFireParams) (int, error)
	// TimersNext returns the earliest deadline of the open waits, or the
	// zero time when none has one.
	TimersNext(ctx context.Context) (time.Time, error)
	// TaskRunFinished returns those of refs that are in a final state
	// (COMPLETED, FAILED, TIMED_OUT, CACHED, CANCELLED or CRASHED), in any
	// order; unknown refs are left out.
	TaskRunFinished(ctx context.Context, refs []TaskRunRef) ([]TaskRun, error)
	// LeasesExtend extends the leases of everything the workers hold; see
	// LeasesExtendParams.
	LeasesExtend(ctx context.Context, p LeasesExtendParams) error
	// LeasesExpire takes back expired leases; see LeasesExpireParams.
	LeasesExpire(ctx context.Context, p LeasesExpireParams) (LeaseExpiry, error)
	// WorkerUpsert registers or updates a worker (keyed by ID; a zero
	// LastSeen is recorded as now).
	WorkerUpsert(ctx context.Context, w Worker) error
	// FlowUpsert records the flows a worker registered, in one transaction;
	// see FlowUpsertParams.
	FlowUpsert(ctx context.Context, p FlowUpsertParams) error
	// FlowGet returns the latest registration of a flow, or ErrNotFound.
	FlowGet(ctx context.Context, name string) (Flow, error)
	// FlowList returns the latest registration of every flow, ordered by
	// name.
	FlowList(ctx context.Context) ([]Flow, error)
	// WorkerList returns the registered workers seen at or after the given
	// time, ordered by ID.
	WorkerList(ctx context.Context, seenSince time.Time) ([]Worker, error)
	// TaskRunFallback moves PENDING task runs to their fallback task; see
	// TaskRunFallbackParams.
	TaskRunFallback(ctx context.Context, p TaskRunFallbackParams) (int, error)
	// WorkerRelease deregisters a worker and gives back what it holds: its
	// PENDING, RUNNING and AWAITING_RETRY runs go back to SCHEDULED (next attempt, events of
	// cause "worker:<id>"), its CANCELLING runs become CANCELLED (cancelling
	// their PENDING task runs), its RUNNING task runs go back to PENDING.
	// Releasing an unknown worker is no error.
	WorkerRelease(ctx context.Context, workerID string) error
	// LeasesRelease gives back what is leased to a worker but not in the
	// given lists: runs it claimed and has not started (PENDING) go back to
	// SCHEDULED with the next attempt, RUNNING distributed task runs back to
	// PENDING. A worker calls it when a claim's response was lost, reporting
	// what it really holds.
	LeasesRelease(ctx context.Context, p LeasesReleaseParams) error
	// RunStopList returns the runs whose work must stop: the CANCELLING
	// runs, and the runs in a final state that still have RUNNING distributed
	// task runs, ordered by run ID. Servers return them to workers in
	// heartbeat responses.
	RunStopList(ctx context.Context) ([]RunStop, error)
	// QueueList returns statistics of every queue that has unfinished runs
	// or PENDING or RUNNING task runs, and of every queue served by a worker
	// seen at or after seenSince (with zero counts), ordered by name.
	// Callers pass their clock's now minus LiveWorkerWindow.
	QueueList(ctx context.Context, seenSince time.Time) ([]QueueStats, error)
	// RunsHeld counts the runs in LeasedRunStates per worker ID (runs
	// without a worker are not counted).
	RunsHeld(ctx context.Context) (map[string]int, error)
	// RunsScheduledAhead counts the SCHEDULED runs of queue created before
	// a run created at createdAt with ID id (by creation time, then ID):
	// the runs ahead of it in its queue.
	RunsScheduledAhead(ctx context.Context, queue string, createdAt time.Time, id string) (int, error)
	// RetentionDelete deletes old finished runs in one small transaction.
	RetentionDelete(ctx context.Context, p RetentionParams) (RetentionResult, error)
	// RunChildGet returns the subflow run created by the step key of a parent run.
	RunChildGet(ctx context.Context, parentRunID, stepKey string) (Run, error)
	// TaskRunList returns a run's task runs ordered by creation time, then ID
	// (or slowest first with p.Slowest), filtered and paged by p.
	TaskRunList(ctx context.Context, p TaskRunListParams) ([]TaskRun, error)
	// TaskRunCounts counts a run's task runs per task and state, ordered by
	// task, then state: a summary that reads no task run rows into memory.
	TaskRunCounts(ctx context.Context, runID string) ([]TaskRunCount, error)
	// JournalList returns, for each step key of a run, its latest (by
	// creation time, then ID) successful (COMPLETED or CACHED) task run,
	// and also its latest task run that is either distributed (Queue set)
	// and still PENDING or RUNNING, or a subflow step (ChildRunID set) in
	// any other state, when that one is newer than the successful one (or
	// there is none). Entries are ordered by key, a key's successful entry
	// first.
	JournalList(ctx context.Context, runID string) ([]JournalEntry, error)
	// GraphGet returns the aggregated graph of a run (see Graph): its steps
	// of their own, and its maps with their items counted per state in the
	// database. An unknown run, or one without task runs, has an empty
	// graph.
	GraphGet(ctx context.Context, p GraphGetParams) (Graph, error)
	// MapItemList returns a page of the items of a map of a run: the
	// latest task run of each item key of p.Map, in creation order (then
	// ID).
	MapItemList(ctx context.Context, p MapItemListParams) ([]TaskRun, error)
	// EventList returns a run's history in time order: its events merged
	// with the History of its task runs (as events with TaskRunID and
	// TaskKey set). Ties keep events before task-run transitions.
	EventList(ctx context.Context, runID string) ([]Event, error)
	// HistoryAppend appends entries to the histories of their runs, in one
	// transaction, in order; an entry's zero At is the time of the write,
	// its zero Actor the system. It fails with ErrNotFound when a run does
	// not exist, and appends nothing then. Changes of state record their
	// own entries in their transaction (RunCreate, RunTransition and the
	// take-backs of LeasesExpire, WorkerRelease and LeasesRelease);
	// HistoryAppend is for actions that change nothing else.
	HistoryAppend(ctx context.Context, entries []HistoryEntry) error
	// HistoryList returns a page of a run's history, oldest first (see
	// HistoryListParams); ErrNotFound when the run does not exist. No
	// method changes or deletes an entry; RetentionDelete deletes a run's
	// history with the run.
	HistoryList(ctx context.Context, p HistoryListParams) ([]HistoryEntry, error)
	// LogList returns a run's logs in order.
	LogList(ctx context.Context, p LogListParams) ([]LogRecord, error)
	// LimitSet creates or changes the concurrency limit of a tag; see
	// LimitSetParams.
	LimitSet(ctx context.Context, p LimitSetParams) (Limit, error)
	// LimitDelete removes the limit of a tag (ErrNotFound when it has
	// none): its task runs start without waiting for a slot.
	LimitDelete(ctx context.Context, tag string) error
	// LimitList returns the limits of tags (every limit when tags is
	// empty), ordered by tag, each with the task runs holding its slots and
	// the count of those waiting for one.
	LimitList(ctx context.Context, tags []string) ([]Limit, error)
	// SlotAcquire writes a local task run RUNNING with its slots when every
	// limited tag it carries has a free one, and reports whether it did;
	// see SlotAcquireParams. It serializes with claims exactly as they do
	// with each other.
	SlotAcquire(ctx context.Context, p SlotAcquireParams) (bool, error)
	// SlotRenew extends the lease of a local task run's slots; see
	// SlotRenewParams. A task run no longer RUNNING or held by another
	// holder is left alone (no error).
	SlotRenew(ctx context.Context, p SlotRenewParams) error
	// QueueSet declares or changes a work queue; see QueueSetParams.
	QueueSet(ctx context.Context, p QueueSetParams) (WorkQueue, error)
	// QueueDeclared returns the declared work queues, ordered by name.
	QueueDeclared(ctx context.Context) ([]WorkQueue, error)
	// CacheGet returns the unexpired cache entry for key at time now, or ErrNotFound.
	CacheGet(ctx context.Context, key string, now time.Time) (CacheEntry, error)
	// Close releases the store's resources.
	Close() error
}

// SortEvents orders a merged history by time; run events (no TaskRunID)
// come before task-run transitions at the same instant, and the order is
// otherwise stable.
func SortEvents(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		rank := func(e Event) int {
			if e.TaskRunID == "" {
				return 0
			}
			return 1
		}
		return cmp.Compare(rank(a), rank(b))
	})
}

// JournalFromRows reduces a run's candidate journal rows, ordered by key,
// creation time and ID, to the entries JournalList returns: per key the last
// successful row, and the last in-flight row when it comes after it.
func JournalFromRows(rows []JournalEntry) []JournalEntry {
	var out []JournalEntry
	for i := 0; i < len(rows); {
		j := i
		var ok, flight *JournalEntry
		for ; j < len(rows) && rows[j].Key == rows[i].Key; j++ {
			if rows[j].State.Succeeded() {
				ok, flight = &rows[j], nil
			} else {
				flight = &rows[j]
			}
		}
		if ok != nil {
			out = append(out, *ok)
		}
		if flight != nil {
			out = append(out, *flight)
		}
		i = j
	}
	return out
}

// ApplyTransition changes r as p describes (the rules documented on
// RunTransitionParams) at time at, and returns the event to record. Backends
// call it inside the transaction that checked p's condition.
func ApplyTransition(r *Run, p *RunTransitionParams, at time.Time) Event {
	old := r.State
	r.State = p.To
	if p.Steps != nil {
		steps := *p.Steps
		r.attemptRecord(r.Attempt).Steps = &steps
	}
	if p.NextAttempt {
		r.Attempt++
	}
	if p.Parameters != nil {
		r.attemptRecord(r.Attempt).Edit = &ParamsEdit{From: r.Parameters, To: p.Parameters, By: p.EditBy, At: at.UTC()}
		r.Parameters = p.Parameters
	}
	if p.Queue != "" {
		r.Queue = p.Queue
	}
	if o := p.Owner; o != nil {
		r.OwnerHost, r.OwnerPID, r.OwnerStart = o.Host, o.PID, o.Start
		// A worker's lease never gets shorter: heartbeats may have extended
		// it since the worker read the run.
		if o.WorkerID == "" || o.WorkerID != r.WorkerID || o.LeaseUntil.After(r.LeaseUntil) {
			r.LeaseUntil = o.LeaseUntil
		}
		r.WorkerID = o.WorkerID
	}
	switch p.To {
	case RunRunning:
		if r.StartedAt.IsZero() {
			r.StartedAt = at
		}
		r.Result, r.ResultRef, r.Error = nil, "", nil
	case RunCompleted:
		r.Result, r.ResultRef, r.Error = InlineResult(p.Result, p.ResultRef), p.ResultRef, nil
	case RunFailed, RunCancelled, RunCrashed:
		r.Result, r.ResultRef, r.Error = nil, "", p.Error
	case RunScheduled:
		r.OwnerHost, r.OwnerPID, r.OwnerStart = "", 0, 0
		r.WorkerID, r.LeaseUntil = "", time.Time{}
		fallthrough
	default:
		if p.Error != nil {
			r.Error = p.Error
		}
	}
	if p.To.Final() {
		r.EndedAt = at
		r.LeaseUntil = time.Time{}
	} else {
		r.EndedAt = time.Time{}
	}
	r.UpdatedAt = at
	return Event{RunID: r.ID, From: string(old), To: string(r.State), Cause: p.Cause, Message: p.Message, At: at}
}

// attemptRecord returns the record of attempt n, adding it (in order) when
// there is none.
func (r *Run) attemptRecord(n int) *AttemptInfo {
	r.Attempts = slices.Clone(r.Attempts) // the caller's copy of the run may share them
	if a := r.AttemptRecord(n); a != nil {
		return a
	}
	i, _ := slices.BinarySearchFunc(r.Attempts, n, func(a AttemptInfo, n int) int { return cmp.Compare(a.Attempt, n) })
	r.Attempts = slices.Insert(r.Attempts, i, AttemptInfo{Attempt: n})
	return &r.Attempts[i]
}

// StopsTaskRuns reports whether a run entering state to cancels its
// PENDING task runs: it is being cancelled or has ended, so nothing may start
// them any more.
func StopsTaskRuns(to RunState) bool { return to == RunCancelling || to.Final() }

// StoppedError is the error recorded on a PENDING task run cancelled because
// its run entered state (see StopsTaskRuns).
func StoppedError(state RunState) *ErrorInfo {
	return &ErrorInfo{Message: StoppedMessage(state), Kind: "cancelled"}
}

// StoppedMessage is the History message of a PENDING task run cancelled
// because its run entered state (it may have run before and been given
// back by its worker).
func StoppedMessage(state RunState) string {
	if state == RunCancelling {
		return "cancelled: the run is being cancelled"
	}
	return "cancelled: the run ended " + string(state)
}

// StopPendingTaskRun cancels a PENDING task run t of a run that entered
// state at time at (see StopsTaskRuns), appending a History transition of
// cause.
func StopPendingTaskRun(t *TaskRun, state RunState, cause string, at time.Time) {
	from := t.State
	if from == "" {
		from = TaskPending
	}
	t.History = append(t.History, Transition{At: at.UTC(), From: string(from), To: string(TaskCancelled),
		Cause: cause, Message: StoppedMessage(state)})
	t.State, t.Error, t.EndedAt = TaskCancelled, StoppedError(state), at
	t.WorkerID, t.LeaseUntil = "", time.Time{}
}
