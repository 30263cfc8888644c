package sqlite

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/batonhq/baton/internal/store"

	driver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// translate is the one place where driver errors become store sentinels. It
// returns nil for a nil err; otherwise err prefixed with the formatted
// context and, where one applies, wrapping a store sentinel:
//
//   - sql.ErrNoRows                      -> store.ErrNotFound
//   - SQLITE_NOTADB ("file is not a database") -> store.ErrNotBatonStore
//
// Errors that already wrap a store sentinel are only prefixed.
func translate(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	msg := fmt.Sprintf(format, args...)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", msg, store.ErrNotFound)
	}
	var se *driver.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB:
			return fmt.Errorf("%s: not a SQLite database (%v): %w", msg, err, store.ErrNotBatonStore)
		}
	}
	return fmt.Errorf("%s: %w", msg, err)
}
