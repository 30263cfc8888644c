package baton

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// ErrWaitTimedOut is wrapped by the error of WaitForInput, WaitForEvent or
// Pause when its deadline (Within) passed without a Default.
var ErrWaitTimedOut = engine.ErrWaitTimedOut

// WaitOption configures WaitForInput, WaitForEvent and Pause.
type WaitOption func(*waitConfig)

type waitConfig struct {
	prompt string
	within time.Duration
	def    any
	hasDef bool
	match  map[string]any
}

// Prompt is the text shown to people with the request (in runs show, the
// history and the UI).
func Prompt(text string) WaitOption { return func(c *waitConfig) { c.prompt = text } }

// Within sets a deadline: the wait ends by itself d after it began. It
// then fails with ErrWaitTimedOut, or resumes with the Default value when
// one is given.
func Within(d time.Duration) WaitOption { return func(c *waitConfig) { c.within = d } }

// Default is the value a WaitForInput or WaitForEvent with a deadline
// (Within) resumes with when the deadline passes.
func Default(v any) WaitOption { return func(c *waitConfig) { c.def, c.hasDef = v, true } }

// Match makes WaitForEvent take only events whose payload is a JSON
// object with these top-level fields, equal to these values (compared as
// JSON values).
func Match(fields map[string]any) WaitOption { return func(c *waitConfig) { c.match = fields } }

func waitOptions(opts []WaitOption) waitConfig {
	var c waitConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// spec fills the options' part of a wait spec.
func (c waitConfig) spec(w store.WaitSpec) (store.WaitSpec, error) {
	w.Prompt = c.prompt
	if c.within < 0 {
		return w, fmt.Errorf("Within(%s): the deadline must not be negative", c.within)
	}
	if c.within > 0 {
		w.Within = c.within.String()
	}
	if c.hasDef {
		if c.within == 0 {
			return w, fmt.Errorf("Default needs a deadline (Within)")
		}
		b, err := json.Marshal(c.def)
		if err != nil {
			return w, fmt.Errorf("encode the default value: %w", err)
		}
		w.Default = b
	}
	if len(c.match) > 0 {
		w.Match = make(map[string]json.RawMessage, len(c.match))
		for k, v := range c.match {
			b, err := json.Marshal(v)
			if err != nil {
				return w, fmt.Errorf("encode Match field %q: %w", k, err)
			}
			w.Match[k] = b
		}
	}
	return w, nil
}

// WaitForInput waits for a value of type T sent to the run for key (with
// `baton runs resume RUN_ID --key KEY --input JSON` or POST
// /api/v1/runs/{id}/input) and returns it. The request carries T's JSON
// Schema, generated from the type with its `jsonschema` struct tags
// (descriptions and bounds such as `jsonschema:"minimum=1,maximum=10"`),
// and input that fails it is refused before anything is recorded. The run
// is PAUSED meanwhile: on a worker it holds no goroutine, lease or slot; a
// local run's process waits, and if it stops, the run stays PAUSED and a
// later `resume RUN_ID` continues it. Input sent before the run waits for
// key is kept for its first wait of key. Each call is one wait: a flow
// that waits for key again (in a loop) gets the next input sent for it. On
// replay the recorded input is returned without waiting.
func WaitForInput[T any](ctx Context, key string, opts ...WaitOption) (T, error) {
	var zero T
	c := waitOptions(opts)
	schema, err := json.Marshal(params.SchemaFor(reflect.TypeFor[T]()))
	if err != nil {
		return zero, Permanent(fmt.Errorf("baton.WaitForInput %s: schema of %T: %w", key, zero, err))
	}
	spec, err := c.spec(store.WaitSpec{Kind: store.WaitInput, Key: key, Schema: schema})
	if err == nil && key == "" {
		err = fmt.Errorf("the key must not be empty")
	}
	if err == nil && spec.Default != nil {
		if verr := params.ValidateJSON(schema, spec.Default); verr != nil {
			err = fmt.Errorf("the default value does not fit %T: %w", zero, verr)
		}
	}
	if err != nil {
		return zero, Permanent(fmt.Errorf("baton.WaitForInput %s: %w", key, err))
	}
	return Future[T]{f: ctx.flow().Wait(spec, decode[T])}.Wait(ctx)
}

// Pause waits until someone resumes the run (`baton runs resume RUN_ID`),
// an approval to go on; reason is shown with the request. The run is
// PAUSED meanwhile, as with WaitForInput.
func Pause(ctx Context, reason string, opts ...WaitOption) error {
	c := waitOptions(opts)
	c.prompt = reason
	spec, err := c.spec(store.WaitSpec{Kind: store.WaitPause})
	if err == nil && spec.Default != nil {
		err = fmt.Errorf("a pause takes no Default")
	}
	if err != nil {
		return Permanent(fmt.Errorf("baton.Pause: %w", err))
	}
	_, err = Future[struct{}]{f: ctx.flow().Wait(spec, decodeNothing)}.Wait(ctx)
	return err
}

// Sleep waits d as a durable timer: the run is PAUSED (on a worker it
// holds nothing) and goes on when d has passed, also across restarts of
// its process, the server and the workers. The timer starts when the flow
// first calls Sleep; on replay a sleep that ended returns at once. A
// negative d is an error; 0 returns at once.
func Sleep(ctx Context, d time.Duration) error {
	if d < 0 {
		return Permanent(fmt.Errorf("baton.Sleep: the duration %s is negative", d))
	}
	_, err := Future[struct{}]{f: ctx.flow().Wait(store.WaitSpec{Kind: store.WaitSleep, Duration: d.String()},
		decodeNothing)}.Wait(ctx)
	return err
}

// SleepUntil waits, as Sleep does, until t; a time in the past returns at
// once.
func SleepUntil(ctx Context, t time.Time) error {
	_, err := Future[struct{}]{f: ctx.flow().Wait(store.WaitSpec{Kind: store.WaitSleep, Until: t.UTC().Round(0)},
		decodeNothing)}.Wait(ctx)
	return err
}

// WaitForEvent waits for an event named name (sent with `baton events
// send NAME --payload JSON` or POST /api/v1/events) whose payload fits
// the Match option, and returns its payload decoded as T. An event sent
// before the wait began, within store.DefaultEventRetention (24 hours), is
// delivered too; a run that waits for a name again gets a newer event. One
// event wakes every run waiting for it. Within sets a deadline.
func WaitForEvent[T any](ctx Context, name string, opts ...WaitOption) (T, error) {
	var zero T
	spec, err := waitOptions(opts).spec(store.WaitSpec{Kind: store.WaitEvent, Key: name})
	if err == nil && name == "" {
		err = fmt.Errorf("the event name must not be empty")
	}
	if err != nil {
		return zero, Permanent(fmt.Errorf("baton.WaitForEvent %s: %w", name, err))
	}
	return Future[T]{f: ctx.flow().Wait(spec, decode[T])}.Wait(ctx)
}

func decodeNothing(json.RawMessage) (any, error) { return struct{}{}, nil }
