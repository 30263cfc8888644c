package engine

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/internal/clock"
)

// This file holds the engine's use of time: every wait, timer, timeout and
// reading of the time goes through Config.Clock, and every wait is
// reported to Config.Activity, so that a test can run the engine on a fake
// clock that moves forward by itself when all the engine's work waits on
// it (package batontest).
//
// Activity counts units of work in progress: a run executing (its flow
// function, its own records), a task step from its call to its result
// (queued, running, recording), a task function running. A unit is
// released while it waits on the clock or on a future, and taken again by
// whoever ends the wait (the timer's callback, the resolving step) before
// the waiter is woken, so that the count never reads zero while a wake-up
// is in flight.

// act reports delta units of work to Config.Activity.
func (e *Engine) act(delta int) {
	if e.cfg.Activity != nil {
		e.cfg.Activity(delta)
	}
}

// sleep waits d on the engine's clock, or until done is closed, and
// reports whether d elapsed. The caller's unit of work is released while
// it waits.
func (e *Engine) sleep(done <-chan struct{}, d time.Duration) bool {
	ch := make(chan struct{})
	var woken atomic.Bool
	t := e.cfg.Clock.AfterFunc(d, func() {
		if woken.CompareAndSwap(false, true) {
			e.act(1)
			close(ch)
		}
	})
	e.act(-1)
	select {
	case <-ch:
		return true
	case <-done:
		t.Stop()
		if woken.CompareAndSwap(false, true) {
			e.act(1) // else the callback took it for us
		}
		return false
	}
}

// withTimeoutCause is context.WithTimeoutCause on clk: the context is
// cancelled with cause when d has passed on clk, and then reports
// context.DeadlineExceeded as its error and clk's time plus d as its
// deadline. (Contexts derived from it report context.Canceled, with the
// same cause.)
func withTimeoutCause(parent context.Context, clk clock.Clock, d time.Duration, cause error) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	dc := &deadlineCtx{Context: ctx, deadline: clk.Now().Add(d), cause: cause}
	if pd, ok := parent.Deadline(); ok && pd.Before(dc.deadline) {
		dc.deadline = pd
	}
	t := clk.AfterFunc(d, func() { cancel(cause) })
	return dc, func() {
		t.Stop()
		cancel(context.Canceled)
	}
}

// deadlineCtx is a cancellable context with a deadline on an injected
// clock.
type deadlineCtx struct {
	context.Context
	deadline time.Time
	cause    error
}

func (c *deadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *deadlineCtx) Err() error {
	err := c.Context.Err()
	if err != nil && context.Cause(c.Context) == c.cause {
		return context.DeadlineExceeded
	}
	return err
}
