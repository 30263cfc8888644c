// Package retention deletes old finished runs and the blobs only they used.
// The server runs it on a schedule and the CLI runs it on demand.
package retention

import (
	"context"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/store"
)

// batch is the number of runs deleted per transaction: small, so live work
// is never blocked for long.
const batch = 200

// Blobs deletes blobs; *blob.Store implements it.
type Blobs interface {
	Delete(ref string) error
}

// Run deletes the runs in a final state that ended more than age ago, with
// their task runs, events and logs, in small batches with pauses in between,
// and then the blobs that no remaining record uses.
func Run(ctx context.Context, st store.Store, blobs Blobs, age time.Duration) (apitype.RetentionResult, error) {
	var out apitype.RetentionResult
	before := time.Now().Add(-age)
	for {
		res, err := st.RetentionDelete(ctx, store.RetentionParams{Before: before, Limit: batch})
		if err != nil {
			return out, err
		}
		out.DeletedRuns += res.Runs
		for _, ref := range res.OrphanRefs {
			if blobs.Delete(ref) == nil {
				out.DeletedBlobs++
			}
		}
		if res.Runs < batch {
			return out, nil
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(10 * time.Millisecond): // let live work in between batches
		}
	}
}
