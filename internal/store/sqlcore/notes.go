package sqlcore

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/batonhq/baton/internal/store"
)

// Notes collects the notifications of one write, without duplicates; a
// backend sends them when the write commits.
type Notes struct {
	List []store.Notification
	seen map[store.Notification]struct{}
}

// Add records a notification once.
func (ns *Notes) Add(kind, payload string) {
	n := store.Notification{Kind: kind, Payload: payload}
	if _, dup := ns.seen[n]; dup {
		return
	}
	if ns.seen == nil {
		ns.seen = map[store.Notification]struct{}{}
	}
	ns.seen[n] = struct{}{}
	ns.List = append(ns.List, n)
}

// AddRun records what writing run r announces: "runs" when it waits in a
// queue, or when it ended or paused on a queue (it frees a slot of the
// queue's concurrency limit, if it has one: a claim waiting for one looks
// again), "cancel" when it is being cancelled.
func (ns *Notes) AddRun(r *store.Run) {
	switch {
	case r.State == store.RunScheduled, r.State == store.RunPaused, r.State.Final():
		if r.Queue != "" {
			ns.Add("runs", r.Queue)
		}
	case r.State == store.RunCancelling:
		ns.Add("cancel", r.ID)
	}
}

// statesString lists states for an error message: "A" or "one of A, B".
func statesString(states []store.RunState) string {
	if len(states) == 1 {
		return string(states[0])
	}
	ss := make([]string, len(states))
	for i, st := range states {
		ss[i] = string(st)
	}
	return "one of " + strings.Join(ss, ", ")
}

// SubscriberBuffer is the number of notifications a subscriber may fall
// behind by before further ones are dropped for it.
const SubscriberBuffer = 256

// ErrClosed is returned by Broadcaster.Subscribe once the broadcaster is
// closed.
var ErrClosed = errors.New("store is closed")

// Broadcaster fans notifications out to the subscribers of one process.
// Sends never block: a subscriber more than a few hundred notifications
// behind misses some. The zero value is ready to use; it is safe for
// concurrent use.
type Broadcaster struct {
	n      atomic.Int32 // number of subscribers, read without the lock
	mu     sync.Mutex
	subs   map[chan store.Notification]struct{}
	closed bool
}

// Subscribe returns a channel of the notifications published from now on,
// until ctx is done or the broadcaster is closed; then the channel is
// closed. It fails with ErrClosed after Close.
func (b *Broadcaster) Subscribe(ctx context.Context) (<-chan store.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan store.Notification, SubscriberBuffer)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	if b.subs == nil {
		b.subs = map[chan store.Notification]struct{}{}
	}
	b.subs[ch] = struct{}{}
	b.n.Add(1)
	b.mu.Unlock()
	context.AfterFunc(ctx, func() { b.drop(ch) })
	return ch, nil
}

// drop unregisters and closes ch if it is still registered.
func (b *Broadcaster) drop(ch chan store.Notification) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		b.n.Add(-1)
		close(ch)
	}
}

// Active reports whether anybody listens, so that writers can skip
// collecting notifications.
func (b *Broadcaster) Active() bool { return b.n.Load() > 0 }

// Publish sends ns to every subscriber that has room for them.
func (b *Broadcaster) Publish(ns []store.Notification) {
	if len(ns) == 0 || !b.Active() {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for ch := range b.subs {
		for _, n := range ns {
			select {
			case ch <- n:
			default:
			}
		}
	}
}

// Close closes every subscriber's channel and refuses new subscribers. It
// may be called more than once.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		b.n.Add(-1)
		close(ch)
	}
}
