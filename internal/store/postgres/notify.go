package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
)

// notes collects the notifications of one write.
type notes = sqlcore.Notes

// queueNotes adds to pb the pg_notify calls of ns; PostgreSQL delivers them
// when the transaction commits.
func (s *Store) queueNotes(pb *pgx.Batch, ns *notes) {
	payloads := make([]string, len(ns.List))
	for i, n := range ns.List {
		payloads[i] = n.Kind + ":" + n.Payload
	}
	switch len(payloads) {
	case 0:
	case 1:
		pb.Queue("SELECT pg_notify($1, $2)", s.channel, payloads[0])
	default:
		pb.Queue("SELECT pg_notify($1, n) FROM unnest($2::text[]) AS n", s.channel, payloads)
	}
}

// Subscribe delivers the notifications of every process sharing the database
// (schema) until ctx is done or the store is closed; then the channel is
// closed. The first call opens the store's listening connection and returns
// its error if that fails. Delivery is best effort: a subscriber more than a
// few hundred notifications behind misses some, and while the connection is
// re-established after a failure notifications are lost (a "runs", "tasks"
// and "done" with empty payloads follow each reconnection).
func (s *Store) Subscribe(ctx context.Context) (<-chan store.Notification, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("postgres store: subscribe: store is closed")
	}
	if s.hub == nil {
		h := &hub{s: s}
		if err := h.Start(ctx); err != nil {
			return nil, err
		}
		s.hub = h
	}
	return s.hub.subs.Subscribe(ctx)
}

// hub owns the LISTEN connection and fans notifications out: the store's
// notifier. Its lifecycle is startstop's: the first Subscribe starts it and
// the store's Close stops it.
type hub struct {
	s    *Store
	subs sqlcore.Broadcaster
	life startstop.Base
}

// Start opens the listening connection (ctx bounds the connecting) and
// starts the goroutine that fans notifications out until Stop. Safe to
// call twice; a stopped hub does not start again.
func (h *hub) Start(ctx context.Context) error {
	return h.life.Start(ctx, func(lctx context.Context) error {
		conn, err := h.s.listen(ctx)
		if err != nil {
			return translate(err, "postgres store: listen")
		}
		h.life.Go(func() { h.loop(lctx, conn) })
		return nil
	})
}

// Stop closes the listening connection, waits for the fan-out goroutine to
// end and closes the subscribers' channels. Safe to call twice and
// concurrently; Stop before Start does nothing.
func (h *hub) Stop() { h.life.Stop(nil, h.subs.Close) }

// listen opens a dedicated connection (outside the pool) and LISTENs on the
// store's channel.
func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg := s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return conn, nil
}

// loop waits for notifications on conn and fans them out; when the
// connection fails it reconnects with exponential backoff.
func (h *hub) loop(ctx context.Context, conn *pgx.Conn) {
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err == nil {
			kind, payload, _ := strings.Cut(n.Payload, ":")
			h.subs.Publish([]store.Notification{{Kind: kind, Payload: payload}})
			continue
		}
		if ctx.Err() != nil {
			return
		}
		conn.Close(context.Background())
		conn = nil
		backoff := 50 * time.Millisecond
		for conn == nil {
			t := time.NewTimer(backoff) // real time: the database's recovery
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			conn, err = h.s.listen(cctx)
			cancel()
			if err != nil {
				conn = nil
				backoff = min(2*backoff, 5*time.Second)
			}
		}
		// Whatever was sent while the connection was down is lost: make
		// waiters look again.
		h.subs.Publish([]store.Notification{{Kind: "runs"}, {Kind: "tasks"}, {Kind: "done"}})
	}
}
