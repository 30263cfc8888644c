package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/campaign"
	"github.com/batonhq/baton/examples/flows/campaign/bo"
)

// auto runs the campaign unattended: the flags set its parameters (over
// campaign.DefaultParams, with auto on), the run is recorded in the store,
// and the summary goes to stdout with best=<value> as its last line. It
// returns the exit code: 0 when the run COMPLETED, 1 when it did not, 2
// for bad flags or parameters (and then nothing is recorded).
func auto(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	p := campaign.DefaultParams()
	fs := flag.NewFlagSet("campaign --auto", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "the store: a SQLite file (default $BATON_DB, $BATON_HOME/baton.db, ~/.baton/baton.db)")
	fs.IntVar(&p.Iterations, "iterations", p.Iterations, "the most batches to run")
	fs.IntVar(&p.BatchSize, "batch-size", p.BatchSize, "experiments per batch, run in parallel")
	fs.IntVar(&p.InitialPoints, "initial-points", p.InitialPoints, "points of the initial design (0: 6)")
	fs.Uint64Var(&p.Seed, "seed", p.Seed, "random seed of the optimizer and of the instrument")
	fs.Float64Var(&p.FailureRate, "failure-rate", p.FailureRate, "chance that one attempt of an experiment fails")
	fs.DurationVar(&p.InstrumentDelay, "instrument-delay", p.InstrumentDelay, "about how long an experiment takes")
	fs.IntVar(&p.DecisionEvery, "decision-every", p.DecisionEvery, "a decision point after every N iterations (0: none)")
	quiet := fs.Bool("quiet", false, "do not print the runs' log lines on stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "campaign --auto: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	p.Auto = true
	if err := p.Validate(); err != nil {
		fmt.Fprintf(stderr, "campaign --auto: %v\n", err)
		return 2
	}

	logs := stderr
	if *quiet {
		logs = io.Discard
	}
	rt, err := baton.Open(ctx, baton.Config{DB: *db, LogOutput: logs})
	if err != nil {
		fmt.Fprintf(stderr, "campaign --auto: %v\n", err)
		return 1
	}
	defer rt.Close()
	res, info, err := campaign.Flow.Execute(ctx, rt, p)
	if err != nil {
		fmt.Fprintf(stderr, "campaign --auto: run %s is %s: %v\n", info.ID, info.State, err)
		if info.ID != "" {
			fmt.Fprintf(stderr, "resume it with: go run ./examples/campaign retry %s\n", info.ID)
		}
		return 1
	}
	printSummary(stdout, info.ID, res)
	return 0
}

// printSummary prints the run's result as a table of its iterations, its
// decisions, and best=<value> last.
func printSummary(w io.Writer, runID string, res campaign.Result) {
	fmt.Fprintf(w, "run %s: %d iterations, %d evaluations, %d failed experiments (told as missing), stopped by %s\n",
		runID, res.Iterations, res.Evaluations, res.Failed, res.Stopped)
	fmt.Fprintf(w, "%-9s %5s %8s %6s %12s\n", "iteration", "batch", "measured", "failed", "best")
	for _, it := range res.History {
		best := "-"
		if it.Best != nil {
			best = fmt.Sprintf("%.6f", *it.Best)
		}
		fmt.Fprintf(w, "%-9d %5d %8d %6d %12s\n", it.Iteration, it.BatchSize, it.Measured, it.Failed, best)
	}
	for _, d := range res.Decisions {
		fmt.Fprintf(w, "decision after iteration %d (%s): %s", d.AfterIteration, d.By, d.Decision.Action)
		var changes []string
		if d.Decision.BatchSize > 0 {
			changes = append(changes, fmt.Sprintf("batch size %d", d.Decision.BatchSize))
		}
		if b := d.Decision.Bounds; b != nil {
			changes = append(changes, fmt.Sprintf("bounds x1 %v x2 %v", b.X1, b.X2))
		}
		if len(changes) > 0 {
			fmt.Fprintf(w, ", %s", strings.Join(changes, ", "))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "best found at evaluation %d of %d: x1=%.6f x2=%.6f (Branin's minimum is %.6f)\n",
		res.BestAt, res.Evaluations, res.Best.X1, res.Best.X2, bo.BraninMin)
	fmt.Fprintf(w, "best=%.6f\n", res.Best.Value)
}
