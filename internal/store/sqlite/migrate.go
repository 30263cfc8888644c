package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"strconv"

	"github.com/batonhq/baton/internal/store"
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

// migrate checks that db is a Baton store (or an empty database) and applies
// the pending migrations, all in one BEGIN IMMEDIATE transaction so that
// concurrent processes opening a fresh file serialize: the second one sees
// the version the first one committed.
func migrate(ctx context.Context, db *sql.DB, file string) (err error) {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("store %s: %w", file, err)
	}
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock=immediate)
	if err != nil {
		return translate(err, "open store %s", file)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()

	version, err := schemaVersion(ctx, tx, file)
	if err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("store %s has schema version %d but this binary knows up to %d; upgrade baton: %w",
			file, version, len(ms), store.ErrSchemaTooNew)
	}
	if version == len(ms) {
		return translate(tx.Commit(), "open store %s", file)
	}
	for _, m := range ms[version:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return translate(err, "store %s: apply migration %s", file, m.Name)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO baton_meta (key, value) VALUES ('app', 'baton'), ('schema_version', ?)
		ON CONFLICT(key) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(ms))); err != nil {
		return translate(err, "store %s: record schema version", file)
	}
	return translate(tx.Commit(), "store %s: commit migrations", file)
}

// schemaVersion returns the schema version recorded in baton_meta, 0 for an
// empty database, or an error wrapping store.ErrNotBatonStore.
func schemaVersion(ctx context.Context, tx *sql.Tx, file string) (int, error) {
	var hasMeta, others int
	err := tx.QueryRowContext(ctx, `SELECT
		count(*) FILTER (WHERE name = 'baton_meta'),
		count(*) FILTER (WHERE name <> 'baton_meta')
		FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`).Scan(&hasMeta, &others)
	if err != nil {
		return 0, translate(err, "open store %s", file)
	}
	if hasMeta == 0 {
		if others > 0 {
			return 0, fmt.Errorf("%s is a SQLite database but not a Baton store (no baton_meta table): %w",
				file, store.ErrNotBatonStore)
		}
		return 0, nil
	}
	var app, ver sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT value FROM baton_meta WHERE key = 'app'),
		(SELECT value FROM baton_meta WHERE key = 'schema_version')`).Scan(&app, &ver)
	if err != nil {
		return 0, translate(err, "open store %s: read baton_meta", file)
	}
	if app.String != "baton" {
		return 0, fmt.Errorf("%s is not a Baton store (baton_meta app is %q): %w", file, app.String, store.ErrNotBatonStore)
	}
	v, err := strconv.Atoi(ver.String)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: bad schema_version %q in baton_meta: %w", file, ver.String, store.ErrNotBatonStore)
	}
	return v, nil
}
