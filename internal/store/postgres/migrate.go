package postgres

import (
	"context"
	"embed"
	"fmt"

	"github.com/batonhq/baton/internal/store/sqlcore"
	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion returns the schema version this binary migrates databases
// to: the number of embedded migrations.
func SchemaVersion() int { return sqlcore.SchemaVersion(migrationFS) }

// advisoryLockKey is the first key of the migration's advisory lock ("bato");
// the second is a hash of the schema name.
const advisoryLockKey = 0x6261746f

// tablesSQL counts the tables of the current schema named baton_meta and
// those named like the other tables of Baton.
const tablesSQL = `SELECT
	count(*) FILTER (WHERE tablename = 'baton_meta'),
	count(*) FILTER (WHERE tablename IN ('runs', 'task_runs', 'events', 'logs', 'cache', 'workers'))
	FROM pg_catalog.pg_tables WHERE schemaname = current_schema()`

// migrate applies the pending migrations (sqlcore.Migrate) in one
// transaction that holds an advisory lock for the schema: concurrent
// servers opening a fresh database serialize, and each re-reads the
// version once it holds the lock.
func (s *Store) migrate(ctx context.Context) (err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return translate(err, "open postgres store")
	}
	defer func() {
		if err != nil {
			tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	var schema *string
	if err := tx.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return translate(err, "open postgres store: read current schema")
	}
	if schema == nil {
		return fmt.Errorf("open postgres store: no schema of the search_path exists (create it first)")
	}
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))", int32(advisoryLockKey)); err != nil {
		return translate(err, "open postgres store: lock schema %s", *schema)
	}
	if err := sqlcore.Migrate(ctx, migrationTx{tx}, sqlcore.MigrateParams{FS: migrationFS,
		Where: "postgres store (schema " + *schema + ")", TablesSQL: tablesSQL, Translate: translate}); err != nil {
		return err
	}
	return translate(tx.Commit(ctx), "postgres store (schema %s): commit migrations", *schema)
}

// migrationTx runs the statements of sqlcore.Migrate at once. Without
// arguments pgx uses the simple protocol: a migration file may hold several
// statements.
type migrationTx struct{ tx pgx.Tx }

func (m migrationTx) QueryRow(ctx context.Context, sql string, args ...any) sqlcore.Row {
	return m.tx.QueryRow(ctx, sql, args...)
}

func (m migrationTx) Exec(ctx context.Context, sql string, args ...any) error {
	_, err := m.tx.Exec(ctx, sql, args...)
	return err
}
