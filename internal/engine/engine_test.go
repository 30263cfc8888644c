package engine

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton/internal/store"
)

func TestDelay(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		policy TaskPolicy
		next   int
		want   time.Duration
	}{
		{"constant", TaskPolicy{RetryDelay: time.Second}, 2, time.Second},
		{"constant later", TaskPolicy{RetryDelay: time.Second, Backoff: 1}, 5, time.Second},
		{"first retry", TaskPolicy{RetryDelay: time.Second, Backoff: 2}, 2, time.Second},
		{"third retry", TaskPolicy{RetryDelay: time.Second, Backoff: 2}, 4, 4 * time.Second},
		{"capped", TaskPolicy{RetryDelay: time.Second, Backoff: 10, MaxDelay: 5 * time.Second}, 4, 5 * time.Second},
		{"zero", TaskPolicy{}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.policy.Delay(tt.next); got != tt.want {
				t.Errorf("Delay(%d) = %s, want %s", tt.next, got, tt.want)
			}
		})
	}
}

func TestDelayJitterBounds(t *testing.T) {
	t.Parallel()
	p := TaskPolicy{RetryDelay: time.Second, Jitter: 0.2}
	for range 1000 {
		if d := p.Delay(2); d < 800*time.Millisecond || d > 1200*time.Millisecond {
			t.Fatalf("Delay with 20%% jitter = %s, outside [0.8s, 1.2s]", d)
		}
	}
}

func TestShouldRetry(t *testing.T) {
	t.Parallel()
	transient := errors.New("transient")
	tests := []struct {
		name    string
		policy  TaskPolicy
		err     error
		attempt int
		want    bool
	}{
		{"retries left", TaskPolicy{Retries: 2}, transient, 1, true},
		{"last retry used", TaskPolicy{Retries: 2}, transient, 3, false},
		{"no retries", TaskPolicy{}, transient, 1, false},
		{"permanent", TaskPolicy{Retries: 5}, &PermanentError{Err: transient}, 1, false},
		{"nondeterminism", TaskPolicy{Retries: 5}, &NonDeterminismError{}, 1, false},
		{"condition says no", TaskPolicy{Retries: 5, RetryIf: func(error) bool { return false }}, transient, 1, false},
		{"condition says yes", TaskPolicy{Retries: 5, RetryIf: func(err error) bool { return errors.Is(err, transient) }}, transient, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.policy.shouldRetry(tt.err, tt.attempt); got != tt.want {
				t.Errorf("shouldRetry = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestErrorInfoChain(t *testing.T) {
	t.Parallel()
	base := errors.New("disk full")
	err := &TaskError{Key: "load/2", Task: "load", Attempts: 3, Err: &PermanentError{Err: base}}
	info := ErrorInfo(err)
	if info.Kind != "permanent" || info.Type != "*fault.TaskError" || len(info.Chain) != 2 {
		t.Fatalf("ErrorInfo = %+v", info)
	}
	if ErrorInfo(nil) != nil {
		t.Fatal("ErrorInfo(nil) != nil")
	}
	if k := ErrorInfo(&TimeoutError{What: "x", Timeout: time.Second}).Kind; k != "timeout" {
		t.Fatalf("timeout kind = %q", k)
	}
}

// countingStore records BatchWrite calls; other methods are unused here.
type countingStore struct {
	store.Store
	mu      sync.Mutex
	batches []store.Batch
	gate    chan struct{} // when set, BatchWrite waits for it
}

func (s *countingStore) BatchWrite(_ context.Context, b store.Batch) error {
	if s.gate != nil {
		<-s.gate
	}
	s.mu.Lock()
	s.batches = append(s.batches, b)
	s.mu.Unlock()
	return nil
}

func TestWriterCoalescesAndGroupsCommits(t *testing.T) {
	t.Parallel()
	st := &countingStore{gate: make(chan struct{})}
	w := newWriter(st, time.Hour)
	defer w.close()

	// The first urgent write starts a commit that blocks on the gate; the
	// writes queued meanwhile must share the next commit.
	done := make(chan error, 10)
	// The first urgent write commits on its own goroutine and blocks there.
	go w.add(write{taskRuns: []store.TaskRun{{ID: "a", State: store.TaskRunning}}}, func(err error) { done <- err })
	for !w.isCommitting() {
		time.Sleep(time.Millisecond)
	}
	for _, id := range []string{"b", "c"} {
		w.add(write{taskRuns: []store.TaskRun{{ID: id, State: store.TaskRunning}}}, nil) // lazy
		w.add(write{taskRuns: []store.TaskRun{{ID: id, State: store.TaskCompleted}}}, func(err error) { done <- err })
	}
	close(st.gate)
	for range 3 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	var rows int
	for _, b := range st.batches {
		rows += len(b.TaskRuns)
		for _, tr := range b.TaskRuns {
			if tr.ID != "a" && tr.State != store.TaskCompleted {
				t.Errorf("task run %s written as %s; the later state should win", tr.ID, tr.State)
			}
		}
	}
	if len(st.batches) > 2 || rows != 3 {
		t.Fatalf("%d commits with %d rows; want at most 2 commits and 3 rows", len(st.batches), rows)
	}
}

func TestWriterLazyFlushAndClose(t *testing.T) {
	t.Parallel()
	st := &countingStore{}
	w := newWriter(st, time.Millisecond)
	w.add(write{logs: []store.LogRecord{{Message: "hello"}}}, nil)
	w.close()
	w.close() // twice is fine
	st.mu.Lock()
	n := len(st.batches)
	st.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d commits; want the lazy write flushed once", n)
	}
	errc := make(chan error, 1)
	w.add(write{logs: []store.LogRecord{{Message: "late"}}}, func(err error) { errc <- err })
	if err := <-errc; !errors.Is(err, errWriterClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestPoolBoundsConcurrency(t *testing.T) {
	t.Parallel()
	p := newPool(3)
	var mu sync.Mutex
	running, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		p.push(func() {
			defer wg.Done()
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			time.Sleep(time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	wg.Wait()
	p.close()
	if peak > 3 || peak == 0 {
		t.Fatalf("peak concurrency %d, want 1..3", peak)
	}
	if p.push(func() {}) {
		t.Fatal("push after close succeeded")
	}
}

func TestCompletions(t *testing.T) {
	t.Parallel()
	a, b := newFuture("a"), newFuture("b")
	b.resolve(2, nil)
	c := Collect([]*Future{a, b, a})
	if f, ok := c.Next(context.Background()); !ok || f != b {
		t.Fatalf("first Next = %v, %v; want b", f, ok)
	}
	a.resolve(1, nil)
	for range 2 {
		if f, ok := c.Next(context.Background()); !ok || f != a {
			t.Fatalf("Next = %v, %v; want a", f, ok)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := Collect([]*Future{newFuture("x")}).Next(ctx); ok {
		t.Fatal("Next on a cancelled ctx returned a future")
	}
	if _, err := newFuture("x").Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait on cancelled ctx = %v", err)
	}
}

// TestFutureActivityHandoff: a waiter's unit of work is released while it
// blocks and counted again by the resolver before the waiter wakes, for
// Wait and for Completions.Next; a waiter given up on counts itself again.
func TestFutureActivityHandoff(t *testing.T) {
	t.Parallel()
	for _, via := range []string{"Wait", "Next", "cancelled"} {
		t.Run(via, func(t *testing.T) {
			t.Parallel()
			var n atomic.Int64
			n.Store(1) // the waiter's unit
			released := make(chan struct{}, 1)
			act := func(d int) {
				if n.Add(int64(d)) == 0 {
					released <- struct{}{}
				}
			}
			f := newFuture("k")
			f.act = act
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			woke := make(chan int64)
			go func() {
				if via == "Next" {
					Collect([]*Future{f}).Next(ctx)
				} else {
					f.Wait(ctx)
				}
				woke <- n.Load()
			}()
			<-released
			if via == "cancelled" {
				cancel()
			} else {
				f.resolve(1, nil)
			}
			if got := <-woke; got != 1 {
				t.Fatalf("count when the waiter woke = %d, want 1", got)
			}
		})
	}
}

func (w *writer) isCommitting() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committing
}
