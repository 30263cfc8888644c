package store

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"
)

// TaskWaiting is the state of a wait step: a task run that records what a
// flow waits for (typed input, a resume, a timer, an event) until it
// arrives; it then becomes COMPLETED with the value, or FAILED when its
// deadline passed without one. Waits are not final: a run's end cancels
// them as it cancels its PENDING task runs.
const TaskWaiting TaskState = "WAITING"

// Wait kinds (WaitSpec.Kind).
const (
	WaitInput = "input" // typed input from a person or a program, validated by a JSON Schema
	WaitPause = "pause" // a resume, with no value
	WaitSleep = "sleep" // a durable timer
	WaitEvent = "event" // a named event, optionally matching fields of its payload
)

// Actions of the history entries of waits.
const (
	ActionPaused        = "paused"         // the run waits (payload: kind, key, step)
	ActionInputReceived = "input_received" // input was delivered to a wait, or kept for one (payload: key, value, step)
	ActionInputRefused  = "input_refused"  // kept input did not fit the wait that began (payload: key, value, step)
	ActionResumed       = "resumed"        // a paused run was given what it waited for and goes on
	ActionTimerFired    = "timer_fired"    // a sleep ended or a wait's deadline passed
	ActionEventReceived = "event_received" // an event woke a wait of the run (payload: name, seq, step)
)

// WaitSpec describes what a wait step waits for. It is the step's input
// (its JSON is hashed into the step's identity), so the same wait made
// again on replay finds its recorded outcome.
type WaitSpec struct {
	Kind string `json:"kind"`
	// Key is the input's key (WaitInput, WaitPause) or the event's name
	// (WaitEvent).
	Key    string          `json:"key,omitempty"`
	Prompt string          `json:"prompt,omitempty"` // shown to people
	Schema json.RawMessage `json:"schema,omitempty"` // the JSON Schema the input must satisfy
	// Match lists top-level fields an event's payload must have, with
	// these values (compared as JSON values).
	Match map[string]json.RawMessage `json:"match,omitempty"`
	// Duration is a sleep's length, Until its end (one of them), and
	// Within a wait's deadline after it began.
	Duration string    `json:"duration,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	Within   string    `json:"within,omitempty"`
	// Default, when set, is the input a wait resumes with at its
	// deadline; without one the wait fails then.
	Default json.RawMessage `json:"default,omitempty"`
}

// Check validates a spec's kind, key and durations.
func (w WaitSpec) Check() error {
	switch w.Kind {
	case WaitInput, WaitPause, WaitSleep, WaitEvent:
	default:
		return fmt.Errorf("wait kind %q is not input, pause, sleep or event", w.Kind)
	}
	if err := CheckIdentifier("wait key", w.Key); err != nil {
		return err
	}
	if w.Kind == WaitEvent && w.Key == "" {
		return fmt.Errorf("an event wait needs the event's name")
	}
	for _, d := range []struct{ name, v string }{{"duration", w.Duration}, {"within", w.Within}} {
		if d.v == "" {
			continue
		}
		if v, err := time.ParseDuration(d.v); err != nil || v < 0 {
			return fmt.Errorf("wait %s %q is not a duration of 0 or more", d.name, d.v)
		}
	}
	return nil
}

// Deadline returns when a wait that began at begun ends by itself: a
// sleep's end, a deadline, or zero for none.
func (w WaitSpec) Deadline(begun time.Time) time.Time {
	switch {
	case w.Kind == WaitSleep && !w.Until.IsZero():
		return w.Until
	case w.Kind == WaitSleep:
		d, _ := time.ParseDuration(w.Duration)
		return begun.Add(d)
	case w.Within != "":
		d, _ := time.ParseDuration(w.Within)
		return begun.Add(d)
	}
	return time.Time{}
}

// Matches reports whether an event payload has the fields of w.Match
// with equal JSON values.
func (w WaitSpec) Matches(payload json.RawMessage) bool {
	if len(w.Match) == 0 {
		return true
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(payload, &fields) != nil {
		return false
	}
	for k, want := range w.Match {
		got, ok := fields[k]
		if !ok || !SameJSON(got, want) {
			return false
		}
	}
	return true
}

// SameJSON reports whether two JSON texts hold equal values (objects
// compared by their members, numbers by value).
func SameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// DecodeWaitSpec reads a wait step's input.
func DecodeWaitSpec(input json.RawMessage) (WaitSpec, error) {
	var w WaitSpec
	if err := json.Unmarshal(input, &w); err != nil {
		return w, fmt.Errorf("wait step input: %w", err)
	}
	return w, nil
}

// WaitTask is the task name of a wait step of spec w: "input:KEY",
// "pause", "sleep" or "event:NAME".
func WaitTask(w WaitSpec) string {
	switch w.Kind {
	case WaitInput, WaitEvent:
		return w.Kind + ":" + w.Key
	case WaitPause:
		if w.Key != "" {
			return "pause:" + w.Key
		}
	}
	return w.Kind
}

// DefaultEventRetention is how long a sent event that no run waited for
// is kept for waits that begin later (WaitBeginParams.EventsSince).
const DefaultEventRetention = 24 * time.Hour

// WaitBeginParams records a wait step. TaskRun is the step (State
// WAITING, Input the spec's JSON, a new ID); the store answers it at once,
// in the same transaction, from what arrived before: input sent for the
// key before the run waited (validated by Validate against the spec's
// schema; input that fails is dropped with a history entry), the oldest
// event of the name sent at or after EventsSince that matches and that no
// earlier wait of the run received, or a deadline already passed at At.
// A run at PAUSED stays so; see WaitResolution for what wakes it.
type WaitBeginParams struct {
	TaskRun     TaskRun
	Spec        WaitSpec
	At          time.Time // the wait's start (zero: now)
	EventsSince time.Time
	Validate    func(schema, value json.RawMessage) error `json:"-"`
	// ConsumePause clears the run's PauseRequest in the same transaction:
	// the engine sets it on the pause wait it records for a request.
	ConsumePause bool `json:",omitzero"`
}

// InputSendParams delivers input to a run's wait for Key: to the WAITING
// step of an input or pause wait of that key, or, when the run does not
// wait for it and never did, kept for the run's first wait of the key. An
// empty Key means the run's only WAITING input or pause step. Validate
// checks the value against the step's schema; its error is returned as it
// is and nothing is recorded. Errors wrap ErrNotFound for an unknown run
// and ErrConflict for a finished run, a second input for one wait (naming
// who sent the first), a key the run waited for and no longer does, and an
// empty key that names no single wait.
type InputSendParams struct {
	RunID    string
	Key      string
	Value    json.RawMessage // nil: null (a resume of a pause)
	Actor    Actor
	At       time.Time                                 // zero: now
	Validate func(schema, value json.RawMessage) error `json:"-"`
}

// InputResult says where input went.
type InputResult struct {
	// Step is the wait step it resolved; zero when it was kept for a later
	// wait.
	Step TaskRun
	// Kept is true when no wait had begun: the input waits for one.
	Kept bool
	// Woke is true when the run was PAUSED on a worker's queue and is
	// SCHEDULED again.
	Woke bool
}

// EventSendParams records an event and delivers it to the WAITING event
// steps of its name whose match it satisfies.
type EventSendParams struct {
	Name    string
	Payload json.RawMessage
	Actor   Actor
	At      time.Time // zero: now
}

// EventResult says what an event woke.
type EventResult struct {
	Seq       int64        // the event's number in the store
	Delivered []TaskRunRef // the wait steps it resolved
}

// TimersFireParams resolves the WAITING steps whose deadline is at or
// before Now (a sleep's end: COMPLETED; a deadline with a default input:
// COMPLETED with it; else FAILED with a timeout error), at most Limit (0:
// 1000), of run RunID only when set. Each step is resolved once, however
// many servers fire timers at the same time.
type TimersFireParams struct {
	Now   time.Time
	RunID string
	Limit int
}

// Resolving a wait (input, event, timer) moves a run PAUSED on a worker's
// queue (Queue set) to SCHEDULED in the same transaction, so a worker
// replays it from its journal; a local run (no queue) stays PAUSED, and the
// process waiting in it, or a later `resume`, goes on.

// WokenByTaskMessage is the reason recorded when a completion of one of
// its task runs reschedules a PAUSED run.
const WokenByTaskMessage = "resumed: a task run it waits for finished"

// WaitTimeoutMessage is the error message of a wait step whose deadline
// passed.
func WaitTimeoutMessage(w WaitSpec) string {
	what := "input " + w.Key
	switch w.Kind {
	case WaitEvent:
		what = "event " + w.Key
	case WaitPause:
		what = "a resume"
	}
	return fmt.Sprintf("no %s within %s", what, w.Within)
}
