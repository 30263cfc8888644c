package postgres

import (
	"context"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/internal/store"
)

// schedulerLockKey is the first key of the scheduler's session advisory
// lock ("schd"); the second is the hash of the schema, so that stores in
// different schemas of one database schedule independently.
const schedulerLockKey = 0x73636864

var _ store.SchedulerLocker = (*Store)(nil)

// SchedulerLock tries to take the scheduler lock: a session advisory lock
// on a connection taken out of the pool, held until Release or until the
// connection drops (the process died, the network broke, an administrator
// ended the backend), when PostgreSQL releases it and another server's
// next try takes it.
func (s *Store) SchedulerLock(ctx context.Context) (store.SchedulerLock, error) {
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, translate(err, "scheduler lock: connect")
	}
	var ok bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, hashtext(current_schema()))", int32(schedulerLockKey)).Scan(&ok); err != nil {
		c.Release()
		return nil, translate(err, "scheduler lock")
	}
	if !ok {
		c.Release()
		return nil, nil
	}
	return &schedulerLock{conn: c.Hijack()}, nil
}

// schedulerLock is a held scheduler lock on its own connection.
type schedulerLock struct {
	mu   sync.Mutex
	conn *pgx.Conn // nil once released
}

// Check pings the lock's connection: while it answers, the session (and
// with it the lock) lives.
func (l *schedulerLock) Check(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return translate(context.Canceled, "scheduler lock released")
	}
	return translate(l.conn.Ping(ctx), "scheduler lock")
}

// Release closes the connection, which ends the session and its lock.
func (l *schedulerLock) Release() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		l.conn.Close(context.Background())
		l.conn = nil
	}
}
