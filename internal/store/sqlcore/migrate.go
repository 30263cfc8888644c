package sqlcore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/batonhq/baton/internal/store"
)

// Migration is one numbered schema change of a dialect.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

// Migrations reads a dialect's migrations from fsys: files named
// migrations/NNNN_description.sql, numbered consecutively from 1 (every
// dialect uses the same numbers for the same change), sorted by version.
func Migrations(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("bad migration file name %q", base)
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, Migration{Version: v, Name: base, SQL: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migration %s: expected version %d", m.Name, i+1)
		}
	}
	return ms, nil
}

// SchemaVersion returns the schema version that the migrations embedded in
// fsys bring a database to: their number. It panics when they are
// malformed (they are fixed at build time and tests catch it).
func SchemaVersion(fsys fs.FS) int {
	ms, err := Migrations(fsys)
	if err != nil {
		panic(err)
	}
	return len(ms)
}

// MigrationTx is the transaction in which a dialect migrates its schema,
// having made it exclusive (BEGIN IMMEDIATE, an advisory lock). Unlike
// Tx.Exec, its Exec runs at once, and a statement without arguments may
// hold several statements (a migration file).
type MigrationTx interface {
	QueryRow(ctx context.Context, sql string, args ...any) Row
	Exec(ctx context.Context, sql string, args ...any) error
}

// MigrateParams describes a dialect's migration.
type MigrateParams struct {
	// FS holds the dialect's migrations/*.sql.
	FS fs.FS
	// Where names the database in errors ("store /path/baton.db",
	// "postgres store (schema baton)").
	Where string
	// TablesSQL counts, in this order, the tables named baton_meta and the
	// other tables that make a database without baton_meta foreign (all
	// tables, or those with Baton's names).
	TablesSQL string
	// Translate is the dialect's Dialect.Translate.
	Translate func(err error, format string, args ...any) error
}

// Migrate checks, in tx, that the database is a Baton store (or has no
// tables of one) and applies the migrations it lacks, recording the new
// version in baton_meta; the caller commits. It returns an error wrapping
// store.ErrSchemaTooNew when a newer binary migrated the database, and one
// wrapping store.ErrNotBatonStore when the database is not a Baton store.
func Migrate(ctx context.Context, tx MigrationTx, p MigrateParams) error {
	ms, err := Migrations(p.FS)
	if err != nil {
		return fmt.Errorf("%s: %w", p.Where, err)
	}
	version, err := schemaVersion(ctx, tx, p)
	if err != nil {
		return err
	}
	if version > len(ms) {
		return fmt.Errorf("%s has schema version %d but this binary knows up to %d; upgrade baton: %w",
			p.Where, version, len(ms), store.ErrSchemaTooNew)
	}
	for _, m := range ms[version:] {
		if err := tx.Exec(ctx, m.SQL); err != nil {
			return p.Translate(err, "%s: apply migration %s", p.Where, m.Name)
		}
	}
	if version == len(ms) {
		return nil
	}
	if err := tx.Exec(ctx, `INSERT INTO baton_meta (key, value) VALUES ('app', 'baton'), ('schema_version', $1)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, strconv.Itoa(len(ms))); err != nil {
		return p.Translate(err, "%s: record schema version", p.Where)
	}
	return nil
}

// schemaVersion returns the schema version recorded in baton_meta, 0 for a
// database without Baton tables, or an error wrapping
// store.ErrNotBatonStore.
func schemaVersion(ctx context.Context, tx MigrationTx, p MigrateParams) (int, error) {
	var hasMeta, others int64
	if err := tx.QueryRow(ctx, p.TablesSQL).Scan(&hasMeta, &others); err != nil {
		return 0, p.Translate(err, "open %s", p.Where)
	}
	if hasMeta == 0 {
		if others > 0 {
			return 0, fmt.Errorf("%s has tables but no baton_meta table, so it is not a Baton store: %w",
				p.Where, store.ErrNotBatonStore)
		}
		return 0, nil
	}
	var app, ver *string
	err := tx.QueryRow(ctx, `SELECT
		(SELECT value FROM baton_meta WHERE key = 'app'),
		(SELECT value FROM baton_meta WHERE key = 'schema_version')`).Scan(&app, &ver)
	if err != nil {
		return 0, p.Translate(err, "open %s: read baton_meta", p.Where)
	}
	if app == nil || *app != "baton" {
		return 0, fmt.Errorf("%s is not a Baton store (baton_meta has no app 'baton'): %w", p.Where, store.ErrNotBatonStore)
	}
	v := -1
	if ver != nil {
		v, err = strconv.Atoi(*ver)
	}
	if err != nil || v < 0 {
		return 0, fmt.Errorf("%s: bad schema_version in baton_meta: %w", p.Where, store.ErrNotBatonStore)
	}
	return v, nil
}
