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

	// act is Config.Activity (nil when unset): Wait releases its caller's
	// unit of work while it blocks, and resolve takes it again for each
	// waiter before waking it.
	act func(int)

	// node is the run-graph node of the step (its key, or its map's), and
	// recv notes that the flow received its result (nil for futures that
	// are no step of a flow).
	node string
	recv func(node string)

	mu      sync.Mutex
	subs    []func(*Future)
	waiters int // blocked in Wait, their units released
	settled bool
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
	f.settled = true
	if f.waiters > 0 {
		f.act(f.waiters)
		f.waiters = 0
	}
	close(f.done)
	subs := f.subs
	f.subs = nil
	f.mu.Unlock()
	for _, sub := range subs {
		sub(f)
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
	if f.act == nil {
		select {
		case <-f.done:
			return f.val, f.err
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		}
	}
	f.mu.Lock()
	if f.settled {
		f.mu.Unlock()
		return f.val, f.err
	}
	f.waiters++
	f.mu.Unlock()
	f.act(-1)
	select {
	case <-f.done: // resolve counted us again
		return f.val, f.err
	case <-ctx.Done():
		f.mu.Lock()
		if !f.settled {
			f.waiters--
			f.act(1)
		}
		f.mu.Unlock()
		return nil, context.Cause(ctx)
	}
}

// Take is Wait for the flow code: a result it returns counts as received
// by the flow, so that the calls the flow makes afterwards depend on the
// future's step in the run graph.
func (f *Future) Take(ctx context.Context) (any, error) {
	v, err := f.Wait(ctx)
	f.taken()
	return v, err
}

// taken notes that the flow received f's result, once f is resolved.
func (f *Future) taken() {
	if f.recv == nil {
		return
	}
	select {
	case <-f.done:
		f.recv(f.node)
	default:
	}
}

// onResolve calls fn with f once f is resolved (at once if it already
// is). fn must not block.
func (f *Future) onResolve(fn func(*Future)) {
	f.mu.Lock()
	if f.settled {
		f.mu.Unlock()
		fn(f)
		return
	}
	f.subs = append(f.subs, fn)
	f.mu.Unlock()
}

// Completions delivers futures in the order they resolve (AsCompleted).
// Next releases its caller's unit of work (Config.Activity) while it
// blocks, as Wait does.
type Completions struct {
	act func(int)

	mu    sync.Mutex
	ready []*Future
	wake  chan struct{} // non-nil while Next blocks
}

// Collect returns the completions of futs.
func Collect(futs []*Future) *Completions {
	c := &Completions{}
	for _, f := range futs {
		if f.act != nil {
			c.act = f.act
		}
	}
	for _, f := range futs {
		f.onResolve(c.add)
	}
	return c
}

func (c *Completions) add(f *Future) {
	c.mu.Lock()
	c.ready = append(c.ready, f)
	if c.wake != nil {
		if c.act != nil {
			c.act(1) // for the Next that is woken
		}
		close(c.wake)
		c.wake = nil
	}
	c.mu.Unlock()
}

// Next returns the next future to resolve, or false when ctx is done
// first. Call it at most once per future given to Collect.
func (c *Completions) Next(ctx context.Context) (*Future, bool) {
	c.mu.Lock()
	if len(c.ready) == 0 {
		wake := make(chan struct{})
		c.wake = wake
		c.mu.Unlock()
		if c.act != nil {
			c.act(-1)
		}
		select {
		case <-wake:
		case <-ctx.Done():
			c.mu.Lock()
			if c.wake == wake { // not woken: count ourselves again
				c.wake = nil
				if c.act != nil {
					c.act(1)
				}
			}
			c.mu.Unlock()
			return nil, false
		}
		c.mu.Lock()
	}
	f := c.ready[0]
	c.ready = c.ready[1:]
	c.mu.Unlock()
	f.taken()
	return f, true
}
