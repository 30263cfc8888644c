package baton_test

import (
	"fmt"
	"time"

	"github.com/batonhq/baton"
)

// A deployment runs a flow on schedules. The program's worker registers it
// with the server when it starts (or run: <program> deploy); the server's
// scheduler then creates its runs ahead, on the worker's queue.
func ExampleDeploy() {
	type TrainParams struct {
		Epochs int `json:"epochs"`
	}
	train := baton.Flow("example-train", func(ctx baton.Context, p TrainParams) (int, error) { return p.Epochs, nil })
	nightly := baton.Deploy(train, "example-nightly",
		// 03:00 Berlin time, every day; a run still going at the next
		// fire time makes that one skip; after a downtime the fire times
		// of the last hour are caught up.
		baton.Cron("0 3 * * *", "Europe/Berlin").Overlap(baton.OverlapSkip).Catchup(time.Hour),
		baton.DeployParams(TrainParams{Epochs: 10}),
		baton.DeployQueue("gpu"),
		baton.MaxActive(1, baton.CollisionQueue),
		baton.DeployDescription("retrain the model every night"))
	// Spring forward in Berlin on 2026-03-29 does not move the run.
	for _, t := range nightly.Next(time.Date(2026, 3, 27, 12, 0, 0, 0, time.UTC), 3) {
		fmt.Println(t.Format("2006-01-02 15:04 MST"))
	}
	// Output:
	// 2026-03-28 03:00 CET
	// 2026-03-29 03:00 CEST
	// 2026-03-30 03:00 CEST
}
