package api

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// WaitingReason says what a run that has not started, or whose distributed
// task runs have not, waits for: the answer of `baton runs show` and of
// the API's run documents (waiting_reason). For a SCHEDULED run: whether a
// live worker (seen at or after seenSince) serves its flow on its queue,
// whether its queue is paused or at its concurrency limit (and who holds
// the slots), and its position in the queue. For a run with waiting task
// runs: whether their queue is at its limit; for AWAITING_SLOT ones:
// the limits of their tags, who holds the slots (task runs, runs,
// workers, since when) and how many wait for each; for PENDING or
// AWAITING_SLOT task runs whose task no live worker serves on their queue,
// that. "" when the run waits for nothing of that kind (or a read fails:
// the reason is advice, never an error of the read it comes with).
func WaitingReason(ctx context.Context, st store.Store, run store.Run, seenSince time.Time) string {
	workers, err := st.WorkerList(ctx, seenSince)
	if err != nil {
		return ""
	}
	switch run.State {
	case store.RunScheduled:
		return scheduledReason(ctx, st, run, workers)
	case store.RunRunning, store.RunPaused:
		return taskRunsReason(ctx, st, run, workers)
	case store.RunAwaitingSlot:
		return deploymentSlotReason(ctx, st, run)
	}
	return ""
}

// deploymentSlotReason says what a run of a deployment in AWAITING_SLOT
// waits for: its deployment's earlier runs to finish.
func deploymentSlotReason(ctx context.Context, st store.Store, run store.Run) string {
	runs, err := st.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: run.Deployment,
		States: []store.RunState{store.RunScheduled, store.RunRunning, store.RunPaused, store.RunCancelling}})
	if err != nil {
		return ""
	}
	return fmt.Sprintf("waiting for a slot of deployment %q: %d of its runs are active (its limit of active runs or its schedule's overlap policy holds this run back until one ends)",
		run.Deployment, len(runs))
}

// pausedReason says that queue is paused, by whom and why ("" when not).
func pausedReason(ctx context.Context, st store.Store, queue string) string {
	qs, err := st.QueueDeclared(ctx)
	if err != nil {
		return ""
	}
	for _, q := range qs {
		if q.Name == queue && q.Paused {
			s := fmt.Sprintf("queue %q is paused by %s", q.Name, q.PausedBy)
			if q.PauseNote != "" {
				s += ": " + q.PauseNote
			}
			return s + fmt.Sprintf(" (since %s); resume it with: baton queues resume %s", q.PausedAt.UTC().Format(time.RFC3339), q.Name)
		}
	}
	return ""
}

// declaredQueue returns the declared queue named name (false when it is
// not declared or the read fails).
func declaredQueue(ctx context.Context, st store.Store, name string) (store.WorkQueue, bool) {
	qs, err := st.QueueDeclared(ctx)
	if err != nil {
		return store.WorkQueue{}, false
	}
	for _, q := range qs {
		if q.Name == name {
			return q, true
		}
	}
	return store.WorkQueue{}, false
}

// queueRunLimitReason says that queue's concurrency limit is full of flow
// runs held by workers, and which ("" when it has no limit or a slot is
// free).
func queueRunLimitReason(ctx context.Context, st store.Store, queue string) string {
	q, ok := declaredQueue(ctx, st, queue)
	if !ok || q.MaxRunning < 1 {
		return ""
	}
	var held []store.Run
	for _, state := range store.LeasedRunStates {
		runs, err := st.RunList(ctx, store.RunListParams{State: state, Queue: queue, Limit: 1000})
		if err != nil {
			return ""
		}
		for _, r := range runs {
			if r.WorkerID != "" {
				held = append(held, r)
			}
		}
	}
	if len(held) < q.MaxRunning {
		return ""
	}
	slices.SortFunc(held, func(a, b store.Run) int {
		if c := a.UpdatedAt.Compare(b.UpdatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	var names []string
	for i, r := range held {
		if i == 3 {
			names = append(names, fmt.Sprintf("and %d more", len(held)-3))
			break
		}
		names = append(names, fmt.Sprintf("run %s (%s) on worker %s", r.ID, r.Flow, r.WorkerID))
	}
	return fmt.Sprintf("queue %q is at its limit: %d of %d flow-run slots held by %s; raise it with: baton queues update %s --limit N",
		queue, len(held), q.MaxRunning, strings.Join(names, ", "), queue)
}

// queueTaskLimitReason says that queue's concurrency limit is full of
// RUNNING task runs ("" when it has no limit or a slot is free).
func queueTaskLimitReason(ctx context.Context, st store.Store, queue string) string {
	q, ok := declaredQueue(ctx, st, queue)
	if !ok || q.MaxRunning < 1 {
		return ""
	}
	stats, err := st.QueueList(ctx, time.Time{})
	if err != nil {
		return ""
	}
	for _, s := range stats {
		if s.Queue == queue && s.TasksRunning >= q.MaxRunning {
			return fmt.Sprintf("queue %q is at its limit: %d of %d task-run slots held by RUNNING task runs; raise it with: baton queues update %s --limit N",
				queue, s.TasksRunning, q.MaxRunning, queue)
		}
	}
	return ""
}

func scheduledReason(ctx context.Context, st store.Store, run store.Run, workers []store.Worker) string {
	if p := pausedReason(ctx, st, run.Queue); p != "" {
		return p
	}
	if p := queueRunLimitReason(ctx, st, run.Queue); p != "" {
		return p
	}
	var serving []store.Worker
	for _, wk := range workers {
		if slices.Contains(wk.Flows, run.Flow) && slices.Contains(wk.Queues, run.Queue) {
			serving = append(serving, wk)
		}
	}
	position := ""
	if ahead, err := st.RunsScheduledAhead(ctx, run.Queue, run.CreatedAt, run.ID); err == nil {
		position = fmt.Sprintf("; position %d in queue %q (%d runs scheduled before it)", ahead+1, run.Queue, ahead)
	}
	if len(serving) == 0 {
		return fmt.Sprintf("no live worker serves flow %q on queue %q; start one with: <your program> worker --queue %s%s",
			run.Flow, run.Queue, run.Queue, position)
	}
	if wk, ok := workerWithFreeSlot(ctx, st, serving); ok {
		return fmt.Sprintf("%s %s serving flow %q on queue %q has a free slot and claims it next%s",
			FreeSlotPrefix, wk, run.Flow, run.Queue, position)
	}
	return fmt.Sprintf("waiting for a free slot on %d worker(s) serving flow %q on queue %q%s", len(serving), run.Flow, run.Queue, position)
}

// FreeSlotPrefix starts the waiting reason of a SCHEDULED run that a live
// worker with a free slot serves: it is about to be claimed, not waiting
// for a slot (`runs create` says nothing of it).
const FreeSlotPrefix = "not waiting for a slot: worker"

// workerWithFreeSlot returns the name of one of workers that holds fewer
// flow runs than its capacity, if any.
func workerWithFreeSlot(ctx context.Context, st store.Store, workers []store.Worker) (string, bool) {
	held, err := st.RunsHeld(ctx)
	if err != nil {
		return "", false // unknown: say it waits, as before
	}
	for _, wk := range workers {
		if held[wk.ID] < wk.Capacity {
			name := wk.Name
			if name == "" {
				name = wk.ID
			}
			return fmt.Sprintf("%q", name), true
		}
	}
	return "", false
}

// maxReasonTaskRuns bounds the waiting task runs a reason reads.
const maxReasonTaskRuns = 1000

func taskRunsReason(ctx context.Context, st store.Store, run store.Run, workers []store.Worker) string {
	counts, err := st.TaskRunCounts(ctx, run.ID)
	if err != nil {
		return ""
	}
	waiting := 0
	for _, c := range counts {
		if c.State.Waiting() {
			waiting += c.N
		}
	}
	if waiting == 0 {
		return ""
	}
	trs, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID,
		States: []store.TaskState{store.TaskPending, store.TaskAwaitingSlot}, Limit: maxReasonTaskRuns})
	if err != nil {
		return ""
	}
	var (
		parts   []string
		tags    []string
		noWork  []string // "task on queue" no live worker serves
		perTag  = map[string]int{}
		slotted int
	)
	for _, t := range trs {
		if t.Queue == "" && t.State != store.TaskAwaitingSlot {
			continue
		}
		// A local task run (no queue) waiting for a slot is its own
		// process's: no worker is needed.
		served := t.Queue == ""
		for _, wk := range workers {
			if slices.Contains(wk.Queues, t.Queue) && slices.Contains(wk.Tasks, t.Task) {
				served = true
				break
			}
		}
		if what := fmt.Sprintf("task %q on queue %q", t.Task, t.Queue); !served && !slices.Contains(noWork, what) {
			noWork = append(noWork, what)
		}
		if t.State == store.TaskAwaitingSlot {
			slotted++
			for _, tag := range t.Tags {
				if perTag[tag] == 0 {
					tags = append(tags, tag)
				}
				perTag[tag]++
			}
		}
	}
	if len(noWork) > 0 {
		parts = append(parts, "no live worker serves "+strings.Join(noWork, ", "))
	}
	var queues []string
	queueFull := false
	for _, t := range trs {
		if t.Queue != "" && !slices.Contains(queues, t.Queue) {
			queues = append(queues, t.Queue)
			if p := pausedReason(ctx, st, t.Queue); p != "" {
				parts = append(parts, p)
			}
			if p := queueTaskLimitReason(ctx, st, t.Queue); p != "" {
				parts = append(parts, p)
				queueFull = true // not "free slots": the queue holds them back
			}
		}
	}
	if slotted > 0 {
		slices.Sort(tags)
		limits, err := st.LimitList(ctx, tags)
		if err == nil {
			full := 0
			for _, l := range limits {
				held := len(l.Holders)
				s := fmt.Sprintf("limit %q: %d of %d slots held", l.Tag, held, l.Max)
				if held > 0 {
					s += " by " + l.DescribeHolders(3)
				}
				s += fmt.Sprintf("; %d task runs of this run and %d in all wait for one", perTag[l.Tag], l.Waiting)
				if held >= l.Max {
					full++
				}
				parts = append(parts, s)
			}
			if full == 0 && len(noWork) == 0 && !queueFull {
				parts = append(parts, fmt.Sprintf("%d task runs have free slots and wait for a worker to claim them", slotted))
			}
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("%d task runs wait: ", waiting) + strings.Join(parts, "; ")
}
