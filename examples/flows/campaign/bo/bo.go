// Package bo is Bayesian optimization in ask/tell form: a Gaussian-process
// surrogate (Matérn 5/2 kernel, hyperparameters fitted by maximizing the
// log marginal likelihood, linear algebra by gonum) and the
// expected-improvement acquisition, maximized over the search bounds.
//
// The caller drives the loop. Ask proposes a batch of points to evaluate;
// Tell reports a point's measured value, Abandon a point that could not be
// measured. The optimizer minimizes. It is deterministic: the same
// configuration, seed and sequence of calls give the same points, and its
// whole state is a value (State) that Restore turns back into an
// optimizer, so a program may keep it in a database, or rebuild it from the
// record of what it asked and was told, as the campaign flow does.
//
//	opt, _ := bo.New(bo.Config{Bounds: bo.BraninBounds, Seed: 1})
//	for range 10 {
//		batch, _ := opt.Ask(4)
//		for _, x := range batch {
//			opt.Tell(x, bo.Branin(x))
//		}
//	}
//	best, _ := opt.Best()
//
// A batch of q points is built by the kriging believer heuristic: after
// choosing a point, the model is conditioned on its own prediction there
// and the next point maximizes the expected improvement of that model.
// Points asked and neither told nor abandoned yet (pending) are believed the
// same way, so an asynchronous caller can ask again while experiments run.
// The first InitialPoints points come from a Latin hypercube design.
//
// The GP is exact: each likelihood evaluation factorizes an n×n matrix for
// n observations (O(n³)), and an ask makes about 200 of them plus the
// acquisition's search. That is milliseconds for the tens to hundreds of
// observations of a lab campaign, and grows too slow beyond a few
// thousand.
package bo

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"gonum.org/v1/gonum/optimize"
	"gonum.org/v1/gonum/stat/distuv"
)

// Bound is the closed interval [Lo, Hi] of one dimension of the search
// space.
type Bound struct {
	Lo float64 `json:"lo"`
	Hi float64 `json:"hi"`
}

// Config configures an Optimizer. Only Bounds is required.
type Config struct {
	// Bounds is the search space, one interval per dimension.
	Bounds []Bound `json:"bounds"`
	// Seed makes the optimizer's random choices (the initial design, the
	// candidates of the acquisition's search) reproducible.
	Seed uint64 `json:"seed"`
	// InitialPoints is how many points come from the initial Latin
	// hypercube design before the model proposes them (default 2·dim+2).
	InitialPoints int `json:"initial_points,omitempty"`
	// Candidates is how many random points the acquisition's search scores
	// before refining the best ones locally (default 2000).
	Candidates int `json:"candidates,omitempty"`
	// Xi is the expected improvement's exploration margin, in the units of
	// the values: the improvement counted is the one below best − Xi
	// (default 0). Keep it well below the precision wanted: a margin
	// larger than the gap left to the optimum stops the search from
	// refining its best point.
	Xi float64 `json:"xi,omitempty"`
}

// Observation is a told point and its value.
type Observation struct {
	X []float64 `json:"x"`
	Y float64   `json:"y"`
}

// State is an optimizer's whole state, encodable as JSON.
type State struct {
	Config       Config        `json:"config"`
	Observations []Observation `json:"observations"`
	// Pending are the points asked and neither told nor abandoned.
	Pending [][]float64 `json:"pending,omitempty"`
	// Asks counts the calls of Ask (and Asked): each one draws from its own
	// random stream.
	Asks int `json:"asks"`
}

// Optimizer is a Bayesian optimizer. It is not safe for concurrent use.
type Optimizer struct {
	s State
}

// ErrNoObservations is returned by Best before anything was told.
var ErrNoObservations = errors.New("bo: no observations yet")

// New returns an optimizer for cfg.
func New(cfg Config) (*Optimizer, error) {
	return Restore(State{Config: cfg})
}

// Restore returns an optimizer in state s (as returned by State).
func Restore(s State) (*Optimizer, error) {
	if err := checkBounds(s.Config.Bounds); err != nil {
		return nil, err
	}
	c := &s.Config
	switch {
	case c.InitialPoints < 0:
		return nil, errors.New("bo: InitialPoints must not be negative")
	case c.Candidates < 0:
		return nil, errors.New("bo: Candidates must not be negative")
	case c.Xi < 0 || math.IsNaN(c.Xi) || math.IsInf(c.Xi, 0):
		return nil, errors.New("bo: Xi must be a finite number >= 0")
	case s.Asks < 0:
		return nil, errors.New("bo: Asks must not be negative")
	}
	dim := len(c.Bounds)
	for _, o := range s.Observations {
		if err := checkPoint(o.X, dim); err != nil {
			return nil, err
		}
		if math.IsNaN(o.Y) || math.IsInf(o.Y, 0) {
			return nil, fmt.Errorf("bo: observation at %v has value %v", o.X, o.Y)
		}
	}
	for _, x := range s.Pending {
		if err := checkPoint(x, dim); err != nil {
			return nil, err
		}
	}
	return &Optimizer{s: clone(s)}, nil
}

func checkBounds(bs []Bound) error {
	if len(bs) == 0 {
		return errors.New("bo: no bounds: the search space needs at least one dimension")
	}
	for i, b := range bs {
		if math.IsNaN(b.Lo) || math.IsNaN(b.Hi) || math.IsInf(b.Lo, 0) || math.IsInf(b.Hi, 0) || b.Lo >= b.Hi {
			return fmt.Errorf("bo: bounds of dimension %d are [%v, %v]: want finite lo < hi", i, b.Lo, b.Hi)
		}
	}
	return nil
}

func checkPoint(x []float64, dim int) error {
	if len(x) != dim {
		return fmt.Errorf("bo: point %v has %d coordinates, want %d", x, len(x), dim)
	}
	for _, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("bo: point %v is not finite", x)
		}
	}
	return nil
}

// State returns a copy of the optimizer's state.
func (o *Optimizer) State() State { return clone(o.s) }

func clone(s State) State {
	s.Config.Bounds = slices.Clone(s.Config.Bounds)
	obs := make([]Observation, len(s.Observations))
	for i, ob := range s.Observations {
		obs[i] = Observation{X: slices.Clone(ob.X), Y: ob.Y}
	}
	s.Observations = obs
	pend := make([][]float64, len(s.Pending))
	for i, x := range s.Pending {
		pend[i] = slices.Clone(x)
	}
	s.Pending = pend
	return s
}

// Bounds returns the current search bounds.
func (o *Optimizer) Bounds() []Bound { return slices.Clone(o.s.Config.Bounds) }

// SetBounds changes the search space for the next asks. It must have the
// same dimension; observations outside it still inform the model.
func (o *Optimizer) SetBounds(bs []Bound) error {
	if err := checkBounds(bs); err != nil {
		return err
	}
	if len(bs) != len(o.s.Config.Bounds) {
		return fmt.Errorf("bo: %d bounds for a search space of dimension %d", len(bs), len(o.s.Config.Bounds))
	}
	o.s.Config.Bounds = slices.Clone(bs)
	return nil
}

// Observations returns the told observations, in the order told.
func (o *Optimizer) Observations() []Observation { return clone(o.s).Observations }

// Pending returns the points asked and neither told nor abandoned.
func (o *Optimizer) Pending() [][]float64 { return clone(o.s).Pending }

// Tell reports the value y measured at x. x need not have been asked.
func (o *Optimizer) Tell(x []float64, y float64) error {
	if err := checkPoint(x, len(o.s.Config.Bounds)); err != nil {
		return err
	}
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return fmt.Errorf("bo: value %v at %v is not finite: Abandon a point that could not be measured", y, x)
	}
	o.dropPending(x)
	o.s.Observations = append(o.s.Observations, Observation{X: slices.Clone(x), Y: y})
	return nil
}

// Abandon reports that the asked point x will not be measured (its
// experiment failed): the optimizer stops believing a value there, and may
// propose it, or a point near it, again.
func (o *Optimizer) Abandon(x []float64) { o.dropPending(x) }

func (o *Optimizer) dropPending(x []float64) {
	if i := slices.IndexFunc(o.s.Pending, func(p []float64) bool { return slices.Equal(p, x) }); i >= 0 {
		o.s.Pending = slices.Delete(o.s.Pending, i, i+1)
	}
}

// Best returns the observation with the lowest value (the first told among
// equals).
func (o *Optimizer) Best() (Observation, error) {
	if len(o.s.Observations) == 0 {
		return Observation{}, ErrNoObservations
	}
	b := o.s.Observations[0]
	for _, ob := range o.s.Observations[1:] {
		if ob.Y < b.Y {
			b = ob
		}
	}
	return Observation{X: slices.Clone(b.X), Y: b.Y}, nil
}

// Asked records that points were asked elsewhere: they become pending and
// the ask counter advances, exactly as after the Ask that returned them. A
// program that runs Ask on a restored copy of the state (in a recorded
// task, say) calls Asked with its result to bring its own optimizer to the
// same state without computing the batch again.
func (o *Optimizer) Asked(points [][]float64) error {
	for _, x := range points {
		if err := checkPoint(x, len(o.s.Config.Bounds)); err != nil {
			return err
		}
	}
	for _, x := range points {
		o.s.Pending = append(o.s.Pending, slices.Clone(x))
	}
	o.s.Asks++
	return nil
}

// Ask proposes q points to evaluate next, inside the current bounds, and
// marks them pending.
func (o *Optimizer) Ask(q int) ([][]float64, error) {
	if q < 1 {
		return nil, fmt.Errorf("bo: asked for %d points, want at least 1", q)
	}
	points, err := o.propose(q)
	if err != nil {
		return nil, err
	}
	if err := o.Asked(points); err != nil {
		return nil, err
	}
	return clone(State{Pending: points}).Pending, nil
}

// initialPoints is the size of the initial design.
func (o *Optimizer) initialPoints() int {
	if n := o.s.Config.InitialPoints; n > 0 {
		return n
	}
	return 2*len(o.s.Config.Bounds) + 2
}

// propose computes the batch Ask returns, without changing the state.
func (o *Optimizer) propose(q int) ([][]float64, error) {
	cfg := o.s.Config
	dim := len(cfg.Bounds)
	// One random stream per ask, from the seed and the ask's number.
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(o.s.Asks)+1))

	// The initial design first: Latin hypercube points for what remains of
	// it. Told and pending points count as used; an abandoned one does
	// not, so a failed experiment of the design is replaced.
	used := len(o.s.Observations) + len(o.s.Pending)
	var out [][]float64
	if rest := o.initialPoints() - used; rest > 0 {
		for _, u := range latinHypercube(rng, min(rest, q), dim) {
			out = append(out, o.fromUnit(u))
		}
	}
	if len(out) == q {
		return out, nil
	}
	if len(o.s.Observations) < 2 {
		// Too few values for a model: keep sampling the space.
		for _, u := range latinHypercube(rng, q-len(out), dim) {
			out = append(out, o.fromUnit(u))
		}
		return out, nil
	}

	// The model, in the unit cube of the current bounds, fitted to the
	// observations only: believed values must not move hyperparameters.
	xs := make([][]float64, len(o.s.Observations))
	ys := make([]float64, len(o.s.Observations))
	for i, ob := range o.s.Observations {
		xs[i], ys[i] = o.toUnit(ob.X), ob.Y
	}
	gp, err := Fit(xs, ys)
	if err != nil {
		return nil, err
	}
	best := slices.Min(ys)
	believe := func(u []float64) error {
		m, _ := gp.Predict(u)
		g, err := gp.Condition(u, m)
		if err != nil {
			return err
		}
		gp = g
		return nil
	}
	for _, x := range o.s.Pending {
		if err := believe(o.toUnit(x)); err != nil {
			return nil, err
		}
	}
	for _, x := range out { // initial-design points of this batch
		if err := believe(o.toUnit(x)); err != nil {
			return nil, err
		}
	}
	for len(out) < q {
		u := o.maximizeEI(gp, best, rng)
		out = append(out, o.fromUnit(u))
		if len(out) < q {
			if err := believe(u); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// toUnit maps x into the unit cube of the current bounds (points outside
// the bounds map outside the cube).
func (o *Optimizer) toUnit(x []float64) []float64 {
	u := make([]float64, len(x))
	for i, b := range o.s.Config.Bounds {
		u[i] = (x[i] - b.Lo) / (b.Hi - b.Lo)
	}
	return u
}

// fromUnit maps u from the unit cube into the current bounds.
func (o *Optimizer) fromUnit(u []float64) []float64 {
	x := make([]float64, len(u))
	for i, b := range o.s.Config.Bounds {
		x[i] = clamp(b.Lo+u[i]*(b.Hi-b.Lo), b.Lo, b.Hi)
	}
	return x
}

// latinHypercube draws n points in the unit cube, one in each of n equal
// slices of every dimension.
func latinHypercube(rng *rand.Rand, n, dim int) [][]float64 {
	pts := make([][]float64, n)
	for i := range pts {
		pts[i] = make([]float64, dim)
	}
	for d := range dim {
		perm := rng.Perm(n)
		for i := range n {
			pts[i][d] = (float64(perm[i]) + rng.Float64()) / float64(n)
		}
	}
	return pts
}

// ExpectedImprovement is the expected amount by which the value at u falls
// below best − xi under the model (0 when it surely does not), where u is in
// the model's inputs and best and xi are in its outputs' units.
func ExpectedImprovement(gp *GP, u []float64, best, xi float64) float64 {
	ei, _ := expectedImprovement(gp, u, best, xi)
	return ei
}

// expectedImprovement returns the expected improvement at u and the
// model's standard deviation there.
func expectedImprovement(gp *GP, u []float64, best, xi float64) (ei, sd float64) {
	m, sd := gp.Predict(u)
	d := best - xi - m
	if sd <= 1e-12*gp.scale {
		return max(d, 0), sd
	}
	z := d / sd
	return d*distuv.UnitNormal.CDF(z) + sd*distuv.UnitNormal.Prob(z), sd
}

// maximizeEI returns the point of the unit cube with the highest expected
// improvement it finds: it scores random candidates (and points near the
// best observations), then refines the five best by Nelder-Mead.
func (o *Optimizer) maximizeEI(gp *GP, best float64, rng *rand.Rand) []float64 {
	dim := len(o.s.Config.Bounds)
	xi := o.s.Config.Xi
	n := o.s.Config.Candidates
	if n == 0 {
		n = 2000
	}
	ei := func(u []float64) float64 { e, _ := expectedImprovement(gp, u, best, xi); return e }

	type cand struct {
		u  []float64
		ei float64
		sd float64
	}
	cands := make([]cand, 0, n+50)
	add := func(u []float64) {
		e, sd := expectedImprovement(gp, u, best, xi)
		cands = append(cands, cand{u: u, ei: e, sd: sd})
	}
	for range n {
		u := make([]float64, dim)
		for d := range u {
			u[d] = rng.Float64()
		}
		add(u)
	}
	// Near the best few observations, where improvement usually is.
	obs := slices.Clone(o.s.Observations)
	slices.SortStableFunc(obs, func(a, b Observation) int { return cmp.Compare(a.Y, b.Y) })
	for _, ob := range obs[:min(5, len(obs))] {
		c := o.toUnit(ob.X)
		for range 10 {
			u := make([]float64, dim)
			for d := range u {
				u[d] = clamp(c[d]+0.05*rng.NormFloat64(), 0, 1)
			}
			add(u)
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(b.ei, a.ei) })
	if cands[0].ei <= 0 {
		// Nothing is expected to improve: explore where the model knows
		// least.
		return slices.MaxFunc(cands, func(a, b cand) int { return cmp.Compare(a.sd, b.sd) }).u
	}

	bestU, bestEI := cands[0].u, cands[0].ei
	neg := func(u []float64) float64 {
		c := make([]float64, dim)
		for d := range u {
			c[d] = clamp(u[d], 0, 1)
		}
		return -ei(c)
	}
	for _, c := range cands[:min(5, len(cands))] {
		res, err := optimize.Minimize(optimize.Problem{Func: neg}, c.u, &optimize.Settings{
			FuncEvaluations: 100 * dim,
			Converger:       &optimize.FunctionConverge{Relative: 1e-6, Iterations: 15},
		}, &optimize.NelderMead{SimplexSize: 0.02})
		if err != nil || res == nil {
			continue
		}
		if -res.F > bestEI {
			u := make([]float64, dim)
			for d := range u {
				u[d] = clamp(res.X[d], 0, 1)
			}
			bestU, bestEI = u, -res.F
		}
	}
	return bestU
}
