package sqlite

import (
	"context"
	"fmt"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
)

var _ store.Notifier = (*Store)(nil)

// Subscribe delivers the notifications of the writes made through this
// Store (not those of other processes sharing the file) until ctx is done or
// the store is closed; then the channel is closed. Delivery is best effort: a
// subscriber more than a few hundred notifications behind misses some.
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Notification, error) {
	ch, err := s.notify.Subscribe(ctx)
	if err != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("sqlite store: subscribe: %w", err)
	}
	return ch, err
}

// notes collects the notifications of one write.
type notes = sqlcore.Notes
