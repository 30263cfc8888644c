package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
)

// Work queues in the server: the declared queues (priority, pause) are
// kept in memory and read again at most every queueCacheTTL, at once
// after a "queues" notification (a queue changed through any server), so
// claims read no table for them.

// queueCacheTTL bounds how long a server claims with an old view of the
// declared queues when a notification was lost.
const queueCacheTTL = 2 * time.Second

// queueCache holds the declared queues.
type queueCache struct {
	mu     sync.Mutex
	m      map[string]store.WorkQueue
	readAt time.Time
}

// invalidate makes the next read go to the store.
func (c *queueCache) invalidate() {
	c.mu.Lock()
	c.readAt = time.Time{}
	c.mu.Unlock()
}

// queues returns the declared queues by name (from memory when fresh). A
// failed read keeps the last view (none at first: every queue implicit).
func (s *Server) queues(ctx context.Context) map[string]store.WorkQueue {
	c := &s.queueInfo
	now := s.clk.Now()
	c.mu.Lock()
	if c.m != nil && now.Sub(c.readAt) < queueCacheTTL && !c.readAt.IsZero() {
		m := c.m
		c.mu.Unlock()
		return m
	}
	c.mu.Unlock()
	qs, err := s.st.QueueDeclared(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.m == nil {
			return map[string]store.WorkQueue{}
		}
		return c.m
	}
	m := make(map[string]store.WorkQueue, len(qs))
	for _, q := range qs {
		m[q.Name] = q
	}
	c.m, c.readAt = m, now
	return m
}

// listQueues serves the queues: the statistics of every queue with work or
// a live worker, and every declared queue, with priority and pause.
func (s *Server) listQueues(w http.ResponseWriter, r *http.Request) error {
	qs, err := s.queuesList(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, map[string]any{"queues": qs})
}

func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if err := store.CheckIdentifier("queue", name); err != nil {
		return errBadRequest("%v", err)
	}
	qs, err := api.QueueList(r.Context(), s.st, s.clk.Now().Add(-store.LiveWorkerWindow))
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.Queue == name {
			return writeJSON(w, 200, q)
		}
	}
	return errNotFound("unknown queue %q: not declared, served by no live worker, and named by no unfinished work", name)
}

// setQueue creates (POST /queues) or changes (POST /queues/{name}, its
// pause and resume) a queue.
func (s *Server) setQueue(create bool, action string) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.QueueRequest
		if r.ContentLength != 0 || create {
			if err := decode(r, &req); err != nil {
				return err
			}
		}
		who, err := apiActor(r, "")
		if err != nil {
			return err
		}
		if !create {
			req.Name = r.PathValue("name")
		}
		q, err := api.SetQueue(r.Context(), s.st, req, create, action, who)
		if err != nil {
			var bad *api.BadInputError
			if errors.As(err, &bad) {
				return errBadRequest("%v", err)
			}
			return err
		}
		s.queueInfo.invalidate()
		s.runsSig.notify()
		s.tasksSig.notify()
		status := 200
		if create {
			status = 201
		}
		return writeJSON(w, status, api.QueueInfoJSON(q))
	}
}
