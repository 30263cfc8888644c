package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
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
	In:             func(param string) string { return "= ANY(" + param + ")" },
	List:           func(vals []string) any { return vals },
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
			t.rollback(ctx)
			return translate(err, "%s", op)
		}
		return translate(t.commit(ctx), "%s: commit", op)
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

// tx is a write transaction of the core. Statements that return nothing
// (Exec, and the writes of WriteBatch, StopTaskRuns, ReleaseTaskRuns and
// AwaitClaims) wait in a pgx.Batch that goes with the next statement that
// returns rows, or with the commit, together with the notifications
// (pg_notify, delivered on commit). The transaction begins with its first
// statement that returns rows: one that only writes is one batch, which
// PostgreSQL runs as one implicit transaction (one round trip).
type tx struct {
	s       *Store
	tx      pgx.Tx // nil until the first statement that returns rows
	pending pgx.Batch
	notes   notes
}

var _ sqlcore.Tx = (*tx)(nil)

// flush begins the transaction if needed and sends the statements waiting.
func (t *tx) flush(ctx context.Context) error {
	if t.tx == nil {
		var err error
		if t.tx, err = t.s.pool.Begin(ctx); err != nil {
			return err
		}
	}
	if t.pending.Len() == 0 {
		return nil
	}
	pb := t.pending
	t.pending = pgx.Batch{}
	return t.tx.SendBatch(ctx, &pb).Close()
}

func (t *tx) commit(ctx context.Context) error {
	t.s.queueNotes(&t.pending, &t.notes)
	if t.tx == nil {
		if t.pending.Len() == 0 {
			return nil
		}
		return t.s.pool.SendBatch(ctx, &t.pending).Close()
	}
	if err := t.flush(ctx); err != nil {
		t.rollback(ctx)
		return err
	}
	return t.tx.Commit(ctx)
}

func (t *tx) rollback(ctx context.Context) {
	if t.tx != nil {
		t.tx.Rollback(context.WithoutCancel(ctx))
	}
}

func (t *tx) Query(ctx context.Context, fn func(sqlcore.Rows) error, sql string, args ...any) error {
	if err := t.flush(ctx); err != nil {
		return err
	}
	rows, err := t.tx.Query(ctx, sql, args...)
	return readRows(rows, err, fn)
}

func (t *tx) QueryRow(ctx context.Context, sql string, args ...any) sqlcore.Row {
	if err := t.flush(ctx); err != nil {
		return errRow{err}
	}
	return t.tx.QueryRow(ctx, sql, args...)
}

func (t *tx) Exec(_ context.Context, sql string, args ...any) error {
	t.pending.Queue(sql, args...)
	return nil
}

func (t *tx) Batch(ctx context.Context, stmts ...sqlcore.Stmt) error {
	queueStmts(&t.pending, stmts)
	return t.flush(ctx)
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

// errRow is a row whose Scan fails with err.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
