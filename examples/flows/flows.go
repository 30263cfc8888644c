// Package flows gathers the example flows bundled with Baton, so that a
// process can host them all: `baton dev` serves flows.All() in its
// in-process worker. Each flow lives in its own package (etl, sweep, knn,
// campaign), which a program can also import on its own.
package flows

import (
	"github.com/batonhq/baton"
	"github.com/batonhq/baton/examples/flows/campaign"
	"github.com/batonhq/baton/examples/flows/etl"
	"github.com/batonhq/baton/examples/flows/knn"
	"github.com/batonhq/baton/examples/flows/sweep"
)

// All returns every example flow: etl, sweep, knn and campaign, in that
// order. Each call returns a new slice of the same flow definitions.
func All() []baton.AnyFlow {
	return []baton.AnyFlow{etl.Flow, sweep.Flow, knn.Flow, campaign.Flow}
}
