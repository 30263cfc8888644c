// Package postgres links Baton's PostgreSQL backend into a program. Import
// it for its side effect:
//
//	import _ "github.com/batonhq/baton/postgres"
//
// Then the program's store may be a PostgreSQL database: --db (or BATON_DB)
// postgres://user@host/db, or postgresql://... . A program built on package
// baton runs flows on its embedded SQLite store and talks to servers over
// HTTP; it does not link the PostgreSQL driver unless it imports this
// package, and refuses a postgres:// store with a message that says so. The
// baton command imports it: `baton server --db postgres://...` is the usual
// way to use PostgreSQL, with the program's `worker` command executing the
// runs through the server.
package postgres

import (
	"context"

	"github.com/batonhq/baton/internal/store"
	pgstore "github.com/batonhq/baton/internal/store/postgres"
	"github.com/batonhq/baton/internal/storeopen"
)

func init() {
	storeopen.Register(storeopen.Backend{
		Name:    "PostgreSQL",
		Schemes: []string{"postgres", "postgresql"},
		Open: func(ctx context.Context, url string) (store.Store, error) {
			st, err := pgstore.Open(ctx, url)
			if err != nil {
				return nil, err
			}
			return st, nil
		},
	})
}
