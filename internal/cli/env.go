// Package cli holds what Baton's command lines share: the Env that commands
// read and write through (so tests run them in-process), exit codes and
// usage errors, running a root command (Execute), hints that name the
// command as it was run, the client of --server, and the text helpers of
// tables.
//
// The commands themselves live in packages named for what they do:
// runscmd (runs list|show|logs|create|cancel|retry, in both command lines),
// progcmd (the command line baton.Main gives a user's program: run, retry,
// flows, task, worker), servecmd (baton server and baton dev) and batoncmd
// (the baton command: servecmd, runscmd, workers, queues, retention).
// Stores are opened by internal/storeopen.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/storeopen"
)

// Exit codes of every Baton command.
const (
	ExitOK     = 0 // the command succeeded; for run and retry: the run COMPLETED
	ExitFailed = 1 // the run did not complete, or an internal error
	ExitUsage  = 2 // usage errors and bad input
	ExitPaused = 3 // for run, retry and resume: the run waits, PAUSED (it goes on when given what it waits for)
)

// PausedError ends a command whose run is PAUSED: it waits for input, a
// resume, a timer or an event, and this process stopped waiting for it.
type PausedError struct{ Msg string }

func (e *PausedError) Error() string { return e.Msg }

// Env is what commands read and write: streams, environment, the store
// location chosen by --db and the server chosen by --server.
type Env struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// DB is the value of the --db flag: a SQLite file or a URL of a linked
	// backend (postgres://, postgresql://); empty means BATON_DB, then
	// $BATON_HOME/baton.db, then ~/.baton/baton.db.
	DB string
	// Blobs is the blob directory (--blobs). Empty means the "blobs"
	// directory beside a SQLite file, or $BATON_HOME/blobs (else
	// ~/.baton/blobs) for PostgreSQL.
	Blobs string
	// Server is the value of the --server flag: the base URL of a Baton API
	// server (several may be separated by commas). Empty means
	// BATON_SERVER; when both are empty, commands use the local store.
	Server string
	// As is the value of the --as flag: the name recorded as who acts in
	// the histories of the runs a command changes, marked unverified.
	// Through a server it is sent as the X-Baton-Actor header; empty sends
	// the OS user (USER@HOST), and on the store records the OS user,
	// verified.
	As string
	// Command is how hints in messages invoke this program again, such as
	// "baton" or "go run ./cmd/baton". Empty: detected (SelfCommand).
	Command string
	// Clock is the commands' source of time: the ages they print and
	// compute (retention's cut-off, the workers seen lately), and the clock
	// of the servers and workers they start. Nil means the system clock.
	Clock clock.Clock
}

// Clk returns Clock, else the system clock.
func (env *Env) Clk() clock.Clock { return clock.Or(env.Clock) }

// Cmd returns Command, else "baton".
func (env *Env) Cmd() string {
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

// Actor is who a command acting on the store directly acts for: --as
// (unverified), else the OS user (engine.CurrentActor).
func (env *Env) Actor() store.Actor {
	if env.As != "" {
		return store.Actor{Name: env.As}
	}
	return engine.CurrentActor()
}

// AsFlag adds --as to a command's persistent flags.
func AsFlag(env *Env, flags interface {
	StringVar(p *string, name, value, usage string)
}) {
	flags.StringVar(&env.As, "as", env.As, "the `NAME` recorded as who acts in run histories, marked unverified "+
		"(sent to a server as the X-Baton-Actor header; default: the OS user)")
}

// Location is where --db, --blobs and the environment say the store is.
func (env *Env) Location() storeopen.Location {
	return storeopen.Location{DB: env.DB, Blobs: env.Blobs, Getenv: env.Getenv}
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

// OpenStore opens the store (see storeopen.Open) and its blob directory,
// for a command that writes (run, retry, task, server, dev): a SQLite store
// that does not exist yet is created, and the command says so on stderr. A
// location the user must fix (storeopen.IsUserError: a database that is
// not a Baton store, one of a newer schema, a path that cannot be used, a
// backend this program does not link) is a UsageError.
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
	o, err := storeopen.Open(ctx, env.Location(), create)
	if storeopen.IsUserError(err) {
		return nil, nil, &UsageError{Err: err}
	}
	if err != nil {
		return nil, nil, err
	}
	if o.Created && env.Stderr != nil {
		fmt.Fprintf(env.Stderr, "baton: created a new store at %s\n", o.DB)
	}
	return o.Store, o.Blobs, nil
}

// ExitCode maps a command's error to its exit code.
func ExitCode(err error) int {
	var ue *UsageError
	switch {
	case err == nil:
		return ExitOK
	case errors.As(err, &ue):
		return ExitUsage
	case errors.As(err, new(*PausedError)):
		return ExitPaused
	}
	return ExitFailed
}

// Logger returns the logger of long-running commands (server, dev, worker):
// text records of level Info and above on Stderr.
func (env *Env) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
