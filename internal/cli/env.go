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
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

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

// Env is what commands read and write: streams, environment, the store
// location chosen by --db and the server chosen by --server.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// DB is the value of the --db flag: a SQLite file or a postgres:// (or
	// postgresql://) URL; empty means BATON_DB, then $BATON_HOME/baton.db,
	// then ~/.baton/baton.db.
	DB string
	// Blobs is the blob directory (--blobs). Empty means the "blobs"
	// directory beside a SQLite file, or $BATON_HOME/blobs (else
	// ~/.baton/blobs) for PostgreSQL.
	Blobs string
	// Server is the value of the --server flag: the base URL of a Baton API
	// server (several may be separated by commas). Empty means
	// BATON_SERVER; when both are empty, commands use the local store.
	Server string
	// Command is how hints in messages invoke this program again, such as
	// "baton" or "go run ./cmd/baton". Empty: detected (SelfCommand).
	Command string
	// Examples is the program whose flows and tasks `baton dev` runs in its
	// in-process worker: cmd/baton sets it to the bundled example flows.
	// With no flows, `baton dev` serves the API without a worker.
	Examples Program
	// NewServer creates the API server of `baton server` and `baton dev`;
	// cmd/baton sets it (to internal/server.New). It is injected so that
	// the programs built on package baton, which use this package for their
	// command line, do not link the server. Nil: those commands fail.
	NewServer func(ServerConfig) (APIServer, error)
}

// APIServer is the API server as `baton server` and `baton dev` run it
// (internal/server's *Server): serve Handler between Start and Stop.
type APIServer interface {
	Handler() http.Handler
	Start(ctx context.Context) error
	// Stop ends the background work and wakes the long polls in flight.
	Stop()
}

// ServerConfig configures the server that Env.NewServer creates.
type ServerConfig struct {
	Store        store.Store
	Blobs        *blob.Store
	Logger       *slog.Logger
	LeaseTimeout time.Duration // 0: the server's default
	Retention    time.Duration // 0: keep runs
	MaxBlobBytes int64         // largest blob upload; 0: the server's default
}

// cmd returns Command, else "baton".
func (env *Env) cmd() string {
	if env.Command != "" {
		return env.Command
	}
	return "baton"
}

// ServerURL returns --server, else $BATON_SERVER; empty when neither is set.
func (env *Env) ServerURL() string {
	if env.Server != "" {
		return env.Server
	}
	if env.Getenv == nil {
		return ""
	}
	return strings.TrimSpace(env.Getenv("BATON_SERVER"))
}

// IsPostgresURL reports whether a --db value is a PostgreSQL URL rather than
// a SQLite file.
func IsPostgresURL(db string) bool {
	lower := strings.ToLower(db)
	return strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://")
}

// home returns $BATON_HOME, else ~/.baton.
func (env *Env) home() (string, error) {
	if home := env.Getenv("BATON_HOME"); home != "" {
		return home, nil
	}
	dir, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find home directory (set BATON_HOME or --db): %w", err)
	}
	return filepath.Join(dir, ".baton"), nil
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
	home, err := env.home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "baton.db"), nil
}

// BlobDir resolves the blob directory for the store at db (see Env.Blobs).
func (env *Env) BlobDir(db string) (string, error) {
	if env.Blobs != "" {
		return env.Blobs, nil
	}
	if !IsPostgresURL(db) {
		return filepath.Join(filepath.Dir(db), "blobs"), nil
	}
	home, err := env.home()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "blobs"), nil
}

// OpenStore opens the store (a SQLite file, or PostgreSQL when --db is a
// postgres:// URL) and its blob directory, for a command that writes (run,
// retry, task, server, dev): a SQLite store that does not exist yet is
// created, and the command says so on stderr. A database that is not a
// Baton store, one of a newer schema, or a path that cannot be used is a
// UsageError.
func (env *Env) OpenStore(ctx context.Context) (store.Store, *blob.Store, error) {
	return env.openStore(ctx, true)
}

// OpenStoreForReading is OpenStore for commands that only read (runs list,
// show, logs, workers, queues, retention): a SQLite store that does not
// exist is a UsageError naming the path, and nothing is created.
func (env *Env) OpenStoreForReading(ctx context.Context) (store.Store, *blob.Store, error) {
	return env.openStore(ctx, false)
}

func (env *Env) openStore(ctx context.Context, create bool) (store.Store, *blob.Store, error) {
	db, err := env.DBPath()
	if err != nil {
		return nil, nil, err
	}
	var (
		st      store.Store
		created bool
	)
	if IsPostgresURL(db) {
		st, err = openPostgres(ctx, db)
	} else {
		abs, aerr := filepath.Abs(db)
		if aerr != nil {
			abs = db
		}
		_, serr := os.Stat(abs)
		switch {
		case errors.Is(serr, os.ErrNotExist) && !create:
			return nil, nil, Usagef("no Baton store at %s: the file does not exist (check --db or BATON_DB; "+
				"running a flow, baton server or baton dev creates one)", abs)
		case errors.Is(serr, os.ErrNotExist):
			created = true
		}
		var sst *sqlite.Store
		if sst, err = sqlite.Open(ctx, db); err == nil {
			st = sst
			if create {
				if err = sst.CheckWritable(ctx); err != nil {
					sst.Close()
				}
			}
		}
		db = abs
	}
	if err != nil {
		if errors.Is(err, store.ErrNotBatonStore) || errors.Is(err, store.ErrSchemaTooNew) || errors.Is(err, sqlite.ErrUnusablePath) {
			return nil, nil, &UsageError{Err: err}
		}
		return nil, nil, err
	}
	dir, err := env.BlobDir(db)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	var blobs *blob.Store
	if _, serr := os.Stat(dir); create || serr == nil {
		blobs, err = blob.Open(dir)
	} else {
		blobs = blob.At(dir) // reading: no blob was ever written there
	}
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	if created && env.Stderr != nil {
		fmt.Fprintf(env.Stderr, "baton: created a new store at %s\n", db)
	}
	return st, blobs, nil
}

// redactURL hides the password of a database URL for messages.
func redactURL(db string) string {
	u, err := url.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	return u.Redacted()
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
