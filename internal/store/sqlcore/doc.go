// Package sqlcore is the SQL core that the SQLite and PostgreSQL backends of
// store.Store share: the logic that is the same in every dialect, written
// once, on a small dialect layer for what really differs.
//
// # The core
//
// Core implements, on a Dialect, the store.Store methods whose logic does
// not depend on the database: the reads (RunGet, RunList, TaskRunList,
// JournalList, EventList, LogList, CacheGet, TaskRunFinished, WorkerList,
// RunStopList, QueueList, FlowGet, TaskRunCounts, RunChildGet), the writes
// (BatchWrite, RunTransition, RunCreate, WorkerUpsert, FlowUpsert), the
// take-backs of what workers hold (LeasesExpire, WorkerRelease,
// LeasesRelease) and RetentionDelete. A backend's Store embeds a *Core and
// adds what it does its own way: the claims (RunClaim, TaskRunClaim,
// TaskRunComplete, Claim: SKIP LOCKED and advisory claim locks on
// PostgreSQL, the single writer on SQLite), LeasesExtend, Close and its
// driver setup.
//
// The package also holds what every backend uses around them: the stored
// form of values (EncTime, EncJSON, MarshalHistory, ...), the column lists
// and scanners of runs and task runs (RunCols, ScanRun, ...), the guard of
// task-run upserts (TaskRunUpsertGuard), the notifications of a write
// (Notes, and Broadcaster for subscribers in the process), the Querier of
// database/sql drivers (SQLDB, SQLTx) and the migrator (Migrate: numbered
// files embedded per dialect, the same numbers in both, applied in one
// exclusive transaction).
//
// # The dialect layer
//
// A Dialect gives the core its connections (a Querier for reads), its write
// transactions (WriteTx, each a Tx) and the one place where its driver's
// errors become store sentinels (Translate); a Syntax gives the few pieces
// of SQL text that differ: row locks (FOR UPDATE, SKIP LOCKED), byte-order
// collation, list parameters (an array, or a JSON text read with json_each),
// index hints. Statements of the core number their parameters $1, $2, ...,
// which pgx and modernc's SQLite driver both bind; otherwise they are
// written in the SQL both databases accept (ON CONFLICT upserts, RETURNING,
// FILTER aggregates, CTEs).
//
// A Tx also offers the writes whose best form differs per dialect
// (WriteBatch, StopTaskRuns, ReleaseTaskRuns, AwaitClaims) and collects the
// transaction's notifications; the dialect delivers them (pg_notify in the
// transaction, or the in-process subscribers after the commit). On
// PostgreSQL a Tx sends the statements that return nothing (Exec and those
// writes) with the next statement that returns rows, or with the COMMIT,
// as one pgx.Batch (BEGIN rides in the first), and Batch sends its
// statements together: a transaction of the core takes one round trip per
// read plus one, fewer than the hand-written ones it replaced. On SQLite a
// Tx runs on the single write connection with statements prepared once.
package sqlcore
