package sqlcore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// The history of runs (table run_history, migration 0006): entries are
// appended in the transaction of the change they describe and never
// changed. The tables' triggers refuse UPDATE, and DELETE while the run
// exists, on both backends.

const insertHistorySQL = `INSERT INTO run_history (run_id, at, actor, verified, action, reason, payload)
	VALUES ($1, $2, $3, $4, $5, $6, $7)`

const historyCols = `seq, run_id, at, actor, verified, action, reason, payload`

// AppendHistory inserts entries with q (a write transaction), in order.
// Zero times are at, zero actors the system. The caller holds the lock of
// each entry's run (or created it in the transaction).
func AppendHistory(ctx context.Context, q Querier, at time.Time, entries []store.HistoryEntry) error {
	return appendHistory(ctx, q, at, entries)
}

// appendHistory is AppendHistory.
func appendHistory(ctx context.Context, tx Querier, at time.Time, entries []store.HistoryEntry) error {
	for _, e := range entries {
		if e.At.IsZero() {
			e.At = at
		}
		e.Actor = e.Actor.OrSystem()
		verified := int64(0)
		if e.Actor.Verified {
			verified = 1
		}
		if err := tx.Exec(ctx, insertHistorySQL, e.RunID, EncTime(e.At), store.EncodeText(e.Actor.Name), verified,
			e.Action, store.EncodeText(e.Reason), EncJSON(e.Payload)); err != nil {
			return err
		}
	}
	return nil
}

// HistoryAppend appends entries to their runs' histories in one
// transaction that locks the runs (in id order), so that a run's entries
// commit in the order of their seq; see store.Store.
func (c *Core) HistoryAppend(ctx context.Context, entries []store.HistoryEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var ids []string
	for _, e := range entries {
		if err := store.CheckHistoryEntry(e); err != nil {
			return err
		}
		ids = append(ids, e.RunID)
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	at := time.Now()
	return c.d.WriteTx(ctx, "append history", func(tx Tx) error {
		for _, id := range ids {
			var got string
			if err := tx.QueryRow(ctx, "SELECT id FROM runs WHERE id = $1"+c.sx.ForUpdate, id).Scan(&got); err != nil {
				return c.d.Translate(err, "run %s", id)
			}
		}
		return appendHistory(ctx, tx, at, entries)
	})
}

// HistoryList returns a page of a run's history; see store.Store.
func (c *Core) HistoryList(ctx context.Context, p store.HistoryListParams) ([]store.HistoryEntry, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = store.DefaultHistoryLimit
	}
	var (
		out   []store.HistoryEntry
		found bool
	)
	err := c.d.Batch(ctx, Stmt{
		SQL:  "SELECT 1 FROM runs WHERE id = $1",
		Args: []any{p.RunID},
		Scan: func(rows Rows) error { found = rows.Next(); return nil },
	}, Stmt{
		SQL:  "SELECT " + historyCols + " FROM run_history WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
		Args: []any{p.RunID, p.After, int64(limit)},
		Scan: func(rows Rows) error {
			for rows.Next() {
				var (
					e                    store.HistoryEntry
					at, verified         int64
					actor, reason, actio string
					payload              []byte
				)
				if err := rows.Scan(&e.Seq, &e.RunID, &at, &actor, &verified, &actio, &reason, &payload); err != nil {
					return err
				}
				e.At = DecTime(at)
				e.Actor = store.Actor{Name: store.DecodeText(actor), Verified: verified != 0}
				e.Action, e.Reason, e.Payload = actio, store.DecodeText(reason), DecJSON(payload)
				out = append(out, e)
			}
			return nil
		},
	})
	if err != nil {
		return nil, c.d.Translate(err, "history of run %s", p.RunID)
	}
	if !found {
		return nil, fmt.Errorf("run %s: %w", p.RunID, store.ErrNotFound)
	}
	return out, nil
}

// transitionHistory returns the history entries of the change p of run r
// (after the change), whose event is ev, with its parameter edit (old
// holds the parameters before) and p.History.
func transitionHistory(r *store.Run, p *store.RunTransitionParams, ev store.Event, old store.Run) []store.HistoryEntry {
	out := []store.HistoryEntry{store.TransitionEntry(r, ev, p.Actor, p.Action)}
	if p.Parameters != nil {
		out = append(out, store.EditEntry(r.ID, ev.At, p.Actor, ev.Message, old.Parameters, p.Parameters))
	}
	for _, e := range p.History {
		if e.RunID == "" {
			e.RunID = r.ID
		}
		if e.At.IsZero() {
			e.At = ev.At
		}
		if e.Actor.IsZero() {
			e.Actor = p.Actor
		}
		out = append(out, e)
	}
	return out
}
