package postgres

import (
	"context"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// claimNeeds claims the entries of p.Tasks with a Need, after the
// claim's batch, on the claim's connection c: each with the limit what the
// entries before it left (store.ClaimNeeds), its PENDING task runs first,
// then its AWAITING_SLOT ones that hold a slot of each limited tag (one
// round trip more when any could). Claims without needs cost nothing here.
func claimNeeds(ctx context.Context, c *pgxpool.Conn, p store.ClaimParams, out *store.ClaimResult) error {
	return store.ClaimNeeds(p, out.TaskRuns, func(tp store.TaskRunClaimParams) ([]store.TaskRun, error) {
		var (
			pb    pgx.Batch
			trs   []store.TaskRun
			slots slotLock
		)
		if err := queueTaskRunClaim(&pb, tp, &trs); err != nil {
			return nil, err
		}
		queueSlotProbe(&pb, []store.TaskRunClaimParams{tp}, &slots)
		if err := c.SendBatch(ctx, &pb).Close(); err != nil {
			return nil, err
		}
		var more pgx.Batch
		got := [][]store.TaskRun{trs}
		if err := queueSlotClaims(&more, []store.TaskRunClaimParams{tp}, &slots, got); err != nil {
			return nil, err
		}
		if more.Len() > 0 {
			if err := c.SendBatch(ctx, &more).Close(); err != nil {
				return nil, err
			}
		}
		return got[0], nil
	})
}

// withoutNeeds returns ps with the Limit of the entries that have a Need
// set to 0: the claim's batch and its slot claims skip them (claimNeeds
// claims them).
func withoutNeeds(ps []store.TaskRunClaimParams) []store.TaskRunClaimParams {
	out := make([]store.TaskRunClaimParams, len(ps))
	for i, tp := range ps {
		if out[i] = tp; !tp.Need.IsZero() {
			out[i].Limit = 0
		}
	}
	return out
}
