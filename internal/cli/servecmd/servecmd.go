// Package servecmd implements `baton server` (Baton's HTTP API on the store
// given by --db) and `baton dev` (the API on the local store with an
// in-process worker running the bundled example flows): serving with HTTP
// timeouts and a graceful shutdown, and taking back at startup what dead
// workers on this host held. It links the server and is linked only by the
// baton command (internal/cli/batoncmd).
package servecmd

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/cli"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/storeopen"
	"github.com/batonhq/baton/internal/worker"
)

// Config is what cmd/baton gives the server and dev commands.
type Config struct {
	// Examples is the program whose flows and tasks `baton dev` runs in its
	// in-process worker: cmd/baton sets it to the bundled example flows.
	// With no flows, `baton dev` serves the API without a worker.
	Examples progcmd.Program
	// NewServer creates the API server; nil means server.New. Tests set it
	// to see the configuration the flags give.
	NewServer func(server.Config) (*server.Server, error)
}

// DefaultAddr is where `baton server` and `baton dev` listen by default.
const DefaultAddr = "127.0.0.1:8420"

// HTTP timeouts of the API server. Workers long-poll for up to 60s, so no
// timeout on writing a response may be shorter than that.
const (
	httpReadHeaderTimeout = 10 * time.Second
	httpReadTimeout       = 2 * time.Minute // request bodies (blobs) may be large
	httpWriteTimeout      = 2 * time.Minute // > the 60s long polls
	httpIdleTimeout       = 2 * time.Minute
	// shutdownTimeout bounds how long a shutdown waits for requests in flight.
	shutdownTimeout = 30 * time.Second
	// shutdownWakeAfter is when a shutdown still waiting for requests wakes
	// the long polls (server.Stop), so that they answer at once.
	shutdownWakeAfter = time.Second
)

// serveOptions configures serveAPI.
type serveOptions struct {
	addr         string
	leaseTimeout time.Duration
	retention    time.Duration
	logger       *slog.Logger
	maxBlobBytes int64 // 0: the server's default
	// reclaimDead takes back at startup what workers on this host whose
	// process is gone still hold (reclaimDeadWorkers).
	reclaimDead bool
}

// serveAPI opens the store, serves the API on o.addr and runs during until
// it returns or the server fails; then it shuts down gracefully: stop
// accepting, finish the requests in flight, stop the server's background
// work and close the store. during's context ends with ctx.
func serveAPI(ctx context.Context, env *cli.Env, cfg Config, o serveOptions, during func(ctx context.Context, base string) error) error {
	newServer := cfg.NewServer
	if newServer == nil {
		newServer = server.New
	}
	st, blobs, err := env.OpenStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if o.reclaimDead {
		if err := reclaimDeadWorkers(ctx, st, o.logger); err != nil {
			fmt.Fprintf(env.Stderr, "baton: warning: take back the runs of dead workers: %v\n", err)
		}
	}
	srv, err := newServer(server.Config{Store: st, Blobs: blobs, Logger: o.logger, Clock: env.Clock,
		LeaseTimeout: o.leaseTimeout, Retention: o.retention, MaxBlobBytes: o.maxBlobBytes})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	if err := srv.Start(ctx); err != nil {
		ln.Close()
		return err
	}
	defer srv.Stop()
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          log.New(env.Stderr, "baton: http: ", 0),
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- hs.Serve(api.RequestLineListener(ln)) }()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(env.Stderr, "baton: serving API on %s\n", base)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	duringErr := make(chan error, 1)
	go func() { duringErr <- during(runCtx, base) }()
	var runErr error
	select {
	case err := <-serveErr:
		runErr = fmt.Errorf("serve on %s: %w", o.addr, err)
		cancel()
		<-duringErr
	case runErr = <-duringErr:
	}

	fmt.Fprintln(env.Stderr, "baton: shutting down: finishing requests in flight")
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	shut := make(chan error, 1)
	go func() { shut <- hs.Shutdown(sctx) }()
	var shutErr error
	select {
	case shutErr = <-shut:
	case <-time.After(shutdownWakeAfter):
		srv.Stop() // answer the workers' long polls now
		shutErr = <-shut
	}
	if shutErr != nil {
		hs.Close()
		fmt.Fprintf(env.Stderr, "baton: warning: shutdown: %v; closed the remaining connections\n", shutErr)
	}
	srv.Stop()
	if err := st.Close(); err != nil && runErr == nil {
		runErr = fmt.Errorf("close the store: %w", err)
	}
	if runErr == nil {
		fmt.Fprintln(env.Stderr, "baton: stopped")
	}
	return runErr
}

// reclaimDeadWorkers gives back at once what registered workers on this
// host whose process is gone hold, instead of waiting for their leases to
// expire: a `baton dev` killed with kill -9 and started again resumes its
// runs at once. Their PENDING and RUNNING runs go back to SCHEDULED for a
// new attempt (completed steps replay from the journal), CANCELLING ones
// become CANCELLED and their distributed task runs go back to PENDING. A
// worker counts as gone only when this host can tell: its pid does not run,
// or runs a process that started at another time than the one recorded on
// the runs it held.
func reclaimDeadWorkers(ctx context.Context, st store.Store, log *slog.Logger) error {
	workers, err := st.WorkerList(ctx, time.Time{})
	if err != nil {
		return err
	}
	self := engine.Self()
	starts := map[string]int64{} // worker -> process start time recorded on its runs
	held := map[string]int{}
	for _, state := range store.LeasedRunStates {
		runs, err := st.RunList(ctx, store.RunListParams{State: state, Limit: 10000})
		if err != nil {
			return err
		}
		for _, r := range runs {
			if r.WorkerID == "" {
				continue
			}
			held[r.WorkerID]++
			if r.OwnerStart != 0 && r.OwnerHost == self.Host {
				starts[r.WorkerID] = r.OwnerStart
			}
		}
	}
	for _, w := range workers {
		if w.Host != self.Host || w.PID == 0 {
			continue
		}
		p := engine.Process{Host: w.Host, PID: w.PID, Start: starts[w.ID]}
		if alive, known := p.Alive(); alive || !known {
			continue
		}
		if err := st.WorkerRelease(ctx, w.ID); err != nil {
			return fmt.Errorf("release worker %s: %w", w.ID, err)
		}
		if held[w.ID] > 0 && log != nil {
			log.Info("took back the runs of a worker whose process is gone", "worker", w.ID, "name", w.Name,
				"pid", w.PID, "runs", held[w.ID])
		}
	}
	return nil
}

// isLoopbackHost reports whether host (from HOST:PORT) only accepts
// connections from this machine.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkAddr validates --addr; a non-loopback one needs allowRemote.
func checkAddr(cmd, addr string, allowRemote, canAllow bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return cli.Usagef("invalid --addr %q: %v; want HOST:PORT, such as %s", addr, err, DefaultAddr)
	}
	if isLoopbackHost(host) || allowRemote {
		return nil
	}
	where := host
	if where == "" {
		where = "all interfaces"
	}
	if !canAllow {
		return cli.Usagef("%s only listens on a loopback address (such as 127.0.0.1:%s), not %s: "+
			"it is for one machine; to serve other machines use: baton server --addr %s --allow-remote", cmd, port, where, addr)
	}
	return cli.Usagef("refusing to listen on %s (%s): the API has no authentication yet, so anyone who can reach "+
		"this address could create, cancel and read runs. Listen on a loopback address such as 127.0.0.1:%s, "+
		"or pass --allow-remote to serve other machines on a trusted network", addr, where, port)
}

// parseRetention parses --retention: an age, or 0/off/none to disable it.
func parseRetention(s string) (time.Duration, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "0", "off", "none", "never":
		return 0, nil
	}
	d, err := api.ParseAge(s)
	if err != nil {
		return 0, cli.Usagef("--retention: %v (or 0 to keep runs forever)", err)
	}
	return d, nil
}

// ServerCommand returns `server`: the API server.
func ServerCommand(env *cli.Env, cfg Config) *cobra.Command {
	var maxBlobBytes int64
	var (
		addr, retention string
		allowRemote     bool
		leaseTimeout    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Serve Baton's HTTP API on the store given by --db, for workers and clients",
		Long: "Serve Baton's HTTP API (under /api/v1) on the store given by --db: a SQLite file, or a\n" +
			"postgres:// URL for several servers sharing one database. Workers (a program's `worker`\n" +
			"command) and clients (baton --server URL ...) talk to it.\n\n" +
			"The API has no authentication yet: by default it only listens on a loopback address;\n" +
			"--allow-remote lets it listen on others. SIGINT or SIGTERM stops it gracefully.",
		Args: cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkAddr("baton server", addr, allowRemote, true); err != nil {
				return err
			}
			ret, err := parseRetention(retention)
			if err != nil {
				return err
			}
			if leaseTimeout < time.Second {
				return cli.Usagef("invalid --lease-timeout %s: must be at least 1s", leaseTimeout)
			}
			o := serveOptions{addr: addr, leaseTimeout: leaseTimeout, retention: ret, logger: env.Logger()}
			if maxBlobBytes < 1 {
				return cli.Usagef("invalid --max-blob-bytes %d: must be at least 1", maxBlobBytes)
			}
			o.maxBlobBytes = maxBlobBytes
			return serveAPI(cmd.Context(), env, cfg, o, func(ctx context.Context, _ string) error {
				<-ctx.Done()
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", DefaultAddr, "listen on this HOST:PORT")
	f.BoolVar(&allowRemote, "allow-remote", false, "allow listening on a non-loopback address (the API has no authentication yet)")
	f.StringVar(&retention, "retention", "0", "delete finished runs older than this (e.g. 30d, 12h); 0 keeps them forever")
	f.DurationVar(&leaseTimeout, "lease-timeout", 15*time.Second, "how long a worker's runs stay leased without a heartbeat")
	f.StringVar(&env.Blobs, "blobs", env.Blobs, "blob `directory` for large results and inputs (default: beside a SQLite file; $BATON_HOME/blobs for PostgreSQL)")
	f.Int64Var(&maxBlobBytes, "max-blob-bytes", 4<<30, "largest result (in bytes, as JSON) a worker may upload to the blob store")
	return cmd
}

// DevCommand returns `dev`: a server on the local store with an in-process
// worker running the bundled example flows (cfg.Examples).
func DevCommand(env *cli.Env, cfg Config) *cobra.Command {
	var (
		addr         string
		leaseTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Start a local server with a worker running the bundled example flows",
		Long: "Start everything needed to try Baton on one machine: the API server on the local store\n" +
			"(--db, default ~/.baton/baton.db) listening on a loopback address, and a worker in the same\n" +
			"process running the bundled example flows. Create runs from another terminal with\n" +
			"baton runs create FLOW. Ctrl+C stops both.",
		Args: cli.ExactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkAddr("baton dev", addr, false, false); err != nil {
				return err
			}
			if leaseTimeout < time.Second {
				return cli.Usagef("invalid --lease-timeout %s: must be at least 1s", leaseTimeout)
			}
			logger := env.Logger()
			o := serveOptions{addr: addr, leaseTimeout: leaseTimeout, logger: logger, reclaimDead: true}
			prog := cfg.Examples
			return serveAPI(cmd.Context(), env, cfg, o, func(ctx context.Context, base string) error {
				devWelcome(env, base, prog)
				if len(prog.Flows) == 0 {
					<-ctx.Done()
					return nil
				}
				c, err := remote.New(base)
				if err != nil {
					return err
				}
				w, err := worker.New(worker.Config{Client: c, Name: "baton-dev", Flows: prog.Flows, Tasks: prog.Tasks,
					Logger: logger, LogOutput: env.Stderr, ShutdownGrace: 5 * time.Second, Clock: env.Clock,
					OnTaskFailure: cli.PrintTaskFailure(env)})
				if err != nil {
					return err
				}
				if err := w.Run(ctx); err != nil && ctx.Err() == nil {
					return fmt.Errorf("worker: %w", err) // not a stop asked for (Ctrl+C before it registered)
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", DefaultAddr, "listen on this loopback HOST:PORT")
	cmd.Flags().DurationVar(&leaseTimeout, "lease-timeout", 15*time.Second,
		"how long a worker's runs stay leased without a heartbeat (at startup, runs of dead workers on this host are taken back at once)")
	return cmd
}

// devWelcome prints how to use the dev server.
func devWelcome(env *cli.Env, base string, prog progcmd.Program) {
	w := env.Stdout
	db, _ := env.Location().DBPath()
	fmt.Fprintf(w, "Baton is running.\n\n")
	fmt.Fprintf(w, "  API:    %s%s (OpenAPI: %s%s/openapi.json)\n", base, apitype.Prefix, base, apitype.Prefix)
	fmt.Fprintf(w, "  Store:  %s\n", storeopen.Redact(db))
	if len(prog.Flows) == 0 {
		fmt.Fprintf(w, "  Worker: none (no bundled flows)\n")
	} else {
		names := make([]string, len(prog.Flows))
		for i, f := range prog.Flows {
			names[i] = f.Name
		}
		fmt.Fprintf(w, "  Worker: in this process, running the example flows %s\n", strings.Join(names, ", "))
	}
	cmd := env.Cmd()
	fmt.Fprintf(w, "\nIn another terminal (in this directory):\n\n")
	fmt.Fprintf(w, "  export BATON_SERVER=%s\n", base)
	for _, f := range prog.Flows {
		fmt.Fprintf(w, "  %s runs create %s\n", cmd, f.Name)
	}
	fmt.Fprintf(w, "  %s runs list\n", cmd)
	fmt.Fprintf(w, "  %s runs show RUN_ID\n", cmd)
	fmt.Fprintf(w, "  %s workers list\n", cmd)
	if strings.HasPrefix(cmd, "go run ") {
		fmt.Fprintf(w, "\nTo type baton instead of %s, install the binary:\n\n", cmd)
		fmt.Fprintf(w, "  go install %s    # or: go install github.com/batonhq/baton/cmd/baton@latest\n", strings.TrimPrefix(cmd, "go run "))
	}
	fmt.Fprintf(w, "\nPress Ctrl+C to stop.\n")
}
