package sqlcore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/batonhq/baton/internal/store"
)

// Resource-aware placement (migration 0011): what workers have and what
// their code says of their tasks (workers.resources), and the move of task
// runs to their fallback task.

// workerResources is the stored form of workers.resources.
type workerResources struct {
	Total store.Resources           `json:"total,omitzero"`
	Tasks map[string]store.TaskSpec `json:"tasks,omitempty"`
}

// encWorkerResources returns the workers.resources value of w: NULL when
// it has no resources and no task specs.
func encWorkerResources(w store.Worker) (any, error) {
	if w.Resources.IsZero() && len(w.TaskSpecs) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(workerResources{Total: w.Resources, Tasks: w.TaskSpecs})
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

// decWorkerResources reads a workers.resources value into w.
func decWorkerResources(w *store.Worker, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	var wr workerResources
	if err := json.Unmarshal(b, &wr); err != nil {
		return fmt.Errorf("worker %s: resources: %w", w.ID, err)
	}
	w.Resources, w.TaskSpecs = wr.Total, wr.Tasks
	return nil
}

// TaskRunFallback moves PENDING task runs to their fallback task; see
// store.TaskRunFallbackParams.
func (c *Core) TaskRunFallback(ctx context.Context, p store.TaskRunFallbackParams) (int, error) {
	if p.Queue == "" || p.Task == "" || p.To == "" {
		return 0, nil
	}
	at := NowIfZero(p.At)
	limit := p.Limit
	if limit <= 0 {
		limit = 1000
	}
	toQueue := p.ToQueue
	if toQueue == "" {
		toQueue = p.Queue
	}
	moved := 0
	err := c.d.WriteTx(ctx, "fall back task runs of "+p.Task, func(tx Tx) error {
		moved = 0
		// The candidates first, unlocked: every writer locks runs before
		// task runs, and the history entries need their runs locked.
		var cands []store.TaskRun
		if err := tx.Query(ctx, func(rows Rows) (err error) {
			cands, err = CollectTaskRuns(rows)
			return err
		}, "SELECT "+TaskRunCols+" FROM task_runs WHERE state = 'PENDING' AND queue <> '' AND queue = $1 AND task = $2"+
			" AND created_at <= $3 ORDER BY created_at, run_id, key, id LIMIT $4",
			p.Queue, p.Task, EncTime(p.CreatedBefore), int64(limit)); err != nil {
			return err
		}
		if len(cands) == 0 {
			return nil
		}
		var runIDs []string
		for _, t := range cands {
			runIDs = append(runIDs, t.RunID)
		}
		slices.Sort(runIDs)
		runIDs = slices.Compact(runIDs)
		var a Args
		in := a.in(&c.sx, runIDs)
		if err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
			}
			return nil
		}, "SELECT id FROM runs WHERE id"+in+" ORDER BY id"+c.sx.ForUpdate, a...); err != nil {
			return err
		}
		keys := map[string][]string{}
		for _, t := range cands {
			h := append(t.History, store.Transition{At: at.UTC(), From: string(store.TaskPending),
				To: string(store.TaskPending), Cause: "fallback", Message: p.Reason})
			b, err := MarshalHistory(h)
			if err != nil {
				return err
			}
			var n int
			if err := tx.Query(ctx, func(rows Rows) error {
				for rows.Next() {
					n++
				}
				return nil
			}, `UPDATE task_runs SET task = $1, queue = $2, history = $3
				WHERE run_id = $4 AND key = $5 AND id = $6 AND state = 'PENDING' AND task = $7 AND queue = $8
				RETURNING id`, p.To, toQueue, string(b), t.RunID, t.Key, t.ID, p.Task, p.Queue); err != nil {
				return err
			}
			if n == 1 {
				moved++
				keys[t.RunID] = append(keys[t.RunID], t.Key)
			}
		}
		var entries []store.HistoryEntry
		for _, id := range runIDs {
			ks := keys[id]
			if len(ks) == 0 {
				continue
			}
			shown := ks[:min(len(ks), 20)]
			payload, err := json.Marshal(map[string]any{"task": p.Task, "fallback": p.To, "queue": toQueue,
				"keys": shown, "n": len(ks)})
			if err != nil {
				return err
			}
			reason := fmt.Sprintf("%d task run(s) of %s run %s instead (%s): %s", len(ks), p.Task, p.To,
				strings.Join(shown, ", "), p.Reason)
			entries = append(entries, store.HistoryEntry{RunID: id, At: at, Action: store.ActionFallback,
				Reason: reason, Payload: payload})
		}
		if err := appendHistory(ctx, tx, at, entries); err != nil {
			return err
		}
		if moved > 0 {
			tx.Notes().Add("tasks", toQueue)
		}
		return nil
	})
	return moved, c.d.Translate(err, "fall back task runs of %s", p.Task)
}
