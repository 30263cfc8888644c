package server

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// Resource-aware placement on the server: workers register what they have
// and what their tasks need (TaskSpecs); a claim of a worker with such
// tasks claims them in entries of one need each, within what the worker
// offers free (store.ClaimNeeds); the run detail says when no live worker
// could ever fit a PENDING task run; and the maintenance pass moves task
// runs that waited out their fallback's wait to the fallback.

// checkResources refuses, with a 400 naming the field, the resources and
// task specs of a registration that are negative or name bad tasks.
func checkResources(req api.RegisterWorker) error {
	if req.Resources != nil {
		if err := req.Resources.Check(); err != nil {
			return errBadRequest("field \"resources\": %v", err)
		}
	}
	for name, spec := range req.TaskSpecs {
		field := fmt.Sprintf("task_specs[%q]", name)
		if err := checkIdentifiers(identifier{field, "task name", name}, identifier{field + ".queue", "queue", spec.Queue},
			identifier{field + ".fallback", "task name", spec.Fallback},
			identifier{field + ".fallback_queue", "queue", spec.FallbackQueue}); err != nil {
			return err
		}
		if err := spec.Need.Check(); err != nil {
			return errBadRequest("field %s.need: %v", field, err)
		}
		if spec.FallbackAfterMS < 0 {
			return errBadRequest("field %s.fallback_after_ms must not be negative", field)
		}
	}
	return nil
}

// needGroups returns the tasks of wk without a need, and those with one
// grouped by identical need, the largest needs first (so that a task run
// needing a whole GPU box is not crowded out by small ones claimed before
// it in the same claim). It returns nil groups for a worker none of whose
// tasks need resources.
func needGroups(wk store.Worker) (plain []string, groups []needGroup) {
	byNeed := map[store.Resources][]string{}
	for _, t := range wk.Tasks {
		if need := wk.TaskSpecs[t].Need; !need.IsZero() {
			byNeed[need] = append(byNeed[need], t)
			continue
		}
		plain = append(plain, t)
	}
	if len(byNeed) == 0 {
		return wk.Tasks, nil
	}
	for need, tasks := range byNeed {
		groups = append(groups, needGroup{need: need, tasks: tasks})
	}
	slices.SortFunc(groups, func(a, b needGroup) int {
		return cmp.Or(cmp.Compare(b.need.GPU, a.need.GPU), cmp.Compare(b.need.Memory, a.need.Memory),
			cmp.Compare(b.need.CPUMilli, a.need.CPUMilli))
	})
	return plain, groups
}

// needGroup is the tasks of a worker that need the same resources.
type needGroup struct {
	need  store.Resources
	tasks []string
}

// taskClaims returns the task-run claims of a worker for n task runs of
// queue: one entry for its tasks without needs (today's claim) and one per
// need group after it, sharing the queue's n slots.
func taskClaims(wk store.Worker, queue string, n int, lease, at time.Time) []store.TaskRunClaimParams {
	base := store.TaskRunClaimParams{WorkerID: wk.ID, Queues: []string{queue}, Tasks: wk.Tasks, Limit: n, LeaseUntil: lease, At: at}
	if len(wk.TaskSpecs) == 0 {
		return []store.TaskRunClaimParams{base}
	}
	plain, groups := needGroups(wk)
	var out []store.TaskRunClaimParams
	if len(plain) > 0 {
		base.Tasks = plain
		out = append(out, base)
	}
	for _, g := range groups {
		e := base
		e.Tasks, e.Need = g.tasks, g.need
		out = append(out, e)
	}
	return out
}

// liveSpecs returns the task specs the live workers registered (the
// latest registration first wins) and the workers.
func (s *Server) liveSpecs(ctx context.Context) (map[string]store.TaskSpec, []store.Worker, error) {
	workers, err := s.st.WorkerList(ctx, s.clk.Now().Add(-s.cfg.LeaseTimeout))
	if err != nil {
		return nil, nil, err
	}
	specs := map[string]store.TaskSpec{}
	byStart := slices.Clone(workers)
	slices.SortFunc(byStart, func(a, b store.Worker) int { return b.StartedAt.Compare(a.StartedAt) })
	for _, wk := range byStart {
		for name, spec := range wk.TaskSpecs {
			if _, ok := specs[name]; !ok {
				specs[name] = spec
			}
		}
	}
	return specs, workers, nil
}

// fitReason says why no live worker could run task runs of task with spec
// on its queue, or returns "" when one could.
func fitReason(task string, spec store.TaskSpec, workers []store.Worker) string {
	var serving []store.Worker
	for _, wk := range workers {
		if slices.Contains(wk.Queues, spec.Queue) && slices.Contains(wk.Tasks, task) {
			if spec.Need.FitsIn(wk.Resources) {
				return ""
			}
			serving = append(serving, wk)
		}
	}
	var b strings.Builder
	if spec.Need.IsZero() {
		fmt.Fprintf(&b, "task %s: no live worker serving queue %s has the task", task, spec.Queue)
	} else {
		fmt.Fprintf(&b, "needs %s; ", spec.Need)
		if len(serving) == 0 {
			fmt.Fprintf(&b, "no live worker serving queue %s has task %s", spec.Queue, task)
		} else {
			var best store.Resources
			for _, wk := range serving {
				best = store.Resources{CPUMilli: max(best.CPUMilli, wk.Resources.CPUMilli),
					Memory: max(best.Memory, wk.Resources.Memory), GPU: max(best.GPU, wk.Resources.GPU)}
			}
			var short []string
			if spec.Need.CPUMilli > best.CPUMilli {
				short = append(short, store.FormatCPU(best.CPUMilli)+" CPU")
			}
			if spec.Need.Memory > best.Memory {
				short = append(short, store.FormatMemory(best.Memory)+" of memory")
			}
			if spec.Need.GPU > best.GPU {
				short = append(short, fmt.Sprintf("%d GPU", best.GPU))
			}
			if len(short) > 0 {
				fmt.Fprintf(&b, "no live worker serving queue %s has more than %s", spec.Queue, strings.Join(short, " and "))
			} else {
				fmt.Fprintf(&b, "no single live worker serving queue %s has all of it", spec.Queue)
			}
		}
	}
	if spec.Fallback != "" {
		fmt.Fprintf(&b, "; falls back to task %s once a task run has waited %s", spec.Fallback, spec.FallbackAfter())
	}
	return b.String()
}

// placementReasons says, per task with PENDING task runs in run, why no
// live worker could ever run them (only the tasks for which that holds),
// and a summary for the run ("" when none). Runs other than RUNNING and
// PAUSED have no claimable task runs and get nothing.
func (s *Server) placementReasons(ctx context.Context, run store.Run) (string, map[string]string) {
	if run.State != store.RunRunning && run.State != store.RunPaused {
		return "", nil
	}
	specs, workers, err := s.liveSpecs(ctx)
	if err != nil || len(specs) == 0 {
		return "", nil
	}
	counts, err := s.st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return "", nil
	}
	byTask := map[string]string{}
	var lines []string
	for _, c := range counts {
		spec, ok := specs[c.Task]
		if !ok || c.State != store.TaskPending || c.N == 0 {
			continue
		}
		if r := fitReason(c.Task, spec, workers); r != "" {
			byTask[c.Task] = r
			lines = append(lines, fmt.Sprintf("%d task run(s) of %s: %s", c.N, c.Task, r))
		}
	}
	return strings.Join(lines, "; "), byTask
}

// explainPlacement sets the waiting reasons of d's PENDING task runs and,
// for a run that has no other, of the run.
func (s *Server) explainPlacement(ctx context.Context, run store.Run, d *apitype.RunDetail) {
	summary, byTask := s.placementReasons(ctx, run)
	if summary == "" {
		return
	}
	switch {
	case d.WaitingReason == "":
		d.WaitingReason = summary
	case !strings.Contains(d.WaitingReason, summary):
		d.WaitingReason += "; " + summary
	}
	for i := range d.TaskRuns {
		if tr := &d.TaskRuns[i]; tr.State == string(store.TaskPending) {
			tr.WaitingReason = byTask[tr.Task]
		}
	}
}

// fallBack moves the task runs that waited out their task's fallback wait
// while no live worker could run them to the fallback (see
// baton.Fallback); every maintenance pass calls it.
func (s *Server) fallBack(ctx context.Context) {
	specs, workers, err := s.liveSpecs(ctx)
	if err != nil {
		s.log.Warn("read workers for fallbacks", "err", err)
		return
	}
	now := s.clk.Now()
	names := make([]string, 0, len(specs))
	for name := range specs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, task := range names {
		spec := specs[task]
		if spec.Fallback == "" || spec.Queue == "" {
			continue
		}
		reason := fitReason(task, spec, workers)
		if reason == "" {
			continue // a live worker could run it: it waits for that one
		}
		i := strings.Index(reason, "; falls back")
		if i >= 0 {
			reason = reason[:i]
		}
		reason = fmt.Sprintf("waited %s: %s", spec.FallbackAfter(), reason)
		n, err := s.st.TaskRunFallback(ctx, store.TaskRunFallbackParams{Queue: spec.Queue, Task: task, To: spec.Fallback,
			ToQueue: spec.FallbackQueue, CreatedBefore: now.Add(-spec.FallbackAfter()), Reason: reason, At: now})
		if err != nil {
			s.log.Warn("fall back task runs", "task", task, "err", err)
			continue
		}
		if n > 0 {
			s.log.Info("task runs fell back", "task", task, "fallback", spec.Fallback, "n", n)
			s.tasksSig.notify()
		}
	}
}
