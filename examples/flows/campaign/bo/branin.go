package bo

import "math"

// BraninMin is the global minimum of Branin, reached at (−π, 12.275),
// (π, 2.275) and (9.42478, 2.475).
const BraninMin = 0.397887

// BraninBounds is Branin's usual domain: x1 in [−5, 10], x2 in [0, 15].
var BraninBounds = []Bound{{Lo: -5, Hi: 10}, {Lo: 0, Hi: 15}}

// Branin is the Branin-Hoo function of two variables, a standard test of
// global optimizers: three global minima of BraninMin in BraninBounds.
func Branin(x []float64) float64 {
	const (
		a = 1
		b = 5.1 / (4 * math.Pi * math.Pi)
		c = 5 / math.Pi
		r = 6
		s = 10
		t = 1 / (8 * math.Pi)
	)
	x1, x2 := x[0], x[1]
	q := x2 - b*x1*x1 + c*x1 - r
	return a*q*q + s*(1-t)*math.Cos(x1) + s
}
