package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Deployments (migration 0009): tables deployments, deployment_schedules
// and deployment_history, and the runs they create (runs.deployment,
// schedule_id, scheduled_at, unique per deployment, schedule and planned
// start).

const deploymentCols = `name, flow, description, parameters, queue, tags, max_active, collision, paused,
	pause_note, source, hash, created_at, updated_at, gated_until`

const scheduleCols = `deployment, id, cron, interval_ns, anchor, rrule, timezone, overlap, catchup, jitter,
	paused, pause_note, last_fire, next_fire, created_at`

const deploymentHistoryCols = `seq, deployment, at, actor, verified, action, reason, payload`

func scanDeployment(sc Row) (store.Deployment, error) {
	var (
		d                       store.Deployment
		params, tags            []byte
		maxActive, paused       int64
		created, updated, gated int64
		description, note       string
	)
	if err := sc.Scan(&d.Name, &d.Flow, &description, &params, &d.Queue, &tags, &maxActive, &d.Collision,
		&paused, &note, &d.Source, &d.Hash, &created, &updated, &gated); err != nil {
		return d, err
	}
	d.Description, d.PauseNote = store.DecodeText(description), store.DecodeText(note)
	d.Parameters = DecJSON(params)
	if len(tags) > 0 {
		if err := json.Unmarshal(tags, &d.Tags); err != nil {
			return d, fmt.Errorf("deployment %s: tags: %w", d.Name, err)
		}
	}
	d.MaxActive, d.Paused = int(maxActive), paused != 0
	d.CreatedAt, d.UpdatedAt, d.GatedUntil = DecTime(created), DecTime(updated), DecTime(gated)
	return d, nil
}

func scanSchedule(sc Row) (string, store.DeploymentSchedule, error) {
	var (
		dep                                       string
		s                                         store.DeploymentSchedule
		interval, anchor, catchup, jitter, paused int64
		last, next, created                       int64
		note                                      string
	)
	if err := sc.Scan(&dep, &s.ID, &s.Cron, &interval, &anchor, &s.RRule, &s.Timezone, &s.Overlap, &catchup,
		&jitter, &paused, &note, &last, &next, &created); err != nil {
		return "", s, err
	}
	s.Interval, s.Anchor = time.Duration(interval), DecTime(anchor)
	s.Catchup, s.Jitter = time.Duration(catchup), time.Duration(jitter)
	s.Paused, s.PauseNote = paused != 0, store.DecodeText(note)
	s.LastFire, s.NextFire, s.CreatedAt = DecTime(last), DecTime(next), DecTime(created)
	return dep, s, nil
}

func encTags(tags []string) any {
	if len(tags) == 0 {
		return nil
	}
	return jsonStrings(tags)
}

// readDeployment reads a deployment and its schedules with q (in a write
// transaction, lock the row first).
func (c *Core) readDeployment(ctx context.Context, q Querier, name string, lock string) (store.Deployment, error) {
	d, err := scanDeployment(q.QueryRow(ctx, "SELECT "+deploymentCols+" FROM deployments WHERE name = $1"+lock, name))
	if err != nil {
		return d, c.d.Translate(err, "deployment %s", name)
	}
	err = q.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			_, s, err := scanSchedule(rows)
			if err != nil {
				return err
			}
			d.Schedules = append(d.Schedules, s)
		}
		return nil
	}, "SELECT "+scheduleCols+" FROM deployment_schedules WHERE deployment = $1 ORDER BY created_at, id", name)
	if err != nil {
		return d, c.d.Translate(err, "schedules of deployment %s", name)
	}
	return d, nil
}

// DeploymentGet returns a deployment with its schedules; see store.DeploymentStore.
func (c *Core) DeploymentGet(ctx context.Context, name string) (store.Deployment, error) {
	return c.readDeployment(ctx, c.d, name, "")
}

// DeploymentList returns every deployment, by name; see store.DeploymentStore.
func (c *Core) DeploymentList(ctx context.Context) ([]store.Deployment, error) {
	return c.deploymentsWhere(ctx, "list deployments", "", nil)
}

// deploymentsWhere reads the deployments whose name is in the subquery in
// (every deployment when empty), by name, with their schedules, in one
// batch; args are the subquery's.
func (c *Core) deploymentsWhere(ctx context.Context, op, in string, args []any) ([]store.Deployment, error) {
	depWhere, schedWhere := "", ""
	if in != "" {
		depWhere, schedWhere = " WHERE name IN ("+in+")", " WHERE deployment IN ("+in+")"
	}
	var out []store.Deployment
	idx := map[string]int{}
	err := c.d.Batch(ctx, Stmt{
		SQL:  "SELECT " + deploymentCols + " FROM deployments" + depWhere + " ORDER BY name" + c.sx.ByteOrder,
		Args: args,
		Scan: func(rows Rows) error {
			for rows.Next() {
				d, err := scanDeployment(rows)
				if err != nil {
					return err
				}
				idx[d.Name] = len(out)
				out = append(out, d)
			}
			return nil
		},
	}, Stmt{
		SQL:  "SELECT " + scheduleCols + " FROM deployment_schedules" + schedWhere + " ORDER BY deployment, created_at, id",
		Args: args,
		Scan: func(rows Rows) error {
			for rows.Next() {
				dep, s, err := scanSchedule(rows)
				if err != nil {
					return err
				}
				if i, ok := idx[dep]; ok {
					out[i].Schedules = append(out[i].Schedules, s)
				}
			}
			return nil
		},
	})
	if err != nil {
		return nil, c.d.Translate(err, op)
	}
	return out, nil
}

// DeploymentPut writes a declaration; see store.DeploymentPutParams.
func (c *Core) DeploymentPut(ctx context.Context, p store.DeploymentPutParams) (store.Deployment, bool, error) {
	d := p.Deployment
	at := NowIfZero(p.At)
	switch p.Mode {
	case store.PutCreate, store.PutUpdate, store.PutRegister:
	default:
		return store.Deployment{}, false, fmt.Errorf("deployment %s: unknown mode %q", d.Name, p.Mode)
	}
	var (
		out     store.Deployment
		changed bool
	)
	err := c.d.WriteTx(ctx, "write deployment "+d.Name, func(tx Tx) error {
		changed = false
		old, err := c.readDeployment(ctx, tx, d.Name, c.sx.ForUpdate)
		exists := err == nil
		if err != nil && !isNotFound(err) {
			return err
		}
		switch {
		case exists && p.Mode == store.PutCreate:
			return fmt.Errorf("deployment %q already exists: %w", d.Name, store.ErrConflict)
		case !exists && p.Mode == store.PutUpdate:
			return fmt.Errorf("unknown deployment %q: %w", d.Name, store.ErrNotFound)
		case exists && old.Hash == d.Hash: // the same declaration: nothing to write
			out = old
			return nil
		}
		changed = true
		created := at
		if exists {
			created = old.CreatedAt
		}
		if err := tx.Exec(ctx, `INSERT INTO deployments (name, flow, description, parameters, queue, tags,
			max_active, collision, source, hash, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (name) DO UPDATE SET flow = excluded.flow, description = excluded.description,
			parameters = excluded.parameters, queue = excluded.queue, tags = excluded.tags,
			max_active = excluded.max_active, collision = excluded.collision, source = excluded.source,
			hash = excluded.hash, updated_at = excluded.updated_at`,
			d.Name, d.Flow, store.EncodeText(d.Description), EncJSON(d.Parameters), d.Queue, encTags(d.Tags),
			int64(d.MaxActive), d.Collision, d.Source, d.Hash, EncTime(created), EncTime(at)); err != nil {
			return err
		}
		var hist []store.DeploymentHistoryEntry
		entry := func(action, reason string, payload any) {
			raw, _ := json.Marshal(payload)
			hist = append(hist, store.DeploymentHistoryEntry{Deployment: d.Name, At: at, Actor: p.Actor, Action: action,
				Reason: reason, Payload: raw})
		}
		if exists {
			entry(store.ActionDeploymentUpdated, "", declarationPayload(d))
		} else {
			entry(store.ActionDeploymentCreated, "", declarationPayload(d))
		}
		kept := map[string]bool{}
		for _, s := range d.Schedules {
			kept[s.ID] = true
			i := slices.IndexFunc(old.Schedules, func(o store.DeploymentSchedule) bool { return o.ID == s.ID })
			if i >= 0 {
				if err := tx.Exec(ctx, `UPDATE deployment_schedules SET overlap = $3, catchup = $4, jitter = $5
					WHERE deployment = $1 AND id = $2`, d.Name, s.ID, s.Overlap, int64(s.Catchup), int64(s.Jitter)); err != nil {
					return err
				}
				continue
			}
			if err := tx.Exec(ctx, `INSERT INTO deployment_schedules (`+scheduleCols+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, '', 0, $11, $12)`,
				d.Name, s.ID, s.Cron, int64(s.Interval), EncTime(s.Anchor), s.RRule, s.Timezone, s.Overlap,
				int64(s.Catchup), int64(s.Jitter), EncTime(s.NextFire), EncTime(at)); err != nil {
				return err
			}
			if exists {
				entry(store.ActionScheduleAdded, "", schedulePayload(s))
			}
		}
		for _, o := range old.Schedules {
			if kept[o.ID] {
				continue
			}
			if err := tx.Exec(ctx, "DELETE FROM deployment_schedules WHERE deployment = $1 AND id = $2", d.Name, o.ID); err != nil {
				return err
			}
			n, err := c.cancelPlanned(ctx, tx, d.Name, o.ID, at, p.Actor, "its schedule "+o.ID+" was removed from deployment "+d.Name)
			if err != nil {
				return err
			}
			pl := schedulePayload(o)
			pl["cancelled_runs"] = n
			entry(store.ActionScheduleRemoved, "", pl)
		}
		if err := appendDeploymentHistory(ctx, tx, at, hist); err != nil {
			return err
		}
		out, err = c.readDeployment(ctx, tx, d.Name, "")
		return err
	})
	if err != nil {
		return store.Deployment{}, false, err
	}
	return out, changed, nil
}

// declarationPayload is the history payload of a declaration.
func declarationPayload(d store.Deployment) map[string]any {
	scheds := make([]map[string]any, len(d.Schedules))
	for i, s := range d.Schedules {
		scheds[i] = schedulePayload(s)
	}
	m := map[string]any{"flow": d.Flow, "queue": d.Queue, "hash": d.Hash, "source": d.Source, "schedules": scheds}
	if d.Description != "" {
		m["description"] = d.Description
	}
	if d.Parameters != nil {
		m["parameters"] = d.Parameters
	}
	if len(d.Tags) > 0 {
		m["tags"] = d.Tags
	}
	if d.MaxActive > 0 {
		m["max_active"], m["collision"] = d.MaxActive, d.Collision
	}
	return m
}

// schedulePayload is the history payload of a schedule.
func schedulePayload(s store.DeploymentSchedule) map[string]any {
	m := map[string]any{"id": s.ID, "overlap": s.Overlap}
	switch {
	case s.Cron != "":
		m["cron"] = s.Cron
	case s.RRule != "":
		m["rrule"] = s.RRule
	default:
		m["interval"] = s.Interval.String()
		if !s.Anchor.IsZero() {
			m["anchor"] = s.Anchor.UTC()
		}
	}
	if s.Timezone != "" {
		m["timezone"] = s.Timezone
	}
	if s.Catchup != 0 {
		m["catchup"] = s.Catchup.String()
	}
	if s.Jitter != 0 {
		m["jitter"] = s.Jitter.String()
	}
	return m
}

// cancelPlanned cancels the runs of a deployment (of one schedule when
// scheduleID is set) not started yet: those SCHEDULED for after at, and
// those waiting for a slot (nothing would give them one), and returns how
// many.
func (c *Core) cancelPlanned(ctx context.Context, tx Tx, dep, scheduleID string, at time.Time, actor store.Actor, why string) (int, error) {
	q := "SELECT " + RunCols + " FROM runs WHERE deployment = $1 AND (state = 'SCHEDULED' AND scheduled_at > $2 OR state = 'AWAITING_SLOT')"
	args := []any{dep, EncTime(at)}
	if scheduleID != "" {
		q += " AND schedule_id = $3"
		args = append(args, scheduleID)
	}
	runs, err := queryAll(ctx, tx, ScanRun, q+" ORDER BY id"+c.sx.ForUpdate, args...)
	if err != nil {
		return 0, err
	}
	for i := range runs {
		if err := transitionTx(ctx, tx, &runs[i], store.RunTransitionParams{To: store.RunCancelled, Cause: "deployment",
			Message: "cancelled before it started: " + why, Actor: actor}, at); err != nil {
			return 0, err
		}
	}
	return len(runs), nil
}

// transitionTx applies p to run r, which tx locked, with its event and
// history.
func transitionTx(ctx context.Context, tx Tx, r *store.Run, p store.RunTransitionParams, at time.Time) error {
	old := *r
	p.ID = r.ID
	ev := store.ApplyTransition(r, &p, at)
	if err := tx.WriteBatch(ctx, &store.Batch{Runs: []store.Run{*r}, Events: []store.Event{ev}}); err != nil {
		return err
	}
	if err := appendHistory(ctx, tx, at, transitionHistory(r, &p, ev, old)); err != nil {
		return err
	}
	return tx.StopTaskRuns(ctx, r, p.Cause, at)
}

// DeploymentDelete deletes a deployment; see store.DeploymentStore.
func (c *Core) DeploymentDelete(ctx context.Context, name string, actor store.Actor, at time.Time) error {
	at = NowIfZero(at)
	return c.d.WriteTx(ctx, "delete deployment "+name, func(tx Tx) error {
		if _, err := c.readDeployment(ctx, tx, name, c.sx.ForUpdate); err != nil {
			return err
		}
		n, err := c.cancelPlanned(ctx, tx, name, "", at, actor, "deployment "+name+" was deleted")
		if err != nil {
			return err
		}
		if err := tx.Exec(ctx, "DELETE FROM deployment_schedules WHERE deployment = $1", name); err != nil {
			return err
		}
		if err := tx.Exec(ctx, "DELETE FROM deployments WHERE name = $1", name); err != nil {
			return err
		}
		raw, _ := json.Marshal(map[string]any{"cancelled_runs": n})
		return appendDeploymentHistory(ctx, tx, at, []store.DeploymentHistoryEntry{{Deployment: name, Actor: actor,
			Action: store.ActionDeploymentDeleted, Payload: raw}})
	})
}

// DeploymentPause pauses or resumes; see store.DeploymentPauseParams.
// Pausing holds the runs planned after At (SCHEDULED to AWAITING_SLOT);
// resuming gives back those still in the future (AWAITING_SLOT to
// SCHEDULED, unless a slot rule holds them: the scheduler promotes them)
// and cancels those whose time passed while paused.
func (c *Core) DeploymentPause(ctx context.Context, p store.DeploymentPauseParams) (store.Deployment, error) {
	at := NowIfZero(p.At)
	var out store.Deployment
	err := c.d.WriteTx(ctx, "pause deployment "+p.Name, func(tx Tx) error {
		d, err := c.readDeployment(ctx, tx, p.Name, c.sx.ForUpdate)
		if err != nil {
			return err
		}
		action := store.ActionDeploymentPaused
		if !p.Paused {
			action = store.ActionDeploymentResumed
		}
		if p.ScheduleID != "" {
			if !slices.ContainsFunc(d.Schedules, func(s store.DeploymentSchedule) bool { return s.ID == p.ScheduleID }) {
				return fmt.Errorf("deployment %q has no schedule %q: %w", p.Name, p.ScheduleID, store.ErrNotFound)
			}
			action = store.ActionSchedulePaused
			if !p.Paused {
				action = store.ActionScheduleResumed
			}
			err = tx.Exec(ctx, `UPDATE deployment_schedules SET paused = $3, pause_note = $4 WHERE deployment = $1 AND id = $2`,
				p.Name, p.ScheduleID, boolInt(p.Paused), store.EncodeText(p.Note))
		} else {
			err = tx.Exec(ctx, `UPDATE deployments SET paused = $2, pause_note = $3 WHERE name = $1`,
				p.Name, boolInt(p.Paused), store.EncodeText(p.Note))
		}
		if err != nil {
			return err
		}
		if !p.Paused {
			// Start again from now: the fire times that passed while paused
			// are not caught up.
			q := `UPDATE deployment_schedules SET last_fire = $2, next_fire = $2 WHERE deployment = $1 AND last_fire < $2`
			args := []any{p.Name, EncTime(at)}
			if p.ScheduleID != "" {
				q += " AND id = $3"
				args = append(args, p.ScheduleID)
			}
			if err := tx.Exec(ctx, q, args...); err != nil {
				return err
			}
		}
		held, err := c.holdPlanned(ctx, tx, p, at)
		if err != nil {
			return err
		}
		payload := map[string]any{"runs": held}
		if p.ScheduleID != "" {
			payload["schedule"] = p.ScheduleID
		}
		raw, _ := json.Marshal(payload)
		if err := appendDeploymentHistory(ctx, tx, at, []store.DeploymentHistoryEntry{{Deployment: p.Name, Actor: p.Actor,
			Action: action, Reason: p.Note, Payload: raw}}); err != nil {
			return err
		}
		out, err = c.readDeployment(ctx, tx, p.Name, "")
		return err
	})
	return out, err
}

// holdPlanned moves the planned runs concerned by a pause to AWAITING_SLOT,
// or, for a resume, back to SCHEDULED (cancelling those whose planned
// start passed while paused), and returns how many it changed.
func (c *Core) holdPlanned(ctx context.Context, tx Tx, p store.DeploymentPauseParams, at time.Time) (int, error) {
	from := "SCHEDULED"
	if !p.Paused {
		from = "AWAITING_SLOT"
	}
	q := "SELECT " + RunCols + " FROM runs WHERE deployment = $1 AND state = '" + from + "' AND schedule_id <> ''"
	args := []any{p.Name}
	if p.Paused {
		q += " AND scheduled_at > $2"
		args = append(args, EncTime(at))
	}
	if p.ScheduleID != "" {
		q += fmt.Sprintf(" AND schedule_id = $%d", len(args)+1)
		args = append(args, p.ScheduleID)
	}
	runs, err := queryAll(ctx, tx, ScanRun, q+" ORDER BY id"+c.sx.ForUpdate, args...)
	if err != nil {
		return 0, err
	}
	var paused map[string]bool
	if !p.Paused {
		// A run held by another pause (its schedule's, or the deployment's)
		// stays held.
		paused = map[string]bool{}
		d, err := c.readDeployment(ctx, tx, p.Name, "")
		if err != nil {
			return 0, err
		}
		for _, s := range d.Schedules {
			paused[s.ID] = d.Paused || s.Paused
		}
	}
	n := 0
	for i := range runs {
		r := &runs[i]
		tp := store.RunTransitionParams{Cause: "deployment", Actor: p.Actor}
		switch {
		case p.Paused:
			tp.To, tp.Action, tp.Message = store.RunAwaitingSlot, store.ActionPaused, "held: the deployment or its schedule was paused"
		case paused[r.ScheduleID]:
			continue
		case !r.PlannedAt().After(at):
			tp.To, tp.Message = store.RunCancelled, "skipped: its planned start passed while the deployment or its schedule was paused"
		default:
			tp.To, tp.Action, tp.Message = store.RunScheduled, store.ActionResumed, "the deployment or its schedule was resumed"
		}
		if p.Note != "" {
			tp.Message += ": " + p.Note
		}
		if err := transitionTx(ctx, tx, r, tp, at); err != nil {
			return 0, err
		}
		if r.State == store.RunScheduled {
			tx.Notes().AddRun(r)
		}
		n++
	}
	return n, nil
}

// DeploymentFire creates planned runs; see store.DeploymentFireParams.
func (c *Core) DeploymentFire(ctx context.Context, ps ...store.DeploymentFireParams) ([]store.Run, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	argss := make([][][]any, len(ps))
	for j := range ps {
		p := &ps[j]
		at := NowIfZero(p.At)
		argss[j] = make([][]any, len(p.Runs))
		for i := range p.Runs {
			r := &p.Runs[i]
			if r.CreatedAt.IsZero() {
				r.CreatedAt = at
			}
			if r.UpdatedAt.IsZero() {
				r.UpdatedAt = r.CreatedAt
			}
			var err error
			if argss[j][i], err = runCreateArgs(r); err != nil {
				return nil, fmt.Errorf("deployment %s: %w", p.Deployment, err)
			}
		}
	}
	var out []store.Run
	err := c.d.WriteTx(ctx, "fire deployment "+ps[0].Deployment, func(tx Tx) error {
		out = out[:0]
		for j := range ps {
			p := &ps[j]
			at := NowIfZero(p.At)
			var b store.Batch
			var hist []store.HistoryEntry
			for i := range p.Runs {
				ins, err := ScanRun(tx.QueryRow(ctx, createRunSQL, argss[j][i]...))
				if err != nil {
					if err = c.d.Translate(err, "insert"); isNotFound(err) {
						continue // planned already: the uniqueness of (deployment, schedule, planned start)
					}
					return err
				}
				b.Events = append(b.Events, store.Event{RunID: ins.ID, To: string(ins.State), Cause: "deployment", Message: p.Message, At: ins.CreatedAt})
				hist = append(hist, store.CreateEntry(&ins, store.Actor{}, p.Message))
				tx.Notes().AddRun(&ins)
				out = append(out, ins)
			}
			if err := tx.WriteBatch(ctx, &b); err != nil {
				return err
			}
			if err := appendHistory(ctx, tx, at, hist); err != nil {
				return err
			}
			if !p.LastFire.IsZero() {
				if err := tx.Exec(ctx, `UPDATE deployment_schedules SET last_fire = $3, next_fire = $4
					WHERE deployment = $1 AND id = $2 AND last_fire < $3`,
					p.Deployment, p.ScheduleID, EncTime(p.LastFire), EncTime(p.NextFire)); err != nil {
					return err
				}
			}
			if err := appendDeploymentHistory(ctx, tx, at, p.History); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeploymentDue returns the deployments whose planned runs do not reach
// until; see store.DeploymentStore.
func (c *Core) DeploymentDue(ctx context.Context, until time.Time, after string, limit int) ([]store.Deployment, error) {
	if limit <= 0 {
		limit = 1000
	}
	due := `SELECT DISTINCT s.deployment FROM deployment_schedules s JOIN deployments d ON d.name = s.deployment
		WHERE s.next_fire <> 0 AND s.paused = 0 AND s.next_fire <= $1 AND d.paused = 0 AND s.deployment > $2
		ORDER BY s.deployment LIMIT $3` // a "C" column on PostgreSQL: byte order
	return c.deploymentsWhere(ctx, "due deployments", due, []any{EncTime(until), after, int64(limit)})
}

// DeploymentGating returns the deployments with SCHEDULED runs planned
// after their GatedUntil and at or before until, or with runs waiting for
// a slot (AWAITING_SLOT): those whose policies the scheduler applies next.
func (c *Core) DeploymentGating(ctx context.Context, until time.Time, limit int) ([]string, error) {
	if limit <= 0 {
		limit = 1000
	}
	var out []string
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				return err
			}
			out = append(out, name)
		}
		return nil
	}, `SELECT name FROM (
		SELECT DISTINCT r.deployment AS name FROM runs r JOIN deployments d ON d.name = r.deployment
		WHERE r.state = 'SCHEDULED' AND r.deployment <> '' AND r.scheduled_at <= $1 AND r.scheduled_at > d.gated_until
			AND (d.max_active > 0 OR EXISTS (SELECT 1 FROM deployment_schedules s
				WHERE s.deployment = d.name AND s.overlap <> 'allow_all'))
		UNION SELECT DISTINCT deployment AS name FROM runs WHERE state = 'AWAITING_SLOT'
	) g ORDER BY name LIMIT $2`, EncTime(until), int64(limit))
	if err != nil {
		return nil, c.d.Translate(err, "deployments to gate")
	}
	return out, nil
}

// DeploymentRuns lists runs of a deployment; see store.DeploymentRunsParams.
func (c *Core) DeploymentRuns(ctx context.Context, p store.DeploymentRunsParams) ([]store.Run, error) {
	var a Args
	q := "SELECT " + RunCols + " FROM runs WHERE deployment = " + a.Add(p.Deployment) + " AND deployment <> ''"
	if len(p.States) > 0 {
		states := make([]string, len(p.States))
		for i, s := range p.States {
			states[i] = string(s)
		}
		q += " AND state" + a.in(&c.sx, states)
	}
	if !p.ScheduledAfter.IsZero() {
		q += " AND scheduled_at > " + a.Add(EncTime(p.ScheduledAfter))
	}
	if !p.ScheduledBefore.IsZero() {
		q += " AND scheduled_at <= " + a.Add(EncTime(p.ScheduledBefore))
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	q += " ORDER BY scheduled_at, created_at, id" + c.sx.ByteOrder + " LIMIT " + a.Add(int64(limit))
	runs, err := queryAll(ctx, c.d, ScanRun, q, a...)
	if err != nil {
		return nil, c.d.Translate(err, "runs of deployment %s", p.Deployment)
	}
	return runs, nil
}

// DeploymentGate moves a deployment's GatedUntil forward; see
// store.DeploymentStore.
func (c *Core) DeploymentGate(ctx context.Context, name string, until time.Time) error {
	return c.d.WriteTx(ctx, "gate deployment "+name, func(tx Tx) error {
		return tx.Exec(ctx, "UPDATE deployments SET gated_until = $2 WHERE name = $1 AND gated_until < $2", name, EncTime(until))
	})
}

const insertDeploymentHistorySQL = `INSERT INTO deployment_history (deployment, at, actor, verified, action, reason, payload)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

func appendDeploymentHistory(ctx context.Context, tx Querier, at time.Time, entries []store.DeploymentHistoryEntry) error {
	for _, e := range entries {
		if e.At.IsZero() {
			e.At = at
		}
		e.Actor = e.Actor.OrSystem()
		if err := tx.Exec(ctx, insertDeploymentHistorySQL, e.Deployment, EncTime(e.At), store.EncodeText(e.Actor.Name),
			boolInt(e.Actor.Verified), e.Action, store.EncodeText(e.Reason), EncJSON(e.Payload)); err != nil {
			return err
		}
	}
	return nil
}

// DeploymentHistoryAppend appends entries; see store.DeploymentStore.
func (c *Core) DeploymentHistoryAppend(ctx context.Context, entries []store.DeploymentHistoryEntry) error {
	if len(entries) == 0 {
		return nil
	}
	for _, e := range entries {
		if e.Deployment == "" || e.Action == "" {
			return fmt.Errorf("deployment history entry: no deployment or action")
		}
	}
	at := time.Now()
	return c.d.WriteTx(ctx, "append deployment history", func(tx Tx) error {
		return appendDeploymentHistory(ctx, tx, at, entries)
	})
}

// DeploymentHistoryList returns a page of a deployment's history; see
// store.DeploymentStore.
func (c *Core) DeploymentHistoryList(ctx context.Context, name string, after int64, limit int) ([]store.DeploymentHistoryEntry, error) {
	if limit <= 0 {
		limit = store.DefaultHistoryLimit
	}
	var out []store.DeploymentHistoryEntry
	err := c.d.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var (
				e                     store.DeploymentHistoryEntry
				at, verified          int64
				actor, reason, action string
				payload               []byte
			)
			if err := rows.Scan(&e.Seq, &e.Deployment, &at, &actor, &verified, &action, &reason, &payload); err != nil {
				return err
			}
			e.At = DecTime(at)
			e.Actor = store.Actor{Name: store.DecodeText(actor), Verified: verified != 0}
			e.Action, e.Reason, e.Payload = action, store.DecodeText(reason), DecJSON(payload)
			out = append(out, e)
		}
		return nil
	}, "SELECT "+deploymentHistoryCols+" FROM deployment_history WHERE deployment = $1 AND seq > $2 ORDER BY seq LIMIT $3",
		name, after, int64(limit))
	if err != nil {
		return nil, c.d.Translate(err, "history of deployment %s", name)
	}
	return out, nil
}

// DeploymentTransition applies a conditional state change to a run of a
// deployment and appends entries to the deployment's history, in one
// transaction; see store.DeploymentStore.
func (c *Core) DeploymentTransition(ctx context.Context, p store.RunTransitionParams, hist []store.DeploymentHistoryEntry) (store.Run, error) {
	at := NowIfZero(p.At)
	var out store.Run
	err := c.d.WriteTx(ctx, "run transition "+p.ID, func(tx Tx) error {
		r, err := ScanRun(tx.QueryRow(ctx, "SELECT "+RunCols+" FROM runs WHERE id = $1"+c.sx.ForUpdate, p.ID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.ID)
		}
		if !slices.Contains(p.From, r.State) {
			return fmt.Errorf("run %s is %s, not %s: %w", p.ID, r.State, statesString(p.From), store.ErrConflict)
		}
		if err := transitionTx(ctx, tx, &r, p, at); err != nil {
			return err
		}
		if r.State == store.RunScheduled {
			tx.Notes().AddRun(&r)
		}
		out = r
		return appendDeploymentHistory(ctx, tx, at, hist)
	})
	if err != nil {
		return store.Run{}, err
	}
	return RoundRun(out), nil
}
