package sqlcore

import (
	"context"
	"fmt"

	"github.com/batonhq/baton/internal/store"
)

// Work queues (migration 0010): the work_queues table holds the declared
// queues; "default" is declared by the migration. Claims read no table:
// servers keep the declared queues in memory (a "queues" notification
// makes them read it again) and claim from the queues that are not paused,
// highest priority first. A queue's concurrency limit (max_running) is read
// by the claims themselves, in their transaction (see the dialects' claims):
// PostgreSQL locks the limited queues' rows before it counts, SQLite's
// writer excludes every other.

const queueCols = `name, priority, max_running, paused, pause_note, paused_by, paused_at, description, created_at, updated_at`

func scanQueue(sc Row) (store.WorkQueue, error) {
	var (
		q                      store.WorkQueue
		prio, maxRun, paused   int64
		pausedAt, created, upd int64
	)
	if err := sc.Scan(&q.Name, &prio, &maxRun, &paused, &q.PauseNote, &q.PausedBy, &pausedAt, &q.Description, &created, &upd); err != nil {
		return q, err
	}
	q.Priority, q.MaxRunning, q.Paused = int(prio), int(maxRun), paused != 0
	q.PausedAt, q.CreatedAt, q.UpdatedAt = DecTime(pausedAt), DecTime(created), DecTime(upd)
	return q, nil
}

// QueueSet declares or changes a work queue; see store.QueueSetParams.
func (c *Core) QueueSet(ctx context.Context, p store.QueueSetParams) (store.WorkQueue, error) {
	if err := store.CheckQueueSet(p); err != nil {
		return store.WorkQueue{}, err
	}
	at := EncTime(NowIfZero(p.At))
	var out store.WorkQueue
	err := c.d.WriteTx(ctx, "set queue "+p.Name, func(tx Tx) error {
		q, err := scanQueue(tx.QueryRow(ctx, "SELECT "+queueCols+" FROM work_queues WHERE name = $1"+c.sx.ForUpdate, p.Name))
		exists := err == nil
		if err != nil && !errorsIsNoRows(c, err) {
			return err
		}
		if exists && p.Create {
			return fmt.Errorf("queue %q exists: %w", p.Name, store.ErrConflict)
		}
		if !exists {
			q = store.WorkQueue{Name: p.Name, CreatedAt: DecTime(at)}
		}
		if p.Priority != nil {
			q.Priority = *p.Priority
		}
		raised := false
		if p.MaxRunning != nil {
			raised = *p.MaxRunning == 0 || (q.MaxRunning != 0 && *p.MaxRunning > q.MaxRunning)
			q.MaxRunning = *p.MaxRunning
		}
		if p.Description != nil {
			q.Description = *p.Description
		}
		switch {
		case p.Pause:
			q.Paused, q.PauseNote, q.PausedBy, q.PausedAt = true, p.PauseNote, p.By, DecTime(at)
		case p.Resume:
			q.Paused, q.PauseNote, q.PausedBy, q.PausedAt = false, "", "", DecTime(0)
		}
		q.UpdatedAt = DecTime(at)
		paused := int64(0)
		if q.Paused {
			paused = 1
		}
		if err := tx.Exec(ctx, `INSERT INTO work_queues (`+queueCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (name) DO UPDATE SET priority = excluded.priority, max_running = excluded.max_running, paused = excluded.paused,
			pause_note = excluded.pause_note, paused_by = excluded.paused_by, paused_at = excluded.paused_at,
			description = excluded.description, updated_at = excluded.updated_at`,
			q.Name, int64(q.Priority), int64(q.MaxRunning), paused, q.PauseNote, q.PausedBy, EncTime(q.PausedAt), q.Description,
			EncTime(q.CreatedAt), at); err != nil {
			return err
		}
		tx.Notes().Add("queues", q.Name)
		if p.Resume || raised { // work may start now
			tx.Notes().Add("runs", q.Name)
			tx.Notes().Add("tasks", q.Name)
		}
		out = q
		return nil
	})
	if err != nil {
		return store.WorkQueue{}, c.d.Translate(err, "set queue %s", p.Name)
	}
	return RoundQueue(out), nil
}

// RoundQueue returns q with its times as the store keeps them.
func RoundQueue(q store.WorkQueue) store.WorkQueue {
	q.PausedAt, q.CreatedAt, q.UpdatedAt = DecTime(EncTime(q.PausedAt)), DecTime(EncTime(q.CreatedAt)), DecTime(EncTime(q.UpdatedAt))
	return q
}

// errorsIsNoRows reports whether err is the driver's no-rows error.
func errorsIsNoRows(c *Core, err error) bool {
	return isNotFound(c.d.Translate(err, "x"))
}

// QueueDeclared returns the declared work queues, by name.
func (c *Core) QueueDeclared(ctx context.Context) ([]store.WorkQueue, error) {
	out, err := queryAll(ctx, c.d, scanQueue, "SELECT "+queueCols+" FROM work_queues ORDER BY name"+c.sx.ByteOrder)
	if err != nil {
		return nil, c.d.Translate(err, "list queues")
	}
	if out == nil {
		out = []store.WorkQueue{}
	}
	return out, nil
}
