package engine

import (
	"context"
	"sync"
)

// Future is the eventual result of a step. It is resolved exactly once, after
// the step's final record is durable.
type Future struct {
	key  string
	done chan struct{}
	val  any
	err  error

	mu   sync.Mutex
	subs []chan<- *Future
}

func newFuture(key string) *Future { return &Future{key: key, done: make(chan struct{})} }

func resolvedFuture(key string, v any, err error) *Future {
	f := newFuture(key)
	f.resolve(v, err)
	return f
}

func (f *Future) resolve(v any, err error) {
	f.mu.Lock()
	f.val, f.err = v, err
	close(f.done)
	subs := f.subs
	f.subs = nil
	f.mu.Unlock()
	for _, ch := range subs {
		ch <- f
	}
}

// Key returns the step key of the future's step.
func (f *Future) Key() string { return f.key }

// Done is closed when the future is resolved.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result returns the resolved value and error; valid once Done is closed.
func (f *Future) Result() (any, error) {
	<-f.done
	return f.val, f.err
}

// Wait blocks until the future is resolved or ctx is done.
func (f *Future) Wait(ctx context.Context) (any, error) {
	select {
	case <-f.done:
		return f.val, f.err
	default:
	}
	select {
	case <-f.done:
		return f.val, f.err
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

// Notify sends f on ch once f is resolved (at once if it already is). ch
// must have room: Notify never blocks the resolving goroutine for long.
func (f *Future) Notify(ch chan<- *Future) {
	f.mu.Lock()
	select {
	case <-f.done:
		f.mu.Unlock()
		ch <- f
		return
	default:
	}
	f.subs = append(f.subs, ch)
	f.mu.Unlock()
}
