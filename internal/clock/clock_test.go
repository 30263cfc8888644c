package clock_test

import (
	"context"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/clock"
)

func TestFakeMovesOnlyWhenAdvanced(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC)
	c := clock.NewFake(start)
	timer := c.NewTimer(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case <-timer.Chan():
		t.Fatal("timer fired before the clock moved")
	default:
	}
	c.Advance(time.Hour)
	select {
	case got := <-timer.Chan():
		if !got.Equal(start.Add(time.Hour)) {
			t.Fatalf("fired at %v, want %v", got, start.Add(time.Hour))
		}
	case <-ctx.Done():
		t.Fatal("timer did not fire after the clock moved")
	}
	if got := c.Since(start); got != time.Hour {
		t.Fatalf("Since = %v, want 1h", got)
	}
}

func TestOrDefaultsToTheSystemClock(t *testing.T) {
	t.Parallel()
	if d := time.Since(clock.Or(nil).Now()); d < 0 || d > time.Minute {
		t.Fatalf("Or(nil) is not the system clock: off by %v", d)
	}
	f := clock.NewFake(time.Unix(0, 0))
	if clock.Or(f) != clock.Clock(f) {
		t.Fatal("Or(c) did not return c")
	}
}

func TestSleep(t *testing.T) {
	t.Parallel()
	c := clock.NewFake(time.Unix(0, 0))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan bool)
	go func() { done <- clock.Sleep(ctx, c, time.Minute) }()
	if err := c.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	c.Advance(time.Minute)
	if !<-done {
		t.Fatal("Sleep reported its context ended; the clock moved")
	}
	stop, cancelSleep := context.WithCancel(ctx)
	go func() { done <- clock.Sleep(stop, c, time.Minute) }()
	if err := c.BlockUntilContext(ctx, 1); err != nil {
		t.Fatal(err)
	}
	cancelSleep()
	if <-done {
		t.Fatal("Sleep reported d passed; its context ended")
	}
	// A sleep that ended does not count as a waiter any more.
	blocked, cancelBlock := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelBlock()
	if err := c.BlockUntilContext(blocked, 1); err == nil {
		t.Fatal("an ended Sleep still counts as waiting on the clock")
	}
}
