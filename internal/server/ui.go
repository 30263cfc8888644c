package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/store"
	"github.com/batonhq/baton/internal/ui"
)

// This file serves the web UI (package ui) at the server's root and the
// API endpoints only it needed: the inbox and the Server-Sent Event
// streams. The UI reads through uiSource, which calls what the API's
// handlers call, so every page shows what its JSON twin returns.

// uiRoutes are the API routes added for the web UI.
func (s *Server) uiRoutes() []route {
	p := apitype.Prefix
	return []route{
		{method: "GET", pattern: p + "/inbox", summary: "Runs waiting for a person (input or a resume), oldest first; run: only this run's waits", tag: "runs", query: []string{"run"}, response: "Inbox", handle: s.inbox},
		{method: "GET", pattern: p + "/runs/stream", summary: "Server-Sent Events: a \"runs\" event (a RunList) with the runs list of the filters now and whenever it changes", tag: "runs", query: apitype.RunsQueryParams, stream: true, handle: s.streamRuns},
		{method: "GET", pattern: p + "/runs/{id}/stream", summary: "Server-Sent Events: \"run\" (the run with its task-run counts) when it changes, \"logs\" (a LogList) with new log lines after the id given as after or Last-Event-ID, \"end\" once the run is finished; task, task_run: only the log lines of this step key, of this task run", tag: "runs", query: []string{"after", "task", "task_run"}, stream: true, handle: s.streamRun},
	}
}

// isUIPath reports whether the web UI serves path; other paths that no
// route matched (all of /api/...) get the API's JSON 404 and 405.
func isUIPath(path string) bool {
	return !strings.HasPrefix(path, apitype.Prefix+"/") && path != apitype.Prefix && ui.Serves(path)
}

func (s *Server) uiHandler() http.Handler { return ui.New(uiSource{s}, s.clk.Now) }

// uiSource is the web UI's view of the API.
type uiSource struct{ s *Server }

func (u uiSource) Runs(ctx context.Context, q url.Values) ([]apitype.Run, error) {
	return u.s.runsList(ctx, q)
}

func (u uiSource) Run(ctx context.Context, id string, q apitype.PageQuery) (apitype.RunPage, error) {
	return u.s.runPage(ctx, id, q)
}

func (u uiSource) Logs(ctx context.Context, id string, q url.Values) ([]apitype.Log, error) {
	return u.s.logsList(ctx, id, q)
}

func (u uiSource) History(ctx context.Context, id string, after int64, limit int) (apitype.HistoryPage, error) {
	run, err := u.s.lookupRun(ctx, id)
	if err != nil {
		return apitype.HistoryPage{}, err
	}
	return api.HistoryPage(ctx, u.s.st, run.ID, after, limit)
}

func (u uiSource) Attempts(ctx context.Context, id string, q url.Values) (apitype.AttemptsComparison, error) {
	return u.s.attemptsOf(ctx, id, q)
}

func (u uiSource) TaskRun(ctx context.Context, id, taskRunID string) (apitype.TaskRunDetail, error) {
	return u.s.taskRunDetail(ctx, id, taskRunID)
}

func (u uiSource) Inbox(ctx context.Context, runID string) (apitype.Inbox, error) {
	return api.Inbox(ctx, u.s.st, u.s.cfg.Blobs, runID)
}

func (u uiSource) Workers(ctx context.Context) ([]apitype.Worker, error) { return u.s.workersList(ctx) }

func (u uiSource) Queues(ctx context.Context) ([]apitype.Queue, error) { return u.s.queuesList(ctx) }

func (u uiSource) Deployments(ctx context.Context) ([]apitype.Deployment, error) {
	return u.s.deploymentsList(ctx)
}

func (u uiSource) Deployment(ctx context.Context, name string) (apitype.Deployment, error) {
	return u.s.deploymentView(ctx, name)
}

func (u uiSource) DeploymentNext(ctx context.Context, name string, count int) (apitype.DeploymentNext, error) {
	return u.s.deploymentNext(ctx, name, count)
}

func (u uiSource) Flows(ctx context.Context) ([]apitype.Flow, error) { return u.s.flowsList(ctx) }

func (u uiSource) Flow(ctx context.Context, name string) (apitype.Flow, error) {
	return u.s.flowGet(ctx, name)
}

func (u uiSource) Limits(ctx context.Context) ([]apitype.Limit, error) { return u.s.limitsList(ctx) }

func (u uiSource) RunStats(ctx context.Context, q url.Values) (apitype.RunStats, error) {
	return u.s.runStats(ctx, q.Get)
}

// HTTPStatus is the status of an API error, for the UI's error pages.
func (e *httpError) HTTPStatus() int { return e.status }

// runsList reads GET /api/v1/runs for the query q.
func (s *Server) runsList(ctx context.Context, q url.Values) ([]apitype.Run, error) {
	p := store.RunListParams{Flow: q.Get("flow"), Queue: q.Get("queue"), Search: strings.TrimSpace(q.Get("q"))}
	for _, k := range []string{"flow", "queue", "q"} {
		if err := store.CheckIdentifier(fmt.Sprintf("query parameter %q", k), q.Get(k)); err != nil {
			return nil, errBadRequest("%v", err)
		}
	}
	if err := runFilters(q.Get, &p); err != nil {
		return nil, err
	}
	late := strings.EqualFold(q.Get("state"), apitype.RunLate)
	if st := q.Get("state"); st != "" && !late {
		state := store.RunState(strings.ToUpper(st))
		if !slices.Contains(store.RunStates, state) {
			return nil, errBadRequest("query parameter \"state\": unknown state %q; valid states: %v and LATE", st, store.RunStates)
		}
		p.State = state
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 10000 {
			return nil, errBadRequest("query parameter \"limit\" must be an integer from 1 to 10000, got %q", l)
		}
		p.Limit = n
	}
	if o := q.Get("offset"); o != "" {
		n, err := strconv.Atoi(o)
		if err != nil || n < 0 {
			return nil, errBadRequest("query parameter \"offset\" must be a non-negative integer, got %q", o)
		}
		p.Offset = n
	}
	if late {
		return s.lateRuns(ctx, p)
	}
	runs, err := s.st.RunList(ctx, p)
	if err != nil {
		return nil, err
	}
	views := make([]apitype.Run, len(runs))
	for i, run := range runs {
		views[i] = s.runView(ctx, run)
	}
	return views, nil
}

// runPage reads GET /api/v1/runs/{id} with the paging query q.
func (s *Server) runPage(ctx context.Context, id string, q apitype.PageQuery) (apitype.RunPage, error) {
	run, err := s.lookupRun(ctx, id)
	if err != nil {
		return apitype.RunPage{}, err
	}
	d, _, err := api.RunPage(ctx, s.st, run, q, s.cfg.Blobs)
	if err != nil {
		return apitype.RunPage{}, err
	}
	d.Queue, d.WorkerID = run.Queue, run.WorkerID
	if run.State == store.RunScheduled {
		d.WaitingReason = s.waitingReason(ctx, run)
	}
	if q.Summary {
		if d.ParametersSchema, err = s.parametersSchema(ctx, run.Flow); err != nil {
			return apitype.RunPage{}, err
		}
	}
	return d, nil
}

// logsList reads GET /api/v1/runs/{id}/logs for the query q.
func (s *Server) logsList(ctx context.Context, id string, q url.Values) ([]apitype.Log, error) {
	run, err := s.lookupRun(ctx, id)
	if err != nil {
		return nil, err
	}
	p, err := logParams(run, q, true)
	if err != nil {
		return nil, err
	}
	logs, err := s.st.LogList(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]apitype.Log, len(logs))
	for i, l := range logs {
		out[i] = api.LogJSON(l)
	}
	return out, nil
}

// workersList reads GET /api/v1/workers.
func (s *Server) workersList(ctx context.Context) ([]apitype.Worker, error) {
	workers, err := s.st.WorkerList(ctx, s.clk.Now().Add(-s.cfg.LeaseTimeout))
	if err != nil {
		return nil, err
	}
	held := map[string][]string{}
	for _, state := range store.LeasedRunStates {
		runs, err := s.st.RunList(ctx, store.RunListParams{State: state, Limit: 10000})
		if err != nil {
			return nil, err
		}
		for _, run := range runs {
			if run.WorkerID != "" {
				held[run.WorkerID] = append(held[run.WorkerID], run.ID)
			}
		}
	}
	out := make([]apitype.Worker, len(workers))
	for i, wk := range workers {
		out[i] = api.WorkerJSON(wk, held[wk.ID])
	}
	return out, nil
}

// queuesList reads GET /api/v1/queues.
func (s *Server) queuesList(ctx context.Context) ([]apitype.Queue, error) {
	return api.QueueList(ctx, s.st, s.clk.Now().Add(-store.LiveWorkerWindow))
}

func (s *Server) inbox(w http.ResponseWriter, r *http.Request) error {
	runID := r.URL.Query().Get("run")
	if err := checkIdentifiers(identifier{"run", "run id", runID}); err != nil {
		return err
	}
	in, err := api.Inbox(r.Context(), s.st, s.cfg.Blobs, runID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, in)
}

// streamLogBatch bounds the log lines of one "logs" event.
const streamLogBatch = 500

// sse writes Server-Sent Events.
type sse struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

// startSSE answers with an event stream, with no write deadline (the
// server's WriteTimeout is for requests, not for streams).
func startSSE(w http.ResponseWriter) (*sse, error) {
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{})
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	e := &sse{w: w, rc: rc}
	if _, err := fmt.Fprint(w, "retry: 2000\n\n"); err != nil {
		return nil, err
	}
	return e, rc.Flush()
}

// send writes one event of JSON data (id, when set, is its Last-Event-ID).
func (e *sse) send(event, id string, data []byte) error {
	var b bytes.Buffer
	b.WriteString("event: " + event + "\n")
	if id != "" {
		b.WriteString("id: " + id + "\n")
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(line)
		b.WriteString("\n")
	}
	b.WriteString("\n")
	if _, err := e.w.Write(b.Bytes()); err != nil {
		return err
	}
	return e.rc.Flush()
}

// ping keeps the connection alive through proxies.
func (e *sse) ping() error {
	if _, err := fmt.Fprint(e.w, ": ping\n\n"); err != nil {
		return err
	}
	return e.rc.Flush()
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// follow calls look now and after every change notification until it
// returns done or an error, or the client goes: a stream re-reads at most
// once per change (changes during a read share the next one) and, without
// notifications, every PollInterval (which also pings the client).
func (s *Server) follow(ctx context.Context, e *sse, look func() (done bool, err error)) error {
	for {
		ch := s.changeSig.wait()
		done, err := look()
		if err != nil || done || s.isStopping() {
			return err
		}
		t := s.clk.NewTimer(s.cfg.PollInterval)
		select {
		case <-ch:
		case <-t.Chan():
			if err := e.ping(); err != nil {
				t.Stop()
				return err
			}
		case <-ctx.Done():
			t.Stop()
			return nil
		}
		t.Stop()
	}
}

// streamRuns streams the runs list of the request's filters.
func (s *Server) streamRuns(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q := r.URL.Query()
	if _, err := s.runsList(ctx, q); err != nil { // refuse bad filters before streaming
		return err
	}
	e, err := startSSE(w)
	if err != nil {
		return err
	}
	var last []byte
	return s.follow(ctx, e, func() (bool, error) {
		runs, err := s.runsList(ctx, q)
		if err != nil {
			return false, err
		}
		data := marshal(map[string]any{"runs": runs})
		if bytes.Equal(data, last) {
			return false, nil
		}
		last = data
		return false, e.send("runs", "", data)
	})
}

// streamRun streams a run's state and counts and its new log lines.
func (s *Server) streamRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	after := r.URL.Query().Get("after")
	if id := r.Header.Get("Last-Event-ID"); id != "" {
		after = id
	}
	task, taskRun := r.URL.Query().Get("task"), r.URL.Query().Get("task_run")
	for k, v := range map[string]string{"task": task, "task_run": taskRun} {
		if err := store.CheckIdentifier(fmt.Sprintf("query parameter %q", k), v); err != nil {
			return errBadRequest("%v", err)
		}
	}
	var cursor int64
	if after != "" {
		if cursor, err = strconv.ParseInt(after, 10, 64); err != nil || cursor < 0 {
			return errBadRequest("query parameter \"after\" must be a non-negative integer (the id of the last log read), got %q", after)
		}
	}
	e, err := startSSE(w)
	if err != nil {
		return err
	}
	var last []byte
	return s.follow(ctx, e, func() (bool, error) {
		run, err := s.st.RunGet(ctx, run.ID)
		if err != nil {
			return false, err
		}
		counts, err := s.st.TaskRunCounts(ctx, run.ID)
		if err != nil {
			return false, err
		}
		v := apitype.StreamRun{Run: s.runView(ctx, run), Counts: make([]apitype.TaskRunCount, len(counts))}
		for i, c := range counts {
			v.Counts[i] = apitype.TaskRunCount{Task: c.Task, State: string(c.State), N: c.N}
			v.TaskRunsTotal += c.N
		}
		for {
			logs, err := s.st.LogList(ctx, store.LogListParams{RunID: run.ID, TaskKey: task, TaskRunID: taskRun, After: cursor, Limit: streamLogBatch})
			if err != nil {
				return false, err
			}
			if len(logs) == 0 {
				break
			}
			out := make([]apitype.Log, len(logs))
			for i, l := range logs {
				out[i] = api.LogJSON(l)
			}
			cursor = logs[len(logs)-1].ID
			if err := e.send("logs", strconv.FormatInt(cursor, 10), marshal(map[string]any{"logs": out})); err != nil {
				return false, err
			}
			if len(logs) < streamLogBatch {
				break
			}
		}
		if data := marshal(v); !bytes.Equal(data, last) {
			last = data
			if err := e.send("run", "", data); err != nil {
				return false, err
			}
		}
		if run.State.Final() {
			return true, e.send("end", "", marshal(map[string]string{"state": string(run.State)}))
		}
		return false, nil
	})
}
