package store

import (
	"encoding/json"
	"time"
)

// Steering: changes to a run that is executing, asked from outside it
// (runs pause, runs update).

// Actions of the history entries of steering.
const (
	// ActionPauseRequested: someone asked the run to pause at its next step
	// boundary (payload: reason).
	ActionPauseRequested = "pause_requested"
)

// PauseRequest is a pause asked from outside a run (baton runs pause) that
// its engine has not made yet: at its next step boundary the engine records
// a pause wait for it and the run goes PAUSED.
type PauseRequest struct {
	By     Actor     `json:"by"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// RunPauseParams asks run ID to pause at its next step boundary. The store
// records the request on the run with a pause_requested history entry. A
// run that is PAUSED already, or has a request pending, is left as it is
// (no error, nothing recorded); a finished or CANCELLING run is an error
// wrapping ErrConflict; an unknown one ErrNotFound.
type RunPauseParams struct {
	ID     string
	Reason string
	Actor  Actor
	At     time.Time // zero: now
}

// RunUpdateParams changes the parameters of run ID, which is not finished,
// to Parameters (already validated against the flow's schema by the
// caller), with a parameters_edited history entry holding the values before
// and after. A finished or CANCELLING run is an error wrapping ErrConflict.
// The flow reads the new values with baton.Settings.
type RunUpdateParams struct {
	ID         string
	Parameters json.RawMessage
	Reason     string
	Actor      Actor
	At         time.Time // zero: now
}
