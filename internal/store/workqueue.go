package store

import (
	"fmt"
	"slices"
	"time"
)

// DefaultQueue is the queue of runs and workers that name none. It always
// exists.
const DefaultQueue = "default"

// WorkQueue is a declared work queue (migration 0010). A queue that is not
// declared exists implicitly, with priority 0 and not paused, as soon as a
// worker serves it or work names it. A worker serving several queues claims
// flow runs from the queues of the highest priority first; within one
// priority the oldest run first, whatever its queue (no starvation among
// equals). A paused queue hands out nothing until it is resumed.
//
// MaxRunning, when above 0, is the queue's concurrency limit, enforced by
// every claim on every server (see Store.Claim): at most MaxRunning flow
// runs of the queue are held by workers (PENDING, RUNNING, CANCELLING or
// AWAITING_RETRY on a lease) and, separately, at most MaxRunning
// distributed task runs of the queue are RUNNING. The two are counted
// apart so that a flow run waiting for its own task runs on its queue
// cannot hold the slot they need. A slot is its holder's lease: it is
// free in the transaction that ends the run or task run, or takes it back
// when its worker's lease expires. 0 is no limit.
type WorkQueue struct {
	Name        string
	Priority    int
	MaxRunning  int
	Paused      bool
	PauseNote   string
	PausedBy    string
	PausedAt    time.Time
	Description string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// QueueSetParams declares or changes a work queue. With Create, a queue
// already declared is a conflict (ErrConflict); without it, a queue not
// declared is declared with the given fields. Nil fields keep their value
// (the zero value for a new queue). Pause sets Paused with PauseNote, By
// and At; Resume clears them.
type QueueSetParams struct {
	Name        string
	Create      bool
	Priority    *int
	MaxRunning  *int // the concurrency limit, 0: none (see WorkQueue)
	Description *string
	Pause       bool
	Resume      bool
	PauseNote   string
	By          string
	At          time.Time // zero: now
}

// MaxQueuePriority bounds a queue's priority (either sign).
const MaxQueuePriority = 1_000_000

// CheckQueueSet validates p, naming the field in the error: the same check
// for the CLI and the API.
func CheckQueueSet(p QueueSetParams) error {
	if p.Name == "" {
		return fmt.Errorf("queue: must not be empty")
	}
	if err := CheckIdentifier("queue", p.Name); err != nil {
		return err
	}
	if p.Priority != nil && (*p.Priority > MaxQueuePriority || *p.Priority < -MaxQueuePriority) {
		return fmt.Errorf("priority: must be from %d to %d, got %d", -MaxQueuePriority, MaxQueuePriority, *p.Priority)
	}
	if p.MaxRunning != nil {
		if err := CheckLimitMax(*p.MaxRunning); err != nil {
			return err
		}
	}
	if p.Description != nil {
		if err := CheckIdentifier("description", *p.Description); err != nil {
			return err
		}
	}
	if err := CheckIdentifier("note", p.PauseNote); err != nil {
		return err
	}
	if p.Pause && p.Resume {
		return fmt.Errorf("pause and resume at once")
	}
	return nil
}

// QueuesByPriority groups queues by their priority in queues (a missing
// queue has priority 0), highest first, leaving out paused ones; each
// group keeps the order of names.
func QueuesByPriority(names []string, queues map[string]WorkQueue) [][]string {
	prio := map[int][]string{}
	var levels []int
	for _, n := range names {
		q := queues[n]
		if q.Paused {
			continue
		}
		if _, ok := prio[q.Priority]; !ok {
			levels = append(levels, q.Priority)
		}
		prio[q.Priority] = append(prio[q.Priority], n)
	}
	slices.Sort(levels)
	slices.Reverse(levels)
	out := make([][]string, len(levels))
	for i, l := range levels {
		out[i] = prio[l]
	}
	return out
}
