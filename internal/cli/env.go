// Package cli implements Baton's command lines: the commands that
// baton.Main gives a user's binary (run, retry, flows, task) and the client
// commands of cmd/baton (runs, version). Each command reads and writes
// through an Env so tests can run them in-process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// Exit codes of every Baton command.
const (
	ExitOK     = 0 // the command succeeded; for run and retry: the run COMPLETED
	ExitFailed = 1 // the run did not complete, or an internal error
	ExitUsage  = 2 // usage errors and bad input
)

// Env is what commands read and write: streams, environment and the store
// location chosen by --db.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// DB is the value of the --db flag; empty means BATON_DB, then
	// $BATON_HOME/baton.db, then ~/.baton/baton.db.
	DB string
}

// UsageError is bad input from the user; commands exit with ExitUsage.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }

// Unwrap returns the underlying error.
func (e *UsageError) Unwrap() error { return e.Err }

// Usagef returns a UsageError with a formatted message.
func Usagef(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// DBPath resolves the store file.
func (env *Env) DBPath() (string, error) {
	if env.DB != "" {
		return env.DB, nil
	}
	if p := env.Getenv("BATON_DB"); p != "" {
		return p, nil
	}
	home := env.Getenv("BATON_HOME")
	if home == "" {
		dir, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find home directory (set BATON_HOME or --db): %w", err)
		}
		home = filepath.Join(dir, ".baton")
	}
	return filepath.Join(home, "baton.db"), nil
}

// OpenStore opens the store and the blob directory beside it. A file that is
// not a Baton store, or one of a newer schema, is a UsageError.
func (env *Env) OpenStore(ctx context.Context) (store.Store, *blob.Store, error) {
	path, err := env.DBPath()
	if err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, path)
	if err != nil {
		if errors.Is(err, store.ErrNotBatonStore) || errors.Is(err, store.ErrSchemaTooNew) {
			return nil, nil, &UsageError{Err: err}
		}
		return nil, nil, err
	}
	blobs, err := blob.Open(filepath.Join(filepath.Dir(path), "blobs"))
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return st, blobs, nil
}

// ExitCode maps a command's error to its exit code.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	}
	return ExitFailed
}
