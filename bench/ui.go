package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// The web UI's runs list at a million runs: the server time of GET
// /api/v1/runs and of the /runs page for each filter, on SQLite.

// uiKeys are the figures the ui suite prints, in order: for each query
// of uiQueries, the median and the 95th percentile of the server time of
// its API call (ms), and the median of its page.
var uiKeys = func() []string {
	keys := []string{"go_version", "cpus", "ui_runs", "ui_insert_s"}
	for _, q := range uiQueries {
		keys = append(keys, "runs_list_"+q.name+"_p50_ms", "runs_list_"+q.name+"_p95_ms", "runs_page_"+q.name+"_p50_ms")
	}
	return keys
}()

type uiQuery struct{ name, query string }

// uiQueries are the runs lists measured (a page of 51 runs, as the UI asks).
var uiQueries = []uiQuery{
	{"first", ""},
	{"flow", "flow=flow-3"},
	{"state_failed", "state=FAILED"},
	{"state_rare", "state=CRASHED"},
	{"deployment", "deployment=dep-7"},
	{"tag", "tag=team-2"},
	{"created_range", "created_from=%FROM%&created_to=%TO%"},
	{"flow_state_range", "flow=flow-3&state=FAILED&created_from=%FROM%"},
	{"search_id", "q=%ID%"},
	{"search_param", "q=%BATCH%"},
	{"search_flow", "q=flow-3"},
	{"search_all", "q=LYON"},
	{"search_none", "q=no-such-run"},
	{"search_flow_failed", "q=flow-7&state=CRASHED"},
	{"offset_10k", "offset=10000"},
	{"offset_100k", "offset=100000"},
}

type uiConfig struct {
	runs    int
	dir     string
	repeats int
	only    []string // measure only these queries (all when empty)
}

func parseUI(args []string, stderr io.Writer) (uiConfig, error) {
	fs := flag.NewFlagSet("bench ui", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := uiConfig{}
	fs.IntVar(&cfg.runs, "runs", 1_000_000, "runs in the store")
	fs.StringVar(&cfg.dir, "dir", "", "work directory (default: a temporary one removed at the end); an existing store of as many runs there is reused")
	fs.IntVar(&cfg.repeats, "repeats", 20, "requests per query")
	only := fs.String("only", "", "measure only these queries, comma-separated (first, flow, state_failed, ...)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if *only != "" {
		cfg.only = strings.Split(*only, ",")
	}
	if cfg.runs < 100 || cfg.repeats < 1 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "bench ui: -runs must be at least 100, -repeats at least 1, and no arguments")
		return cfg, errUsage
	}
	return cfg, nil
}

// uiBase is when the benchmark's first run was created; one run per second after.
var uiBase = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func runUI(ctx context.Context, cfg uiConfig, stdout, stderr io.Writer) error {
	dir := cfg.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "baton-bench-ui-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	figures := map[string]string{"go_version": runtime.Version(), "cpus": fmt.Sprint(runtime.NumCPU()), "ui_runs": fmt.Sprint(cfg.runs)}
	opened := time.Now()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	// An existing store's pending migrations run here (0014 indexes its runs).
	fmt.Fprintf(stderr, "bench ui: store opened in %.1f s\n", time.Since(opened).Seconds())
	have, err := st.RunList(ctx, store.RunListParams{Limit: 1, Offset: cfg.runs - 1})
	if err != nil {
		return err
	}
	if len(have) == 0 {
		start := time.Now()
		if err := fillRuns(ctx, st, cfg.runs, stderr); err != nil {
			return err
		}
		figures["ui_insert_s"] = fmt.Sprintf("%.1f", time.Since(start).Seconds())
	} else {
		figures["ui_insert_s"] = "reused"
	}
	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	h := srv.Handler()
	mid := cfg.runs / 2
	repl := strings.NewReplacer("%FROM%", uiBase.Add(time.Duration(mid)*time.Second).Format(time.RFC3339),
		"%TO%", uiBase.Add(time.Duration(mid+3600)*time.Second).Format(time.RFC3339), "%ID%", runID(mid),
		"%BATCH%", batchName(mid))
	for _, q := range uiQueries {
		if len(cfg.only) > 0 && !slices.Contains(cfg.only, q.name) {
			continue
		}
		query := repl.Replace(q.query)
		api := apitype.Prefix + "/runs?limit=51"
		page := "/runs"
		if query != "" {
			api += "&" + query
			page += "?" + query
		}
		apiTimes, n, err := timeRequests(ctx, h, api, cfg.repeats)
		if err != nil {
			return fmt.Errorf("%s: %w", q.name, err)
		}
		pageTimes, _, err := timeRequests(ctx, h, page, cfg.repeats)
		if err != nil {
			return fmt.Errorf("%s page: %w", q.name, err)
		}
		figures["runs_list_"+q.name+"_p50_ms"] = fmt.Sprintf("%.2f", percentile(apiTimes, 0.5))
		figures["runs_list_"+q.name+"_p95_ms"] = fmt.Sprintf("%.2f", percentile(apiTimes, 0.95))
		figures["runs_page_"+q.name+"_p50_ms"] = fmt.Sprintf("%.2f", percentile(pageTimes, 0.5))
		fmt.Fprintf(stderr, "bench ui: %-18s %3d runs  api p50 %7.2f ms p95 %7.2f ms  page p50 %7.2f ms\n", q.name, n,
			percentile(apiTimes, 0.5), percentile(apiTimes, 0.95), percentile(pageTimes, 0.5))
	}
	for _, k := range uiKeys {
		if v, ok := figures[k]; ok {
			fmt.Fprintf(stdout, "%s=%s\n", k, v)
		}
	}
	return nil
}

// runID is the ID of the benchmark's i-th run.
func runID(i int) string { return fmt.Sprintf("run-%08d", i) }

// batchName is the value of the "batch" parameter of the benchmark's i-th
// run: 100 consecutive runs share one.
func batchName(i int) string { return fmt.Sprintf("batch-%05d", i/100) }

// fillRuns writes n runs: one a second from uiBase, over 10 flows and (one
// run in two) 20 deployments tagged by team; one run in 10 FAILED, one in
// 10,000 CRASHED, the rest COMPLETED; the parameters of each name a city
// (Lyon, the same for all) and a batch (batchName: 100 runs each).
func fillRuns(ctx context.Context, st store.Store, n int, log io.Writer) error {
	for d := range 20 {
		dep := store.Deployment{Name: fmt.Sprintf("dep-%d", d), Flow: fmt.Sprintf("flow-%d", d%10), Queue: "default",
			Tags: []string{fmt.Sprintf("team-%d", d%5)}, Collision: store.CollisionQueue, Source: store.SourceAPI, Hash: fmt.Sprint(d)}
		if _, _, err := st.DeploymentPut(ctx, store.DeploymentPutParams{Mode: store.PutCreate, Deployment: dep, At: uiBase}); err != nil {
			return err
		}
	}
	const batch = 5000
	byDep := map[string][]store.Run{}
	for i := 0; i < n; i += batch {
		var b store.Batch
		for j := i; j < min(i+batch, n); j++ {
			at := uiBase.Add(time.Duration(j) * time.Second)
			r := store.Run{ID: runID(j), Flow: fmt.Sprintf("flow-%d", j%10), State: store.RunCompleted, Attempt: 1,
				Parameters: json.RawMessage(`{"batch":"` + batchName(j) + `","city":"Lyon","n":3}`), Queue: "default", CreatedAt: at, UpdatedAt: at, StartedAt: at, EndedAt: at.Add(time.Second)}
			switch {
			case j%10_000 == 7:
				r.State = store.RunCrashed
			case j%10 == 3:
				r.State = store.RunFailed
				r.Error = &store.ErrorInfo{Message: "boom"}
			}
			if j%2 == 0 { // a batch write keeps no deployment: created as the scheduler does
				r.Deployment = fmt.Sprintf("dep-%d", (j/2)%20)
				byDep[r.Deployment] = append(byDep[r.Deployment], r)
				continue
			}
			b.Runs = append(b.Runs, r)
		}
		if err := st.BatchWrite(ctx, b); err != nil {
			return err
		}
		var fires []store.DeploymentFireParams
		for d, runs := range byDep {
			fires = append(fires, store.DeploymentFireParams{Deployment: d, At: runs[0].CreatedAt, Runs: runs, Message: "bench"})
		}
		clear(byDep)
		if _, err := st.DeploymentFire(ctx, fires...); err != nil {
			return err
		}
		if (i/batch)%20 == 0 {
			fmt.Fprintf(log, "bench ui: %d of %d runs written\n", i, n)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// timeRequests serves GET path n times through h and returns the server
// times in ms, sorted, and the runs of the last answer (API calls).
func timeRequests(ctx context.Context, h http.Handler, path string, n int) ([]float64, int, error) {
	var times []float64
	runs := 0
	for range n {
		req := httptest.NewRequestWithContext(ctx, "GET", path, nil)
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, req)
		times = append(times, float64(time.Since(start).Microseconds())/1000)
		if rec.Code != 200 {
			return nil, 0, fmt.Errorf("GET %s: %d %s", path, rec.Code, rec.Body.String())
		}
		if strings.HasPrefix(path, apitype.Prefix) {
			var out struct {
				Runs []json.RawMessage `json:"runs"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				return nil, 0, err
			}
			runs = len(out.Runs)
		}
	}
	slices.Sort(times)
	return times, runs, nil
}
