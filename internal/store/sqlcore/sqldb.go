package sqlcore

import (
	"context"
	"database/sql"
)

// The Querier of database/sql drivers (SQLite's modernc.org/sqlite): a pool
// (SQLDB) or a transaction (SQLTx).

// SQLDB is the Querier of a database/sql pool.
type SQLDB struct{ DB *sql.DB }

// Query runs q on a connection of the pool.
func (d SQLDB) Query(ctx context.Context, fn func(Rows) error, q string, args ...any) error {
	rows, err := d.DB.QueryContext(ctx, q, args...)
	return readSQLRows(rows, err, fn)
}

// QueryRow runs q on a connection of the pool.
func (d SQLDB) QueryRow(ctx context.Context, q string, args ...any) Row {
	return d.DB.QueryRowContext(ctx, q, args...)
}

// Exec runs q on a connection of the pool.
func (d SQLDB) Exec(ctx context.Context, q string, args ...any) error {
	_, err := d.DB.ExecContext(ctx, q, args...)
	return err
}

// Batch runs stmts in one transaction of the pool (a snapshot for reads).
func (d SQLDB) Batch(ctx context.Context, stmts ...Stmt) error {
	tx, err := d.DB.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := (SQLTx{Tx: tx}).Batch(ctx, stmts...); err != nil {
		return err
	}
	return tx.Commit()
}

// SQLTx is the Querier of a database/sql transaction. Prepare, when set,
// returns each statement prepared and bound to the transaction (from a
// cache of prepared statements); otherwise the transaction runs the text,
// which may then hold several statements when there are no arguments.
type SQLTx struct {
	Tx      *sql.Tx
	Prepare func(ctx context.Context, q string) (*sql.Stmt, error)
}

// Query runs q in the transaction.
func (t SQLTx) Query(ctx context.Context, fn func(Rows) error, q string, args ...any) error {
	if t.Prepare == nil {
		rows, err := t.Tx.QueryContext(ctx, q, args...)
		return readSQLRows(rows, err, fn)
	}
	st, err := t.Prepare(ctx, q)
	if err != nil {
		return err
	}
	rows, err := st.QueryContext(ctx, args...)
	return readSQLRows(rows, err, fn)
}

// QueryRow runs q in the transaction.
func (t SQLTx) QueryRow(ctx context.Context, q string, args ...any) Row {
	if t.Prepare == nil {
		return t.Tx.QueryRowContext(ctx, q, args...)
	}
	st, err := t.Prepare(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

// Exec runs q in the transaction, at once.
func (t SQLTx) Exec(ctx context.Context, q string, args ...any) error {
	if t.Prepare == nil {
		_, err := t.Tx.ExecContext(ctx, q, args...)
		return err
	}
	st, err := t.Prepare(ctx, q)
	if err != nil {
		return err
	}
	_, err = st.ExecContext(ctx, args...)
	return err
}

// Batch runs stmts one after the other in the transaction.
func (t SQLTx) Batch(ctx context.Context, stmts ...Stmt) error {
	for _, st := range stmts {
		var err error
		if st.Scan == nil {
			err = t.Exec(ctx, st.SQL, st.Args...)
		} else {
			err = t.Query(ctx, st.Scan, st.SQL, st.Args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readSQLRows calls fn with rows (when the query started) and closes them.
func readSQLRows(rows *sql.Rows, err error, fn func(Rows) error) error {
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := fn(rows); err != nil {
		return err
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return rows.Close()
}

// errRow is a Row whose Scan fails with err: what QueryRow returns when the
// statement could not be prepared.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
