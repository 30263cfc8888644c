package engine

import (
	"context"
	"errors"
	"fmt"
	"reflect"

	"github.com/batonhq/baton/fault"
	"github.com/batonhq/baton/internal/store"
)

// The errors users test for are package fault's (package baton re-exports
// them); the engine creates them under these names.
type (
	TimeoutError        = fault.TimeoutError
	NonDeterminismError = fault.NonDeterminismError
	TaskError           = fault.TaskError
	PanicError          = fault.PanicError
)

// ErrNonDeterministic is wrapped by NonDeterminismError.
var ErrNonDeterministic = fault.ErrNonDeterministic

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
