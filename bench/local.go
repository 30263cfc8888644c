package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// Item counts at -scale 1.
const (
	ceilingRows    = 100_000
	fanoutItems    = 100_000
	seqCalls       = 10_000
	replayItems    = 100_000
	map1MItems     = 1_000_000
	roundtripCalls = 100_000
)

// localKeys are the figures the local suite prints, in order.
var localKeys = []string{
	"go_version",
	"cpus",
	"sqlite_ceiling_tasks_per_s",
	"fanout_tasks_per_s",
	"fanout_ratio_to_ceiling",
	"seq_overhead_us",
	"sqlite_commit_floor_us",
	"seq_ratio_to_commit_floor",
	"replay_ms_100k",
	"roundtrip_us_1kb",
	"map_1m_tasks_per_s",
	"peak_rss_mb_1m",
	"scheduler_runs_per_s",
	"scheduler_lag_p99_ms",
	"scheduler_pass_ms",
	"graph_ms_100k",
	"graph_bytes_100k",
	"graph_items_last_page_ms_100k",
	"run_page_ms_100k",
	"run_page_bytes_100k",
}

type localConfig struct {
	scale      float64
	dir        string   // work directory; empty: a temporary one
	cpuProfile string   // hidden: CPU profile of the run
	only       []string // hidden: run only these measures
	exe        string   // binary re-executed for the child; empty: os.Executable
}

// measure is one named benchmark of the local suite.
type measure struct {
	name string
	run  func(ctx context.Context, b *bench) error
}

var localMeasures = []measure{
	{"ceiling", measureCeiling},
	{"fanout", measureFanout},
	{"seq", measureSeq},
	{"replay", measureReplay},
	{"roundtrip", measureRoundtrip},
	{"map1m", measureMap1M},
	{"scheduler", measureScheduler},
	{"graph", measureGraph}, // graph.go
}

// bench is the state of one run of the suite.
type bench struct {
	cfg     localConfig
	dir     string
	log     io.Writer
	figures map[string]string
	values  map[string]float64
	dist    *dist // the distributed suite's state; nil in the local suite
}

// n scales an item count, keeping at least one item.
func (b *bench) n(base int) int { return scaled(base, b.cfg.scale) }

func scaled(base int, scale float64) int { return max(1, int(math.Round(float64(base)*scale))) }

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// report records a figure printed with the given number of decimals.
func (b *bench) report(name string, v float64, decimals int) {
	b.values[name] = v
	b.figures[name] = strconv.FormatFloat(v, 'f', decimals, 64)
}

// storeDir returns an empty directory for a fresh store of the named measure.
func (b *bench) storeDir(name string) (string, error) {
	d := filepath.Join(b.dir, name)
	if err := os.RemoveAll(d); err != nil {
		return "", err
	}
	return d, os.MkdirAll(d, 0o755)
}

// openRuntime opens a Baton runtime on dir/baton.db.
func openRuntime(ctx context.Context, dir string) (*baton.Runtime, error) {
	return baton.Open(ctx, baton.Config{DB: filepath.Join(dir, "baton.db"), LogOutput: io.Discard})
}

// runLocal runs the local suite and prints its figures on stdout at the end.
func runLocal(ctx context.Context, cfg localConfig, stdout, stderr io.Writer) (err error) {
	b := &bench{cfg: cfg, log: stderr, figures: map[string]string{}, values: map[string]float64{}}
	if b.dir = cfg.dir; b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "baton-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(b.dir)
	} else if err = os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	if cfg.cpuProfile != "" {
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
	b.figures["go_version"] = runtime.Version()
	b.report("cpus", float64(runtime.NumCPU()), 0)
	b.progress("local suite, scale %g, %d CPUs, %s, work dir %s", cfg.scale, runtime.NumCPU(), runtime.Version(), b.dir)
	start := time.Now()
	for _, m := range localMeasures {
		if len(cfg.only) > 0 && !slices.Contains(cfg.only, m.name) {
			continue
		}
		t0 := time.Now()
		if err := m.run(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", m.name, err)
		}
		b.progress("%s done in %s", m.name, time.Since(t0).Round(time.Millisecond))
	}
	if c, f := b.values["sqlite_ceiling_tasks_per_s"], b.values["fanout_tasks_per_s"]; c > 0 && f > 0 {
		b.report("fanout_ratio_to_ceiling", f/c, 2)
	}
	if floor, seq := b.values["sqlite_commit_floor_us"], b.values["seq_overhead_us"]; floor > 0 && seq > 0 {
		b.report("seq_ratio_to_commit_floor", seq/floor, 2)
	}
	b.progress("suite done in %s", time.Since(start).Round(time.Millisecond))
	for _, k := range localKeys {
		if v, ok := b.figures[k]; ok {
			fmt.Fprintf(stdout, "%s=%s\n", k, v)
		}
	}
	return nil
}

// measureCeiling writes, straight through store.BatchWrite, what the
// engine writes at the least for each task run of a fan-out: its one final
// row (COMPLETED, as the engine records it), in the engine's largest
// batches.
func measureCeiling(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("ceiling")
	if err != nil {
		return err
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	return writeCeiling(ctx, b, st, "ceiling", "sqlite_ceiling_tasks_per_s")
}

// finalRow returns the row the engine records for a no-op task run of run
// that completed: the one write of a task run whose start and end land in
// the same commit (the writer coalesces them).
func finalRow(runID string, i int, now time.Time) store.TaskRun {
	in := json.RawMessage(strconv.Itoa(i))
	return store.TaskRun{
		ID: engine.NewID(), RunID: runID, Key: "bench.noop/0." + strconv.Itoa(i), Task: "bench.noop",
		Identity: engine.Hash([]byte("bench.noop/"+strconv.Itoa(i))) + ".0", State: store.TaskCompleted,
		Attempts: 1, FlowAttempt: 1, InputHash: engine.Hash(in), Input: in, Result: in,
		CreatedAt: now, StartedAt: now, EndedAt: now,
		History: []store.Transition{
			{At: now, To: string(store.TaskRunning), Cause: "engine", Message: "attempt 1"},
			{At: now, From: string(store.TaskRunning), To: string(store.TaskCompleted), Cause: "engine"},
		},
	}
}

// writeCeiling times the ceiling's row writes on st (each task run's final
// row, in batches of engine.MaxBatchRows) and reports the rate as the
// figure key.
func writeCeiling(ctx context.Context, b *bench, st store.Store, label, key string) error {
	n, size := b.n(ceilingRows), min(engine.MaxBatchRows, b.n(ceilingRows))
	runID := engine.NewID()
	now := time.Now()
	rows := make([]store.TaskRun, n)
	for i := range rows {
		rows[i] = finalRow(runID, i, now)
	}
	t0 := time.Now()
	for lo := 0; lo < n; lo += size {
		if err := st.BatchWrite(ctx, store.Batch{TaskRuns: rows[lo:min(lo+size, n)]}); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	d := time.Since(t0)
	rate := float64(n) / d.Seconds()
	b.progress("%s: %d final task-run rows in batches of %d in %s: %.0f task runs/s",
		label, n, size, d.Round(time.Millisecond), rate)
	b.report(key, rate, 0)
	return nil
}

// commitFloor times n transactions, one after the other, each writing the
// one row a sequential step needs (its final row) to the store in dir,
// and reports the mean in µs.
func commitFloor(ctx context.Context, b *bench, dir string, n int) error {
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	runID := engine.NewID()
	now := time.Now()
	rows := make([]store.TaskRun, n+1)
	for i := range rows {
		rows[i] = finalRow(runID, i, now)
	}
	// The first transaction after opening the store is not timed: the seq
	// flow, too, starts on a store that has written (its run).
	if err := st.BatchWrite(ctx, store.Batch{TaskRuns: rows[n:]}); err != nil {
		return fmt.Errorf("commit floor: %w", err)
	}
	t0 := time.Now()
	for i := range n {
		if err := st.BatchWrite(ctx, store.Batch{TaskRuns: rows[i : i+1]}); err != nil {
			return fmt.Errorf("commit floor: %w", err)
		}
	}
	d := time.Since(t0)
	us := d.Seconds() * 1e6 / float64(n)
	b.progress("seq: %d one-row transactions on the same store in %s: %.1f µs each", n, d.Round(time.Millisecond), us)
	b.report("sqlite_commit_floor_us", us, 1)
	return st.Close()
}

// The benchmark's tasks and flows. Flows take the item count and return it.
var (
	noop = baton.Task("bench.noop", func(_ context.Context, n int) (int, error) { return n, nil })

	mapFlow = baton.Flow("bench.map", func(ctx baton.Context, n int) (int, error) {
		out, err := baton.WaitAll(ctx, noop.Map(ctx, make([]int, n)))
		return len(out), err
	})

	seqFlow = baton.Flow("bench.seq", func(ctx baton.Context, n int) (int, error) {
		for i := range n {
			if _, err := noop.Run(ctx, i); err != nil {
				return i, err
			}
		}
		return n, nil
	})

	// replayCalls counts the calls of replayNoop; replayFail makes
	// replayFlow fail after all its steps completed.
	replayCalls atomic.Int64
	replayFail  atomic.Bool
	replayNoop  = baton.Task("bench.replay-noop", func(_ context.Context, n int) (int, error) {
		replayCalls.Add(1)
		return n, nil
	})
	replayFlow = baton.Flow("bench.replay", func(ctx baton.Context, n int) (int, error) {
		items := make([]int, n)
		for i := range items {
			items[i] = i
		}
		out, err := baton.WaitAll(ctx, replayNoop.Map(ctx, items))
		if err != nil {
			return 0, err
		}
		if replayFail.Load() {
			return 0, errors.New("failing on purpose after all steps completed")
		}
		return len(out), nil
	})
)

// executeMap runs mapFlow over n items on a fresh store in dir and returns
// the wall time of Execute.
func executeMap(ctx context.Context, dir string, n int) (time.Duration, error) {
	rt, err := openRuntime(ctx, dir)
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	t0 := time.Now()
	got, info, err := mapFlow.Execute(ctx, rt, n)
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("run %s: %w", info.ID, err)
	}
	if got != n {
		return d, fmt.Errorf("run %s returned %d, want %d", info.ID, got, n)
	}
	return d, rt.Close()
}

// measureFanout maps the no-op task over many items in one flow.
func measureFanout(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("fanout")
	if err != nil {
		return err
	}
	n := b.n(fanoutItems)
	d, err := executeMap(ctx, dir, n)
	if err != nil {
		return err
	}
	rate := float64(n) / d.Seconds()
	b.progress("fanout: %d items in %s: %.0f tasks/s", n, d.Round(time.Millisecond), rate)
	b.report("fanout_tasks_per_s", rate, 0)
	return nil
}

// measureSeq runs the no-op task many times in a row in one flow.
func measureSeq(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("seq")
	if err != nil {
		return err
	}
	rt, err := openRuntime(ctx, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	n := b.n(seqCalls)
	t0 := time.Now()
	if _, info, err := seqFlow.Execute(ctx, rt, n); err != nil {
		return fmt.Errorf("run %s: %w", info.ID, err)
	}
	d := time.Since(t0)
	us := d.Seconds() * 1e6 / float64(n)
	b.progress("seq: %d sequential Run calls in %s: %.1f µs each", n, d.Round(time.Millisecond), us)
	b.report("seq_overhead_us", us, 1)
	if err := rt.Close(); err != nil {
		return err
	}
	return commitFloor(ctx, b, dir, n)
}

// measureReplay fails a run with many completed steps, then retries it on a
// freshly opened runtime (as `baton retry` would) and times the retry, which
// must answer every step from the journal.
func measureReplay(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("replay")
	if err != nil {
		return err
	}
	n := b.n(replayItems)
	rt, err := openRuntime(ctx, dir)
	if err != nil {
		return err
	}
	defer rt.Close()
	replayFail.Store(true)
	t0 := time.Now()
	_, info, err := replayFlow.Execute(ctx, rt, n)
	if err == nil || info.State != string(store.RunFailed) {
		return fmt.Errorf("first attempt of run %s ended %s (err %v), want FAILED", info.ID, info.State, err)
	}
	b.progress("replay: first attempt ran %d steps then failed in %s", replayCalls.Load(), time.Since(t0).Round(time.Millisecond))
	if err := rt.Close(); err != nil {
		return err
	}

	if rt, err = openRuntime(ctx, dir); err != nil {
		return err
	}
	defer rt.Close()
	replayFail.Store(false)
	replayCalls.Store(0)
	t1 := time.Now()
	got, info2, err := replayFlow.Retry(ctx, rt, info.ID)
	d := time.Since(t1)
	if err != nil {
		return fmt.Errorf("retry of run %s: %w", info.ID, err)
	}
	if got != n || info2.Attempt != 2 {
		return fmt.Errorf("retry of run %s returned %d at attempt %d, want %d at attempt 2", info.ID, got, info2.Attempt, n)
	}
	if calls := replayCalls.Load(); calls != 0 {
		b.progress("WARNING: replay called the task %d times; every step should have come from the journal", calls)
	}
	ms := d.Seconds() * 1e3
	b.progress("replay: retry of %d journaled steps in %s", n, d.Round(time.Millisecond))
	b.report("replay_ms_100k", ms, 1)
	return rt.Close()
}

// roundtripValue is a step's value of about 1 KiB: what the roundtrip
// measure decodes.
type roundtripValue struct {
	Name    string    `json:"name"`
	Epoch   int       `json:"epoch"`
	Weights []float64 `json:"weights"`
}

// measureRoundtrip times what the replay rule adds to every step: the
// task's input and its result reach the task and the flow as decoded from
// their recorded JSON, not as the values in memory. It decodes a 1 KiB
// input and a 1 KiB result into their Go type many times and reports the
// mean per step in µs.
func measureRoundtrip(ctx context.Context, b *bench) error {
	v := roundtripValue{Name: "model", Epoch: 3, Weights: make([]float64, 64)}
	for i := range v.Weights {
		v.Weights[i] = 1.0 / float64(i+3)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	n := b.n(roundtripCalls)
	t0 := time.Now()
	for i := range n {
		if i%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		for range 2 { // the input, then the result
			var out roundtripValue
			if err := json.Unmarshal(raw, &out); err != nil {
				return err
			}
		}
	}
	d := time.Since(t0)
	us := d.Seconds() * 1e6 / float64(n)
	b.progress("roundtrip: %d steps' input and result (%d bytes each) decoded in %s: %.2f µs per step",
		n, len(raw), d.Round(time.Millisecond), us)
	b.report("roundtrip_us_1kb", us, 2)
	return nil
}

// measureMap1M maps over a million items in a child process so that its
// peak memory is its own.
func measureMap1M(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("map1m")
	if err != nil {
		return err
	}
	exe := b.cfg.exe
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return err
		}
	}
	n := b.n(map1MItems)
	args := []string{childMap1M, "-dir", dir, "-n", strconv.Itoa(n)}
	if b.cfg.cpuProfile != "" {
		args = append(args, "-cpuprofile", b.cfg.cpuProfile+".map1m")
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stdout, cmd.Stderr = &out, b.log
	b.progress("map1m: child process mapping %d items", n)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("child process: %w", err)
	}
	res := map[string]float64{}
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				res[k] = f
			}
		}
	}
	if res["seconds"] <= 0 || res["vmhwm_kb"] <= 0 {
		return fmt.Errorf("child process printed no figures: %q", out.String())
	}
	rate, mb := float64(n)/res["seconds"], res["vmhwm_kb"]/1024
	b.progress("map1m: %d items in %.2fs: %.0f tasks/s, peak RSS %.0f MB", n, res["seconds"], rate, mb)
	b.report("map_1m_tasks_per_s", rate, 0)
	b.report("peak_rss_mb_1m", mb, 0)
	return nil
}

// runChildMap is the child side of measureMap1M: it runs the map flow and
// prints its wall time and the process's peak resident memory.
func runChildMap(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(childMap1M, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "store directory")
	n := fs.Int("n", map1MItems, "items")
	cpuProfile := fs.String("cpuprofile", "", "CPU profile file")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *dir == "" {
		return fmt.Errorf("%s: -dir is required", childMap1M)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	d, err := executeMap(ctx, *dir, *n)
	if err != nil {
		return err
	}
	hwm, err := vmHWM()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "seconds=%f\nvmhwm_kb=%d\n", d.Seconds(), hwm)
	return nil
}

// vmHWM returns the peak resident set size of this process in KiB.
func vmHWM() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("read peak memory: %w", err)
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			return strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
		}
	}
	return 0, errors.New("no VmHWM in /proc/self/status")
}
