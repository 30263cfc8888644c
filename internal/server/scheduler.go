package server

import (
	"context"
	"sync"

	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// The scheduler of deployments: every SchedulerInterval, on the server's
// clock, the server that holds the scheduler lock runs a pass of
// deploy.Service.Tick (creating the runs of the coming fire times and
// applying the overlap and concurrency policies). On PostgreSQL the lock
// is a session advisory lock on a connection of its own
// (store.SchedulerLocker): one server of those sharing the database
// schedules, and when it dies its connection drops and another takes over
// at its next interval. On SQLite every server schedules; the unique index
// on (deployment, schedule, planned start) keeps a fire time from being
// created twice, whoever races.

// schedulerState is the scheduler lock this server holds, if any.
type schedulerState struct {
	mu   sync.Mutex
	lock store.SchedulerLock
}

// leader reports whether this server may schedule now, taking the lock
// when it is free.
func (s *Server) leader(ctx context.Context) (bool, error) {
	locker, ok := s.st.(store.SchedulerLocker)
	if !ok {
		return true, nil
	}
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	if l := s.sched.lock; l != nil {
		err := l.Check(ctx)
		if err == nil {
			return true, nil
		}
		s.log.Warn("lost the scheduler lock", "err", err)
		l.Release()
		s.sched.lock = nil
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
	}
	l, err := locker.SchedulerLock(ctx)
	if err != nil || l == nil {
		return false, err
	}
	s.log.Info("this server is the scheduler")
	s.sched.lock = l
	return true, nil
}

// releaseScheduler gives the scheduler lock back.
func (s *Server) releaseScheduler() {
	s.sched.mu.Lock()
	defer s.sched.mu.Unlock()
	if s.sched.lock != nil {
		s.sched.lock.Release()
		s.sched.lock = nil
	}
}

// SchedulerPass runs one pass of the scheduler now if this server is (or
// becomes) the scheduler; acted is false when another server holds the
// lock. The background loop calls it every SchedulerInterval; tests and
// benchmarks call it directly.
func (s *Server) SchedulerPass(ctx context.Context) (res deploy.TickResult, acted bool, err error) {
	ok, err := s.leader(ctx)
	if err != nil || !ok {
		return res, false, err
	}
	res, err = s.deploy.Tick(ctx)
	if res.Created > 0 || res.Promoted > 0 {
		s.runsSig.notify()
	}
	return res, true, err
}

// scheduler runs passes until ctx ends, then releases the lock.
func (s *Server) scheduler(ctx context.Context) {
	defer s.releaseScheduler()
	t := s.clk.NewTicker(s.cfg.SchedulerInterval)
	defer t.Stop()
	for {
		if _, _, err := s.SchedulerPass(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
	}
}
