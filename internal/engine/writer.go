package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/batonhq/baton/internal/store"
)

var errWriterClosed = errors.New("engine is closed")

// writer batches the writes of many concurrent steps into shared
// transactions (group commit). A write is either lazy (it rides along with
// the next commit, or is flushed after lazyDelay) or urgent (it triggers a
// commit). Callbacks run after the commit that holds their write, so a step's
// result becomes visible only once it is durable.
type writer struct {
	st        store.Store
	lazyDelay time.Duration
	maxRows   int // backpressure: writers block while this many rows wait

	mu        sync.Mutex
	room      *sync.Cond
	pending   store.Batch
	trIdx     map[string]int // task-run ID -> index in pending.TaskRuns
	callbacks []func(error)
	rows      int
	timerSet  bool
	closed    bool

	kick chan struct{}
	done chan struct{}
}

func newWriter(st store.Store, lazyDelay time.Duration) *writer {
	w := &writer{
		st:        st,
		lazyDelay: lazyDelay,
		maxRows:   20000,
		trIdx:     map[string]int{},
		kick:      make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	w.room = sync.NewCond(&w.mu)
	go w.loop()
	return w
}

// write is the set of records one engine action writes.
type write struct {
	runs     []store.Run
	taskRuns []store.TaskRun
	events   []store.Event
	logs     []store.LogRecord
	cache    []store.CacheEntry
}

// add queues wr. When then is non-nil the write is urgent and then is called
// with the commit's outcome; otherwise the write is lazy.
func (w *writer) add(wr write, then func(error)) {
	w.mu.Lock()
	for w.rows >= w.maxRows && !w.closed {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		if then != nil {
			then(errWriterClosed)
		}
		return
	}
	b := &w.pending
	b.Runs = append(b.Runs, wr.runs...)
	for _, tr := range wr.taskRuns {
		if i, ok := w.trIdx[tr.ID]; ok {
			b.TaskRuns[i] = tr // coalesce: the latest state of a task run wins
			continue
		}
		w.trIdx[tr.ID] = len(b.TaskRuns)
		b.TaskRuns = append(b.TaskRuns, tr)
		w.rows++
	}
	b.Events = append(b.Events, wr.events...)
	b.Logs = append(b.Logs, wr.logs...)
	b.Cache = append(b.Cache, wr.cache...)
	w.rows += len(wr.runs) + len(wr.events) + len(wr.logs) + len(wr.cache)
	urgent := then != nil
	if urgent {
		w.callbacks = append(w.callbacks, then)
	} else if !w.timerSet {
		w.timerSet = true
		time.AfterFunc(w.lazyDelay, w.signal)
	}
	w.mu.Unlock()
	if urgent {
		w.signal()
	}
}

// sync queues wr as urgent and waits for its commit.
func (w *writer) sync(wr write) error {
	ch := make(chan error, 1)
	w.add(wr, func(err error) { ch <- err })
	return <-ch
}

func (w *writer) signal() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *writer) loop() {
	defer close(w.done)
	for range w.kick {
		w.mu.Lock()
		b, cbs := w.pending, w.callbacks
		w.pending, w.callbacks, w.rows, w.timerSet = store.Batch{}, nil, 0, false
		clear(w.trIdx)
		closed := w.closed
		w.room.Broadcast()
		w.mu.Unlock()
		var err error
		if !b.Empty() {
			err = w.st.BatchWrite(context.Background(), b)
		}
		for _, cb := range cbs {
			cb(err)
		}
		if closed {
			return
		}
	}
}

// close flushes what is queued and stops the writer. Safe to call twice.
func (w *writer) close() {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	w.signal()
	<-w.done
}
