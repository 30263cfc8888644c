// Package knn is a dynamic workflow run by Baton: it picks the k of a
// k-nearest-neighbours classifier, and only decides which k to try once it
// has seen the data.
//
// Flow's first task generates a labelled dataset (Gaussian blobs in the
// plane, one per class, of random sizes) and splits it into a training set
// and a test set. The flow then looks at the training set's size n and
// evaluates every odd k from 1 to √n, one task per k, in parallel, gathering
// the accuracies as the tasks finish. The number of tasks is not known when
// the run starts: flows are plain Go, so loops and conditions over earlier
// results are fine, as long as the same results lead to the same calls. The
// command in examples/knn runs Flow.
package knn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/batonhq/baton"
)

// Params are the flow's parameters.
type Params struct {
	Points       int     `json:"points" doc:"about how many points to generate"`
	Classes      int     `json:"classes" doc:"number of classes (Gaussian blobs), 2 to 8"`
	Spread       float64 `json:"spread" doc:"standard deviation of each blob; the centres lie 4 from the origin, so larger values overlap more"`
	TestFraction float64 `json:"test_fraction" doc:"share of the points held out to measure accuracy"`
	Seed         uint64  `json:"seed" doc:"random seed: the same seed gives the same dataset"`
}

// Flow is the "knn" flow. It writes no files: its result holds everything.
var Flow = baton.Flow("knn", runKNN,
	baton.Description("Generate labelled blobs, evaluate k-NN for every odd k up to sqrt(n), report the best k"),
	baton.Defaults(Params{Points: 400, Classes: 3, Spread: 1.6, TestFraction: 0.3, Seed: 1}),
)

// Result is the flow's result: the accuracy of every k tried, and the best.
type Result struct {
	Train        int     `json:"train"`
	Test         int     `json:"test"`
	Scores       []Score `json:"scores"` // by k
	BestK        int     `json:"best_k"`
	BestAccuracy float64 `json:"best_accuracy"`
	Centres      []Point `json:"centres"`
}

func runKNN(ctx baton.Context, p Params) (Result, error) {
	log := baton.Logger(ctx)
	if p.Classes < 2 || p.Classes > 8 || p.Points < 2*p.Classes || p.TestFraction <= 0 || p.TestFraction >= 1 {
		return Result{}, baton.Permanent(fmt.Errorf("invalid parameters %+v", p))
	}

	ds, err := generate.Run(ctx, p)
	if err != nil {
		return Result{}, err
	}

	// Decided at run time, from the data: the odd values of k up to √n.
	// (Odd k avoids most ties between two classes.)
	n := len(ds.Train)
	var ks []int
	for k := 1; k*k <= n; k += 2 {
		ks = append(ks, k)
	}
	log.Info("dataset ready", "train", n, "test", len(ds.Test), "k_values", ks)

	// Fan out: one evaluation task per k.
	jobs := make([]EvalInput, len(ks))
	for i, k := range ks {
		jobs[i] = EvalInput{K: k, Train: ds.Train, Test: ds.Test}
	}
	futures := evaluate.Map(ctx, jobs)

	// Fan in, in the order the tasks finish. (baton.WaitAll would give the
	// results in the order of ks instead; either is fine for a flow.)
	scores := make([]Score, len(ks))
	for i, f := range baton.AsCompleted(ctx, futures) {
		s, err := f.Wait(ctx) // already resolved: returns at once
		if err != nil {
			return Result{}, err
		}
		log.Info("evaluated", "k", s.K, "accuracy", s.Accuracy)
		scores[i] = s
	}
	if err := ctx.Err(); err != nil { // AsCompleted stops early when the run is cancelled
		return Result{}, err
	}

	// The best k: highest accuracy, and the smallest k among equals.
	best := slices.MinFunc(scores, func(a, b Score) int {
		return cmp.Or(cmp.Compare(b.Accuracy, a.Accuracy), cmp.Compare(a.K, b.K))
	})
	log.Info("best k", "k", best.K, "accuracy", best.Accuracy)
	return Result{Train: n, Test: len(ds.Test), Scores: scores, BestK: best.K, BestAccuracy: best.Accuracy, Centres: ds.Centres}, nil
}

// --------------------------------------------------------------- generate

// Point is a labelled point in the plane.
type Point struct {
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
	Label int     `json:"label"`
}

// Dataset is a train/test split.
type Dataset struct {
	Centres []Point `json:"centres"`
	Train   []Point `json:"train"`
	Test    []Point `json:"test"`
}

// generate draws one Gaussian blob per class, with centres evenly spaced on
// a circle of radius 4, each of a random size around Points/Classes, then
// shuffles the points and holds out TestFraction of them. Everything comes
// from the seeded source, so the same parameters give the same dataset.
//
// The dataset is small (a few hundred points), so it travels as the task's
// result and as the evaluation tasks' input, and is recorded with them: the
// evaluations' inputs differ only in k, so Baton records their common large
// parts (the points) once, in one blob, and not once per evaluation. For a
// dataset of gigabytes, write it to a file and pass the path around instead.
var generate = baton.Task("generate", func(ctx context.Context, p Params) (Dataset, error) {
	rng := rand.New(rand.NewPCG(p.Seed, 0))
	var ds Dataset
	var all []Point
	for c := range p.Classes {
		angle := 2 * math.Pi * float64(c) / float64(p.Classes)
		centre := Point{X: round3(4 * math.Cos(angle)), Y: round3(4 * math.Sin(angle)), Label: c}
		ds.Centres = append(ds.Centres, centre)
		size := p.Points / p.Classes
		size += rng.IntN(size/2+1) - size/4 // ±25%
		for range max(size, 1) {
			all = append(all, Point{
				X:     round3(centre.X + rng.NormFloat64()*p.Spread),
				Y:     round3(centre.Y + rng.NormFloat64()*p.Spread),
				Label: c,
			})
		}
	}
	rng.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	nTest := max(1, int(float64(len(all))*p.TestFraction))
	ds.Test, ds.Train = all[:nTest], all[nTest:]
	baton.Logger(ctx).Info("generated", "points", len(all), "classes", p.Classes)
	return ds, nil
})

// round3 keeps 3 decimals: plenty for this data, and the recorded JSON
// stays small.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

// --------------------------------------------------------------- evaluate

// EvalInput is one evaluation: a k and the data.
type EvalInput struct {
	K     int     `json:"k"`
	Train []Point `json:"train"`
	Test  []Point `json:"test"`
}

// Score is the accuracy of k-NN with one k on the test set.
type Score struct {
	K        int     `json:"k"`
	Correct  int     `json:"correct"`
	Accuracy float64 `json:"accuracy"`
}

// evaluate classifies every test point with k-NN over the training set and
// counts the right answers.
var evaluate = baton.Task("evaluate", func(ctx context.Context, in EvalInput) (Score, error) {
	if in.K < 1 || in.K > len(in.Train) || len(in.Test) == 0 {
		return Score{}, baton.Permanent(errors.New("evaluate: need 1 <= k <= len(train) and a test set"))
	}
	s := Score{K: in.K}
	for _, q := range in.Test {
		if err := ctx.Err(); err != nil { // a long task should notice cancellation
			return Score{}, err
		}
		if classify(in.Train, q, in.K) == q.Label {
			s.Correct++
		}
	}
	s.Accuracy = math.Round(float64(s.Correct)/float64(len(in.Test))*10000) / 10000
	return s, nil
})

// classify returns the majority label among the k training points nearest
// to q. A tie goes to the tied label whose nearest point is closest.
func classify(train []Point, q Point, k int) int {
	type neighbour struct {
		dist  float64
		label int
	}
	ns := make([]neighbour, len(train))
	for i, p := range train {
		ns[i] = neighbour{dist: math.Hypot(p.X-q.X, p.Y-q.Y), label: p.Label}
	}
	slices.SortFunc(ns, func(a, b neighbour) int { return cmp.Compare(a.dist, b.dist) })

	votes := map[int]int{}
	var labels []int // in the order of their nearest point
	for _, n := range ns[:k] {
		if votes[n.label] == 0 {
			labels = append(labels, n.label)
		}
		votes[n.label]++
	}
	best := labels[0]
	for _, l := range labels[1:] {
		if votes[l] > votes[best] { // strictly more: ties stay with the nearer label
			best = l
		}
	}
	return best
}
