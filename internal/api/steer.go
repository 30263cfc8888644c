package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// PauseRun asks run runID to pause at its next step boundary: what `baton
// runs pause` does on the store and POST /api/v1/runs/{id}/pause on a
// server. A PAUSED run is left as it is; a finished one is a conflict.
func PauseRun(ctx context.Context, st store.Store, runID string, req apitype.PauseRunRequest, who store.Actor) (store.Run, error) {
	if err := store.CheckIdentifier("reason", req.Reason); err != nil {
		return store.Run{}, &BadInputError{Err: err}
	}
	return st.RunPause(ctx, store.RunPauseParams{ID: runID, Reason: req.Reason, Actor: who})
}

// UpdateRun changes the parameters of run runID, which is not finished:
// req.Parameters are merged over its current ones and validated by edit
// (EditParams on the store; a server uses its cached flow schemas), then
// recorded with the values before and after and who asked. An update that
// changes nothing records nothing.
func UpdateRun(ctx context.Context, st store.Store, runID string, req apitype.UpdateRunRequest, who store.Actor,
	edit func(ctx context.Context, run store.Run, given json.RawMessage) (json.RawMessage, error)) (store.Run, error) {
	if err := store.CheckIdentifier("reason", req.Reason); err != nil {
		return store.Run{}, &BadInputError{Err: err}
	}
	given := bytes.TrimSpace(req.Parameters)
	if len(given) == 0 || string(given) == "null" {
		return store.Run{}, &BadInputError{Err: errors.New("parameters: give the parameters to change (a JSON object)")}
	}
	if err := params.CheckJSON(given, "parameters"); err != nil {
		return store.Run{}, &BadInputError{Err: err}
	}
	run, err := st.RunGet(ctx, runID)
	if err != nil {
		return store.Run{}, err
	}
	if run.State.Final() || run.State == store.RunCancelling {
		return run, fmt.Errorf("run %s is %s: its settings can no longer change: %w", run.ID, run.State, store.ErrConflict)
	}
	edited, err := edit(ctx, run, given)
	if err != nil {
		return run, err
	}
	if params.SameJSON(edited, run.Parameters) {
		return run, nil
	}
	return st.RunUpdate(ctx, store.RunUpdateParams{ID: run.ID, Parameters: edited, Reason: req.Reason, Actor: who})
}

// EditParams merges given over run's parameters and validates the result
// against the parameter schema its flow registered in st (as a retry's
// edited parameters are); a refusal is a *BadInputError naming the
// parameter. Without a schema, an object is merged key by key over the
// run's (an object too) and anything else replaces them.
func EditParams(ctx context.Context, st store.Store, run store.Run, given json.RawMessage) (json.RawMessage, error) {
	var v *params.Validator
	if f, err := st.FlowGet(ctx, run.Flow); err == nil && len(f.Parameters) > 0 {
		dec := json.NewDecoder(bytes.NewReader(f.Parameters))
		dec.UseNumber()
		var schema map[string]any
		if err := dec.Decode(&schema); err != nil {
			return nil, fmt.Errorf("schema of flow %s: %w", run.Flow, err)
		}
		if schema != nil {
			if v, err = params.NewValidator(schema); err != nil {
				return nil, fmt.Errorf("schema of flow %s: %w", run.Flow, err)
			}
		}
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return MergeParams(v, run, given)
}

// MergeParams is EditParams with the flow's validator v (nil: none).
func MergeParams(v *params.Validator, run store.Run, given json.RawMessage) (json.RawMessage, error) {
	if v == nil {
		var over, base map[string]json.RawMessage
		if json.Unmarshal(given, &over) != nil || over == nil || json.Unmarshal(run.Parameters, &base) != nil || base == nil {
			if err := params.CheckJSON(given, "parameters"); err != nil {
				return nil, &BadInputError{Err: err}
			}
			return given, nil
		}
		var err error
		if v, err = params.NewValidator(map[string]any{"type": "object", "additionalProperties": map[string]any{}}); err != nil {
			return nil, err
		}
	}
	out, err := v.Edit(run.Flow, run.Parameters, given)
	if err != nil {
		return nil, &BadInputError{Err: err}
	}
	return out, nil
}
