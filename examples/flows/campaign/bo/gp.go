package bo

import (
	"errors"
	"fmt"
	"math"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// Hyper are a Gaussian process's hyperparameters, in the units of the model's
// inputs (the unit cube of the search space) and of its standardized outputs.
type Hyper struct {
	// Lengthscales are the Matérn 5/2 kernel's length scales, one per input
	// dimension (automatic relevance determination).
	Lengthscales []float64 `json:"lengthscales"`
	// Signal is the kernel's variance. Fit profiles it out: it is the
	// maximum-likelihood value for the other hyperparameters.
	Signal float64 `json:"signal"`
	// Noise is the observation noise variance relative to Signal: the
	// kernel matrix is Signal·(R + Noise·I), with R the correlations.
	Noise float64 `json:"noise"`
}

// The ranges Fit searches, in the unit cube and relative to the signal.
const (
	minLengthscale = 0.02
	maxLengthscale = 5.0
	minNoise       = 1e-6
	maxNoise       = 0.1
)

// GP is a Gaussian-process regression model: a zero mean on standardized
// outputs and a Matérn 5/2 kernel with one length scale per dimension plus a
// noise term. It is immutable once built; Fit and Condition build one.
type GP struct {
	x     [][]float64 // inputs
	z     []float64   // outputs, standardized
	mean  float64     // of the outputs, for the standardization
	scale float64     // their standard deviation (1 when they are constant)
	hyper Hyper

	chol  mat.Cholesky  // of R + Noise·I
	l     *mat.TriDense // its lower triangular factor
	alpha *mat.VecDense // (R + Noise·I)⁻¹ z
	lml   float64       // log marginal likelihood of z
}

// matern52 is the Matérn 5/2 correlation of a and b for the length scales ls.
func matern52(a, b, ls []float64) float64 {
	var r2 float64
	for i := range a {
		d := (a[i] - b[i]) / ls[i]
		r2 += d * d
	}
	r := math.Sqrt(5 * r2)
	return (1 + r + r*r/3) * math.Exp(-r)
}

// Fit fits a GP to the observations (x[i], y[i]): the outputs are
// standardized, and the length scales and the noise maximize the log
// marginal likelihood (with the signal variance profiled out), first over a
// small grid, then by Nelder-Mead from the best grid point. It needs at least
// two observations, all of one dimension.
func Fit(x [][]float64, y []float64) (*GP, error) {
	if len(x) != len(y) {
		return nil, fmt.Errorf("bo: %d inputs but %d outputs", len(x), len(y))
	}
	if len(x) < 2 {
		return nil, errors.New("bo: a GP needs at least two observations")
	}
	dim := len(x[0])
	for _, xi := range x {
		if len(xi) != dim {
			return nil, errors.New("bo: inputs of different dimensions")
		}
	}
	mean, scale := meanStd(y)
	z := make([]float64, len(y))
	for i, v := range y {
		z[i] = (v - mean) / scale
	}

	// Parameters: the logs of the length scales, then the log of the noise.
	nll := func(p []float64) float64 {
		g, err := build(x, z, hyperOf(p), mean, scale)
		if err != nil {
			return math.Inf(1)
		}
		return -g.lml
	}
	best, bestF := []float64(nil), math.Inf(1)
	for _, l := range []float64{0.05, 0.15, 0.4, 1.2} {
		for _, n := range []float64{1e-6, 1e-3} {
			p := make([]float64, dim+1)
			for i := range dim {
				p[i] = math.Log(l)
			}
			p[dim] = math.Log(n)
			if f := nll(p); f < bestF {
				best, bestF = p, f
			}
		}
	}
	if best == nil {
		return nil, errors.New("bo: no hyperparameters give a positive-definite kernel matrix")
	}
	res, err := optimize.Minimize(optimize.Problem{Func: nll}, best, &optimize.Settings{
		FuncEvaluations: 60 * (dim + 1),
		Converger:       &optimize.FunctionConverge{Absolute: 1e-6, Iterations: 20},
	}, &optimize.NelderMead{SimplexSize: 0.5})
	if err == nil && res.F < bestF {
		best = res.X
	}
	return build(x, z, hyperOf(best), mean, scale)
}

// hyperOf maps Fit's unconstrained parameters into the searched ranges.
func hyperOf(p []float64) Hyper {
	dim := len(p) - 1
	h := Hyper{Lengthscales: make([]float64, dim), Signal: 1}
	for i := range dim {
		h.Lengthscales[i] = math.Exp(clamp(p[i], math.Log(minLengthscale), math.Log(maxLengthscale)))
	}
	h.Noise = math.Exp(clamp(p[dim], math.Log(minNoise), math.Log(maxNoise)))
	return h
}

// NewGP builds a GP with fixed hyperparameters (Signal is ignored: it is
// profiled out) on outputs standardized like Fit's.
func NewGP(x [][]float64, y []float64, h Hyper) (*GP, error) {
	if len(x) != len(y) || len(x) == 0 {
		return nil, fmt.Errorf("bo: %d inputs and %d outputs", len(x), len(y))
	}
	if len(h.Lengthscales) != len(x[0]) {
		return nil, fmt.Errorf("bo: %d length scales for inputs of dimension %d", len(h.Lengthscales), len(x[0]))
	}
	mean, scale := meanStd(y)
	z := make([]float64, len(y))
	for i, v := range y {
		z[i] = (v - mean) / scale
	}
	return build(x, z, h, mean, scale)
}

// build factorizes R + Noise·I for standardized outputs z and computes what
// predictions need, and the profiled log marginal likelihood.
func build(x [][]float64, z []float64, h Hyper, mean, scale float64) (*GP, error) {
	n := len(x)
	k := mat.NewSymDense(n, nil)
	for i := range n {
		k.SetSym(i, i, 1+h.Noise)
		for j := i + 1; j < n; j++ {
			k.SetSym(i, j, matern52(x[i], x[j], h.Lengthscales))
		}
	}
	g := &GP{x: x, z: z, mean: mean, scale: scale, hyper: h}
	if ok := g.chol.Factorize(k); !ok {
		return nil, errors.New("bo: kernel matrix is not positive definite")
	}
	g.l = mat.NewTriDense(n, mat.Lower, nil)
	g.chol.LTo(g.l)
	g.alpha = mat.NewVecDense(n, nil)
	if err := g.chol.SolveVecTo(g.alpha, mat.NewVecDense(n, z)); err != nil {
		// A near-singular matrix: Cholesky succeeded but the solve warns
		// about its condition. The result is still usable with the noise
		// floor; refuse only what is not finite.
		var cond mat.Condition
		if !errors.As(err, &cond) {
			return nil, fmt.Errorf("bo: %w", err)
		}
	}
	quad := mat.Dot(mat.NewVecDense(n, z), g.alpha)
	if quad <= 0 || math.IsNaN(quad) || math.IsInf(quad, 0) {
		quad = 1e-12
	}
	// Profiled: the maximum-likelihood signal variance is quad/n.
	g.hyper.Signal = quad / float64(n)
	g.lml = -0.5*float64(n)*math.Log(g.hyper.Signal) - 0.5*g.chol.LogDet() - 0.5*float64(n)*(1+math.Log(2*math.Pi))
	if math.IsNaN(g.lml) {
		return nil, errors.New("bo: log marginal likelihood is not a number")
	}
	return g, nil
}

// Hyper returns the GP's hyperparameters.
func (g *GP) Hyper() Hyper { return g.hyper }

// LogMarginalLikelihood returns the log marginal likelihood of the
// standardized outputs under the GP's hyperparameters.
func (g *GP) LogMarginalLikelihood() float64 { return g.lml }

// Len returns the number of observations the GP is conditioned on.
func (g *GP) Len() int { return len(g.x) }

// Predict returns the posterior mean and standard deviation of the latent
// function at x, in the units of the outputs.
func (g *GP) Predict(x []float64) (mean, sd float64) {
	m, s := g.predictStd(x)
	return g.mean + g.scale*m, g.scale * s
}

// predictStd is Predict in standardized units.
func (g *GP) predictStd(x []float64) (mean, sd float64) {
	ks := mat.NewVecDense(len(g.x), nil)
	for i, xi := range g.x {
		ks.SetVec(i, matern52(x, xi, g.hyper.Lengthscales))
	}
	mean = mat.Dot(ks, g.alpha)
	// kᵀ(LLᵀ)⁻¹k = vᵀv with Lv = k: one triangular solve, in place.
	v := ks.RawVector()
	blas64.Trsv(blas.NoTrans, g.l.RawTriangular(), v)
	variance := g.hyper.Signal * (1 - blas64.Dot(v, v))
	return mean, math.Sqrt(max(variance, 0))
}

// Condition returns a GP with the same hyperparameters and standardization
// conditioned also on (x, y): how a batch is built, by believing the model's
// prediction at each point chosen before the next one.
func (g *GP) Condition(x []float64, y float64) (*GP, error) {
	xs := append(append([][]float64(nil), g.x...), x)
	zs := append(append([]float64(nil), g.z...), (y-g.mean)/g.scale)
	return build(xs, zs, g.hyper, g.mean, g.scale)
}

func meanStd(y []float64) (mean, std float64) {
	for _, v := range y {
		mean += v
	}
	mean /= float64(len(y))
	for _, v := range y {
		std += (v - mean) * (v - mean)
	}
	std = math.Sqrt(std / float64(len(y)))
	if std == 0 || math.IsNaN(std) {
		std = 1
	}
	return mean, std
}

func clamp(v, lo, hi float64) float64 { return max(lo, min(hi, v)) }
