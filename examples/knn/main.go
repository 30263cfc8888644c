// Command knn is a dynamic workflow: it picks the k of a k-nearest-neighbours
// classifier, and only decides which k to try once it has seen the data.
//
// A first task generates a labelled dataset (Gaussian blobs in the plane,
// one per class, of random sizes) and splits it into a training set and a
// test set. The flow then looks at the training set's size n and evaluates
// every odd k from 1 to √n, one task per k, in parallel, gathering the
// accuracies as the tasks finish. The number of tasks is not known when the
// run starts: flows are plain Go, so loops and conditions over earlier
// results are fine, as long as the same results lead to the same calls (on
// `retry` the flow runs again and completed steps are answered from the
// run's journal).
//
//	go run ./examples/knn                                   # default parameters
//	go run ./examples/knn run knn --param points=1000 --param spread=2.5
//	go run ./examples/knn flows                             # the flow and its parameters
//
// The flow, its tasks and its types are in package
// github.com/batonhq/baton/examples/flows/knn.
package main

import (
	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/knn"
)

func main() { baton.Main(knn.Flow) }
