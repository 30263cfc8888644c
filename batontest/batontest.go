// Package batontest runs Baton flows in a program's own tests: each test
// gets an environment with a temporary store and a fake clock, can replace
// tasks by mocks, and reads back what the run recorded.
//
//	func TestPipeline(t *testing.T) {
//		t.Parallel()
//		env := batontest.New(t)
//		batontest.Mock(env, fetch, func(ctx context.Context, url string) (Page, error) {
//			return Page{Body: "<html/>"}, nil
//		})
//		run, err := batontest.Run(env, pipeline, Params{URL: "https://example.com"})
//		if err != nil {
//			t.Fatal(err)
//		}
//		for _, c := range batontest.Calls(run, parse) {
//			t.Log(c.Run.State, c.Run.Attempts, c.Input, c.Output)
//		}
//	}
//
// # The store
//
// An environment's store is a SQLite file in t.TempDir, with its blob
// directory beside it, removed when the test ends. Flows run in the
// test's process, exactly as baton.Execute runs them: the same engine,
// replay, retries, caching and records.
//
// # The clock
//
// An environment's engine reads all time from a fake clock, which starts
// at 2025-01-01 00:00 UTC (see StartAt) and moves forward by itself, to the
// next timer, whenever all the environment's work waits on it: when no
// task function runs and every flow waits for a retry delay, a timeout,
// a wait's deadline (a sleep's end, Within), or a task run that waits for
// one. A task with Retries(3) and the
// default delays (1s, 2s, 4s) thus completes its test in milliseconds,
// and the times recorded are those a real run would have recorded.
//
// While a task function runs, the clock stands still: a task's Timeout
// fires when the test moves the clock itself, with Advance, for example
// from a goroutine that a mock signals once it is running. ManualClock
// turns off the moving by itself entirely.
//
// # Waits
//
// A flow's waits run on the same clock: baton.Sleep(ctx, 24*time.Hour),
// or a WaitForInput with Within(48*time.Hour) and a Default that nothing
// answers, ends at its time on the clock, in milliseconds of wall time.
// To answer a wait, start the run with Start, wait until it is PAUSED on
// the wait, send what it waits for, and read the outcome:
//
//	h, err := batontest.Start(env, campaign, params)
//	...
//	env.WaitPaused(h.ID, "decision") // its WaitForInput of key "decision"
//	err = batontest.SendInput(env, h.ID, "decision", Decision{Continue: true})
//	run, err := h.Wait()
//
// SendInput validates the value against the wait's JSON Schema as `baton
// runs resume` does; Resume answers a baton.Pause and SendEvent sends an
// event (kept for the waits that begin later). The clock moves by itself
// only while the test waits (in Run, Retry, a Handle's Wait, or a
// WaitPaused whose wait has not begun): between, a run of Start that waits
// holds it still, so a deadline cannot pass before the test answers. The
// recorded waits are among a run's TaskRuns, named input:KEY, pause,
// sleep or event:NAME, with their Wait.
//
// # Mocks
//
// Mock replaces a task's function in one environment only: the task's
// definition is untouched, so tests running in parallel with other
// environments (or none) still run the real function.
//
// # Records
//
// Run returns a FlowRun: the run's state, attempt, result or error. Its
// TaskRuns and Logs methods read the run's task runs and log records from
// the store; Calls returns a task's calls with their inputs and outputs
// decoded into the task's own types.
//
// Helpers that read the store fail the test (t.Fatal) when the store
// cannot be read: call them from the test's goroutine.
package batontest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/sdkdef"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/storeopen"
)

// DefaultStart is the time at which an environment's clock starts unless
// StartAt says otherwise.
var DefaultStart = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// Env is a test environment: a temporary store, an engine on a fake
// clock, and the mocks of one test. Create it with New; it is closed when
// the test ends. An Env is safe for concurrent use.
type Env struct {
	t     testing.TB
	st    store.Store
	eng   *engine.Engine
	clock *testClock

	mu    sync.Mutex
	mocks map[string]func(context.Context, json.RawMessage) (any, error)

	// The clock's holds (wait.go), under hmu.
	hmu     sync.Mutex
	live    map[*started]struct{} // runs of Start that did not end
	watches []*watch              // WaitPaused calls that wait
	blocked int                   // the test's goroutines waiting for runs (Run, Wait, WaitPaused)
	held    bool                  // a WaitPaused returned: still until the test acts
	closing bool
	runs    sync.WaitGroup // the goroutines of Start
}

// Option configures an Env; pass options to New.
type Option func(*config)

type config struct {
	start     time.Time
	manual    bool
	logOutput io.Writer
}

// StartAt starts the environment's clock at t instead of DefaultStart.
func StartAt(t time.Time) Option { return func(c *config) { c.start = t } }

// ManualClock keeps the environment's clock still until the test moves it
// with Advance: retry delays and timeouts then wait for the test.
func ManualClock() Option { return func(c *config) { c.manual = true } }

// LogOutput receives a printed copy of the log records of the
// environment's runs (written through baton.Logger). By default they are
// only recorded (see FlowRun.Logs).
func LogOutput(w io.Writer) Option { return func(c *config) { c.logOutput = w } }

// New returns a new environment for the test t, with an empty store in
// t.TempDir. It is closed, and its store removed, when t ends.
func New(t testing.TB, opts ...Option) *Env {
	t.Helper()
	cfg := config{start: DefaultStart, logOutput: io.Discard}
	for _, o := range opts {
		o(&cfg)
	}
	dir := t.TempDir()
	o, err := storeopen.Open(context.Background(), storeopen.Location{DB: filepath.Join(dir, "baton.db")}, true)
	if err != nil {
		t.Fatalf("batontest: open a store: %v", err)
	}
	env := &Env{t: t, st: o.Store, mocks: map[string]func(context.Context, json.RawMessage) (any, error){},
		live: map[*started]struct{}{}}
	env.clock = newTestClock(cfg.start, !cfg.manual, env.holdClock)
	env.eng, err = engine.New(engine.Config{
		Store: startStore{o.Store}, Blobs: o.Blobs, LogOutput: cfg.logOutput,
		Clock: env.clock, Activity: env.clock.activity, Replace: env.mock,
		// Nothing else cancels an environment's runs: its store is its
		// own. (Each poll would be a timer for the clock to stop at.)
		CancelPoll: 24 * time.Hour,
		// Nothing else resolves its waits but the clock, which the engine
		// polls for at their deadlines, and the helpers of this package,
		// which tell the engine (PollWaits).
		WaitPoll: 24 * time.Hour,
	})
	if err != nil {
		env.clock.stop()
		o.Store.Close()
		t.Fatalf("batontest: %v", err)
	}
	t.Cleanup(env.close)
	return env
}

func (env *Env) close() {
	env.hmu.Lock()
	env.closing = true
	for s := range env.live {
		s.cancel()
	}
	env.hmu.Unlock()
	env.clock.poke()
	env.runs.Wait()
	env.clock.stop()
	env.eng.Close()
	env.st.Close()
}

// Now returns the time on the environment's clock.
func (env *Env) Now() time.Time { return env.clock.Now() }

// Advance moves the environment's clock forward by d, firing the retry
// delays and timeouts that fall due meanwhile, in order. It may be called
// while a run is in progress, from any goroutine.
func (env *Env) Advance(d time.Duration) {
	env.release()
	env.clock.advance(d)
}

// WaitIdle blocks until all the environment's work waits on its clock,
// or there is none: when the clock would move by itself. With
// ManualClock, a test calls it before each Advance so as to move the
// clock only once a run waits for it.
func (env *Env) WaitIdle() { env.clock.waitIdle() }

func (env *Env) mock(task string) func(context.Context, json.RawMessage) (any, error) {
	env.mu.Lock()
	defer env.mu.Unlock()
	return env.mocks[task]
}

// Mock makes the environment's runs call fn instead of task's function,
// from now on (for attempts that start after it), until the test ends.
// fn receives the task's input as decoded from its recorded JSON, as the
// real function would, and its output is recorded and decoded in the same
// way. Other environments, and code outside any, still call the real
// function. Mock the same task again to replace the mock.
func Mock[In, Out any](env *Env, task *baton.TaskDef[In, Out], fn func(context.Context, In) (Out, error)) {
	name := task.Name()
	env.mu.Lock()
	defer env.mu.Unlock()
	env.mocks[name] = func(ctx context.Context, input json.RawMessage) (any, error) {
		var in In
		if err := json.Unmarshal(input, &in); err != nil {
			return nil, baton.Permanent(fmt.Errorf("input of task %s: %w", name, err))
		}
		return fn(ctx, in)
	}
}

// FlowRun is a run of a flow in an environment, once it ended.
type FlowRun[R any] struct {
	ID      string
	Flow    string
	State   string // COMPLETED, FAILED, CANCELLED, ...
	Attempt int    // the attempt that ended, from 1
	// Result is the flow's result when the run COMPLETED.
	Result R
	// Err is the flow's error when the run did not complete.
	Err error

	env *Env
}

// Run runs flow with params in the environment and returns once the run
// ended. params are used as given (a flow's Defaults apply to the command
// line only). The error is the run's (FlowRun.Err), or why it could not
// start, in which case the FlowRun is nil.
func Run[P, R any](env *Env, flow *baton.FlowDef[P, R], params P) (*FlowRun[R], error) {
	return RunContext(context.Background(), env, flow, params)
}

// RunContext is Run with a context: cancelling ctx cancels the run, which
// ends CANCELLED.
func RunContext[P, R any](ctx context.Context, env *Env, flow *baton.FlowDef[P, R], params P) (*FlowRun[R], error) {
	def, err := flowDef(flow)
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("batontest: encode parameters of flow %s: %w", def.Name, err)
	}
	defer env.block()()
	out, err := env.eng.Start(ctx, def, raw)
	return flowRun[R](env, out, err)
}

// Retry starts a new attempt of a FAILED, CANCELLED or CRASHED run of flow
// in the environment, reusing its completed steps (as baton's Retry does),
// and returns once it ended. Mock a task anew before retrying to make its
// next attempt succeed.
func Retry[P, R any](env *Env, flow *baton.FlowDef[P, R], runID string) (*FlowRun[R], error) {
	def, err := flowDef(flow)
	if err != nil {
		return nil, err
	}
	defer env.block()()
	out, err := env.eng.Retry(context.Background(), def, runID, engine.RetryOptions{})
	return flowRun[R](env, out, err)
}

func flowDef(flow any) (*engine.FlowDef, error) {
	def, ok := sdkdef.Flow(flow)
	if !ok || def == nil {
		return nil, errors.New("batontest: not a flow defined with baton.Flow")
	}
	return def, nil
}

func flowRun[R any](env *Env, out engine.Outcome, err error) (*FlowRun[R], error) {
	if err != nil {
		return nil, err
	}
	r := &FlowRun[R]{ID: out.Run.ID, Flow: out.Run.Flow, State: string(out.Run.State), Attempt: out.Run.Attempt, Err: out.Err, env: env}
	if out.Err == nil {
		r.Result, _ = out.Result.(R)
	}
	return r, out.Err
}

// TaskRun is a recorded task run, subflow step (which has ChildRunID) or
// wait step (which has Wait).
type TaskRun struct {
	ID  string
	Key string // the step key, such as "square/0" or "square/1.2"
	// Task is the task's (or subflow's) name; a wait step's is input:KEY,
	// pause, sleep or event:NAME.
	Task     string
	State    string // COMPLETED, CACHED, FAILED, TIMED_OUT, CANCELLED, WAITING, ...
	Attempts int    // attempts made: 1 + the retries
	// FlowAttempt is the attempt of the flow run that ran it.
	FlowAttempt int
	// Input is the recorded input, whole (also when its large parts were
	// stored as a blob).
	Input json.RawMessage
	// Output is the recorded result when the task run succeeded, else nil.
	Output json.RawMessage
	// Error is the message of the last attempt's error, when it failed.
	Error string
	// ChildRunID is the run of a subflow step.
	ChildRunID string
	// CachedFromRun is the run whose result a CACHED task run reused.
	CachedFromRun string
	// Wait is what a wait step waits for; nil for other steps. Its Input
	// is the wait's recorded description, its Output the value it
	// resumed with (JSON null for a pause or a sleep).
	Wait *Wait
	// CreatedAt, StartedAt and EndedAt are times on the environment's
	// clock (zero until set).
	CreatedAt, StartedAt, EndedAt time.Time
}

// Wait describes a wait step: what baton.WaitForInput, Pause, Sleep,
// SleepUntil or WaitForEvent waits for.
type Wait struct {
	Kind   string // input, pause, sleep or event
	Key    string // the input's key, or the event's name
	Prompt string // the text shown to people (a Pause's reason)
	// Deadline is when the wait ends by itself (a sleep's end, Within);
	// zero for none.
	Deadline time.Time
	// Schema is the JSON Schema that the input of a WaitForInput must
	// satisfy.
	Schema json.RawMessage
	// Default is the value it resumes with at its deadline, if any.
	Default json.RawMessage
}

// TaskRuns returns the run's task runs in the order the flow called them:
// by flow attempt, then step sequence, the items of a map by their index. (Map items start
// concurrently, so their creation order is not their index order.)
func (r *FlowRun[R]) TaskRuns() []TaskRun {
	r.env.t.Helper()
	return r.env.taskRuns(r.ID)
}

func (env *Env) taskRuns(runID string) []TaskRun {
	env.t.Helper()
	ctx := context.Background()
	trs, err := env.st.TaskRunList(ctx, store.TaskRunListParams{RunID: runID})
	if err != nil {
		env.t.Fatalf("batontest: list the task runs of run %s: %v", runID, err)
	}
	out := make([]TaskRun, len(trs))
	for i, tr := range trs {
		in, err := env.eng.LoadInput(tr.Input, tr.InputRef)
		if err != nil {
			env.t.Fatalf("batontest: read the input of task run %s (%s): %v", tr.ID, tr.Key, err)
		}
		v := TaskRun{ID: tr.ID, Key: tr.Key, Task: tr.Task, State: string(tr.State), Attempts: tr.Attempts,
			FlowAttempt: tr.FlowAttempt, Input: in, ChildRunID: tr.ChildRunID, CachedFromRun: tr.CachedFromRun,
			CreatedAt: tr.CreatedAt, StartedAt: tr.StartedAt, EndedAt: tr.EndedAt}
		if tr.State.Succeeded() {
			if v.Output, err = env.eng.LoadResult(tr.Result, tr.ResultRef); err != nil {
				env.t.Fatalf("batontest: read the result of task run %s (%s): %v", tr.ID, tr.Key, err)
			}
		}
		if tr.Error != nil {
			v.Error = tr.Error.Message
		}
		v.Wait = waitOf(tr)
		out[i] = v
	}
	slices.SortStableFunc(out, func(a, b TaskRun) int {
		if a.FlowAttempt != b.FlowAttempt {
			return a.FlowAttempt - b.FlowAttempt
		}
		return compareStepKeys(a.Key, b.Key)
	})
	return out
}

// compareStepKeys orders step keys ("task/3", "task/2.10") by the numbers
// after the last slash, compared as numbers; keys of another shape sort
// after them as strings.
func compareStepKeys(a, b string) int {
	na, okA := stepNumbers(a)
	nb, okB := stepNumbers(b)
	switch {
	case okA && okB:
		return slices.Compare(na, nb)
	case okA:
		return -1
	case okB:
		return 1
	}
	return strings.Compare(a, b)
}

func stepNumbers(key string) ([]int, bool) {
	i := strings.LastIndexByte(key, '/')
	if i < 0 {
		return nil, false
	}
	var ns []int
	for part := range strings.SplitSeq(key[i+1:], ".") {
		n, err := strconv.Atoi(part)
		if err != nil {
			return nil, false
		}
		ns = append(ns, n)
	}
	return ns, true
}

// Call is a recorded call of a task with its input and output decoded
// into the task's types.
type Call[In, Out any] struct {
	Run    TaskRun
	Input  In
	Output Out // the zero value unless the task run succeeded
}

// Calls returns the recorded calls of task in run, in the order the flow
// made them (see FlowRun.TaskRuns), with their inputs and outputs decoded. It fails the test when
// a recorded value does not decode into the task's types.
func Calls[In, Out, R any](run *FlowRun[R], task *baton.TaskDef[In, Out]) []Call[In, Out] {
	t := run.env.t
	t.Helper()
	var out []Call[In, Out]
	for _, tr := range run.TaskRuns() {
		if tr.Task != task.Name() {
			continue
		}
		c := Call[In, Out]{Run: tr}
		if err := json.Unmarshal(tr.Input, &c.Input); err != nil {
			t.Fatalf("batontest: decode the input of task run %s (%s): %v", tr.ID, tr.Key, err)
		}
		if tr.Output != nil {
			if err := json.Unmarshal(tr.Output, &c.Output); err != nil {
				t.Fatalf("batontest: decode the output of task run %s (%s): %v", tr.ID, tr.Key, err)
			}
		}
		out = append(out, c)
	}
	return out
}

// Log is a recorded log record.
type Log struct {
	At      time.Time // on the environment's clock
	Level   string    // DEBUG, INFO, WARN, ERROR
	Message string
	// TaskKey is the step key of the task run that logged it; empty for
	// the flow's own records.
	TaskKey string
	// Attrs are the record's attributes, groups flattened to "group.key".
	Attrs map[string]any
}

// Logs returns the run's log records in order.
func (r *FlowRun[R]) Logs() []Log {
	env := r.env
	env.t.Helper()
	recs, err := env.st.LogList(context.Background(), store.LogListParams{RunID: r.ID})
	if err != nil {
		env.t.Fatalf("batontest: list the logs of run %s: %v", r.ID, err)
	}
	out := make([]Log, len(recs))
	for i, l := range recs {
		out[i] = Log{At: l.At, Level: l.Level, Message: l.Message, TaskKey: l.TaskKey}
		if len(l.Attrs) > 0 {
			if err := json.Unmarshal(l.Attrs, &out[i].Attrs); err != nil {
				env.t.Fatalf("batontest: decode the attributes of a log record of run %s: %v", r.ID, err)
			}
		}
	}
	return out
}
