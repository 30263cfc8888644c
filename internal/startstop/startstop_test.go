package startstop_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batonhq/baton/internal/startstop"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// part is a minimal long-lived part: one goroutine that runs until stopped.
type part struct {
	startstop.Base
	starts, stops atomic.Int32
	ended         atomic.Bool
}

func (p *part) Start(ctx context.Context) error {
	return p.Base.Start(ctx, func(ctx context.Context) error {
		p.starts.Add(1)
		p.Go(func() {
			<-ctx.Done()
			p.ended.Store(true)
		})
		return nil
	})
}

func (p *part) Stop() { p.Base.Stop(nil, func() { p.stops.Add(1) }) }

func TestStartStopTwice(t *testing.T) {
	t.Parallel()
	p := &part{}
	p.Stop() // before Start: nothing
	if p.stops.Load() != 0 || p.Running() {
		t.Fatal("Stop before Start did something")
	}
	for range 2 {
		if err := p.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if p.starts.Load() != 1 || !p.Running() {
		t.Fatalf("started %d times, running %v; want once, running", p.starts.Load(), p.Running())
	}
	p.Stop()
	if !p.ended.Load() {
		t.Fatal("Stop returned before the goroutine ended")
	}
	p.Stop()
	if p.stops.Load() != 1 || p.Running() {
		t.Fatalf("stopped %d times, running %v", p.stops.Load(), p.Running())
	}
	if err := p.Start(context.Background()); !errors.Is(err, startstop.ErrStopped) {
		t.Fatalf("Start after Stop = %v, want ErrStopped", err)
	}
}

func TestConcurrentStartStop(t *testing.T) {
	t.Parallel()
	for range 50 {
		p := &part{}
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					_ = p.Start(context.Background())
				} else {
					p.Stop()
				}
			}()
		}
		wg.Wait()
		p.Stop()
		if p.starts.Load() > 1 || p.stops.Load() != p.starts.Load() {
			t.Fatalf("starts %d, stops %d", p.starts.Load(), p.stops.Load())
		}
		if p.starts.Load() == 1 && !p.ended.Load() {
			t.Fatal("a started part's goroutine did not end")
		}
	}
}

func TestStartContextEndsOnlyWithStop(t *testing.T) {
	t.Parallel()
	p := &part{}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if p.ended.Load() {
		t.Fatal("cancelling Start's context stopped the part")
	}
	p.Stop()
	if !p.ended.Load() {
		t.Fatal("Stop did not end the part")
	}
}

func TestFailedStartWaitsAndAllowsRetry(t *testing.T) {
	t.Parallel()
	var b startstop.Base
	ended := make(chan struct{})
	err := b.Start(context.Background(), func(ctx context.Context) error {
		b.Go(func() { <-ctx.Done(); close(ended) })
		return errors.New("boom")
	})
	if err == nil || err.Error() != "boom" {
		t.Fatalf("Start = %v, want boom", err)
	}
	select {
	case <-ended:
	default:
		t.Fatal("Start returned its error before the goroutine it launched ended")
	}
	if b.Running() {
		t.Fatal("a failed start left the part running")
	}
	if err := b.Start(context.Background(), func(context.Context) error { return nil }); err != nil {
		t.Fatalf("Start after a failed Start = %v", err)
	}
	b.Stop(nil, nil)
}
