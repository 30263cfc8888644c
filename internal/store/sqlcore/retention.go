package sqlcore

import (
	"context"
	"slices"

	"github.com/batonhq/baton/internal/store"
)

// defaultRetentionLimit is the number of runs RetentionDelete deletes when
// RetentionParams.Limit is 0.
const defaultRetentionLimit = 1000

// RetentionDelete deletes up to p.Limit finished runs that ended before
// p.Before with everything recorded for them, in one transaction, and
// returns the blob references (results, and task runs' input parts) that
// nothing uses any more. Runs that a concurrent
// transaction holds are skipped (the next call deletes them).
func (c *Core) RetentionDelete(ctx context.Context, p store.RetentionParams) (store.RetentionResult, error) {
	limit := p.Limit
	if limit <= 0 {
		limit = defaultRetentionLimit
	}
	var out store.RetentionResult
	err := c.d.WriteTx(ctx, "delete old runs", func(tx Tx) error {
		out = store.RetentionResult{}
		var ids []string
		refs := map[string]struct{}{}
		// collect adds the references in the rows' n columns.
		collect := func(n int) func(Rows) error {
			return func(rows Rows) error {
				cols := make([]string, n)
				dest := make([]any, n)
				for i := range cols {
					dest[i] = &cols[i]
				}
				for rows.Next() {
					if err := rows.Scan(dest...); err != nil {
						return err
					}
					for _, ref := range cols {
						if ref != "" {
							refs[ref] = struct{}{}
						}
					}
				}
				return nil
			}
		}
		err := tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var id, ref string
				if err := rows.Scan(&id, &ref); err != nil {
					return err
				}
				ids = append(ids, id)
				if ref != "" {
					refs[ref] = struct{}{}
				}
			}
			return nil
		}, "SELECT id, result_ref FROM runs WHERE ended_at <> 0 AND ended_at < $1 AND state IN "+finalRunStates+
			" ORDER BY ended_at, id LIMIT $2"+c.sx.SkipLocked, EncTime(p.Before), int64(limit))
		if err != nil || len(ids) == 0 {
			return err
		}
		in := " " + c.sx.In("$1")
		list := []any{c.sx.List(ids)}
		err = tx.Batch(ctx,
			Stmt{SQL: "DELETE FROM task_runs WHERE run_id" + in + " RETURNING result_ref, input_ref", Args: list, Scan: collect(2)},
			Stmt{SQL: "DELETE FROM cache WHERE run_id" + in + " RETURNING result_ref", Args: list, Scan: collect(1)},
			Stmt{SQL: "DELETE FROM events WHERE run_id" + in, Args: list},
			Stmt{SQL: "DELETE FROM logs WHERE run_id" + in, Args: list},
			Stmt{SQL: "DELETE FROM runs WHERE id" + in, Args: list},
			// After the runs: the table's triggers refuse to delete the
			// history of a run that exists.
			Stmt{SQL: "DELETE FROM run_history WHERE run_id" + in, Args: list})
		if err != nil {
			return err
		}
		out.Runs = len(ids)
		if len(refs) == 0 {
			return nil
		}
		cand := make([]string, 0, len(refs))
		for ref := range refs {
			cand = append(cand, ref)
		}
		err = tx.Query(ctx, func(rows Rows) error {
			for rows.Next() {
				var ref string
				if err := rows.Scan(&ref); err != nil {
					return err
				}
				out.OrphanRefs = append(out.OrphanRefs, ref)
			}
			return nil
		}, `SELECT value FROM `+c.sx.JSONStrings("$1")+` WHERE NOT EXISTS (SELECT 1 FROM runs WHERE result_ref = value AND result_ref <> '')
			AND NOT EXISTS (SELECT 1 FROM task_runs WHERE result_ref = value AND result_ref <> '')
			AND NOT EXISTS (SELECT 1 FROM task_runs WHERE input_ref = value AND input_ref <> '')
			AND NOT EXISTS (SELECT 1 FROM cache WHERE result_ref = value AND result_ref <> '')`, jsonStrings(cand))
		if err != nil {
			return err
		}
		slices.Sort(out.OrphanRefs)
		return nil
	})
	if err != nil {
		return store.RetentionResult{}, err
	}
	return out, nil
}
