// Command prog is the user program that the process-level tests build: its
// tasks append their executions to the file named by $EXEC_LOG so the tests
// can count how often each step ran across kills and retries.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton"
	_ "github.com/batonhq/baton/postgres" // the tests run it on PostgreSQL too
)

func logExec(what string) {
	f, err := os.OpenFile(os.Getenv("EXEC_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		panic(err)
	}
	fmt.Fprintln(f, what)
	f.Sync()
	f.Close()
}

// Params of the steps flow.
type Params struct {
	N       int    `json:"n" baton:"required" doc:"number of steps"`
	SleepMS int    `json:"sleep_ms" doc:"how long each step works"`
	Label   string `json:"label"`
}

var step = baton.Task("step", func(_ context.Context, i int) (int, error) {
	logExec("step " + strconv.Itoa(i))
	time.Sleep(time.Duration(sleepMS()) * time.Millisecond)
	if fail := os.Getenv("FAIL_AT"); fail != "" && fail == strconv.Itoa(i) {
		return 0, baton.Permanent(errors.New("told to fail at step " + fail))
	}
	return i, nil
})

func sleepMS() int {
	n, _ := strconv.Atoi(os.Getenv("SLEEP_MS"))
	return n
}

var steps = baton.Flow("steps", func(ctx baton.Context, p Params) (int, error) {
	sum := 0
	for i := range p.N {
		v, err := step.Run(ctx, i)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}, baton.Defaults(Params{N: 3}))

var item = baton.Task("item", func(_ context.Context, i int) (int, error) {
	logExec("item " + strconv.Itoa(i))
	time.Sleep(time.Duration(sleepMS()) * time.Millisecond)
	return i, nil
})

var fan = baton.Flow("fan", func(ctx baton.Context, n int) (int, error) {
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	vs, err := baton.WaitAll(ctx, item.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	return len(vs), nil
}, baton.MaxConcurrency(4), baton.Defaults(10))

// traced runs one unit of work and records its start and end with the run,
// step and process, so tests can check that no step ran twice at once.
func traced(ctx context.Context, what string) {
	info, _ := baton.TaskRunFrom(ctx)
	logExec(fmt.Sprintf("start %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	select {
	case <-time.After(time.Duration(sleepMS()) * time.Millisecond):
	case <-ctx.Done():
		logExec(fmt.Sprintf("cancelled %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
		return
	}
	logExec(fmt.Sprintf("end %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
}

var localStep = baton.Task("local-step", func(ctx context.Context, i int) (int, error) {
	traced(ctx, "local")
	return i, ctx.Err()
})

var remoteStep = baton.Task("remote-step", func(ctx context.Context, i int) (int, error) {
	traced(ctx, "remote")
	return i * 2, ctx.Err()
}, baton.Queue("default"))

// chaos runs 10 sequential local steps and a map of 10 distributed steps.
var chaos = baton.Flow("chaos", func(ctx baton.Context, n int) (int, error) {
	sum := 0
	for i := range 10 {
		v, err := localStep.Run(ctx, i)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	items := make([]int, 10)
	for i := range items {
		items[i] = i
	}
	vs, err := baton.WaitAll(ctx, remoteStep.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	for _, v := range vs {
		sum += v
	}
	return sum, nil
}, baton.Defaults(0))

// robotStep holds the lab robot: at most $ROBOT_LIMIT of them may run at
// once (baton limits set robot N). It records its start and end with the
// process and the time, as traced does, under "robot".
var robotStep = baton.Task("robot-step", func(ctx context.Context, i int) (int, error) {
	info, _ := baton.TaskRunFrom(ctx)
	logExec(fmt.Sprintf("robot-start %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	select {
	case <-time.After(time.Duration(sleepMS()) * time.Millisecond):
	case <-ctx.Done():
		logExec(fmt.Sprintf("robot-end %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
		return 0, ctx.Err()
	}
	logExec(fmt.Sprintf("robot-end %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	return i, nil
}, baton.Queue("robot"), baton.Tags("robot"))

// robots maps n items over robotStep.
var robots = baton.Flow("robots", func(ctx baton.Context, n int) (int, error) {
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	vs, err := baton.WaitAll(ctx, robotStep.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	return len(vs), nil
}, baton.Defaults(10))

// labStep is robotStep without tags, on queue lab: what holds it back is
// the queue's concurrency limit (baton queues update lab --limit N). It
// records its start and end under "lab".
var labStep = baton.Task("lab-step", func(ctx context.Context, i int) (int, error) {
	info, _ := baton.TaskRunFrom(ctx)
	logExec(fmt.Sprintf("lab-start %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	select {
	case <-time.After(time.Duration(sleepMS()) * time.Millisecond):
	case <-ctx.Done():
		logExec(fmt.Sprintf("lab-end %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
		return 0, ctx.Err()
	}
	logExec(fmt.Sprintf("lab-end %s %s %d %d", info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	return i, nil
}, baton.Queue("lab"))

// labs maps n items over labStep.
var labs = baton.Flow("labs", func(ctx baton.Context, n int) (int, error) {
	items := make([]int, n)
	for i := range items {
		items[i] = i
	}
	vs, err := baton.WaitAll(ctx, labStep.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	return len(vs), nil
}, baton.Defaults(10))

// gated is a step that takes $GATE_DIR in hand: when its step key is named
// by $GATE_KEYS it writes GATE_DIR/at-KEY as it is about to return and
// waits for GATE_DIR/go-KEY, so a test can cut the server or the database
// exactly at a step's end.
var gated = baton.Task("gated", func(ctx context.Context, i int) (int, error) {
	info, _ := baton.TaskRunFrom(ctx)
	logExec(fmt.Sprintf("gated %s %d", info.Key, info.Attempt))
	time.Sleep(time.Duration(sleepMS()) * time.Millisecond)
	dir := os.Getenv("GATE_DIR")
	if dir == "" || !strings.Contains(","+os.Getenv("GATE_KEYS")+",", ","+info.Key+",") {
		return i, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "at-"+info.Key), nil, 0o644); err != nil {
		return 0, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go-"+info.Key)); err == nil {
			return i, nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
})

// OutageParams of the outage flow.
type OutageParams struct {
	N   int    `json:"n" doc:"number of sequential gated steps"`
	Key string `json:"key" doc:"explicit key of an extra last step (may hold any byte)"`
}

// outage runs N sequential gated steps (keys s0, s1, ...) and, when Key is
// set, one more step under that explicit key.
var outage = baton.Flow("outage", func(ctx baton.Context, p OutageParams) (int, error) {
	sum := 0
	for i := range p.N {
		v, err := gated.Run(ctx, i, baton.Key("s"+strconv.Itoa(i)))
		if err != nil {
			return 0, err
		}
		sum += v
	}
	if p.Key != "" {
		v, err := gated.Run(ctx, 100, baton.Key(p.Key))
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}, baton.Defaults(OutageParams{N: 3}))

// SlowItem is one item of the slowmap flow.
type SlowItem struct {
	I        int  `json:"i"`
	SleepMS  int  `json:"sleep_ms"`
	Fail     bool `json:"fail"`
	LingerMS int  `json:"linger_ms"` // how long it takes to return once cancelled
}

// slowItem is a distributed task that works SleepMS (honouring its
// context) or fails permanently after a third of it, and traces its start
// and end like traced.
var slowItem = baton.Task("slow-item", func(ctx context.Context, in SlowItem) (int, error) {
	info, _ := baton.TaskRunFrom(ctx)
	trace := func(what string) {
		logExec(fmt.Sprintf("%s %s %s %d %d", what, info.RunID, info.Key, os.Getpid(), time.Now().UnixNano()))
	}
	trace("start")
	d := time.Duration(in.SleepMS) * time.Millisecond
	if in.Fail {
		d /= 3
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		time.Sleep(time.Duration(in.LingerMS) * time.Millisecond)
		trace("cancelled")
		return 0, ctx.Err()
	}
	trace("end")
	if in.Fail {
		return 0, baton.Permanent(fmt.Errorf("item %d failed", in.I))
	}
	return in.I, nil
}, baton.Queue("default"))

// SlowMapParams are the parameters of the slowmap flow.
type SlowMapParams struct {
	N        int `json:"n"`
	SleepMS  int `json:"sleep_ms"`
	FailAt   int `json:"fail_at" doc:"index of the item that fails permanently; -1 for none"`
	LingerMS int `json:"linger_ms" doc:"how long a cancelled item takes to return"`
}

// slowmap maps the distributed slow-item task over N items.
var slowmap = baton.Flow("slowmap", func(ctx baton.Context, p SlowMapParams) (int, error) {
	items := make([]SlowItem, p.N)
	for i := range items {
		items[i] = SlowItem{I: i, SleepMS: p.SleepMS, Fail: i == p.FailAt, LingerMS: p.LingerMS}
	}
	vs, err := baton.WaitAll(ctx, slowItem.Map(ctx, items))
	if err != nil {
		return 0, err
	}
	return len(vs), nil
}, baton.Defaults(SlowMapParams{N: 8, SleepMS: 1000, FailAt: -1}))

// flowRetryDelay is the retrywait flow's retry delay: $FLOW_RETRY_DELAY_MS,
// a minute by default.
func flowRetryDelay() time.Duration {
	if n, err := strconv.Atoi(os.Getenv("FLOW_RETRY_DELAY_MS")); err == nil {
		return time.Duration(n) * time.Millisecond
	}
	return time.Minute
}

// retrywait fails its first attempt (after one step), so that its executor
// waits out the flow's retry delay; later attempts complete.
var retrywait = baton.Flow("retrywait", func(ctx baton.Context, _ int) (int, error) {
	logExec(fmt.Sprintf("retrywait attempt %d pid %d", ctx.Attempt(), os.Getpid()))
	if _, err := step.Run(ctx, 0); err != nil {
		return 0, err
	}
	if ctx.Attempt() == 1 {
		return 0, errors.New("first attempt fails")
	}
	return ctx.Attempt(), nil
}, baton.FlowRetries(1, flowRetryDelay()))

// nap sleeps MS milliseconds (a durable timer), then runs one step.
var nap = baton.Flow("nap", func(ctx baton.Context, ms int) (int, error) {
	if err := baton.Sleep(ctx, time.Duration(ms)*time.Millisecond); err != nil {
		return 0, err
	}
	return step.Run(ctx, 1)
}, baton.Defaults(5000))

// approve waits for an int sent for the key "n", then hands it to the
// gated step of key "use" (GATE_KEYS=use holds it there) and returns what
// the step returns.
var approve = baton.Flow("approve", func(ctx baton.Context, _ int) (int, error) {
	n, err := baton.WaitForInput[int](ctx, "n")
	if err != nil {
		return 0, err
	}
	return gated.Run(ctx, n, baton.Key("use"))
}, baton.Defaults(0))

func main() { baton.Main(steps, fan, chaos, outage, slowmap, retrywait, nap, approve, robots, labs) }
