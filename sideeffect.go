package baton

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
)

// sideEffectPrefix starts the task name under which a side effect's value
// is recorded ("side-effect:NAME" in runs show and the history).
const sideEffectPrefix = "side-effect:"

// sideEffects holds one engine definition per side-effect name. They are
// not tasks of the program: nothing can call them by name, and a task may
// share a side effect's name.
var sideEffects sync.Map // name -> *engine.TaskDef

func sideEffectDef(name string) *engine.TaskDef {
	if d, ok := sideEffects.Load(name); ok {
		return d.(*engine.TaskDef)
	}
	d, _ := sideEffects.LoadOrStore(name, &engine.TaskDef{Name: sideEffectPrefix + name})
	return d.(*engine.TaskDef)
}

// SideEffect runs fn once in the flow's process and records what it
// returned in the run's journal, like a step: when the run is replayed
// (retried, resumed after a wait, rescheduled after a crash) the k-th
// SideEffect call of a name returns the k-th recorded value without calling
// fn again. Use it for the small non-deterministic things a flow decides
// on itself (a generated ID, a reading of the clock, a random choice) so
// that every replay takes the same branch; work with effects on the world
// belongs in a task, which has retries and timeouts. fn is not retried: its
// error is returned as it is, and only a value is reused, so a side effect
// that failed runs again when the run is replayed (as a failed task does on
// a retry). T must round-trip through JSON.
func SideEffect[T any](ctx Context, name string, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	if err := store.CheckIdentifier("side effect name", name); err != nil || name == "" {
		if err == nil {
			err = fmt.Errorf("side effect name must not be empty")
		}
		return zero, Permanent(fmt.Errorf("baton.SideEffect: %w", err))
	}
	if fn == nil {
		return zero, Permanent(fmt.Errorf("baton.SideEffect %s: no function", name))
	}
	call := engine.Call{
		Task:      sideEffectDef(name),
		InputJSON: []byte("null"),
		Fn:        func(c context.Context) (any, error) { return fn(c) },
		Decode:    decode[T],
	}
	return Future[T]{f: ctx.flow().Call(call)}.Wait(ctx)
}

// Now returns the time, recorded once like a SideEffect: a replay of the
// run sees the time the first execution saw. Flow code that decides by the
// time (a deadline, a date in a file name) reads it here, not from
// time.Now. If the time cannot be recorded (the run is ending), Now returns
// the engine's clock unrecorded.
func Now(ctx Context) time.Time {
	t, err := SideEffect(ctx, "now", func(context.Context) (time.Time, error) {
		return ctx.flow().Engine().Now(), nil
	})
	if err != nil {
		return ctx.flow().Engine().Now()
	}
	return t
}

// Random returns a random number generator whose seed is recorded once
// like a SideEffect: the numbers it gives are the same on every replay of
// the run, so flow code may branch on them. Each call records a new seed.
// If the seed cannot be recorded (the run is ending), the generator is
// seeded unrecorded.
func Random(ctx Context) *rand.Rand {
	seed, err := SideEffect(ctx, "random", func(context.Context) ([2]uint64, error) {
		return [2]uint64{rand.Uint64(), rand.Uint64()}, nil
	})
	if err != nil {
		seed = [2]uint64{rand.Uint64(), rand.Uint64()}
	}
	return rand.New(rand.NewPCG(seed[0], seed[1]))
}
