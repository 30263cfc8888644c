package sqlcore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// TaskRunUpsertGuard is the condition (on the existing row of table
// task_runs) under which a batch may overwrite a task run; see
// store.Batch.
const TaskRunUpsertGuard = "task_runs.state NOT IN ('COMPLETED', 'CACHED', 'FAILED', 'TIMED_OUT', 'CANCELLED', 'CRASHED')" +
	" AND (task_runs.queue = '' OR task_runs.state IN ('PENDING', 'AWAITING_SLOT'))"

// RunTransition applies the conditional state change p (see
// store.RunTransitionParams) and records its event, in one transaction that
// locks the run's row. It returns an error wrapping store.ErrConflict that
// names the current state when the run is not in one of p.From (or not at
// p.Attempt), or store.ErrNotFound when the run does not exist.
func (c *Core) RunTransition(ctx context.Context, p store.RunTransitionParams) (store.Run, error) {
	if p.To == "" {
		return store.Run{}, fmt.Errorf("run transition %s: no target state", p.ID)
	}
	at := NowIfZero(p.At)
	for _, e := range p.History {
		if e.RunID != "" && e.RunID != p.ID {
			return store.Run{}, fmt.Errorf("run transition %s: a history entry of run %s", p.ID, e.RunID)
		}
		e.RunID = p.ID
		if err := store.CheckHistoryEntry(e); err != nil {
			return store.Run{}, fmt.Errorf("run transition %s: %w", p.ID, err)
		}
	}
	var out store.Run
	err := c.d.WriteTx(ctx, "run transition "+p.ID, func(tx Tx) error {
		r, err := ScanRun(tx.QueryRow(ctx, "SELECT "+RunCols+" FROM runs WHERE id = $1"+c.sx.ForUpdate, p.ID))
		if err != nil {
			return c.d.Translate(err, "run %s", p.ID)
		}
		if !slices.Contains(p.From, r.State) {
			return fmt.Errorf("run %s is %s, not %s: %w", p.ID, r.State, statesString(p.From), store.ErrConflict)
		}
		if p.Attempt != 0 && r.Attempt != p.Attempt {
			return fmt.Errorf("run %s is %s at attempt %d, not attempt %d: %w", p.ID, r.State, r.Attempt,
				p.Attempt, store.ErrConflict)
		}
		if err := c.checkWaiting(ctx, tx, p.ID, p.WaitingOn); err != nil {
			return err
		}
		old := r
		ev := store.ApplyTransition(&r, &p, at)
		if err := tx.WriteBatch(ctx, &store.Batch{Runs: []store.Run{r}, Events: []store.Event{ev}}); err != nil {
			return err
		}
		if err := appendHistory(ctx, tx, at, transitionHistory(&r, &p, ev, old)); err != nil {
			return err
		}
		if r.State.Final() && old.PauseRequest != nil { // nothing left to pause
			if err := tx.Exec(ctx, "UPDATE runs SET pause_request = NULL WHERE id = $1", r.ID); err != nil {
				return err
			}
			r.PauseRequest = nil
		}
		if err := tx.StopTaskRuns(ctx, &r, p.Cause, at); err != nil {
			return err
		}
		out = r
		return nil
	})
	if err != nil {
		return store.Run{}, err
	}
	return RoundRun(out), nil
}

// RunCreate inserts p.Run with its creation event, in one transaction. When
// the run has an idempotency key that another run holds, it returns that run
// (created false) and writes nothing; another run with the same ID is an
// error wrapping store.ErrConflict.
func (c *Core) RunCreate(ctx context.Context, p store.RunCreateParams) (store.Run, bool, error) {
	r := p.Run
	if r.CreatedAt.IsZero() {
		r.CreatedAt = time.Now()
	}
	if r.UpdatedAt.IsZero() {
		r.UpdatedAt = r.CreatedAt
	}
	args, err := runCreateArgs(&r)
	if err != nil {
		return store.Run{}, false, fmt.Errorf("create run %s: %w", r.ID, err)
	}
	var (
		out     store.Run
		created bool
	)
	err = c.d.WriteTx(ctx, "create run "+r.ID, func(tx Tx) error {
		created = false
		ins, err := ScanRun(tx.QueryRow(ctx, createRunSQL, args...))
		if err == nil {
			ev := store.Event{RunID: r.ID, To: string(r.State), Cause: p.Cause, Message: p.Message, At: r.CreatedAt}
			if err := tx.WriteBatch(ctx, &store.Batch{Events: []store.Event{ev}}); err != nil {
				return err
			}
			if err := appendHistory(ctx, tx, r.CreatedAt, []store.HistoryEntry{store.CreateEntry(&ins, p.Actor, p.Message)}); err != nil {
				return err
			}
			tx.Notes().AddRun(&ins)
			out, created = ins, true
			return nil
		}
		if err = c.d.Translate(err, "insert"); !isNotFound(err) {
			return err
		}
		if r.IdempotencyKey != "" {
			existing, err := ScanRun(tx.QueryRow(ctx, "SELECT "+RunCols+
				" FROM runs WHERE idempotency_key = $1 AND idempotency_key <> ''", r.IdempotencyKey))
			if err == nil {
				out = existing
				return nil
			}
			if err = c.d.Translate(err, "run of idempotency key %q", r.IdempotencyKey); !isNotFound(err) {
				return err
			}
		}
		return fmt.Errorf("run %s already exists: %w", r.ID, store.ErrConflict)
	})
	if err != nil {
		return store.Run{}, false, err
	}
	return out, created, nil
}

// WorkerUpsert registers or updates w.
func (c *Core) WorkerUpsert(ctx context.Context, w store.Worker) error {
	if w.LastSeen.IsZero() {
		w.LastSeen = time.Now()
	}
	var vals [4]any
	var err error
	for i, x := range []struct {
		v     any
		empty bool
	}{{w.Queues, len(w.Queues) == 0}, {w.Flows, len(w.Flows) == 0}, {w.Tasks, len(w.Tasks) == 0},
		{w.Slots, len(w.Slots) == 0}} {
		if vals[i], err = encList(x.v, x.empty); err != nil {
			return fmt.Errorf("register worker %s: %w", w.ID, err)
		}
	}
	res, err := encWorkerResources(w)
	if err != nil {
		return fmt.Errorf("register worker %s: %w", w.ID, err)
	}
	return c.d.WriteTx(ctx, "register worker "+w.ID, func(tx Tx) error {
		return tx.Exec(ctx, `INSERT INTO workers (id, name, host, pid, queues, flows, tasks, slots,
			capacity, started_at, last_seen, resources) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, host = excluded.host, pid = excluded.pid,
			queues = excluded.queues, flows = excluded.flows, tasks = excluded.tasks, slots = excluded.slots,
			capacity = excluded.capacity, started_at = excluded.started_at, last_seen = excluded.last_seen,
			resources = excluded.resources`,
			w.ID, w.Name, w.Host, int64(w.PID), vals[0], vals[1], vals[2], vals[3], int64(w.Capacity),
			EncTime(w.StartedAt), EncTime(w.LastSeen), res)
	})
}

// FlowUpsert records the flows a worker registered, in one transaction
// (the last registration of a name wins); see store.FlowUpsertParams.
func (c *Core) FlowUpsert(ctx context.Context, p store.FlowUpsertParams) error {
	if len(p.Flows) == 0 {
		return nil
	}
	return c.d.WriteTx(ctx, "register flows", func(tx Tx) error {
		for _, f := range p.Flows {
			if err := tx.Exec(ctx, `INSERT INTO flows (name, parameters, defaults, registered_at)
				VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET parameters = excluded.parameters,
				defaults = excluded.defaults, registered_at = excluded.registered_at`,
				f.Name, EncJSON(f.Parameters), EncJSON(f.Defaults), EncTime(NowIfZero(f.RegisteredAt))); err != nil {
				return err
			}
		}
		return nil
	})
}

// BatchWrite applies all writes of b in one transaction (Tx.WriteBatch),
// which announces its queued runs and PENDING distributed task runs.
func (c *Core) BatchWrite(ctx context.Context, b store.Batch) error {
	if b.Empty() {
		return nil
	}
	return c.d.WriteTx(ctx, "batch write", func(tx Tx) error { return tx.WriteBatch(ctx, &b) })
}
