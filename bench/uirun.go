package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/blob"
	"github.com/batonhq/baton/internal/server"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/store/sqlite"
)

// This file is the ui-run subcommand: the run page of a run of 100,000
// task runs (graphFlow: a step, a map of 100,000 items, a step; completed,
// on SQLite) loaded in headless Chromium from a baton server's handler on
// loopback, cold (a new browser context each load: no cache). See
// bench/README.md, "ui-run".

// Targets of issue 10.
const (
	uiRunInteractiveTarget = 1500 * time.Millisecond
	uiRunBytesTarget       = 1_000_000
)

// uiRunKeys are the figures the ui-run subcommand prints, in order.
var uiRunKeys = []string{
	"ui_run_task_runs",
	"ui_run_server_ms_100k",
	"ui_run_fcp_ms_100k",
	"ui_run_interactive_ms_100k",
	"ui_run_bytes_100k",
	"ui_run_interactive_ratio_to_target",
	"ui_run_bytes_ratio_to_target",
}

type uiRunConfig struct {
	scale    float64
	dir      string
	chromium string // the browser; empty: BATON_CHROMIUM, else PATH
	loads    int    // cold loads measured (the median is reported)
}

func parseUIRun(args []string, stderr io.Writer) (uiRunConfig, error) {
	cfg := uiRunConfig{scale: 1, loads: 5}
	fs := flag.NewFlagSet("ui-run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Float64Var(&cfg.scale, "scale", cfg.scale, "")
	fs.StringVar(&cfg.dir, "dir", "", "")
	fs.StringVar(&cfg.chromium, "chromium", "", "")
	fs.IntVar(&cfg.loads, "loads", cfg.loads, "")
	if err := fs.Parse(args); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "bench ui-run: %v\n\n", err)
		}
		fmt.Fprint(stderr, usage)
		return cfg, errUsage
	}
	if fs.NArg() > 0 || cfg.scale <= 0 || cfg.loads < 1 {
		fmt.Fprintf(stderr, "bench ui-run: -scale must be > 0, -loads >= 1, and no arguments are taken\n\n%s", usage)
		return cfg, errUsage
	}
	return cfg, nil
}

// findChromium returns the browser of cfg, else $BATON_CHROMIUM, else the
// first Chromium on PATH; "" when none.
func findChromium(cfg uiRunConfig) string {
	if cfg.chromium != "" {
		return cfg.chromium
	}
	if p := os.Getenv("BATON_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// errNoChromium is returned when no browser can be found.
var errNoChromium = errors.New("no Chromium found: pass -chromium PATH, set BATON_CHROMIUM, or run under scripts/with-chromium.sh")

// runUIRun runs the ui-run measure and prints its figures on stdout.
func runUIRun(ctx context.Context, cfg uiRunConfig, stdout, stderr io.Writer) (err error) {
	browserPath := findChromium(cfg)
	if browserPath == "" {
		return errNoChromium
	}
	b := &bench{cfg: localConfig{scale: cfg.scale}, log: stderr, figures: map[string]string{}, values: map[string]float64{}}
	if b.dir = cfg.dir; b.dir == "" {
		if b.dir, err = os.MkdirTemp("", "baton-bench-"); err != nil {
			return err
		}
		defer os.RemoveAll(b.dir)
	} else if err = os.MkdirAll(b.dir, 0o755); err != nil {
		return err
	}
	dir, err := b.storeDir("ui-run")
	if err != nil {
		return err
	}
	n := b.n(graphItems)
	t0 := time.Now()
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
	b.progress("ui-run: run %s of %d task runs recorded in %s", info.ID, n+2, time.Since(t0).Round(time.Millisecond))
	st, err := sqlite.Open(ctx, filepath.Join(dir, "baton.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	run, err := st.RunGet(ctx, info.ID)
	if err != nil {
		return err
	}
	if err := runPageQueries(ctx, b, st, run); err != nil {
		return err
	}
	serverTime, htmlBytes, err := runPageOverHTTP(ctx, dir, st, run.ID)
	if err != nil {
		return err
	}
	b.progress("ui-run: GET /runs/{id} (HTML) in %s (median of %d), %d bytes", serverTime.Round(time.Microsecond), graphReads, htmlBytes)

	blobs, err := blob.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		return err
	}
	srv, err := server.New(server.Config{Store: st, Blobs: blobs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	if err := srv.Start(ctx); err != nil {
		return err
	}
	defer srv.Stop()
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browserPath),
		chromedp.NoSandbox, chromedp.Flag("headless", true), chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		return fmt.Errorf("start Chromium %s: %w", browserPath, err)
	}
	url := ts.URL + "/runs/" + run.ID
	var loads []pageLoad
	for i := range cfg.loads {
		l, err := loadRunPage(bctx, url)
		if err != nil {
			return fmt.Errorf("load %d of %s: %w", i+1, url, err)
		}
		b.progress("ui-run: load %d: first contentful paint %.1f ms, interactive %.1f ms, %d bytes in %d requests (graph drawn: %d nodes)",
			i+1, l.FCP, l.Interactive, l.Bytes, l.Requests, l.Drawn)
		loads = append(loads, l)
	}
	med := func(f func(pageLoad) float64) float64 {
		v := make([]float64, len(loads))
		for i, l := range loads {
			v[i] = f(l)
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	fcp, tti := med(func(l pageLoad) float64 { return l.FCP }), med(func(l pageLoad) float64 { return l.Interactive })
	size := med(func(l pageLoad) float64 { return float64(l.Bytes) })
	b.report("ui_run_task_runs", float64(n+2), 0)
	b.report("ui_run_server_ms_100k", float64(serverTime.Microseconds())/1000, 1)
	b.report("ui_run_fcp_ms_100k", fcp, 1)
	b.report("ui_run_interactive_ms_100k", tti, 1)
	b.report("ui_run_bytes_100k", size, 0)
	b.report("ui_run_interactive_ratio_to_target", tti/float64(uiRunInteractiveTarget.Milliseconds()), 2)
	b.report("ui_run_bytes_ratio_to_target", size/uiRunBytesTarget, 2)
	for _, k := range uiRunKeys {
		fmt.Fprintf(stdout, "%s=%s\n", k, b.figures[k])
	}
	return nil
}

// runPageQueries times (the median of graphReads), on progress only, each store read the run page
// makes for its summary, so that the server time can be told apart.
func runPageQueries(ctx context.Context, b *bench, st store.Store, run store.Run) error {
	timed := func(what string, f func() error) error {
		times := make([]time.Duration, graphReads)
		for i := range times {
			t0 := time.Now()
			if err := f(); err != nil {
				return err
			}
			times[i] = time.Since(t0)
		}
		slices.Sort(times)
		b.progress("ui-run: %s in %s (median of %d)", what, times[len(times)/2].Round(time.Microsecond), graphReads)
		return nil
	}
	steps := []struct {
		what string
		f    func() error
	}{
		{"task-run counts per task and state", func() error { _, err := st.TaskRunCounts(ctx, run.ID); return err }},
		{"first page of task runs", func() error {
			_, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, Limit: 50})
			return err
		}},
		{"failed task runs", func() error {
			_, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, States: api.FailedTaskStates, Limit: api.SummaryFailed})
			return err
		}},
		{"slowest task runs", func() error {
			_, err := st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID, Slowest: true, Limit: api.SummarySlowest})
			return err
		}},
		{"graph", func() error { _, err := api.Graph(ctx, st, run, time.Now()); return err }},
	}
	for _, s := range steps {
		if err := timed(s.what, s.f); err != nil {
			return err
		}
	}
	return nil
}

// pageLoad is what one cold load of the run page measured.
type pageLoad struct {
	FCP         float64 // first contentful paint, ms from navigation start
	Interactive float64 // ms from navigation start; see interactiveScript
	Bytes       int64   // transferred: the document and every resource
	Requests    int
	Drawn       int // nodes the graph drew on its canvas
}

// interactiveScript runs in the page before its own scripts and records
// when the page becomes interactive: app.js has marked the document ready
// (at DOMContentLoaded, after every module script ran) and graph.js has
// drawn the graph (read GET /api/v1/runs/{id}/graph, laid it out and
// painted it on its canvas: #graph's data-version is 1). A mutation
// observer sees both attributes as they are set.
const interactiveScript = `(() => {
  const mark = () => {
    if (window.__batonInteractive) return;
    const d = document.documentElement, g = document.getElementById("graph");
    if (d && d.dataset.ready === "true" && g && Number(g.dataset.version || 0) >= 1) {
      window.__batonInteractive = performance.now();
    }
  };
  new MutationObserver(mark).observe(document, { attributes: true, subtree: true, attributeFilter: ["data-ready", "data-version"] });
})();`

// measuredScript reads the figures of a load once it is interactive and
// the network is quiet.
const measuredScript = `(() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  const canvas = document.getElementById("graph-canvas");
  return {
    fcp: fcp ? fcp.startTime : -1,
    interactive: window.__batonInteractive || -1,
    bytes: nav.transferSize + res.reduce((s, r) => s + r.transferSize, 0),
    requests: 1 + res.length,
    pending: res.filter((r) => r.responseEnd === 0).length,
    drawn: canvas ? Number(canvas.dataset.drawn || 0) : 0,
  };
})()`

type loadFigures struct {
	FCP         float64 `json:"fcp"`
	Interactive float64 `json:"interactive"`
	Bytes       int64   `json:"bytes"`
	Requests    int     `json:"requests"`
	Pending     int     `json:"pending"`
	Drawn       int     `json:"drawn"`
}

// loadRunPage loads url in a new browser context (an empty cache) of the
// browser bctx and measures it.
func loadRunPage(bctx context.Context, url string) (pageLoad, error) {
	ctx, cancel := chromedp.NewContext(bctx, chromedp.WithNewBrowserContext())
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: interactiveScript})
		return err
	}), chromedp.Navigate(url)); err != nil {
		return pageLoad{}, err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`window.__batonInteractive > 0`,
		chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(20*time.Millisecond))); err != nil {
		return pageLoad{}, fmt.Errorf("the page did not become interactive: %w", err)
	}
	// The bytes are counted once no request is in flight and none started
	// for 500 ms.
	var f loadFigures
	last, quiet := -1, time.Now()
	for {
		var err error
		if f, err = chromedp.Run(ctx, chromedp.Evaluate[loadFigures](measuredScript)); err != nil {
			return pageLoad{}, err
		}
		if f.Requests != last || f.Pending > 0 {
			last, quiet = f.Requests, time.Now()
		} else if time.Since(quiet) >= 500*time.Millisecond {
			break
		}
		select {
		case <-ctx.Done():
			return pageLoad{}, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	if f.FCP < 0 || f.Interactive < 0 || f.Drawn == 0 {
		return pageLoad{}, fmt.Errorf("incomplete load: %+v", f)
	}
	return pageLoad{FCP: f.FCP, Interactive: f.Interactive, Bytes: f.Bytes, Requests: f.Requests, Drawn: f.Drawn}, nil
}
