package batontest_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/batontest"
)

// wallLimit bounds the wall time of a test whose runs wait for days on the
// fake clock.
const wallLimit = 2 * time.Second

var sleepsADay = baton.Flow("batontest.sleepsADay", func(ctx baton.Context, n int) (time.Time, error) {
	if err := baton.Sleep(ctx, 24*time.Hour); err != nil {
		return time.Time{}, err
	}
	return baton.Now(ctx), nil
})

// TestSleepOfADay: a day's sleep takes milliseconds of wall time, and
// the run wakes exactly a day later on the clock.
func TestSleepOfADay(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	start := time.Now()
	run, err := batontest.Run(env, sleepsADay, 1)
	if wall := time.Since(start); wall > wallLimit {
		t.Errorf("the run took %s of wall time", wall)
	}
	day := batontest.DefaultStart.Add(24 * time.Hour)
	if err != nil || run.State != "COMPLETED" || !run.Result.Equal(day) {
		t.Fatalf("run = %+v, %v; want COMPLETED at %s", run, err, day)
	}
	var sleep *batontest.TaskRun
	for _, tr := range run.TaskRuns() {
		if tr.Task == "sleep" {
			sleep = &tr
		}
	}
	if sleep == nil || sleep.State != "COMPLETED" || sleep.Wait == nil || sleep.Wait.Kind != "sleep" ||
		!sleep.Wait.Deadline.Equal(day) || !sleep.EndedAt.Equal(day) || !sleep.CreatedAt.Equal(batontest.DefaultStart) {
		t.Fatalf("sleep step = %+v", sleep)
	}
	if w := sleep.Wait; w != nil && w.Key != "" {
		t.Errorf("wait = %+v", w)
	}
}

type decision struct {
	Go    bool `json:"go"`
	Batch int  `json:"batch" jsonschema:"minimum=1,maximum=16,description=experiments per iteration"`
}

var decide = baton.Flow("batontest.decide", func(ctx baton.Context, withDefault bool) (decision, error) {
	opts := []baton.WaitOption{baton.Prompt("go on?"), baton.Within(48 * time.Hour)}
	if withDefault {
		opts = append(opts, baton.Default(decision{Go: true, Batch: 4}))
	}
	return baton.WaitForInput[decision](ctx, "decision", opts...)
})

// TestInputDeadline: a wait of 48 hours for input that never comes ends
// at its deadline, in milliseconds of wall time: with its default, or with
// baton.ErrWaitTimedOut without one.
func TestInputDeadline(t *testing.T) {
	t.Parallel()
	deadline := batontest.DefaultStart.Add(48 * time.Hour)
	for _, tc := range []struct {
		name        string
		withDefault bool
		state, step string
	}{
		{"default", true, "COMPLETED", "COMPLETED"},
		{"no default", false, "FAILED", "TIMED_OUT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := batontest.New(t)
			start := time.Now()
			run, err := batontest.Run(env, decide, tc.withDefault)
			if wall := time.Since(start); wall > wallLimit {
				t.Errorf("the run took %s of wall time", wall)
			}
			if run == nil || run.State != tc.state {
				t.Fatalf("run = %+v, %v; want %s", run, err, tc.state)
			}
			if tc.withDefault && (err != nil || run.Result != (decision{Go: true, Batch: 4})) {
				t.Errorf("result = %+v, %v; want the default", run.Result, err)
			}
			if !tc.withDefault && !errors.Is(err, baton.ErrWaitTimedOut) {
				t.Errorf("error = %v, want ErrWaitTimedOut", err)
			}
			trs := run.TaskRuns()
			if len(trs) != 1 {
				t.Fatalf("task runs = %+v", trs)
			}
			w := trs[0]
			if w.Task != "input:decision" || w.Wait == nil || w.Wait.Kind != "input" || w.Wait.Key != "decision" ||
				w.Wait.Prompt != "go on?" || !w.Wait.Deadline.Equal(deadline) || !w.EndedAt.Equal(deadline) ||
				!strings.Contains(string(w.Wait.Schema), `"minimum":1`) {
				t.Errorf("wait step = %+v, wait %+v", w, w.Wait)
			}
			if w.State != tc.step {
				t.Errorf("wait step state = %s", w.State)
			}
			if got := env.Now(); !got.Equal(deadline) {
				t.Errorf("clock at %s, want the deadline %s", got, deadline)
			}
		})
	}
}

// TestInputFromTheTest: a test starts a run, waits for it to pause on its
// input, and sends it; the 48-hour deadline does not pass meanwhile
// (the clock stands still), and input that fails the schema is refused
// with nothing recorded.
func TestInputFromTheTest(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	h, err := batontest.Start(env, decide, false)
	if err != nil {
		t.Fatal(err)
	}
	w := env.WaitPaused(h.ID, "decision")
	if w.Task != "input:decision" || w.State != "WAITING" || w.Wait == nil || w.Wait.Prompt != "go on?" {
		t.Fatalf("wait step = %+v", w)
	}
	if err := batontest.SendInput(env, h.ID, "decision", decision{Go: true, Batch: 0}); err == nil ||
		!strings.Contains(err.Error(), "/batch") {
		t.Fatalf("input out of bounds: error %v, want a violation at /batch", err)
	}
	if got := env.WaitPaused(h.ID, "input:decision"); got.ID != w.ID {
		t.Fatalf("after refused input: wait step %+v", got)
	}
	if err := batontest.SendInput(env, h.ID, "decision", decision{Go: true, Batch: 8}); err != nil {
		t.Fatal(err)
	}
	if err := batontest.SendInput(env, h.ID, "decision", decision{Go: false, Batch: 1}); err == nil {
		t.Error("input sent twice for one wait was taken")
	}
	run, err := h.Wait()
	if err != nil || run.State != "COMPLETED" || run.Result != (decision{Go: true, Batch: 8}) {
		t.Fatalf("run = %+v, %v", run, err)
	}
	trs := run.TaskRuns()
	if len(trs) != 1 || trs[0].State != "COMPLETED" || string(trs[0].Output) != `{"go":true,"batch":8}` ||
		!trs[0].EndedAt.Equal(batontest.DefaultStart) {
		t.Fatalf("task runs = %+v", trs)
	}
	if got := env.Now(); !got.Equal(batontest.DefaultStart) {
		t.Errorf("clock at %s, want it still", got)
	}
}

type reading struct {
	Instrument string  `json:"instrument"`
	Value      float64 `json:"value"`
}

var awaitsReading = baton.Flow("batontest.awaitsReading", func(ctx baton.Context, instrument string) (float64, error) {
	r, err := baton.WaitForEvent[reading](ctx, "reading", baton.Match(map[string]any{"instrument": instrument}),
		baton.Within(time.Hour))
	return r.Value, err
})

// TestEvents: an event sent before the run waits for it is delivered when
// it does; one sent while it waits wakes it, if its payload matches.
func TestEvents(t *testing.T) {
	t.Parallel()
	t.Run("before", func(t *testing.T) {
		t.Parallel()
		env := batontest.New(t)
		if n, err := batontest.SendEvent(env, "reading", reading{Instrument: "a", Value: 1.5}); err != nil || n != 0 {
			t.Fatalf("send = %d, %v; want kept", n, err)
		}
		run, err := batontest.Run(env, awaitsReading, "a")
		if err != nil || run.Result != 1.5 {
			t.Fatalf("run = %+v, %v", run, err)
		}
		if got := env.Now(); !got.Equal(batontest.DefaultStart) {
			t.Errorf("clock at %s, want it still", got)
		}
	})
	t.Run("after", func(t *testing.T) {
		t.Parallel()
		env := batontest.New(t)
		h, err := batontest.Start(env, awaitsReading, "b")
		if err != nil {
			t.Fatal(err)
		}
		if w := env.WaitPaused(h.ID, "event:reading"); w.Wait == nil || w.Wait.Kind != "event" || w.Wait.Key != "reading" {
			t.Fatalf("wait step = %+v", w)
		}
		if n, err := batontest.SendEvent(env, "reading", reading{Instrument: "a", Value: 1}); err != nil || n != 0 {
			t.Fatalf("an event of another instrument: %d, %v", n, err)
		}
		env.WaitPaused(h.ID, "reading")
		if n, err := batontest.SendEvent(env, "reading", reading{Instrument: "b", Value: 2.5}); err != nil || n != 1 {
			t.Fatalf("send = %d, %v; want 1 woken", n, err)
		}
		run, err := h.Wait()
		if err != nil || run.Result != 2.5 {
			t.Fatalf("run = %+v, %v", run, err)
		}
	})
	t.Run("bad payload", func(t *testing.T) {
		t.Parallel()
		env := batontest.New(t)
		if _, err := batontest.SendEvent(env, "", 1); err == nil {
			t.Error("an event without a name was sent")
		}
	})
}

var approved = baton.Flow("batontest.approved", func(ctx baton.Context, n int) (int, error) {
	if err := baton.Sleep(ctx, time.Hour); err != nil {
		return 0, err
	}
	if err := baton.Pause(ctx, "check the sample"); err != nil {
		return 0, err
	}
	return flaky.Run(ctx, flakyIn{N: n, Fail: 1})
})

// TestPauseResumed: WaitPaused lets the clock move through the run's
// sleep to its pause, which the test resumes; the run then completes,
// retrying a task on the clock.
func TestPauseResumed(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	h, err := batontest.Start(env, approved, 4)
	if err != nil {
		t.Fatal(err)
	}
	w := env.WaitPaused(h.ID, "pause")
	if w.Wait == nil || w.Wait.Kind != "pause" || w.Wait.Prompt != "check the sample" {
		t.Fatalf("wait step = %+v", w)
	}
	hour := batontest.DefaultStart.Add(time.Hour)
	if got := env.Now(); !got.Equal(hour) {
		t.Errorf("paused at %s, want %s (after the sleep)", got, hour)
	}
	if err := batontest.Resume(env, h.ID); err != nil {
		t.Fatal(err)
	}
	run, err := h.Wait()
	if err != nil || run.Result != 8 {
		t.Fatalf("run = %+v, %v", run, err)
	}
	var tasks []string
	for _, tr := range run.TaskRuns() {
		tasks = append(tasks, tr.Task+" "+tr.State)
	}
	if got := strings.Join(tasks, ", "); got != "sleep COMPLETED, pause COMPLETED, batontest.flaky COMPLETED" {
		t.Errorf("task runs: %s", got)
	}
	if err := batontest.Resume(env, h.ID); err == nil {
		t.Error("a finished run was resumed")
	}
}

// TestStartHoldsTheClock: a run of Start that waits keeps the clock still
// until the test waits for it; then its deadline passes by itself.
func TestStartHoldsTheClock(t *testing.T) {
	t.Parallel()
	env := batontest.New(t)
	h, err := batontest.Start(env, decide, true)
	if err != nil {
		t.Fatal(err)
	}
	env.WaitPaused(h.ID, "")
	env.WaitIdle()
	if got := env.Now(); !got.Equal(batontest.DefaultStart) {
		t.Errorf("the clock moved to %s while the test did not wait", got)
	}
	run, err := h.Wait()
	if err != nil || run.Result != (decision{Go: true, Batch: 4}) {
		t.Fatalf("run = %+v, %v", run, err)
	}
	if got, want := env.Now(), batontest.DefaultStart.Add(48*time.Hour); !got.Equal(want) {
		t.Errorf("clock at %s, want %s", got, want)
	}
}
