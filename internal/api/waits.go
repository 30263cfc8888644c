package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// SendInput delivers input to a run's wait in st, validated against the
// wait's recorded JSON Schema: what `baton runs resume` does on the store
// and POST /api/v1/runs/{id}/input does on a server. A value that fails
// the schema is a *params.ValidationError; a key that is not an
// identifier, or a value that is not JSON, a *BadInputError.
func SendInput(ctx context.Context, st store.Store, runID string, req apitype.InputRequest, who store.Actor) (apitype.InputResult, error) {
	return SendInputAt(ctx, st, runID, req, who, time.Time{})
}

// SendInputAt is SendInput recording the input as sent at at (zero: the
// store's time): package batontest sends it at its fake clock's time.
func SendInputAt(ctx context.Context, st store.Store, runID string, req apitype.InputRequest, who store.Actor, at time.Time) (apitype.InputResult, error) {
	if err := store.CheckIdentifier("key", req.Key); err != nil {
		return apitype.InputResult{}, &BadInputError{Err: err}
	}
	if len(req.Value) > 0 && !json.Valid(req.Value) {
		return apitype.InputResult{}, &BadInputError{Err: errors.New("value is not JSON")}
	}
	res, err := st.InputSend(ctx, store.InputSendParams{RunID: runID, Key: req.Key, Value: req.Value, Actor: who,
		Validate: params.ValidateJSON, At: at})
	if err != nil {
		return apitype.InputResult{}, err
	}
	out := apitype.InputResult{RunID: runID, Key: req.Key, Kept: res.Kept, Resumed: res.Woke}
	if !res.Kept {
		out.Step = res.Step.Key
		if spec, err := store.DecodeWaitSpec(res.Step.Input); err == nil {
			out.Key = spec.Key
		}
	}
	return out, nil
}

// SendEvent records an event in st and delivers it: what `baton events
// send` does on the store and POST /api/v1/events does on a server.
func SendEvent(ctx context.Context, st store.Store, req apitype.EventRequest, who store.Actor) (apitype.EventResult, error) {
	return SendEventAt(ctx, st, req, who, time.Time{})
}

// SendEventAt is SendEvent recording the event as sent at at (zero: the
// store's time).
func SendEventAt(ctx context.Context, st store.Store, req apitype.EventRequest, who store.Actor, at time.Time) (apitype.EventResult, error) {
	if req.Name == "" {
		return apitype.EventResult{}, &BadInputError{Err: errors.New("name: an event needs a name")}
	}
	if err := store.CheckIdentifier("name", req.Name); err != nil {
		return apitype.EventResult{}, &BadInputError{Err: err}
	}
	if len(req.Payload) > 0 && !json.Valid(req.Payload) {
		return apitype.EventResult{}, &BadInputError{Err: errors.New("payload is not JSON")}
	}
	res, err := st.EventSend(ctx, store.EventSendParams{Name: req.Name, Payload: req.Payload, Actor: who, At: at})
	if err != nil {
		return apitype.EventResult{}, err
	}
	out := apitype.EventResult{Seq: res.Seq, Delivered: []apitype.EventDelivery{}}
	for _, d := range res.Delivered {
		out.Delivered = append(out.Delivered, apitype.EventDelivery{RunID: d.RunID, Step: d.Key})
	}
	return out, nil
}

// BadInputError is input refused before it reached the store (a 400, exit
// 2).
type BadInputError struct{ Err error }

func (e *BadInputError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *BadInputError) Unwrap() error { return e.Err }

// InputErrorMessage is the message of refused input, the same on every
// surface: the run, then every violation with its JSON pointer.
func InputErrorMessage(runID string, err error) string {
	return fmt.Sprintf("input for run %s refused: %v", runID, err)
}
