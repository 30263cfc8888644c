// Package deploy is the logic of deployments that every surface shares:
// the validation and normalisation of declarations (the API, the command
// line on the store, a program's baton.Deploy), their hashes and schedule
// IDs, runs started by hand, previews of fire times, backfills, and the
// scheduler's pass (Service.Tick) that the server runs on its clock.
//
// The same input gets the same error from every surface: an *Error whose
// message names the field, with the status the API answers (400, 404,
// 409); the command line exits 2 for each.
package deploy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/schedule"
	"github.com/batonhq/baton/internal/store"
)

// Error is a refused request: Status is the HTTP status the API answers
// (400 bad input, 404 unknown deployment or schedule, 409 a name taken).
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// BadInput returns a 400 Error.
func BadInput(format string, args ...any) error { return badInput(format, args...) }

func badInput(format string, args ...any) error {
	return &Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// UnknownDeployment is the error for a deployment name that does not exist.
func UnknownDeployment(name string) error {
	return &Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("unknown deployment %q", name)}
}

// ParamsFunc assembles and validates the parameters of a run of flow:
// given merged over the flow's registered defaults and validated against
// its schema (an error naming the parameter), or given as it is when no
// worker registered the flow.
type ParamsFunc func(ctx context.Context, flow string, given json.RawMessage) (json.RawMessage, error)

// Config configures a Service.
type Config struct {
	// Store is required.
	Store store.Store
	// Clock defaults to the system clock.
	Clock clock.Clock
	// Params validates parameters; default StoreParams(Store).
	Params ParamsFunc
	// Horizon is how far ahead the scheduler creates runs: the fire times
	// within it, and at least the next one. Default 5 minutes.
	Horizon time.Duration
	// MaxAhead bounds the runs created ahead per schedule. Default 10.
	MaxAhead int
	// Lead is how long before its planned start the scheduler applies the
	// overlap and concurrency policies to a run. Default 10 seconds.
	Lead time.Duration
	// Fired, when set, is called by a pass after each schedule's runs are
	// committed, with the runs created (benchmarks time it).
	Fired func(created []store.Run)
}

// Defaults of Config.
const (
	DefaultHorizon  = 5 * time.Minute
	DefaultMaxAhead = 10
	DefaultLead     = 10 * time.Second
	// MaxCatchup bounds the missed fire times one pass creates per
	// schedule (the latest ones).
	MaxCatchup = 1000
	// MaxBackfill bounds the runs of one backfill.
	MaxBackfill = 10000
)

// Service implements deployments on a store. Safe for concurrent use.
type Service struct {
	cfg Config
}

// New returns a service for cfg.
func New(cfg Config) *Service {
	cfg.Clock = clock.Or(cfg.Clock)
	if cfg.Params == nil {
		cfg.Params = StoreParams(cfg.Store)
	}
	if cfg.Horizon <= 0 {
		cfg.Horizon = DefaultHorizon
	}
	if cfg.MaxAhead <= 0 {
		cfg.MaxAhead = DefaultMaxAhead
	}
	if cfg.Lead <= 0 {
		cfg.Lead = DefaultLead
	}
	return &Service{cfg: cfg}
}

// StoreParams validates parameters against the flow's registration in st
// (store.FlowGet), read at each call.
func StoreParams(st store.Store) ParamsFunc {
	return func(ctx context.Context, flow string, given json.RawMessage) (json.RawMessage, error) {
		if t := bytes.TrimSpace(given); len(t) == 0 || string(t) == "null" {
			given = nil
		}
		f, err := st.FlowGet(ctx, flow)
		if errors.Is(err, store.ErrNotFound) {
			if given == nil {
				return json.RawMessage("null"), nil
			}
			if err := params.CheckJSON(given, "parameters"); err != nil {
				return nil, badInput("%v", err)
			}
			return given, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the parameter schema of flow %q: %w", flow, err)
		}
		return ResolveParams(f, given)
	}
}

// ResolveParams merges given over the registered flow f's defaults and
// validates the result against its schema.
func ResolveParams(f store.Flow, given json.RawMessage) (json.RawMessage, error) {
	var schema map[string]any
	if f.Parameters != nil {
		dec := json.NewDecoder(bytes.NewReader(f.Parameters))
		dec.UseNumber()
		if err := dec.Decode(&schema); err != nil {
			return nil, fmt.Errorf("flow %q: recorded parameter schema: %w", f.Name, err)
		}
	}
	if schema == nil {
		switch {
		case given != nil:
			return given, nil
		case len(f.Defaults) > 0:
			return f.Defaults, nil
		}
		return json.RawMessage("null"), nil
	}
	v, err := params.NewValidator(schema)
	if err != nil {
		return nil, fmt.Errorf("flow %q: recorded parameter schema: %w", f.Name, err)
	}
	out, err := v.Resolve(f.Name, f.Defaults, given)
	if err != nil {
		return nil, badInput("%v", err)
	}
	return out, nil
}

// mergeObjects merges the JSON object over key by key over base (both may
// be empty); anything but two objects: over wins.
func mergeObjects(base, over json.RawMessage) (json.RawMessage, error) {
	if t := bytes.TrimSpace(over); len(t) == 0 || string(t) == "null" {
		return base, nil
	}
	if t := bytes.TrimSpace(base); len(t) == 0 || string(t) == "null" {
		return over, nil
	}
	var b, o map[string]json.RawMessage
	if json.Unmarshal(base, &b) != nil || json.Unmarshal(over, &o) != nil || b == nil || o == nil {
		return over, nil
	}
	for k, v := range o {
		b[k] = v
	}
	return json.Marshal(b)
}

// Build validates a declaration and returns the deployment to store, with
// its hash, its schedules' IDs and their first fire times after now.
// source is store.SourceCode or store.SourceAPI.
func Build(req apitype.DeploymentRequest, source string, now time.Time) (store.Deployment, error) {
	d := store.Deployment{Name: req.Name, Flow: req.Flow, Description: req.Description, Queue: req.Queue,
		Tags: slices.Clone(req.Tags), MaxActive: req.MaxActive, Collision: req.Collision, Source: source}
	if strings.TrimSpace(d.Name) == "" {
		return d, badInput("field \"name\" is required: the deployment's unique name")
	}
	if strings.TrimSpace(d.Flow) == "" {
		return d, badInput("field \"flow\" is required: the name of the flow to run")
	}
	if d.Queue == "" {
		d.Queue = apitype.DefaultQueue
	}
	for _, f := range []struct{ name, value string }{{"name", d.Name}, {"flow", d.Flow}, {"queue", d.Queue}} {
		if err := store.CheckIdentifier(fmt.Sprintf("field %q", f.name), f.value); err != nil {
			return d, badInput("%v", err)
		}
	}
	for _, t := range d.Tags {
		if strings.TrimSpace(t) == "" {
			return d, badInput("field \"tags\": a tag is empty")
		}
		if err := store.CheckIdentifier("field \"tags\"", t); err != nil {
			return d, badInput("%v", err)
		}
	}
	slices.Sort(d.Tags)
	d.Tags = slices.Compact(d.Tags)
	if d.MaxActive < 0 {
		return d, badInput("field \"max_active\" must be 0 (no limit) or more, got %d", d.MaxActive)
	}
	if d.Collision == "" {
		d.Collision = store.CollisionQueue
	}
	if !slices.Contains(store.Collisions, d.Collision) {
		return d, badInput("field \"collision\": unknown policy %q; valid policies: %s", d.Collision, strings.Join(store.Collisions, ", "))
	}
	if p := bytes.TrimSpace(req.Parameters); len(p) > 0 && string(p) != "null" {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(p, &obj); err != nil || obj == nil {
			return d, badInput("field \"parameters\": expected a JSON object of parameters, got %s", clip(p))
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, p); err != nil {
			return d, badInput("field \"parameters\": %v", err)
		}
		d.Parameters = buf.Bytes()
	}
	seen := map[string]int{}
	for i, sr := range req.Schedules {
		s, err := buildSchedule(sr, now)
		if err != nil {
			if len(req.Schedules) > 1 {
				return d, badInput("schedule %d: %v", i+1, err)
			}
			return d, err
		}
		if j, dup := seen[s.ID]; dup {
			return d, badInput("schedule %d repeats schedule %d", i+1, j+1)
		}
		seen[s.ID] = i
		d.Schedules = append(d.Schedules, s)
	}
	d.Hash = declarationHash(d)
	return d, nil
}

// buildSchedule validates one schedule.
func buildSchedule(sr apitype.ScheduleRequest, now time.Time) (store.DeploymentSchedule, error) {
	s := store.DeploymentSchedule{Cron: strings.TrimSpace(sr.Cron), RRule: strings.TrimSpace(sr.RRule),
		Timezone: strings.TrimSpace(sr.Timezone), Overlap: sr.Overlap}
	if sr.Interval != "" {
		d, err := schedule.ParseInterval(sr.Interval)
		if err != nil {
			return s, badInput("%v", err)
		}
		s.Interval = d
	}
	if sr.Anchor != nil {
		if s.Interval == 0 {
			return s, badInput("field \"anchor\" is only for an interval schedule")
		}
		s.Anchor = sr.Anchor.UTC()
	}
	sc, err := schedule.Parse(specOf(s))
	if err != nil {
		return s, badInput("%v", err)
	}
	if s.Overlap == "" {
		s.Overlap = store.OverlapSkip
	}
	if !slices.Contains(store.Overlaps, s.Overlap) {
		return s, badInput("field \"overlap\": unknown policy %q; valid policies: %s", s.Overlap, strings.Join(store.Overlaps, ", "))
	}
	if s.Catchup, err = ParseCatchup(sr.Catchup); err != nil {
		return s, err
	}
	if sr.Jitter != "" {
		if s.Jitter, err = schedule.ParseDuration("jitter", sr.Jitter); err != nil {
			return s, badInput("%v", err)
		}
	}
	s.ID = ScheduleID(s)
	s.NextFire = sc.Next(now)
	s.CreatedAt = now
	return s, nil
}

// ParseCatchup parses a catch-up window: "" or "0" (only the latest missed
// fire time), "all" (every one), or a duration.
func ParseCatchup(v string) (time.Duration, error) {
	switch strings.TrimSpace(v) {
	case "", "0":
		return 0, nil
	case "all":
		return store.CatchupAll, nil
	}
	d, err := schedule.ParseDuration("catchup", v)
	if err != nil {
		return 0, badInput("%v (or all: every missed fire time)", err)
	}
	return d, nil
}

// FormatCatchup is the inverse of ParseCatchup.
func FormatCatchup(d time.Duration) string {
	switch {
	case d == store.CatchupAll:
		return "all"
	case d == 0:
		return "0"
	}
	return d.String()
}

// specOf is the schedule package's spec of s.
func specOf(s store.DeploymentSchedule) schedule.Spec {
	return schedule.Spec{Cron: s.Cron, Interval: s.Interval, Anchor: s.Anchor, RRule: s.RRule, Timezone: s.Timezone}
}

// ScheduleID derives the stable ID of a schedule from its spec.
func ScheduleID(s store.DeploymentSchedule) string {
	h := sha256.New()
	fmt.Fprintf(h, "cron=%s\x00interval=%d\x00anchor=%d\x00rrule=%s\x00tz=%s", s.Cron, int64(s.Interval),
		anchorNanos(s.Anchor), s.RRule, s.Timezone)
	return "s" + hex.EncodeToString(h.Sum(nil))[:11]
}

func anchorNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// declarationHash hashes what a declaration says (not its operational
// state or times).
func declarationHash(d store.Deployment) string {
	type sched struct {
		ID, Overlap     string
		Catchup, Jitter int64
	}
	v := struct {
		Flow, Description, Queue, Collision, Source string
		Parameters                                  json.RawMessage
		Tags                                        []string
		MaxActive                                   int
		Schedules                                   []sched
	}{d.Flow, d.Description, d.Queue, d.Collision, d.Source, d.Parameters, d.Tags, d.MaxActive, nil}
	for _, s := range d.Schedules {
		v.Schedules = append(v.Schedules, sched{s.ID, s.Overlap, int64(s.Catchup), int64(s.Jitter)})
	}
	b, _ := json.Marshal(v)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// clip shows a JSON document in a message, shortened.
func clip(raw []byte) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// translate maps the store's sentinels to Errors.
func translate(err error, name string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		if strings.Contains(err.Error(), "has no schedule") {
			return &Error{Status: http.StatusNotFound, Msg: strings.TrimSuffix(err.Error(), ": "+store.ErrNotFound.Error())}
		}
		return UnknownDeployment(name)
	case errors.Is(err, store.ErrConflict) && strings.Contains(err.Error(), "already exists"):
		return &Error{Status: http.StatusConflict, Msg: fmt.Sprintf("deployment %q already exists; change it with: deployments update %s", name, name)}
	}
	return err
}

// Put validates a declaration and writes it (mode store.PutCreate,
// PutUpdate or PutRegister), checking its parameters against the flow's
// schema. It returns the stored deployment and whether anything changed.
func (s *Service) Put(ctx context.Context, mode string, req apitype.DeploymentRequest, source string, actor store.Actor) (store.Deployment, bool, error) {
	now := s.cfg.Clock.Now()
	d, err := Build(req, source, now)
	if err != nil {
		return d, false, err
	}
	if d.Parameters != nil {
		if _, err := s.cfg.Params(ctx, d.Flow, d.Parameters); err != nil {
			return d, false, err
		}
	}
	if source == store.SourceAPI {
		if err := s.knownQueue(ctx, d, now); err != nil {
			return d, false, err
		}
	}
	out, changed, err := s.cfg.Store.DeploymentPut(ctx, store.DeploymentPutParams{Mode: mode, Deployment: d, Actor: actor, At: now})
	return out, changed, translate(err, d.Name)
}

// knownQueue refuses, for a deployment declared through the API or the
// command line, a queue that nothing knows: not the default queue, not
// declared (queues create), served by no live worker, and not the queue
// the deployment already has. A typo would otherwise create runs that wait
// for ever. (A program's declarations are not checked: their worker serves
// their queues, or will.)
func (s *Service) knownQueue(ctx context.Context, d store.Deployment, now time.Time) error {
	if d.Queue == apitype.DefaultQueue {
		return nil
	}
	qs, err := s.cfg.Store.QueueDeclared(ctx)
	if err != nil {
		return err
	}
	for _, q := range qs {
		if q.Name == d.Queue {
			return nil
		}
	}
	ws, err := s.cfg.Store.WorkerList(ctx, now.Add(-store.LiveWorkerWindow))
	if err != nil {
		return err
	}
	for _, w := range ws {
		if slices.Contains(w.Queues, d.Queue) {
			return nil
		}
	}
	if old, err := s.cfg.Store.DeploymentGet(ctx, d.Name); err == nil && old.Queue == d.Queue {
		return nil
	}
	return badInput("field \"queue\": unknown queue %q: not declared and served by no live worker; declare it with: baton queues create %s",
		d.Queue, d.Queue)
}

// Get returns a deployment.
func (s *Service) Get(ctx context.Context, name string) (store.Deployment, error) {
	if err := checkName(name); err != nil {
		return store.Deployment{}, err
	}
	d, err := s.cfg.Store.DeploymentGet(ctx, name)
	return d, translate(err, name)
}

func checkName(name string) error {
	if strings.TrimSpace(name) == "" {
		return badInput("a deployment name is required")
	}
	if err := store.CheckIdentifier("deployment name", name); err != nil {
		return badInput("%v", err)
	}
	return nil
}

// Delete deletes a deployment.
func (s *Service) Delete(ctx context.Context, name string, actor store.Actor) error {
	if err := checkName(name); err != nil {
		return err
	}
	return translate(s.cfg.Store.DeploymentDelete(ctx, name, actor, s.cfg.Clock.Now()), name)
}

// Pause pauses (paused true) or resumes a deployment, or one schedule of
// it, with a note.
func (s *Service) Pause(ctx context.Context, name, scheduleID string, paused bool, note string, actor store.Actor) (store.Deployment, error) {
	if err := checkName(name); err != nil {
		return store.Deployment{}, err
	}
	d, err := s.cfg.Store.DeploymentPause(ctx, store.DeploymentPauseParams{Name: name, ScheduleID: scheduleID, Paused: paused,
		Note: note, Actor: actor, At: s.cfg.Clock.Now()})
	return d, translate(err, name)
}

// activeStates are the states of a run that holds a slot of its
// deployment (with SCHEDULED runs already admitted).
var activeStates = []store.RunState{store.RunPending, store.RunRunning, store.RunCancelling, store.RunAwaitingRetry, store.RunPaused}

// Run starts a run of a deployment now, with given merged over the
// deployment's parameters; the deployment's limit of active runs applies
// at once (its collision policy).
func (s *Service) Run(ctx context.Context, name string, given json.RawMessage, actor store.Actor) (store.Run, error) {
	d, err := s.Get(ctx, name)
	if err != nil {
		return store.Run{}, err
	}
	merged, err := mergeObjects(d.Parameters, given)
	if err != nil {
		return store.Run{}, badInput("parameters: %v", err)
	}
	p, err := s.cfg.Params(ctx, d.Flow, merged)
	if err != nil {
		return store.Run{}, err
	}
	now := s.cfg.Clock.Now()
	r := store.Run{ID: uuid.Must(uuid.NewV7()).String(), Flow: d.Flow, State: store.RunScheduled, Attempt: 1, Parameters: p,
		Queue: d.Queue, Deployment: d.Name, CreatedAt: now, UpdatedAt: now}
	msg := "started by hand from deployment " + d.Name
	var hist []store.DeploymentHistoryEntry
	if d.MaxActive > 0 {
		active, err := s.active(ctx, d, maxTime(d.GatedUntil, now))
		if err != nil {
			return store.Run{}, err
		}
		if len(active) >= d.MaxActive {
			switch d.Collision {
			case store.CollisionQueue:
				r.State = store.RunAwaitingSlot
				msg += fmt.Sprintf("; waits for a slot: %d of max %d runs active (collision policy queue)", len(active), d.MaxActive)
				raw, _ := json.Marshal(map[string]any{"run_id": r.ID})
				hist = append(hist, store.DeploymentHistoryEntry{Deployment: d.Name, At: now, Actor: actor,
					Action: store.ActionScheduledRunQueued, Reason: msg, Payload: raw})
			case store.CollisionSkip:
				r.State, r.EndedAt = store.RunCancelled, now
				r.Error = &store.ErrorInfo{Message: fmt.Sprintf("skipped: deployment %s has %d of max %d runs active (collision policy skip)",
					d.Name, len(active), d.MaxActive), Kind: "cancelled"}
				msg = r.Error.Message
				raw, _ := json.Marshal(map[string]any{"run_id": r.ID})
				hist = append(hist, store.DeploymentHistoryEntry{Deployment: d.Name, At: now, Actor: actor,
					Action: store.ActionScheduledRunSkip, Reason: msg, Payload: raw})
			case store.CollisionCancelOldest:
				if err := s.cancelRuns(ctx, d, active[:len(active)-d.MaxActive+1], now,
					"cancelled to make room for a newer run (collision policy cancel_oldest)"); err != nil {
					return store.Run{}, err
				}
			}
		}
	}
	runs, err := s.cfg.Store.DeploymentFire(ctx, store.DeploymentFireParams{Deployment: d.Name, Runs: []store.Run{r},
		Message: msg, History: hist, At: now})
	if err != nil {
		return store.Run{}, err
	}
	if len(runs) != 1 {
		return store.Run{}, fmt.Errorf("run of deployment %s: not created", d.Name)
	}
	return runs[0], nil
}

// active returns the runs of d that hold a slot, oldest first: those
// started and not ended, and the SCHEDULED ones planned up to admitted
// (the policies let them through; zero: none).
func (s *Service) active(ctx context.Context, d store.Deployment, admitted time.Time) ([]store.Run, error) {
	out, err := s.cfg.Store.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: d.Name, States: activeStates})
	if err != nil {
		return nil, err
	}
	if !admitted.IsZero() {
		sched, err := s.cfg.Store.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: d.Name,
			States: []store.RunState{store.RunScheduled}, ScheduledBefore: admitted})
		if err != nil {
			return nil, err
		}
		out = append(out, sched...)
	}
	slices.SortStableFunc(out, func(a, b store.Run) int {
		if c := a.PlannedAt().Compare(b.PlannedAt()); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// cancelRuns cancels runs of d for a policy, recording it in d's history.
func (s *Service) cancelRuns(ctx context.Context, d store.Deployment, runs []store.Run, now time.Time, why string) error {
	for _, r := range runs {
		to := store.RunCancelled
		if slices.Contains(store.LeasedRunStates, r.State) {
			to = store.RunCancelling // its worker stops it
		}
		raw, _ := json.Marshal(map[string]any{"run_id": r.ID, "state": r.State})
		_, err := s.cfg.Store.DeploymentTransition(ctx, store.RunTransitionParams{ID: r.ID,
			From: append(slices.Clone(activeStates), store.RunScheduled, store.RunAwaitingSlot), To: to,
			Cause: "policy", Message: why, At: now,
			Error: &store.ErrorInfo{Message: why, Kind: "cancelled"}},
			[]store.DeploymentHistoryEntry{{Deployment: d.Name, At: now, Action: store.ActionScheduledRunCancel, Reason: why, Payload: raw}})
		if err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// Fire is a coming fire time of a schedule.
type Fire struct {
	Schedule store.DeploymentSchedule
	At       time.Time
	Local    time.Time
}

// Next returns the next count fire times (at most 1000) of every schedule
// of a deployment after now, merged in time order and cut to count.
func (s *Service) Next(ctx context.Context, name string, count int) ([]Fire, error) {
	if count < 1 || count > 1000 {
		return nil, badInput("count must be from 1 to 1000, got %d", count)
	}
	d, err := s.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	return NextFires(d, s.cfg.Clock.Now(), count)
}

// NextFires returns the next count fire times of d's schedules after now.
func NextFires(d store.Deployment, now time.Time, count int) ([]Fire, error) {
	var out []Fire
	for _, sch := range d.Schedules {
		sc, err := schedule.Parse(specOf(sch))
		if err != nil {
			return nil, fmt.Errorf("schedule %s: %w", sch.ID, err)
		}
		loc := time.UTC
		if sch.Timezone != "" {
			if l, err := time.LoadLocation(sch.Timezone); err == nil {
				loc = l
			}
		}
		for _, t := range schedule.NextN(sc, now, count) {
			out = append(out, Fire{Schedule: sch, At: t.UTC(), Local: t.In(loc)})
		}
	}
	slices.SortStableFunc(out, func(a, b Fire) int { return a.At.Compare(b.At) })
	if len(out) > count {
		out = out[:count]
	}
	return out, nil
}

// Backfill creates the runs of the fire times from < t <= to of every
// schedule of a deployment, SCHEDULED to start now (their planned start
// is the fire time, in the past), unless they exist; it returns the runs
// created and how many existed.
func (s *Service) Backfill(ctx context.Context, name string, from, to time.Time, actor store.Actor) ([]store.Run, int, error) {
	if from.IsZero() || to.IsZero() {
		return nil, 0, badInput("backfill needs from and to times (RFC 3339)")
	}
	if !from.Before(to) {
		return nil, 0, badInput("backfill: from (%s) must be before to (%s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	now := s.cfg.Clock.Now()
	if to.After(now) {
		return nil, 0, badInput("backfill: to (%s) is in the future; the scheduler creates the coming runs", to.Format(time.RFC3339))
	}
	d, err := s.Get(ctx, name)
	if err != nil {
		return nil, 0, err
	}
	if len(d.Schedules) == 0 {
		return nil, 0, badInput("deployment %q has no schedule to backfill", name)
	}
	p, err := s.cfg.Params(ctx, d.Flow, d.Parameters)
	if err != nil {
		return nil, 0, err
	}
	var created []store.Run
	existed := 0
	total := 0
	for _, sch := range d.Schedules {
		sc, err := schedule.Parse(specOf(sch))
		if err != nil {
			return nil, 0, fmt.Errorf("schedule %s: %w", sch.ID, err)
		}
		fires := schedule.Between(sc, from, to, MaxBackfill+1)
		total += len(fires)
		if total > MaxBackfill {
			return nil, 0, badInput("backfill: the range holds more than %d fire times; backfill a shorter range", MaxBackfill)
		}
		runs := make([]store.Run, len(fires))
		for i, t := range fires {
			runs[i] = s.plannedRun(d, sch, t, p, now)
		}
		raw, _ := json.Marshal(map[string]any{"schedule": sch.ID, "from": from.UTC(), "to": to.UTC(), "fire_times": len(fires)})
		out, err := s.cfg.Store.DeploymentFire(ctx, store.DeploymentFireParams{Deployment: d.Name, ScheduleID: sch.ID, Runs: runs,
			Message: "backfill of deployment " + d.Name,
			History: []store.DeploymentHistoryEntry{{Deployment: d.Name, At: now, Actor: actor, Action: store.ActionBackfill, Payload: raw}},
			At:      now})
		if err != nil {
			return nil, 0, err
		}
		created = append(created, out...)
		existed += len(fires) - len(out)
	}
	return created, existed, nil
}

// plannedRun is the run of fire time t of schedule sch of d.
func (s *Service) plannedRun(d store.Deployment, sch store.DeploymentSchedule, t time.Time, p json.RawMessage, now time.Time) store.Run {
	at := t.Add(schedule.Jitter(d.Name+"/"+sch.ID, t, sch.Jitter)).UTC()
	return store.Run{ID: uuid.Must(uuid.NewV7()).String(), Flow: d.Flow, State: store.RunScheduled, Attempt: 1, Parameters: p,
		Queue: d.Queue, Deployment: d.Name, ScheduleID: sch.ID, ScheduledAt: at, CreatedAt: now, UpdatedAt: now}
}
