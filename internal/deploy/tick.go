package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/internal/schedule"
	"github.com/batonhq/baton/internal/store"
)

// The scheduler's pass. Each pass does two things:
//
//  1. Plan: for every schedule whose planned runs do not reach now +
//     Horizon (store.DeploymentDue), create the runs of its fire times up
//     to there (at least the next one, at most MaxAhead), and, after a
//     downtime, of the fire times it missed that its catch-up window keeps.
//     A schedule's LastFire moves forward with them, and the unique index
//     on (deployment, schedule, planned start) refuses a run planned twice,
//     so a pass that races another, or a redeploy, never doubles a run.
//  2. Gate: for every deployment whose runs become due within Lead
//     (store.DeploymentGating), apply the overlap policy of their schedule
//     and the deployment's limit of active runs, in order of planned start,
//     before any worker can claim them; and give the runs waiting for a
//     slot (AWAITING_SLOT) their turn when slots are free.

// TickResult counts what a pass did.
type TickResult struct {
	Created   int // runs created
	Skipped   int // due runs cancelled by a policy
	Queued    int // due runs moved to AWAITING_SLOT
	Promoted  int // AWAITING_SLOT runs moved to SCHEDULED
	Cancelled int // active runs cancelled by a policy (cancel_other, cancel_oldest)
	// Lag is, per created run whose planned start had passed, how late it
	// was created (for the scheduler's figures).
	Lag []time.Duration
}

// fireBatch is how many deployments' planned runs one transaction
// creates.
const fireBatch = 100

// Tick runs one pass of the scheduler at the clock's now.
func (s *Service) Tick(ctx context.Context) (TickResult, error) {
	var res TickResult
	now := s.cfg.Clock.Now()
	var errs []error
	params := map[string]paramsResult{} // per flow and parameters, for the pass
	after := ""
	for {
		ds, err := s.cfg.Store.DeploymentDue(ctx, now.Add(s.cfg.Horizon), after, fireBatch)
		if err != nil {
			return res, err
		}
		var fires []store.DeploymentFireParams
		for _, d := range ds {
			fs, err := s.plan(ctx, d, now, params)
			if err != nil {
				errs = append(errs, fmt.Errorf("plan deployment %s: %w", d.Name, err))
				continue
			}
			fires = append(fires, fs...)
		}
		if len(fires) > 0 {
			created, err := s.cfg.Store.DeploymentFire(ctx, fires...)
			if err != nil {
				return res, err
			}
			if s.cfg.Fired != nil {
				s.cfg.Fired(created)
			}
			res.Created += len(created)
			for _, r := range created {
				if lag := now.Sub(r.PlannedAt()); lag > 0 {
					res.Lag = append(res.Lag, lag)
				}
			}
		}
		if len(ds) < fireBatch {
			break
		}
		after = ds[len(ds)-1].Name
	}
	names, err := s.cfg.Store.DeploymentGating(ctx, now.Add(s.cfg.Lead), 10000)
	if err != nil {
		return res, err
	}
	for _, name := range names {
		if err := s.gate(ctx, name, now, &res); err != nil {
			errs = append(errs, fmt.Errorf("gate deployment %s: %w", name, err))
		}
	}
	return res, errors.Join(errs...)
}

// paramsResult is the outcome of the validation of a deployment's
// parameters, kept for a pass.
type paramsResult struct {
	p   json.RawMessage
	err error
}

// plan returns what to create for the due schedules of deployment d.
func (s *Service) plan(ctx context.Context, d store.Deployment, now time.Time, params map[string]paramsResult) ([]store.DeploymentFireParams, error) {
	until := now.Add(s.cfg.Horizon)
	var out []store.DeploymentFireParams
	for _, sch := range d.Schedules {
		if sch.Paused || sch.NextFire.IsZero() || sch.NextFire.After(until) {
			continue
		}
		key := d.Flow + "\x00" + string(d.Parameters)
		pr, ok := params[key]
		if !ok {
			pr.p, pr.err = s.cfg.Params(ctx, d.Flow, d.Parameters)
			params[key] = pr
		}
		if pr.err != nil {
			// The flow's schema changed under the deployment: create
			// nothing, and say so.
			raw, _ := json.Marshal(map[string]any{"schedule": sch.ID, "fire_time": sch.NextFire})
			return nil, errors.Join(pr.err, s.cfg.Store.DeploymentHistoryAppend(ctx, []store.DeploymentHistoryEntry{{Deployment: d.Name,
				At: now, Action: store.ActionScheduledRunSkip, Reason: "parameters do not fit the flow's schema: " + pr.err.Error(), Payload: raw}}))
		}
		fires, next, hist, err := s.fireTimes(d, sch, now)
		if err != nil {
			return nil, err
		}
		last := now
		if len(fires) > 0 {
			last = fires[len(fires)-1]
		}
		runs := make([]store.Run, len(fires))
		for i, t := range fires {
			runs[i] = s.plannedRun(d, sch, t, pr.p, now)
		}
		out = append(out, store.DeploymentFireParams{Deployment: d.Name, ScheduleID: sch.ID,
			Runs: runs, LastFire: maxTime(last, sch.LastFire.Add(time.Nanosecond)), NextFire: next, History: hist,
			Message: "scheduled by deployment " + d.Name + " (" + sch.ID + ")", At: now})
	}
	return out, nil
}

// fireTimes returns the fire times of sch to create runs for at now: the
// missed ones its catch-up window keeps, then those up to the horizon (at
// least one); the fire time after the last one (zero: none); and history
// entries for the missed fire times it leaves out.
func (s *Service) fireTimes(d store.Deployment, sch store.DeploymentSchedule, now time.Time) ([]time.Time, time.Time, []store.DeploymentHistoryEntry, error) {
	sc, err := schedule.Parse(specOf(sch))
	if err != nil {
		return nil, time.Time{}, nil, fmt.Errorf("schedule %s: %w", sch.ID, err)
	}
	from := sch.LastFire
	if from.IsZero() {
		// A new schedule starts at its creation: nothing before it is
		// missed.
		from = sch.CreatedAt.Add(-time.Nanosecond)
	}
	var fires []time.Time
	var hist []store.DeploymentHistoryEntry
	if from.Before(now) {
		missed := schedule.Between(sc, from, now, MaxCatchup+1)
		kept := missed
		switch w := sch.Catchup; {
		case w == store.CatchupAll:
			if len(kept) > MaxCatchup {
				kept = kept[len(kept)-MaxCatchup:]
			}
		case w == 0:
			if len(kept) > 1 {
				kept = kept[len(kept)-1:]
			}
		default:
			i := 0
			for i < len(kept) && kept[i].Before(now.Add(-w)) {
				i++
			}
			kept = kept[i:]
		}
		if dropped := len(missed) - len(kept); dropped > 0 && len(missed) > 0 {
			raw, _ := json.Marshal(map[string]any{"schedule": sch.ID, "missed": dropped, "first": missed[0],
				"last": missed[dropped-1], "catchup": FormatCatchup(sch.Catchup)})
			hist = append(hist, store.DeploymentHistoryEntry{Deployment: d.Name, At: now, Action: store.ActionScheduledRunSkip,
				Reason: fmt.Sprintf("%d fire time(s) missed while no scheduler ran are outside the catch-up window", dropped), Payload: raw})
		}
		fires = append(fires, kept...)
		from = now
	}
	ahead := schedule.Between(sc, from, now.Add(s.cfg.Horizon), s.cfg.MaxAhead)
	if len(ahead) == 0 && len(fires) == 0 {
		if t := sc.Next(from); !t.IsZero() {
			ahead = []time.Time{t}
		}
	}
	fires = append(fires, ahead...)
	after := from
	if len(fires) > 0 {
		after = fires[len(fires)-1]
	}
	return fires, sc.Next(after), hist, nil
}

// gate applies the policies of deployment name to its runs that become due
// by now + Lead, then promotes the runs waiting for a slot.
func (s *Service) gate(ctx context.Context, name string, now time.Time, res *TickResult) error {
	d, err := s.cfg.Store.DeploymentGet(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	until := now.Add(s.cfg.Lead)
	overlap := map[string]string{}
	for _, sch := range d.Schedules {
		overlap[sch.ID] = sch.Overlap
	}
	// The SCHEDULED runs planned up to GatedUntil went through the
	// policies (they hold slots); those planned after, up to until, go now.
	active, err := s.active(ctx, d, d.GatedUntil)
	if err != nil {
		return err
	}
	due, err := s.cfg.Store.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: d.Name, States: []store.RunState{store.RunScheduled},
		ScheduledAfter: d.GatedUntil, ScheduledBefore: until})
	if err != nil {
		return err
	}
	waiting, err := s.cfg.Store.DeploymentRuns(ctx, store.DeploymentRunsParams{Deployment: d.Name, States: []store.RunState{store.RunAwaitingSlot}})
	if err != nil {
		return err
	}
	buffered := 0 // waiting for a slot, not held by a pause
	for _, w := range waiting {
		if !w.PlannedAt().After(until) {
			buffered++
		}
	}
	for _, r := range due {
		pol := overlap[r.ScheduleID]
		if r.ScheduleID == "" {
			pol = store.OverlapAllowAll
		}
		act, why := "", ""
		if len(active) > 0 {
			switch pol {
			case store.OverlapSkip:
				act, why = "skip", fmt.Sprintf("skipped: run %s of deployment %s is still %s (overlap policy skip)", active[0].ID, d.Name, active[0].State)
			case store.OverlapBufferOne:
				if buffered > 0 {
					act, why = "skip", fmt.Sprintf("skipped: a run of deployment %s already waits for run %s to end (overlap policy buffer_one)", d.Name, active[0].ID)
				} else {
					act, why = "queue", fmt.Sprintf("waits for run %s of deployment %s to end (overlap policy buffer_one)", active[0].ID, d.Name)
				}
			case store.OverlapBufferAll:
				act, why = "queue", fmt.Sprintf("waits for run %s of deployment %s to end (overlap policy buffer_all)", active[0].ID, d.Name)
			case store.OverlapCancelOther:
				if err := s.cancelRuns(ctx, d, active, now, fmt.Sprintf("cancelled for run %s planned at %s (overlap policy cancel_other)",
					r.ID, r.PlannedAt().Format(time.RFC3339))); err != nil {
					return err
				}
				res.Cancelled += len(active)
				active = nil
			}
		}
		if act == "" && d.MaxActive > 0 && len(active) >= d.MaxActive {
			switch d.Collision {
			case store.CollisionQueue:
				act, why = "queue", fmt.Sprintf("waits for a slot: %d of max %d runs of deployment %s active (collision policy queue)", len(active), d.MaxActive, d.Name)
			case store.CollisionSkip:
				act, why = "skip", fmt.Sprintf("skipped: %d of max %d runs of deployment %s active (collision policy skip)", len(active), d.MaxActive, d.Name)
			case store.CollisionCancelOldest:
				n := len(active) - d.MaxActive + 1
				if err := s.cancelRuns(ctx, d, active[:n], now, "cancelled to make room for run "+r.ID+" (collision policy cancel_oldest)"); err != nil {
					return err
				}
				res.Cancelled += n
				active = active[n:]
			}
		}
		switch act {
		case "skip":
			if err := s.policyMove(ctx, d, r, store.RunCancelled, store.ActionScheduledRunSkip, why, now); err != nil {
				return err
			}
			res.Skipped++
		case "queue":
			if err := s.policyMove(ctx, d, r, store.RunAwaitingSlot, store.ActionScheduledRunQueued, why, now); err != nil {
				return err
			}
			buffered++
			r.State = store.RunAwaitingSlot
			waiting = append(waiting, r)
			res.Queued++
		default:
			active = append(active, r)
		}
	}
	if err := s.cfg.Store.DeploymentGate(ctx, d.Name, until); err != nil {
		return err
	}
	// Promote waiting runs in order while they fit.
	if d.Paused {
		return nil
	}
	paused := map[string]bool{}
	for _, sch := range d.Schedules {
		paused[sch.ID] = sch.Paused
	}
	slices.SortStableFunc(waiting, func(a, b store.Run) int { return a.PlannedAt().Compare(b.PlannedAt()) })
	for _, w := range waiting {
		if paused[w.ScheduleID] || w.PlannedAt().After(until) {
			continue // held by a pause (resume gives it back)
		}
		pol := overlap[w.ScheduleID]
		if w.ScheduleID == "" {
			pol = store.OverlapAllowAll
		}
		if (pol == store.OverlapBufferOne || pol == store.OverlapBufferAll) && len(active) > 0 {
			break
		}
		if d.MaxActive > 0 && len(active) >= d.MaxActive {
			break
		}
		if _, err := s.cfg.Store.DeploymentTransition(ctx, store.RunTransitionParams{ID: w.ID, From: []store.RunState{store.RunAwaitingSlot},
			To: store.RunScheduled, Cause: "policy", Message: "a slot of deployment " + d.Name + " is free", At: now}, nil); err != nil {
			if errors.Is(err, store.ErrConflict) {
				continue
			}
			return err
		}
		res.Promoted++
		active = append(active, w)
	}
	return nil
}

// policyMove moves a due run to state to for a policy, with the
// deployment's history entry.
func (s *Service) policyMove(ctx context.Context, d store.Deployment, r store.Run, to store.RunState, action, why string, now time.Time) error {
	raw, _ := json.Marshal(map[string]any{"run_id": r.ID, "schedule": r.ScheduleID, "scheduled_at": r.PlannedAt()})
	p := store.RunTransitionParams{ID: r.ID, From: []store.RunState{store.RunScheduled}, To: to, Cause: "policy", Message: why, At: now}
	if to == store.RunCancelled {
		p.Error = &store.ErrorInfo{Message: why, Kind: "cancelled"}
	}
	_, err := s.cfg.Store.DeploymentTransition(ctx, p,
		[]store.DeploymentHistoryEntry{{Deployment: d.Name, At: now, Action: action, Reason: why, Payload: raw}})
	if errors.Is(err, store.ErrConflict) {
		return nil // claimed meanwhile
	}
	return err
}
