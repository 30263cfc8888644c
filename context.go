package baton

import (
	"context"
	"log/slog"
	"reflect"

	"github.com/batonhq/baton/internal/engine"
)

// Context is what a flow function receives. It is a context.Context,
// cancelled when the run is cancelled, times out or fails, and it carries
// what replay needs; pass it to task and subflow calls. A Context is only
// valid during the flow function's call, and calls that create steps (Run,
// Submit, Map) should be made from the flow's own goroutine so that their
// step keys are deterministic (or given explicitly with Key).
type Context interface {
	context.Context
	// RunID returns the ID of the flow run, the same across attempts.
	RunID() string
	// Attempt returns the attempt number of the run, starting at 1.
	Attempt() int

	flow() *engine.FlowCtx
}

type flowContext struct {
	context.Context
	fc *engine.FlowCtx
}

func (c *flowContext) RunID() string         { return c.fc.RunID() }
func (c *flowContext) Attempt() int          { return c.fc.Attempt() }
func (c *flowContext) flow() *engine.FlowCtx { return c.fc }

// Logger returns a logger whose records are stored against the current task
// run (when ctx is a task's context) or flow run (when ctx is a flow's
// Context), and also printed. Any other context gets slog.Default().
func Logger(ctx context.Context) *slog.Logger {
	if fc, ok := ctx.(Context); ok {
		return fc.flow().Logger()
	}
	if l, ok := engine.TaskLogger(ctx); ok {
		return l
	}
	return slog.Default()
}

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }
