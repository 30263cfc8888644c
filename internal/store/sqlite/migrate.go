package sqlite

import (
	"context"
	"database/sql"
	"embed"

	"github.com/batonhq/baton/internal/store/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SchemaVersion returns the schema version this binary migrates databases
// to: the number of embedded migrations.
func SchemaVersion() int { return sqlcore.SchemaVersion(migrationFS) }

// migrate checks that db is a Baton store (or an empty database) and applies
// the pending migrations (sqlcore.Migrate), all in one BEGIN IMMEDIATE
// transaction so that concurrent processes opening a fresh file serialize:
// the second one sees the version the first one committed. Any table makes
// a database without baton_meta foreign.
func migrate(ctx context.Context, db *sql.DB, file string) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE (_txlock=immediate)
	if err != nil {
		return translate(err, "open store %s", file)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if err := sqlcore.Migrate(ctx, sqlcore.SQLTx{Tx: tx}, sqlcore.MigrateParams{FS: migrationFS, Where: "store " + file,
		TablesSQL: `SELECT count(*) FILTER (WHERE name = 'baton_meta'), count(*) FILTER (WHERE name <> 'baton_meta')
			FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\'`,
		Translate: translate}); err != nil {
		return err
	}
	return translate(tx.Commit(), "store %s: commit migrations", file)
}
