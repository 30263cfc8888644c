package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

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
//   - SQLITE_READONLY (the file or its directory) -> ErrUnusablePath, in words
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
		case sqlite3.SQLITE_READONLY:
			why := "the store's file is read-only"
			if se.Code() == sqlite3.SQLITE_READONLY_DIRECTORY {
				why = "the store's directory is not writable"
			}
			return &driverPathError{msg: msg + ": " + why + " (check permissions)", err: err}
		}
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// ErrUnusablePath is wrapped by the errors of Open when the store's path
// cannot be used (a directory, a file or directory without the needed
// permissions): a problem with what the user named, not with the store.
var ErrUnusablePath = errors.New("store path cannot be used")

// unusablePathError is an error about the store's path; it matches
// ErrUnusablePath without repeating its text.
type unusablePathError struct{ msg string }

func (e *unusablePathError) Error() string { return e.msg }

func (e *unusablePathError) Is(target error) bool { return target == ErrUnusablePath }

func unusable(format string, args ...any) error {
	return &unusablePathError{msg: fmt.Sprintf(format, args...)}
}

// driverPathError is a driver error about the store's file or directory,
// in words; it wraps the driver error (for pathError) and matches
// ErrUnusablePath.
type driverPathError struct {
	msg string
	err error
}

func (e *driverPathError) Error() string { return e.msg }

func (e *driverPathError) Unwrap() error { return e.err }

func (e *driverPathError) Is(target error) bool { return target == ErrUnusablePath }

// pathError explains a driver error of opening the store at path in terms
// of the path, for the codes that mean the file cannot be opened or
// written; other errors are returned as they are.
func pathError(path string, err error) error {
	var se *driver.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	if why := pathProblem(path, se.Code()); why != "" {
		return unusable("store %s: %s", path, why)
	}
	return err
}

// pathProblem says what is wrong with the store at path for a SQLite
// (extended) result code, or "" when the code is not about the path.
func pathProblem(path string, code int) string {
	dir := filepath.Dir(path)
	switch {
	case code == sqlite3.SQLITE_READONLY_DIRECTORY:
		return fmt.Sprintf("the directory %s is not writable; SQLite must create the store's -wal and -shm files beside it", dir)
	case code&0xff == sqlite3.SQLITE_READONLY:
		return "the file is read-only; Baton needs to write to its store (check the file's permissions and owner)"
	case code == sqlite3.SQLITE_CANTOPEN_ISDIR:
		return fmt.Sprintf("it is a directory, not a database file; name a file, e.g. %s", filepath.Join(path, "baton.db"))
	case code&0xff == sqlite3.SQLITE_CANTOPEN:
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			return fmt.Sprintf("it is a directory, not a database file; name a file, e.g. %s", filepath.Join(path, "baton.db"))
		}
		if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			return "cannot open the file for reading and writing: " + strings.TrimPrefix(err.Error(), "open "+path+": ")
		} else {
			f.Close()
		}
		return fmt.Sprintf("SQLite cannot open the file or create its -wal and -shm files in %s (check permissions)", dir)
	}
	return ""
}
