package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// History actions: the Action of the entries the store and Baton's own
// code record. Later features add their own; an action is a short
// snake_case verb phrase in the past tense, or a noun for a request.
const (
	ActionCreated          = "created"           // the run was created (payload: flow, state, queue, parameters, parent, deployment, schedule, planned start)
	ActionStarted          = "started"           // an attempt started executing
	ActionCompleted        = "completed"         // the run ended COMPLETED
	ActionFailed           = "failed"            // the run ended FAILED
	ActionCrashed          = "crashed"           // the process or worker executing it was lost
	ActionCancelRequested  = "cancel_requested"  // the run became CANCELLING
	ActionCancelled        = "cancelled"         // the run ended CANCELLED
	ActionRetryScheduled   = "retry_scheduled"   // a failed attempt waits for the flow's retry (AWAITING_RETRY)
	ActionRetried          = "retried"           // a new attempt was started or scheduled
	ActionRescheduled      = "rescheduled"       // a run taken back from its worker waits for another one
	ActionParametersEdited = "parameters_edited" // the run's parameters changed (payload: from, to)
	ActionLeaseLost        = "lease_lost"        // its worker's lease expired
	ActionGivenBack        = "given_back"        // its worker gave it back, or stopped while holding it
	ActionTransitioned     = "state_changed"     // any other change of state
)

// SystemActor is the actor of what Baton does by itself: engines ending
// runs, lease expiry, retry policies.
var SystemActor = Actor{Name: "system", Verified: true}

// Actor is who performed an action on a run. Verified is true when Baton
// vouches for the name: the system, and the OS user of a command that
// works on the store directly (the operating system authenticated it).
// A name a client declared to a server (the X-Baton-Actor header, the
// --as flag) is recorded with Verified false: the API does not
// authenticate (yet).
type Actor struct {
	Name     string `json:"name"`
	Verified bool   `json:"verified"`
}

// IsZero reports whether a is the zero Actor (no one named).
func (a Actor) IsZero() bool { return a == Actor{} }

// OrSystem returns a, or SystemActor when a is zero.
func (a Actor) OrSystem() Actor {
	if a.IsZero() {
		return SystemActor
	}
	return a
}

// String is the actor's name, with " (unverified)" after a name Baton did
// not verify.
func (a Actor) String() string {
	if !a.Verified {
		return a.Name + " (unverified)"
	}
	return a.Name
}

// HistoryEntry is one entry of a run's append-only history: an action on
// the run, human or system. Entries are never changed or deleted, except
// with their run (retention).
type HistoryEntry struct {
	// Seq orders a store's entries; the store assigns it. A run's entries
	// are listed in Seq order, which is the order they were committed in.
	Seq   int64     `json:",omitzero"`
	RunID string    `json:",omitzero"`
	At    time.Time `json:",omitzero"` // zero: the time of the write
	Actor Actor     `json:",omitzero"` // zero: SystemActor
	// Action is what happened (one of the Action constants, or a later
	// feature's).
	Action string `json:",omitzero"`
	// Reason says why, in words (a message, or the reason a person gave).
	Reason string `json:",omitzero"`
	// Payload is the action's details as a JSON object, or nil.
	Payload json.RawMessage `json:",omitzero"`
}

// HistoryListParams pages a run's history: the entries after the cursor
// After (a Seq; 0 from the start), oldest first, at most Limit (0: 1000).
type HistoryListParams struct {
	RunID string
	After int64
	Limit int
}

// DefaultHistoryLimit is the page size of HistoryList when Limit is 0.
const DefaultHistoryLimit = 1000

// CheckHistoryEntry validates an entry to append: a run, an action and a
// payload that is a JSON object when set.
func CheckHistoryEntry(e HistoryEntry) error {
	if e.RunID == "" {
		return fmt.Errorf("history entry: no run")
	}
	if e.Action == "" {
		return fmt.Errorf("history entry of run %s: no action", e.RunID)
	}
	if err := CheckIdentifier("history action", e.Action); err != nil {
		return err
	}
	if e.Payload != nil {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(e.Payload, &obj); err != nil || obj == nil {
			return fmt.Errorf("history entry %s of run %s: payload is not a JSON object", e.Action, e.RunID)
		}
	}
	return nil
}

// transitionPayload is the payload of the entry of a state change.
type transitionPayload struct {
	From    string `json:"from,omitempty"`
	To      string `json:"to"`
	Attempt int    `json:"attempt"`
	Cause   string `json:"cause,omitempty"`
	Queue   string `json:"queue,omitempty"`
	Worker  string `json:"worker,omitempty"`
}

// TransitionEntry returns the history entry of the state change ev (as
// ApplyTransition returned it) of run r (after the change), by actor (zero:
// the system), as action (empty: derived from the states). Backends record
// it in the transaction of the change.
func TransitionEntry(r *Run, ev Event, actor Actor, action string) HistoryEntry {
	if action == "" {
		action = TransitionAction(RunState(ev.From), RunState(ev.To), ev.Cause)
	}
	p := transitionPayload{From: ev.From, To: ev.To, Attempt: r.Attempt, Cause: ev.Cause, Worker: r.WorkerID}
	if RunState(ev.To) == RunScheduled {
		p.Queue = r.Queue
	}
	raw, _ := json.Marshal(p) // cannot fail: strings and ints
	return HistoryEntry{RunID: r.ID, At: ev.At, Actor: actor.OrSystem(), Action: action, Reason: ev.Message, Payload: raw}
}

// TransitionAction names the action of a run's change from one state to
// another for its history.
func TransitionAction(from, to RunState, cause string) string {
	switch to {
	case RunCompleted:
		return ActionCompleted
	case RunFailed:
		return ActionFailed
	case RunCrashed:
		if cause == "lease" {
			return ActionLeaseLost
		}
		return ActionCrashed
	case RunCancelling:
		return ActionCancelRequested
	case RunCancelled:
		return ActionCancelled
	case RunAwaitingRetry:
		return ActionRetryScheduled
	case RunPaused:
		return ActionPaused
	case RunRunning:
		switch from {
		case RunPaused:
			return ActionResumed
		case RunPending, RunScheduled:
			return ActionStarted
		case RunFailed, RunCancelled, RunCrashed, RunAwaitingRetry:
			return ActionRetried
		}
	case RunScheduled:
		switch from {
		case RunFailed, RunCancelled, RunCrashed:
			return ActionRetried
		case "":
			return ActionCreated
		case RunPaused:
			return ActionResumed
		}
		return ActionRescheduled
	}
	return ActionTransitioned
}

// EditEntry returns the history entry of a change of run's parameters from
// old to new, by actor at at, with reason.
func EditEntry(runID string, at time.Time, actor Actor, reason string, old, new json.RawMessage) HistoryEntry {
	p := struct {
		From json.RawMessage `json:"from"`
		To   json.RawMessage `json:"to"`
	}{jsonOrNull(old), jsonOrNull(new)}
	raw, err := json.Marshal(p)
	if err != nil { // a recorded value that is not JSON: keep it as text
		raw, _ = json.Marshal(map[string]string{"from": string(old), "to": string(new)})
	}
	return HistoryEntry{RunID: runID, At: at, Actor: actor.OrSystem(), Action: ActionParametersEdited, Reason: reason, Payload: raw}
}

// CreateEntry returns the history entry of the creation of run r, by actor
// (zero: the system), with reason.
func CreateEntry(r *Run, actor Actor, reason string) HistoryEntry {
	p := struct {
		Flow          string          `json:"flow"`
		State         RunState        `json:"state"`
		Queue         string          `json:"queue,omitempty"`
		Parameters    json.RawMessage `json:"parameters,omitempty"`
		ParentRunID   string          `json:"parent_run_id,omitempty"`
		ParentStepKey string          `json:"parent_step_key,omitempty"`
		Idempotency   string          `json:"idempotency_key,omitempty"`
		Deployment    string          `json:"deployment,omitempty"`
		Schedule      string          `json:"schedule_id,omitempty"`
		ScheduledAt   *time.Time      `json:"scheduled_at,omitempty"`
	}{Flow: r.Flow, State: r.State, Queue: r.Queue, Parameters: r.Parameters, ParentRunID: r.ParentRunID,
		ParentStepKey: r.ParentStepKey, Idempotency: r.IdempotencyKey, Deployment: r.Deployment, Schedule: r.ScheduleID}
	if r.Deployment != "" {
		at := r.PlannedAt().UTC()
		p.ScheduledAt = &at
	}
	raw, err := json.Marshal(p)
	if err != nil {
		p.Parameters = nil
		raw, _ = json.Marshal(p)
	}
	return HistoryEntry{RunID: r.ID, At: r.CreatedAt, Actor: actor.OrSystem(), Action: ActionCreated, Reason: reason, Payload: raw}
}

func jsonOrNull(m json.RawMessage) json.RawMessage {
	if len(m) == 0 {
		return json.RawMessage("null")
	}
	return m
}
