package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/store"
)

var errWriterClosed = errors.New("engine is closed")

// MaxBatchRows bounds the rows that wait for a commit: writers block while
// this many wait, so no transaction of the writer holds many more.
const MaxBatchRows = 20000

// writer batches the writes of many concurrent steps into shared
// transactions (group commit). A write is either lazy (it rides along with
// the next commit, or is flushed after lazyDelay) or urgent (it triggers a
// commit). Callbacks run after the commit that holds their write, so a step's
// result becomes visible only once it is durable.
//
// Its lifecycle is startstop's: newWriter starts it; Stop (close) flushes
// what is queued and ends its background flusher.
type writer struct {
	st        batchWriter
	lazyDelay time.Duration
	maxRows   int // backpressure: writers block while this many rows wait

	mu         sync.Mutex
	room       *sync.Cond
	pending    store.Batch
	trIdx      map[string]int // task-run ID -> index in pending.TaskRuns
	callbacks  []func(error)
	rows       int
	timerSet   bool
	closed     bool
	committing bool // a goroutine is running commitLoop
	urgent     bool // an urgent write waits in pending

	kick chan struct{}
	life startstop.Base
}

type batchWriter interface {
	BatchWrite(ctx context.Context, b store.Batch) error
}

func newWriter(st batchWriter, lazyDelay time.Duration) *writer {
	w := &writer{
		st:        st,
		lazyDelay: lazyDelay,
		maxRows:   MaxBatchRows,
		trIdx:     map[string]int{},
		kick:      make(chan struct{}, 1),
	}
	w.room = sync.NewCond(&w.mu)
	_ = w.Start(context.Background()) // cannot fail
	return w
}

// Start starts the background flusher of lazy writes. Safe to call twice;
// a stopped writer does not start again.
func (w *writer) Start(ctx context.Context) error {
	return w.life.Start(ctx, func(ctx context.Context) error {
		w.life.Go(func() { w.loop(ctx) })
		return nil
	})
}

// Stop commits what is queued, refuses later writes (errWriterClosed) and
// ends the background flusher; it returns when both are done. Safe to call
// twice and concurrently.
func (w *writer) Stop() {
	w.life.Stop(func() {
		w.mu.Lock()
		w.closed = true
		w.room.Broadcast()
		for w.committing {
			w.room.Wait()
		}
		w.committing = true
		w.mu.Unlock()
		w.commitLoop()
	}, nil)
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
//
// An urgent write commits at once on the caller's goroutine when no commit
// is running (so a lone sequential step pays no goroutine hand-off);
// otherwise it joins the batch that the running committer takes next.
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
	if then == nil {
		if !w.timerSet {
			w.timerSet = true
			time.AfterFunc(w.lazyDelay, w.signal)
		}
		w.mu.Unlock()
		return
	}
	w.callbacks = append(w.callbacks, then)
	if w.committing {
		w.urgent = true
		w.mu.Unlock()
		return
	}
	w.committing = true
	w.mu.Unlock()
	w.commitLoop()
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

// commitLoop commits pending batches until none is urgent; the caller holds
// the committer role (w.committing) and it is released on return.
func (w *writer) commitLoop() {
	for {
		w.mu.Lock()
		b, cbs := w.pending, w.callbacks
		w.pending, w.callbacks, w.rows, w.urgent = store.Batch{}, nil, 0, false
		clear(w.trIdx)
		w.room.Broadcast()
		w.mu.Unlock()
		var err error
		if !b.Empty() {
			err = w.st.BatchWrite(context.Background(), b)
		}
		for _, cb := range cbs {
			cb(err)
		}
		w.mu.Lock()
		if !w.urgent {
			w.committing = false
			w.room.Broadcast()
			lazyLeft := !w.pending.Empty() && !w.closed
			w.mu.Unlock()
			if lazyLeft {
				w.signal() // let the background flusher handle what rode in late
			}
			return
		}
		w.mu.Unlock()
	}
}

// loop flushes lazy writes when their timer fires, until ctx (Stop) ends.
func (w *writer) loop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		w.mu.Lock()
		w.timerSet = false
		if w.committing || w.closed {
			// The running committer signals again if lazy writes remain.
			w.mu.Unlock()
			continue
		}
		w.committing = true
		w.mu.Unlock()
		w.commitLoop()
	}
}

// close flushes what is queued and stops the writer (Stop). Safe to call
// twice.
func (w *writer) close() { w.Stop() }
