package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	neturl "net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/client"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/cli/progcmd"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/pgtest"
	"github.com/batonhq/baton/internal/store/postgres"
)

// Item counts of the distributed suite at -scale 1 (the ceiling uses
// ceilingRows and the local fan-out fanoutItems, as in the local suite).
const (
	remoteItems    = 50_000
	smallRuns      = 5_000
	smallCreators  = 16    // goroutines creating the small runs
	latencyRuns    = 2_000 // at latencyRate: ~10 s
	latencyRate    = 200   // runs created per second
	remoteSlots    = 2_000 // --slots bench=N of every worker
	slotItems      = 4_000 // items of the slot-efficiency map
	slotWorkers    = 4     // workers serving the queue slots, each with --slots slots=slotsPerWorker
	slotsPerWorker = 8
	slotTask       = 10 * time.Millisecond // what bench.slot-sleep sleeps
	tagItems       = 50_000                // items of each map of the tag-limit measure
	tagWorkers     = 16                    // workers serving the queue tagged, each with slotsPerWorker slots
	tagLimit       = 100                   // the limit of bench-tag (below tagWorkers*slotsPerWorker)
	leaseTimeout   = "10s"
	// measureTimeout bounds each measure of the distributed suite.
	measureTimeout = 15 * time.Minute
	// listLimit is the API's largest ListRuns page.
	listLimit = 10_000
)

// Names in the bench program (bench/internal/benchprog).
const (
	flowRemote  = "bench.remote-map"
	flowSmall   = "bench.small"
	flowLatency = "bench.latency"
	flowSlots   = "bench.slot-map"
	flowTag     = "bench.tag-map"
	flowTagFree = "bench.tag-map-unlimited"
	flowTagless = "bench.tagless-map"
	tagQueue    = "tagged"
	benchTag    = "bench-tag"
	benchQueue  = "bench"
	slotsQueue  = "slots"
)

// distKeys are the figures the distributed suite prints, in order.
var distKeys = []string{
	"go_version",
	"cpus",
	"workers",
	"postgres_ceiling_tasks_per_s",
	"local_pg_fanout_tasks_per_s",
	"remote_tasks_per_s",
	"remote_slot_efficiency",
	"tag_limited_tasks_per_s",
	"tag_unlimited_tasks_per_s",
	"untagged_tasks_per_s",
	"tag_limited_vs_unlimited",
	"runs_per_s",
	"start_latency_p50_ms",
	"start_latency_p99_ms",
	"postgres_input_ceiling_per_s",
	"paused_runs_resumed_per_s",
	"postgres_timer_fire_ceiling_ms",
	"timer_fire_lag_p99_ms",
	"postgres_paused_run_bytes_floor",
	"paused_run_bytes",
}

// envPostgres is the database the suite uses when -pg is not given;
// scripts/with-postgres.sh sets it.
const envPostgres = "BATON_TEST_POSTGRES"

// envReexec marks the suite re-executed under scripts/with-postgres.sh.
const envReexec = "BATON_BENCH_UNDER_WITH_POSTGRES"

type distConfig struct {
	scale       float64
	dir         string
	workers     int
	pg          string   // database URL; empty: $BATON_TEST_POSTGRES, else a throwaway one
	concurrency int      // hidden: --concurrency of every worker (flow runs at once)
	cpuProfile  string   // hidden: CPU profiles FILE (bench), FILE.server, FILE.workerN
	only        []string // hidden: run only these measures
	keep        bool     // hidden: keep the PostgreSQL schemas
}

var distMeasures = []measure{
	{"ceiling", measurePGCeiling},
	{"pgfanout", measurePGFanout},
	{"remote", measureRemote},
	{"slots", measureSlots},
	{"taglimit", measureTagLimit},
	{"runs", measureRuns},
	{"latency", measureLatency},
	{"waitceiling", measureWaitCeiling},
	{"paused", measurePaused},
	{"timers", measureTimers},
}

// clusterMeasures need the server and the workers.
var clusterMeasures = []string{"remote", "slots", "taglimit", "runs", "latency", "paused", "timers"}

// dist is the state of one run of the distributed suite.
type dist struct {
	*bench
	dcfg    distConfig
	modRoot string
	pgURL   string   // the database, without a search_path
	schemas []string // created by the suite, dropped at the end
	prefix  string   // of the schema names
	cl      *cluster
}

// parseDistributed parses the flags of the distributed subcommand. Hidden
// flags for diagnosis: -cpuprofile FILE (the bench process; the server and
// worker I write FILE.server and FILE.workerI), -only a,b (ceiling,
// pgfanout, remote, slots, taglimit, runs, latency, waitceiling, paused, timers), -concurrency N (flow runs per worker)
// and -keep (keep the PostgreSQL schemas).
func parseDistributed(args []string, stderr io.Writer) (distConfig, error) {
	cfg := distConfig{scale: 1, workers: 4, concurrency: 64}
	fs := flag.NewFlagSet("distributed", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Float64Var(&cfg.scale, "scale", cfg.scale, "")
	fs.StringVar(&cfg.dir, "dir", "", "")
	fs.IntVar(&cfg.workers, "workers", cfg.workers, "")
	fs.StringVar(&cfg.pg, "pg", "", "")
	fs.IntVar(&cfg.concurrency, "concurrency", cfg.concurrency, "")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "")
	fs.BoolVar(&cfg.keep, "keep", false, "")
	only := fs.String("only", "", "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "bench distributed: %v\n\n", err)
		}
		fmt.Fprint(stderr, usage)
		return cfg, errUsage
	}
	if fs.NArg() > 0 || cfg.scale <= 0 || cfg.workers < 1 || cfg.concurrency < 1 {
		fmt.Fprintf(stderr, "bench distributed: -scale must be > 0, -workers >= 1, and no arguments are taken\n\n%s", usage)
		return cfg, errUsage
	}
	if *only != "" {
		cfg.only = strings.Split(*only, ",")
		for _, m := range cfg.only {
			if !slices.ContainsFunc(distMeasures, func(d measure) bool { return d.name == m }) {
				fmt.Fprintf(stderr, "bench distributed: unknown measure %q in -only\n\n%s", m, usage)
				return cfg, errUsage
			}
		}
	}
	return cfg, nil
}

func (d *dist) wants(name string) bool {
	return len(d.dcfg.only) == 0 || slices.Contains(d.dcfg.only, name)
}

// runDistributed runs the distributed suite and prints its figures on
// stdout at the end. args are the subcommand's arguments, passed on when the
// suite re-executes itself under scripts/with-postgres.sh.
func runDistributed(ctx context.Context, cfg distConfig, args []string, stdout, stderr io.Writer) (err error) {
	modRoot, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if cfg.pg == "" {
		cfg.pg = os.Getenv(envPostgres)
	}
	if cfg.pg == "" {
		if os.Getenv(envReexec) != "" {
			return fmt.Errorf("%s is not set under scripts/with-postgres.sh", envPostgres)
		}
		return reexecWithPostgres(ctx, modRoot, args, stdout, stderr)
	}

	d := &dist{bench: &bench{cfg: localConfig{scale: cfg.scale}, log: stderr, figures: map[string]string{}, values: map[string]float64{}},
		dcfg: cfg, modRoot: modRoot, pgURL: cfg.pg, prefix: fmt.Sprintf("bench_%x", time.Now().UnixNano())}
	d.bench.dist = d
	if d.dir = cfg.dir; d.dir == "" {
		if d.dir, err = os.MkdirTemp("", "baton-bench-dist-"); err != nil {
			return err
		}
		defer os.RemoveAll(d.dir)
	} else if err = os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if d.dir, err = filepath.Abs(d.dir); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
		if cfg.cpuProfile, err = filepath.Abs(cfg.cpuProfile); err != nil {
			return err
		}
		d.dcfg.cpuProfile = cfg.cpuProfile
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	defer d.dropSchemas()

	d.figures["go_version"] = runtime.Version()
	d.report("cpus", float64(runtime.NumCPU()), 0)
	d.report("workers", float64(cfg.workers), 0)
	d.progress("distributed suite, scale %g, %d workers, %d CPUs, %s, work dir %s, database %s",
		cfg.scale, cfg.workers, runtime.NumCPU(), runtime.Version(), d.dir, redact(cfg.pg))
	start := time.Now()

	if slices.ContainsFunc(clusterMeasures, d.wants) {
		// Build first: a compile error should not wait for the other measures.
		t0 := time.Now()
		if err := d.build(ctx); err != nil {
			return err
		}
		d.progress("built the server and the bench program in %s", time.Since(t0).Round(time.Millisecond))
	}
	for _, m := range distMeasures {
		if !d.wants(m.name) {
			continue
		}
		if slices.Contains(clusterMeasures, m.name) && d.cl == nil {
			t0 := time.Now()
			if err := d.startCluster(ctx); err != nil {
				d.stopCluster(true)
				return fmt.Errorf("start the cluster: %w", err)
			}
			defer d.stopCluster(false)
			d.progress("server and %d workers up in %s", cfg.workers, time.Since(t0).Round(time.Millisecond))
		}
		t0 := time.Now()
		mctx, cancel := context.WithTimeout(ctx, measureTimeout)
		err := m.run(mctx, d.bench)
		cancel()
		if err != nil {
			if d.cl != nil {
				d.stopCluster(true)
				d.cl.tailLogs(d.log)
			}
			return fmt.Errorf("%s: %w", m.name, err)
		}
		d.progress("%s done in %s", m.name, time.Since(t0).Round(time.Millisecond))
	}
	if d.cl != nil {
		if err := d.stopCluster(false); err != nil {
			return err
		}
	}
	d.progress("suite done in %s", time.Since(start).Round(time.Millisecond))
	for _, k := range distKeys {
		if v, ok := d.figures[k]; ok {
			fmt.Fprintf(stdout, "%s=%s\n", k, v)
		}
	}
	return nil
}

func distOf(b *bench) *dist { return b.dist }

// moduleRoot returns the directory of the Baton module, where the suite
// builds its binaries and finds scripts/with-postgres.sh.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD (the distributed suite needs the go command): %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run the distributed suite from within the Baton module (it builds cmd/baton)")
	}
	return filepath.Dir(mod), nil
}

// reexecWithPostgres runs this suite again under scripts/with-postgres.sh,
// which starts a throwaway PostgreSQL and sets BATON_TEST_POSTGRES.
func reexecWithPostgres(ctx context.Context, modRoot string, args []string, stdout, stderr io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	script := filepath.Join(modRoot, "scripts", "with-postgres.sh")
	fmt.Fprintf(stderr, "bench: %s is not set: re-running under %s\n", envPostgres, script)
	cmd := exec.Command("bash", append([]string{script, exe, "distributed"}, args...)...)
	cmd.Env = append(os.Environ(), envReexec+"=1")
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// Its own process group: on interrupt the whole group gets SIGTERM, so
	// the suite stops its children and the script then stops PostgreSQL.
	cmd.SysProcAttr = groupAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		signalGroup(cmd.Process, false)
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			signalGroup(cmd.Process, true)
			err = <-done
		}
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		return errUsage
	}
	if err != nil {
		return fmt.Errorf("under with-postgres.sh: %w", err)
	}
	return nil
}

// redact hides a password in a database URL.
func redact(db string) string {
	u, err := neturl.Parse(db)
	if err != nil || u.User == nil {
		return db
	}
	if _, ok := u.User.Password(); ok {
		u.User = neturl.UserPassword(u.User.Username(), "xxx")
	}
	return u.String()
}

// schemaURL returns the database URL with search_path set to schema.
func schemaURL(db, schema string) (string, error) {
	if !strings.Contains(db, "://") { // key=value connection string
		return db + " search_path=" + schema, nil
	}
	u, err := neturl.Parse(db)
	if err != nil {
		return "", fmt.Errorf("parse the database URL: %w", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// newSchema creates a fresh schema for the named measure and returns the
// database URL that uses it, so every measure starts on empty tables.
func (d *dist) newSchema(ctx context.Context, name string) (string, error) {
	schema := d.prefix + "_" + name
	conn, err := pgx.Connect(ctx, d.pgURL)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, pgtest.SharedExtensionsSQL); err != nil {
		return "", fmt.Errorf("create extensions: %w", err)
	}
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		return "", fmt.Errorf("create schema %s: %w", schema, err)
	}
	d.schemas = append(d.schemas, schema)
	return schemaURL(d.pgURL, schema)
}

func (d *dist) dropSchemas() {
	if len(d.schemas) == 0 {
		return
	}
	if d.dcfg.keep {
		d.progress("kept the PostgreSQL schemas %s", strings.Join(d.schemas, ", "))
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.pgURL)
	if err != nil {
		d.progress("WARNING: could not drop the schemas %s: %v", strings.Join(d.schemas, ", "), err)
		return
	}
	defer conn.Close(ctx)
	for _, s := range d.schemas {
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{s}.Sanitize()+" CASCADE"); err != nil {
			d.progress("WARNING: drop schema %s: %v", s, err)
		}
	}
}

// measurePGCeiling is the local suite's ceiling on the PostgreSQL store.
func measurePGCeiling(ctx context.Context, b *bench) error {
	d := distOf(b)
	url, err := d.newSchema(ctx, "ceiling")
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	return writeCeiling(ctx, b, st, "postgres ceiling", "postgres_ceiling_tasks_per_s")
}

// measurePGFanout is the local suite's fan-out with the PostgreSQL store: the
// in-process engine, built from its parts since baton.Open only opens SQLite.
func measurePGFanout(ctx context.Context, b *bench) error {
	d := distOf(b)
	url, err := d.newSchema(ctx, "fanout")
	if err != nil {
		return err
	}
	dir, err := b.storeDir("pgfanout")
	if err != nil {
		return err
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		return err
	}
	defer st.Close()
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	eng, err := engine.New(engine.Config{Store: st, Blobs: blobs, LogOutput: io.Discard})
	if err != nil {
		return err
	}
	defer eng.Close()
	defs := progcmd.ProgramOf("", mapFlow).Flows
	n := b.n(fanoutItems)
	params, _ := json.Marshal(n)
	t0 := time.Now()
	out, err := eng.Start(ctx, defs[0], params)
	dur := time.Since(t0)
	if err != nil {
		return err
	}
	if out.Run.State != store.RunCompleted {
		return fmt.Errorf("run %s ended %s: %v", out.Run.ID, out.Run.State, out.Err)
	}
	if got, ok := out.Result.(int); ok && got != n {
		return fmt.Errorf("run %s returned %d, want %d", out.Run.ID, got, n)
	}
	if err := eng.Close(); err != nil {
		return err
	}
	rate := float64(n) / dur.Seconds()
	b.progress("pgfanout: %d items in %s: %.0f tasks/s", n, dur.Round(time.Millisecond), rate)
	b.report("local_pg_fanout_tasks_per_s", rate, 0)
	return st.Close()
}

// --- the cluster: one server and the workers, as processes ---

type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when the process has exited
	err  error
}

type cluster struct {
	dir     string
	procs   []*proc
	url     string
	db      string // the server's database URL (its schema)
	cl      *client.Client
	stopped bool
	waiters []*proc // the workers of the queue waits, started by the first wait measure
}

// build compiles the server (cmd/baton) and the bench program into the work
// directory. When profiling, cmd/baton is built with an overlay that adds the
// benchprof package's file to it (see bench/internal/benchprof).
func (d *dist) build(ctx context.Context) error {
	bin := filepath.Join(d.dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	goBuild := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build"}, args...)...)
		cmd.Dir = d.modRoot
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", strings.Join(args, " "), err, out.String())
		}
		return nil
	}
	if d.dcfg.cpuProfile == "" {
		return goBuild("-o", bin+string(filepath.Separator), "./cmd/baton", "./bench/internal/benchprog")
	}
	src, err := os.ReadFile(filepath.Join(d.modRoot, "bench", "internal", "benchprof", "benchprof.go"))
	if err != nil {
		return err
	}
	src = bytes.Replace(src, []byte("\npackage benchprof\n"), []byte("\npackage main\n"), 1)
	file := filepath.Join(bin, "zz_benchprof.go")
	if err := os.WriteFile(file, src, 0o644); err != nil {
		return err
	}
	overlay, _ := json.Marshal(map[string]any{"Replace": map[string]string{
		filepath.Join(d.modRoot, "cmd", "baton", "zz_benchprof.go"): file}})
	overlayFile := filepath.Join(bin, "overlay.json")
	if err := os.WriteFile(overlayFile, overlay, 0o644); err != nil {
		return err
	}
	if err := goBuild("-overlay", overlayFile, "-o", filepath.Join(bin, "baton"), "./cmd/baton"); err != nil {
		return err
	}
	return goBuild("-o", bin+string(filepath.Separator), "./bench/internal/benchprog")
}

// start starts a child process with its output in the work directory.
func (c *cluster) start(name, bin string, env []string, args ...string) (*proc, error) {
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = childAttr()
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return p, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startCluster starts the server on a fresh schema and the workers, and
// waits until every worker is registered.
func (d *dist) startCluster(ctx context.Context) error {
	url, err := d.newSchema(ctx, "dist")
	if err != nil {
		return err
	}
	c := &cluster{dir: filepath.Join(d.dir, "cluster"), db: url}
	d.cl = c
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return err
	}
	home := filepath.Join(c.dir, "home")
	base := []string{"BATON_HOME=" + home, "BATON_DB=", "BATON_SERVER="}
	bin := filepath.Join(d.dir, "bin")
	profEnv := func(name string) []string {
		if d.dcfg.cpuProfile == "" {
			return []string{"BENCH_CPUPROFILE="}
		}
		return []string{"BENCH_CPUPROFILE=" + d.profile(name)}
	}
	server := filepath.Join(bin, "baton")
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	if _, err := c.start("server", server, append(slices.Clone(base), profEnv("server")...),
		"server", "--addr", addr, "--db", url, "--lease-timeout", leaseTimeout, "--retention", "0",
		"--blobs", filepath.Join(c.dir, "blobs")); err != nil {
		return err
	}
	c.url = "http://" + addr
	if c.cl, err = client.New(c.url); err != nil {
		return err
	}
	if err := c.waitFor(ctx, "the server to answer", func(ctx context.Context) (bool, error) {
		_, err := c.cl.Queues(ctx)
		return err == nil, nil
	}); err != nil {
		return err
	}
	prog := filepath.Join(bin, "benchprog")
	for i := range d.dcfg.workers {
		name := fmt.Sprintf("worker%d", i)
		if _, err := c.start(name, prog, append(slices.Clone(base), profEnv(name)...),
			"worker", "--server", c.url, "--queue", apitype.DefaultQueue,
			"--concurrency", strconv.Itoa(d.dcfg.concurrency),
			"--slots", fmt.Sprintf("%s=%d", benchQueue, remoteSlots), "--name", "bench-"+name); err != nil {
			return err
		}
	}
	return c.waitFor(ctx, fmt.Sprintf("%d workers to register", d.dcfg.workers), func(ctx context.Context) (bool, error) {
		ws, err := c.cl.Workers(ctx)
		return err == nil && len(ws) >= d.dcfg.workers, nil
	})
}

// waitFor polls cond until it holds, for up to a minute, failing early when
// any child process exits.
func (c *cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	deadline := time.Now().Add(time.Minute)
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if err := c.exited(); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out waiting for %s", what)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// exited returns an error when a child process has exited.
func (c *cluster) exited() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited (%v); its log: %s", p.name, p.err, p.log)
		default:
		}
	}
	return nil
}

// stopCluster stops the workers, then the server: SIGTERM, then SIGKILL
// after a grace period (short when fast, after a failure). Safe to call
// twice.
func (d *dist) stopCluster(fast bool) error {
	c := d.cl
	if c == nil || c.stopped {
		return nil
	}
	c.stopped = true
	grace := 20 * time.Second
	if fast {
		grace = 3 * time.Second
	}
	if d.dcfg.cpuProfile != "" {
		d.stopProfiles()
	}
	var workers, servers []*proc
	for _, p := range c.procs {
		if p.name == "server" {
			servers = append(servers, p)
		} else {
			workers = append(workers, p)
		}
	}
	var errs []error
	for _, group := range [][]*proc{workers, servers} {
		for _, p := range group {
			terminate(p.cmd.Process)
		}
		deadline := time.After(grace)
		for _, p := range group {
			select {
			case <-p.done:
			case <-deadline:
			}
			select {
			case <-p.done:
			default:
				_ = p.cmd.Process.Kill()
				<-p.done
				errs = append(errs, fmt.Errorf("%s did not stop within %s and was killed; its log: %s", p.name, grace, p.log))
			}
		}
	}
	if !fast {
		d.progress("stopped the server and the workers")
	}
	return errors.Join(errs...)
}

// profile is the CPU profile file of the named child process.
func (d *dist) profile(name string) string { return d.dcfg.cpuProfile + "." + name }

// stopProfiles asks every child to stop its CPU profile and waits until
// each has written it (see bench/internal/benchprof).
func (d *dist) stopProfiles() {
	for _, p := range d.cl.procs {
		stopProfile(p.cmd.Process)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range d.cl.procs {
		for {
			if _, err := os.Stat(d.profile(p.name) + ".done"); err == nil {
				os.Remove(d.profile(p.name) + ".done")
				d.progress("wrote the CPU profile of %s to %s", p.name, d.profile(p.name))
				break
			}
			if time.Now().After(deadline) {
				d.progress("WARNING: %s wrote no CPU profile", p.name)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// tailLogs prints the end of every child's log.
func (c *cluster) tailLogs(w io.Writer) {
	for _, p := range c.procs {
		data, err := os.ReadFile(p.log)
		if err != nil {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		lines = lines[max(0, len(lines)-15):]
		fmt.Fprintf(w, "--- last lines of %s (%s) ---\n%s\n", p.name, p.log, strings.Join(lines, "\n"))
	}
}

// --- the cluster's measures ---

// busyStates are the states of runs that are not finished.
// PAUSED first: a run moves from it back to SCHEDULED (a wait resolved),
// and the states are read one query at a time, so a later query must not
// be of a state a run leaves for an earlier one.
var busyStates = []store.RunState{store.RunPaused, store.RunScheduled, store.RunPending, store.RunRunning, store.RunCancelling}

// waitRuns waits until no run of flow is unfinished, then checks that want
// runs COMPLETED and none ended otherwise, and returns the completed runs
// (at most listLimit, newest first) and the latest end time among them.
func (d *dist) waitRuns(ctx context.Context, flow string, want int) ([]apitype.Run, time.Time, error) {
	c := d.cl
	t0 := time.Now()
	next := t0.Add(5 * time.Second)
	idle := 0 // polls in a row that saw no busy run: two, since a run may still slip between the queries when it pauses again
	for {
		busy := ""
		for _, st := range busyStates {
			runs, err := c.cl.ListRuns(ctx, client.ListRunsParams{Flow: flow, State: string(st), Limit: 1})
			if err != nil {
				return nil, time.Time{}, fmt.Errorf("list runs: %w", err)
			}
			if len(runs) > 0 {
				busy = string(st)
				break
			}
		}
		if busy == "" {
			if idle++; idle == 2 {
				break
			}
		} else {
			idle = 0
		}
		if err := c.exited(); err != nil {
			return nil, time.Time{}, err
		}
		if time.Now().After(next) {
			d.progress("  ... waiting for the %s runs (some %s) for %s", flow, busy, time.Since(t0).Round(time.Second))
			next = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return nil, time.Time{}, ctx.Err()
		case <-time.After(25 * time.Millisecond):
		}
	}
	for _, st := range []store.RunState{store.RunFailed, store.RunCancelled, store.RunCrashed} {
		runs, err := c.cl.ListRuns(ctx, client.ListRunsParams{Flow: flow, State: string(st), Limit: 3})
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("list runs: %w", err)
		}
		if len(runs) > 0 {
			msg := ""
			if runs[0].Error != nil {
				msg = runs[0].Error.Message
			}
			return nil, time.Time{}, fmt.Errorf("run %s of %s ended %s: %s", runs[0].ID, flow, st, msg)
		}
	}
	runs, err := c.cl.ListRuns(ctx, client.ListRunsParams{Flow: flow, State: string(store.RunCompleted), Limit: min(listLimit, max(want, 1))})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("list runs: %w", err)
	}
	if want <= listLimit && len(runs) != want {
		return nil, time.Time{}, fmt.Errorf("%d runs of %s COMPLETED, want %d", len(runs), flow, want)
	}
	var last time.Time
	for _, r := range runs {
		if r.EndedAt == nil {
			return nil, time.Time{}, fmt.Errorf("run %s is COMPLETED without an end time", r.ID)
		}
		if r.EndedAt.After(last) {
			last = *r.EndedAt
		}
	}
	return runs, last, nil
}

// timeMap creates one run of flow (a map over n items, returning n) and
// returns the time from its creation until it COMPLETED.
func (d *dist) timeMap(ctx context.Context, cl *client.Client, flow string, n int) (time.Duration, error) {
	params, _ := json.Marshal(map[string]int{"n": n})
	t0 := time.Now()
	run, _, err := cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: flow, Parameters: params})
	if err != nil {
		return 0, fmt.Errorf("create run: %w", err)
	}
	runs, end, err := d.waitRuns(ctx, flow, 1)
	if err != nil {
		return 0, err
	}
	if got := strings.TrimSpace(string(runs[0].Result)); got != strconv.Itoa(n) {
		return 0, fmt.Errorf("run %s returned %s, want %d", run.ID, got, n)
	}
	return end.Sub(t0), nil
}

// measureRemote runs one flow that maps the distributed no-op task over many
// items; every worker serves its queue.
func measureRemote(ctx context.Context, b *bench) error {
	d := distOf(b)
	n := b.n(remoteItems)
	dur, err := d.timeMap(ctx, d.cl.cl, flowRemote, n)
	if err != nil {
		return err
	}
	rate := float64(n) / dur.Seconds()
	b.progress("remote: %d distributed task runs on %d workers in %s: %.0f tasks/s", n, d.dcfg.workers, dur.Round(time.Millisecond), rate)
	b.report("remote_tasks_per_s", rate, 0)
	return nil
}

// measureSlots measures how well claims keep a realistic number of slots
// busy: slotWorkers extra workers serve the queue slots with slotsPerWorker
// slots each, and one run (its flow on the regular workers) maps a task that
// sleeps slotTask over slotItems items. The figure is the achieved rate over
// the ideal one (every slot always busy); the extra workers stop afterwards.
func measureSlots(ctx context.Context, b *bench) error {
	d := distOf(b)
	c := d.cl
	var extra []*proc
	defer func() {
		for _, p := range extra {
			terminate(p.cmd.Process)
		}
		for _, p := range extra {
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		c.procs = slices.DeleteFunc(c.procs, func(p *proc) bool { return slices.Contains(extra, p) })
	}()
	bin := filepath.Join(d.dir, "bin")
	base := []string{"BATON_HOME=" + filepath.Join(c.dir, "home"), "BATON_DB=", "BATON_SERVER=", "BENCH_CPUPROFILE="}
	for i := range slotWorkers {
		name := fmt.Sprintf("slotworker%d", i)
		p, err := c.start(name, filepath.Join(bin, "benchprog"), base,
			"worker", "--server", c.url, "--queue", slotsQueue, "--concurrency", "1",
			"--slots", fmt.Sprintf("%s=%d", slotsQueue, slotsPerWorker), "--name", "bench-"+name)
		if err != nil {
			return err
		}
		extra = append(extra, p)
	}
	want := d.dcfg.workers + slotWorkers
	if err := c.waitFor(ctx, fmt.Sprintf("%d slot workers to register", slotWorkers), func(ctx context.Context) (bool, error) {
		ws, err := c.cl.Workers(ctx)
		return err == nil && len(ws) >= want, nil
	}); err != nil {
		return err
	}
	n := b.n(slotItems)
	dur, err := d.timeMap(ctx, c.cl, flowSlots, n)
	if err != nil {
		return err
	}
	rate := float64(n) / dur.Seconds()
	ideal := float64(slotWorkers*slotsPerWorker) / slotTask.Seconds()
	b.progress("slots: %d task runs of %s on %d workers x %d slots in %s: %.0f tasks/s, ideal %.0f/s",
		n, slotTask, slotWorkers, slotsPerWorker, dur.Round(time.Millisecond), rate, ideal)
	b.report("remote_slot_efficiency", rate/ideal, 3)
	return nil
}

// measureTagLimit measures what a tag concurrency limit costs: tagWorkers
// extra workers of slotsPerWorker slots each (more slots in all than the
// limit) serve the queue tagged, and three maps of tagItems no-op task runs
// run one after the other: of a task tagged bench-tag under a limit of
// tagLimit, of the same task with no limit on the tag, and of an untagged
// task (the claim path without slots).
func measureTagLimit(ctx context.Context, b *bench) error {
	d := distOf(b)
	c := d.cl
	var extra []*proc
	defer func() {
		for _, p := range extra {
			terminate(p.cmd.Process)
		}
		for _, p := range extra {
			select {
			case <-p.done:
			case <-time.After(20 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.done
			}
		}
		c.procs = slices.DeleteFunc(c.procs, func(p *proc) bool { return slices.Contains(extra, p) })
	}()
	bin := filepath.Join(d.dir, "bin")
	base := []string{"BATON_HOME=" + filepath.Join(c.dir, "home"), "BATON_DB=", "BATON_SERVER=", "BENCH_CPUPROFILE="}
	for i := range tagWorkers {
		name := fmt.Sprintf("tagworker%d", i)
		p, err := c.start(name, filepath.Join(bin, "benchprog"), base,
			"worker", "--server", c.url, "--queue", tagQueue, "--concurrency", "1",
			"--slots", fmt.Sprintf("%s=%d", tagQueue, slotsPerWorker), "--name", "bench-"+name)
		if err != nil {
			return err
		}
		extra = append(extra, p)
	}
	want := d.dcfg.workers + tagWorkers
	if err := c.waitFor(ctx, fmt.Sprintf("%d tag workers to register", tagWorkers), func(ctx context.Context) (bool, error) {
		ws, err := c.cl.Workers(ctx)
		return err == nil && len(ws) >= want, nil
	}); err != nil {
		return err
	}
	n := b.n(tagItems)
	rate := func(what, flow string) (float64, error) {
		dur, err := d.timeMap(ctx, c.cl, flow, n)
		if err != nil {
			return 0, err
		}
		r := float64(n) / dur.Seconds()
		b.progress("taglimit: %d task runs %s on %d workers x %d slots in %s: %.0f tasks/s",
			n, what, tagWorkers, slotsPerWorker, dur.Round(time.Millisecond), r)
		return r, nil
	}
	if _, err := c.cl.SetLimit(ctx, benchTag, tagLimit); err != nil {
		return fmt.Errorf("set the limit: %w", err)
	}
	limited, err := rate(fmt.Sprintf("tagged %s, limit %d", benchTag, tagLimit), flowTag)
	if err != nil {
		return err
	}
	if err := c.cl.DeleteLimit(ctx, benchTag); err != nil {
		return fmt.Errorf("delete the limit: %w", err)
	}
	unlimited, err := rate(fmt.Sprintf("tagged %s, no limit", benchTag), flowTagFree)
	if err != nil {
		return err
	}
	untagged, err := rate("untagged", flowTagless)
	if err != nil {
		return err
	}
	b.report("tag_limited_tasks_per_s", limited, 0)
	b.report("tag_unlimited_tasks_per_s", unlimited, 0)
	b.report("untagged_tasks_per_s", untagged, 0)
	b.report("tag_limited_vs_unlimited", limited/unlimited, 3)
	return nil
}

// measureRuns creates many small runs through the API, concurrently, and
// waits for the workers to complete them.
func measureRuns(ctx context.Context, b *bench) error {
	d := distOf(b)
	n := b.n(smallRuns)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		next    = make(chan int)
		created int
	)
	t0 := time.Now()
	for range min(smallCreators, n) {
		wg.Go(func() {
			for range next {
				if _, _, err := d.cl.cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: flowSmall}); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	createDur := time.Since(t0)
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d creations failed; first: %w", len(errs), n, errs[0])
	}
	b.progress("runs: created %d runs in %s (%.0f creations/s)", created, createDur.Round(time.Millisecond), float64(n)/createDur.Seconds())
	_, end, err := d.waitRuns(ctx, flowSmall, n)
	if err != nil {
		return err
	}
	dur := end.Sub(t0)
	rate := float64(n) / dur.Seconds()
	b.progress("runs: %d runs of 5 tasks completed in %s: %.0f runs/s", n, dur.Round(time.Millisecond), rate)
	b.report("runs_per_s", rate, 0)
	return nil
}

// measureLatency creates runs at a steady rate and measures, for each, the
// time from sending the create request to the flow code starting (the flow
// returns time.Now() from its first line).
func measureLatency(ctx context.Context, b *bench) error {
	d := distOf(b)
	n := b.n(latencyRuns)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		sent = make(map[string]time.Time, n)
		errs []error
	)
	tick := time.NewTicker(time.Second / latencyRate)
	defer tick.Stop()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		wg.Go(func() {
			at := time.Now()
			run, _, err := d.cl.cl.CreateRun(ctx, apitype.CreateRunRequest{Flow: flowLatency})
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			sent[run.ID] = at
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("%d of %d creations failed; first: %w", len(errs), n, errs[0])
	}
	b.progress("latency: created %d runs in %s (%.0f/s)", n, time.Since(t0).Round(time.Millisecond), float64(n)/time.Since(t0).Seconds())
	runs, _, err := d.waitRuns(ctx, flowLatency, n)
	if err != nil {
		return err
	}
	lat := make([]float64, 0, len(runs))
	for _, r := range runs {
		at, ok := sent[r.ID]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(r.Result, &s); err != nil {
			return fmt.Errorf("run %s result %s: %w", r.ID, r.Result, err)
		}
		started, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("run %s result %s: %w", r.ID, r.Result, err)
		}
		lat = append(lat, float64(started.Sub(at))/float64(time.Millisecond))
	}
	if len(lat) != n {
		return fmt.Errorf("found %d of the %d runs created", len(lat), n)
	}
	slices.Sort(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	b.progress("latency: %d runs at %d/s: create -> flow start p50 %.2f ms, p99 %.2f ms, max %.2f ms",
		n, latencyRate, p50, p99, lat[len(lat)-1])
	// A start cannot take 0 ms; keep 3 decimals so that a fast one stays positive.
	b.report("start_latency_p50_ms", p50, 3)
	b.report("start_latency_p99_ms", p99, 3)
	return nil
}

// percentile returns the nearest-rank p-quantile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}
