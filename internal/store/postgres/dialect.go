package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The PostgreSQL dialect of the SQL core (internal/store/sqlcore): reads on
// the pool, write transactions through retry, and the syntax of row locks
// and array parameters.

// syntax is PostgreSQL's SQL for what the dialects write differently.
var syntax = sqlcore.Syntax{
	ForUpdate:      " FOR UPDATE",
	SkipLocked:     " FOR UPDATE SKIP LOCKED",
	ByteOrder:      ` COLLATE "C"`,
	RunTieBreak:    "id",
	ActiveRunsFrom: "runs",
	ASCIILower:     asciiLower,
	FoldLike:       asciiLower,
	// The GIN index runs_search (pg_trgm, 0014) is on the expressions the
	// predicate compares: the runs that match, read from the index. OFFSET
	// 0 keeps the planner from merging the subquery into RunList's
	// statement, whose ORDER BY ... LIMIT it could then serve by reading
	// runs_created_at newest first through all the runs.
	SearchCandidates: func(_ *sqlcore.Args, _, pred string) string {
		return "id IN (SELECT id FROM runs WHERE " + pred + " OFFSET 0)"
	},
	In:   func(param string) string { return "= ANY(" + param + ")" },
	List: func(vals []string) any { return vals },
	JSONStrings: func(expr string) string {
		return "json_array_elements_text((" + expr + ")::json) AS value"
	},
	RefsIn: func(a *sqlcore.Args, refs []store.TaskRunRef) string {
		runIDs, keys, ids := make([]string, len(refs)), make([]string, len(refs)), make([]string, len(refs))
		for i, r := range refs {
			runIDs[i], keys[i], ids[i] = r.RunID, r.Key, r.ID
		}
		return fmt.Sprintf("(run_id, key, id) IN (SELECT * FROM unnest(%s::text[], %s::text[], %s::text[]))",
			a.Add(runIDs), a.Add(keys), a.Add(ids))
	},
}

// asciiLower is the expression of expr with its ASCII letters lower-cased:
// LOWER under the collation "C" folds only those (LOWER under another
// would fold others too, unlike SQLite's), byte by byte, some 20 times
// faster than translate() with the 26 letters.
func asciiLower(expr string) string {
	return "lower(" + expr + ` COLLATE "C")`
}

// dialect is the sqlcore.Dialect of a Store: its pool and its
// transactions.
type dialect struct{ s *Store }

func (d dialect) Query(ctx context.Context, fn func(sqlcore.Rows) error, sql string, args ...any) error {
	rows, err := d.s.pool.Query(ctx, sql, args...)
	return readRows(rows, err, fn)
}

func (d dialect) QueryRow(ctx context.Context, sql string, args ...any) sqlcore.Row {
	return d.s.pool.QueryRow(ctx, sql, args...)
}

func (d dialect) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := d.s.pool.Exec(ctx, sql, args...)
	return err
}

func (d dialect) Batch(ctx context.Context, stmts ...sqlcore.Stmt) error {
	var pb pgx.Batch
	queueStmts(&pb, stmts)
	return d.s.pool.SendBatch(ctx, &pb).Close()
}

func (d dialect) Translate(err error, format string, args ...any) error {
	return translate(err, format, args...)
}

// WriteTx runs fn in a transaction (see tx), again from the start when
// PostgreSQL aborted it for a deadlock or a serialization failure (retry).
func (d dialect) WriteTx(ctx context.Context, op string, fn func(sqlcore.Tx) error) error {
	return d.s.retry(ctx, func() error {
		t := &tx{s: d.s}
		if err := fn(t); err != nil {
			t.end(ctx, false)
			return translate(err, "%s", op)
		}
		err := t.commit(ctx)
		t.end(ctx, err == nil)
		return translate(err, "%s", op)
	})
}

// readRows calls fn with rows (when the query started) and closes them.
func readRows(rows pgx.Rows, err error, fn func(sqlcore.Rows) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := fn(rows); err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// queueStmts adds stmts to pb.
func queueStmts(pb *pgx.Batch, stmts []sqlcore.Stmt) {
	for _, st := range stmts {
		q := pb.Queue(st.SQL, st.Args...)
		if scan := st.Scan; scan != nil {
			q.Query(func(rows pgx.Rows) error { return scan(rows) })
		}
	}
}

// tx is a write transaction of the core, on a connection of its own.
// Statements that return nothing (Exec, and the writes of WriteBatch,
// StopTaskRuns, ReleaseTaskRuns and AwaitClaims) wait in a pgx.Batch that
// goes with the next statement that returns rows, or with the COMMIT,
// together with the notifications (pg_notify, delivered on commit). BEGIN
// rides in the first batch (a transaction opened in a batch outlasts it),
// so a transaction costs one round trip per statement that returns rows,
// plus one for the COMMIT and what waits; one that only writes is one
// batch without BEGIN, which PostgreSQL runs as one implicit transaction.
type tx struct {
	s       *Store
	conn    *pgxpool.Conn // nil until the first statement that returns rows
	pending pgx.Batch
	notes   notes
}

var _ sqlcore.Tx = (*tx)(nil)

// send sends, in one batch, BEGIN when the transaction has not begun, the
// statements waiting, and what last adds.
func (t *tx) send(ctx context.Context, last func(pb *pgx.Batch)) error {
	var pb pgx.Batch
	if t.conn == nil {
		c, err := t.s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		t.conn = c
		pb.Queue("BEGIN")
	}
	pb.QueuedQueries = append(pb.QueuedQueries, t.pending.QueuedQueries...)
	t.pending = pgx.Batch{}
	last(&pb)
	return t.conn.SendBatch(ctx, &pb).Close()
}

// commit sends what waits with the notifications and COMMIT.
func (t *tx) commit(ctx context.Context) error {
	t.s.queueNotes(&t.pending, &t.notes)
	if t.conn == nil {
		if t.pending.Len() == 0 {
			return nil
		}
		return t.s.pool.SendBatch(ctx, &t.pending).Close()
	}
	return t.send(ctx, func(pb *pgx.Batch) { pb.Queue("COMMIT") })
}

// end rolls back what the transaction did unless it committed, and gives
// its connection back to the pool. A connection released inside a
// transaction (the ROLLBACK did not get through) is closed, which rolls it
// back.
func (t *tx) end(ctx context.Context, committed bool) {
	if t.conn == nil {
		return
	}
	if !committed {
		t.conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
	}
	t.conn.Release()
}

func (t *tx) Query(ctx context.Context, fn func(sqlcore.Rows) error, sql string, args ...any) error {
	return t.send(ctx, func(pb *pgx.Batch) {
		pb.Queue(sql, args...).Query(func(rows pgx.Rows) error { return fn(rows) })
	})
}

// QueryRow returns a row whose Scan sends the statement.
func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) sqlcore.Row {
	return txRow{t: t, ctx: ctx, sql: sql, args: args}
}

func (t *tx) Exec(_ context.Context, sql string, args ...any) error {
	t.pending.Queue(sql, args...)
	return nil
}

func (t *tx) Batch(ctx context.Context, stmts ...sqlcore.Stmt) error {
	return t.send(ctx, func(pb *pgx.Batch) { queueStmts(pb, stmts) })
}

func (t *tx) Notes() *sqlcore.Notes { return &t.notes }

func (t *tx) WriteBatch(_ context.Context, b *store.Batch) error {
	return queueBatch(&t.pending, b, &t.notes)
}

func (t *tx) StopTaskRuns(_ context.Context, r *store.Run, cause string, at time.Time) error {
	return t.s.queueStopTaskRuns(&t.pending, r, cause, at)
}

func (t *tx) ReleaseTaskRuns(_ context.Context, trs []store.TaskRun, at time.Time, cause string,
	message func(t *store.TaskRun) string) error {
	return releaseTaskRuns(&t.pending, trs, &t.notes, at, cause, message)
}

// AwaitClaims takes the worker's claim lock exclusive (see claimLockKey).
func (t *tx) AwaitClaims(ctx context.Context, workerID string) error {
	return t.Exec(ctx, claimLockSQL, int32(claimLockKey), workerID)
}

// txRow is the row of tx.QueryRow.
type txRow struct {
	t    *tx
	ctx  context.Context
	sql  string
	args []any
}

// Scan sends the statement and scans its row. No row is not an error of
// the batch, which would make pgx forget the batch's prepared statements.
func (r txRow) Scan(dest ...any) error {
	var noRows error
	err := r.t.send(r.ctx, func(pb *pgx.Batch) {
		pb.Queue(r.sql, r.args...).QueryRow(func(row pgx.Row) error {
			err := row.Scan(dest...)
			if errors.Is(err, pgx.ErrNoRows) {
				noRows, err = err, nil
			}
			return err
		})
	})
	if err != nil {
		return err
	}
	return noRows
}
