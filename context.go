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
// valid during the flow function's call. It is safe for concurrent use:
// calls that create steps (Run, Submit, Map) may be made from goroutines
// of the flow, since replay matches steps by task and input, not by order.
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
// Context), and also printed. A flow's records are dropped while a retried
// attempt replays its journal, so they are not repeated. Any other context
// gets slog.Default().
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

// TaskRun describes the task run a task's context belongs to.
type TaskRun struct {
	RunID     string // the flow run
	TaskRunID string // the task run, the same across its attempts
	Key       string // the step key
	Attempt   int    // the attempt number, starting at 1
}

// TaskRunFrom returns the task run that ctx (a task function's context)
// belongs to; ok is false for any other context. Use it for idempotency keys
// of side effects or to behave differently on a retry.
func TaskRunFrom(ctx context.Context) (info TaskRun, ok bool) {
	ti, ok := engine.TaskInfoFrom(ctx)
	return TaskRun(ti), ok
}
