package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// graphItems is the size of the map of the graph measure.
const graphItems = 100_000

// graphReads is how many times the graph measure reads the graph (the
// median is reported).
const graphReads = 7

var graphFlow = baton.Flow("bench.graph", func(ctx baton.Context, n int) (int, error) {
	first, err := noop.Run(ctx, n)
	if err != nil {
		return 0, err
	}
	out, err := baton.WaitAll(ctx, noop.Map(ctx, make([]int, n)))
	if err != nil {
		return 0, err
	}
	return noop.Run(ctx, first+len(out))
})

// measureGraph reads the graph of a run of graphItems map items plus two
// steps, as GET /api/v1/runs/{id}/graph does (the store's aggregation and
// the document, without HTTP): the median time of a read, the bytes of
// the JSON document, and the time of the last page of the map's items.
func measureGraph(ctx context.Context, b *bench) error {
	dir, err := b.storeDir("graph")
	if err != nil {
		return err
	}
	n := b.n(graphItems)
	rt, err := openRuntime(ctx, dir)
	if err != nil {
		return err
	}
	_, info, err := graphFlow.Execute(ctx, rt, n)
	if cerr := rt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("run %s: %w", info.ID, err)
	}
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := st.RunGet(ctx, info.ID)
	if err != nil {
		return err
	}
	var times []time.Duration
	var doc []byte
	for range graphReads {
		t0 := time.Now()
		g, err := api.Graph(ctx, st, run, time.Now())
		if err == nil {
			doc, err = json.Marshal(g)
		}
		times = append(times, time.Since(t0))
		if err != nil {
			return err
		}
		if len(g.Nodes) != 3 || g.TaskRunsTotal != n+2 {
			return fmt.Errorf("graph of run %s: %d nodes for %d task runs, want 3 for %d", run.ID, len(g.Nodes), g.TaskRunsTotal, n+2)
		}
	}
	slices.Sort(times)
	med := times[len(times)/2]
	t0 := time.Now()
	page, err := st.MapItemList(ctx, store.MapItemListParams{RunID: run.ID, Map: noop.Name() + "/1", Offset: max(n-api.MapItemsDefault, 0), Limit: api.MapItemsDefault})
	last := time.Since(t0)
	if err != nil {
		return err
	}
	if len(page) != min(n, api.MapItemsDefault) {
		return fmt.Errorf("last page of the map: %d items", len(page))
	}
	b.progress("graph: %d task runs: read in %s (median of %d), %d bytes; last items page in %s", n+2, med.Round(time.Microsecond), graphReads, len(doc), last.Round(time.Microsecond))
	b.report("graph_ms_100k", float64(med.Microseconds())/1000, 1)
	b.report("graph_bytes_100k", float64(len(doc)), 0)
	b.report("graph_items_last_page_ms_100k", float64(last.Microseconds())/1000, 1)
	return nil
}
