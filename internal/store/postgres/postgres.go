// Package postgres is the PostgreSQL backend of store.Store, built on
// github.com/jackc/pgx/v5 (a pgxpool connection pool). Several Baton servers
// may share one database: every state change is a transaction, claims use
// FOR UPDATE SKIP LOCKED so that no run or task run is handed to two
// claimers, and Subscribe delivers LISTEN/NOTIFY wake-ups across processes.
// The logic it shares with the SQLite backend is the SQL core
// (internal/store/sqlcore), which its Store embeds; this package holds the
// PostgreSQL dialect of that core, its driver setup, BatchWrite's
// statements, the claims, lease extension and LISTEN/NOTIFY.
//
// # The dialect
//
// A transaction of the core runs on a connection of the pool: the
// statements that return nothing wait and go, as one pgx.Batch, with the
// next statement that returns rows or with the COMMIT (BEGIN rides in the
// first batch), so that RunTransition, for one, takes two round trips; a
// transaction that only writes (BatchWrite, WorkerUpsert) is one batch that
// PostgreSQL runs as one implicit transaction. Reads of the core that need
// several statements (EventList) are one batch too. BatchWrite writes each
// table with one INSERT ... SELECT FROM unnest($1::text[], ...) upsert.
// The core's statements lock rows with FOR UPDATE (FOR UPDATE SKIP LOCKED
// where another server's rows may be passed over) and bind lists as arrays
// (= ANY($1)).
//
// # Schema
//
// The schema is versioned by the numbered files of migrations/, with the same
// numbers as the SQLite backend's, embedded in the binary and applied by Open
// in one transaction that first takes a transaction-scoped advisory lock (per
// schema) and then re-reads the version: servers starting at once against a
// fresh database serialize, and the later ones find it migrated. The table
// baton_meta records app='baton' and schema_version. Open refuses a schema
// migrated by a newer binary (store.ErrSchemaTooNew); a schema without Baton
// tables is initialized, one with some Baton table names but no baton_meta is
// refused (store.ErrNotBatonStore).
//
// The tables live in the first schema of the connection's search_path
// (current_schema()); set it with a search_path parameter in the URL, e.g.
// postgres://u@host/db?search_path=baton.
//
// Timestamps are BIGINT unix nanoseconds, 0 for the zero time.Time; times read
// back are in UTC. JSON values are TEXT, kept byte for byte, NULL for a nil
// json.RawMessage. Text columns use the "C" collation (byte order).
//
// # Notifications
//
// Store implements store.Notifier. State changes issue pg_notify in their own
// transaction (delivered on commit) on the channel "baton" (for the schema
// public; "baton:<schema>" for another schema, so that Baton installations in
// separate schemas of one database do not wake each other), with the payload
// "<kind>:<payload>": "runs:<queue>" when a run of a queue becomes SCHEDULED
// (RunCreate, RunTransition, BatchWrite, LeasesExpire, WorkerRelease),
// "tasks:<queue>" when a distributed task run becomes PENDING (BatchWrite,
// LeasesExpire, WorkerRelease), "done:<run id>" when TaskRunComplete finishes
// one of a run's task runs and "cancel:<run id>" when a run becomes
// CANCELLING. Subscribe holds one dedicated connection per Store (not from the
// pool) that LISTENs and reconnects with backoff when it drops; after a
// reconnection it delivers "runs", "tasks" and "done" with an empty payload
// so that waiters look again for what they may have missed.
//
// # Gaps and notes
//
//   - Event.ID and LogRecord.ID passed to BatchWrite are ignored: ids come
//     from identity sequences, increasing in insertion order (not strictly in
//     commit order across concurrent transactions).
//   - Event.At and LogRecord.At are stored as given (a zero At stays zero).
//   - JSON is stored as TEXT, so a value may not contain a NUL byte and must
//     be valid UTF-8 (as every json.Marshal output is); there is no JSON
//     validation or jsonb indexing.
//   - RetentionDelete deletes runs with their task runs, events, logs and
//     the cache entries they created; expired cache entries of runs that are
//     kept stay in the table (CacheGet ignores them). Subflow runs are
//     deleted on their own end time, not with their parent.
//   - QueueList reads the runs of every queue through an index that holds
//     finished ones too, so its cost grows with the history kept.
//   - Migrations only go forward; there is no downgrade.
//   - The pool has pgxpool's default size (the larger of 4 and the number of
//     CPUs) unless the URL sets pool_max_conns; Subscribe adds one
//     connection. Statements are prepared and cached per connection (pgx's
//     default), which a pooler in transaction mode (PgBouncer) does not
//     support unless the URL sets default_query_exec_mode=exec.
//     PostgreSQL's plan cache keeps its default (a generic plan from the
//     sixth execution of a statement on a connection, made with the
//     statistics of that moment): the indexes are built so that the plan
//     made on a nearly empty table stays right as it grows (migration
//     0015, TestGenericPlansFollowTableGrowth); the URL may set
//     plan_cache_mode.
//   - Writers lock rows in one order: workers, then runs by id, then task
//     runs by primary key (claims and lease expiry skip locked rows
//     instead); cache entries follow their task runs. A transaction that PostgreSQL still
//     aborts for a deadlock or a serialization failure is run again from the
//     start, a few times (retry); only then is the error returned, wrapping
//     store.ErrConflict.
//   - Errors of a database that cannot be reached, or is shutting down or
//     starting up, wrap store.ErrUnavailable (the server answers them 503).
//   - The notification channel is shared by everything in the database on the
//     same schema: wake-ups are best effort and waiters also poll.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use by multiple goroutines and by multiple processes sharing
// the database.
type Store struct {
	// Core holds the methods that the dialects share (internal/store/sqlcore).
	*sqlcore.Core

	pool    *pgxpool.Pool
	schema  string // current_schema() of the pool's connections
	channel string // NOTIFY channel

	// txAttempts overrides maxTxAttempts when > 0 (tests).
	txAttempts int
	// claimed, when set (tests), is called by claims after their
	// statements, before they commit.
	claimed func()

	mu     sync.Mutex
	closed bool
	hub    *hub // started by the first Subscribe
}

var (
	_ store.Store    = (*Store)(nil)
	_ store.Notifier = (*Store)(nil)
)

// Open connects to the PostgreSQL database at url (a postgres:// URL or a
// key=value connection string understood by pgx, pool_* parameters
// included), applies pending schema migrations and returns the store. It
// returns an error wrapping store.ErrSchemaTooNew when a newer Baton migrated
// the schema and one wrapping store.ErrNotBatonStore when the schema holds
// tables with Baton's names that Baton did not create.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, translate(err, "open postgres store")
	}
	s := &Store{pool: pool}
	s.Core = sqlcore.New(dialect{s}, syntax)
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := pool.QueryRow(ctx, "SELECT current_schema()").Scan(&s.schema); err != nil {
		pool.Close()
		return nil, translate(err, "open postgres store: read current schema")
	}
	s.channel = channelName(s.schema)
	return s, nil
}

// channelName is the NOTIFY channel of the tables in schema.
func channelName(schema string) string {
	if schema == "public" {
		return "baton"
	}
	c := "baton:" + schema
	if len(c) > 63 { // NAMEDATALEN-1: PostgreSQL truncates identifiers
		c = c[:63]
	}
	return c
}

// Schema returns the schema that holds the store's tables.
func (s *Store) Schema() string { return s.schema }

// Close stops notifications and closes the connection pool.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	h := s.hub
	s.mu.Unlock()
	if h != nil {
		h.Stop()
	}
	s.pool.Close()
	return nil
}

// translate is the one place where driver errors become store sentinels. It
// returns nil for a nil err; otherwise err prefixed with the formatted
// context and, where one applies, wrapping a store sentinel:
//
//   - pgx.ErrNoRows                          -> store.ErrNotFound
//   - serialization failure, deadlock (40001, 40P01), lock not available
//     (55P03)                                -> store.ErrConflict
//
// Errors that already wrap a store sentinel are only prefixed. Unique
// violations on a run's idempotency key never get here: RunCreate resolves
// them to the existing run.
func translate(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if isStoreErr(err) {
		return fmt.Errorf("%s: %w", msg, err)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", msg, store.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "55P03":
			// Keep the driver's error in the chain: retry looks for it.
			return fmt.Errorf("%s: %w: %w", msg, err, store.ErrConflict)
		}
	}
	if unavailable(err) {
		return fmt.Errorf("%s: %v: %w", msg, err, store.ErrUnavailable)
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// unavailable reports whether err means that the database cannot be reached
// or is going down or coming up, rather than that it refused the statement:
// a connection that cannot be made or broke, or an error of SQLSTATE class
// 08 (connection exception), 57P01-57P03 (shutdown, crash, cannot connect
// now) or 53300 (too many connections).
func unavailable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || pe.Code == "57P01" || pe.Code == "57P02" ||
			pe.Code == "57P03" || pe.Code == "53300"
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	return errors.As(err, &ce) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || pgconn.SafeToRetry(err) || pgconn.Timeout(err)
}

// isStoreErr reports whether err already wraps a store sentinel.
func isStoreErr(err error) bool {
	return errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) ||
		errors.Is(err, store.ErrNotBatonStore) || errors.Is(err, store.ErrSchemaTooNew) ||
		errors.Is(err, store.ErrUnavailable)
}

// maxTxAttempts bounds how often retry runs a transaction that PostgreSQL
// aborted for a deadlock or a serialization failure.
const maxTxAttempts = 6

// retryable reports whether err means that PostgreSQL aborted the
// transaction for a deadlock (40P01) or a serialization failure (40001):
// nothing of it was applied, and running it again may succeed.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001")
}

// retry runs fn, one whole transaction (an explicit one, a pgx.Batch or a
// single statement), and runs it again when PostgreSQL aborted it for a
// deadlock or a serialization failure, up to maxTxAttempts times in all,
// after a short random backoff (a few milliseconds, doubling) that lets the
// transaction that won go first. fn must start from scratch each time:
// reset what it collects. Every write of the backend goes through retry, so
// that a lock-order cycle that the common lock order of the writers does
// not rule out (workers, then runs by id, then task runs by primary key;
// cache entries by key after their task runs, or with each completion)
// costs a retry, not a failed write.
func (s *Store) retry(ctx context.Context, fn func() error) error {
	attempts := maxTxAttempts
	if s.txAttempts > 0 {
		attempts = s.txAttempts
	}
	backoff := 4 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff/2 + rand.N(backoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
		backoff *= 2
	}
}

// inTx runs fn in a transaction and commits it, again from the start when
// PostgreSQL aborted it for a deadlock or a serialization failure (see
// retry): fn must reset what it collects.
func (s *Store) inTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.retry(ctx, func() error {
		tx, err := s.pool.Begin(ctx)
		if err != nil {
			return translate(err, "%s: begin", op)
		}
		if err := fn(tx); err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
			return translate(err, "%s", op)
		}
		return translate(tx.Commit(ctx), "%s: commit", op)
	})
}

// sendBatch sends the batch that build queues as one implicit transaction,
// through retry: build runs again for each attempt and must reset what the
// batch's callbacks collect.
func (s *Store) sendBatch(ctx context.Context, build func(pb *pgx.Batch) error) error {
	return s.retry(ctx, func() error {
		var pb pgx.Batch
		if err := build(&pb); err != nil {
			return err
		}
		if pb.Len() == 0 {
			return nil
		}
		return s.pool.SendBatch(ctx, &pb).Close()
	})
}
