package batontest

import (
	"sync"
	"time"

	"github.com/jonboulle/clockwork"

	"github.com/batonhq/baton/internal/clock"
)

// settle is how long an environment must stay idle (no work in progress,
// no timer made or moved, the fake time unchanged) before its clock moves
// by itself: it lets goroutines that were just woken, and that the
// engine's accounting cannot see yet, start their work first.
const settle = time.Millisecond

// testClock is the fake clock of an environment: a clock.Fake whose timers
// it also keeps, so that it knows when the next one is due, and that moves
// to it by itself when nothing is working (auto).
//
// Work is what the engine reports through its Activity setting: a count
// of units in progress, which reads zero when every run, step and task
// function waits on the clock or on a future. The callbacks of timers that
// an advance fires count as work from before the advance until they
// return, so that the work they start is never missed.
type testClock struct {
	fake *clock.Fake
	auto bool
	// hold, when set, is asked before the clock moves by itself; true
	// keeps it still (until the next poke). It must not call the clock.
	hold func() bool

	mu     sync.Mutex
	timers map[*entry]struct{} // timers and tickers that may still fire
	busy   int                 // units of work in progress
	gen    uint64              // changes with any work, timer or advance
	idle   *sync.Cond          // broadcast when busy drops to zero

	kick chan struct{}
	quit chan struct{}
	done chan struct{}
}

// entry is a timer or ticker made through a testClock.
type entry struct {
	at     time.Time     // when it fires next
	period time.Duration // a ticker's; 0 for a timer
	fn     bool          // an AfterFunc, whose callback is work
	due    bool          // its callback is counted as work
}

func newTestClock(start time.Time, auto bool, hold func() bool) *testClock {
	c := &testClock{fake: clock.NewFake(start), auto: auto, hold: hold, timers: map[*entry]struct{}{},
		kick: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
	c.idle = sync.NewCond(&c.mu)
	if auto {
		go c.loop()
	} else {
		close(c.done)
	}
	return c
}

// stop ends the clock's moving by itself.
func (c *testClock) stop() {
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	<-c.done
}

// activity is the engine's Activity setting.
func (c *testClock) activity(delta int) {
	c.mu.Lock()
	c.busy += delta
	c.gen++
	idle := c.busy <= 0
	if idle {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
	if idle {
		c.poke()
	}
}

// waitIdle blocks until the work waits on the clock (or there is none),
// and has for settle.
func (c *testClock) waitIdle() {
	wait := time.NewTimer(time.Hour)
	defer wait.Stop()
	c.mu.Lock()
	for {
		for c.busy > 0 {
			c.idle.Wait()
		}
		gen := c.gen
		c.mu.Unlock()
		wait.Reset(settle)
		<-wait.C
		c.mu.Lock()
		if c.gen == gen && c.busy <= 0 {
			c.mu.Unlock()
			return
		}
	}
}

func (c *testClock) poke() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// add keeps a new timer that fires after d, made by mk on the fake clock
// (under c.mu, so that both agree on when it fires).
func (c *testClock) add(e *entry, d time.Duration, mk func()) {
	c.mu.Lock()
	e.at = c.fake.Now().Add(d)
	if e.fn && d <= 0 {
		// The fake clock runs it at once, on its own goroutine.
		e.due = true
		c.busy++
	}
	c.timers[e] = struct{}{}
	c.gen++
	mk()
	c.mu.Unlock()
	c.poke()
}

func (c *testClock) remove(e *entry) {
	c.mu.Lock()
	delete(c.timers, e)
	c.mu.Unlock()
}

// ran ends the work of a callback that was counted.
func (c *testClock) ran(e *entry) {
	c.mu.Lock()
	delete(c.timers, e)
	if e.due {
		e.due = false
		c.busy--
	}
	c.gen++
	idle := c.busy <= 0
	if idle {
		c.idle.Broadcast()
	}
	c.mu.Unlock()
	if idle {
		c.poke()
	}
}

// nextLocked returns when the next timer fires, dropping the timers that
// fired. c.mu must be held.
func (c *testClock) nextLocked() (time.Time, bool) {
	now := c.fake.Now()
	var next time.Time
	for e := range c.timers {
		if !e.at.After(now) {
			if e.period <= 0 {
				if !e.fn {
					delete(c.timers, e) // a fired timer; a callback leaves once it ran
				}
				continue
			}
			n := now.Sub(e.at)/e.period + 1
			e.at = e.at.Add(n * e.period)
		}
		if next.IsZero() || e.at.Before(next) {
			next = e.at
		}
	}
	return next, !next.IsZero()
}

// advance moves the clock forward by d, firing the timers due meanwhile.
func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.advanceLocked(d)
	c.mu.Unlock()
	c.poke()
}

func (c *testClock) advanceLocked(d time.Duration) {
	end := c.fake.Now().Add(d)
	for e := range c.timers {
		if e.fn && !e.due && !e.at.After(end) {
			e.due = true
			c.busy++
		}
	}
	c.gen++
	c.fake.Advance(d)
}

// loop moves the clock to the next timer whenever the environment has
// been idle for settle.
func (c *testClock) loop() {
	defer close(c.done)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		select {
		case <-c.kick:
		case <-c.quit:
			return
		}
		for {
			c.mu.Lock()
			_, ok := c.nextLocked()
			idle, gen := c.busy <= 0, c.gen
			c.mu.Unlock()
			if !idle || !ok {
				break
			}
			wait.Reset(settle)
			select {
			case <-wait.C:
			case <-c.quit:
				return
			}
			if c.hold != nil && c.hold() {
				break // a poke asks again
			}
			c.mu.Lock()
			if c.gen == gen && c.busy <= 0 {
				if next, ok := c.nextLocked(); ok {
					c.advanceLocked(next.Sub(c.fake.Now()))
				}
			}
			c.mu.Unlock()
		}
	}
}

// The clock.Clock interface.

func (c *testClock) Now() time.Time                  { return c.fake.Now() }
func (c *testClock) Since(t time.Time) time.Duration { return c.fake.Since(t) }
func (c *testClock) Until(t time.Time) time.Duration { return c.fake.Until(t) }
func (c *testClock) After(d time.Duration) <-chan time.Time {
	return c.NewTimer(d).Chan()
}
func (c *testClock) Sleep(d time.Duration) { <-c.After(d) }

func (c *testClock) NewTimer(d time.Duration) clockwork.Timer {
	e := &entry{}
	var t clockwork.Timer
	c.add(e, d, func() { t = c.fake.NewTimer(d) })
	return &timer{c: c, e: e, t: t}
}

func (c *testClock) AfterFunc(d time.Duration, f func()) clockwork.Timer {
	e := &entry{fn: true}
	var t clockwork.Timer
	c.add(e, d, func() {
		t = c.fake.AfterFunc(d, func() {
			defer c.ran(e)
			f()
		})
	})
	return &timer{c: c, e: e, t: t}
}

func (c *testClock) NewTicker(d time.Duration) clockwork.Ticker {
	e := &entry{period: d}
	var t clockwork.Ticker
	c.add(e, d, func() { t = c.fake.NewTicker(d) })
	return &ticker{c: c, e: e, t: t}
}

type timer struct {
	c *testClock
	e *entry
	t clockwork.Timer
}

func (t *timer) Chan() <-chan time.Time { return t.t.Chan() }

func (t *timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	stopped := t.t.Stop()
	if stopped {
		delete(t.c.timers, t.e)
		if t.e.due { // counted by an advance that has not fired it: cannot happen, but keep the count true
			t.e.due = false
			t.c.busy--
		}
	}
	return stopped
}

func (t *timer) Reset(d time.Duration) bool {
	t.c.mu.Lock()
	was := t.t.Reset(d)
	t.e.at = t.c.fake.Now().Add(d)
	t.c.timers[t.e] = struct{}{}
	t.c.gen++
	t.c.mu.Unlock()
	t.c.poke()
	return was
}

type ticker struct {
	c *testClock
	e *entry
	t clockwork.Ticker
}

func (t *ticker) Chan() <-chan time.Time { return t.t.Chan() }

func (t *ticker) Stop() {
	t.t.Stop()
	t.c.remove(t.e)
}

func (t *ticker) Reset(d time.Duration) {
	t.c.mu.Lock()
	t.t.Reset(d)
	t.e.period = d
	t.e.at = t.c.fake.Now().Add(d)
	t.c.timers[t.e] = struct{}{}
	t.c.gen++
	t.c.mu.Unlock()
	t.c.poke()
}
