// Package ui is Baton's web UI: pages rendered on the server from
// html/template, readable with scripts off, made live by small ES modules
// (static/app.js; static/run.js for the run and task run pages) that
// follow the API's Server-Sent Event streams and send the pages' actions
// to the API. Templates and static files are
// embedded in the binary; nothing is fetched from the network.
//
// The pages read only through a Source, which the server implements with
// the code paths of its public API, so that each page shows what its JSON
// twin under /api/v1 returns:
//
//	/            dashboard   GET /api/v1/runs, /api/v1/inbox, /api/v1/workers, /api/v1/queues, /api/v1/stats/runs
//	/runs        runs list   GET /api/v1/runs?flow=&deployment=&state=&tag=&created_from=&created_to=&q=&limit=&offset=
//	                         (live: /api/v1/runs/stream)
//	/runs/{id}   run detail  GET /api/v1/runs/{id}?summary=true&task_runs_offset=&task_runs_limit=,
//	                         /api/v1/runs/{id}/logs?q=&level=&after= (download: .../logs/download),
//	                         /api/v1/runs/{id}/history, /api/v1/runs/{id}/attempts,
//	                         /api/v1/inbox?run={id} (live: /api/v1/runs/{id}/stream)
//	/runs/{id}/tasks/{tr}    task run    GET /api/v1/runs/{id}/task-runs/{tr}, /api/v1/runs/{id}/logs?task_run={tr}
//	/inbox       needs you   GET /api/v1/inbox
//	/deployments        GET /api/v1/deployments
//	/deployments/{name} GET /api/v1/deployments/{name}, /api/v1/deployments/{name}/next,
//	                    /api/v1/runs?deployment={name} (actions: .../run, .../pause, .../resume, .../backfill)
//	/flows              GET /api/v1/flows
//	/flows/{name}       GET /api/v1/flows/{name}, /api/v1/runs?flow={name}
//	                    (action: run now, POST /api/v1/runs)
//	/workers            GET /api/v1/workers
//	/limits             GET /api/v1/limits
//	/queues             GET /api/v1/queues (actions: /api/v1/queues/{name}/pause, /resume)
//
// The dashboard's chart reads GET /api/v1/stats/runs; the runs list's bulk
// cancel and retry call POST /api/v1/runs/{id}/cancel and /retry for each
// selected run.
package ui

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// StaticPrefix is where the embedded static files are served.
const StaticPrefix = "/ui/static/"

// Source is what the pages read: the documents of the public API.
type Source interface {
	// Runs is GET /api/v1/runs with the query q.
	Runs(ctx context.Context, q url.Values) ([]apitype.Run, error)
	// Run is GET /api/v1/runs/{id} with the paging query q.
	Run(ctx context.Context, id string, q apitype.PageQuery) (apitype.RunPage, error)
	// Logs is GET /api/v1/runs/{id}/logs with the query q.
	Logs(ctx context.Context, id string, q url.Values) ([]apitype.Log, error)
	// History is GET /api/v1/runs/{id}/history?after=&limit=.
	History(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error)
	// Attempts is GET /api/v1/runs/{id}/attempts with the query q.
	Attempts(ctx context.Context, id string, q url.Values) (apitype.AttemptsComparison, error)
	// TaskRun is GET /api/v1/runs/{id}/task-runs/{task_run_id}.
	TaskRun(ctx context.Context, id, taskRunID string) (apitype.TaskRunDetail, error)
	// Inbox is GET /api/v1/inbox (?run=runID when runID is set).
	Inbox(ctx context.Context, runID string) (apitype.Inbox, error)
	// Workers is GET /api/v1/workers.
	Workers(ctx context.Context) ([]apitype.Worker, error)
	// Queues is GET /api/v1/queues.
	Queues(ctx context.Context) ([]apitype.Queue, error)
	// Deployments is GET /api/v1/deployments.
	Deployments(ctx context.Context) ([]apitype.Deployment, error)
	// Deployment is GET /api/v1/deployments/{name}.
	Deployment(ctx context.Context, name string) (apitype.Deployment, error)
	// DeploymentNext is GET /api/v1/deployments/{name}/next?count=.
	DeploymentNext(ctx context.Context, name string, count int) (apitype.DeploymentNext, error)
	// Flows is GET /api/v1/flows.
	Flows(ctx context.Context) ([]apitype.Flow, error)
	// Flow is GET /api/v1/flows/{name}.
	Flow(ctx context.Context, name string) (apitype.Flow, error)
	// Limits is GET /api/v1/limits.
	Limits(ctx context.Context) ([]apitype.Limit, error)
	// RunStats is GET /api/v1/stats/runs with the query q.
	RunStats(ctx context.Context, q url.Values) (apitype.RunStats, error)
}

// Serves reports whether the UI serves path: its pages and static files.
func Serves(path string) bool {
	switch {
	case path == "/", path == "/runs", path == "/runs/", path == "/inbox",
		path == "/deployments", path == "/deployments/", path == "/flows", path == "/flows/",
		path == "/workers", path == "/limits", path == "/queues":
		return true
	case strings.HasPrefix(path, "/runs/"):
		parts := strings.Split(strings.TrimPrefix(path, "/runs/"), "/")
		return len(parts) == 1 || len(parts) == 3 && parts[1] == "tasks" && parts[0] != "" && parts[2] != ""
	case strings.HasPrefix(path, "/deployments/"):
		return !strings.Contains(strings.TrimPrefix(path, "/deployments/"), "/")
	case strings.HasPrefix(path, "/flows/"):
		return !strings.Contains(strings.TrimPrefix(path, "/flows/"), "/")
	case strings.HasPrefix(path, StaticPrefix):
		return true
	}
	return false
}

// Handler serves the UI.
type Handler struct {
	src   Source
	now   func() time.Time
	pages map[string]*template.Template
	mux   *http.ServeMux
}

// New returns the UI's handler reading from src; now is its clock (nil:
// the system clock), for what it shows relative to now.
func New(src Source, now func() time.Time) *Handler {
	if now == nil {
		now = time.Now
	}
	h := &Handler{src: src, now: now, pages: map[string]*template.Template{}, mux: http.NewServeMux()}
	for _, name := range []string{"dashboard", "runs", "run", "taskrun", "inbox", "error", "deployments", "deployment", "flows", "flow", "workers", "limits", "queues"} {
		h.pages[name] = template.Must(template.New("layout.html").Funcs(funcs).
			ParseFS(templateFS, "templates/layout.html", "templates/parts.html", "templates/graph.html", "templates/logs.html", "templates/ops.html", "templates/"+name+".html"))
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix(StaticPrefix, http.FileServerFS(static))
	h.mux.Handle("GET "+StaticPrefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	h.mux.HandleFunc("GET /{$}", h.page(h.dashboard))
	h.mux.HandleFunc("GET /runs", h.page(h.runs))
	h.mux.HandleFunc("GET /runs/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/runs", http.StatusMovedPermanently)
	})
	h.mux.HandleFunc("GET /runs/{id}", h.page(h.run))
	h.mux.HandleFunc("GET /runs/{id}/tasks/{tr}", h.page(h.taskRun))
	h.mux.HandleFunc("GET /inbox", h.page(h.inbox))
	h.mux.HandleFunc("GET /deployments", h.page(h.deployments))
	h.mux.HandleFunc("GET /deployments/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/deployments", http.StatusMovedPermanently)
	})
	h.mux.HandleFunc("GET /deployments/{name}", h.page(h.deployment))
	h.mux.HandleFunc("GET /flows", h.page(h.flows))
	h.mux.HandleFunc("GET /flows/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/flows", http.StatusMovedPermanently)
	})
	h.mux.HandleFunc("GET /flows/{name}", h.page(h.flow))
	h.mux.HandleFunc("GET /workers", h.page(h.workers))
	h.mux.HandleFunc("GET /limits", h.page(h.limits))
	h.mux.HandleFunc("GET /queues", h.page(h.queues))
	return h
}

// ServeHTTP serves the UI's pages and static files (GET and HEAD only).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" is not allowed on "+r.URL.Path+"; the UI's pages are read with GET (actions go to the API under /api/v1)", http.StatusMethodNotAllowed)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// view is what a page template renders.
type view struct {
	Title string
	Nav   string // the current section: dashboard, runs, inbox
	Page  string // the script's mode: dashboard, runs, run, inbox
	Data  any
}

// statusError is an error with an HTTP status (the server's API errors).
type statusError interface{ HTTPStatus() int }

func (h *Handler) page(fn func(r *http.Request) (string, view, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, v, err := fn(r)
		status := http.StatusOK
		if err != nil {
			status = http.StatusInternalServerError
			var se statusError
			if errors.As(err, &se) {
				status = se.HTTPStatus()
			}
			if r.Context().Err() != nil {
				return
			}
			name, v = "error", view{Title: http.StatusText(status), Data: map[string]any{"Status": status, "Message": err.Error()}}
		}
		var buf bytes.Buffer
		if err := h.pages[name].Execute(&buf, v); err != nil {
			http.Error(w, fmt.Sprintf("render %s: %v", name, err), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		_, _ = w.Write(buf.Bytes())
	}
}
