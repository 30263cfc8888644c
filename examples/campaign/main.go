// Command campaign is an autonomous optimization campaign run by Baton:
// Bayesian optimization of the Branin function, with batches of simulated
// experiments run in parallel and a decision point every few iterations.
// See README.md beside this file.
//
//	go run ./examples/campaign --auto                      # unattended, prints best=<value> last
//	go run ./examples/campaign --auto --seed 3 --batch-size 2
//	go run ./examples/campaign run campaign --param batch_size=8
//	go run ./examples/campaign flows                       # the flow and its parameters
//
// With --auto the program runs the campaign on the embedded store
// (--db, $BATON_DB, $BATON_HOME/baton.db or ~/.baton/baton.db), taking
// the default decision at every decision point, prints a summary and, as
// its last line, best=<the lowest value measured>. Without it, it is
// Baton's command line for the flow (baton.Main).
//
// The flow, its tasks and its types are in package
// github.com/batonhq/baton/examples/flows/campaign.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/campaign"
)

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "--auto" || os.Args[1] == "-auto") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := auto(ctx, os.Args[2:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	baton.Main(campaign.Flow)
}
