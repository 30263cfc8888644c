package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/clock"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// measureScheduler measures the deployments' scheduler (deploy.Service's
// pass, what the server runs) on a fresh SQLite store with 10,000
// deployments, each with a one-minute interval schedule, all firing at the
// same instants (the worst case: every schedule is due at once).
//
//   - scheduler_runs_per_s: with no horizon (runs are created only once
//     due), five passes, one per simulated minute: runs created / wall
//     time of the passes.
//   - scheduler_lag_p99_ms: in those passes, the lag of each run between
//     its planned start and the commit of its creation (all fire at the
//     pass's start, so it is the wall time until its schedule's commit);
//     the 99th percentile.
//   - scheduler_pass_ms: with the server's default horizon (5 minutes),
//     the wall time of the steady-state pass of one minute, which creates
//     each schedule's run 5 minutes ahead (its lag is then negative: the
//     runs exist minutes before they are due as long as a pass takes less
//     than the horizon).
func measureScheduler(ctx context.Context, b *bench) error {
	n := b.n(10000)
	for _, horizon := range []time.Duration{time.Nanosecond, deploy.DefaultHorizon} {
		dir, err := b.storeDir("scheduler-" + strconv.FormatInt(int64(horizon), 10))
		if err != nil {
			return err
		}
		st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
		if err != nil {
			return err
		}
		defer st.Close()
		t0 := time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
		clk := clock.NewFake(t0)
		var (
			passStart time.Time
			lags      []time.Duration
		)
		svc := deploy.New(deploy.Config{Store: st, Clock: clk, Horizon: horizon, MaxAhead: 10,
			Fired: func(created []store.Run) {
				elapsed := time.Since(passStart)
				for _, r := range created {
					lags = append(lags, elapsed+clk.Now().Sub(r.PlannedAt()))
				}
			}})
		b.progress("scheduler: creating %d deployments (horizon %s)", n, horizon)
		for i := range n {
			d, err := deploy.Build(apiRequest(fmt.Sprintf("d%05d", i)), store.SourceAPI, t0)
			if err != nil {
				return err
			}
			if _, _, err := st.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, Deployment: d, At: t0}); err != nil {
				return err
			}
		}
		pass := func() (deploy.TickResult, time.Duration, error) {
			passStart = time.Now()
			res, err := svc.Tick(ctx)
			return res, time.Since(passStart), err
		}
		if horizon == time.Nanosecond {
			created, total := 0, time.Duration(0)
			for range 5 {
				clk.Advance(time.Minute)
				res, d, err := pass()
				if err != nil {
					return err
				}
				created += res.Created
				total += d
			}
			if created != 5*n {
				return fmt.Errorf("created %d runs, want %d", created, 5*n)
			}
			slices.Sort(lags)
			p99 := lags[min(len(lags)-1, len(lags)*99/100)]
			b.report("scheduler_runs_per_s", float64(created)/total.Seconds(), 0)
			b.report("scheduler_lag_p99_ms", float64(p99)/float64(time.Millisecond), 1)
			continue
		}
		if _, _, err := pass(); err != nil { // the first pass fills the horizon
			return err
		}
		clk.Advance(time.Minute)
		res, d, err := pass()
		if err != nil {
			return err
		}
		if res.Created != n {
			return fmt.Errorf("steady pass created %d runs, want %d", res.Created, n)
		}
		b.report("scheduler_pass_ms", float64(d)/float64(time.Millisecond), 0)
	}
	return nil
}

// apiRequest is the declaration of a bench deployment: flow bench.noop
// every minute, runs allowed to overlap (the policies' gate then has
// nothing to do but move its watermark).
func apiRequest(name string) apitype.DeploymentRequest {
	return apitype.DeploymentRequest{Name: name, Flow: "bench.noop",
		Schedules: []apitype.ScheduleRequest{{Interval: "1m", Overlap: store.OverlapAllowAll}}}
}
