package api

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// LogView is the JSON form of a stored log record.
type LogView struct {
	At        time.Time       `json:"at"`
	Level     string          `json:"level"`
	Message   string          `json:"message"`
	TaskKey   string          `json:"task_key,omitempty"`
	TaskRunID string          `json:"task_run_id,omitempty"`
	Attrs     json.RawMessage `json:"attrs,omitempty"`
}

// LogJSON converts a log record.
func LogJSON(l store.LogRecord) LogView {
	return LogView{At: l.At, Level: l.Level, Message: l.Message, TaskKey: l.TaskKey, TaskRunID: l.TaskRunID, Attrs: l.Attrs}
}

// LogRecord converts a LogView back (for clients printing logs).
func (v LogView) LogRecord(runID string) store.LogRecord {
	return store.LogRecord{RunID: runID, TaskRunID: v.TaskRunID, TaskKey: v.TaskKey, Level: v.Level, Message: v.Message, Attrs: v.Attrs, At: v.At}
}

// WorkerView is the JSON form of a live worker.
type WorkerView struct {
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
}

// WorkerJSON converts a worker and the runs it holds.
func WorkerJSON(w store.Worker, runs []string) WorkerView {
	if runs == nil {
		runs = []string{}
	}
	return WorkerView{ID: w.ID, Name: w.Name, Host: w.Host, PID: w.PID, Queues: nonNil(w.Queues), Flows: nonNil(w.Flows),
		Tasks: nonNil(w.Tasks), Capacity: w.Capacity, Slots: w.Slots, StartedAt: w.StartedAt, LastSeen: w.LastSeen, Runs: runs}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// QueueView is the JSON form of a queue's depth.
type QueueView struct {
	Queue         string     `json:"queue"`
	RunsScheduled int        `json:"runs_scheduled"`
	RunsRunning   int        `json:"runs_running"`
	TasksPending  int        `json:"tasks_pending"`
	TasksRunning  int        `json:"tasks_running"`
	OldestWaiting *time.Time `json:"oldest_waiting"`
}

// QueueJSON converts queue statistics.
func QueueJSON(q store.QueueStats) QueueView {
	v := QueueView{Queue: q.Queue, RunsScheduled: q.RunsScheduled, RunsRunning: q.RunsRunning,
		TasksPending: q.TasksPending, TasksRunning: q.TasksRunning}
	if !q.OldestWaiting.IsZero() {
		t := q.OldestWaiting
		v.OldestWaiting = &t
	}
	return v
}

// ParseAge parses an age such as "30d", "12h", "90m" or any
// time.ParseDuration string; it must be positive.
func ParseAge(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("an age is required, such as 30d or 12h")
	}
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("invalid age %q: use a number of days (30d) or a duration (12h)", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("invalid age %q: use a number of days (30d) or a duration (12h)", s)
		}
	}
	if d <= 0 {
		return 0, fmt.Errorf("age %q must be positive", s)
	}
	return d, nil
}
