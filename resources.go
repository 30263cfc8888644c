package baton

import (
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Resources is what each run of a distributed task (see Queue) needs on
// the worker that executes it; pass it to Task like any other option:
//
//	var train = baton.Task("train", trainOnGPU,
//		baton.Queue("gpu"), baton.Resources{CPU: 2, Memory: "4GiB", GPU: 1})
//
// A worker claims a task run only when what it has free (see the worker's
// --cpu, --memory and --gpu) fits the need, so it never runs more at once
// than it has; `baton runs show` says so when no live worker serving the
// queue could ever fit it. Zero fields need nothing of that resource. In a
// local run (`run`, Execute), as for Queue, resources are not checked.
type Resources struct {
	// CPU is a number of CPUs; fractions down to a thousandth (0.5) are
	// allowed.
	CPU float64
	// Memory is an amount such as "4GiB", "512MiB" or "2GB": a number
	// followed by B, KiB, MiB, GiB, TiB (powers of 1024) or KB, MB, GB, TB
	// (powers of 1000); a plain number is bytes.
	Memory string
	// GPU is a number of GPUs.
	GPU int
}

func (r Resources) applyTask(c *taskConfig) { c.resources = &r }

// need converts r to what the store counts, or says which field is wrong.
func (r Resources) need() (store.Resources, error) {
	var out store.Resources
	cpu, err := store.CPUMilli(r.CPU)
	if err != nil {
		return out, fmt.Errorf("Resources.CPU: %w", err)
	}
	out.CPUMilli = cpu
	if r.Memory != "" {
		if out.Memory, err = store.ParseMemory(r.Memory); err != nil {
			return out, fmt.Errorf("Resources.Memory: %w", err)
		}
	}
	if r.GPU < 0 {
		return out, fmt.Errorf("Resources.GPU: must not be negative")
	}
	out.GPU = int64(r.GPU)
	return out, nil
}

// Fallback names another implementation of the task: when a distributed
// run of the task has waited wait and no live worker that could fit its
// Resources serves its queue (none alive then, or none with enough), it
// runs fallback instead, on fallback's queue (or the task's, when fallback
// has none) with fallback's resources. Both tasks take and return the same
// types. The run's history records the switch (action "fallback"), and so
// does the task run: its task becomes fallback's name, with a transition
// of cause "fallback". A replay of the run reuses the result under the
// step as usual. The server decides, at its maintenance passes (every
// few seconds), so the wait is rounded up to the next one. A fallback's
// own fallback is not followed.
func Fallback[In, Out any](fallback *TaskDef[In, Out], wait time.Duration) TaskOption {
	if fallback == nil {
		return taskOptionFunc(func(*taskConfig) { panic("baton.Fallback: a fallback task is required") })
	}
	return taskOptionFunc(func(c *taskConfig) {
		c.fallback, c.fallbackWait = fallback.def, wait
		c.fallbackIn, c.fallbackOut = typeOf[In](), typeOf[Out]()
	})
}

// applyPlacement checks the task's resources and fallback and sets them
// in its policy; it panics (as Task does) naming the field at fault.
func applyPlacement[In, Out any](name string, cfg *taskConfig) {
	if cfg.resources != nil {
		need, err := cfg.resources.need()
		if err != nil {
			panic("baton.Task " + name + ": " + err.Error())
		}
		cfg.policy.Resources = need
	}
	if cfg.fallback == nil {
		return
	}
	switch {
	case cfg.fallback.Name == name:
		panic("baton.Task " + name + ": Fallback: a task cannot be its own fallback")
	case cfg.fallbackIn != typeOf[In]() || cfg.fallbackOut != typeOf[Out]():
		panic(fmt.Sprintf("baton.Task %s: Fallback: task %s takes %v and returns %v, but %s takes %v and returns %v",
			name, cfg.fallback.Name, cfg.fallbackIn, cfg.fallbackOut, name, typeOf[In](), typeOf[Out]()))
	case cfg.fallbackWait < 0:
		panic("baton.Task " + name + ": Fallback: the wait must not be negative")
	}
	cfg.policy.Fallback, cfg.policy.FallbackAfter = cfg.fallback, cfg.fallbackWait
}
