package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// Work queues, the same on every surface (`baton queues` on the store and
// /api/v1/queues on a server).

// QueueList returns the statistics of the queues with work or a live
// worker (seen at or after seenSince) merged with the declared queues, by
// name.
func QueueList(ctx context.Context, st store.Store, seenSince time.Time) ([]apitype.Queue, error) {
	stats, err := st.QueueList(ctx, seenSince)
	if err != nil {
		return nil, err
	}
	declared, err := st.QueueDeclared(ctx)
	if err != nil {
		return nil, err
	}
	out := []apitype.Queue{}
	i, j := 0, 0
	for i < len(stats) || j < len(declared) {
		switch {
		case j == len(declared) || (i < len(stats) && stats[i].Queue < declared[j].Name):
			out = append(out, QueueJSON(stats[i]))
			i++
		case i == len(stats) || declared[j].Name < stats[i].Queue:
			out = append(out, QueueInfoJSON(declared[j]))
			j++
		default:
			v := QueueJSON(stats[i])
			addQueueInfo(&v, declared[j])
			out = append(out, v)
			i, j = i+1, j+1
		}
	}
	return out, nil
}

// QueueInfoJSON converts a declared queue (without statistics).
func QueueInfoJSON(q store.WorkQueue) apitype.Queue {
	v := apitype.Queue{Queue: q.Name}
	addQueueInfo(&v, q)
	return v
}

func addQueueInfo(v *apitype.Queue, q store.WorkQueue) {
	v.Declared, v.Priority, v.Paused, v.PauseNote, v.PausedBy = true, q.Priority, q.Paused, q.PauseNote, q.PausedBy
	v.Description, v.Limit = q.Description, q.MaxRunning
	if q.Paused && !q.PausedAt.IsZero() {
		t := q.PausedAt.UTC()
		v.PausedAt = &t
	}
}

// SetQueue declares (create) or changes a queue: action "" sets its
// fields, "pause" pauses it with req.Note, "resume" resumes it. Refusals
// are *BadInputError naming the field; creating a declared queue is a
// conflict.
func SetQueue(ctx context.Context, st store.Store, req apitype.QueueRequest, create bool, action string, who store.Actor) (store.WorkQueue, error) {
	p, err := QueueParams(req, create, action, who)
	if err != nil {
		return store.WorkQueue{}, err
	}
	q, err := st.QueueSet(ctx, p)
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return q, fmt.Errorf("queue %q is declared already; change it with: baton queues update %s: %w", req.Name, req.Name, store.ErrConflict)
		}
		return q, err
	}
	return q, nil
}

// QueueParams validates a queue request (a *BadInputError naming the
// field) and returns the store's parameters.
func QueueParams(req apitype.QueueRequest, create bool, action string, who store.Actor) (store.QueueSetParams, error) {
	p := store.QueueSetParams{Name: req.Name, Create: create, Priority: req.Priority, MaxRunning: req.Limit, Description: req.Description,
		PauseNote: req.Note, By: who.OrSystem().Name}
	switch action {
	case "pause":
		p.Pause = true
	case "resume":
		p.Resume = true
	}
	if req.Note != "" && action != "pause" {
		return p, &BadInputError{Err: errors.New("note: only a pause takes a note")}
	}
	if err := store.CheckQueueSet(p); err != nil {
		return p, &BadInputError{Err: err}
	}
	return p, nil
}
