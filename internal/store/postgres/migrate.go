package postgres

import (
	"context"
	"embed"
	"fmt"
	"strconv"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrations returns the embedded migrations sorted by version.
func migrations() ([]store.Migration, error) {
	return store.Migrations(migrationFS, "migrations")
}

// SchemaVersion returns the schema version this binary migrates databases
// to: the number of embedded migrations.
func SchemaVersion() int {
	ms, err := migrations()
	if err != nil {
		panic(err) // the embedded files are fixed at build time; tests catch this
	}
	return len(ms)
}

// advisoryLockKey is the first key of the migration's advisory lock ("bato");
// the second is a hash of the schema name.
const advisoryLockKey = 0x6261746f

// batonTables are the table names of the schema besides baton_meta.
var batonTables = []string{"runs", "task_runs", "events", "logs", "cache", "workers"}

// migrate applies the pending migrations in one transaction that holds an
// advisory lock for the schema: concurrent servers opening a fresh database
// serialize, and each re-reads the version once it holds the lock.
func (s *Store) migrate(ctx context.Context) (err error) {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("postgres store: %w", err)
	}
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
	version, err := schemaVersion(ctx, tx, *schema)
	if err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("postgres store (schema %s) has schema version %d but this binary knows up to %d; upgrade baton: %w",
			*schema, version, len(ms), store.ErrSchemaTooNew)
	}
	if version == len(ms) {
		return translate(tx.Commit(ctx), "open postgres store")
	}
	for _, m := range ms[version:] {
		// Without arguments pgx uses the simple protocol: a file may hold
		// several statements.
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return translate(err, "postgres store (schema %s): apply migration %s", *schema, m.Name)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO baton_meta (key, value) VALUES ('app', 'baton'), ('schema_version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(ms))); err != nil {
		return translate(err, "postgres store (schema %s): record schema version", *schema)
	}
	return translate(tx.Commit(ctx), "postgres store (schema %s): commit migrations", *schema)
}

// schemaVersion returns the schema version recorded in baton_meta, 0 for a
// schema without Baton tables, or an error wrapping store.ErrNotBatonStore.
func schemaVersion(ctx context.Context, tx pgx.Tx, schema string) (int, error) {
	var hasMeta, ours int
	err := tx.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE tablename = 'baton_meta'),
		count(*) FILTER (WHERE tablename = ANY($1))
		FROM pg_catalog.pg_tables WHERE schemaname = current_schema()`, batonTables).Scan(&hasMeta, &ours)
	if err != nil {
		return 0, translate(err, "open postgres store")
	}
	if hasMeta == 0 {
		if ours > 0 {
			return 0, fmt.Errorf("schema %s has tables named like Baton's but no baton_meta table: %w",
				schema, store.ErrNotBatonStore)
		}
		return 0, nil
	}
	var app, ver *string
	err = tx.QueryRow(ctx, `SELECT
		(SELECT value FROM baton_meta WHERE key = 'app'),
		(SELECT value FROM baton_meta WHERE key = 'schema_version')`).Scan(&app, &ver)
	if err != nil {
		return 0, translate(err, "open postgres store: read baton_meta")
	}
	if app == nil || *app != "baton" {
		return 0, fmt.Errorf("schema %s is not a Baton store (baton_meta has no app 'baton'): %w", schema, store.ErrNotBatonStore)
	}
	v := -1
	if ver != nil {
		v, err = strconv.Atoi(*ver)
	}
	if err != nil || v < 0 {
		return 0, fmt.Errorf("schema %s: bad schema_version in baton_meta: %w", schema, store.ErrNotBatonStore)
	}
	return v, nil
}
