// Package sqlite is the SQLite backend of store.Store, built on the pure-Go
// driver modernc.org/sqlite (no cgo). The logic it shares with the
// PostgreSQL backend is the SQL core (internal/store/sqlcore), which its
// Store embeds; this package holds the SQLite dialect of that core, its
// driver setup, BatchWrite's statements, the claims and the in-process
// notifications.
//
// # Layout and durability
//
// The database is one file opened in WAL mode with synchronous=NORMAL. In WAL
// mode NORMAL is durable against a crash of the process (kill -9, panic, OOM):
// a committed transaction is in the WAL file before COMMIT returns and the
// operating system keeps it. Only a power loss or kernel crash can lose the
// last transactions committed before it (the database stays consistent, it
// is never corrupted). A busy_timeout of 10s makes concurrent writers wait
// for each other instead of failing with "database is locked".
//
// Each Store holds two connection pools: a write pool with a single connection
// whose transactions start with BEGIN IMMEDIATE (so a writer takes the write
// lock up front and never has to upgrade a read lock, the classic source of
// SQLITE_BUSY that busy_timeout cannot resolve), and a read pool with several
// query-only connections that read concurrently from WAL snapshots. Several
// processes may open the same file at once; their writes are serialized by
// SQLite's file locks.
//
// # Schema
//
// The schema is versioned by the numbered files of migrations/ (the same
// numbers as the PostgreSQL backend's), embedded in the binary and applied
// by Open (sqlcore.Migrate) in a BEGIN IMMEDIATE transaction. The table
// baton_meta records app='baton' and schema_version. Open refuses a database
// migrated by a newer binary (store.ErrSchemaTooNew) and a file that is not a
// Baton store (store.ErrNotBatonStore): not SQLite at all, or SQLite with
// tables but no baton_meta.
//
// Timestamps are INTEGER unix nanoseconds, 0 for the zero time.Time; times
// read back are in UTC. JSON values are TEXT, NULL for a nil json.RawMessage
// (a non-nil empty RawMessage reads back as non-nil and empty). ErrorInfo is
// stored as its JSON, a task run's history as its JSON bytes.
//
// # The dialect
//
// A write transaction holds the database's write lock from its start, so
// the statements of the core take no row locks (sqlcore.Syntax.ForUpdate and
// SkipLocked are empty) and a claim selects its rows and then updates them.
// List parameters are one JSON array read with json_each, which needs no
// variable per element. The statements of the core's write transactions
// are prepared once on the write connection; BatchWrite's are multi-row
// INSERT ... ON CONFLICT DO UPDATE statements of up to 64 rows, prepared at
// Open. Driver errors become store sentinels in translate.
//
// # Gaps compared to PostgreSQL
//
//   - Writes of all processes are serialized by one file lock: one
//     transaction writes at a time, and a long one (a large BatchWrite, a
//     RetentionDelete) delays claims and heartbeats. Throughput comes from
//     batching many rows per BatchWrite transaction.
//   - Notifications (store.Notifier) are in-process: a Store only notifies
//     its own subscribers of its own writes, not of writes made by other
//     processes sharing the file. A server and its workers' claims go through
//     one Store, so this covers the distributed mode.
//   - Errors are not classified as store.ErrUnavailable (a file is there or
//     not), and a write that still finds the database locked after the busy
//     timeout fails with the driver's "database is locked"; it is not
//     retried. PostgreSQL's backend retries transactions aborted for a
//     deadlock or a serialization failure, which cannot happen here.
//   - A database on a network file system is not supported (SQLite's WAL
//     needs shared memory between the processes of one host).
//   - Event ids are not a sequence: an Event.ID of zero passed to BatchWrite
//     is taken from the writing process's clock (nanoseconds, strictly
//     increasing within a process), so a run's events sort in write order
//     as long as one process writes them at a time. LogRecord.ID is ignored
//     (the table's rowid).
//   - Event.At and LogRecord.At are stored as given (a zero At stays zero).
//   - Retention (RetentionDelete) deletes finished runs with their task runs,
//     events, logs and cache entries; expired cache entries of runs that are
//     kept stay in the table (CacheGet ignores them).
//   - Migrations only go forward; there is no downgrade.
//   - IDs are indexed TEXT primary keys: time-ordered IDs (UUIDv7) append to
//     the index, while random IDs (UUIDv4) dirty many index pages per
//     transaction and cut BatchWrite throughput roughly in half on large
//     tables (see BenchmarkStore, internal/store/storebench).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"

	sqlite3 "modernc.org/sqlite/lib"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// BusyTimeout is how long an operation waits for a lock held by another
// connection or process before failing.
const BusyTimeout = 10 * time.Second

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use by multiple goroutines and by multiple processes opening the
// same file.
type Store struct {
	// Core holds the methods that the dialects share (internal/store/sqlcore).
	*sqlcore.Core

	path  string
	write *sql.DB // one connection, BEGIN IMMEDIATE transactions
	read  *sql.DB // several query-only connections

	stmts writeStmts // BatchWrite's, prepared on the write connection
	cache stmtCache  // the core's, prepared on the write connection

	notify sqlcore.Broadcaster // in-process store.Notifier
}

var _ store.Store = (*Store)(nil)

// dsn returns the driver DSN of path. write selects immediate transactions;
// otherwise the connections are query-only.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(OFF)")
	q.Add("_pragma", "cache_size(-32000)") // 32 MiB page cache per connection
	q.Add("_pragma", "temp_store(MEMORY)")
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(ON)")
	}
	// A file: URI with an absolute, escaped path: any character may appear
	// in the path, and the driver reads its own parameters from the query.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	if !strings.HasPrefix(u.Path, "/") {
		u.Path = "/" + u.Path // Windows drive letter
	}
	return u.String()
}

// Open opens (creating it if needed) the Baton store in the SQLite file at
// path, creating its parent directory, switching it to WAL mode and applying
// pending schema migrations. It returns an error wrapping
// store.ErrNotBatonStore when the file is not a Baton store and one wrapping
// store.ErrSchemaTooNew when a newer Baton migrated it.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlite store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", path, err)
	}
	path = abs
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return nil, unusable("store %s: %s", path, pathProblem(path, sqlite3.SQLITE_CANTOPEN_ISDIR))
	} else if err == nil && !fi.Mode().IsRegular() {
		return nil, unusable("store %s: it is not a regular file (%s); name a database file", path, fi.Mode().Type())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, unusable("store %s: cannot create its directory: %v", path, err)
	}
	if err := checkHeader(path); err != nil {
		return nil, err
	}

	s := &Store{path: path}
	if s.write, err = sql.Open("sqlite", dsn(path, true)); err != nil {
		return nil, translate(err, "open store %s", path)
	}
	s.write.SetMaxOpenConns(1)
	s.write.SetMaxIdleConns(1)
	s.write.SetConnMaxLifetime(0)
	s.write.SetConnMaxIdleTime(0)

	if err := migrate(ctx, s.write, path); err != nil {
		s.write.Close()
		return nil, pathError(path, err)
	}
	if err := setWAL(ctx, s.write, path); err != nil {
		s.write.Close()
		return nil, pathError(path, err)
	}

	if s.read, err = sql.Open("sqlite", dsn(path, false)); err != nil {
		s.write.Close()
		return nil, translate(err, "open store %s", path)
	}
	s.Core = sqlcore.New(dialect{SQLDB: sqlcore.SQLDB{DB: s.read}, s: s}, syntax)
	n := max(4, runtime.GOMAXPROCS(0))
	s.read.SetMaxOpenConns(n)
	s.read.SetMaxIdleConns(n)

	if err := s.stmts.prepare(ctx, s.write); err != nil {
		s.Close()
		return nil, pathError(path, translate(err, "prepare statements of store %s", path))
	}
	return s, nil
}

// checkHeader refuses an existing non-empty file that does not start with
// the SQLite header, before the driver touches it.
func checkHeader(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("sqlite store %s: %w", path, err)
	}
	defer f.Close()
	const magic = "SQLite format 3\x00"
	buf := make([]byte, len(magic))
	n, _ := f.Read(buf)
	if n == 0 {
		return nil // empty file: a new database
	}
	if n < len(magic) || string(buf) != magic {
		return fmt.Errorf("%s is not a SQLite database: %w", path, store.ErrNotBatonStore)
	}
	return nil
}

// setWAL switches the database to WAL mode (a persistent property of the
// file), retrying while another process holds a lock that prevents it.
func setWAL(ctx context.Context, db *sql.DB, path string) error {
	deadline := time.Now().Add(BusyTimeout)
	for {
		var mode string
		err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode)
		if err == nil && mode == "wal" {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("journal mode is %q", mode)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return translate(err, "set WAL mode on store %s", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Path returns the file the store was opened on.
func (s *Store) Path() string { return s.path }

// Close closes the store's connection pools.
func (s *Store) Close() error {
	s.notify.Close()
	s.stmts.close()
	s.cache.close()
	var errs []error
	if s.read != nil {
		errs = append(errs, s.read.Close())
	}
	if s.write != nil {
		errs = append(errs, s.write.Close())
	}
	return errors.Join(errs...)
}

// CheckWritable makes one small write (a no-op update of baton_meta in its
// own transaction), so that a command that is about to write learns at once,
// in words naming the path, that the store's file or directory is
// read-only, rather than from the first write of a run. Reading a read-only
// store works without it.
func (s *Store) CheckWritable(ctx context.Context) error {
	_, err := s.write.ExecContext(ctx, `UPDATE baton_meta SET value = value WHERE key = 'app'`)
	if err != nil {
		return pathError(s.path, translate(err, "write to store %s", s.path))
	}
	return nil
}
