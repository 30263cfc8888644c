// Command etl is a small extract-transform-load pipeline run by Baton.
//
// It extracts a CSV export of orders (generated, deterministic and a little
// messy, like real exports), transforms it (parses, cleans, aggregates the
// revenue per customer) and loads the result into a "warehouse": a directory
// that receives report.json and customers.csv. The warehouse is flaky on
// purpose: it rejects the first connections of every load, and the load task
// succeeds thanks to its retry policy.
//
//	go run ./examples/etl                                   # default parameters
//	go run ./examples/etl run etl --param rows=5000 --param out=/tmp/etl
//	go run ./examples/etl flows                             # the flow and its parameters
//	go run ./examples/etl runs list                         # what was recorded
//
// Each step is a task: its input and result are recorded, so `retry RUN_ID`
// on a failed run reuses the steps that completed and starts again at the
// one that failed.
//
// The flow, its tasks and its types are in package
// github.com/batonhq/baton/examples/flows/etl.
package main

import (
	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/etl"
)

func main() { baton.Main(etl.Flow) }
