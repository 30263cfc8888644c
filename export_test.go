package baton

import (
	"context"
	"io"
	"time"

	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
)

// Forget removes the definitions of the named tasks and flows, so that a
// test can define them again as a new version of a program would.
func Forget(names ...string) {
	taskRegistry.Lock()
	flowRegistry.Lock()
	defer taskRegistry.Unlock()
	defer flowRegistry.Unlock()
	for _, n := range names {
		delete(taskRegistry.byName, n)
		delete(taskRegistry.at, n)
		delete(flowRegistry.at, n)
	}
}

// NewRuntime returns a runtime on st and blobs (a store of any backend),
// for tests; closing it closes st.
func NewRuntime(st store.Store, blobs engine.Blobs) *Runtime {
	eng, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard})
	if err != nil {
		panic(err)
	}
	return &Runtime{st: st, eng: eng}
}

// NewRuntimePausePoll is NewRuntime whose engine reads its runs for pause
// requests every PausePoll (negative: at every step boundary).
func NewRuntimePausePoll(st store.Store, blobs engine.Blobs, pausePoll time.Duration) *Runtime {
	eng, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard, PausePoll: pausePoll})
	if err != nil {
		panic(err)
	}
	return &Runtime{st: st, eng: eng}
}

// OpenClock is Open with clk as the engine's clock.
func OpenClock(ctx context.Context, cfg Config, clk clock.Clock) (*Runtime, error) {
	return open(ctx, cfg, clk)
}

// Resume continues PAUSED run runID of flow f in this process from its
// journal (what a program's `resume RUN_ID` does).
func Resume[P, R any](ctx context.Context, rt *Runtime, f *FlowDef[P, R], runID string) (store.RunState, error) {
	out, err := rt.eng.Resume(ctx, f.def, runID)
	return out.Run.State, err
}
