// Package retention deletes old finished runs and the blobs only they used.
// The server runs it on a schedule and the CLI runs it on demand.
package retention

import (
	"context"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/store"
)

// batch is the number of runs deleted per transaction: small, so live work
// is never blocked for long.
const batch = 200

// Blobs deletes blobs; *blob.Store implements it.
type Blobs interface {
	// Remove deletes the blob of ref unless it was written (Put) less than
	// grace ago, and reports whether it did.
	Remove(ref string, grace time.Duration) (bool, error)
}

// Run deletes the runs in a final state that ended before the cut-off time
// (callers compute it with their clock: now minus the retention age), with
// their task runs, events and logs, in small batches with pauses in between,
// and then the blobs that no remaining record uses: results of runs, task
// runs and cache entries, and the large parts of task runs' inputs. A blob
// that nothing references but that was written less than blob.Grace ago is
// kept: a writer that stored it again (Put) after the store answered which
// references remain is about to record it.
//
// The pause between batches is real time (it yields to live work, it does
// not decide anything), so a test with a fake clock needs not advance it.
func Run(ctx context.Context, st store.Store, blobs Blobs, before time.Time) (apitype.RetentionResult, error) {
	var out apitype.RetentionResult
	for {
		res, err := st.RetentionDelete(ctx, store.RetentionParams{Before: before, Limit: batch})
		if err != nil {
			return out, err
		}
		out.DeletedRuns += res.Runs
		for _, ref := range res.OrphanRefs {
			if removed, err := blobs.Remove(ref, blob.Grace); err == nil && removed {
				out.DeletedBlobs++
			}
		}
		if res.Runs < batch {
			return out, nil
		}
		pause := time.NewTimer(10 * time.Millisecond) // let live work in between batches
		select {
		case <-ctx.Done():
			pause.Stop()
			return out, ctx.Err()
		case <-pause.C:
		}
	}
}
