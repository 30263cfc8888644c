package knn

import (
	"context"
	"io"
	"math"
	"path/filepath"
	"testing"

	"github.com/batonhq/baton"
)

func TestKNN(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rt, err := baton.Open(ctx, baton.Config{DB: filepath.Join(t.TempDir(), "baton.db"), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()

	// Three well-separated blobs: centres 4 from the origin (about 7 apart),
	// spread 0.8.
	p := Params{Points: 150, Classes: 3, Spread: 0.8, TestFraction: 0.3, Seed: 3}
	res, info, err := Flow.Execute(ctx, rt, p)
	if err != nil {
		t.Fatal(err)
	}
	if info.State != "COMPLETED" {
		t.Fatalf("run %s is %s, want COMPLETED", info.ID, info.State)
	}

	// The k values were chosen from the data: every odd k up to √n.
	if len(res.Scores) == 0 {
		t.Fatal("no k evaluated")
	}
	for i, s := range res.Scores {
		if s.K != 2*i+1 || s.K*s.K > res.Train {
			t.Errorf("score %d is for k=%d; want k=%d <= √%d", i, s.K, 2*i+1, res.Train)
		}
	}
	if last := res.Scores[len(res.Scores)-1].K; (last+2)*(last+2) <= res.Train {
		t.Errorf("stopped at k=%d, but √%d allows more", last, res.Train)
	}

	if res.BestAccuracy <= 0.8 {
		t.Errorf("best k=%d has accuracy %.3f, want > 0.8 on well-separated blobs", res.BestK, res.BestAccuracy)
	}
	for _, s := range res.Scores {
		if s.Accuracy > res.BestAccuracy || (s.Accuracy == res.BestAccuracy && s.K < res.BestK) {
			t.Errorf("k=%d (accuracy %.3f) beats the reported best k=%d (%.3f)", s.K, s.Accuracy, res.BestK, res.BestAccuracy)
		}
		if want := float64(s.Correct) / float64(res.Test); math.Abs(s.Accuracy-want) > 1e-4 {
			t.Errorf("k=%d: accuracy %.4f, want %d/%d", s.K, s.Accuracy, s.Correct, res.Test)
		}
	}
}

// TestClassify checks the classifier itself on tiny training sets.
func TestClassify(t *testing.T) {
	t.Parallel()
	blobs := []Point{{0, 0, 0}, {0, 1, 0}, {1, 0, 0}, {10, 10, 1}, {10, 11, 1}}
	// Along the x axis, from q=(0.2, 0): class 0, then 1, 1, then 0.
	line := []Point{{0, 0, 0}, {1.5, 0, 1}, {-1.5, 0, 1}, {3, 0, 0}}
	for _, tt := range []struct {
		train []Point
		q     Point
		k     int
		want  int
	}{
		{blobs, Point{X: 0.2, Y: 0.2}, 1, 0},
		{blobs, Point{X: 9, Y: 9}, 1, 1},
		{blobs, Point{X: 9, Y: 9}, 3, 1}, // two of the three nearest are class 1
		{blobs, Point{X: 9, Y: 9}, 5, 0}, // with every point in range, the majority wins
		{line, Point{X: 0.2}, 3, 1},      // 2 votes to 1
		{line, Point{X: 0.2}, 4, 0},      // 2-2 tie: the class of the nearest point
	} {
		if got := classify(tt.train, tt.q, tt.k); got != tt.want {
			t.Errorf("classify(%v, k=%d) = %d, want %d", tt.q, tt.k, got, tt.want)
		}
	}
}
