package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// ErrNonDeterministic is wrapped by NonDeterminismError.
var ErrNonDeterministic = errors.New("non-deterministic flow")

// ErrReleased is the cancellation cause a worker uses when it shuts down:
// runs and task runs cancelled with it are not given a final state but left
// for the server to hand to another worker.
var ErrReleased = errors.New("released by a worker shutting down")

// ErrStoreFailed wraps the errors of an attempt that ended because the
// store failed (after the retries the store itself makes): a step's outcome,
// the run's journal or the run's end could not be written or read. On a
// worker (Config.Worker set) the engine then records no final state: the run
// stays as the store last had it, for the worker to give back to the server,
// which crashes it and reschedules it from its journal.
var ErrStoreFailed = errors.New("store failure")

// storeFailed wraps err with ErrStoreFailed (once).
func storeFailed(err error) error {
	if err == nil || errors.Is(err, ErrStoreFailed) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrStoreFailed, err)
}

// ErrCancelRequested is the cancellation cause of a run whose cancel was
// requested through the store (a server's `runs cancel`): a local run's
// engine sees its run CANCELLING and cancels it with this cause.
var ErrCancelRequested = errors.New("run cancelled by a user")

// ErrRunActive is returned when retrying a run that a live process still executes.
var ErrRunActive = errors.New("run is still active")

// RetryRefusedError says why a run cannot be retried. Its message is the
// whole explanation; Err (store.ErrConflict or ErrRunActive) is for errors.Is.
type RetryRefusedError struct {
	Msg string
	Err error
}

func (e *RetryRefusedError) Error() string { return e.Msg }

// Unwrap returns the sentinel error.
func (e *RetryRefusedError) Unwrap() error { return e.Err }

// PermanentError wraps an error that must never be retried.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }

// Unwrap returns the wrapped error.
func (e *PermanentError) Unwrap() error { return e.Err }

// TimeoutError reports that a task attempt or a flow run exceeded its timeout.
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

// InvalidKeyError is the error of a call whose explicit step key (from
// baton.Key) is not valid text (store.CheckIdentifier): the call fails, and
// so does the run, even when the flow code ignores the call's error.
type InvalidKeyError struct {
	Err error
}

func (e *InvalidKeyError) Error() string {
	return e.Err.Error() + "; step keys must be valid UTF-8 without NUL bytes"
}

// Unwrap returns the validation error.
func (e *InvalidKeyError) Unwrap() error { return e.Err }

// checkKey validates an explicit step key.
func checkKey(key string) error {
	if err := store.CheckIdentifier("step key", key); err != nil {
		return &InvalidKeyError{Err: err}
	}
	return nil
}

// TaskError is the error of a step that failed after all its attempts.
type TaskError struct {
	Key      string
	Task     string
	Attempts int
	Err      error
}

func (e *TaskError) Error() string {
	return fmt.Sprintf("task %s (step %s) failed after %d attempt(s): %v", e.Task, e.Key, e.Attempts, e.Err)
}

// Unwrap returns the last attempt's error.
func (e *TaskError) Unwrap() error { return e.Err }

// PanicError is a recovered panic of user code.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// errorKind classifies err for the recorded ErrorInfo.
func errorKind(err error) string {
	var te *TimeoutError
	var pe *PermanentError
	var ne *NonDeterminismError
	var pa *PanicError
	switch {
	case errors.As(err, &ne):
		return "nondeterminism"
	case errors.As(err, &te):
		return "timeout"
	case errors.As(err, &pa):
		return "panic"
	case errors.As(err, &pe):
		return "permanent"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return ""
}

// ErrorInfo records err: its message, type, kind and the messages along its
// chain of wrapped errors.
func ErrorInfo(err error) *store.ErrorInfo {
	if err == nil {
		return nil
	}
	info := &store.ErrorInfo{Message: err.Error(), Type: reflect.TypeOf(err).String(), Kind: errorKind(err)}
	seen := 0
	for e := errors.Unwrap(err); e != nil && seen < 16; e = errors.Unwrap(e) {
		info.Chain = append(info.Chain, fmt.Sprintf("%s: %s", reflect.TypeOf(e), e.Error()))
		seen++
	}
	var pa *PanicError
	if errors.As(err, &pa) {
		info.Chain = append(info.Chain, pa.Stack)
	}
	return info
}
