// Package server is Baton's API server: the REST API under /api/v1, the
// worker protocol (registration, heartbeats, claims, completions) and the
// engine protocol through which workers' engines record their runs. It keeps
// heartbeats in memory and writes them in batches, wakes long-polling
// workers from store notifications, takes back expired leases and deletes old
// runs.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/retention"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/startstop"
	"github.com/batonhq/baton/internal/store"
)

// Config configures a Server.
type Config struct {
	// Store is the database. Required.
	Store store.Store
	// Blobs is the blob directory for large results and the large parts of
	// inputs. Required.
	Blobs *blob.Store
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// LeaseTimeout is how long a worker's runs and task runs stay leased
	// without a heartbeat. Default 15s.
	LeaseTimeout time.Duration
	// HeartbeatInterval is how often workers are told to heartbeat. Default 1s.
	HeartbeatInterval time.Duration
	// MaxAttempts bounds the attempts of a run rescheduled after its worker
	// crashed. Default 5.
	MaxAttempts int
	// Retention, when non-zero, deletes finished runs older than it.
	Retention time.Duration
	// MaxBodyBytes bounds JSON request bodies. Default 32 MiB.
	MaxBodyBytes int64
	// MaxBlobBytes bounds the blobs (large results and inputs) that
	// workers upload with PUT /api/v1/blobs, which are streamed to the blob
	// store rather than held in memory. Default 4 GiB: a result a task can produce
	// locally can be produced on a worker.
	MaxBlobBytes int64
	// PollInterval is how often long polls re-check the store without a
	// notification: a safety net when the store notifies (default 15s, so
	// an idle system does close to no database work), the only wake-up when
	// it does not (default 500ms).
	PollInterval time.Duration
	// Clock is the server's only source of time: leases and their expiry,
	// heartbeats, long polls and their re-checks, retention ages, and the
	// times it records. Default the system clock; tests pass a clock.Fake.
	Clock clock.Clock

	// Deployments' scheduler (scheduler.go).

	// SchedulerInterval is how often the scheduler runs its pass (when
	// this server holds the scheduler lock). Zero (the default): with each
	// maintenance pass (every LeaseTimeout/3); negative: this server never
	// schedules. The policies of a deployment apply to a run 10 s, or
	// twice the interval, before its planned start.
	SchedulerInterval time.Duration
	// ScheduleHorizon is how far ahead scheduled runs are created (at
	// least the next fire time of each schedule). Default 5 minutes.
	ScheduleHorizon time.Duration
	// LateGrace is how long after its planned start a run that has not
	// started shows as late. Default 1 minute.
	LateGrace time.Duration
}

// WithDefaults returns c with zero fields set to their defaults.
func (c Config) WithDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Clock = clock.Or(c.Clock)
	if c.LeaseTimeout <= 0 {
		c.LeaseTimeout = 15 * time.Second
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = time.Second
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.ScheduleHorizon <= 0 {
		c.ScheduleHorizon = deploy.DefaultHorizon
	}
	if c.LateGrace <= 0 {
		c.LateGrace = api.LateGrace
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.MaxBlobBytes <= 0 {
		c.MaxBlobBytes = 4 << 30
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 500 * time.Millisecond
		if _, ok := c.Store.(store.Notifier); ok {
			c.PollInterval = 15 * time.Second
		}
	}
	return c
}

func (c Config) validate() error {
	if c.Store == nil || c.Blobs == nil {
		return errors.New("server: Config.Store and Config.Blobs are required")
	}
	return nil
}

// Server serves the API. Create it with New, serve Handler, and call Start
// and Stop around it.
type Server struct {
	cfg    Config
	st     store.Store
	log    *slog.Logger
	clk    clock.Clock
	routes []route
	life   startstop.Base
	// timerKick wakes the timers loop (kickTimers).
	timerKick chan struct{}

	runsSig, tasksSig, doneSig signal
	// changeSig is notified when runs may have changed (writes through this
	// server, store notifications, timers): the web UI's streams re-read.
	changeSig signal
	// stopSig is notified when the runs to stop change (held heartbeats answer).
	stopSig signal
	// stopKick asks the background refresher to re-read the runs to stop.
	stopKick chan struct{}
	// lastWork is when work last became claimable (unix ns): claims that
	// found nothing re-check quickly for a while after, because rows another
	// claimer had locked (SKIP LOCKED) may come back without a notification.
	lastWork atomic.Int64

	mu      sync.Mutex
	seen    map[string]time.Time // worker ID -> last heartbeat, flushed in batches
	stops   map[string]int       // runs whose work must stop -> the attempt to stop
	stopGen int64                // generation of stops, changed with it
	// stopAdds counts addStops calls; added records, per run addStops put
	// in stops, the count after it, so that a store read begun before it
	// (which may miss the run) does not take it out again.
	stopAdds int64
	added    map[string]int64
	flows    map[string]flowSchema   // parameter schemas registered with this server
	workers  map[string]store.Worker // registrations seen by this server
	wakes    map[string]*claimOrder  // worker ID -> the order of its claims
	stopping bool

	deploy    *deploy.Service // deployments (deployments.go)
	sched     schedulerState  // the scheduler's lock (scheduler.go)
	queueInfo queueCache      // the declared work queues (queues.go)
}

// New returns a server for cfg.
func New(cfg Config) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, clk: cfg.Clock, seen: map[string]time.Time{},
		stops: map[string]int{}, added: map[string]int64{}, flows: map[string]flowSchema{}, workers: map[string]store.Worker{},
		wakes:    map[string]*claimOrder{},
		stopKick: make(chan struct{}, 1), stopGen: cfg.Clock.Now().UnixNano()}
	s.timerKick = make(chan struct{}, 1)
	s.stopSig.init()
	s.runsSig.init()
	s.tasksSig.init()
	s.doneSig.init()
	interval := cfg.SchedulerInterval
	if interval == 0 {
		interval = cfg.LeaseTimeout / 3
	}
	s.deploy = deploy.New(deploy.Config{Store: cfg.Store, Clock: cfg.Clock, Params: s.deployParams, Horizon: cfg.ScheduleHorizon,
		Lead: max(deploy.DefaultLead, 2*interval)})
	s.changeSig.init()
	s.routes = s.routeTable()
	return s, nil
}

// Start runs the background work: notifications, heartbeat flushes, lease
// expiry and retention. It returns at once; the work goes on until Stop
// (ctx bounds only the subscription to the store's notifications). Start
// of a running server does nothing; a stopped server does not start again.
func (s *Server) Start(ctx context.Context) error {
	return s.life.Start(ctx, func(ctx context.Context) error {
		if n, ok := s.st.(store.Notifier); ok {
			ch, err := n.Subscribe(ctx)
			if err != nil {
				return fmt.Errorf("subscribe to store notifications: %w", err)
			}
			s.life.Go(func() { s.listen(ch) })
		}
		if err := s.refreshStops(ctx); err != nil {
			s.log.Warn("load runs to stop", "err", err)
		}
		s.life.Go(func() { s.stopRefresher(ctx) })
		s.life.Go(func() { s.every(ctx, s.cfg.LeaseTimeout/3, s.maintain) })
		s.life.Go(func() { s.timers(ctx) })
		if s.cfg.Retention > 0 {
			s.life.Go(func() { s.every(ctx, time.Hour, s.retain) })
		}
		if s.cfg.SchedulerInterval > 0 {
			s.life.Go(func() { s.scheduler(ctx) })
		}
		s.life.Go(func() { <-ctx.Done(); s.releaseScheduler() })
		return nil
	})
}

// Stop answers the requests held (long polls and heartbeats) at once, ends
// the background work and returns when it has ended, after a final
// heartbeat flush. Safe to call twice and concurrently; Stop of a server
// never started does nothing.
func (s *Server) Stop() {
	s.life.Stop(func() {
		s.mu.Lock()
		s.stopping = true
		for id, o := range s.wakes {
			close(o.ch)
			delete(s.wakes, id)
		}
		s.mu.Unlock()
		s.runsSig.notify()
		s.tasksSig.notify()
		s.doneSig.notify()
		s.stopSig.notify()
		s.changeSig.notify()
	}, func() {
		if err := s.flushHeartbeats(context.Background()); err != nil {
			s.log.Warn("extend leases", "err", err)
		}
	})
}

func (s *Server) every(ctx context.Context, d time.Duration, fn func(context.Context)) {
	t := s.clk.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
			fn(ctx)
		}
	}
}

func (s *Server) listen(ch <-chan store.Notification) {
	for n := range ch {
		s.changeSig.notify()
		switch n.Kind {
		case "runs":
			s.lastWork.Store(s.clk.Now().UnixNano())
			s.runsSig.notify()
		case "tasks":
			s.lastWork.Store(s.clk.Now().UnixNano())
			s.tasksSig.notify()
		case "done":
			s.doneSig.notify()
		case "queues":
			s.queueInfo.invalidate()
			s.runsSig.notify()
			s.tasksSig.notify()
		case "cancel":
			// A run is being cancelled, or ended while task runs of it still
			// run: re-read the runs to stop (with their attempts).
			select {
			case s.stopKick <- struct{}{}:
			default:
			}
		}
	}
}

// timers fires the timers of waits (sleeps, deadlines) when they are due:
// it waits on the clock for the earliest due time the store holds, and
// reads it again when kicked (a wait begun through this server, and every
// maintenance pass, for the waits begun elsewhere). With no timer pending
// it waits on nothing but the kick. Servers sharing a store each fire; a
// wait is resolved once.
func (s *Server) timers(ctx context.Context) {
	for {
		next, err := s.st.TimersNext(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("read the next timer", "err", err)
		}
		var due <-chan time.Time
		var t clock.Timer
		if err == nil && !next.IsZero() {
			if d := next.Sub(s.clk.Now()); d > 0 {
				t = s.clk.NewTimer(d)
				due = t.Chan()
			} else if s.fireTimers(ctx) == nil {
				continue
			}
		}
		select {
		case <-ctx.Done():
		case <-due:
			s.fireTimers(ctx)
		case <-s.timerKick:
		}
		if t != nil {
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// kickTimers makes the timers loop read the next due time again.
func (s *Server) kickTimers() {
	select {
	case s.timerKick <- struct{}{}:
	default:
	}
}

// fireTimers resolves the waits whose deadline passed, in batches.
func (s *Server) fireTimers(ctx context.Context) error {
	for {
		n, err := s.st.TimersFire(ctx, store.TimersFireParams{Now: s.clk.Now(), Limit: timerBatch})
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("fire timers", "err", err)
			}
			return err
		}
		if n > 0 {
			s.runsSig.notify()
			s.doneSig.notify()
			s.changeSig.notify()
		}
		if n < timerBatch {
			return nil
		}
	}
}

// timerBatch bounds the waits one transaction of fireTimers resolves.
const timerBatch = 500

// maintain flushes heartbeats, takes back expired leases and refreshes the
// set of cancelling runs.
func (s *Server) maintain(ctx context.Context) {
	s.kickTimers()
	s.flushLeases(ctx)
	exp, err := s.st.LeasesExpire(ctx, store.LeasesExpireParams{At: s.clk.Now(), MaxAttempts: s.cfg.MaxAttempts})
	if err != nil {
		s.log.Warn("expire leases", "err", err)
	} else if len(exp.Crashed) > 0 || exp.TaskRuns > 0 {
		s.log.Info("took back expired leases", "runs", len(exp.Crashed), "rescheduled", exp.Rescheduled, "task_runs", exp.TaskRuns)
		s.runsSig.notify()
		s.tasksSig.notify()
		s.changeSig.notify()
	}
	if err := s.refreshStops(ctx); err != nil {
		s.log.Warn("refresh runs to stop", "err", err)
	}
	if s.cfg.SchedulerInterval == 0 {
		if _, _, err := s.SchedulerPass(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("scheduler pass", "err", err)
		}
	}
	s.fallBack(ctx)
}

// flushLeases flushes heartbeats and, when the write fails, tries again
// with a backoff (100 ms, doubling to 1 s) until it succeeds or the next
// flush is due: a failed lease extension must not wait a whole period, or
// the leases of live workers would expire after two failures in a row.
func (s *Server) flushLeases(ctx context.Context) {
	err := s.flushHeartbeats(ctx)
	if err == nil {
		return
	}
	deadline := s.clk.Now().Add(s.cfg.LeaseTimeout / 3)
	backoff := 100 * time.Millisecond
	for err != nil {
		s.log.Warn("extend leases; trying again", "in", backoff, "err", err)
		if s.clk.Now().Add(backoff).After(deadline) {
			return // the next flush tries again
		}
		if !clock.Sleep(ctx, s.clk, backoff) {
			return
		}
		backoff = min(2*backoff, time.Second)
		err = s.flushHeartbeats(ctx)
	}
}

// flushHeartbeats extends the leases of the workers seen since the last
// flush. When that fails, the workers are kept for the next flush (with the
// time of their latest heartbeat) and the error is returned.
func (s *Server) flushHeartbeats(ctx context.Context) error {
	s.mu.Lock()
	ids := make([]string, 0, len(s.seen))
	taken := maps.Clone(s.seen)
	for id := range s.seen {
		ids = append(ids, id)
	}
	clear(s.seen)
	s.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	now := s.clk.Now()
	if err := s.st.LeasesExtend(ctx, store.LeasesExtendParams{WorkerIDs: ids, Until: now.Add(s.cfg.LeaseTimeout), At: now}); err != nil {
		s.mu.Lock()
		for id, at := range taken {
			if cur, ok := s.seen[id]; !ok || cur.Before(at) {
				s.seen[id] = at
			}
		}
		s.mu.Unlock()
		return fmt.Errorf("extend the leases of %d workers: %w", len(ids), err)
	}
	return nil
}

// refreshStops replaces the runs to stop with the store's list: CANCELLING
// runs and ended runs whose distributed task runs still run (a run leaves
// the list when its last task run has stopped, or when it is retried).
func (s *Server) refreshStops(ctx context.Context) error {
	s.mu.Lock()
	since := s.stopAdds
	s.mu.Unlock()
	list, err := s.st.RunStopList(ctx)
	if err != nil {
		return err
	}
	m := make(map[string]int, len(list))
	for _, r := range list {
		m[r.RunID] = r.Attempt
	}
	s.mu.Lock()
	for id, n := range s.added {
		if n <= since {
			delete(s.added, id) // the read saw it, or its end
		} else if _, ok := m[id]; !ok {
			m[id] = s.stops[id] // added during the read: keep it
		}
	}
	changed := !maps.Equal(m, s.stops)
	if changed {
		s.stops = m
		s.stopGen++
	}
	s.mu.Unlock()
	if changed {
		s.stopSig.notify()
	}
	return nil
}

// addStops adds runs to stop at once (the cancel API may know before the
// store notifies) and wakes the held heartbeats when that changes the list.
func (s *Server) addStops(rs ...store.RunStop) {
	s.mu.Lock()
	s.stopAdds++
	changed := false
	for _, r := range rs {
		if a, ok := s.stops[r.RunID]; !ok || a != r.Attempt {
			s.stops[r.RunID] = r.Attempt
			changed = true
		}
		s.added[r.RunID] = s.stopAdds
	}
	if changed {
		// Only a change answers the held heartbeats: a worker told the
		// same list again would hold its next heartbeat on a generation
		// the list has passed through without changing.
		s.stopGen++
	}
	s.mu.Unlock()
	if changed {
		s.stopSig.notify()
	}
}

// stopRefresher re-reads the runs to stop when a "cancel" notification
// asks for it; notifications arriving during a read share the next one.
func (s *Server) stopRefresher(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stopKick:
		}
		if err := s.refreshStops(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("refresh runs to stop", "err", err)
		}
	}
}

func (s *Server) retain(ctx context.Context) {
	if _, err := s.RunRetention(ctx, s.cfg.Retention); err != nil {
		s.log.Warn("retention", "err", err)
	}
}

// RunRetention deletes finished runs older than age, in small batches that
// do not block live work, and the blobs only they used.
func (s *Server) RunRetention(ctx context.Context, age time.Duration) (apitype.RetentionResult, error) {
	return retention.Run(ctx, s.st, s.cfg.Blobs, s.clk.Now().Add(-age))
}

// signal wakes every goroutine waiting on the current generation.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (g *signal) init() { g.ch = make(chan struct{}) }

// wait returns a channel closed at the next notify.
func (g *signal) wait() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.ch
}

func (g *signal) notify() {
	g.mu.Lock()
	close(g.ch)
	g.ch = make(chan struct{})
	g.mu.Unlock()
}

// Handler returns the HTTP handler of the API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range s.routes {
		limit := s.cfg.MaxBodyBytes
		if rt.maxBody != nil {
			limit = rt.maxBody(s.cfg)
		}
		mux.Handle(rt.method+" "+rt.pattern, s.wrapLimit(func(w http.ResponseWriter, r *http.Request) error {
			if err := checkQuery(rt, r); err != nil {
				return err
			}
			err := rt.handle(w, r)
			if rt.method != "GET" && !rt.quiet {
				s.changeSig.notify() // a write: the UI's streams look again
			}
			return err
		}, limit))
	}
	ui := s.uiHandler()
	mux.Handle("/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		if isUIPath(r.URL.Path) {
			ui.ServeHTTP(w, r)
			return nil
		}
		return s.noRoute(mux, w, r)
	}))
	mux.Handle(api.MalformedURLPath, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		target := r.URL.Query().Get("target")
		_, err := url.ParseRequestURI(target)
		if err == nil { // called directly, not through the listener
			return errNotFound("no route %s %s; the API is described at %s/openapi.json", r.Method, r.URL.Path, apitype.Prefix)
		}
		return errBadRequest("malformed URL %q: %v; escape reserved characters in paths (%%25 for %%)", target, errors.Unwrap(err))
	}))
	return mux
}

// Routes returns the "METHOD pattern" of every route, for tests and docs.
func (s *Server) Routes() []string {
	out := make([]string, len(s.routes))
	for i, rt := range s.routes {
		out[i] = rt.method + " " + rt.pattern
	}
	return out
}
