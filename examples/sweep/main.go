// Command sweep runs a parameter sweep over an image-filter pipeline with
// Baton.
//
// It renders a few synthetic grayscale images (a gradient, a disc, a
// checkerboard) with seeded noise, then tries every combination of a box
// blur radius and a contrast factor on every image: one task per (image,
// setting) pair, all running in parallel. Each task writes its PNG and
// returns only small data: the file's path and quality metrics. A last task
// ranks the settings by how close their output is to the noise-free image
// (PSNR) and writes report.csv.
//
//	go run ./examples/sweep                                 # default grid
//	go run ./examples/sweep run sweep --param radii=[0,2,4] --param contrasts=[1] --param out=/tmp/sweep
//	go run ./examples/sweep flows                           # the flow and its parameters
//
// Image generation is cached: run the sweep again, even with another grid,
// and the images come from the cache (their task runs are CACHED).
//
// The flow, its tasks and its types are in package
// github.com/batonhq/baton/examples/flows/sweep.
package main

import (
	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/sweep"
)

func main() { baton.Main(sweep.Flow) }
