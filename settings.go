package baton

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/batonhq/baton/internal/engine"
)

// settingsDef is the engine definition of the step that records what
// Settings read. Its name cannot be a SideEffect's (those start with
// "side-effect:").
var settingsDef = &engine.TaskDef{Name: "settings"}

// Settings returns the run's parameters as they are now, decoded as T: the
// values the run was started with, or those of its latest `baton runs
// update RUN_ID --param k=v` (POST /api/v1/runs/{id}/update), which changes
// the parameters of a running or paused run, validated against the flow's
// parameter schema. A long flow calls it where a change should take effect
// (at the top of each iteration, say) instead of reading its parameters
// argument, which keeps the values it started with.
//
// Each call reads the run from the store once and records the value like
// SideEffect: a replay of the run (after a crash, a suspension or a retry)
// gets, at each call, the value the first execution got there, whatever the
// parameters are now, so the flow takes the same branches. A retry started
// with edited parameters records new values only for calls its journal does
// not answer.
func Settings[T any](ctx Context) (T, error) {
	fc := ctx.flow()
	call := engine.Call{
		Task:      settingsDef,
		InputJSON: []byte("null"),
		Fn: func(c context.Context) (any, error) {
			raw, err := fc.Engine().Parameters(c, fc.RunID())
			if err != nil {
				return nil, err
			}
			if len(raw) == 0 {
				raw = json.RawMessage("null")
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return nil, Permanent(fmt.Errorf("baton.Settings: the run's parameters do not decode as %T: %w", v, err))
			}
			return v, nil
		},
		Decode: decode[T],
	}
	return Future[T]{f: fc.Call(call)}.Wait(ctx)
}
