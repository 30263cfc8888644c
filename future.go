package baton

import (
	"iter"

	"github.com/batonhq/baton/internal/engine"
)

// Waitable is any Future, whatever its result type; WaitFor takes it.
type Waitable interface {
	engineFuture() *engine.Future
}

// Future is the eventual result of a task run or subflow run started with
// Submit or Map. It resolves once the result is durably recorded. Futures
// are values: copy them freely.
type Future[T any] struct {
	f *engine.Future
}

func (f Future[T]) engineFuture() *engine.Future { return f.f }

// Key returns the step key of the future's task run.
func (f Future[T]) Key() string { return f.f.Key() }

// Done returns a channel closed when the future resolves.
func (f Future[T]) Done() <-chan struct{} { return f.f.Done() }

// Wait blocks until the result is available or ctx is cancelled.
func (f Future[T]) Wait(ctx Context) (T, error) {
	v, err := f.f.Take(ctx)
	out, _ := v.(T)
	return out, err
}

// WaitAll waits for every future and returns their results in order. It
// returns at the first failed future (in order) with its error; the other
// task runs keep running until the flow returns.
func WaitAll[T any](ctx Context, futures []Future[T]) ([]T, error) {
	out := make([]T, len(futures))
	for i, f := range futures {
		v, err := f.Wait(ctx)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// AsCompleted yields the futures in the order they resolve, with their index
// in futures. It stops early, without an error, when ctx is cancelled:
// check ctx.Err() after the loop before trusting that every item was seen.
func AsCompleted[T any](ctx Context, futures []Future[T]) iter.Seq2[int, Future[T]] {
	return func(yield func(int, Future[T]) bool) {
		index := make(map[*engine.Future]int, len(futures))
		efs := make([]*engine.Future, len(futures))
		for i, f := range futures {
			index[f.f] = i
			efs[i] = f.f
		}
		c := engine.Collect(efs)
		for range futures {
			f, ok := c.Next(ctx)
			if !ok || !yield(index[f], Future[T]{f: f}) {
				return
			}
		}
	}
}

// Outcome is the result of one item of a Settle.
type Outcome[T any] struct {
	Key   string
	Value T
	Err   error
}

// Settle waits for all futures and returns each one's outcome, failed ones
// included, so that a map can tolerate partial failure. It returns a
// *PartialFailureError (alongside the outcomes) when the share of
// successful items is below minSuccess (0..1).
func Settle[T any](ctx Context, futures []Future[T], minSuccess float64) ([]Outcome[T], error) {
	out := make([]Outcome[T], len(futures))
	failed := 0
	var first error
	for i, f := range futures {
		v, err := f.Wait(ctx)
		if err != nil && ctx.Err() != nil {
			return out, err
		}
		out[i] = Outcome[T]{Key: f.Key(), Value: v, Err: err}
		if err != nil {
			failed++
			if first == nil {
				first = err
			}
		}
	}
	if len(futures) > 0 && float64(len(futures)-failed)/float64(len(futures)) < minSuccess {
		return out, &PartialFailureError{Total: len(futures), Failed: failed, MinSuccess: minSuccess, First: first}
	}
	return out, nil
}
