package sqlite

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

var _ store.Notifier = (*Store)(nil)

// subscriberBuffer is the number of notifications a subscriber may fall
// behind by before further ones are dropped for it.
const subscriberBuffer = 256

// broadcaster fans notifications out to the in-process subscribers. Sends
// never block: a subscriber whose buffer is full misses the notification.
type broadcaster struct {
	n      atomic.Int32 // number of subscribers, read without the lock
	mu     sync.Mutex
	subs   map[chan store.Notification]struct{}
	closed bool
}

func (b *broadcaster) subscribe(ctx context.Context) (<-chan store.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ch := make(chan store.Notification, subscriberBuffer)
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, errors.New("sqlite store: subscribe: store is closed")
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
func (b *broadcaster) drop(ch chan store.Notification) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.subs[ch]; ok {
		delete(b.subs, ch)
		b.n.Add(-1)
		close(ch)
	}
}

// active reports whether anybody listens, so that writers can skip
// collecting notifications.
func (b *broadcaster) active() bool { return b.n.Load() > 0 }

func (b *broadcaster) publish(ns []store.Notification) {
	if len(ns) == 0 || !b.active() {
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

// close closes every subscriber's channel and refuses new subscribers.
func (b *broadcaster) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for ch := range b.subs {
		delete(b.subs, ch)
		b.n.Add(-1)
		close(ch)
	}
}

// Subscribe delivers the notifications of the writes made through this
// Store (not those of other processes sharing the file) until ctx is done or
// the store is closed; then the channel is closed. Delivery is best effort: a
// subscriber more than a few hundred notifications behind misses some.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Notification, error) {
	return s.notify.subscribe(ctx)
}

// notes collects the notifications of one write.
type notes = sqlcore.Notes
