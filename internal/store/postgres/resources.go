package postgres

import (
	"context"

	"github.com/batonhq/baton/internal/store"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// claimNeeds returns the step of a claim that claims the entries of
// p.Tasks with a Need (nil when there are none): after the claim's batch,
// one statement per entry on the claim's connection, each with the limit
// what the entries before it left (store.ClaimNeeds). Claims without needs
// keep their one batch.
func claimNeeds(p store.ClaimParams, out *store.ClaimResult) func(ctx context.Context, c *pgxpool.Conn) error {
	needs := false
	for _, tp := range p.Tasks {
		needs = needs || !tp.Need.IsZero()
	}
	if !needs {
		return nil
	}
	return func(ctx context.Context, c *pgxpool.Conn) error {
		return store.ClaimNeeds(p, out.TaskRuns, func(tp store.TaskRunClaimParams) ([]store.TaskRun, error) {
			var (
				pb  pgx.Batch
				trs []store.TaskRun
			)
			if err := queueTaskRunClaim(&pb, tp, &trs); err != nil {
				return nil, err
			}
			if err := c.SendBatch(ctx, &pb).Close(); err != nil {
				return nil, err
			}
			return trs, nil
		})
	}
}
