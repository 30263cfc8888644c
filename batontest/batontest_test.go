package batontest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/batontest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// flaky fails the attempts its input says, then doubles its input.
type flakyIn struct {
	N    int
	Fail int // attempts to fail
}

var (
	flaky = baton.Task("batontest.flaky", func(ctx context.Context, in flakyIn) (int, error) {
		info, _ := baton.TaskRunFrom(ctx)
		if info.Attempt <= in.Fail {
			return 0, fmt.Errorf("attempt %d fails", info.Attempt)
		}
		baton.Logger(ctx).Info("doubled", "n", in.N)
		return 2 * in.N, nil
	}, baton.Retries(3))

	retrying = baton.Flow("batontest.retrying", func(ctx baton.Context, in flakyIn) (int, error) {
		baton.Logger(ctx).Info("start", "n", in.N)
		return flaky.Run(ctx, in)
	})
)

// TestRetriesWithDefaultDelayAreInstant: three failed attempts with the
// default delays (1s, 2s, 4s, ±10%) take milliseconds of wall time, and the
// clock records the delays as a real run would.
func TestRetriesWithDefaultDelayAreInstant(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	start := time.Now()
	run, err := batontest.Run(env, retrying, flakyIn{N: 21, Fail: 3})
	if wall := time.Since(start); wall > time.Second {
		t.Errorf("the run took %s of wall time", wall)
	}
	if err != nil || run.State != "COMPLETED" || run.Result != 42 {
		t.Fatalf("run = %+v, %v; want COMPLETED with 42", run, err)
	}
	calls := batontest.Calls(run, flaky)
	if len(calls) != 1 {
		t.Fatalf("calls = %+v, want 1", calls)
	}
	c := calls[0]
	if c.Run.State != "COMPLETED" || c.Run.Attempts != 4 || c.Input != (flakyIn{N: 21, Fail: 3}) || c.Output != 42 {
		t.Errorf("call = %+v", c)
	}
	// 1s + 2s + 4s of delays, each within ±10%.
	if d := c.Run.EndedAt.Sub(c.Run.StartedAt); d < 6300*time.Millisecond || d > 7700*time.Millisecond {
		t.Errorf("the task run lasted %s on the fake clock, want about 7s", d)
	}
	if elapsed := env.Now().Sub(batontest.DefaultStart); elapsed < 6300*time.Millisecond {
		t.Errorf("the clock moved %s, want about 7s", elapsed)
	}
}

// TestFailedRun: a run that exhausts its retries FAILED with the task's
// error, recorded with every attempt; a retry with the task mocked
// completes, reusing nothing it must not.
func TestFailedRunAndRetry(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	run, err := batontest.Run(env, retrying, flakyIn{N: 1, Fail: 10})
	if err == nil || run.State != "FAILED" || !errors.Is(run.Err, err) {
		t.Fatalf("run = %+v, %v; want FAILED", run, err)
	}
	var te *baton.TaskError
	if !errors.As(err, &te) || te.Attempts != 4 {
		t.Fatalf("error = %v, want a TaskError after 4 attempts", err)
	}
	trs := run.TaskRuns()
	if len(trs) != 1 || trs[0].State != "FAILED" || trs[0].Attempts != 4 || !strings.Contains(trs[0].Error, "attempt 4 fails") || trs[0].Output != nil {
		t.Fatalf("task runs = %+v", trs)
	}
	batontest.Mock(env, flaky, func(_ context.Context, in flakyIn) (int, error) { return in.N + 100, nil })
	again, err := batontest.Retry(env, retrying, run.ID)
	if err != nil || again.Result != 101 || again.Attempt != 2 || again.ID != run.ID {
		t.Fatalf("retry = %+v, %v", again, err)
	}
	calls := batontest.Calls(again, flaky)
	if len(calls) != 2 || calls[1].Run.FlowAttempt != 2 || calls[1].Output != 101 || calls[0].Output != 0 {
		t.Fatalf("calls = %+v", calls)
	}
}

var (
	greet = baton.Task("batontest.greet", func(_ context.Context, name string) (string, error) {
		return "hello " + name, nil
	})
	greetAll = baton.Flow("batontest.greetAll", func(ctx baton.Context, names []string) ([]string, error) {
		return baton.WaitAll(ctx, greet.Map(ctx, names))
	})
)

// TestMockIsPerEnvironment: a mock applies to its environment only, with
// tests running in parallel, some mocking the task differently and some
// not at all.
func TestMockIsPerEnvironment(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			env := batontest.New(t)
			want := "hello "
			if i%2 == 1 {
				prefix := fmt.Sprintf("mock %d: ", i)
				batontest.Mock(env, greet, func(_ context.Context, name string) (string, error) { return prefix + name, nil })
				want = prefix
			}
			names := []string{"ada", "grace", fmt.Sprint(i)}
			run, err := batontest.Run(env, greetAll, names)
			if err != nil {
				t.Fatal(err)
			}
			for j, got := range run.Result {
				if got != want+names[j] {
					t.Errorf("result %d = %q, want %q", j, got, want+names[j])
				}
			}
			calls := batontest.Calls(run, greet)
			if len(calls) != 3 {
				t.Fatalf("calls = %+v", calls)
			}
			for j, c := range calls {
				if c.Input != names[j] || c.Output != want+names[j] || c.Run.Key != fmt.Sprintf("batontest.greet/0.%d", j) {
					t.Errorf("call %d = %+v", j, c)
				}
			}
		})
	}
}

type doc struct {
	Title string
	Body  string // large: its input is stored as a blob
}

var (
	count = baton.Task("batontest.count", func(_ context.Context, d doc) (map[string]int, error) {
		return map[string]int{d.Title: len(d.Body)}, nil
	})
	countDocs = baton.Flow("batontest.countDocs", func(ctx baton.Context, docs []doc) (int, error) {
		n := 0
		for _, f := range count.Map(ctx, docs) {
			m, err := f.Wait(ctx)
			if err != nil {
				return 0, err
			}
			for _, v := range m {
				n += v
			}
		}
		return n, nil
	})
)

// TestRecordedInputsDecode: recorded inputs and outputs decode into the
// task's types, large inputs (stored as a blob) included.
func TestRecordedInputsDecode(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	big := strings.Repeat("x", 20<<10)
	docs := []doc{{Title: "small", Body: "abc"}, {Title: "big", Body: big}}
	run, err := batontest.Run(env, countDocs, docs)
	if err != nil || run.Result != 3+len(big) {
		t.Fatalf("run = %+v, %v", run, err)
	}
	calls := batontest.Calls(run, count)
	if len(calls) != 2 {
		t.Fatalf("calls = %d", len(calls))
	}
	// Both task runs start at the same instant of the fake clock, so
	// their order (by time, then ID) is not the items' order: match them
	// by title.
	byTitle := map[string]doc{}
	for _, d := range docs {
		byTitle[d.Title] = d
	}
	for i, c := range calls {
		want := byTitle[c.Input.Title]
		if c.Input != want || c.Output[want.Title] != len(want.Body) || c.Run.State != "COMPLETED" {
			t.Errorf("call %d: input %.20q, output %v, state %s", i, c.Input.Title, c.Output, c.Run.State)
		}
	}
	whole := false
	for _, tr := range run.TaskRuns() {
		whole = whole || len(tr.Input) >= len(big)
	}
	if !whole {
		t.Error("TaskRuns does not give the large input whole")
	}
}

// TestLogs: the flow's and the tasks' log records, with attributes.
func TestLogs(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	run, err := batontest.Run(env, retrying, flakyIn{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	logs := run.Logs()
	if len(logs) != 2 {
		t.Fatalf("logs = %+v", logs)
	}
	if l := logs[0]; l.Message != "start" || l.TaskKey != "" || l.Attrs["n"] != 5.0 || l.Level != "INFO" {
		t.Errorf("flow log = %+v", l)
	}
	if l := logs[1]; l.Message != "doubled" || l.TaskKey != "batontest.flaky/0" || !l.At.Equal(batontest.DefaultStart) {
		t.Errorf("task log = %+v", l)
	}
}

var (
	hang = baton.Task("batontest.hang", func(ctx context.Context, _ int) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	}, baton.Timeout(time.Hour))
	hangs = baton.Flow("batontest.hangs", func(ctx baton.Context, n int) (int, error) {
		return hang.Run(ctx, n)
	})
)

// TestAdvanceFiresTimeout: a task's Timeout follows the environment's
// clock: the test moves it while the task runs, and the task run ends
// TIMED_OUT an hour later on the clock, at once on the wall.
func TestAdvanceFiresTimeout(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	running := make(chan struct{})
	batontest.Mock(env, hang, func(ctx context.Context, _ int) (int, error) {
		close(running)
		<-ctx.Done()
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return 0, fmt.Errorf("ctx.Err() = %v, want a deadline", ctx.Err())
		}
		if d, ok := ctx.Deadline(); !ok || !d.Equal(batontest.DefaultStart.Add(time.Hour)) {
			return 0, fmt.Errorf("deadline %v, %v", d, ok)
		}
		return 0, ctx.Err()
	})
	go func() {
		<-running
		env.Advance(time.Hour)
	}()
	run, err := batontest.Run(env, hangs, 1)
	var te *baton.TimeoutError
	if !errors.As(err, &te) || run.State != "FAILED" {
		t.Fatalf("run = %+v, %v; want FAILED with a timeout", run, err)
	}
	trs := run.TaskRuns()
	if len(trs) != 1 || trs[0].State != "TIMED_OUT" || trs[0].EndedAt.Sub(trs[0].StartedAt) != time.Hour {
		t.Fatalf("task runs = %+v", trs)
	}
}

var (
	slowFail = baton.Task("batontest.slowFail", func(ctx context.Context, n int) (int, error) {
		return 0, errors.New("no")
	}, baton.Retries(2), baton.RetryDelay(time.Hour), baton.Backoff(1, 0), baton.Jitter(0))
	flowRetrying = baton.Flow("batontest.flowRetrying", func(ctx baton.Context, n int) (int, error) {
		if ctx.Attempt() < 3 {
			return slowFail.Run(ctx, n)
		}
		return n, nil
	}, baton.FlowRetries(2, 24*time.Hour))
)

// TestManualClock: with ManualClock, retry delays wait for the test to
// move the clock, and so do the run's own retries (FlowRetries).
func TestManualClock(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	env := batontest.New(t, batontest.ManualClock(), batontest.StartAt(start))
	type result struct {
		run *batontest.FlowRun[int]
		err error
	}
	done := make(chan result, 1)
	go func() {
		run, err := batontest.Run(env, flowRetrying, 7)
		done <- result{run, err}
	}()
	var r result
	for advances := 0; ; advances++ {
		env.WaitIdle()
		select {
		case r = <-done:
		default:
			if advances > 100 {
				t.Fatal("the run did not end")
			}
			env.Advance(time.Hour)
			continue
		}
		break
	}
	if r.err != nil || r.run.Result != 7 || r.run.Attempt != 3 {
		t.Fatalf("run = %+v, %v", r.run, r.err)
	}
	trs := r.run.TaskRuns()
	if len(trs) != 2 {
		t.Fatalf("task runs = %+v", trs)
	}
	for i, tr := range trs {
		// Three attempts, an hour apart.
		if tr.State != "FAILED" || tr.Attempts != 3 || tr.EndedAt.Sub(tr.StartedAt) != 2*time.Hour || tr.FlowAttempt != i+1 {
			t.Errorf("task run %d = %+v", i, tr)
		}
	}
	if gap := trs[1].CreatedAt.Sub(trs[0].EndedAt); gap != 24*time.Hour {
		t.Errorf("the flow's retry came %s after its failure, want 24h", gap)
	}
}

var timed = baton.Flow("batontest.timed", func(ctx baton.Context, in flakyIn) ([]time.Time, error) {
	t0 := baton.Now(ctx)
	if _, err := flaky.Run(ctx, in); err != nil {
		return nil, err
	}
	return []time.Time{t0, baton.Now(ctx)}, nil
})

// TestNowFollowsClock: baton.Now reads the environment's clock, which the
// retries in between moved by their delays.
func TestNowFollowsClock(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	run, err := batontest.Run(env, timed, flakyIn{N: 1, Fail: 2})
	if err != nil {
		t.Fatal(err)
	}
	t0, t1 := run.Result[0], run.Result[1]
	if !t0.Equal(batontest.DefaultStart) {
		t.Errorf("first Now = %v, want the clock's start %v", t0, batontest.DefaultStart)
	}
	if d := t1.Sub(t0); d < 2700*time.Millisecond || d > 3300*time.Millisecond {
		t.Errorf("Now moved %s across retries of 1s and 2s", d)
	}
}
