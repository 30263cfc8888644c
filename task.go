package baton

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"

	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
)

// TaskDef is a task: a named Go function with a retry, timeout and cache
// policy. Create it with Task, usually as a package-level variable, and call
// it from flows with Run, Submit or Map. A TaskDef is safe for concurrent use.
type TaskDef[In, Out any] struct {
	def *engine.TaskDef
	fn  func(context.Context, In) (Out, error)
}

var taskRegistry = struct {
	sync.Mutex
	byName map[string]*engine.TaskDef
	at     map[string]string // name -> where it was defined
}{byName: map[string]*engine.TaskDef{}, at: map[string]string{}}

// Task defines a task named name that runs fn. Inputs and outputs must be
// encodable as JSON: they are recorded, hashed for replay and caching, and
// the task receives its input, and the flow its result, as decoded from
// that JSON, on the first run as on replay and on a worker (so a field JSON
// leaves out, such as an unexported one, arrives as its zero value every
// time). The name identifies the task in records and on the command line;
// defining two tasks with one name panics, naming both places.
func Task[In, Out any](name string, fn func(context.Context, In) (Out, error), opts ...TaskOption) *TaskDef[In, Out] {
	if name == "" || fn == nil {
		panic("baton.Task: a name and a function are required")
	}
	if err := store.CheckIdentifier("task name", name); err != nil {
		panic("baton.Task: " + err.Error())
	}
	site := callSite(2)
	var cfg taskConfig
	for _, o := range opts {
		o.applyTask(&cfg)
	}
	applyPlacement[In, Out](name, &cfg)
	if !cfg.delaySet {
		cfg.policy.RetryDelay = DefaultRetryDelay
	}
	if !cfg.backoffSet {
		cfg.policy.Backoff, cfg.policy.MaxDelay = DefaultBackoff, DefaultMaxDelay
	}
	if !cfg.jitterSet {
		cfg.policy.Jitter = DefaultJitter
	}
	if cfg.cacheKey != nil {
		cfg.policy.Cache.Key = cfg.cacheKey
	}
	if err := store.CheckIdentifier("queue", cfg.policy.Queue); err != nil {
		panic("baton.Task " + name + ": " + err.Error())
	}
	if err := store.CheckIdentifier("version", cfg.policy.Version); err != nil {
		panic("baton.Task " + name + ": " + err.Error())
	}
	tags, err := store.NormalizeTags(cfg.policy.Tags)
	if err != nil {
		panic("baton.Task " + name + ": " + err.Error())
	}
	cfg.policy.Tags = tags
	t := &TaskDef[In, Out]{fn: fn}
	t.def = &engine.TaskDef{
		Name:      name,
		Policy:    cfg.policy,
		InputType: typeOf[In](),
		Invoke: func(ctx context.Context, input json.RawMessage) (any, error) {
			in, err := decodeStrict[In](input)
			if err != nil {
				return nil, Permanent(fmt.Errorf("input of task %s: %w", name, err))
			}
			return fn(ctx, in)
		},
	}
	taskRegistry.Lock()
	defer taskRegistry.Unlock()
	if prev, ok := taskRegistry.at[name]; ok {
		panic(fmt.Sprintf("baton.Task: task %q is defined twice, at %s and at %s; give each task its own name", name, prev, site))
	}
	taskRegistry.byName[name] = t.def
	taskRegistry.at[name] = site
	return t
}

// callSite returns the file:line of the caller skip frames up.
func callSite(skip int) string {
	_, file, line, ok := runtime.Caller(skip)
	if !ok {
		return "an unknown place"
	}
	return fmt.Sprintf("%s:%d", file, line)
}

// Name returns the task's name.
func (t *TaskDef[In, Out]) Name() string { return t.def.Name }

// Run calls the task and waits for its result: a task run recorded in the
// flow run's journal. On a retried run, a call whose step completed before
// with the same input returns the recorded result without running again.
func (t *TaskDef[In, Out]) Run(ctx Context, in In, opts ...CallOption) (Out, error) {
	cc := applyCall(opts)
	return Future[Out]{f: ctx.flow().Call(t.call(in, cc))}.Wait(ctx)
}

// Submit starts the task and returns a Future at once; the task runs
// concurrently, bounded by the flow's MaxConcurrency.
func (t *TaskDef[In, Out]) Submit(ctx Context, in In, opts ...CallOption) Future[Out] {
	cc := applyCall(opts)
	return Future[Out]{f: ctx.flow().Submit(t.call(in, cc))}
}

// Map submits one task run per item and returns their futures in order. All
// items share one step of the flow: item i gets the key "TASK/N.i".
func (t *TaskDef[In, Out]) Map(ctx Context, items []In, opts ...CallOption) []Future[Out] {
	cc := applyCall(opts)
	fs := ctx.flow().SubmitMap(len(items), func(i int) engine.Call { return t.call(items[i], cc) })
	out := make([]Future[Out], len(fs))
	for i, f := range fs {
		out[i] = Future[Out]{f: f}
	}
	return out
}

func (t *TaskDef[In, Out]) call(in In, cc callConfig) engine.Call {
	raw, err := json.Marshal(in)
	// The task gets its input as decoded from its recorded JSON, as on a
	// worker and on any later run of the step. (json.Unmarshal, not the
	// worker's strict decoder: JSON that json.Marshal made of an In has no
	// unknown fields, and it costs a tenth.)
	fn := func(ctx context.Context) (any, error) {
		var v In
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, Permanent(fmt.Errorf("input of task %s: %w", t.def.Name, err))
		}
		return t.fn(ctx, v)
	}
	if err != nil {
		encErr := Permanent(fmt.Errorf("encode input of task %s as JSON: %w", t.def.Name, err))
		fn = func(context.Context) (any, error) { return nil, encErr }
	}
	return engine.Call{
		Task: t.def, Key: cc.key, Input: in, InputJSON: raw, After: cc.after,
		Fn: fn, Decode: decode[Out],
	}
}

func decode[T any](raw json.RawMessage) (any, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("decode recorded result as %T: %w", v, err)
	}
	return v, nil
}

func decodeStrict[T any](raw json.RawMessage) (T, error) {
	var v T
	if len(bytes.TrimSpace(raw)) == 0 {
		return v, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, err
	}
	return v, nil
}

func registeredTasks() []*engine.TaskDef {
	taskRegistry.Lock()
	defer taskRegistry.Unlock()
	out := make([]*engine.TaskDef, 0, len(taskRegistry.byName))
	for _, t := range taskRegistry.byName {
		out = append(out, t)
	}
	return out
}
