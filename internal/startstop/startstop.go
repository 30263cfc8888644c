// Package startstop gives Baton's long-lived parts (the server, the worker,
// the engine's writer, the PostgreSQL notifier) one lifecycle: Start(ctx)
// starts their goroutines and returns, Stop ends them and returns once they
// have ended. Both are safe to call twice and from several goroutines at
// once; Stop before Start does nothing.
//
// A part embeds (or holds) a [Base] and implements its own Start and Stop
// with [Base.Start] and [Base.Stop], launching its goroutines with
// [Base.Go] so that Stop waits for them.
package startstop

import (
	"context"
	"errors"
	"sync"
)

// ErrStopped is returned by Start after Stop ended a run: a part runs at
// most once.
var ErrStopped = errors.New("started again after it was stopped")

type state int

const (
	idle state = iota
	running
	stopped
)

// Base tracks whether a part runs and the goroutines it started. The zero
// value is ready to use; a Base must not be copied after first use.
type Base struct {
	mu     sync.Mutex // held through start and stop functions: they never overlap
	state  state
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Start runs start, unless the part runs already (then it returns nil at
// once) or was stopped (ErrStopped). start receives a context that ends
// when Stop is called (it carries ctx's values but not its cancellation:
// ctx bounds only the start itself, which start may use it for); it should
// launch the part's goroutines with Go and return. When start fails, the
// goroutines it launched are stopped and waited for, the part does not run
// and a later Start may try again.
//
// A concurrent Stop waits for start to return.
func (b *Base) Start(ctx context.Context, start func(ctx context.Context) error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case running:
		return nil
	case stopped:
		return ErrStopped
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	if err := start(runCtx); err != nil {
		cancel()
		b.wg.Wait()
		return err
	}
	b.cancel, b.state = cancel, running
	return nil
}

// Go runs fn in a goroutine that Stop waits for. Call it from the start
// function or from a goroutine started with Go, never after Stop began
// waiting.
func (b *Base) Go(fn func()) {
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		fn()
	}()
}

// Stop ends a running part: it calls before (when not nil), cancels the
// context given to start, waits for the goroutines started with Go, then
// calls after (when not nil). It returns when all that is done, also to a
// concurrent second caller. Stop of a part that is not running (never
// started, or stopped already) does nothing.
func (b *Base) Stop(before, after func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state != running {
		return
	}
	if before != nil {
		before()
	}
	b.cancel()
	b.wg.Wait()
	if after != nil {
		after()
	}
	b.state = stopped
}

// Running reports whether the part has started and not stopped. It must
// not be called from a start or stop function (they hold the Base).
func (b *Base) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state == running
}
