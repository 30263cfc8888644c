// Package worker is the worker of a user's program: it registers the
// program's flows and tasks with a Baton server, claims flow runs and
// distributed task runs from its queues, executes them with the engine, and
// keeps their leases alive with heartbeats. It talks only to the server API.
package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/remote"
	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/transport"
)

// Config configures a Worker.
type Config struct {
	// Client reaches the server. Required.
	Client *remote.Client
	// Name identifies the worker in listings. Default host-pid.
	Name string
	// Queues the worker serves. Default ["default"].
	Queues []string
	// Concurrency is how many flow runs it executes at once. Default 8.
	Concurrency int
	// Slots bounds the distributed task runs it executes at once, per queue.
	// Queues without an entry get Concurrency slots.
	Slots map[string]int
	// Resources is what the worker has for distributed task runs of tasks
	// that need resources (baton.Resources): it claims one only when its
	// need fits in what is free. Zero: nothing, so it claims none of them
	// (the worker command detects CPUs and memory by default).
	Resources store.Resources
	// Flows and Tasks are what the program defines.
	Flows []*engine.FlowDef
	Tasks []*engine.TaskDef
	// Logger receives the worker's own messages. Default slog.Default().
	Logger *slog.Logger
	// LogOutput receives a printed copy of user log records. Default os.Stderr.
	LogOutput io.Writer
	// OnTaskFailure, when set, is told of every failed attempt of a task run
	// this worker executes (the command line prints one line each).
	OnTaskFailure func(engine.TaskFailure)
	// ShutdownGrace is how long Run waits for work in progress after its
	// context ends, before releasing it to other workers. Default 10s.
	ShutdownGrace time.Duration
	// SuspendGrace is how long a run may wait for nothing but its waits
	// (input, timers, events) before the worker releases it (PAUSED);
	// engine.Config.SuspendGrace, default 1s.
	SuspendGrace time.Duration
	// PausePoll is how often a run's engine reads its run at the flow's
	// step boundaries for a pause requested from outside (runs pause);
	// engine.Config.PausePoll, default 1s.
	PausePoll time.Duration
	// RemoteSuspendGrace is the same for a run that also waits for
	// distributed task runs; engine.Config.RemoteSuspendGrace, default 30s.
	RemoteSuspendGrace time.Duration
	// ReportLinger is how long, after a task run finished, the worker waits
	// for more of its task runs in progress to finish before it reports
	// them (and claims their slots) in one request. Default 2ms.
	ReportLinger time.Duration
	// Clock is the worker's only source of time: the heartbeat interval,
	// the backoff of claims, reports and resends, the shutdown grace, the
	// report linger, the timing of task runs and reports that sizes the
	// prefetch, and its engine's clock. Default the system clock; tests
	// pass a clock.Fake.
	Clock clock.Clock
}

// taskHold is a distributed task run executing here: its cancel and the
// flow attempt that created it.
type taskHold struct {
	cancel  context.CancelCauseFunc
	attempt int
}

// readyTask is a claimed task run waiting in its queue's prefetch buffer.
type readyTask struct {
	tr     store.TaskRun
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// Worker executes runs claimed from a server. Create it with New, then
// Start and Stop it (or Run it until a context ends).
type Worker struct {
	cfg   Config
	log   *slog.Logger
	clk   clock.Clock
	life  startstop.Base
	flows map[string]*engine.FlowDef
	tasks map[string]*engine.TaskDef

	mu       sync.Mutex
	id       string
	hbEvery  time.Duration
	lease    time.Duration                            // the server's lease timeout
	lastBeat time.Time                                // when the server last answered a registration or heartbeat
	runs     map[string]context.CancelCauseFunc       // flow run ID -> cancel
	attempts map[string]int                           // flow run ID -> the attempt executing here
	taskRuns map[string]map[store.TaskRunRef]taskHold // flow run ID -> its task runs here
	held     map[store.TaskRunRef]struct{}            // distributed task runs held, until reported
	running  int
	slotsUse map[string]int
	// Prefetch: claimed task runs waiting for a slot of their queue, and
	// what sizes the buffer (see prefetchLocked).
	ready   map[string][]readyTask
	taskDur map[string]time.Duration // per queue: moving average of a task run's execution
	rtt     time.Duration            // moving average of a report's round trip
	freed   chan struct{}            // capacity freed or a report done: the claim loop looks again
	kick    chan struct{}            // capacity freed: the completer may claim it

	// Claims. Two goroutines claim: the claim loop (long polls) and the
	// completer (its reports claim for the slots they free, without
	// waiting). Each reserves what it asks for until its answer is
	// processed, so together they never ask for more than the worker has.
	claimCtx   context.Context // Run's context: no claims once it ends
	workCtx    context.Context
	eng        *engine.Engine
	gate       sync.RWMutex   // claims in flight hold it shared, a holding report exclusively
	unsure     bool           // a claim's answer may be lost: report holding before the next claim
	claimsOff  bool           // shutting down: no more claims
	polling    bool           // the claim loop has a claim in flight
	resRuns    int            // flow-run slots asked for by claims in flight
	resTasks   map[string]int // task slots per queue asked for by claims in flight
	unreported int            // completions queued or being claimed with: their slots are the completer's to refill
	seq        int64          // of the last claim computed (api.Claim.Seq)

	// Resources (resources.go): what the task runs held here need (from
	// their claim to their end, prefetched ones included), and what claims
	// in flight offered of the rest.
	resUsed, resAsked store.Resources
	needs             bool // some task of the worker needs resources

	completions chan store.TaskRunCompletion
	wg          sync.WaitGroup
}

// New returns a worker for cfg.
func New(cfg Config) (*Worker, error) {
	if cfg.Client == nil {
		return nil, errors.New("worker: Config.Client is required")
	}
	if len(cfg.Queues) == 0 {
		cfg.Queues = []string{apitype.DefaultQueue}
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 8
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.LogOutput == nil {
		cfg.LogOutput = os.Stderr
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.ReportLinger <= 0 {
		cfg.ReportLinger = 2 * time.Millisecond
	}
	cfg.Clock = clock.Or(cfg.Clock)
	host, _ := os.Hostname()
	if cfg.Name == "" {
		cfg.Name = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	slots := map[string]int{}
	for _, q := range cfg.Queues {
		slots[q] = cfg.Concurrency
	}
	for q, n := range cfg.Slots {
		slots[q] = n
	}
	cfg.Slots = slots
	w := &Worker{cfg: cfg, log: cfg.Logger, clk: cfg.Clock, flows: map[string]*engine.FlowDef{}, tasks: map[string]*engine.TaskDef{},
		runs: map[string]context.CancelCauseFunc{}, attempts: map[string]int{},
		taskRuns: map[string]map[store.TaskRunRef]taskHold{},
		held:     map[store.TaskRunRef]struct{}{},
		slotsUse: map[string]int{}, ready: map[string][]readyTask{}, taskDur: map[string]time.Duration{},
		freed: make(chan struct{}, 1), kick: make(chan struct{}, 1),
		resTasks: map[string]int{}}
	// Room for a completion per slot: a finished task never waits for the
	// report of earlier ones before freeing its slot.
	total := 0
	for _, n := range slots {
		total += n
	}
	w.completions = make(chan store.TaskRunCompletion, max(total, 64))
	for _, f := range cfg.Flows {
		w.flows[f.Name] = f
	}
	for _, t := range cfg.Tasks {
		w.tasks[t.Name] = t
		w.needs = w.needs || !t.Policy.Resources.IsZero()
	}
	return w, nil
}

func (w *Worker) register(ctx context.Context) error {
	host, _ := os.Hostname()
	req := api.RegisterWorker{Name: w.cfg.Name, Host: host, PID: os.Getpid(), Queues: w.cfg.Queues,
		Capacity: w.cfg.Concurrency, Slots: w.cfg.Slots}
	w.registerResources(&req)
	for _, f := range w.cfg.Flows {
		fi := api.FlowInfo{Name: f.Name, Defaults: f.Defaults}
		if f.ParamsType != nil {
			fi.Parameters = params.Schema(f.ParamsType)
		}
		req.Flows = append(req.Flows, fi)
	}
	for _, t := range w.cfg.Tasks {
		req.Tasks = append(req.Tasks, t.Name)
	}
	reg, err := w.cfg.Client.RegisterWorker(ctx, req)
	if err != nil {
		return fmt.Errorf("register worker: %w", err)
	}
	w.mu.Lock()
	w.id = reg.ID
	w.hbEvery = api.Duration(reg.HeartbeatIntervalMS)
	w.lease = api.Duration(reg.LeaseTimeoutMS)
	if w.lease <= 0 {
		w.lease = 15 * time.Second
	}
	w.lastBeat = w.clk.Now()
	w.mu.Unlock()
	w.log.Info("worker registered", "id", reg.ID, "name", w.cfg.Name, "queues", w.cfg.Queues,
		"flows", len(req.Flows), "tasks", len(req.Tasks))
	return nil
}

// ID returns the worker's ID once registered.
func (w *Worker) ID() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

// Run starts the worker and stops it when ctx is done (see Start and Stop).
// It returns Start's error, or nil once the worker has stopped.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	w.Stop()
	return nil
}

// Start registers the worker (ctx bounds the registration) and starts
// executing claimed work; it returns once registered. The work goes on
// until Stop. Start of a running worker does nothing; a stopped worker does
// not start again.
func (w *Worker) Start(ctx context.Context) error {
	return w.life.Start(ctx, func(runCtx context.Context) error {
		if err := w.register(ctx); err != nil {
			return err
		}
		// The engine's reads and writes ride out a short outage of the server or
		// its database: they are resent while the worker's leases last.
		es := w.cfg.Client.EngineStore()
		w.mu.Lock()
		es.RetryFor = w.lease
		w.mu.Unlock()
		es.LeaseValid = w.leaseValid
		es.Clock = w.clk
		eng, err := engine.New(engine.Config{
			Store: es, Blobs: es, LogOutput: w.cfg.LogOutput, Clock: w.clk,
			Distributed: true, Worker: w.ID(), OnTaskFailure: w.cfg.OnTaskFailure, SuspendGrace: w.cfg.SuspendGrace,
			PausePoll:          w.cfg.PausePoll,
			RemoteSuspendGrace: w.cfg.RemoteSuspendGrace,
		})
		if err != nil {
			return err
		}
		w.life.Go(func() { w.run(runCtx, eng) })
		return nil
	})
}

// Stop stops claiming, waits up to ShutdownGrace for work in progress,
// cancels what remains and deregisters, so other workers take it over; it
// returns when all that is done. Safe to call twice and concurrently; Stop
// of a worker never started does nothing.
func (w *Worker) Stop() { w.life.Stop(nil, nil) }

// run executes claimed work until ctx (Stop) ends, then shuts down.
func (w *Worker) run(ctx context.Context, eng *engine.Engine) {
	// Work runs under its own context so that a shutdown can let it finish.
	workCtx, stopWork := context.WithCancelCause(context.WithoutCancel(ctx))
	defer stopWork(nil)
	w.mu.Lock()
	w.claimCtx, w.workCtx, w.eng = ctx, workCtx, eng
	w.mu.Unlock()
	bg, stopBg := context.WithCancel(context.WithoutCancel(ctx))
	var bgWG sync.WaitGroup
	// The completer gets its own context: at shutdown it has a few seconds
	// to report the last completions while heartbeats keep the leases.
	reports, stopReports := context.WithCancel(context.WithoutCancel(ctx))
	defer stopReports()
	completerDone := make(chan struct{})
	bgWG.Add(1)
	go func() { defer bgWG.Done(); w.heartbeats(bg) }()
	go func() { defer close(completerDone); w.completer(reports) }()

	w.claimLoop(ctx, workCtx, eng)
	// No claim starts work from now on (a claim of the completer in flight
	// ends first: it holds the gate).
	w.gate.Lock()
	w.mu.Lock()
	w.claimsOff = true
	w.mu.Unlock()
	w.gate.Unlock()
	w.dropReady()

	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	grace := w.clk.NewTimer(w.cfg.ShutdownGrace)
	select {
	case <-done:
	case <-grace.Chan():
		w.log.Warn("shutdown grace over; cancelling work in progress")
		stopWork(engine.ErrReleased)
		<-done
	}
	grace.Stop()
	close(w.completions)
	last := w.clk.NewTimer(5 * time.Second)
	select {
	case <-completerDone:
	case <-last.Chan():
		// Deregistering gives back the task runs whose reports are still
		// retried; stop the retries.
		stopReports()
		<-completerDone
	}
	last.Stop()
	stopBg()
	bgWG.Wait()
	eng.Close()
	dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.cfg.Client.Deregister(dctx, w.ID()); err != nil {
		w.log.Warn("deregister", "err", err)
	}
}

// claimWait is how long a claim may wait on the server for work. Busy or
// idle, the claim loop long-polls: capacity that frees meanwhile is claimed
// by the completer at once (with the report of the completions that freed
// it), and when that finds nothing the server wakes this claim so that the
// loop asks again for everything. (A variable for tests.)
var claimWait = 10 * time.Second

func (w *Worker) claimLoop(ctx, workCtx context.Context, eng *engine.Engine) {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		w.mu.Lock()
		unsure := w.unsure
		w.mu.Unlock()
		if unsure {
			if err := w.reportHolding(ctx); err != nil {
				w.log.Warn("report held work", "err", err)
				w.sleep(ctx, time.Second)
				continue
			}
		}
		// The gate waits for a claim of the completer in flight to be
		// processed: when its answer woke this loop's previous claim, what
		// it did not fill is free by now.
		w.gate.Lock()
		w.mu.Lock()
		// Slots freed by completions not yet reported are the completer's:
		// it claims them with the report, in one round trip.
		runs, tasks := w.freeLocked(true, w.unreported == 0)
		if runs <= 0 && len(tasks) == 0 {
			w.mu.Unlock()
			w.gate.Unlock()
			select {
			case <-w.freed:
			case <-ctx.Done():
			}
			continue
		}
		w.reserveLocked(runs, tasks, 1)
		w.polling = true
		w.seq++
		req := api.Claim{Runs: runs, Tasks: tasks, WaitMS: claimWait.Milliseconds(), Seq: w.seq}
		free := w.offerLocked(&req)
		w.mu.Unlock()
		w.gate.Unlock()
		claimed, err := w.cfg.Client.Claim(ctx, w.ID(), req)
		if err == nil {
			w.startClaimed(workCtx, eng, claimed)
		}
		w.mu.Lock()
		w.polling = false
		w.reserveLocked(runs, tasks, -1)
		w.resAsked = w.resAsked.Add(free, -1)
		w.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var apiErr *transport.Error
			switch {
			case transport.IsNotFound(err):
				if rerr := w.register(ctx); rerr != nil {
					w.log.Warn("re-register", "err", rerr)
				}
			case errors.As(err, &apiErr):
				w.log.Warn("claim", "err", err)
			default:
				// The server may have claimed work and died before answering.
				w.log.Warn("claim", "err", err)
				w.setUnsure()
			}
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			w.sleep(ctx, backoff)
			continue
		}
		backoff = 0
	}
}

// freeLocked returns the capacity neither in use nor asked for by a claim
// in flight: flow-run slots (when withRuns) and task slots per queue, with
// their prefetch buffers (when withTasks). The caller holds w.mu.
func (w *Worker) freeLocked(withRuns, withTasks bool) (runs int, tasks map[string]int) {
	if withRuns && len(w.flows) > 0 {
		runs = max(0, w.cfg.Concurrency-w.running-w.resRuns)
	}
	tasks = map[string]int{}
	if withTasks && len(w.tasks) > 0 {
		for q, n := range w.cfg.Slots {
			if free := n + w.prefetchLocked(q) - w.slotsUse[q] - len(w.ready[q]) - w.resTasks[q]; free > 0 {
				tasks[q] = free
			}
		}
	}
	return runs, tasks
}

// reserveLocked adds (sign 1) or removes (sign -1) the capacity a claim in
// flight asks for. The caller holds w.mu.
func (w *Worker) reserveLocked(runs int, tasks map[string]int, sign int) {
	w.resRuns += sign * runs
	for q, n := range tasks {
		w.resTasks[q] += sign * n
	}
}

// handOverLocked ends the completer's claim to the slots of n completions:
// from now on the claim loop may claim them. The caller holds w.mu.
func (w *Worker) handOverLocked(n int) {
	if n == 0 {
		return
	}
	w.unreported -= n
	w.signal(w.freed)
}

func (w *Worker) setUnsure() {
	w.mu.Lock()
	w.unsure = true
	w.mu.Unlock()
}

// startClaimed starts what a claim returned.
func (w *Worker) startClaimed(workCtx context.Context, eng *engine.Engine, claimed api.Claimed) {
	for _, run := range claimed.Runs {
		w.startRun(workCtx, eng, run)
	}
	for _, tr := range claimed.TaskRuns {
		w.startTask(workCtx, tr)
	}
}

// reportHolding tells the server what this worker holds, so that claims
// whose response was lost go back to their queues. No claim is in flight
// meanwhile (it holds the gate), so nothing claimed is missing from the report.
func (w *Worker) reportHolding(ctx context.Context) error {
	w.gate.Lock()
	defer w.gate.Unlock()
	w.mu.Lock()
	h := api.Holding{Runs: make([]string, 0, len(w.runs)), TaskRuns: make([]store.TaskRunRef, 0, len(w.held))}
	for id := range w.runs {
		h.Runs = append(h.Runs, id)
	}
	for ref := range w.held {
		h.TaskRuns = append(h.TaskRuns, ref)
	}
	id := w.id
	w.mu.Unlock()
	if err := w.cfg.Client.Holding(ctx, id, h); err != nil {
		return err
	}
	w.mu.Lock()
	w.unsure = false
	w.mu.Unlock()
	return nil
}

func (w *Worker) release(queue string) {
	w.mu.Lock()
	var next readyTask
	ok := false
	if queue == "" {
		w.running--
	} else {
		w.slotsUse[queue]--
		next, ok = w.nextReadyLocked(queue)
	}
	w.mu.Unlock()
	if ok {
		w.execTask(next)
	}
	w.signal(w.freed)
	w.signal(w.kick)
}

// prefetchLocked is how many claimed task runs of queue may wait for one
// of its slots: about four times the slots expected to free during one
// report's round trip (they free in bursts: task runs claimed together
// finish together), when that is a fair share of a task run's time (short
// task runs), so that a freed slot starts the next task run at once
// instead of after a round trip; none for longer task runs, whose slots a
// claim refills in a small fraction of their time, and none before the
// first reports are timed. At most the queue's slots, and maxPrefetch. The
// caller holds w.mu.
func (w *Worker) prefetchLocked(queue string) int {
	n, d := w.cfg.Slots[queue], w.taskDur[queue]
	if d <= 0 || w.rtt <= 0 {
		return 0
	}
	expected := float64(n) * float64(w.rtt) / float64(d) // slots freed per round trip
	if expected < 0.25 {
		return 0
	}
	return min(n, maxPrefetch, int(math.Ceil(4*expected)))
}

// maxPrefetch bounds a prefetch buffer whatever the slots: task runs
// waiting in it hold leases that the server extends one by one.
const maxPrefetch = 64

// average returns the moving average avg moved toward sample.
func average(avg, sample time.Duration) time.Duration {
	if avg == 0 {
		return sample
	}
	return avg + (sample-avg)/5
}

// nextReadyLocked takes the oldest task run waiting in queue's prefetch
// buffer into a slot now free, unless the worker is shutting down (then
// deregistering gives the buffered ones back). The caller holds w.mu.
func (w *Worker) nextReadyLocked(queue string) (readyTask, bool) {
	buf := w.ready[queue]
	if len(buf) == 0 || w.claimsOff || w.slotsUse[queue] >= w.cfg.Slots[queue] {
		return readyTask{}, false
	}
	next := buf[0]
	buf[0] = readyTask{}
	if w.ready[queue] = buf[1:]; len(w.ready[queue]) == 0 {
		delete(w.ready, queue)
	}
	w.slotsUse[queue]++
	return next, true
}

// dropReady forgets the task runs waiting in prefetch buffers when the
// worker shuts down: deregistering gives them back to their queues.
func (w *Worker) dropReady() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for q, buf := range w.ready {
		for _, t := range buf {
			t.cancel(engine.ErrReleased)
			ref := store.TaskRunRef{RunID: t.tr.RunID, Key: t.tr.Key, ID: t.tr.ID}
			if delete(w.taskRuns[t.tr.RunID], ref); len(w.taskRuns[t.tr.RunID]) == 0 {
				delete(w.taskRuns, t.tr.RunID)
			}
			delete(w.held, ref)
			w.resUsed = w.resUsed.Add(w.needOf(t.tr.Task), -1)
		}
		delete(w.ready, q)
	}
}

// signal wakes the goroutine that waits on ch, if it does not have a wake-up
// pending already.
func (w *Worker) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (w *Worker) startRun(workCtx context.Context, eng *engine.Engine, run store.Run) {
	def := w.flows[run.Flow]
	ctx, cancel := context.WithCancelCause(workCtx)
	w.mu.Lock()
	w.running++
	w.runs[run.ID] = cancel
	w.attempts[run.ID] = run.Attempt
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer w.release("")
		defer func() {
			w.mu.Lock()
			delete(w.runs, run.ID)
			delete(w.attempts, run.ID)
			w.mu.Unlock()
			cancel(nil)
		}()
		if def == nil { // cannot happen: the server only hands out registered flows
			w.log.Error("claimed a run of an unknown flow", "run", run.ID, "flow", run.Flow)
			w.giveBack(workCtx, run.ID, run.Attempt, "the worker does not define flow "+run.Flow)
			return
		}
		out, err := eng.ExecuteClaimed(ctx, def, run)
		if errors.Is(context.Cause(ctx), engine.ErrReleased) {
			return // deregistering gives it back
		}
		if err == nil {
			err = out.Err
		}
		if errors.Is(err, engine.ErrSuspended) {
			// The run waits, PAUSED and held by no one: the store
			// reschedules it when what it waits for arrives.
			w.log.Info("run suspended while it waits", "run", run.ID, "flow", run.Flow, "attempt", out.Run.Attempt)
			return
		}
		if err != nil && !out.Run.State.Final() {
			// Its engine could not start or end it (the store failed, or
			// the run is no longer what the claim said): nothing executes
			// it any more, so it must not stay leased to this worker.
			attempt := run.Attempt
			if out.Run.ID == run.ID && out.Run.Attempt > attempt {
				attempt = out.Run.Attempt // a flow-level retry ran in this process
			}
			w.log.Warn("run not recorded; giving it back", "run", run.ID, "attempt", attempt, "state", out.Run.State, "err", err)
			w.giveBack(workCtx, run.ID, attempt, err.Error())
			return
		}
		if err != nil {
			w.log.Info("run ended", "run", run.ID, "flow", run.Flow, "state", out.Run.State, "attempt", out.Run.Attempt, "err", err)
			return
		}
		w.log.Info("run ended", "run", run.ID, "flow", run.Flow, "state", out.Run.State, "attempt", out.Run.Attempt)
	}()
}

// leaseValid reports whether the worker's leases can still be valid: the
// server answered a heartbeat within the lease timeout.
func (w *Worker) leaseValid() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.clk.Since(w.lastBeat) < w.lease
}

// giveBack hands a run that nothing executes any more back to the server,
// which crashes it and reschedules it from its journal, instead of leaving
// it leased to this worker (whose heartbeats would keep it RUNNING). It
// retries while the server is unreachable, until ctx ends (a shutdown:
// deregistering then gives the run back).
func (w *Worker) giveBack(ctx context.Context, runID string, attempt int, reason string) {
	backoff := 100 * time.Millisecond
	for {
		err := w.cfg.Client.GiveBack(ctx, w.ID(), runID, attempt, reason)
		switch {
		case err == nil:
			w.log.Info("gave a run back", "run", runID, "attempt", attempt)
			return
		case transport.IsConflict(err) || transport.IsNotFound(err):
			return // not held here any more: nothing to give back
		case ctx.Err() != nil:
			return
		case !transport.IsTransient(err):
			w.log.Error("give back run", "run", runID, "attempt", attempt, "err", err)
			return
		}
		w.log.Warn("give back run", "run", runID, "attempt", attempt, "err", err)
		if !w.sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// startTask takes a claimed task run: it executes at once when its queue
// has a free slot, or waits in the queue's prefetch buffer for one.
func (w *Worker) startTask(workCtx context.Context, tr store.TaskRun) {
	ctx, cancel := context.WithCancelCause(workCtx)
	ref := store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}
	t := readyTask{tr: tr, ctx: ctx, cancel: cancel}
	w.mu.Lock()
	if w.taskRuns[tr.RunID] == nil {
		w.taskRuns[tr.RunID] = map[store.TaskRunRef]taskHold{}
	}
	w.taskRuns[tr.RunID][ref] = taskHold{cancel: cancel, attempt: tr.FlowAttempt}
	w.held[ref] = struct{}{}
	w.resUsed = w.resUsed.Add(w.needOf(tr.Task), 1)
	w.ready[tr.Queue] = append(w.ready[tr.Queue], t)
	next, ok := w.nextReadyLocked(tr.Queue)
	w.mu.Unlock()
	if ok {
		w.execTask(next)
	}
}

// execTask executes a task run in a slot of its queue already taken, and
// queues its completion for the completer.
func (w *Worker) execTask(t readyTask) {
	tr, ctx, cancel, eng := t.tr, t.ctx, t.cancel, w.eng
	td := w.tasks[tr.Task]
	ref := store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		queued := false // the completion is queued: the slot was freed with it
		defer func() {
			if !queued {
				w.mu.Lock()
				w.resUsed = w.resUsed.Add(w.needOf(tr.Task), -1)
				w.mu.Unlock()
				w.release(tr.Queue)
			}
		}()
		defer cancel(nil)
		defer func() {
			w.mu.Lock()
			if delete(w.taskRuns[tr.RunID], ref); len(w.taskRuns[tr.RunID]) == 0 {
				delete(w.taskRuns, tr.RunID)
			}
			w.mu.Unlock()
		}()
		var c store.TaskRunCompletion
		began := w.clk.Now()
		if td == nil {
			c = store.TaskRunCompletion{Ref: store.TaskRunRef{RunID: tr.RunID, Key: tr.Key, ID: tr.ID}, WorkerID: w.ID(),
				State: store.TaskFailed, Attempts: 1, Error: &store.ErrorInfo{Message: "task " + tr.Task + " is not defined by this worker"}}
		} else {
			c = eng.RunTask(ctx, td, tr)
		}
		if errors.Is(context.Cause(ctx), engine.ErrReleased) {
			return // deregistering gives it back to the queue
		}
		// Free the slot and count the completion as unreported in one step:
		// the completer claims for the slot when it reports the completion.
		// A task run waiting in the prefetch buffer takes the slot at once.
		w.mu.Lock()
		w.taskDur[tr.Queue] = average(w.taskDur[tr.Queue], w.clk.Since(began))
		w.slotsUse[tr.Queue]--
		w.resUsed = w.resUsed.Add(w.needOf(tr.Task), -1)
		w.unreported++
		next, ok := w.nextReadyLocked(tr.Queue)
		w.mu.Unlock()
		if ok {
			w.execTask(next)
		}
		queued = true
		w.completions <- c
	}()
}

// completer reports task-run completions in batches: whatever finished
// while the previous report was in flight goes in the next. A report is a
// claim for the slots it frees (see claimWithReport); when that cannot be
// sent or fails, Complete reports the batch, and is retried.
func (w *Worker) completer(ctx context.Context) {
	for {
		var batch []store.TaskRunCompletion
		select {
		case c, ok := <-w.completions:
			if !ok {
				return
			}
			batch = append(batch, c)
		case <-w.kick:
		}
		// Task runs claimed together finish together: the ones finishing
		// just after the first go in the same report (and claim), instead of
		// waiting for its round trip; nothing waits when no task runs.
		linger := w.clk.NewTimer(w.cfg.ReportLinger)
	more:
		for len(batch) < 2000 {
			select {
			case c, ok := <-w.completions:
				if !ok {
					break more
				}
				batch = append(batch, c)
				continue
			default:
			}
			if !w.tasksRunning() {
				break
			}
			select {
			case c, ok := <-w.completions:
				if !ok {
					break more
				}
				batch = append(batch, c)
			case <-linger.Chan():
				break more
			}
		}
		linger.Stop()
		if !w.claimWithReport(batch) {
			w.report(ctx, batch)
		}
	}
}

// tasksRunning reports whether a task run of this worker is in progress.
func (w *Worker) tasksRunning() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.slotsUse {
		if n > 0 {
			return true
		}
	}
	return false
}

// report sends completions until the server takes them. Transient failures
// are retried (the server applies a completion only while the task run is
// still leased to this worker, so a late one is harmless) until ctx ends at
// shutdown, when deregistering gives the task runs back. A batch the server
// refuses for good is sent one completion at a time, so that only the ones
// at fault are affected: such a completion is reported FAILED without its
// result, and one refused even so is given back to its queue. Nothing stays
// held (and heartbeated) without a report on its way.
func (w *Worker) report(ctx context.Context, batch []store.TaskRunCompletion) {
	done := func(cs ...store.TaskRunCompletion) {
		w.mu.Lock()
		for _, c := range cs {
			delete(w.held, c.Ref)
		}
		w.mu.Unlock()
	}
	err := w.send(ctx, batch)
	switch {
	case err == nil:
		done(batch...)
		return
	case transport.IsTransient(err): // ctx ended: deregistering gives them back
		return
	}
	w.log.Warn("report task runs: refused; reporting them one by one", "n", len(batch), "err", err)
	for _, c := range batch {
		err := w.send(ctx, []store.TaskRunCompletion{c})
		if err != nil && !transport.IsTransient(err) {
			w.log.Error("report task run: refused; reporting it FAILED", "run", c.Ref.RunID, "key", c.Ref.Key, "err", err)
			failed := store.TaskRunCompletion{Ref: c.Ref, WorkerID: c.WorkerID, State: store.TaskFailed, Attempts: c.Attempts,
				Error: &store.ErrorInfo{Message: strings.ToValidUTF8(strings.ReplaceAll("the worker could not report the outcome of this task run ("+
					string(c.State)+"): the server refused it: "+err.Error(), "\x00", `\x00`), "\uFFFD")}, At: c.At}
			err = w.send(ctx, []store.TaskRunCompletion{failed})
		}
		switch {
		case err == nil:
			done(c)
		case !transport.IsTransient(err):
			w.log.Error("report task run: refused; giving it back to its queue", "run", c.Ref.RunID, "key", c.Ref.Key, "err", err)
			w.mu.Lock()
			delete(w.held, c.Ref)
			w.unsure = true // the next holding report releases it
			w.mu.Unlock()
		}
	}
}

// claimWithReport sends batch (possibly empty) in a claim, without waiting
// on the server, for the free capacity that no claim in flight asks for:
// every free task slot when it reports completions (the slots they freed);
// otherwise, while the claim loop's long poll is in flight, the kinds of
// capacity that poll does not ask for (a flow-run slot freed while it asks
// only for task runs). A claim that fails in transit is not resent: the
// claim loop reports what the worker holds. claimWithReport returns whether
// batch was reported; if not, the caller reports it with Complete.
func (w *Worker) claimWithReport(batch []store.TaskRunCompletion) bool {
	w.gate.RLock() // a holding report waits for this claim's answer
	defer w.gate.RUnlock()
	w.mu.Lock()
	if w.unsure || w.claimsOff || w.claimCtx.Err() != nil {
		w.handOverLocked(len(batch))
		w.mu.Unlock()
		return len(batch) == 0
	}
	runs, tasks := w.freeLocked(w.polling && w.resRuns == 0, true)
	if len(batch) == 0 {
		for q := range tasks {
			if !w.polling || w.resTasks[q] > 0 {
				delete(tasks, q) // the claim loop asks, or will
			}
		}
	}
	if runs == 0 && len(tasks) == 0 {
		w.handOverLocked(len(batch))
		w.mu.Unlock()
		return len(batch) == 0
	}
	w.reserveLocked(runs, tasks, 1)
	w.seq++
	req := api.Claim{Runs: runs, Tasks: tasks, Completions: batch, Seq: w.seq}
	free := w.offerLocked(&req)
	ctx, id, workCtx, eng := w.claimCtx, w.id, w.workCtx, w.eng
	w.mu.Unlock()

	sent := w.clk.Now()
	claimed, err := w.cfg.Client.Claim(ctx, id, req)
	rtt := w.clk.Since(sent)
	if err == nil && ctx.Err() == nil {
		w.startClaimed(workCtx, eng, claimed) // when shutting down, deregistering gives them back
	}
	w.mu.Lock()
	if err == nil && len(batch) > 0 {
		w.rtt = average(w.rtt, rtt)
	}
	w.reserveLocked(runs, tasks, -1)
	w.resAsked = w.resAsked.Add(free, -1)
	w.handOverLocked(len(batch))
	var apiErr *transport.Error
	if err != nil && ctx.Err() == nil && !errors.As(err, &apiErr) {
		// The server may have claimed work and died before answering.
		w.unsure = true
	}
	if err == nil {
		for _, c := range batch {
			delete(w.held, c.Ref)
		}
	}
	w.mu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			w.log.Warn("claim with report", "n", len(batch), "err", err)
		}
		return len(batch) == 0
	}
	return true
}

// send reports completions, retrying transient failures with backoff until
// ctx ends.
func (w *Worker) send(ctx context.Context, cs []store.TaskRunCompletion) error {
	backoff := 200 * time.Millisecond
	for {
		_, err := w.cfg.Client.Complete(context.WithoutCancel(ctx), w.ID(), cs)
		if err == nil || !transport.IsTransient(err) {
			return err
		}
		w.log.Warn("report task runs", "n", len(cs), "err", err)
		if !w.sleep(ctx, backoff) {
			return err
		}
		backoff = min(2*backoff, 3*time.Second)
	}
}

// heartbeats keeps the worker's leases and stops the work of runs the
// server names. Each heartbeat is a long poll: the server answers when its
// list of runs to stop changes, or after the heartbeat interval, so a cancel
// reaches this worker at once.
func (w *Worker) heartbeats(ctx context.Context) {
	var gen int64
	for {
		w.mu.Lock()
		every := w.hbEvery
		w.mu.Unlock()
		req := api.HeartbeatRequest{}
		if gen != 0 {
			req.WaitMS, req.Generation = every.Milliseconds(), gen
		}
		start := w.clk.Now()
		hb, err := w.cfg.Client.Heartbeat(ctx, w.ID(), req)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Warn("heartbeat", "err", err)
			gen = 0
			if !w.sleep(ctx, every) {
				return
			}
			continue
		}
		w.mu.Lock()
		w.lastBeat = w.clk.Now()
		w.mu.Unlock()
		w.stopWork(hb)
		// A server that does not hold heartbeats (or one stopping) answers at
		// once without news: wait the interval instead of spinning.
		if hb.Generation == 0 || (hb.Generation == gen && w.clk.Since(start) < every/2) {
			if !w.sleep(ctx, every) {
				return
			}
		}
		gen = hb.Generation
	}
}

// stopWork cancels the flow runs and task runs executing here of the runs
// in hb.Cancel, at the attempt named (or earlier ones): work of a later
// attempt of a retried run goes on.
func (w *Worker) stopWork(hb api.Heartbeat) {
	w.mu.Lock()
	var stopped []store.TaskRunCompletion
	for _, runID := range hb.Cancel {
		upTo, known := hb.Attempts[runID]
		concerned := func(attempt int) bool { return !known || attempt <= upTo }
		if cancel, ok := w.runs[runID]; ok && concerned(w.attempts[runID]) {
			cancel(engine.ErrCancelRequested)
		}
		for _, t := range w.taskRuns[runID] {
			if concerned(t.attempt) {
				t.cancel(engine.ErrCancelRequested)
			}
		}
		stopped = append(stopped, w.unbufferLocked(runID, concerned)...)
	}
	w.mu.Unlock()
	if len(stopped) == 0 {
		return
	}
	// Reported like any completion (the completer claims for the buffer
	// room they free), from a goroutine: the completions channel may be full.
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		for _, c := range stopped {
			w.completions <- c
		}
	}()
}

// unbufferLocked takes the task runs of runID waiting in prefetch buffers
// whose flow attempt is concerned out of them, and returns their
// completions as CANCELLED, counted as unreported: they never started. The
// caller holds w.mu.
func (w *Worker) unbufferLocked(runID string, concerned func(attempt int) bool) []store.TaskRunCompletion {
	var out []store.TaskRunCompletion
	for q, buf := range w.ready {
		kept := buf[:0]
		for _, t := range buf {
			if t.tr.RunID != runID || !concerned(t.tr.FlowAttempt) {
				kept = append(kept, t)
				continue
			}
			ref := store.TaskRunRef{RunID: t.tr.RunID, Key: t.tr.Key, ID: t.tr.ID}
			if delete(w.taskRuns[runID], ref); len(w.taskRuns[runID]) == 0 {
				delete(w.taskRuns, runID)
			}
			w.resUsed = w.resUsed.Add(w.needOf(t.tr.Task), -1)
			out = append(out, store.TaskRunCompletion{Ref: ref, WorkerID: w.id, State: store.TaskCancelled,
				Error: engine.ErrorInfo(engine.ErrCancelRequested), At: w.clk.Now()})
		}
		clear(buf[len(kept):])
		if w.ready[q] = kept; len(kept) == 0 {
			delete(w.ready, q)
		}
	}
	w.unreported += len(out)
	return out
}

// sleep waits d on the worker's clock; it reports false when ctx ended
// first.
func (w *Worker) sleep(ctx context.Context, d time.Duration) bool {
	return clock.Sleep(ctx, w.clk, d)
}
