package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
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
	pageTime, pageBytes, err := runPageOverHTTP(ctx, dir, st, run.ID)
	if err != nil {
		return err
	}
	b.progress("graph: %d task runs: read in %s (median of %d), %d bytes; last items page in %s; run page (HTML) in %s, %d bytes",
		n+2, med.Round(time.Microsecond), graphReads, len(doc), last.Round(time.Microsecond), pageTime.Round(time.Microsecond), pageBytes)
	b.report("run_page_ms_100k", float64(pageTime.Microseconds())/1000, 1)
	b.report("run_page_bytes_100k", float64(pageBytes), 0)
	b.report("graph_ms_100k", float64(med.Microseconds())/1000, 1)
	b.report("graph_bytes_100k", float64(len(doc)), 0)
	b.report("graph_items_last_page_ms_100k", float64(last.Microseconds())/1000, 1)
	return nil
}

// runPageOverHTTP serves st and returns the median time and the bytes of
// the run page /runs/{id} (its first HTML, graph section included, as the
// browser receives it before any script or asset).
func runPageOverHTTP(ctx context.Context, dir string, st store.Store, runID string) (time.Duration, int, error) {
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return 0, 0, err
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return 0, 0, err
	}
	if err := srv.Start(ctx); err != nil {
		return 0, 0, err
	}
	defer srv.Stop()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	var times []time.Duration
	size := 0
	for range graphReads {
		t0 := time.Now()
		resp, err := http.Get(ts.URL + "/runs/" + runID)
		if err != nil {
			return 0, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		times = append(times, time.Since(t0))
		if err != nil {
			return 0, 0, err
		}
		if resp.StatusCode != 200 || !strings.Contains(string(body), `id="graph"`) {
			return 0, 0, fmt.Errorf("GET /runs/%s: %d without its graph", runID, resp.StatusCode)
		}
		size = len(body)
	}
	slices.Sort(times)
	return times[len(times)/2], size, nil
}
