package baton

import (
	"errors"
	"fmt"

	"github.com/batonhq/baton/fault"
	"github.com/batonhq/baton/internal/engine"
)

// Errors a flow can test for with errors.Is and errors.As.
type (
	// TimeoutError reports that a task attempt or a flow run timed out.
	// errors.Is(err, context.DeadlineExceeded) is true for it.
	TimeoutError = fault.TimeoutError
	// TaskError is the error of a task run that failed after all its attempts.
	TaskError = fault.TaskError
	// NonDeterminismError reports a flow that called, on replay, another
	// task under an explicit step key (Key) than its journal recorded there.
	NonDeterminismError = fault.NonDeterminismError
	// PanicError is a recovered panic of a task or flow function.
	PanicError = fault.PanicError
)

// ErrNonDeterministic matches every NonDeterminismError.
var ErrNonDeterministic = fault.ErrNonDeterministic

// Permanent marks err as not worth retrying: the task fails at once whatever
// its retry policy. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &engine.PermanentError{Err: err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var pe *engine.PermanentError
	return errors.As(err, &pe)
}

// PartialFailureError is returned by Settle when fewer items than required
// succeeded.
type PartialFailureError struct {
	Total, Failed int
	MinSuccess    float64
	// First is the error of the first failed item.
	First error
}

func (e *PartialFailureError) Error() string {
	return fmt.Sprintf("%d of %d items failed, below the required success ratio %.2f; first failure: %v",
		e.Failed, e.Total, e.MinSuccess, e.First)
}

// Unwrap returns the first failure.
func (e *PartialFailureError) Unwrap() error { return e.First }
