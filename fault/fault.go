// Package fault defines the errors of flow and task runs that programs test
// for with errors.Is and errors.As. Package baton re-exports each under the
// same name (baton.TaskError is fault.TaskError), the way package os
// re-exports io/fs's PathError; use those. They live here, below both the
// SDK and its engine, so that the engine creates the very values the SDK
// documents and nothing converts them on the way.
package fault

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNonDeterministic matches every NonDeterminismError.
var ErrNonDeterministic = errors.New("non-deterministic flow")

// TimeoutError reports that a task attempt or a flow run exceeded its
// timeout. errors.Is(err, context.DeadlineExceeded) is true for it.
type TimeoutError struct {
	What    string // "task square attempt 2" or "flow sweep"
	Timeout time.Duration
}

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("%s timed out after %s", e.What, e.Timeout)
}

// Is makes errors.Is(err, context.DeadlineExceeded) true for timeouts.
func (e *TimeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// NonDeterminismError reports that a flow called, on replay, another task
// (or subflow) under an explicit step key than the journal recorded there.
type NonDeterminismError struct {
	Key      string
	Recorded string // task recorded in the journal
	Called   string // task the code called now
}

func (e *NonDeterminismError) Error() string {
	return fmt.Sprintf("non-deterministic flow: step key %q was task %q in the journal but the code now calls %q with it; "+
		"an explicit key (baton.Key) must keep its task across attempts: give the new call another key",
		e.Key, e.Recorded, e.Called)
}

// Unwrap makes errors.Is(err, ErrNonDeterministic) true.
func (e *NonDeterminismError) Unwrap() error { return ErrNonDeterministic }

// TaskError is the error of a step (a task run) that failed after all its
// attempts.
type TaskError struct {
	Key      string // the step key
	Task     string // the task's name
	Attempts int
	Err      error // the last attempt's error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s (step %s) failed after %d attempt(s): %v", e.Task, e.Key, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *TaskError) Unwrap() error { return e.Err }

// PanicError is a recovered panic of a task or flow function.
type PanicError struct {
	Value any    // what was passed to panic
	Stack string // the panicking goroutine's stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }
