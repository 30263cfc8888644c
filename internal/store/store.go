// Package store defines the persistence contract of Baton: flow runs, task
// runs, their state-change events, logs and the cross-run result cache.
//
// Every backend (SQLite in internal/store/sqlite, PostgreSQL later) implements
// Store and must pass the conformance suite in internal/store/storetest.
// Backends translate their driver errors into the sentinels of this package
// in exactly one place each.
package store

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
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

// RunStates lists every flow-run state, for validation of user input.
var RunStates = []RunState{RunScheduled, RunPending, RunRunning, RunCompleted, RunFailed,
	RunCancelling, RunCancelled, RunCrashed, RunPaused, RunAwaitingRetry}

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
	ID            string
	Flow          string
	State         RunState
	Attempt       int
	ParentRunID   string // set for subflow runs
	ParentStepKey string // the step key of the subflow call in the parent
	Parameters    json.RawMessage
	Result        json.RawMessage // nil until COMPLETED
	ResultRef     string          // blob reference when the result is large
	Error         *ErrorInfo
	CreatedAt     time.Time
	UpdatedAt     time.Time
	StartedAt     time.Time // zero until the first attempt starts
	EndedAt       time.Time // zero until a final state
	OwnerHost     string    // host of the process executing the run
	OwnerPID      int       // pid of that process
	OwnerStart    int64     // start time of that process (pid reuse guard)
}

// TaskRun is one execution of a task (all its attempts) or one subflow call
// inside a flow run, identified within the run by its step Key.
type TaskRun struct {
	ID            string
	RunID         string
	Key           string
	Task          string
	ChildRunID    string // for subflow steps
	State         TaskState
	Attempts      int
	FlowAttempt   int // the flow-run attempt that created it
	InputHash     string
	Input         json.RawMessage
	Result        json.RawMessage
	ResultRef     string
	Error         *ErrorInfo
	CachedFrom    string // task-run ID the CACHED result came from
	CachedFromRun string // run ID the CACHED result came from
	CreatedAt     time.Time
	StartedAt     time.Time
	EndedAt       time.Time
	// History is the task run's state transitions, oldest first. They live
	// in the row itself so that a step's commit writes one record; EventList
	// returns them merged with the run's events.
	History []Transition
}

// Transition is one state change of a task run.
type Transition struct {
	At      time.Time `json:"at"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	Cause   string    `json:"cause,omitempty"`
	Message string    `json:"message,omitempty"`
}

// JournalEntry is the part of a successful task run that replay needs.
type JournalEntry struct {
	Key        string
	Task       string
	InputHash  string
	Result     json.RawMessage
	ResultRef  string
	ChildRunID string
}

// Event records one state transition of a run or task run, or a human action.
type Event struct {
	ID        int64
	RunID     string
	TaskRunID string // empty for run-level events
	TaskKey   string
	From      string
	To        string
	Cause     string // "engine", "user", "policy", "timer", "worker:<name>", ...
	Message   string
	At        time.Time
}

// LogRecord is one log line emitted through baton.Logger.
type LogRecord struct {
	ID        int64
	RunID     string
	TaskRunID string
	TaskKey   string
	Level     string
	Message   string
	Attrs     json.RawMessage // JSON object of the record's attributes
	At        time.Time
}

// CacheEntry is a cached task result shared across runs.
type CacheEntry struct {
	Key       string
	Task      string
	Result    json.RawMessage
	ResultRef string
	RunID     string
	TaskRunID string
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never expires
}

// Batch is a set of writes applied in one transaction. Runs and TaskRuns are
// upserts keyed by ID (the full row is written); Events and Logs are appended;
// Cache entries are upserts keyed by Key.
type Batch struct {
	Runs     []Run
	TaskRuns []TaskRun
	Events   []Event
	Logs     []LogRecord
	Cache    []CacheEntry
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
	Limit       int // 0 means 100
}

// RunTransitionParams is a conditional state change of a run.
type RunTransitionParams struct {
	ID   string
	From []RunState // the change applies only if the run is in one of these
	// Update is applied to the current row when the condition holds; the
	// returned Run is written back.
	Update func(r *Run)
}

// TaskRunListParams filters TaskRunList.
type TaskRunListParams struct {
	RunID string
	Key   string // optional exact key
}

// LogListParams filters LogList.
type LogListParams struct {
	RunID   string
	TaskKey string // optional: only this task run's logs (by step key)
	Limit   int    // 0: no limit
}

// Store persists Baton's records. Implementations are safe for concurrent use
// by multiple goroutines and by multiple processes sharing one database.
type Store interface {
	// BatchWrite applies all writes of b in one transaction.
	BatchWrite(ctx context.Context, b Batch) error
	// RunGet returns the run with the given ID or ErrNotFound.
	RunGet(ctx context.Context, id string) (Run, error)
	// RunList returns runs, newest first.
	RunList(ctx context.Context, p RunListParams) ([]Run, error)
	// RunTransition atomically applies p.Update when the run is in one of
	// p.From; otherwise it returns ErrConflict (wrapped, with the current
	// state in the message). It also records an event from the old to the
	// new state with the given cause and message.
	RunTransition(ctx context.Context, p RunTransitionParams, cause, message string) (Run, error)
	// RunChildGet returns the subflow run created by the step key of a parent run.
	RunChildGet(ctx context.Context, parentRunID, stepKey string) (Run, error)
	// TaskRunList returns a run's task runs ordered by creation time, then ID.
	TaskRunList(ctx context.Context, p TaskRunListParams) ([]TaskRun, error)
	// JournalList returns, for each step key of a run, its latest (by
	// creation time, then ID) successful (COMPLETED or CACHED) task run.
	JournalList(ctx context.Context, runID string) ([]JournalEntry, error)
	// EventList returns a run's history in time order: its events merged
	// with the History of its task runs (as events with TaskRunID and
	// TaskKey set). Ties keep events before task-run transitions.
	EventList(ctx context.Context, runID string) ([]Event, error)
	// LogList returns a run's logs in order.
	LogList(ctx context.Context, p LogListParams) ([]LogRecord, error)
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
