package worker

import (
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// Resource-aware placement on the worker: it registers what it has and
// what its tasks need, offers what is free in each claim (the server
// claims no more than fits), and counts what the task runs it holds need
// from their claim to their end, as it counts slots.

// registerResources adds to req what the worker has and the specs of its
// tasks that need resources or have a fallback.
func (w *Worker) registerResources(req *api.RegisterWorker) {
	if !w.cfg.Resources.IsZero() {
		r := w.cfg.Resources
		req.Resources = &r
	}
	for _, t := range w.cfg.Tasks {
		p := t.Policy
		if p.Resources.IsZero() && p.Fallback == nil {
			continue
		}
		spec := store.TaskSpec{Queue: p.Queue, Need: p.Resources}
		if p.Fallback != nil {
			spec.Fallback, spec.FallbackAfterMS = p.Fallback.Name, p.FallbackAfter.Milliseconds()
			spec.FallbackQueue = p.Fallback.Policy.Queue
		}
		if req.TaskSpecs == nil {
			req.TaskSpecs = map[string]store.TaskSpec{}
		}
		req.TaskSpecs[t.Name] = spec
	}
}

// needOf returns what a task run of the named task needs (zero for tasks
// the worker does not define).
func (w *Worker) needOf(task string) store.Resources {
	if t := w.tasks[task]; t != nil {
		return t.Policy.Resources
	}
	return store.Resources{}
}

// offerLocked sets in req what the worker has free for task runs that
// need resources, neither held nor offered by another claim in flight,
// and reserves it until the claim's answer is processed (the caller
// subtracts the returned offer from resAsked then). Workers none of whose
// tasks need resources offer nothing. The caller holds w.mu.
func (w *Worker) offerLocked(req *api.Claim) store.Resources {
	if !w.needs || len(req.Tasks) == 0 {
		return store.Resources{}
	}
	free := w.cfg.Resources.Add(w.resUsed, -1).Add(w.resAsked, -1)
	free = store.Resources{CPUMilli: max(free.CPUMilli, 0), Memory: max(free.Memory, 0), GPU: max(free.GPU, 0)}
	if free.IsZero() {
		return free
	}
	req.Free = &free
	w.resAsked = w.resAsked.Add(free, 1)
	return free
}
