package apitype

import (
	"net/url"
	"time"
)

// LogsQueryParams are the query parameters of GET /api/v1/runs/{id}/logs
// and of its download: task (a step key: the lines of every task run of
// the step), task_run (a task run's id: its lines only), q (text in the message, ASCII
// case-insensitive), level (the minimum level: DEBUG, INFO, WARN or ERROR;
// a line's level may carry an offset such as INFO+2 and counts as its
// base), after (the id of the last line read) and limit (1 to 10000; the
// download has none).
var LogsQueryParams = []string{"task", "task_run", "q", "level", "after", "limit"}

// Why a step of an attempt ran (StepChange.Reason).
const (
	StepNew            = "new"             // no earlier attempt recorded a call of it
	StepFailedBefore   = "failed_before"   // the earlier attempt's call did not succeed
	StepUnfinished     = "unfinished"      // the earlier attempt's call never finished (given back, crashed)
	StepInputChanged   = "input_changed"   // the same step, called with another input
	StepVersionChanged = "version_changed" // the same task and input, another task version (new code)
	StepTaskChanged    = "task_changed"    // another task (or subflow) at the same place of the flow
	StepRanAgain       = "ran_again"       // an earlier call succeeded with the same identity, yet it ran
	StepReused         = "reused"          // recorded by an earlier attempt and not run again
)

// AttemptsComparison is GET /api/v1/runs/{id}/attempts: for each attempt
// of a run, which steps it ran and why, and which steps of earlier
// attempts it did not run again, computed from the run's task runs.
type AttemptsComparison struct {
	RunID    string        `json:"run_id"`
	Attempts []AttemptDiff `json:"attempts"`
}

// AttemptDiff is one attempt of an AttemptsComparison.
type AttemptDiff struct {
	Attempt int `json:"attempt"`
	// Steps are the counts the attempt recorded when it ended (null when
	// it ended without its process, or has not ended).
	Steps *StepCounts `json:"steps"`
	// Edit is the parameter edit the attempt started with.
	Edit *ParamsEdit `json:"edit,omitempty"`
	// RanTotal counts the task runs the attempt created; ReusedTotal the
	// successful steps of earlier attempts that it did not run again
	// (reused when it called them: a step a code change no longer calls is
	// counted too, while Steps.Reused counts only the calls it answered).
	RanTotal    int `json:"ran_total"`
	ReusedTotal int `json:"reused_total"`
	// Reasons counts the steps that ran by reason (StepNew, ...), in the
	// order of the reasons above.
	Reasons []ReasonCount `json:"reasons"`
	// Ran and Reused list the steps, in creation order, at most limit
	// each (the query parameter; default 100).
	Ran    []StepChange `json:"ran"`
	Reused []StepChange `json:"reused"`
}

// ReasonCount is how many steps of an attempt ran for one reason.
type ReasonCount struct {
	Reason string `json:"reason"`
	N      int    `json:"n"`
}

// StepChange is a step of an attempt: the task run, why it ran (or
// StepReused) with a sentence for people, and the task run of an earlier
// attempt it was compared with.
type StepChange struct {
	TaskRunID string   `json:"task_run_id"`
	Key       string   `json:"key"`
	Task      string   `json:"task"`
	State     string   `json:"state"`
	Reason    string   `json:"reason"`
	Detail    string   `json:"detail"`
	Previous  *StepRef `json:"previous,omitempty"`
}

// StepRef names a task run of an earlier attempt.
type StepRef struct {
	TaskRunID string `json:"task_run_id"`
	Key       string `json:"key"`
	Task      string `json:"task"`
	State     string `json:"state"`
	Attempt   int    `json:"attempt"`
}

// TaskRunDetail is GET /api/v1/runs/{id}/task-runs/{task_run_id}: a task
// run with its input and output (large values by reference: GET
// /api/v1/blobs/{ref}), its tries with their errors, its state changes
// and where a cached result came from. Its logs are GET
// /api/v1/runs/{id}/logs?task_run=ID.
type TaskRunDetail struct {
	TaskRun
	RunID string `json:"run_id"`
	Flow  string `json:"flow"`
	// FlowAttempt is the attempt of the run that created the task run.
	FlowAttempt int       `json:"flow_attempt"`
	CreatedAt   time.Time `json:"created_at"`
	ResultRef   string    `json:"result_ref,omitempty"`
	WorkerID    string    `json:"worker_id,omitempty"`
	// Tries are the task's attempts (retries within the step), oldest
	// first, from its state changes.
	Tries []TaskTry `json:"tries"`
	// History is the task run's state changes, oldest first.
	History []Event `json:"history"`
}

// TaskTry is one attempt of a task run: when it started and ended, the
// state it ended in (empty while it runs) and the message of that change
// (the error of a failed try).
type TaskTry struct {
	Try        int        `json:"try"`
	StartedAt  time.Time  `json:"started_at"`
	EndedAt    *time.Time `json:"ended_at"`
	DurationMS *int64     `json:"duration_ms"`
	Outcome    string     `json:"outcome"`
	Message    string     `json:"message,omitempty"`
}

// LogLevels are the values of the level query parameter of GET
// /api/v1/runs/{id}/logs, lowest first.
var LogLevels = []string{"DEBUG", "INFO", "WARN", "ERROR"}

// LogFilter is the filter of GET /api/v1/runs/{id}/logs (LogsQueryParams):
// the zero value lists every line.
type LogFilter struct {
	Task    string // a step key
	TaskRun string // a task run's id
	Q       string // text in the message
	Level   string // the lowest level, one of LogLevels
}

// Values encodes f as the query of GET /api/v1/runs/{id}/logs.
func (f LogFilter) Values() url.Values {
	v := url.Values{}
	for k, x := range map[string]string{"task": f.Task, "task_run": f.TaskRun, "q": f.Q, "level": f.Level} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v
}
