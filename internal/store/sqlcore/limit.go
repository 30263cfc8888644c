package sqlcore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/batonhq/baton/internal/store"
)

// Tag concurrency limits (migration 0010): a row of concurrency_limits per
// limited tag; the slots in use are the RUNNING task runs whose tags hold
// the tag (task_runs_slots indexes them), so a slot is free in the very
// transaction that moves its task run out of RUNNING. Only claims take
// slots: they lock the limit rows of the tags they start (FOR UPDATE, in
// tag order) before they count, so two claims of one tag never count at
// once; see the dialects' slot claims.

// TagsOf returns the FROM item of the tags of the task runs aliased alias
// (one row per tag, column value); none for a task run without tags.
func (c *Core) TagsOf(alias string) string {
	return c.sx.JSONStrings("NULLIF(" + alias + ".tags, '')")
}

// LimitSet creates or changes the limit of a tag; see store.LimitSetParams.
func (c *Core) LimitSet(ctx context.Context, p store.LimitSetParams) (store.Limit, error) {
	if err := store.CheckLimit(p.Tag, p.Max); err != nil {
		return store.Limit{}, err
	}
	at := EncTime(NowIfZero(p.At))
	var out store.Limit
	err := c.d.WriteTx(ctx, "set limit "+p.Tag, func(tx Tx) error {
		if err := tx.Exec(ctx, `INSERT INTO concurrency_limits (tag, max_running, updated_by, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $4) ON CONFLICT (tag) DO UPDATE SET max_running = excluded.max_running,
			updated_by = excluded.updated_by, updated_at = excluded.updated_at`, p.Tag, int64(p.Max), p.By, at); err != nil {
			return err
		}
		// Freed slots (a higher limit) start waiting task runs: wake the
		// claims.
		tx.Notes().Add("tasks", "")
		ls, err := c.limits(ctx, tx, []string{p.Tag}, false)
		if err != nil {
			return err
		}
		if len(ls) != 1 {
			return fmt.Errorf("limit %s not found after its write", p.Tag)
		}
		out = ls[0]
		return nil
	})
	return out, c.d.Translate(err, "set limit %s", p.Tag)
}

// LimitDelete removes the limit of a tag.
func (c *Core) LimitDelete(ctx context.Context, tag string) error {
	if err := store.CheckTag("tag", tag); err != nil {
		return err
	}
	err := c.d.WriteTx(ctx, "delete limit "+tag, func(tx Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM concurrency_limits WHERE tag = $1", tag).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("tag %q has no limit: %w", tag, store.ErrNotFound)
		}
		tx.Notes().Add("tasks", "")
		return tx.Exec(ctx, "DELETE FROM concurrency_limits WHERE tag = $1", tag)
	})
	if err != nil {
		return c.d.Translate(err, "delete limit %s", tag)
	}
	return nil
}

// LimitList returns the limits of tags (all when empty), with their
// holders and waiting counts.
func (c *Core) LimitList(ctx context.Context, tags []string) ([]store.Limit, error) {
	out, err := c.limits(ctx, c.d, tags, true)
	return out, c.d.Translate(err, "list limits")
}

// limits reads the limits of tags (all when empty) from q and, with
// detail, their holders and waiting counts, in one snapshot.
func (c *Core) limits(ctx context.Context, q Querier, tags []string, detail bool) ([]store.Limit, error) {
	var a Args
	where := ""
	if len(tags) > 0 {
		where = " WHERE tag" + a.in(&c.sx, tags)
	}
	var out []store.Limit
	byTag := map[string]int{}
	stmts := []Stmt{{
		SQL:  "SELECT tag, max_running, updated_by, created_at, updated_at FROM concurrency_limits" + where + " ORDER BY tag" + c.sx.ByteOrder,
		Args: a,
		Scan: func(rows Rows) error {
			for rows.Next() {
				var (
					l                 store.Limit
					max, created, upd int64
				)
				if err := rows.Scan(&l.Tag, &max, &l.UpdatedBy, &created, &upd); err != nil {
					return err
				}
				l.Max, l.CreatedAt, l.UpdatedAt = int(max), DecTime(created), DecTime(upd)
				byTag[l.Tag] = len(out)
				out = append(out, l)
			}
			return nil
		},
	}}
	if detail {
		tagFilter := "SELECT tag FROM concurrency_limits" + where
		stmts = append(stmts, Stmt{
			SQL: `SELECT value, t.run_id, t.key, t.id, t.task, t.worker_id, t.started_at, t.lease_until
				FROM task_runs t, ` + c.TagsOf("t") + `
				WHERE ` + SlotHeld("t", strconv.FormatInt(EncTime(time.Now()), 10)) + ` AND value IN (` + tagFilter + `)
				ORDER BY t.started_at, t.run_id, t.key, t.id`,
			Args: a,
			Scan: func(rows Rows) error {
				for rows.Next() {
					var (
						tag          string
						h            store.SlotHolder
						since, lease int64
					)
					if err := rows.Scan(&tag, &h.Ref.RunID, &h.Ref.Key, &h.Ref.ID, &h.Task, &h.WorkerID, &since, &lease); err != nil {
						return err
					}
					h.Since, h.LeaseUntil = DecTime(since), DecTime(lease)
					if i, ok := byTag[tag]; ok {
						out[i].Holders = append(out[i].Holders, h)
					}
				}
				return nil
			},
		}, Stmt{
			SQL: `SELECT value, count(*) FROM task_runs t, ` + c.TagsOf("t") + `
				WHERE t.state = 'AWAITING_SLOT' AND value IN (` + tagFilter + `) GROUP BY value`,
			Args: a,
			Scan: func(rows Rows) error {
				for rows.Next() {
					var (
						tag string
						n   int64
					)
					if err := rows.Scan(&tag, &n); err != nil {
						return err
					}
					if i, ok := byTag[tag]; ok {
						out[i].Waiting = int(n)
					}
				}
				return nil
			},
		})
	}
	if err := q.Batch(ctx, stmts...); err != nil {
		return nil, err
	}
	if out == nil {
		out = []store.Limit{}
	}
	return out, nil
}

// SlotCandidate is a task run a slot claim may start.
type SlotCandidate struct {
	Ref       store.TaskRunRef
	Tags      []string
	CreatedAt time.Time
}

// AdmitSlots decides which of the candidates (oldest first) a slot claim
// starts: at most n, each only when every tag of it that has a limit in
// limits (tag -> max) has a free slot given used (tag -> RUNNING task runs
// with the tag) and the candidates admitted before it. A candidate that
// must wait still counts, for each of its limited tags, against the
// candidates behind it, so a task run never overtakes an older one of the
// same tag (slots go oldest first). Tags absent from limits have no limit;
// a limited tag missing from locked (the claim did not lock its row)
// blocks the candidate.
func AdmitSlots(cands []SlotCandidate, limits map[string]int, used map[string]int, locked map[string]bool, n int) []int {
	var out []int
	queued := map[string]int{} // candidates seen per limited tag
	for i, c := range cands {
		ok := true
		for _, tag := range c.Tags {
			max, limited := limits[tag]
			if !limited {
				continue
			}
			if !locked[tag] || used[tag]+queued[tag] >= max {
				ok = false
			}
			queued[tag]++
		}
		if ok && len(out) < n {
			out = append(out, i)
		} else if ok {
			break
		}
	}
	return out
}

// SlotHeld is the condition that the task run aliased alias holds the
// slots of its tags at time now (a parameter or an expression): RUNNING
// with tags, and either distributed (its worker's lease is its slot's,
// taken back by the lease expiry) or local with an unexpired lease (see
// store.SlotAcquireParams: a dead process's slots are free at its lease's
// end, with no take-back).
func SlotHeld(alias, now string) string {
	return alias + ".state = 'RUNNING' AND " + alias + ".tags <> '' AND (" + alias + ".queue <> '' OR (" +
		alias + ".worker_id <> '' AND " + alias + ".lease_until > " + now + "))"
}

// SlotAcquire writes a local task run RUNNING with its slots when each of
// its limited tags has one free; see store.SlotAcquireParams. It locks the
// limit rows of the tags (FOR UPDATE, in tag order) as the claims do, and
// counts in a statement after the lock.
func (c *Core) SlotAcquire(ctx context.Context, p store.SlotAcquireParams) (bool, error) {
	if err := store.CheckSlotAcquire(p); err != nil {
		return false, err
	}
	tags, err := store.NormalizeTags(p.TaskRun.Tags)
	if err != nil {
		return false, err
	}
	now := EncTime(NowIfZero(p.At))
	ok := false
	err = c.d.WriteTx(ctx, "acquire slots of task run "+p.TaskRun.ID, func(tx Tx) error {
		ok = false
		limits := map[string]int{}
		var a Args
		q := "SELECT tag, max_running FROM concurrency_limits WHERE tag" + a.in(&c.sx, tags) + " ORDER BY tag" + c.sx.ByteOrder + c.sx.ForUpdate
		if err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var (
					tag string
					n   int64
				)
				if err := rows.Scan(&tag, &n); err != nil {
					return err
				}
				limits[tag] = int(n)
			}
			return nil
		}, q, a...); err != nil {
			return err
		}
		if len(limits) > 0 {
			var b Args
			tagsP := b.in(&c.sx, tags)
			nowP := b.Add(now)
			self := "(t.run_id = " + b.Add(p.TaskRun.RunID) + " AND t.key = " + b.Add(p.TaskRun.Key) + " AND t.id = " + b.Add(p.TaskRun.ID) + ")"
			used := map[string]int{}
			if err := tx.Query(ctx, func(rows Rows) error {
				for rows.Next() {
					var (
						tag string
						n   int64
					)
					if err := rows.Scan(&tag, &n); err != nil {
						return err
					}
					used[tag] = int(n)
				}
				return nil
			}, `SELECT value, count(*) FROM task_runs t, `+c.TagsOf("t")+` WHERE `+SlotHeld("t", nowP)+
				` AND value`+tagsP+` AND NOT `+self+` GROUP BY value`, b...); err != nil {
				return err
			}
			for tag, max := range limits {
				if used[tag] >= max {
					return nil // a limited tag is full: wait
				}
			}
		}
		tr := p.TaskRun
		if err := tx.WriteBatch(ctx, &store.Batch{TaskRuns: []store.TaskRun{tr}}); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, c.d.Translate(err, "acquire slots of task run %s", p.TaskRun.ID)
	}
	return ok, nil
}

// SlotRenew extends the lease of a local task run's slots; see
// store.SlotRenewParams.
func (c *Core) SlotRenew(ctx context.Context, p store.SlotRenewParams) error {
	err := c.d.WriteTx(ctx, "renew slots of task run "+p.Ref.ID, func(tx Tx) error {
		return tx.Exec(ctx, `UPDATE task_runs SET lease_until = $1 WHERE run_id = $2 AND key = $3 AND id = $4
			AND state = 'RUNNING' AND queue = '' AND worker_id = $5 AND lease_until < $1`,
			EncTime(p.Until), p.Ref.RunID, p.Ref.Key, p.Ref.ID, p.Holder)
	})
	return c.d.Translate(err, "renew slots of task run %s", p.Ref.ID)
}
