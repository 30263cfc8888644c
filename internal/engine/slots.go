package engine

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/store"
)

// Slots of tag concurrency limits for the task runs an engine executes
// itself (a local run, or a task without a queue): before each attempt
// the step takes a slot of every limited tag it carries from the store
// (SlotStore.SlotAcquire writes it RUNNING, held by this process with a
// lease, only when they are free), renews the lease while the attempt
// runs, and frees them with the state the attempt ends in. While the
// slots are full it waits AWAITING_SLOT and tries again every SlotPoll. A
// process killed while it holds slots leaves them held until the lease
// expires (Config.SlotLease), then claims and other processes take them.

// slotStore returns the store that takes the step's slots, nil when it
// takes none (no tags, or a store that does not take slots).
func (s *step) slotStore() SlotStore {
	if len(s.call.Task.Policy.Tags) == 0 {
		return nil
	}
	ss, _ := s.fc.e.cfg.Store.(SlotStore)
	return ss
}

// slotHolder is the holder of this process's slots: "local:<host>:<pid>".
func (e *Engine) slotHolder() string {
	return store.LocalHolderPrefix + e.self.Host + ":" + strconv.Itoa(e.self.PID)
}

// takeSlots tries to take the slots of the attempt tr (RUNNING, with its
// holder and lease), whose step was in prev before it. It reports whether
// the attempt may run; otherwise the step waits AWAITING_SLOT and its
// attempt is queued again later. A first attempt tries at once (nothing of
// it is written yet); a step that was written in another state (a retry)
// is first written AWAITING_SLOT, durably, so that no write of its earlier
// state queued in the group-commit writer can land over the slot's row.
func (s *step) takeSlots(ss SlotStore, prev, tr store.TaskRun) bool {
	fc := s.fc
	if prev.State == store.TaskPending || prev.State == store.TaskAwaitingSlot {
		ok, err := ss.SlotAcquire(fc.ctx, store.SlotAcquireParams{TaskRun: tr, At: fc.e.now()})
		if err == nil && ok {
			return true
		}
		if err != nil && fc.ctx.Err() == nil {
			fc.logger.Warn("take the slots of a task run", "key", s.key, "err", err)
		}
	}
	s.mu.Lock()
	s.tr = prev
	if prev.State == store.TaskAwaitingSlot {
		s.mu.Unlock()
		s.waitSlots(true)
		return false
	}
	s.moveLocked(store.TaskAwaitingSlot, "engine", "waiting for a slot of "+strings.Join(s.call.Task.Policy.Tags, ", "))
	waiting := s.tr
	s.mu.Unlock()
	fc.e.w.add(write{taskRuns: []store.TaskRun{waiting}}, func(err error) {
		if err != nil {
			err = fmt.Errorf("record step %s: %w", s.key, err)
			fc.storeFailed(err)
		}
		s.waitSlots(prev.State == store.TaskPending)
	})
	return false
}

// waitSlots queues the step's attempt again: after SlotPoll when later,
// else at once.
func (s *step) waitSlots(later bool) {
	fc := s.fc
	if !later {
		fc.enqueue(s.attempt)
		return
	}
	fc.e.cfg.Clock.AfterFunc(fc.e.cfg.SlotPoll, func() {
		s.hold()
		fc.enqueue(s.attempt)
	})
	s.letGo() // the callback takes it again before the attempt is queued
}

// keepSlots renews the lease of the step's slots every SlotLease/3 until
// the function it returns is called (the attempt's end). A renewal that
// fails is tried again at the next one: it never stops the attempt.
func (s *step) keepSlots(ss SlotStore) func() {
	fc := s.fc
	var (
		mu      sync.Mutex
		stopped bool
		t       clock.Timer
		renew   func()
	)
	every := fc.e.cfg.SlotLease / 3
	renew = func() {
		until := fc.e.now().Add(fc.e.cfg.SlotLease)
		s.mu.Lock()
		ref, holder := store.TaskRunRef{RunID: s.tr.RunID, Key: s.tr.Key, ID: s.tr.ID}, s.tr.WorkerID
		if s.tr.State == store.TaskRunning {
			s.tr.LeaseUntil = until // later writes of the row carry it
		}
		s.mu.Unlock()
		if err := ss.SlotRenew(fc.ctx, store.SlotRenewParams{Ref: ref, Holder: holder, Until: until}); err != nil && fc.ctx.Err() == nil {
			fc.logger.Warn("renew the slots of a task run", "key", s.key, "err", err)
		}
		mu.Lock()
		if !stopped {
			t = fc.e.cfg.Clock.AfterFunc(every, renew)
		}
		mu.Unlock()
	}
	mu.Lock()
	t = fc.e.cfg.Clock.AfterFunc(every, renew)
	mu.Unlock()
	return func() {
		mu.Lock()
		stopped = true
		t.Stop()
		mu.Unlock()
	}
}
