// Package campaign is an autonomous optimization campaign run by Baton: a
// self-driving lab's loop, where an optimizer proposes experiments, an
// instrument runs them, and a scientist steers the campaign from time to
// time.
//
// Flow minimizes the Branin function over two variables by Bayesian
// optimization (package bo: a Gaussian-process surrogate and expected
// improvement, in ask/tell form). Each iteration asks the optimizer for a
// batch of points (the ask task), runs one experiment per point in
// parallel on a simulated instrument that takes time and sometimes fails
// (the experiment task, retried with backoff), and tells the optimizer the
// measured values. An experiment that still fails after its retries is
// told as missing (Abandon): the optimizer forgets the point and may
// propose it again. Every DecisionEvery iterations the campaign reaches a
// decision point: continue, stop, or change the batch size or the search
// bounds (see Decision and decide).
//
// The flow is replay-safe: the optimizer's state is rebuilt from recorded
// steps only. The batch each iteration measures is the recorded result of
// its ask task, the measurements are the recorded results of the
// experiments, and every decision is a recorded step too, so when a run is
// resumed (after a crash, on another worker) the flow code computes the
// same optimizer state and asks nothing twice. The command in
// examples/campaign runs Flow; `baton dev` hosts it.
package campaign

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/campaign/bo"
)

// Limits of the parameters and of decisions.
const (
	MaxBatchSize  = 32
	MaxIterations = 1000
)

// Bounds is the search space: for each variable, its [low, high] interval.
type Bounds struct {
	X1 [2]float64 `json:"x1" doc:"the interval [low, high] of x1"`
	X2 [2]float64 `json:"x2" doc:"the interval [low, high] of x2"`
}

// BraninBounds is Branin's usual domain, the default search space.
var BraninBounds = Bounds{X1: [2]float64{-5, 10}, X2: [2]float64{0, 15}}

// Validate reports whether b is a usable search space: finite intervals
// with low < high. name prefixes the messages ("bounds").
func (b Bounds) Validate(name string) error {
	for _, iv := range []struct {
		name string
		v    [2]float64
	}{{"x1", b.X1}, {"x2", b.X2}} {
		lo, hi := iv.v[0], iv.v[1]
		if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || !(lo < hi) {
			return fmt.Errorf("%s.%s is [%v, %v]: want finite numbers with low < high", name, iv.name, lo, hi)
		}
	}
	return nil
}

func (b Bounds) bo() []bo.Bound {
	return []bo.Bound{{Lo: b.X1[0], Hi: b.X1[1]}, {Lo: b.X2[0], Hi: b.X2[1]}}
}

// Params are the flow's parameters. Their jsonschema tags put the ranges in
// the flow's parameter schema, so the command line and the API refuse
// values out of range before a run is recorded; Validate checks the same
// and what a schema cannot say (each interval's low end below its high
// end; auto=false with decision points), and the flow calls it first.
type Params struct {
	Iterations      int           `json:"iterations" doc:"the most batches to run (a decision may stop the campaign earlier)" jsonschema:"minimum=1,maximum=1000"`
	BatchSize       int           `json:"batch_size" doc:"experiments per batch, run in parallel (1 to 32)" jsonschema:"minimum=1,maximum=32"`
	InitialPoints   int           `json:"initial_points" doc:"points of the initial Latin hypercube design before the model proposes them (0: 6)" jsonschema:"minimum=0"`
	Bounds          Bounds        `json:"bounds" doc:"the search space"`
	Seed            uint64        `json:"seed" doc:"random seed of the optimizer and of the simulated instrument"`
	FailureRate     float64       `json:"failure_rate" doc:"chance that one attempt of an experiment fails, in [0, 1)" jsonschema:"minimum=0,exclusiveMaximum=1"`
	InstrumentDelay time.Duration `json:"instrument_delay" doc:"about how long the simulated instrument takes per experiment" jsonschema:"minimum=0"`
	DecisionEvery   int           `json:"decision_every" doc:"a decision point after every N iterations (0: none)" jsonschema:"minimum=0"`
	Auto            bool          `json:"auto" doc:"take the default decision at decision points instead of waiting for a scientist"`
	DecisionTimeout time.Duration `json:"decision_timeout" doc:"without auto: how long a decision point waits before it takes the default decision (0: no limit)" jsonschema:"minimum=0"`
}

// DefaultParams are the flow's defaults: 12 iterations of 4 experiments
// on Branin's domain, a decision point every 4 iterations, taken
// automatically.
func DefaultParams() Params {
	return Params{
		Iterations:      12,
		BatchSize:       4,
		Bounds:          BraninBounds,
		Seed:            1,
		FailureRate:     0.1,
		InstrumentDelay: 200 * time.Millisecond,
		DecisionEvery:   4,
		Auto:            true,
	}
}

// Validate reports the first parameter that is out of range, naming it.
func (p Params) Validate() error {
	switch {
	case p.Iterations < 1 || p.Iterations > MaxIterations:
		return fmt.Errorf("iterations is %d: want 1 to %d", p.Iterations, MaxIterations)
	case p.BatchSize < 1 || p.BatchSize > MaxBatchSize:
		return fmt.Errorf("batch_size is %d: want 1 to %d", p.BatchSize, MaxBatchSize)
	case p.InitialPoints < 0 || p.InitialPoints > MaxBatchSize*MaxIterations:
		return fmt.Errorf("initial_points is %d: want 0 to %d", p.InitialPoints, MaxBatchSize*MaxIterations)
	case math.IsNaN(p.FailureRate) || p.FailureRate < 0 || p.FailureRate >= 1:
		return fmt.Errorf("failure_rate is %v: want 0 <= failure_rate < 1", p.FailureRate)
	case p.InstrumentDelay < 0 || p.InstrumentDelay > time.Hour:
		return fmt.Errorf("instrument_delay is %v: want 0 to 1h", p.InstrumentDelay)
	case p.DecisionEvery < 0:
		return fmt.Errorf("decision_every is %d: want 0 (no decisions) or more", p.DecisionEvery)
	case p.DecisionTimeout < 0:
		return fmt.Errorf("decision_timeout is %v: want 0 (no limit) or more", p.DecisionTimeout)
	}
	return p.Bounds.Validate("bounds")
}

// Flow is the "campaign" flow.
var Flow = baton.Flow("campaign", runCampaign,
	baton.Description("Bayesian optimization of the Branin function: batches of simulated experiments, decision points every N iterations"),
	baton.Defaults(DefaultParams()),
)

// Point is a measured point.
type Point struct {
	X1    float64 `json:"x1"`
	X2    float64 `json:"x2"`
	Value float64 `json:"value"`
}

// Iteration summarizes one iteration of the campaign.
type Iteration struct {
	Iteration   int      `json:"iteration"`
	BatchSize   int      `json:"batch_size"`
	Measured    int      `json:"measured"` // experiments of the batch that returned a value
	Failed      int      `json:"failed"`   // experiments that failed after their retries
	Evaluations int      `json:"evaluations"`
	Best        *float64 `json:"best"` // the best value so far (null before any)
}

// DecisionTaken is a decision of the campaign, with when and by whom.
type DecisionTaken struct {
	AfterIteration int      `json:"after_iteration"`
	By             string   `json:"by"` // "auto": the default decision
	Decision       Decision `json:"decision"`
}

// Result is the flow's result.
type Result struct {
	Best        Point           `json:"best"`
	BestAt      int             `json:"best_at"`     // the evaluation (1-based) that measured Best
	Evaluations int             `json:"evaluations"` // experiments that returned a value
	Failed      int             `json:"failed"`      // experiments told as missing
	Iterations  int             `json:"iterations"`  // iterations run
	Stopped     string          `json:"stopped"`     // "iterations" (all run) or "decision"
	Decisions   []DecisionTaken `json:"decisions"`
	History     []Iteration     `json:"history"`
}

// Status is what a decision is taken on: where the campaign stands.
type Status struct {
	Iteration   int     `json:"iteration"`  // iterations done
	Iterations  int     `json:"iterations"` // the most it will run
	Evaluations int     `json:"evaluations"`
	Failed      int     `json:"failed"`
	Best        *Point  `json:"best"`        // null before any value
	Improvement float64 `json:"improvement"` // of the best value since the previous decision point (or the start)
	BatchSize   int     `json:"batch_size"`
	Bounds      Bounds  `json:"bounds"`
}

func runCampaign(ctx baton.Context, p Params) (Result, error) {
	log := baton.Logger(ctx)
	if err := p.Validate(); err != nil {
		return Result{}, baton.Permanent(err)
	}
	opt, err := bo.New(bo.Config{Bounds: p.Bounds.bo(), Seed: p.Seed, InitialPoints: p.InitialPoints})
	if err != nil {
		return Result{}, baton.Permanent(err)
	}
	res := Result{Stopped: "iterations", Decisions: []DecisionTaken{}, History: []Iteration{}}
	c := &settings{opt: opt, batchSize: p.BatchSize, bounds: p.Bounds}
	best := Point{Value: math.Inf(1)}
	bestAtDecision := best.Value

	for it := 1; it <= p.Iterations; it++ {
		// Ask: a recorded step, so a replay reads the batch instead of
		// computing it again.
		batch, err := ask.Run(ctx, AskInput{Iteration: it, State: opt.State(), BatchSize: c.batchSize}, baton.Key(fmt.Sprintf("ask-%d", it)))
		if err != nil {
			return res, err
		}
		if err := opt.Asked(batch.Points); err != nil {
			return res, baton.Permanent(err)
		}

		// Run the batch's experiments in parallel.
		exps := make([]Experiment, len(batch.Points))
		for i, x := range batch.Points {
			exps[i] = Experiment{Iteration: it, Index: i, X1: x[0], X2: x[1], Seed: p.Seed, FailureRate: p.FailureRate, Delay: p.InstrumentDelay}
		}
		outcomes, err := baton.Settle(ctx, experiment.Map(ctx, exps, baton.Key(fmt.Sprintf("experiment-%d", it))), 0)
		if err != nil {
			return res, err
		}

		// Tell, in the batch's order (not the order they finished), so the
		// optimizer's state depends only on the recorded results.
		sum := Iteration{Iteration: it, BatchSize: len(exps)}
		for i, o := range outcomes {
			x := batch.Points[i]
			if o.Err != nil {
				opt.Abandon(x)
				sum.Failed++
				log.Warn("experiment failed for good: told as missing", "iteration", it, "x1", x[0], "x2", x[1], "error", o.Err.Error())
				continue
			}
			if err := opt.Tell(x, o.Value.Value); err != nil {
				return res, baton.Permanent(err)
			}
			sum.Measured++
			res.Evaluations++
			if o.Value.Value < best.Value {
				best = Point{X1: x[0], X2: x[1], Value: o.Value.Value}
				res.BestAt = res.Evaluations
			}
		}
		res.Failed += sum.Failed
		sum.Evaluations = res.Evaluations
		if res.Evaluations > 0 {
			v := best.Value
			sum.Best = &v
		}
		res.History = append(res.History, sum)
		res.Iterations = it
		log.Info("iteration done", "iteration", it, "measured", sum.Measured, "failed", sum.Failed, "best", best.Value, "x1", best.X1, "x2", best.X2)

		if p.DecisionEvery == 0 || it%p.DecisionEvery != 0 || it == p.Iterations {
			continue
		}
		st := Status{
			Iteration: it, Iterations: p.Iterations, Evaluations: res.Evaluations, Failed: res.Failed,
			Improvement: improvement(bestAtDecision, best.Value), BatchSize: c.batchSize, Bounds: c.bounds,
		}
		if res.Evaluations > 0 {
			b := best
			st.Best = &b
		}
		bestAtDecision = best.Value
		d, by, err := decide(ctx, p, st)
		if err != nil {
			return res, err
		}
		res.Decisions = append(res.Decisions, DecisionTaken{AfterIteration: it, By: by, Decision: d})
		log.Info("decision", "after_iteration", it, "by", by, "action", d.Action, "batch_size", d.BatchSize, "reason", d.Reason)
		stop, err := c.apply(d)
		if err != nil {
			return res, baton.Permanent(fmt.Errorf("decision after iteration %d: %w", it, err))
		}
		if stop {
			res.Stopped = "decision"
			break
		}
	}
	if res.Evaluations == 0 {
		return res, baton.Permanent(fmt.Errorf("no experiment of the %d iterations returned a value", res.Iterations))
	}
	res.Best = best
	log.Info("campaign done", "evaluations", res.Evaluations, "failed", res.Failed, "best", best.Value, "x1", best.X1, "x2", best.X2)
	return res, nil
}

// settings are what decisions change: the batch size and the optimizer's
// bounds.
type settings struct {
	opt       *bo.Optimizer
	batchSize int
	bounds    Bounds
}

// apply applies a decision to the settings of the next iterations and
// reports whether it stops the campaign. A decision that does not validate
// changes nothing.
func (c *settings) apply(d Decision) (stop bool, err error) {
	if err := d.Validate(); err != nil {
		return false, err
	}
	if d.Action == ActionStop {
		return true, nil
	}
	if d.Bounds != nil {
		if err := c.opt.SetBounds(d.Bounds.bo()); err != nil {
			return false, err
		}
		c.bounds = *d.Bounds
	}
	if d.BatchSize > 0 {
		c.batchSize = d.BatchSize
	}
	return false, nil
}

// improvement is how much the best value fell from before to now (0 when
// there was no value before).
func improvement(before, now float64) float64 {
	if math.IsInf(before, 1) || math.IsInf(now, 1) {
		return 0
	}
	return before - now
}

// ------------------------------------------------------------------- ask

// AskInput is the optimizer's state and the size of the batch to ask.
type AskInput struct {
	Iteration int      `json:"iteration"`
	State     bo.State `json:"state"`
	BatchSize int      `json:"batch_size"`
}

// Batch is the points the optimizer proposes, one experiment each.
type Batch struct {
	Points [][]float64 `json:"points"`
}

// ask restores the optimizer from its state and asks it for a batch. It
// is a task, so that the batch is recorded: the flow tells results about
// the points it recorded, and a replay never depends on recomputing the
// model (fitting the GP again on another machine could round differently
// and propose other points).
var ask = baton.Task("ask", func(ctx context.Context, in AskInput) (Batch, error) {
	opt, err := bo.Restore(in.State)
	if err != nil {
		return Batch{}, baton.Permanent(err)
	}
	start := time.Now()
	pts, err := opt.Ask(in.BatchSize)
	if err != nil {
		return Batch{}, baton.Permanent(err)
	}
	baton.Logger(ctx).Info("asked", "iteration", in.Iteration, "points", len(pts), "observations", len(in.State.Observations), "took", time.Since(start).Round(time.Millisecond))
	return Batch{Points: pts}, nil
})

// ------------------------------------------------------------ experiment

// Experiment is one measurement to make: a point, and how the simulated
// instrument behaves.
type Experiment struct {
	Iteration   int           `json:"iteration"`
	Index       int           `json:"index"`
	X1          float64       `json:"x1"`
	X2          float64       `json:"x2"`
	Seed        uint64        `json:"seed"`
	FailureRate float64       `json:"failure_rate"`
	Delay       time.Duration `json:"delay"`
}

// Measurement is an experiment's result.
type Measurement struct {
	Value   float64 `json:"value"`
	Attempt int     `json:"attempt"` // the attempt that succeeded
}

// ErrInstrument is the simulated instrument's transient failure.
var ErrInstrument = errors.New("instrument fault (simulated)")

// Retry policy of experiments: 3 retries, after 100 ms, 200 ms and 400 ms
// (±10%). A real instrument would want longer delays.
const (
	experimentRetries    = 3
	experimentRetryDelay = 100 * time.Millisecond
)

// experiment measures Branin at the point on the simulated instrument.
var experiment = baton.Task("experiment", func(ctx context.Context, e Experiment) (Measurement, error) {
	attempt := 1
	if info, ok := baton.TaskRunFrom(ctx); ok {
		attempt = info.Attempt
	}
	v, err := simulate(ctx, e, attempt)
	if err != nil {
		return Measurement{}, err
	}
	baton.Logger(ctx).Info("measured", "iteration", e.Iteration, "index", e.Index, "x1", e.X1, "x2", e.X2, "value", v, "attempt", attempt)
	return Measurement{Value: v, Attempt: attempt}, nil
}, baton.Retries(experimentRetries), baton.RetryDelay(experimentRetryDelay), baton.Backoff(2, 2*time.Second))

// simulate is the simulated instrument: it takes between half and one and
// a half times e.Delay, then fails with probability e.FailureRate or
// returns Branin's value at the point. Its randomness comes from the seed,
// the experiment and the attempt, so a campaign behaves the same every time
// it runs with the same parameters.
func simulate(ctx context.Context, e Experiment, attempt int) (float64, error) {
	rng := rand.New(rand.NewPCG(e.Seed^0x9e3779b97f4a7c15, uint64(e.Iteration)<<32|uint64(e.Index)<<16|uint64(attempt)))
	d := time.Duration(float64(e.Delay) * (0.5 + rng.Float64()))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-t.C:
	}
	if rng.Float64() < e.FailureRate {
		return 0, fmt.Errorf("experiment %d.%d attempt %d: %w", e.Iteration, e.Index, attempt, ErrInstrument)
	}
	return bo.Branin([]float64{e.X1, e.X2}), nil
}
