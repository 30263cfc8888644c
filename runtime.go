package baton

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/sdkdef"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/storeopen"
)

// Config configures a Runtime. The zero value is ready to use.
type Config struct {
	// DB is the store: a SQLite file, or a postgres:// URL in a program
	// that imports github.com/batonhq/baton/postgres. Empty means
	// $BATON_DB, else $BATON_HOME/baton.db, else ~/.baton/baton.db.
	DB string
	// LogOutput receives a printed copy of every log record written through
	// Logger. Default os.Stderr.
	LogOutput io.Writer
	// MaxConcurrency is the default bound on a run's concurrent task runs
	// (default 64); a flow's MaxConcurrency option overrides it.
	MaxConcurrency int
}

// Runtime executes flows in this process and records them in its store
// (Config.DB: by default the embedded SQLite store). It is safe for concurrent use; Close it to flush and release the
// store.
type Runtime struct {
	st  store.Store
	eng *engine.Engine
}

// Open opens the store described by cfg, creating it if needed.
func Open(ctx context.Context, cfg Config) (*Runtime, error) {
	return open(ctx, cfg, nil)
}

// open is Open with the engine's clock (nil: the system clock), which
// tests set.
func open(ctx context.Context, cfg Config, clk clock.Clock) (*Runtime, error) {
	o, err := storeopen.Open(ctx, storeopen.Location{DB: cfg.DB}, true)
	if err != nil {
		return nil, err
	}
	st := o.Store
	eng, err := engine.New(engine.Config{Store: st, Blobs: o.Blobs, LogOutput: cfg.LogOutput, MaxConcurrency: cfg.MaxConcurrency, Clock: clk})
	if err != nil {
		st.Close()
		return nil, err
	}
	return &Runtime{st: st, eng: eng}, nil
}

// Close flushes pending records and closes the store. Safe to call twice.
func (rt *Runtime) Close() error {
	rt.eng.Close()
	return rt.st.Close()
}

func init() {
	progcmd.Definitions = definitions
	progcmd.Deployments = registeredDeployments
	sdkdef.Flow = func(f any) (*engine.FlowDef, bool) {
		af, ok := f.(AnyFlow)
		if !ok {
			return nil, false
		}
		return af.engineFlow(), true
	}
}

// definitions returns the engine definitions of the given flows (AnyFlow
// values) and of every task defined in this program. It is how Baton's own
// commands (such as `baton dev`) host flows, through progcmd.Definitions:
// exporting it here would put engine types in the SDK's API.
func definitions(flows ...any) ([]*engine.FlowDef, []*engine.TaskDef) {
	defs := make([]*engine.FlowDef, len(flows))
	for i, f := range flows {
		af, ok := f.(AnyFlow)
		if !ok {
			panic(fmt.Sprintf("baton: %T is not a flow defined with baton.Flow", f))
		}
		defs[i] = af.engineFlow()
	}
	return defs, registeredTasks()
}

// Main is the main function of a program that defines flows: it gives the
// program Baton's command line. With no arguments it runs the first flow
// with its default parameters; `run FLOW --param k=v` runs any flow;
// `retry RUN_ID` resumes a failed or crashed run; `flows` lists the flows
// and their parameters; `task TASK --input JSON` runs one task alone; `runs`
// inspects recorded runs. Main exits the process: 0 when the run
// COMPLETED, 1 when it did not, 2 for usage errors and bad input.
func Main(flows ...AnyFlow) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	prog := progcmd.ProgramOf(filepath.Base(os.Args[0]), flows...)
	code := progcmd.Main(ctx, os.Args[1:], prog, &cli.Env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
