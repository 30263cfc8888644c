package baton_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// bundle is a runtime on a fresh store plus a reader of the same store.
type bundle struct {
	rt *baton.Runtime
	db string
}

func setup(t *testing.T) *bundle {
	t.Helper()
	db := filepath.Join(t.TempDir(), "baton.db")
	rt, err := baton.Open(context.Background(), baton.Config{DB: db, LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return &bundle{rt: rt, db: db}
}

// taskRuns reads a run's task runs from a second connection to the store.
func (b *bundle) taskRuns(t *testing.T, runID string) []store.TaskRun {
	t.Helper()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	trs, err := st.TaskRunList(context.Background(), store.TaskRunListParams{RunID: runID})
	if err != nil {
		t.Fatal(err)
	}
	return trs
}

func (b *bundle) events(t *testing.T, runID string) []store.Event {
	t.Helper()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	evs, err := st.EventList(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// name returns a task or flow name unique to the test.
func name(t *testing.T, s string) string { return t.Name() + "/" + s }

func TestRunSubmitMapWaitAll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	square := baton.Task(name(t, "square"), func(_ context.Context, n int) (int, error) { return n * n, nil })
	flow := baton.Flow(name(t, "sweep"), func(ctx baton.Context, n int) (int, error) {
		one, err := square.Run(ctx, n)
		if err != nil {
			return 0, err
		}
		all, err := baton.WaitAll(ctx, square.Map(ctx, []int{1, 2, 3}))
		if err != nil {
			return 0, err
		}
		four, err := square.Submit(ctx, 4).Wait(ctx)
		if err != nil {
			return 0, err
		}
		return one + all[0] + all[1] + all[2] + four, nil
	})
	got, info, err := flow.Execute(context.Background(), b.rt, 5)
	if err != nil {
		t.Fatal(err)
	}
	if got != 25+1+4+9+16 || info.State != "COMPLETED" || info.Attempt != 1 {
		t.Fatalf("got %d, %+v", got, info)
	}
	trs := b.taskRuns(t, info.ID)
	var keys []string
	for _, tr := range trs {
		keys = append(keys, strings.TrimPrefix(tr.Key, name(t, "")))
		if tr.State != store.TaskCompleted || tr.Attempts != 1 {
			t.Errorf("task run %s: %s after %d attempts", tr.Key, tr.State, tr.Attempts)
		}
	}
	slices.Sort(keys)
	want := []string{"square/0", "square/1.0", "square/1.1", "square/1.2", "square/2"}
	if !slices.Equal(keys, want) {
		t.Fatalf("keys %v, want %v", keys, want)
	}
}

func TestRetriesWithBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int32
	var times []time.Time
	var mu sync.Mutex
	flaky := baton.Task(name(t, "flaky"), func(_ context.Context, _ struct{}) (string, error) {
		mu.Lock()
		times = append(times, time.Now())
		mu.Unlock()
		if calls.Add(1) < 3 {
			return "", errors.New("transient")
		}
		return "ok", nil
	}, baton.Retries(3), baton.RetryDelay(20*time.Millisecond), baton.Backoff(2, time.Second), baton.Jitter(0))
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ struct{}) (string, error) {
		return flaky.Run(ctx, struct{}{})
	})
	got, info, err := flow.Execute(context.Background(), b.rt, struct{}{})
	if err != nil || got != "ok" {
		t.Fatalf("got %q, %v", got, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3", calls.Load())
	}
	if d1, d2 := times[1].Sub(times[0]), times[2].Sub(times[1]); d1 < 20*time.Millisecond || d2 < 40*time.Millisecond {
		t.Errorf("delays %s, %s; want >= 20ms, >= 40ms", d1, d2)
	}
	trs := b.taskRuns(t, info.ID)
	if len(trs) != 1 || trs[0].Attempts != 3 || trs[0].State != store.TaskCompleted {
		t.Fatalf("task runs %+v", trs)
	}
	var retries int
	for _, ev := range b.events(t, info.ID) {
		if ev.To == string(store.TaskAwaitingRetry) {
			retries++
		}
	}
	if retries != 2 {
		t.Errorf("%d AWAITING_RETRY events, want 2", retries)
	}
}

func TestPermanentAndRetryIf(t *testing.T) {
	t.Parallel()
	errSkip := errors.New("skip me")
	tests := []struct {
		name string
		err  error
		opts []baton.TaskOption
		want int32
	}{
		{"permanent", baton.Permanent(errors.New("bad input")), nil, 1},
		{"retry-if-false", errSkip, []baton.TaskOption{baton.RetryIf(func(err error) bool { return !errors.Is(err, errSkip) })}, 1},
		{"retry-if-true", errors.New("again"), []baton.TaskOption{baton.RetryIf(func(error) bool { return true })}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var calls atomic.Int32
			opts := append([]baton.TaskOption{baton.Retries(2), baton.RetryDelay(time.Millisecond)}, tt.opts...)
			task := baton.Task(name(t, "t"), func(context.Context, int) (int, error) {
				calls.Add(1)
				return 0, tt.err
			}, opts...)
			flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return task.Run(ctx, 1) })
			_, info, err := flow.Execute(context.Background(), b.rt, 0)
			if err == nil || info.State != "FAILED" {
				t.Fatalf("err %v, state %s; want FAILED", err, info.State)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("error %v does not wrap %v", err, tt.err)
			}
			if calls.Load() != tt.want {
				t.Errorf("calls = %d, want %d", calls.Load(), tt.want)
			}
		})
	}
}

func TestTimeoutIgnoredContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	defer close(release)
	var calls atomic.Int32
	stuck := baton.Task(name(t, "stuck"), func(context.Context, int) (int, error) {
		calls.Add(1)
		<-release // ignores its context on purpose
		return 1, nil
	}, baton.Timeout(50*time.Millisecond), baton.Retries(1), baton.RetryDelay(time.Millisecond))
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return stuck.Run(ctx, 1) })
	_, info, err := flow.Execute(context.Background(), b.rt, 0)
	var te *baton.TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a TimeoutError", err)
	}
	if calls.Load() != 2 {
		t.Errorf("calls = %d, want 2 (one retry)", calls.Load())
	}
	trs := b.taskRuns(t, info.ID)
	if len(trs) != 1 || trs[0].State != store.TaskTimedOut || trs[0].Error.Kind != "timeout" {
		t.Fatalf("task runs %+v", trs)
	}
}

func TestFlowTimeoutCancelsTasks(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sawCancel := make(chan struct{}, 1)
	slow := baton.Task(name(t, "slow"), func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		sawCancel <- struct{}{}
		return 0, ctx.Err()
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return slow.Run(ctx, 1) },
		baton.FlowTimeout(50*time.Millisecond))
	_, info, err := flow.Execute(context.Background(), b.rt, 0)
	var te *baton.TimeoutError
	if !errors.As(err, &te) || info.State != "FAILED" {
		t.Fatalf("err = %v, state %s; want a flow timeout and FAILED", err, info.State)
	}
	<-sawCancel
}

func TestCancelFlowContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{})
	slow := baton.Task(name(t, "slow"), func(ctx context.Context, _ int) (int, error) {
		close(started)
		<-ctx.Done()
		return 0, ctx.Err()
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return slow.Run(ctx, 1) })
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, info, err := flow.Execute(ctx, b.rt, 0)
	if !errors.Is(err, context.Canceled) || info.State != "CANCELLED" {
		t.Fatalf("err = %v, state %s; want CANCELLED", err, info.State)
	}
	trs := b.taskRuns(t, info.ID)
	if len(trs) != 1 || trs[0].State != store.TaskCancelled {
		t.Fatalf("task runs %+v", trs)
	}
}

// TestCancelRequestedThroughStore: a run executing locally ends CANCELLED
// within a second when another process sharing the store (a server's
// `runs cancel`) moves it to CANCELLING.
func TestCancelRequestedThroughStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan string, 1)
	slow := baton.Task(name(t, "slow"), func(ctx context.Context, _ int) (int, error) {
		info, _ := baton.TaskRunFrom(ctx)
		started <- info.RunID
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Second):
			return 0, errors.New("not cancelled")
		}
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return slow.Run(ctx, 1) })
	var cancelledAt time.Time
	go func() {
		runID := <-started
		st, err := sqlite.Open(context.Background(), b.db)
		if err != nil {
			t.Error(err)
			return
		}
		defer st.Close()
		cancelledAt = time.Now()
		if _, err := st.RunTransition(context.Background(), store.RunTransitionParams{ID: runID,
			From: []store.RunState{store.RunRunning}, To: store.RunCancelling, Cause: "user"}); err != nil {
			t.Error(err)
		}
	}()
	_, info, err := flow.Execute(context.Background(), b.rt, 0)
	if err == nil || info.State != "CANCELLED" {
		t.Fatalf("err = %v, state %s; want CANCELLED", err, info.State)
	}
	if took := time.Since(cancelledAt); took > time.Second {
		t.Errorf("the run took %s to end CANCELLED after the cancel request, want < 1s", took)
	}
	trs := b.taskRuns(t, info.ID)
	if len(trs) != 1 || trs[0].State != store.TaskCancelled {
		t.Fatalf("task runs %+v", trs)
	}
}

// TestCancelRequestedWhileAwaitingRetry: a local run waiting for its next
// attempt that a server sharing the store cancels (AWAITING_RETRY ->
// CANCELLED) stops waiting at its next poll of the store, and reports
// CANCELLED.
func TestCancelRequestedWhileAwaitingRetry(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "baton.db")
	clk := clock.NewFake(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	rt, err := baton.OpenClock(context.Background(), baton.Config{DB: db, LogOutput: io.Discard}, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	runID := make(chan string, 1)
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		select {
		case runID <- ctx.RunID():
		default:
		}
		return 0, errors.New("fails")
	}, baton.FlowRetries(1, 30*time.Second))
	go func() {
		id := <-runID
		st, err := sqlite.Open(context.Background(), db)
		if err != nil {
			t.Error(err)
			return
		}
		defer st.Close()
		// The run awaits its retry once the store says so (the fake
		// clock's waiters alone do not tell: other timers of the engine
		// wait on it during the attempt too) and its waiters are armed:
		// its poll of the store for cancels and its retry delay.
		for deadline := time.Now().Add(10 * time.Second); ; {
			if r, err := st.RunGet(context.Background(), id); err == nil && r.State == store.RunAwaitingRetry {
				break
			} else if time.Now().After(deadline) {
				t.Errorf("run %s never reached AWAITING_RETRY: %s %v", id, r.State, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
		if err := clk.BlockUntilContext(context.Background(), 2); err != nil {
			t.Error(err)
			return
		}
		if _, err = st.RunTransition(context.Background(), store.RunTransitionParams{ID: id,
			From: []store.RunState{store.RunAwaitingRetry}, To: store.RunCancelled, Cause: "user"}); err != nil {
			t.Errorf("cancel the run awaiting its retry: %v", err)
		}
		clk.Advance(time.Second) // past the next poll, before the retry
	}()
	_, info, err := flow.Execute(context.Background(), rt, 0)
	if err == nil || info.State != "CANCELLED" || info.Attempt != 1 {
		t.Fatalf("err = %v, state %s, attempt %d; want CANCELLED at attempt 1", err, info.State, info.Attempt)
	}
}

func TestCacheAcrossRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int32
	version := "v1"
	mk := func(opts ...baton.TaskOption) *baton.TaskDef[int, int] {
		baton.Forget(name(t, "expensive")) // a new version of the program
		return baton.Task(name(t, "expensive"), func(_ context.Context, n int) (int, error) {
			calls.Add(1)
			return n * 10, nil
		}, opts...)
	}
	run := func(task *baton.TaskDef[int, int], n int) (int, baton.RunInfo) {
		baton.Forget(name(t, "f"))
		flow := baton.Flow(name(t, "f"), func(ctx baton.Context, n int) (int, error) { return task.Run(ctx, n) })
		got, info, err := flow.Execute(context.Background(), b.rt, n)
		if err != nil {
			t.Fatal(err)
		}
		return got, info
	}
	task := mk(baton.Cache(baton.CachePolicy{Version: version}))
	_, first := run(task, 1)
	got, second := run(task, 1)
	if got != 10 || calls.Load() != 1 {
		t.Fatalf("got %d after %d calls; want 10 after 1", got, calls.Load())
	}
	trs := b.taskRuns(t, second.ID)
	if trs[0].State != store.TaskCached || trs[0].CachedFromRun != first.ID {
		t.Fatalf("second run task run %+v, want CACHED from %s", trs[0], first.ID)
	}
	run(task, 2) // another input misses
	run(mk(baton.Cache(baton.CachePolicy{Version: "v2"})), 1)
	if calls.Load() != 3 {
		t.Fatalf("calls = %d, want 3 (new input, new version)", calls.Load())
	}
	// A custom key ignores the input's parity; an expired entry is not reused.
	byParity := mk(baton.CacheKey(func(n int) string { return fmt.Sprint(n % 2) }))
	run(byParity, 3)
	if got, _ := run(byParity, 5); got != 30 || calls.Load() != 4 {
		t.Fatalf("custom key: got %d, calls %d; want 30, 4", got, calls.Load())
	}
	expiring := mk(baton.Cache(baton.CachePolicy{Version: "exp", Expiry: time.Nanosecond}))
	run(expiring, 7)
	run(expiring, 7)
	if calls.Load() != 6 {
		t.Fatalf("calls = %d, want 6 (expired entries rerun)", calls.Load())
	}
}

// TestRetryResumesFromFailedStep fails at step k and checks that the retry
// re-executes only step k onwards and that changed inputs rerun.
func TestRetryResumesFromFailedStep(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var failAt atomic.Int32
	failAt.Store(3)
	var mu sync.Mutex
	executed := map[int]int{}
	step := baton.Task(name(t, "step"), func(_ context.Context, i int) (int, error) {
		mu.Lock()
		executed[i]++
		mu.Unlock()
		if int32(i) == failAt.Load() {
			return 0, baton.Permanent(fmt.Errorf("step %d broke", i))
		}
		return i, nil
	})
	flow := baton.Flow(name(t, "pipeline"), func(ctx baton.Context, n int) (int, error) {
		sum := 0
		for i := range n {
			v, err := step.Run(ctx, i)
			if err != nil {
				return 0, err
			}
			sum += v
		}
		return sum, nil
	})
	_, info, err := flow.Execute(context.Background(), b.rt, 6)
	if err == nil || info.State != "FAILED" {
		t.Fatalf("first attempt: %v %s", err, info.State)
	}
	failAt.Store(-1)
	got, info2, err := flow.Retry(context.Background(), b.rt, info.ID)
	if err != nil || got != 15 {
		t.Fatalf("retry: %d, %v", got, err)
	}
	if info2.ID != info.ID || info2.Attempt != 2 {
		t.Fatalf("retry info %+v; want same id, attempt 2", info2)
	}
	want := map[int]int{0: 1, 1: 1, 2: 1, 3: 2, 4: 1, 5: 1}
	mu.Lock()
	defer mu.Unlock()
	for i, n := range want {
		if executed[i] != n {
			t.Errorf("step %d executed %d times, want %d", i, executed[i], n)
		}
	}
	if _, _, err := flow.Retry(context.Background(), b.rt, info.ID); err == nil {
		t.Error("retrying a COMPLETED run succeeded; want an error")
	}
}

func TestReplayInputChangedReruns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int32
	var offset atomic.Int32
	inc := baton.Task(name(t, "inc"), func(_ context.Context, n int) (int, error) {
		calls.Add(1)
		return n + 1, nil
	})
	fail := true
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		a, err := inc.Run(ctx, 1)
		if err != nil {
			return 0, err
		}
		c, err := inc.Run(ctx, a+int(offset.Load())) // input depends on outside state
		if err != nil {
			return 0, err
		}
		if fail {
			return 0, errors.New("fail after two steps")
		}
		return c, nil
	})
	_, info, _ := flow.Execute(context.Background(), b.rt, 0)
	fail = false
	offset.Store(10)
	got, _, err := flow.Retry(context.Background(), b.rt, info.ID)
	if err != nil || got != 13 {
		t.Fatalf("got %d, %v; want 13", got, err)
	}
	if calls.Load() != 3 {
		t.Fatalf("calls = %d; want 3 (first step reused, second rerun with its new input)", calls.Load())
	}
	if n := len(b.taskRuns(t, info.ID)); n != 3 {
		t.Fatalf("%d task runs recorded; want 3 (the journal keeps both versions)", n)
	}
}

// TestReorderedCallsReused: calls of derived keys in another order on a
// retry are each answered by the completion of the same task with the same
// input; a recorded explicit key called with another task is a
// non-determinism error.
func TestReorderedCallsReused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     bool // call with explicit keys, swapped between tasks on the retry
		wantErr error
		calls   int32
	}{
		{"derived keys", false, nil, 2},
		{"explicit key of another task", true, baton.ErrNonDeterministic, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var calls atomic.Int32
			a := baton.Task(name(t, "a"), func(_ context.Context, n int) (int, error) { calls.Add(1); return n, nil })
			c := baton.Task(name(t, "c"), func(_ context.Context, n int) (int, error) { calls.Add(1); return n, nil })
			var swapped atomic.Bool
			flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
				first, second := a, c
				k1, k2 := "one", "two"
				if swapped.Load() {
					first, second = c, a
					if !tt.key {
						k1, k2 = k2, k1
					}
				}
				opt := func(k string) []baton.CallOption {
					if tt.key {
						return []baton.CallOption{baton.Key(k)}
					}
					return nil
				}
				if _, err := first.Run(ctx, 1, opt(k1)...); err != nil {
					return 0, err
				}
				if _, err := second.Run(ctx, 1, opt(k2)...); err != nil {
					return 0, err
				}
				if !swapped.Load() {
					return 0, errors.New("fail")
				}
				return 1, nil
			})
			_, info, _ := flow.Execute(context.Background(), b.rt, 0)
			swapped.Store(true)
			_, _, err := flow.Retry(context.Background(), b.rt, info.ID)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("retry: err = %v; want %v", err, tt.wantErr)
			}
			if calls.Load() != tt.calls {
				t.Errorf("calls = %d; want %d", calls.Load(), tt.calls)
			}
		})
	}
}

func TestExplicitKeySurvivesReorder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int32
	a := baton.Task(name(t, "a"), func(_ context.Context, n int) (int, error) { calls.Add(1); return n, nil })
	c := baton.Task(name(t, "c"), func(_ context.Context, n int) (int, error) { calls.Add(1); return n, nil })
	var swapped atomic.Bool
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		runA := func() error { _, err := a.Run(ctx, 1, baton.Key("load")); return err }
		runC := func() error { _, err := c.Run(ctx, 2, baton.Key("clean")); return err }
		first, second := runA, runC
		if swapped.Load() {
			first, second = runC, runA
		}
		if err := first(); err != nil {
			return 0, err
		}
		if err := second(); err != nil {
			return 0, err
		}
		if !swapped.Load() {
			return 0, errors.New("fail")
		}
		return 1, nil
	})
	_, info, _ := flow.Execute(context.Background(), b.rt, 0)
	swapped.Store(true)
	if _, _, err := flow.Retry(context.Background(), b.rt, info.ID); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d; want 2 (explicit keys reused after reorder)", calls.Load())
	}
}

func TestSubflowResume(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var calls atomic.Int32
	var broken atomic.Bool
	broken.Store(true)
	work := baton.Task(name(t, "work"), func(_ context.Context, n int) (int, error) {
		calls.Add(1)
		if n == 2 && broken.Load() {
			return 0, baton.Permanent(errors.New("broken"))
		}
		return n, nil
	})
	child := baton.Flow(name(t, "child"), func(ctx baton.Context, n int) (int, error) {
		vs, err := baton.WaitAll(ctx, work.Map(ctx, []int{n, n + 1}))
		if err != nil {
			return 0, err
		}
		return vs[0] + vs[1], nil
	})
	parent := baton.Flow(name(t, "parent"), func(ctx baton.Context, _ int) (int, error) {
		x, err := child.Run(ctx, 0)
		if err != nil {
			return 0, err
		}
		y, err := child.Run(ctx, 1)
		if err != nil {
			return 0, err
		}
		return x + y, nil
	})
	_, info, err := parent.Execute(context.Background(), b.rt, 0)
	if err == nil {
		t.Fatal("want failure")
	}
	if calls.Load() != 4 {
		t.Fatalf("calls = %d, want 4", calls.Load())
	}
	broken.Store(false)
	got, _, err := parent.Retry(context.Background(), b.rt, info.ID)
	if err != nil || got != 4 {
		t.Fatalf("got %d, %v", got, err)
	}
	if calls.Load() != 5 {
		t.Fatalf("calls = %d, want 5: only the failed item of the second child reruns", calls.Load())
	}
	trs := b.taskRuns(t, info.ID)
	for _, tr := range trs {
		if tr.ChildRunID == "" {
			t.Errorf("parent step %s has no child run id", tr.Key)
		}
	}
}

func TestWaitForAsCompletedSettle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var order []string
	var mu sync.Mutex
	record := func(s string) { mu.Lock(); order = append(order, s); mu.Unlock() }
	// first waits until second has been submitted: a second that did
	// not wait for it would record itself first.
	release := make(chan struct{})
	first := baton.Task(name(t, "first"), func(context.Context, int) (int, error) {
		<-release
		record("first")
		return 0, nil
	})
	second := baton.Task(name(t, "second"), func(context.Context, int) (int, error) { record("second"); return 0, nil })
	maybe := baton.Task(name(t, "maybe"), func(_ context.Context, n int) (int, error) {
		if n%4 == 0 {
			return 0, baton.Permanent(fmt.Errorf("item %d is bad", n))
		}
		return n, nil
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		f := first.Submit(ctx, 1)
		s := second.Submit(ctx, 2, baton.WaitFor(f))
		close(release)
		if _, err := s.Wait(ctx); err != nil {
			return 0, err
		}
		futs := maybe.Map(ctx, []int{1, 2, 3, 4, 5, 6, 7, 8})
		seen := 0
		for range baton.AsCompleted(ctx, futs) {
			seen++
		}
		if seen != 8 {
			return 0, fmt.Errorf("AsCompleted yielded %d", seen)
		}
		outs, err := baton.Settle(ctx, futs, 0.7)
		if err != nil {
			return 0, err
		}
		failed := 0
		for _, o := range outs {
			if o.Err != nil {
				failed++
			}
		}
		if _, err := baton.Settle(ctx, futs, 0.9); err == nil {
			return 0, errors.New("Settle with 0.9 succeeded")
		}
		return failed, nil
	})
	failed, info, err := flow.Execute(context.Background(), b.rt, 0)
	if err != nil || failed != 2 || info.State != "COMPLETED" {
		t.Fatalf("failed=%d err=%v state=%s", failed, err, info.State)
	}
	if !slices.Equal(order, []string{"first", "second"}) {
		t.Fatalf("order %v", order)
	}
}

func TestLoggerStoresRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	task := baton.Task(name(t, "t"), func(ctx context.Context, n int) (int, error) {
		baton.Logger(ctx).Info("in task", "n", n)
		return n, nil
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		baton.Logger(ctx).Info("in flow")
		return task.Run(ctx, 7)
	})
	_, info, err := flow.Execute(context.Background(), b.rt, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.rt.Close()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, err := st.LogList(context.Background(), store.LogListParams{RunID: info.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(logs) != 2 || logs[0].Message != "in flow" || logs[1].Message != "in task" || logs[1].TaskKey == "" ||
		!strings.Contains(string(logs[1].Attrs), `"n":7`) {
		t.Fatalf("logs %+v", logs)
	}
}

func TestLargeResultGoesToBlob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	big := baton.Task(name(t, "big"), func(context.Context, int) (string, error) {
		return strings.Repeat("x", 200_000), nil
	})
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		s, err := big.Run(ctx, 1)
		if err != nil {
			return 0, err
		}
		if s2, err := big.Run(ctx, 1); err != nil || s2 != s {
			return 0, fmt.Errorf("second call: %v", err)
		}
		return len(s), errors.New("fail once to replay from the blob")
	})
	_, info, _ := flow.Execute(context.Background(), b.rt, 0)
	trs := b.taskRuns(t, info.ID)
	if trs[0].ResultRef == "" || trs[0].Result != nil {
		t.Fatalf("result not in a blob: ref %q, %d bytes inline", trs[0].ResultRef, len(trs[0].Result))
	}
}

func TestPanicInTaskIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	boom := baton.Task(name(t, "boom"), func(context.Context, int) (int, error) { panic("kaboom") })
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) { return boom.Run(ctx, 1) })
	_, info, err := flow.Execute(context.Background(), b.rt, 0)
	var pe *baton.PanicError
	if !errors.As(err, &pe) || info.State != "FAILED" {
		t.Fatalf("err %v", err)
	}
	if trs := b.taskRuns(t, info.ID); trs[0].Error == nil || trs[0].Error.Kind != "panic" {
		t.Fatalf("task run %+v", trs[0])
	}
}

func TestTaskRunFromAndReplaySafeLogs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var attempts []int
	var mu sync.Mutex
	flaky := baton.Task(name(t, "flaky"), func(ctx context.Context, n int) (int, error) {
		info, ok := baton.TaskRunFrom(ctx)
		if !ok || info.Key == "" || info.RunID == "" {
			return 0, baton.Permanent(fmt.Errorf("TaskRunFrom = %+v, %v", info, ok))
		}
		mu.Lock()
		attempts = append(attempts, info.Attempt)
		mu.Unlock()
		if info.Attempt < 2 {
			return 0, errors.New("first attempt fails")
		}
		return n, nil
	}, baton.Retries(2), baton.RetryDelay(time.Millisecond))
	if _, ok := baton.TaskRunFrom(context.Background()); ok {
		t.Fatal("TaskRunFrom of a plain context reported ok")
	}
	var fail atomic.Bool
	fail.Store(true)
	flow := baton.Flow(name(t, "f"), func(ctx baton.Context, _ int) (int, error) {
		baton.Logger(ctx).Info("before step")
		v, err := flaky.Run(ctx, 5)
		if err != nil {
			return 0, err
		}
		baton.Logger(ctx).Info("after step")
		if fail.Load() {
			return 0, errors.New("fail the run once")
		}
		return v, nil
	})
	_, info, _ := flow.Execute(context.Background(), b.rt, 0)
	fail.Store(false)
	if _, _, err := flow.Retry(context.Background(), b.rt, info.ID); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(attempts, []int{1, 2}) {
		t.Fatalf("attempts seen by the task: %v", attempts)
	}
	b.rt.Close()
	st, err := sqlite.Open(context.Background(), b.db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	logs, err := st.LogList(context.Background(), store.LogListParams{RunID: info.ID})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, l := range logs {
		msgs = append(msgs, l.Message)
	}
	// The retry replays "before step" and the step, so only "after step" is logged again.
	if want := []string{"before step", "after step", "after step"}; !slices.Equal(msgs, want) {
		t.Fatalf("logs %q, want %q", msgs, want)
	}
}
