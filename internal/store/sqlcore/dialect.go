package sqlcore

import (
	"context"
	"strconv"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Row is one result row: pgx.Row, *sql.Row and *sql.Rows satisfy it.
type Row interface {
	Scan(dest ...any) error
}

// Rows is a result set being read: pgx.Rows and *sql.Rows satisfy it. The
// Querier that returned it closes it.
type Rows interface {
	Row
	Next() bool
	Err() error
}

// Stmt is one statement of a Querier.Batch: SQL with its arguments and, for
// a statement whose rows matter, the function that reads them (nil: they
// are discarded).
type Stmt struct {
	SQL  string
	Args []any
	Scan func(Rows) error
}

// Querier runs statements: a dialect's connections outside a transaction,
// or a write transaction (Tx). Statements number their parameters $1, $2,
// ... (an argument may be referred to several times); both drivers bind
// them so.
type Querier interface {
	// Query runs a statement and calls fn with its rows, which it closes
	// when fn returns. It returns fn's error or else the rows' error.
	Query(ctx context.Context, fn func(Rows) error, sql string, args ...any) error
	// QueryRow runs a statement that returns at most one row; Scan of the
	// row returns the driver's no-rows error, which Dialect.Translate turns
	// into store.ErrNotFound, when there is none.
	QueryRow(ctx context.Context, sql string, args ...any) Row
	// Exec runs a statement that returns no rows. In a Tx, the statement may
	// be sent with the next statement that returns rows, or at commit: its
	// error may be returned there.
	Exec(ctx context.Context, sql string, args ...any) error
	// Batch runs stmts in order, in one round trip where the driver can
	// (PostgreSQL), and reads the rows of each one that has a Scan. Outside
	// a transaction the statements form one transaction (a snapshot for
	// reads).
	Batch(ctx context.Context, stmts ...Stmt) error
}

// Tx is a write transaction of a dialect. Besides statements, it offers the
// writes whose best form differs per dialect (multi-row statements from
// arrays on PostgreSQL, prepared statements on SQLite's single writer) and
// collects the notifications the transaction announces, which the dialect
// delivers when it commits (pg_notify in the transaction on PostgreSQL, the
// in-process subscribers after the commit on SQLite).
type Tx interface {
	Querier
	// Notes collects the notifications of the transaction.
	Notes() *Notes
	// WriteBatch writes b as Store.BatchWrite does, and notes what the
	// rows announce (Notes.AddRun for the runs, "tasks" for PENDING
	// distributed task runs).
	WriteBatch(ctx context.Context, b *store.Batch) error
	// StopTaskRuns cancels the PENDING task runs of run r, when r's new state
	// calls for it (store.StopsTaskRuns), with a History transition of cause
	// at at, and notes "done" for their waiters when there were any; when r
	// ended, it notes "cancel" if distributed task runs of it still run, so
	// that servers tell their workers to stop them.
	StopTaskRuns(ctx context.Context, r *store.Run, cause string, at time.Time) error
	// ReleaseTaskRuns puts the RUNNING task runs trs, which the transaction
	// read (and locked), back to PENDING (AWAITING_SLOT when they carry
	// tags: store.WaitingState) without a worker or a lease, with a
	// History transition of cause at at whose message is message(t), and
	// notes "tasks" for their queues.
	ReleaseTaskRuns(ctx context.Context, trs []store.TaskRun, at time.Time, cause string,
		message func(t *store.TaskRun) string) error
	// AwaitClaims waits until the claims in progress for a worker have
	// committed or rolled back, and keeps new ones from starting until the
	// transaction ends, so that it sees everything claimed for the worker
	// (PostgreSQL's claim lock). Where a write transaction excludes every
	// other one (SQLite) it does nothing.
	AwaitClaims(ctx context.Context, workerID string) error
}

// Dialect is what a backend gives the core: its connections, its
// transactions, its driver's errors and its SQL syntax.
type Dialect interface {
	// Querier reads outside write transactions (a pool, or read-only
	// connections).
	Querier
	// WriteTx runs fn in a write transaction and commits it, or rolls it
	// back when fn fails. A dialect may run fn again from the start (a
	// transaction that PostgreSQL aborted for a deadlock): fn must reset
	// what it collects. Errors are translated (Translate) with op as
	// prefix.
	WriteTx(ctx context.Context, op string, fn func(tx Tx) error) error
	// Translate is the one place where the driver's errors become the
	// store's sentinels; it returns nil for nil, otherwise err prefixed with
	// the formatted context. The driver's no-rows error wraps
	// store.ErrNotFound.
	Translate(err error, format string, args ...any) error
}

// Syntax is what differs in the text of the statements the core shares.
type Syntax struct {
	// ForUpdate ends a SELECT of a write transaction that locks the rows it
	// reads (" FOR UPDATE"); empty where a write transaction holds the whole
	// database.
	ForUpdate string
	// SkipLocked ends a SELECT of a write transaction that locks the rows it
	// reads and skips those that others hold (" FOR UPDATE SKIP LOCKED");
	// empty where a write transaction holds the whole database.
	SkipLocked string
	// ByteOrder follows a text term of ORDER BY so that it sorts by bytes
	// (` COLLATE "C"`); empty where that is the default.
	ByteOrder string
	// RunTieBreak orders the runs created at the same instant, newest last:
	// a column that the index on created_at holds ("rowid" on SQLite), or
	// "id".
	RunTieBreak string
	// FoldLike returns the text expression that RunList's search compares
	// with LIKE to a pattern whose ASCII letters are lower-cased: expr with
	// its ASCII letters lower-cased (ASCIILower), or expr where LIKE already
	// ignores ASCII case only (SQLite: the same matches, at half the cost
	// of a scan).
	FoldLike func(expr string) string
	// SearchCandidates appends to a the arguments of the condition that a
	// run is one of those that the search index (migration 0014) finds for
	// term, of 3 characters or more: a superset of the runs whose id,
	// flow or parameters hold term, folding ASCII case, which is the
	// condition pred (RunList checks pred too). Nil: no index.
	SearchCandidates func(a *Args, term, pred string) string
	// ActiveRunsFrom is the FROM item of the queue statistics' scan of the
	// unfinished runs of queues (runs, with an index hint where the planner
	// needs one).
	ActiveRunsFrom string
	// ASCIILower returns the expression of the text expr with its ASCII
	// letters lower-cased and every other character as it is (SQLite's
	// LOWER; PostgreSQL's LOWER would also fold other letters), so that a
	// case-insensitive search matches the same rows in both stores.
	ASCIILower func(expr string) string
	// In returns the condition that an expression is one of the strings of
	// the list parameter param ("= ANY($1)").
	In func(param string) string
	// List returns the argument of a list parameter that holds vals.
	List func(vals []string) any
	// JSONStrings returns a FROM item over the elements of the JSON array of
	// strings expr, with one column named value.
	JSONStrings func(expr string) string
	// RefsIn appends to a the arguments of refs and returns the condition
	// that (run_id, key, id) is one of them.
	RefsIn func(a *Args, refs []store.TaskRunRef) string
}

// Args collects the arguments of a statement built piece by piece.
type Args []any

// Add appends v and returns its parameter ("$3").
func (a *Args) Add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// in appends the list vals and returns the condition that an expression is
// one of them (" IN (...)" or " = ANY(...)", with a leading space).
func (a *Args) in(sx *Syntax, vals []string) string {
	return " " + sx.In(a.Add(sx.List(vals)))
}
