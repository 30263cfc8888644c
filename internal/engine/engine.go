// Package engine executes flows durably: it assigns step keys, replays
// completed steps from the journal, runs tasks with retries, timeouts and
// caching, and records every state change through a group-commit writer.
//
// The engine is untyped: values cross it as `any` plus their JSON encoding,
// and every value handed to flow code is decoded from the JSON recorded for
// it. The public SDK (package baton) wraps it with generic types.
package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// BlobThreshold is the encoded size above which results go to the blob store.
const BlobThreshold = 64 << 10

// Store is what the engine needs of a store. Every store.Store backend
// satisfies it, and so does a worker's client of the server API.
type Store interface {
	BatchWrite(ctx context.Context, b store.Batch) error
	RunGet(ctx context.Context, id string) (store.Run, error)
	RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error)
	RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error)
	RunChildGet(ctx context.Context, parentRunID, stepKey string) (store.Run, error)
	JournalList(ctx context.Context, runID string) ([]store.JournalEntry, error)
	CacheGet(ctx context.Context, key string, now time.Time) (store.CacheEntry, error)
	TaskRunFinished(ctx context.Context, refs []store.TaskRunRef) ([]store.TaskRun, error)
	WaitBegin(ctx context.Context, p store.WaitBeginParams) (store.TaskRun, error)
}

// Blobs stores large results and the large parts of inputs by content;
// *blob.Store is the local one. Put stores content (or, for content that
// exists, keeps it from retention for blob.Grace) and returns its
// reference.
type Blobs interface {
	Put(data []byte) (string, error)
	Get(ref string) ([]byte, error)
}

// Config configures an Engine.
type Config struct {
	// Store records everything. Required.
	Store Store
	// Blobs holds results larger than BlobThreshold and the large parts of
	// inputs larger than InputBlobThreshold. Required.
	Blobs Blobs
	// LogOutput receives a text copy of every user log record. Default os.Stderr;
	// io.Discard silences it.
	LogOutput io.Writer
	// Clock is the engine's only source of time: the times it records, its
	// retry delays, task and flow timeouts, graces and polls. Default the
	// system clock.
	Clock clock.Clock
	// Activity, when set, is told of the engine's work in progress: +1 as
	// a unit starts (a run executing, a task step from its call to its
	// result, a task function running) and -1 as it ends or waits on the
	// clock or on a future. A wait's unit is counted again before the
	// waiter is woken (by the timer's callback, or by the step that
	// resolves the future), so a count of zero means that the engine's
	// work waits for the clock to move (package batontest's fake clock
	// moves then). It must be cheap and must not block.
	Activity func(delta int)
	// Replace, when set, is asked for each attempt of a task run executed
	// in this process: a non-nil function returned for the task's name
	// runs instead of the task's own, with the task run's recorded input.
	// Package batontest mocks tasks through it, for one engine only.
	Replace func(task string) func(ctx context.Context, input json.RawMessage) (any, error)
	// MaxConcurrency bounds the task runs a flow run executes at once when
	// the flow sets no bound of its own. Default 64.
	MaxConcurrency int
	// LazyFlush is how long a write that nobody waits for (a task starting, a
	// log line) may wait for a commit. Default 20ms.
	LazyFlush time.Duration
	// Distributed makes tasks with a Queue run on the workers that serve it:
	// the engine records such task runs PENDING and waits for their results.
	// Without it (a local run) the Queue option is ignored.
	Distributed bool
	// Worker, when set, is the worker executing claimed runs; its ID is
	// recorded as the runs' owner.
	Worker string
	// Actor is who the runs that Start creates and Retry reopens act for,
	// in their histories. Zero: the OS user of this process (CurrentActor)
	// for an engine without a Worker, else the system. What the engine
	// does by itself (ending runs, retries of the flow's policy) is the
	// system's.
	Actor store.Actor
	// OnRunStart, when set, is called as each top-level run (not a subflow)
	// starts or resumes, before the flow function runs.
	OnRunStart func(store.Run)
	// OnTaskFailure, when set, is called when an attempt of a task run
	// executed by this engine fails: with a retry to come, or for good (the
	// task run is FAILED or TIMED_OUT). Consoles print it as it happens. It
	// must not block.
	OnTaskFailure func(TaskFailure)
	// AbandonGrace is how long a failed or cancelled flow run waits for its
	// in-flight tasks to return before recording them as abandoned. Default 2s.
	AbandonGrace time.Duration
	// RemoteGrace is how long a cancelled flow run waits for its in-flight
	// distributed tasks, which their workers are cancelling at the same
	// time, before it ends without them (the store keeps their state, and
	// their workers stop them once the run has ended). A run that fails
	// does not wait for them. Default 500ms; it is capped at AbandonGrace.
	RemoteGrace time.Duration
	// ValidateInput checks input kept for a wait against the wait's JSON
	// Schema when the wait begins (WaitBeginParams.Validate). Default
	// params.ValidateJSON. A worker's engine begins waits through the server, which has its
	// own.
	ValidateInput func(schema, value json.RawMessage) error
	// SuspendGrace is how long a worker's run may wait for nothing but its
	// waits (input, timers, events) before the worker releases it: the run
	// goes PAUSED and is rescheduled when a wait is resolved. Default 1s.
	SuspendGrace time.Duration
	// RemoteSuspendGrace is SuspendGrace for a run that also waits for
	// distributed task runs (AsCompleted or WaitAll over work on other
	// workers): a completion of one of them reschedules it. Default 30s.
	RemoteSuspendGrace time.Duration
	// CancelPoll is how often the engine of a local run (no Worker) reads
	// its run's state to notice a cancel requested through a server that
	// shares the store (the run is CANCELLING). Default 250ms.
	CancelPoll time.Duration
	// PausePoll is how often a run's engine reads its run, at the flow's
	// step boundaries, for a pause asked from outside (runs pause): a
	// boundary at least PausePoll after the last read (or the attempt's
	// start, whose run record it uses first) reads it again. Default 1s;
	// negative: at every boundary.
	PausePoll time.Duration
	// WaitPoll is how often the engine of a local run reads the store for
	// the outcome of its waits (input, a resume, an event) and fires their
	// due timers; it also reads it at the earliest deadline of the waits,
	// and at once when told to (PollWaits). Default 250ms.
	WaitPoll time.Duration
	// SlotLease is the lease of the slots that a task run with tags
	// executed by this engine (not dispatched to a worker) takes when
	// Store is a SlotStore: the engine renews it every SlotLease/3 while
	// the task runs, and a process that dies leaves its slots held until
	// it expires. Default 15s (the servers' lease timeout).
	SlotLease time.Duration
	// SlotPoll is how often such a task run waiting for a slot
	// (AWAITING_SLOT) tries again. Default 250ms.
	SlotPoll time.Duration
}

// SlotStore is a Store that takes slots of tag concurrency limits for the
// task runs an engine executes itself (store.Store is one; a worker's
// engine store is not, and the tasks its runs execute in-process take no
// slot). See store.SlotAcquireParams.
type SlotStore interface {
	SlotAcquire(ctx context.Context, p store.SlotAcquireParams) (bool, error)
	SlotRenew(ctx context.Context, p store.SlotRenewParams) error
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	c.Clock = clock.Or(c.Clock)
	if c.MaxConcurrency <= 0 {
		c.MaxConcurrency = 64
	}
	if c.LazyFlush <= 0 {
		c.LazyFlush = 20 * time.Millisecond
	}
	if c.AbandonGrace <= 0 {
		c.AbandonGrace = 2 * time.Second
	}
	if c.RemoteGrace <= 0 {
		c.RemoteGrace = 500 * time.Millisecond
	}
	c.RemoteGrace = min(c.RemoteGrace, c.AbandonGrace)
	if c.CancelPoll <= 0 {
		c.CancelPoll = 250 * time.Millisecond
	}
	if c.WaitPoll <= 0 {
		c.WaitPoll = localWaitPoll
	}
	if c.SuspendGrace <= 0 {
		c.SuspendGrace = time.Second
	}
	if c.PausePoll == 0 {
		c.PausePoll = time.Second
	}
	if c.RemoteSuspendGrace <= 0 {
		c.RemoteSuspendGrace = 30 * time.Second
	}
	if c.ValidateInput == nil {
		c.ValidateInput = params.ValidateJSON
	}
	if c.SlotLease <= 0 {
		c.SlotLease = 15 * time.Second
	}
	if c.SlotPoll <= 0 {
		c.SlotPoll = 250 * time.Millisecond
	}
	return c
}

func (c Config) validate() error {
	if c.Store == nil {
		return errors.New("engine: Config.Store is required")
	}
	if c.Blobs == nil {
		return errors.New("engine: Config.Blobs is required")
	}
	return nil
}

// TaskFailure is a failed attempt of a task run, as Config.OnTaskFailure
// receives it.
type TaskFailure struct {
	RunID   string
	Key     string // the step key, such as "load/2"
	Task    string
	Attempt int   // the attempt that failed, from 1; 0 when none ran (a cache key error)
	Err     error // why it failed
	// Final is true when no attempt follows: the task run ended in State.
	Final bool
	State store.TaskState
	// RetryIn is the delay before the next attempt when not Final.
	RetryIn time.Duration
}

// TaskPolicy is how a task runs: retries, timeout and caching.
type TaskPolicy struct {
	Retries    int           // extra attempts after the first
	RetryDelay time.Duration // delay before the first retry
	Backoff    float64       // delay multiplier per further retry; <=1 means constant
	MaxDelay   time.Duration // cap on the delay; 0 means none
	Jitter     float64       // random spread as a fraction of the delay, 0..1
	RetryIf    func(error) bool
	Timeout    time.Duration // per attempt; 0 means none
	Cache      *CachePolicy
	Queue      string // distributed: run on a worker serving this queue
	// Tags are recorded on the task's runs (sorted, without duplicates); a
	// distributed task run with tags waits AWAITING_SLOT and starts only
	// with a slot of each of its tags that has a concurrency limit.
	Tags []string
	// Version is part of the task's step identities and cache keys: a new
	// version makes a retry run the task's steps again.
	Version string

	// Resources is what each distributed task run of the task needs on
	// the worker that claims it (zero: nothing).
	Resources store.Resources
	// Fallback, when set, is the task (same input and output types) that a
	// distributed task run becomes when it has waited FallbackAfter and no
	// live worker that could fit Resources serves Queue.
	Fallback      *TaskDef
	FallbackAfter time.Duration
}

// Delay returns the wait before attempt number next (2 for the first retry).
func (p TaskPolicy) Delay(next int) time.Duration {
	d := float64(p.RetryDelay)
	if p.Backoff > 1 {
		d *= math.Pow(p.Backoff, float64(next-2))
	}
	if p.MaxDelay > 0 && d > float64(p.MaxDelay) {
		d = float64(p.MaxDelay)
	}
	if p.Jitter > 0 {
		d += d * p.Jitter * (2*rand.Float64() - 1)
	}
	if d < 0 {
		d = 0
	}
	return time.Duration(d)
}

func (p TaskPolicy) shouldRetry(err error, attempt int) bool {
	if attempt > p.Retries {
		return false
	}
	var pe *PermanentError
	if errors.As(err, &pe) || errors.Is(err, ErrNonDeterministic) {
		return false
	}
	if p.RetryIf != nil && !p.RetryIf(err) {
		return false
	}
	return true
}

// CachePolicy makes a task reuse results across runs.
type CachePolicy struct {
	// Key computes the cache key from the typed input; nil uses the input hash.
	Key func(input any) (string, error)
	// Expiry is how long an entry is valid; 0 means forever.
	Expiry time.Duration
	// Version is mixed into the key: change it to invalidate old entries.
	Version string
}

// TaskDef describes a task to the engine.
type TaskDef struct {
	Name   string
	Policy TaskPolicy
	// InputType is the Go type of the input (for validation of CLI input).
	InputType reflect.Type
	// Invoke decodes a JSON input and runs the task function; the CLI's task
	// command and tests use it.
	Invoke func(ctx context.Context, input json.RawMessage) (any, error)
}

// FlowDef describes a flow to the engine.
type FlowDef struct {
	Name string
	// Body decodes the parameters and runs the flow function.
	Body func(fc *FlowCtx, params json.RawMessage) (any, error)
	// ParamsType is the Go type of the parameters (for validation and schema).
	ParamsType reflect.Type
	// Defaults is the JSON of the default parameters.
	Defaults       json.RawMessage
	Timeout        time.Duration // whole run, per attempt; 0 means none
	Retries        int           // automatic new attempts after a failure
	RetryDelay     time.Duration
	MaxConcurrency int // 0: Config.MaxConcurrency
	Description    string
}

// Engine executes flow runs. It is safe for concurrent use. Close it to flush
// pending writes.
type Engine struct {
	cfg    Config
	w      *writer
	self   Process
	remote *awaiter
	// waits polls for the outcome of wait steps (waitsAwaiter).
	waits     *awaiter
	waitsOnce sync.Once
	// pauses holds the pause requests (*store.PauseRequest) that the cancel
	// watch of local runs saw, by run ID (steer.go).
	pauses sync.Map
	puts   *blob.Puts  // cfg.Blobs.Put, sparing repeated writes of one content
	inputs *blob.Cache // cfg.Blobs.Get of inputs' blobs
}

// New returns an engine writing to cfg.Store.
func New(cfg Config) (*Engine, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, w: newWriter(cfg.Store, cfg.LazyFlush), self: Self(),
		puts: blob.NewPuts(cfg.Blobs.Put, putMemo), inputs: blob.NewCache(cfg.Blobs.Get, inputCacheBytes)}
	if cfg.Distributed {
		e.remote = newAwaiter(e, 20*time.Millisecond, nil)
	}
	return e, nil
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.cfg.Store }

// Close flushes pending writes. Safe to call twice.
func (e *Engine) Close() error {
	e.waitsOnce.Do(func() {}) // no poller of waits starts after this
	if e.waits != nil && e.waits != e.remote {
		e.waits.stop()
	}
	if e.remote != nil {
		e.remote.stop()
	}
	e.w.close()
	return nil
}

func (e *Engine) owner() *store.Owner {
	return &store.Owner{Host: e.self.Host, PID: e.self.PID, Start: e.self.Start, WorkerID: e.cfg.Worker}
}

// taskFailed reports a failed task attempt to Config.OnTaskFailure.
func (e *Engine) taskFailed(f TaskFailure) {
	if e.cfg.OnTaskFailure != nil {
		e.cfg.OnTaskFailure(f)
	}
}

func (e *Engine) now() time.Time { return e.cfg.Clock.Now() }

// NewID returns a new time-ordered unique ID.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Hash returns the hash of an encoded input, used to match journal entries.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:16])
}

// encodeResult marshals v, moving it to the blob store when large.
func (e *Engine) encodeResult(v any) (json.RawMessage, string, error) {
	raw, err := marshalResult(v)
	if err != nil {
		return nil, "", err
	}
	return e.storeResult(raw)
}

// marshalResult encodes a result as JSON.
func marshalResult(v any) ([]byte, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, &PermanentError{Err: fmt.Errorf("encode result as JSON: %w", err)}
	}
	return raw, nil
}

// storeResult returns an encoded result as a record holds it: inline, or
// as the reference of a blob when large.
func (e *Engine) storeResult(raw []byte) (json.RawMessage, string, error) {
	if len(raw) <= BlobThreshold {
		return raw, "", nil
	}
	ref, err := e.puts.Put(raw)
	if err != nil {
		return nil, "", err
	}
	return nil, ref, nil
}

// LoadResult returns a recorded result, reading the blob store when needed.
func (e *Engine) LoadResult(raw json.RawMessage, ref string) (json.RawMessage, error) {
	if ref == "" {
		return raw, nil
	}
	return e.cfg.Blobs.Get(ref)
}

// Outcome is the end of a run: the final record and the flow's error.
type Outcome struct {
	Run    store.Run
	Result any   // the flow's return value when COMPLETED (nil on replay-free reads)
	Err    error // the flow's error when not COMPLETED
}

// Start creates a run of def with the given (validated) parameters and
// executes it in this process until it reaches a final state. Cancelling ctx
// cancels the run, which ends CANCELLED.
func (e *Engine) Start(ctx context.Context, def *FlowDef, params json.RawMessage) (Outcome, error) {
	run, _, err := e.cfg.Store.RunCreate(ctx, store.RunCreateParams{
		Run: e.newRun(def, params, "", ""), Cause: "user", Actor: e.actor(),
		Message: fmt.Sprintf("started locally by pid %d on %s", e.self.PID, e.self.Host),
	})
	if err != nil {
		return Outcome{}, fmt.Errorf("create run: %w", err)
	}
	return e.run(ctx, def, run, false), nil
}

// run announces and executes a run that is RUNNING in the store. A local
// top-level run watches its record for a cancel requested elsewhere (a
// worker's runs are cancelled through its heartbeats; subflows through
// their parent).
func (e *Engine) run(ctx context.Context, def *FlowDef, run store.Run, resumed bool) Outcome {
	e.act(1) // the run's unit of work (Config.Activity), which execute holds
	defer e.act(-1)
	if e.cfg.OnRunStart != nil {
		e.cfg.OnRunStart(run)
	}
	if e.cfg.Worker == "" && run.ParentRunID == "" {
		var stop func()
		ctx, stop = e.watchCancel(ctx, run.ID)
		defer stop()
	}
	return e.execute(ctx, def, run, resumed)
}

// watchCancel returns a context that is cancelled with ErrCancelRequested
// when run runID is seen CANCELLING (or CANCELLED while it waits for a
// retry) in the store, which it reads every CancelPoll; stop ends the watch.
// It also notes the run's pause request for its step boundaries.
func (e *Engine) watchCancel(parent context.Context, runID string) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := e.cfg.Clock.NewTicker(e.cfg.CancelPoll)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.Chan():
			}
			r, err := e.cfg.Store.RunGet(ctx, runID)
			if err == nil && (r.State == store.RunCancelling || r.State == store.RunCancelled) {
				cancel(ErrCancelRequested)
				return
			}
			if err == nil {
				e.notePause(runID, r.PauseRequest)
			}
		}
	}()
	return ctx, func() {
		cancel(nil)
		<-done
		e.pauses.Delete(runID)
	}
}

// ExecuteClaimed executes a run that a worker claimed (PENDING, leased to
// it): it moves the run to RUNNING, replays its journal and runs it to a
// final state. Cancelling ctx cancels the run.
func (e *Engine) ExecuteClaimed(ctx context.Context, def *FlowDef, claimed store.Run) (Outcome, error) {
	owner := e.owner()
	owner.LeaseUntil = claimed.LeaseUntil
	run, err := e.cfg.Store.RunTransition(ctx, store.RunTransitionParams{
		ID: claimed.ID, From: []store.RunState{store.RunPending}, To: store.RunRunning, Attempt: claimed.Attempt,
		Owner: owner, Cause: "worker:" + e.cfg.Worker, Message: fmt.Sprintf("attempt %d started by pid %d on %s", claimed.Attempt, e.self.PID, e.self.Host),
	})
	if errors.Is(err, store.ErrConflict) {
		// The server may have applied this very transition and failed to
		// answer: the run is then RUNNING, at this attempt, held by us.
		if cur, gerr := e.cfg.Store.RunGet(ctx, claimed.ID); gerr == nil && cur.State == store.RunRunning &&
			cur.Attempt == claimed.Attempt && cur.WorkerID == e.cfg.Worker && e.cfg.Worker != "" {
			run, err = cur, nil
		}
	}
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			err = storeFailed(err)
		}
		return Outcome{Run: claimed}, fmt.Errorf("start claimed run %s: %w", claimed.ID, err)
	}
	// A run that started before (a woken PAUSED run) replays its journal.
	return e.run(ctx, def, run, !claimed.StartedAt.IsZero()), nil
}

func (e *Engine) newRun(def *FlowDef, params json.RawMessage, parent, key string) store.Run {
	now := e.now()
	return store.Run{
		ID: NewID(), Flow: def.Name, State: store.RunRunning, Attempt: 1,
		ParentRunID: parent, ParentStepKey: key, Parameters: params,
		CreatedAt: now, UpdatedAt: now, StartedAt: now,
		OwnerHost: e.self.Host, OwnerPID: e.self.PID, OwnerStart: e.self.Start, WorkerID: e.cfg.Worker,
	}
}

// Reconcile marks a local run that is PENDING, RUNNING, CANCELLING or
// AWAITING_RETRY (waiting out its flow's retry delay in its process) whose
// owning process on this host is gone as CRASHED, which can be retried, and
// returns the current record. Runs held by a worker are left to their lease.
func (e *Engine) Reconcile(ctx context.Context, run store.Run) (store.Run, error) {
	return Reconcile(ctx, e.cfg.Store, run)
}

// Reconcile is Engine.Reconcile for callers without an engine (read-only CLI commands).
func Reconcile(ctx context.Context, st Store, run store.Run) (store.Run, error) {
	if run.WorkerID != "" || !slices.Contains(store.LeasedRunStates, run.State) {
		return run, nil
	}
	owner := Process{Host: run.OwnerHost, PID: run.OwnerPID, Start: run.OwnerStart}
	if alive, known := owner.Alive(); alive || !known {
		return run, nil
	}
	msg := fmt.Sprintf("the process executing the run (pid %d on %s) is gone", run.OwnerPID, run.OwnerHost)
	updated, err := st.RunTransition(ctx, store.RunTransitionParams{
		ID: run.ID, From: []store.RunState{run.State}, To: store.RunCrashed, Attempt: run.Attempt,
		Error: &store.ErrorInfo{Message: msg, Kind: "crashed"}, Cause: "engine", Message: msg,
	})
	if errors.Is(err, store.ErrConflict) {
		return st.RunGet(ctx, run.ID)
	}
	return updated, err
}

// RetryOptions change what the new attempt of a retried run runs with.
type RetryOptions struct {
	// Parameters, when non-nil, replace the run's parameters for the new
	// attempt and later ones. They must be complete and valid (merged and
	// checked by the caller); the edit is recorded on the run.
	Parameters json.RawMessage
	// By is who asked for the edit, recorded with it.
	By string
}

// Retry starts a new attempt of a FAILED, CANCELLED or CRASHED run (a RUNNING
// run whose process is gone counts as CRASHED), reusing its completed steps,
// and executes it in this process. def must be the run's flow.
func (e *Engine) Retry(ctx context.Context, def *FlowDef, runID string, opts RetryOptions) (Outcome, error) {
	st := e.cfg.Store
	run, err := st.RunGet(ctx, runID)
	if err != nil {
		return Outcome{}, err
	}
	if run.Flow != def.Name {
		return Outcome{}, fmt.Errorf("run %s is a run of flow %q, not %q", runID, run.Flow, def.Name)
	}
	if run, err = e.Reconcile(ctx, run); err != nil {
		return Outcome{}, err
	}
	p := store.RunTransitionParams{Cause: "user", Message: "retry requested", Actor: e.actor()}
	if opts.Parameters != nil {
		p.Parameters, p.EditBy = opts.Parameters, opts.By
		p.Message = EditMessage("retry requested", opts.By, run.Parameters, opts.Parameters)
	}
	run, err = e.reopen(ctx, run, p)
	if err != nil {
		return Outcome{}, err
	}
	return e.run(ctx, def, run, false), nil
}

// actor is who the engine's Start and Retry act for (Config.Actor).
func (e *Engine) actor() store.Actor {
	if !e.cfg.Actor.IsZero() {
		return e.cfg.Actor
	}
	if e.cfg.Worker != "" {
		return store.SystemActor
	}
	return CurrentActor()
}

// EditMessage is the history message of a retry (what, such as "retry
// requested") that changed a run's parameters from old to new, by who.
func EditMessage(what, by string, old, new json.RawMessage) string {
	if by == "" {
		by = "an unknown user"
	}
	return fmt.Sprintf("%s by %s with edited parameters: %s (were %s)", what, by, clip(new), clip(old))
}

// clip shows a JSON document in a message, shortened.
func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if s == "" {
		s = "null"
	}
	if len(s) > 500 {
		s = strings.ToValidUTF8(s[:500], "") + "…"
	}
	return s
}

// reopen moves a finished run to RUNNING in this process with the next
// attempt number, with the cause, message and parameter edit of p.
func (e *Engine) reopen(ctx context.Context, run store.Run, p store.RunTransitionParams) (store.Run, error) {
	p.ID, p.From = run.ID, []store.RunState{store.RunFailed, store.RunCancelled, store.RunCrashed}
	p.To, p.NextAttempt, p.Owner = store.RunRunning, true, e.owner()
	next, err := e.cfg.Store.RunTransition(ctx, p)
	if errors.Is(err, store.ErrConflict) {
		return run, e.retryRefused(ctx, run)
	}
	return next, err
}

// retryRefused explains why a run could not be reopened, from its state
// now: another process may have retried it between our read and our
// transition, and the run we read is then stale.
func (e *Engine) retryRefused(ctx context.Context, read store.Run) error {
	run := read
	if cur, err := e.cfg.Store.RunGet(context.WithoutCancel(ctx), read.ID); err == nil {
		run = cur
	}
	if run.State == store.RunCompleted {
		return &RetryRefusedError{Msg: fmt.Sprintf("run %s already COMPLETED (attempt %d): nothing to retry", run.ID, run.Attempt),
			Err: store.ErrConflict}
	}
	if run.State.Final() {
		// Final again: retryable, but it changed under us; say so.
		return &RetryRefusedError{Msg: fmt.Sprintf("run %s changed state while retrying it (now %s, attempt %d); try again",
			run.ID, run.State, run.Attempt), Err: store.ErrConflict}
	}
	who := fmt.Sprintf("pid %d on %s is alive", run.OwnerPID, run.OwnerHost)
	if run.WorkerID != "" {
		who = "held by worker " + run.WorkerID
	}
	if run.Attempt > read.Attempt {
		return &RetryRefusedError{Msg: fmt.Sprintf("run %s was retried by someone else first: it is %s now (attempt %d, %s)",
			run.ID, run.State, run.Attempt, who), Err: ErrRunActive}
	}
	return &RetryRefusedError{Msg: fmt.Sprintf("run %s is %s (attempt %d, %s); only FAILED, CANCELLED or CRASHED runs can be retried",
		run.ID, run.State, run.Attempt, who), Err: ErrRunActive}
}

// execute runs attempts of run (RUNNING in the store) until it ends. The
// caller holds a unit of work (Config.Activity) for it, which execute
// releases while it waits.
func (e *Engine) execute(ctx context.Context, def *FlowDef, run store.Run, resumed bool) Outcome {
	for {
		val, steps, err := e.attempt(ctx, def, run, resumed)
		resumed = false // a next attempt loads the journal as every retry does
		if errors.Is(err, ErrSuspended) || errors.Is(err, ErrDetached) {
			// The run waits, PAUSED in the store: nothing here ends it.
			werr := e.w.sync(write{})
			if cur, gerr := e.cfg.Store.RunGet(context.WithoutCancel(ctx), run.ID); gerr == nil {
				run = cur
			}
			return Outcome{Run: run, Err: errors.Join(err, werr)}
		}
		if errors.Is(context.Cause(ctx), ErrReleased) {
			werr := e.w.sync(write{})
			return Outcome{Run: run, Err: errors.Join(ErrReleased, werr)}
		}
		if e.cfg.Worker != "" && errors.Is(err, ErrStoreFailed) {
			// Nothing final can be recorded: the worker gives the run back.
			werr := e.w.sync(write{})
			return Outcome{Run: run, Err: errors.Join(err, werr)}
		}
		p := store.RunTransitionParams{
			ID: run.ID, From: []store.RunState{store.RunRunning, store.RunCancelling, store.RunPaused}, Attempt: run.Attempt, Cause: "engine",
			Steps: steps,
		}
		if err == nil {
			p.Result, p.ResultRef, err = e.encodeResult(val)
		}
		switch {
		case err == nil:
			p.To = store.RunCompleted
		case ctx.Err() != nil:
			p.To, p.Error = store.RunCancelled, ErrorInfo(err)
		default:
			p.To, p.Error = store.RunFailed, ErrorInfo(err)
		}
		var ke *InvalidKeyError
		retry := p.To == store.RunFailed && run.Attempt <= def.Retries && !errors.Is(err, ErrNonDeterministic) && !errors.As(err, &ke)
		if retry {
			p.To, p.Cause = store.RunAwaitingRetry, "policy"
		}
		p.Message = fmt.Sprintf("attempt %d", run.Attempt)
		if err != nil {
			p.Message += ": " + err.Error()
		}
		if retry {
			p.Message += fmt.Sprintf("; retry %d of %d in %s", run.Attempt, def.Retries, def.RetryDelay)
		}
		// Task runs recorded lazily land before the run's end.
		if werr := e.w.sync(write{}); werr != nil {
			return Outcome{Run: run, Err: storeFailed(fmt.Errorf("record steps of run %s: %w", run.ID, werr))}
		}
		ended, terr := e.cfg.Store.RunTransition(context.WithoutCancel(ctx), p)
		if errors.Is(terr, store.ErrConflict) {
			// A paused run may be cancelled from outside (PAUSED goes
			// straight to CANCELLED): report what the store says.
			if cur, gerr := e.cfg.Store.RunGet(context.WithoutCancel(ctx), run.ID); gerr == nil && cur.State.Final() {
				return Outcome{Run: cur, Err: err}
			}
		}
		if terr != nil {
			return Outcome{Run: run, Err: storeFailed(fmt.Errorf("record end of run %s: %w", run.ID, terr))}
		}
		run = ended
		if !retry {
			if run.State == store.RunCompleted {
				return Outcome{Run: run, Result: val}
			}
			return Outcome{Run: run, Err: err}
		}
		if !e.sleep(ctx.Done(), def.RetryDelay) {
			// A cancel requested through the store may have ended the run
			// (CANCELLED) while it waited: report what the store says. A
			// worker's run is CANCELLING then (it is held): record its end.
			if cur, gerr := e.cfg.Store.RunGet(context.WithoutCancel(ctx), run.ID); gerr == nil {
				run = cur
			}
			if run.State == store.RunCancelling && !errors.Is(context.Cause(ctx), ErrReleased) {
				msg := fmt.Sprintf("attempt %d: cancelled while awaiting its retry", run.Attempt)
				if ended, terr := e.cfg.Store.RunTransition(context.WithoutCancel(ctx), store.RunTransitionParams{
					ID: run.ID, From: []store.RunState{store.RunCancelling}, To: store.RunCancelled, Attempt: run.Attempt,
					Error: &store.ErrorInfo{Message: msg, Kind: "cancelled"}, Cause: "engine", Message: msg,
				}); terr == nil {
					run = ended
				} else {
					return Outcome{Run: run, Err: storeFailed(fmt.Errorf("record end of run %s: %w", run.ID, terr))}
				}
			}
			return Outcome{Run: run, Err: err}
		}
		next, terr := e.cfg.Store.RunTransition(context.WithoutCancel(ctx), store.RunTransitionParams{
			ID: run.ID, From: []store.RunState{store.RunAwaitingRetry}, To: store.RunRunning, Attempt: run.Attempt,
			NextAttempt: true, Cause: "policy", Message: fmt.Sprintf("attempt %d", run.Attempt+1),
		})
		if terr != nil {
			// The run stays AWAITING_RETRY at its attempt: a worker gives
			// back that attempt.
			return Outcome{Run: run, Err: storeFailed(terr)}
		}
		run = next
	}
}

// attempt runs the flow function once with the run's journal and returns
// its result and the counts of its steps.
func (e *Engine) attempt(parent context.Context, def *FlowDef, run store.Run, resumed bool) (any, *store.StepCounts, error) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	if def.Timeout > 0 {
		var stop context.CancelFunc
		ctx, stop = withTimeoutCause(ctx, e.cfg.Clock, def.Timeout, &TimeoutError{What: "flow " + def.Name, Timeout: def.Timeout})
		defer stop()
	}
	fc := &FlowCtx{e: e, def: def, runID: run.ID, attempt: run.Attempt, ctx: ctx, cancel: cancel,
		inflight: map[*step]struct{}{}, seen: map[uint64]uint32{}}
	fc.steer.pending, fc.steer.read = run.PauseRequest, e.now()
	if run.Attempt > 1 || resumed {
		if err := fc.loadJournal(); err != nil {
			return nil, nil, storeFailed(err)
		}
	}
	max := def.MaxConcurrency
	if max <= 0 {
		max = e.cfg.MaxConcurrency
	}
	fc.pool = newPool(max)
	defer fc.pool.close()

	val, err := callBody(def, fc, run.Parameters)
	if serr := fc.stopWaiting(parent); serr != nil {
		return nil, fc.steps(), serr
	}
	if err == nil && ctx.Err() != nil {
		// The flow returned nil after its context ended (a cancel, a
		// timeout, a call with an invalid key, the worker releasing it):
		// it ignored the error, or stopped early, as AsCompleted does
		// without one. Its result may be partial, and steps it did not
		// wait for may never finish: the run ends by that cause.
		err = context.Cause(ctx)
	}
	if err == nil {
		fc.outstanding.Wait() // submitted work finishes before the run completes
		if cause := context.Cause(ctx); errors.Is(cause, ErrStoreFailed) {
			return nil, nil, cause // a step's outcome was not recorded: the journal is not what the flow saw
		}
		return val, fc.steps(), nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrStoreFailed) {
		err = cause
	}
	if cause := context.Cause(ctx); cause != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		var te *TimeoutError
		if errors.As(cause, &te) {
			err = te
		}
	}
	cancel(err)
	// A cancelled run waits briefly for its distributed steps, which their
	// workers are stopping at the same time (it is CANCELLING in the store).
	// A failing run does not wait for them, nor does a subflow cancelled
	// with its parent: nothing stops them before the run ends.
	remote := time.Duration(0)
	if parent.Err() != nil && run.ParentRunID == "" {
		remote = e.cfg.RemoteGrace
	}
	fc.abandon(e.cfg.AbandonGrace, remote)
	return nil, fc.steps(), err
}

func callBody(def *FlowDef, fc *FlowCtx, params json.RawMessage) (val any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: stack()}
		}
	}()
	return def.Body(fc, params)
}
