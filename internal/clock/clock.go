// Package clock is the one source of time for every part of Baton that
// decides by it: leases, heartbeats, retries and their delays, timeouts,
// timers, schedules and retention. Production code reads time only through
// a [Clock]; tests inject a fake one ([NewFake]) and move it forward instead
// of sleeping.
//
// The interface is github.com/jonboulle/clockwork's, a small, widely used
// library whose fake clock also reports how many goroutines wait on it
// (BlockUntilContext), which is what a test needs to advance time at the
// right moment without racing the code under test.
package clock

import (
	"context"
	"time"

	"github.com/jonboulle/clockwork"
)

// Clock tells the time and makes timers, tickers and sleeps.
type Clock = clockwork.Clock

// Timer is a timer of a Clock.
type Timer = clockwork.Timer

// Fake is a clock that moves only when a test advances it.
type Fake = clockwork.FakeClock

// Real returns the system clock.
func Real() Clock { return clockwork.NewRealClock() }

// NewFake returns a fake clock set to start.
func NewFake(start time.Time) *Fake { return clockwork.NewFakeClockAt(start) }

// Or returns c, or the system clock when c is nil: the default of every
// component's Clock setting.
func Or(c Clock) Clock {
	if c == nil {
		return Real()
	}
	return c
}

// Sleep waits d on c, or until ctx ends, and reports whether d passed. Its
// timer is stopped when ctx ends first, so a fake clock counts only the
// goroutines still waiting (BlockUntilContext), unlike c.After's.
func Sleep(ctx context.Context, c Clock, d time.Duration) bool {
	t := c.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.Chan():
		return true
	case <-ctx.Done():
		return false
	}
}
