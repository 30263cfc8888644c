package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Waits (migration 0007): a wait step is a task run in state WAITING whose
// input is its store.WaitSpec; the waits table indexes what resolves it.
// Every resolution (input, event, timer) locks the run's row, then the
// step's, and re-checks that the step still waits, so each wait is
// resolved once whoever races for it, and the run is woken in the same
// transaction (store.WaitBeginParams, InputSendParams, EventSendParams,
// TimersFireParams).

const lockRunSQL = "SELECT " + RunCols + " FROM runs WHERE id = $1"

const lockTaskRunSQL = "SELECT " + TaskRunCols + " FROM task_runs WHERE run_id = $1 AND key = $2 AND id = $3"

const insertWaitSQL = `INSERT INTO waits (run_id, key, task_run_id, kind, name, wake_at, active, event_seq, created_at)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`

// waitOutcome is how a wait ends.
type waitOutcome struct {
	state  store.TaskState
	result json.RawMessage
	err    *store.ErrorInfo
	cause  string // of the step's transition
	msg    string
	seq    int64 // the event received
}

// WaitBegin records a wait step, answered at once from what arrived
// before it; see store.WaitBeginParams.
func (c *Core) WaitBegin(ctx context.Context, p store.WaitBeginParams) (store.TaskRun, error) {
	if err := p.Spec.Check(); err != nil {
		return store.TaskRun{}, err
	}
	at := NowIfZero(p.At)
	var out store.TaskRun
	err := c.d.WriteTx(ctx, "begin wait "+p.TaskRun.Key, func(tx Tx) error {
		r, err := ScanRun(tx.QueryRow(ctx, lockRunSQL+c.sx.ForUpdate, p.TaskRun.RunID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.TaskRun.RunID)
		}
		if r.State.Final() {
			return fmt.Errorf("run %s is %s: it cannot wait: %w", r.ID, r.State, store.ErrConflict)
		}
		tr := p.TaskRun
		tr.State, tr.CreatedAt, tr.StartedAt = store.TaskWaiting, at, at
		tr.History = append(slices.Clone(tr.History), store.Transition{At: at.UTC(), To: string(store.TaskWaiting),
			Cause: "flow", Message: "waiting for " + waitWhat(p.Spec)})
		var hist []store.HistoryEntry
		o, err := c.answerEarly(ctx, tx, &r, tr, p, at, &hist)
		if err != nil {
			return err
		}
		deadline := p.Spec.Deadline(at)
		if o == nil && !deadline.IsZero() && !deadline.After(at) {
			o = timeoutOutcome(p.Spec)
		}
		active := int64(1)
		var seq int64
		if o != nil {
			active, seq = 0, o.seq
			endWait(&tr, o, at)
		}
		if err := tx.WriteBatch(ctx, &store.Batch{TaskRuns: []store.TaskRun{tr}}); err != nil {
			return err
		}
		if err := tx.Exec(ctx, insertWaitSQL, tr.RunID, tr.Key, tr.ID, p.Spec.Kind, p.Spec.Key, EncTime(deadline),
			active, seq, EncTime(at)); err != nil {
			return err
		}
		if p.ConsumePause && r.PauseRequest != nil {
			if err := tx.Exec(ctx, "UPDATE runs SET pause_request = NULL WHERE id = $1", r.ID); err != nil {
				return err
			}
		}
		if err := appendHistory(ctx, tx, at, hist); err != nil {
			return err
		}
		out = tr
		return nil
	})
	return RoundTaskRun(out), err
}

// answerEarly returns the outcome of a new wait from what arrived before
// it (kept input, a retained event), or nil.
func (c *Core) answerEarly(ctx context.Context, tx Tx, r *store.Run, tr store.TaskRun, p store.WaitBeginParams,
	at time.Time, hist *[]store.HistoryEntry) (*waitOutcome, error) {
	switch p.Spec.Kind {
	case store.WaitInput, store.WaitPause:
		var (
			seq, verified int64
			value         []byte
			actor         string
		)
		err := tx.QueryRow(ctx, `SELECT seq, value, actor, verified FROM inputs
			WHERE run_id = $1 AND key = $2 AND task_run_id = '' ORDER BY seq LIMIT 1`, r.ID, p.Spec.Key).
			Scan(&seq, &value, &actor, &verified)
		if isNotFound(c.d.Translate(err, "")) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		who := store.Actor{Name: store.DecodeText(actor), Verified: verified == 1}
		val := DecJSON(value)
		if p.Spec.Kind == store.WaitPause {
			val = nil
		}
		if p.Spec.Kind == store.WaitInput && p.Validate != nil && len(p.Spec.Schema) > 0 {
			if verr := p.Validate(p.Spec.Schema, orNull(val)); verr != nil {
				// The kept input does not fit the wait: it is refused, on the record.
				if err := tx.Exec(ctx, "UPDATE inputs SET task_run_id = $1 WHERE seq = $2", "refused:"+tr.ID, seq); err != nil {
					return nil, err
				}
				*hist = append(*hist, store.HistoryEntry{RunID: r.ID, At: at, Actor: store.SystemActor,
					Action: store.ActionInputRefused, Reason: fmt.Sprintf("input for %s sent by %s fails the wait's schema: %v", p.Spec.Key, who, verr),
					Payload: mustJSON(map[string]any{"key": p.Spec.Key, "step": tr.Key, "value": orNull(val)})})
				return nil, nil
			}
		}
		if err := tx.Exec(ctx, "UPDATE inputs SET task_run_id = $1 WHERE seq = $2", tr.ID, seq); err != nil {
			return nil, err
		}
		*hist = append(*hist, inputEntry(r.ID, at, who, p.Spec.Key, tr.Key, val, "input sent before the run waited for it"))
		return &waitOutcome{state: store.TaskCompleted, result: orNull(val), cause: "input",
			msg: "input from " + who.String()}, nil
	case store.WaitEvent:
		var cursor int64
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(event_seq), 0) FROM waits
			WHERE run_id = $1 AND kind = 'event' AND name = $2`, r.ID, p.Spec.Key).Scan(&cursor); err != nil {
			return nil, err
		}
		type sent struct {
			seq     int64
			payload json.RawMessage
		}
		var found *sent
		err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var (
					s       sent
					payload []byte
				)
				if err := rows.Scan(&s.seq, &payload); err != nil {
					return err
				}
				s.payload = DecJSON(payload)
				if found == nil && p.Spec.Matches(s.payload) {
					found = &s
				}
			}
			return nil
		}, `SELECT seq, payload FROM sent_events WHERE name = $1 AND seq > $2 AND created_at >= $3 ORDER BY seq LIMIT 1000`,
			p.Spec.Key, cursor, EncTime(p.EventsSince))
		if err != nil || found == nil {
			return nil, err
		}
		*hist = append(*hist, store.HistoryEntry{RunID: r.ID, At: at, Action: store.ActionEventReceived,
			Reason:  fmt.Sprintf("event %s (sent before the run waited for it)", p.Spec.Key),
			Payload: mustJSON(map[string]any{"name": p.Spec.Key, "seq": found.seq, "step": tr.Key, "payload": orNull(found.payload)})})
		return &waitOutcome{state: store.TaskCompleted, result: orNull(found.payload), cause: "event",
			msg: fmt.Sprintf("event %s #%d", p.Spec.Key, found.seq), seq: found.seq}, nil
	}
	return nil, nil
}

// InputSend delivers input to a run's wait, or keeps it for the run's
// first wait of the key; see store.InputSendParams.
func (c *Core) InputSend(ctx context.Context, p store.InputSendParams) (store.InputResult, error) {
	if err := store.CheckIdentifier("input key", p.Key); err != nil {
		return store.InputResult{}, err
	}
	if len(p.Value) > 0 && !json.Valid(p.Value) {
		return store.InputResult{}, fmt.Errorf("input value is not JSON")
	}
	at := NowIfZero(p.At)
	who := p.Actor.OrSystem()
	var out store.InputResult
	err := c.d.WriteTx(ctx, "send input to run "+p.RunID, func(tx Tx) error {
		out = store.InputResult{}
		r, err := ScanRun(tx.QueryRow(ctx, lockRunSQL+c.sx.ForUpdate, p.RunID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.RunID)
		}
		if r.State.Final() {
			return fmt.Errorf("run %s is %s: it takes no more input: %w", r.ID, r.State, store.ErrConflict)
		}
		type waiting struct{ key, id, kind, name string }
		var ws []waiting
		q := `SELECT key, task_run_id, kind, name FROM waits WHERE run_id = $1 AND active = 1 AND kind IN ('input', 'pause')`
		args := []any{r.ID}
		if p.Key != "" {
			q += " AND name = $2"
			args = append(args, p.Key)
		}
		if err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var w waiting
				if err := rows.Scan(&w.key, &w.id, &w.kind, &w.name); err != nil {
					return err
				}
				ws = append(ws, w)
			}
			return nil
		}, q+" ORDER BY created_at, key", args...); err != nil {
			return err
		}
		var tr store.TaskRun
		for _, w := range ws { // the oldest that still waits
			t, err := ScanTaskRun(tx.QueryRow(ctx, lockTaskRunSQL+c.sx.ForUpdate, r.ID, w.key, w.id))
			if err != nil {
				return c.d.Translate(err, "wait step %s", w.key)
			}
			if t.State == store.TaskWaiting {
				tr = t
				break
			}
			if err := tx.Exec(ctx, "UPDATE waits SET active = 0 WHERE run_id = $1 AND key = $2 AND task_run_id = $3", r.ID, w.key, w.id); err != nil {
				return err
			}
		}
		if tr.ID == "" {
			if p.Key == "" {
				return fmt.Errorf("run %s is %s and waits for no input or resume: %w", r.ID, r.State, store.ErrConflict)
			}
			return c.keepInput(ctx, tx, &r, p, who, at, &out)
		}
		if p.Key == "" && len(ws) > 1 {
			names := make([]string, 0, len(ws))
			for _, w := range ws {
				names = append(names, w.name)
			}
			return fmt.Errorf("run %s waits for several inputs (%s): name one with its key: %w", r.ID,
				strings.Join(slices.Compact(names), ", "), store.ErrConflict)
		}
		spec, err := store.DecodeWaitSpec(tr.Input)
		if err != nil {
			return err
		}
		val := p.Value
		if spec.Kind == store.WaitPause {
			val = nil
		} else if p.Validate != nil && len(spec.Schema) > 0 {
			if err := p.Validate(spec.Schema, orNull(val)); err != nil {
				return err
			}
		}
		if err := insertInput(ctx, tx, r.ID, spec.Key, val, who, at, tr.ID); err != nil {
			return err
		}
		what := "input from " + who.String()
		if spec.Kind == store.WaitPause {
			what = "resumed by " + who.String()
		}
		hist := []store.HistoryEntry{inputEntry(r.ID, at, who, spec.Key, tr.Key, val, what)}
		woke, err := c.resolve(ctx, tx, &r, tr, &waitOutcome{state: store.TaskCompleted, result: orNull(val),
			cause: "input", msg: what}, who, at, hist)
		if err != nil {
			return err
		}
		out.Step, out.Woke = tr, woke
		return nil
	})
	return out, err
}

// keepInput keeps input for a key the run does not wait for, unless it
// waited for the key before or input for it is already kept.
func (c *Core) keepInput(ctx context.Context, tx Tx, r *store.Run, p store.InputSendParams, who store.Actor,
	at time.Time, out *store.InputResult) error {
	var (
		actor    string
		verified int64
		sentAt   int64
		taskRun  string
	)
	err := tx.QueryRow(ctx, `SELECT actor, verified, created_at, task_run_id FROM inputs
		WHERE run_id = $1 AND key = $2 AND task_run_id NOT LIKE 'refused:%' ORDER BY seq DESC LIMIT 1`, r.ID, p.Key).
		Scan(&actor, &verified, &sentAt, &taskRun)
	switch err := c.d.Translate(err, ""); {
	case err == nil:
		first := store.Actor{Name: store.DecodeText(actor), Verified: verified == 1}
		if taskRun == "" {
			return fmt.Errorf("input for %s was already sent to run %s by %s at %s and waits for the run: %w",
				p.Key, r.ID, first, DecTime(sentAt).UTC().Format(time.RFC3339), store.ErrConflict)
		}
		return fmt.Errorf("run %s does not wait for input %s: its wait got input from %s at %s: %w",
			r.ID, p.Key, first, DecTime(sentAt).UTC().Format(time.RFC3339), store.ErrConflict)
	case !isNotFound(err):
		return err
	}
	var waited bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM waits WHERE run_id = $1 AND name = $2
		AND kind IN ('input', 'pause'))`, r.ID, p.Key).Scan(&waited); err != nil {
		return err
	}
	if waited {
		return fmt.Errorf("run %s does not wait for input %s any more: %w", r.ID, p.Key, store.ErrConflict)
	}
	if err := insertInput(ctx, tx, r.ID, p.Key, p.Value, who, at, ""); err != nil {
		return err
	}
	out.Kept = true
	return appendHistory(ctx, tx, at, []store.HistoryEntry{inputEntry(r.ID, at, who, p.Key, "", p.Value,
		"input kept until the run waits for it")})
}

// insertInput records input sent to a run for key, delivered to the wait
// step taskRunID (”: kept for a later wait).
func insertInput(ctx context.Context, tx Tx, runID, key string, val json.RawMessage, who store.Actor, at time.Time, taskRunID string) error {
	return tx.Exec(ctx, `INSERT INTO inputs (run_id, key, value, actor, verified, created_at, task_run_id)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, runID, key, EncJSON(orNull(val)), store.EncodeText(who.Name),
		boolInt(who.Verified), EncTime(at), taskRunID)
}

// EventSend records an event and resolves the waits it matches; see
// store.EventSendParams.
func (c *Core) EventSend(ctx context.Context, p store.EventSendParams) (store.EventResult, error) {
	if p.Name == "" {
		return store.EventResult{}, fmt.Errorf("event name must not be empty")
	}
	if err := store.CheckIdentifier("event name", p.Name); err != nil {
		return store.EventResult{}, err
	}
	if len(p.Payload) > 0 && !json.Valid(p.Payload) {
		return store.EventResult{}, fmt.Errorf("event payload is not JSON")
	}
	at := NowIfZero(p.At)
	who := p.Actor.OrSystem()
	var out store.EventResult
	err := c.d.WriteTx(ctx, "send event "+p.Name, func(tx Tx) error {
		out = store.EventResult{}
		if err := tx.QueryRow(ctx, `INSERT INTO sent_events (name, payload, actor, verified, created_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING seq`, p.Name, EncJSON(orNull(p.Payload)), store.EncodeText(who.Name),
			boolInt(who.Verified), EncTime(at)).Scan(&out.Seq); err != nil {
			return err
		}
		refs, err := c.activeWaits(ctx, tx, "kind = 'event' AND name = $1", p.Name)
		if err != nil {
			return err
		}
		return c.eachWaiting(ctx, tx, refs, func(r *store.Run, tr store.TaskRun, spec store.WaitSpec) error {
			if !spec.Matches(p.Payload) {
				return nil
			}
			hist := []store.HistoryEntry{{RunID: r.ID, At: at, Actor: who, Action: store.ActionEventReceived,
				Reason:  "event " + p.Name + " sent by " + who.String(),
				Payload: mustJSON(map[string]any{"name": p.Name, "seq": out.Seq, "step": tr.Key, "payload": orNull(p.Payload)})}}
			if _, err := c.resolve(ctx, tx, r, tr, &waitOutcome{state: store.TaskCompleted, result: orNull(p.Payload),
				cause: "event", msg: fmt.Sprintf("event %s #%d", p.Name, out.Seq), seq: out.Seq}, who, at, hist); err != nil {
				return err
			}
			out.Delivered = append(out.Delivered, store.TaskRunRef{RunID: r.ID, Key: tr.Key, ID: tr.ID})
			return nil
		})
	})
	return out, err
}

// TimersFire resolves the waits whose deadline passed; see
// store.TimersFireParams.
func (c *Core) TimersFire(ctx context.Context, p store.TimersFireParams) (int, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	at := NowIfZero(p.Now)
	fired := 0
	err := c.d.WriteTx(ctx, "fire timers", func(tx Tx) error {
		fired = 0
		cond, args := "wake_at <> 0 AND wake_at <= $1", []any{EncTime(at)}
		if p.RunID != "" {
			cond += " AND run_id = $2"
			args = append(args, p.RunID)
		}
		refs, err := c.activeWaits(ctx, tx, cond+" ORDER BY wake_at LIMIT "+fmt.Sprint(limit), args...)
		if err != nil {
			return err
		}
		return c.eachWaiting(ctx, tx, refs, func(r *store.Run, tr store.TaskRun, spec store.WaitSpec) error {
			if spec.Deadline(tr.CreatedAt).After(at) {
				return nil
			}
			o := timeoutOutcome(spec)
			action, reason := store.ActionTimerFired, o.msg
			if spec.Kind == store.WaitSleep {
				reason = "sleep of " + tr.Key + " ended"
			}
			hist := []store.HistoryEntry{{RunID: r.ID, At: at, Action: action, Reason: reason,
				Payload: mustJSON(map[string]any{"kind": spec.Kind, "step": tr.Key, "due": spec.Deadline(tr.CreatedAt).UTC()})}}
			if _, err := c.resolve(ctx, tx, r, tr, o, store.SystemActor, at, hist); err != nil {
				return err
			}
			fired++
			return nil
		})
	})
	return fired, err
}

// activeWaits returns the refs of the active waits that match cond (a
// condition on waits, which may end with ORDER BY and LIMIT), in run order.
func (c *Core) activeWaits(ctx context.Context, tx Tx, cond string, args ...any) ([]store.TaskRunRef, error) {
	var refs []store.TaskRunRef
	err := tx.Query(ctx, func(rows Rows) error {
		for rows.Next() {
			var r store.TaskRunRef
			if err := rows.Scan(&r.RunID, &r.Key, &r.ID); err != nil {
				return err
			}
			refs = append(refs, r)
		}
		return nil
	}, "SELECT run_id, key, task_run_id FROM waits WHERE active = 1 AND "+cond, args...)
	// Lock runs in one order, so that concurrent resolutions never deadlock.
	slices.SortFunc(refs, func(a, b store.TaskRunRef) int {
		return strings.Compare(a.RunID+"\x00"+a.Key+"\x00"+a.ID, b.RunID+"\x00"+b.Key+"\x00"+b.ID)
	})
	return refs, err
}

// eachWaiting locks the run and the step of each ref and calls fn for the
// steps that still wait; a wait whose step no longer does (its run ended)
// is marked inactive.
func (c *Core) eachWaiting(ctx context.Context, tx Tx, refs []store.TaskRunRef,
	fn func(r *store.Run, tr store.TaskRun, spec store.WaitSpec) error) error {
	var r store.Run
	for _, ref := range refs {
		if r.ID != ref.RunID {
			var err error
			if r, err = ScanRun(tx.QueryRow(ctx, lockRunSQL+c.sx.ForUpdate, ref.RunID)); err != nil {
				if isNotFound(c.d.Translate(err, "")) {
					continue // deleted meanwhile
				}
				return err
			}
		}
		tr, err := ScanTaskRun(tx.QueryRow(ctx, lockTaskRunSQL+c.sx.ForUpdate, ref.RunID, ref.Key, ref.ID))
		if err != nil && !isNotFound(c.d.Translate(err, "")) {
			return err
		}
		if err != nil || tr.State != store.TaskWaiting || r.State.Final() {
			if err := tx.Exec(ctx, "UPDATE waits SET active = 0 WHERE run_id = $1 AND key = $2 AND task_run_id = $3",
				ref.RunID, ref.Key, ref.ID); err != nil {
				return err
			}
			continue
		}
		spec, err := store.DecodeWaitSpec(tr.Input)
		if err != nil {
			return err
		}
		if err := fn(&r, tr, spec); err != nil {
			return err
		}
	}
	return nil
}

// resolve ends wait step tr with o, wakes run r when it is PAUSED on a
// worker's queue, and appends hist; it reports whether r was woken. The
// caller holds the locks of r and tr.
func (c *Core) resolve(ctx context.Context, tx Tx, r *store.Run, tr store.TaskRun, o *waitOutcome, who store.Actor,
	at time.Time, hist []store.HistoryEntry) (bool, error) {
	endWait(&tr, o, at)
	b := store.Batch{TaskRuns: []store.TaskRun{tr}}
	woke := false
	if r.State == store.RunPaused && r.Queue != "" {
		p := store.RunTransitionParams{ID: r.ID, To: store.RunScheduled, Cause: o.cause, Actor: who,
			Action: store.ActionResumed, Message: "resumed: " + o.msg}
		ev := store.ApplyTransition(r, &p, at)
		b.Runs, b.Events = []store.Run{*r}, []store.Event{ev}
		hist = append(hist, store.TransitionEntry(r, ev, who, store.ActionResumed))
		woke = true
	}
	if err := tx.WriteBatch(ctx, &b); err != nil {
		return false, err
	}
	if err := tx.Exec(ctx, "UPDATE waits SET active = 0, event_seq = $4 WHERE run_id = $1 AND key = $2 AND task_run_id = $3",
		tr.RunID, tr.Key, tr.ID, o.seq); err != nil {
		return false, err
	}
	tx.Notes().Add("done", tr.RunID) // the engine waiting in it polls TaskRunFinished
	return woke, appendHistory(ctx, tx, at, hist)
}

// endWait moves wait step tr to o's state.
func endWait(tr *store.TaskRun, o *waitOutcome, at time.Time) {
	tr.State, tr.Result, tr.Error, tr.EndedAt = o.state, o.result, o.err, at
	tr.Attempts = 1
	tr.History = append(slices.Clone(tr.History), store.Transition{At: at.UTC(), From: string(store.TaskWaiting),
		To: string(o.state), Cause: o.cause, Message: o.msg})
}

// timeoutOutcome is the end of a wait at its deadline: a sleep completes,
// a wait with a default completes with it, any other fails.
func timeoutOutcome(w store.WaitSpec) *waitOutcome {
	switch {
	case w.Kind == store.WaitSleep:
		return &waitOutcome{state: store.TaskCompleted, result: json.RawMessage("null"), cause: "timer", msg: "timer fired"}
	case len(w.Default) > 0:
		return &waitOutcome{state: store.TaskCompleted, result: w.Default, cause: "timer",
			msg: "deadline passed: resumed with the default"}
	}
	msg := store.WaitTimeoutMessage(w)
	return &waitOutcome{state: store.TaskTimedOut, err: &store.ErrorInfo{Message: msg, Kind: "timeout"}, cause: "timer", msg: msg}
}

// waitWhat describes what a wait waits for.
func waitWhat(w store.WaitSpec) string {
	switch w.Kind {
	case store.WaitInput:
		return "input " + w.Key
	case store.WaitPause:
		return "a resume"
	case store.WaitSleep:
		if !w.Until.IsZero() {
			return "the time " + w.Until.UTC().Format(time.RFC3339)
		}
		return "a sleep of " + w.Duration
	}
	return "event " + w.Key
}

func inputEntry(runID string, at time.Time, who store.Actor, key, step string, val json.RawMessage, reason string) store.HistoryEntry {
	payload := map[string]any{"key": key, "value": orNull(val)}
	if step != "" {
		payload["step"] = step
	} else {
		payload["kept"] = true
	}
	return store.HistoryEntry{RunID: runID, At: at, Actor: who, Action: store.ActionInputReceived, Reason: reason,
		Payload: mustJSON(payload)}
}

func orNull(v json.RawMessage) json.RawMessage {
	if len(v) == 0 {
		return json.RawMessage("null")
	}
	return v
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// mustJSON encodes a payload of strings, numbers, times and JSON values.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("encode history payload: %v", err))
	}
	return b
}

// checkWaiting returns an ErrConflict unless every step of refs (of run
// runID: wait steps and distributed task runs) is still unfinished.
func (c *Core) checkWaiting(ctx context.Context, tx Tx, runID string, refs []store.TaskRunRef) error {
	for _, ref := range refs {
		if ref.RunID != runID {
			return fmt.Errorf("run %s: wait step %s is of run %s", runID, ref.Key, ref.RunID)
		}
		var state string
		err := tx.QueryRow(ctx, "SELECT state FROM task_runs WHERE run_id = $1 AND key = $2 AND id = $3",
			ref.RunID, ref.Key, ref.ID).Scan(&state)
		if err != nil {
			return c.d.Translate(err, "wait step %s of run %s", ref.Key, runID)
		}
		if store.TaskState(state).Final() {
			return fmt.Errorf("run %s: step %s it waits for is %s: %w", runID, ref.Key, state, store.ErrConflict)
		}
	}
	return nil
}

// TimersNext returns the earliest deadline of the open waits (zero: none).
func (c *Core) TimersNext(ctx context.Context) (time.Time, error) {
	var at int64
	err := c.d.QueryRow(ctx, "SELECT coalesce(min(wake_at), 0) FROM waits WHERE active = 1 AND wake_at <> 0").Scan(&at)
	if err != nil {
		return time.Time{}, c.d.Translate(err, "next timer")
	}
	if at == 0 {
		return time.Time{}, nil
	}
	return DecTime(at), nil
}
