package store

import (
	"fmt"
	"time"
)

// The run graph: what GraphGet and MapItemList read. A run's graph has one
// node per step of its own (the latest task run of each step key that is
// no map item: tasks, subflow calls, waits) and one per map (all task runs
// with one TaskRun.Map, counted per state in SQL, never read one by one);
// its edges are the TaskRun.Deps of the nodes. See docs/architecture.md,
// "The run graph".

// GraphStepsMax bounds the steps GraphGet returns when GraphGetParams.Steps
// is zero.
const GraphStepsMax = 2000

// GraphGetParams selects GraphGet's read.
type GraphGetParams struct {
	RunID string
	// Steps bounds the steps of their own returned, oldest first (0:
	// GraphStepsMax); Graph.StepsTotal counts them all.
	Steps int
}

// Graph is the aggregated graph of one run.
type Graph struct {
	// Steps are the latest task run of each step key that is not a map
	// item, in creation order (then ID), at most GraphGetParams.Steps.
	Steps []GraphStep
	// StepsTotal counts the steps of their own, also those left out.
	StepsTotal int
	// Maps are the run's maps, in order of their first item's creation.
	Maps []GraphMap
}

// GraphStep is one step of a run's graph: the latest task run of its key.
type GraphStep struct {
	ID         string
	Key        string
	Task       string
	ChildRunID string // a subflow call's child run
	State      TaskState
	Attempts   int
	Deps       []string
	Error      string // the error's message, "" when none
	CreatedAt  time.Time
	StartedAt  time.Time
	EndedAt    time.Time
}

// GraphMap is one map of a run's graph: its items (the latest task run of
// each item key) counted per state.
type GraphMap struct {
	Key  string
	Task string
	// Deps is the union of its items' Deps, sorted.
	Deps []string
	// Counts are the items per state (those with any), in the order of
	// TaskStates; Total their sum.
	Counts []StateCount
	Total  int
	// CreatedAt is the first item's creation, StartedAt the first start
	// (zero when none started), EndedAt the last end of a finished item
	// (zero when none finished).
	CreatedAt, StartedAt, EndedAt time.Time
	// Finished counts the items in a final state, Busy the total time
	// (EndedAt-StartedAt) of those that started: their mean duration is
	// what an ETA extrapolates.
	Finished int
	Busy     time.Duration
}

// StateCount is a number of task runs in one state.
type StateCount struct {
	State TaskState
	N     int
}

// MapItemListParams selects a page of a map's items.
type MapItemListParams struct {
	RunID string
	Map   string // the map's key (TaskRun.Map)
	// States, when set, keeps only items in one of them.
	States []TaskState
	Offset int
	Limit  int // 0: 100
}

// Check validates the parameters.
func (p *MapItemListParams) Check() error {
	if p.Map == "" {
		return fmt.Errorf("map key is required")
	}
	if p.Offset < 0 || p.Limit < 0 {
		return fmt.Errorf("offset and limit must not be negative")
	}
	return nil
}

// TaskStates lists every task-run state, for validation of user input.
var TaskStates = []TaskState{TaskPending, TaskAwaitingSlot, TaskWaiting, TaskRunning, TaskCompleted, TaskFailed,
	TaskTimedOut, TaskCached, TaskAwaitingRetry, TaskCancelled, TaskCrashed}
