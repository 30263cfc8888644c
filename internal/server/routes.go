package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/engine"
	"github.com/batonhq/baton/internal/params"
	"github.com/batonhq/baton/internal/store"
)

// route is one endpoint: the mux pattern, its handler and what the OpenAPI
// document says about it. The document is generated from this table, so it
// cannot drift from the handlers.
type route struct {
	method, pattern string
	summary         string
	tag             string
	request         string // schema name of the JSON body, "" for none
	optionalBody    bool   // the body may be left out
	response        string // schema name of the 2xx body
	status          int    // success status (200 when zero)
	query           []string
	handle          handler
	// maxBody, when set, bounds the request body instead of MaxBodyBytes.
	maxBody func(Config) int64
	// stream marks a text/event-stream response (Server-Sent Events).
	stream bool
	// produces, when set, is the media type of a 2xx body that is not
	// JSON (a download).
	produces string
	// quiet marks a write that changes no run (heartbeats): it does not
	// wake the web UI's streams.
	quiet bool
}

func (s *Server) routeTable() []route {
	p := apitype.Prefix
	return slices.Concat(s.coreRoutes(p), s.deploymentRoutes(), s.uiRoutes(), s.graphRoutes(), s.runDetailRoutes(), s.uiPageRoutes(), s.flowRoutes())
}

func (s *Server) coreRoutes(p string) []route {
	return []route{
		{method: "GET", pattern: "/healthz", summary: "Liveness: the process serves requests", tag: "health", response: "Status", handle: s.healthz},
		{method: "GET", pattern: "/readyz", summary: "Readiness: the database answers", tag: "health", response: "Status", handle: s.readyz},
		{method: "GET", pattern: p + "/openapi.json", summary: "This document", tag: "health", response: "Object", handle: s.openapi},

		{method: "POST", pattern: p + "/runs", summary: "Create a flow run (idempotent with idempotency_key)", tag: "runs", request: "CreateRun", response: "Run", status: 201, handle: s.createRun},
		{method: "GET", pattern: p + "/runs", summary: "List runs, newest first (filters flow, state, queue, q: text in the id, flow or parameters; page with limit and offset)", tag: "runs", query: apitype.RunsQueryParams, response: "RunList", handle: s.listRuns},
		{method: "GET", pattern: p + "/runs/{id}", summary: "A run with its task runs and history (paged and summarised with the query)", tag: "runs", query: apitype.PageQueryParams, response: "RunDetail", handle: s.getRun},
		{method: "GET", pattern: p + "/runs/{id}/logs", summary: "A run's logs, oldest first, filtered on the server (task: a step key; task_run: a task run id; q: text in the message, ASCII case-insensitive; level: the lowest level, DEBUG, INFO, WARN or ERROR) and paged (after: the id of the last log read; limit)", tag: "runs", query: apitype.LogsQueryParams, response: "LogList", handle: s.runLogs},
		{method: "GET", pattern: p + "/runs/{id}/history", summary: "A run's append-only history, oldest first, paged with after (the seq of the last entry read) and limit", tag: "runs", query: apitype.HistoryQueryParams, response: "HistoryPage", handle: s.runHistory},
		{method: "POST", pattern: p + "/runs/{id}/cancel", summary: "Cancel a run", tag: "runs", response: "Run", handle: s.cancelRun},
		{method: "POST", pattern: p + "/runs/{id}/pause", summary: "Pause a running run at its next step boundary (409 for a finished run; a PAUSED run is left as it is)", tag: "runs", request: "PauseRun", optionalBody: true, response: "Run", handle: s.pauseRun},
		{method: "POST", pattern: p + "/runs/{id}/update", summary: "Change the parameters of a running or paused run, read by the flow with baton.Settings (400 naming the parameter, 409 for a finished run)", tag: "runs", request: "UpdateRun", response: "Run", handle: s.updateRun},
		{method: "POST", pattern: p + "/runs/{id}/input", summary: "Send input to a run's wait (WaitForInput), or resume a Pause; 422 lists every violation of the wait's JSON Schema", tag: "runs", request: "InputRequest", response: "InputResult", handle: s.runInput},
		{method: "POST", pattern: p + "/events", summary: "Send an event to the runs that wait for it (WaitForEvent); kept 24 h for waits that begin later", tag: "events", request: "EventRequest", response: "EventResult", handle: s.sendEvent},
		{method: "POST", pattern: p + "/runs/{id}/retry", summary: "Schedule a new attempt of a FAILED, CANCELLED or CRASHED run, with edited parameters when given", tag: "runs", request: "RetryRun", optionalBody: true, response: "Run", handle: s.retryRun},
		{method: "GET", pattern: p + "/workers", summary: "Live workers", tag: "workers", response: "WorkerList", handle: s.listWorkers},
		{method: "GET", pattern: p + "/queues", summary: "Queues: depths, priority and pause, of every declared queue and every queue with work or a live worker", tag: "queues", response: "QueueList", handle: s.listQueues},
		{method: "POST", pattern: p + "/queues", summary: "Declare a work queue (priority, concurrency limit, description); 409 when it is declared already; 400 naming the field for a negative limit", tag: "queues", request: "QueueRequest", response: "QueueInfo", status: 201, handle: s.setQueue(true, "")},
		{method: "GET", pattern: p + "/queues/{name}", summary: "A queue: depths, priority and pause", tag: "queues", response: "QueueInfo", handle: s.getQueue},
		{method: "POST", pattern: p + "/queues/{name}", summary: "Change a queue's priority, concurrency limit or description (declaring it if it was implicit)", tag: "queues", request: "QueueRequest", optionalBody: true, response: "QueueInfo", handle: s.setQueue(false, "")},
		{method: "POST", pattern: p + "/queues/{name}/pause", summary: "Pause a queue: claims hand out nothing of it until it is resumed", tag: "queues", request: "QueueRequest", optionalBody: true, response: "QueueInfo", handle: s.setQueue(false, "pause")},
		{method: "POST", pattern: p + "/queues/{name}/resume", summary: "Resume a paused queue", tag: "queues", request: "QueueRequest", optionalBody: true, response: "QueueInfo", handle: s.setQueue(false, "resume")},
		{method: "GET", pattern: p + "/limits", summary: "Tag concurrency limits, each with the task runs holding its slots", tag: "limits", response: "LimitList", handle: s.listLimits},
		{method: "GET", pattern: p + "/limits/{tag}", summary: "A tag's concurrency limit with the task runs holding its slots", tag: "limits", response: "Limit", handle: s.getLimit},
		{method: "PUT", pattern: p + "/limits/{tag}", summary: "Set a tag's concurrency limit: at most limit task runs with the tag RUNNING at once, anywhere (400 naming the field for a negative limit)", tag: "limits", request: "SetLimit", response: "Limit", handle: s.setLimit},
		{method: "DELETE", pattern: p + "/limits/{tag}", summary: "Remove a tag's concurrency limit", tag: "limits", status: 204, handle: s.deleteLimit},
		{method: "POST", pattern: p + "/retention", summary: "Delete finished runs older than older_than now", tag: "retention", request: "Retention", response: "RetentionResult", handle: s.retention},

		{method: "POST", pattern: p + "/workers", summary: "Register a worker", tag: "worker protocol", request: "RegisterWorker", response: "Registered", status: 201, handle: s.registerWorker},
		{method: "POST", pattern: p + "/workers/{id}/heartbeat", summary: "Keep a worker's leases; returns runs to cancel (long poll with wait_ms)", tag: "worker protocol", request: "HeartbeatRequest", response: "Heartbeat", handle: s.heartbeat, quiet: true},
		{method: "DELETE", pattern: p + "/workers/{id}", summary: "Deregister a worker and release what it holds", tag: "worker protocol", status: 204, handle: s.deregister},
		{method: "POST", pattern: p + "/workers/{id}/claim", summary: "Claim flow runs and task runs (long poll)", tag: "worker protocol", request: "Claim", response: "Claimed", handle: s.claim},
		{method: "POST", pattern: p + "/workers/{id}/holding", summary: "Report what the worker holds; the rest of its claims go back to their queues", tag: "worker protocol", request: "Holding", status: 204, handle: s.holding},
		{method: "POST", pattern: p + "/workers/{id}/runs/{run}/give-back", summary: "Give back a run the worker cannot go on executing: it is crashed and rescheduled from its journal at once", tag: "worker protocol", request: "GiveBack", status: 204, handle: s.giveBack},
		{method: "POST", pattern: p + "/workers/{id}/complete", summary: "Report finished task runs", tag: "worker protocol", request: "Complete", response: "Completed", handle: s.complete},

		{method: "POST", pattern: p + "/engine/batch", summary: "Write a batch of records", tag: "engine protocol", request: "Batch", status: 204, handle: s.engineBatch},
		{method: "POST", pattern: p + "/engine/runs", summary: "Create a run", tag: "engine protocol", request: "RunCreateParams", response: "CreatedRun", handle: s.engineRunCreate},
		{method: "GET", pattern: p + "/engine/runs/{id}", summary: "Read a run record", tag: "engine protocol", response: "RunRecord", handle: s.engineRunGet},
		{method: "POST", pattern: p + "/engine/runs/{id}/transition", summary: "Conditional state change of a run", tag: "engine protocol", request: "RunTransitionParams", response: "RunRecord", handle: s.engineTransition},
		{method: "GET", pattern: p + "/engine/runs/{id}/child", summary: "The subflow run of a step", tag: "engine protocol", query: []string{"key"}, response: "RunRecord", handle: s.engineChild},
		{method: "GET", pattern: p + "/engine/runs/{id}/journal", summary: "A run's journal", tag: "engine protocol", response: "Journal", handle: s.engineJournal},
		{method: "GET", pattern: p + "/engine/cache", summary: "A cache entry", tag: "engine protocol", query: []string{"key"}, response: "CacheEntry", handle: s.engineCache},
		{method: "POST", pattern: p + "/engine/waits", summary: "Begin a wait step", tag: "engine protocol", request: "WaitBeginParams", response: "TaskRunRecord", handle: s.engineWaitBegin},
		{method: "POST", pattern: p + "/engine/slots", summary: "Take the tag-limit slots of a task run executed in the flow's own process (written RUNNING with a lease only when every limited tag has a free slot)", tag: "engine protocol", request: "SlotAcquireParams", response: "SlotAcquired", handle: s.engineSlotAcquire},
		{method: "POST", pattern: p + "/engine/slots/renew", summary: "Extend the lease of such a task run's slots", tag: "engine protocol", request: "SlotRenewParams", status: 204, handle: s.engineSlotRenew},
		{method: "POST", pattern: p + "/engine/finished", summary: "Wait for task runs to finish (long poll)", tag: "engine protocol", request: "Finished", response: "FinishedResult", handle: s.engineFinished},
		{method: "PUT", pattern: p + "/blobs", summary: "Store a large value (a result, or the large parts of an input)", tag: "engine protocol", response: "BlobRef", status: 201, handle: s.putBlob,
			maxBody: func(c Config) int64 { return c.MaxBlobBytes }},
		{method: "GET", pattern: p + "/blobs/{ref}", summary: "Read a large value", tag: "engine protocol", handle: s.getBlob},
	}
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, 200, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if _, err := s.st.RunList(ctx, store.RunListParams{Limit: 1}); err != nil {
		return &httpError{http.StatusServiceUnavailable, apitype.CodeUnavailable, "database not ready: " + err.Error()}
	}
	s.mu.Lock()
	stopping := s.stopping
	s.mu.Unlock()
	if stopping {
		return &httpError{http.StatusServiceUnavailable, apitype.CodeUnavailable, "server is shutting down"}
	}
	return writeJSON(w, 200, map[string]string{"status": "ready"})
}

// --- runs ---

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	var req apitype.CreateRunRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if strings.TrimSpace(req.Flow) == "" {
		return errBadRequest("field \"flow\" is required: the name of the flow to run")
	}
	if req.Queue == "" {
		req.Queue = apitype.DefaultQueue
	}
	for _, f := range []struct{ name, value string }{{"flow", req.Flow}, {"queue", req.Queue}, {"idempotency_key", req.IdempotencyKey}} {
		if err := store.CheckIdentifier(fmt.Sprintf("field %q", f.name), f.value); err != nil {
			return errBadRequest("%v", err)
		}
	}
	params, err := s.checkParams(r.Context(), req.Flow, req.Parameters)
	if err != nil {
		return err
	}
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	now := s.clk.Now()
	run, created, err := s.st.RunCreate(r.Context(), store.RunCreateParams{Actor: actor,
		Run: store.Run{ID: uuid.Must(uuid.NewV7()).String(), Flow: req.Flow, State: store.RunScheduled, Attempt: 1,
			Parameters: params, Queue: req.Queue, IdempotencyKey: req.IdempotencyKey, CreatedAt: now, UpdatedAt: now},
		Cause: "user", Message: "created through the API on queue " + req.Queue,
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if created {
		s.runsSig.notify() // see wakeForBatch
	}
	if !created {
		// The store resolved the key atomically and returned the run that
		// holds it; its flow, queue and parameters never change, so
		// comparing them here is race-free.
		if diff := idempotencyDiff(run, req, params); diff != "" {
			return &httpError{http.StatusConflict, apitype.CodeIdempotencyConflict, fmt.Sprintf(
				"idempotency key %q belongs to run %s, created with a different request: %s; repeat the same request to get that run, or use another key",
				req.IdempotencyKey, run.ID, diff)}
		}
		status = http.StatusOK
	}
	return writeJSON(w, status, s.createdView(run))
}

// idempotencyDiff says how a create request differs from the run that
// already holds its idempotency key ("" when it is the same request).
// params are the request's parameters as they would have been recorded.
func idempotencyDiff(run store.Run, req apitype.CreateRunRequest, merged json.RawMessage) string {
	var diffs []string
	if run.Flow != req.Flow {
		diffs = append(diffs, fmt.Sprintf("flow %q, not %q", run.Flow, req.Flow))
	}
	queue := run.Queue
	if queue == "" {
		queue = apitype.DefaultQueue
	}
	if queue != req.Queue {
		diffs = append(diffs, fmt.Sprintf("queue %q, not %q", queue, req.Queue))
	}
	if !params.SameJSON(run.Parameters, merged) && !params.SameJSON(run.Parameters, req.Parameters) {
		diffs = append(diffs, fmt.Sprintf("parameters %s, not %s", clip(run.Parameters), clip(req.Parameters)))
	}
	return strings.Join(diffs, "; ")
}

// clip shows a JSON document in a message, shortened.
func clip(raw json.RawMessage) string {
	s := string(bytes.TrimSpace(raw))
	if s == "" {
		s = "null"
	}
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

// runView renders a run, saying why a SCHEDULED run waits.
func (s *Server) runView(ctx context.Context, run store.Run) apitype.Run {
	v := s.createdView(run)
	if run.State == store.RunScheduled || run.State == store.RunAwaitingSlot {
		v.WaitingReason = s.waitingReason(ctx, run)
	}
	return v
}

// createdView renders a run as POST /api/v1/runs answers: without its
// waiting reason. A run just created has not been offered to a worker yet,
// and the reason reads the live workers, the queue and the runs ahead of
// it: five reads, one of them counting the queue's backlog, which doubled
// the cost of every create in a burst (docs/performance.md, "Creating
// runs"). GET /api/v1/runs/{id} says why it waits; `runs create` reads it
// there.
func (s *Server) createdView(run store.Run) apitype.Run {
	v := api.RunJSON(run, s.cfg.Blobs)
	s.lateView(&v)
	return v
}

// waitingReason says what a run waits for (api.WaitingReason).
func (s *Server) waitingReason(ctx context.Context, run store.Run) string {
	return api.WaitingReason(ctx, s.st, run, s.clk.Now().Add(-s.cfg.LeaseTimeout))
}

func (s *Server) listRuns(w http.ResponseWriter, r *http.Request) error {
	views, err := s.runsList(r.Context(), r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, map[string]any{"runs": views})
}

func (s *Server) lookupRun(ctx context.Context, id string) (store.Run, error) {
	if err := store.CheckIdentifier("run id", id); err != nil {
		return store.Run{}, errBadRequest("%v", err)
	}
	run, err := s.st.RunGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return run, errNotFound("unknown run id %q", id)
	}
	return run, err
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if q, paged, err := apitype.ParsePageQuery(r.URL.Query()); err != nil {
		return errBadRequest("%v", err)
	} else if paged {
		// A page (and a summary) read as such: a run of 200,000 steps
		// is not read whole.
		d, _, err := api.RunPage(ctx, s.st, run, q, s.cfg.Blobs)
		if err != nil {
			return err
		}
		d.Queue, d.WorkerID = run.Queue, run.WorkerID
		if run.State == store.RunScheduled || run.State == store.RunAwaitingSlot || q.Summary {
			// A page without the summary is what clients poll (WaitRun):
			// the task runs' reason is read only for a summary.
			d.WaitingReason = s.waitingReason(ctx, run)
		}
		s.explainPlacement(ctx, run, &d.RunDetail)
		s.lateView(&d.Run)
		if q.Summary {
			if d.ParametersSchema, err = s.parametersSchema(ctx, run.Flow); err != nil {
				return err
			}
		}
		return writeJSON(w, 200, d)
	}
	trs, err := s.st.TaskRunList(ctx, store.TaskRunListParams{RunID: run.ID})
	if err != nil {
		return err
	}
	evs, err := s.st.EventList(ctx, run.ID)
	if err != nil {
		return err
	}
	d := api.RunDetailJSON(run, trs, evs, s.cfg.Blobs)
	d.Queue, d.WorkerID = run.Queue, run.WorkerID
	d.WaitingReason = s.waitingReason(ctx, run)
	s.explainPlacement(ctx, run, &d)
	s.lateView(&d.Run)
	return writeJSON(w, 200, d)
}

func (s *Server) runLogs(w http.ResponseWriter, r *http.Request) error {
	out, err := s.logsList(r.Context(), r.PathValue("id"), r.URL.Query())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, map[string]any{"logs": out})
}

// runHistory serves a page of a run's history.
func (s *Server) runHistory(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	var after int64
	if a := q.Get("after"); a != "" {
		if after, err = strconv.ParseInt(a, 10, 64); err != nil || after < 0 {
			return errBadRequest("query parameter \"after\" must be a non-negative integer (the seq of the last entry read), got %q", a)
		}
	}
	limit := 0
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > api.MaxHistoryLimit {
			return errBadRequest("query parameter \"limit\" must be an integer from 1 to %d, got %q", api.MaxHistoryLimit, l)
		}
		limit = n
	}
	page, err := api.HistoryPage(ctx, s.st, run.ID, after, limit)
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("unknown run id %q", run.ID) // deleted meanwhile
	}
	if err != nil {
		return err
	}
	return writeJSON(w, 200, page)
}

// apiActor is who a request acts for, for the histories of the runs it
// changes: the name in the X-Baton-Actor header, else by (a request
// field that older clients send), else "anonymous"; never verified. A
// name that is not a valid identifier is a 400.
func apiActor(r *http.Request, by string) (store.Actor, error) {
	name := strings.TrimSpace(r.Header.Get(apitype.ActorHeader))
	if err := store.CheckIdentifier("header "+apitype.ActorHeader, name); err != nil {
		return store.Actor{}, errBadRequest("%v", err)
	}
	if name == "" {
		name = strings.TrimSpace(by)
	}
	if name == "" {
		name = "anonymous"
	}
	return store.Actor{Name: name}, nil
}

// runInput delivers input to a run's wait (api.SendInput).
func (s *Server) runInput(w http.ResponseWriter, r *http.Request) error {
	var req apitype.InputRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	who, err := apiActor(r, "")
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := checkIdentifiers(identifier{"id", "run id", id}); err != nil {
		return err
	}
	res, err := api.SendInput(r.Context(), s.st, id, req, who)
	if err != nil {
		return inputError(id, err)
	}
	return writeJSON(w, 200, res)
}

// pauseRun asks a run to pause at its next step boundary (api.PauseRun).
func (s *Server) pauseRun(w http.ResponseWriter, r *http.Request) error {
	var req apitype.PauseRunRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	who, err := apiActor(r, "")
	if err != nil {
		return err
	}
	run, err := s.lookupRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	run, err = api.PauseRun(r.Context(), s.st, run.ID, req, who)
	if err != nil {
		return inputError(run.ID, err)
	}
	return writeJSON(w, 200, s.runView(r.Context(), run))
}

// updateRun changes a running or paused run's parameters (api.UpdateRun),
// validated against its flow's schema as a retry's edit is.
func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) error {
	var req apitype.UpdateRunRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	who, err := apiActor(r, "")
	if err != nil {
		return err
	}
	run, err := s.lookupRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	run, err = api.UpdateRun(r.Context(), s.st, run.ID, req, who, s.editParams)
	if err != nil {
		return inputError(run.ID, err)
	}
	return writeJSON(w, 200, s.runView(r.Context(), run))
}

// inputError maps the refusals of api.SendInput and api.SendEvent to
// their statuses: 422 for a value its schema refuses, 400 for bad input.
func inputError(runID string, err error) error {
	var ve *params.ValidationError
	var bad *api.BadInputError
	switch {
	case errors.As(err, &ve):
		return &httpError{http.StatusUnprocessableEntity, apitype.CodeInvalidInput, api.InputErrorMessage(runID, err)}
	case errors.As(err, &bad):
		return errBadRequest("%v", err)
	}
	return err
}

// sendEvent records an event and wakes the waits it matches (api.SendEvent).
func (s *Server) sendEvent(w http.ResponseWriter, r *http.Request) error {
	var req apitype.EventRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	who, err := apiActor(r, "")
	if err != nil {
		return err
	}
	res, err := api.SendEvent(r.Context(), s.st, req, who)
	if err != nil {
		return inputError("", err)
	}
	return writeJSON(w, 200, res)
}

// cancelRun cancels a run: one that has not started (SCHEDULED, claimed but
// not started, waiting for a retry or paused) becomes CANCELLED at once; a
// RUNNING one becomes CANCELLING, and whoever executes it stops it: its
// worker, told through heartbeats, or the local process that runs it, which
// watches its run in the store. A subflow is cancelled through its parent.
func (s *Server) cancelRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	if run.ParentRunID != "" && !run.State.Final() {
		return errConflict("run %s is a subflow of run %s, which executes it: cancel run %s", run.ID,
			run.ParentRunID, run.ParentRunID)
	}
	if run.WorkerID == "" {
		// A local run whose process on this host is gone cannot be
		// stopped: it is CRASHED (and a finished run is not cancelled).
		if run, err = engine.Reconcile(ctx, s.st, run); err != nil {
			return err
		}
	}
	var updated store.Run
	for try := 0; ; try++ {
		p := store.RunTransitionParams{ID: run.ID, From: []store.RunState{run.State}, Cause: "user",
			Message: "cancel requested through the API", Actor: actor}
		switch {
		case run.State == store.RunAwaitingRetry && run.WorkerID != "":
			// Its worker waits out the retry delay: it stops and ends it.
			p.To = store.RunCancelling
		case run.State == store.RunScheduled, run.State == store.RunPending, run.State == store.RunAwaitingRetry,
			run.State == store.RunPaused:
			p.To = store.RunCancelled
			p.Error = &store.ErrorInfo{Message: "cancelled by a user before it ran", Kind: "cancelled"}
		case run.State == store.RunRunning:
			p.To = store.RunCancelling
		case run.State == store.RunCancelling:
			return writeJSON(w, 200, s.runView(ctx, run))
		default:
			return errConflict("run %s is %s: a finished run cannot be cancelled", run.ID, run.State)
		}
		updated, err = s.st.RunTransition(ctx, p)
		if errors.Is(err, store.ErrConflict) && try < 3 {
			// Its worker started it (or it ended) meanwhile: decide again.
			if run, err = s.lookupRun(ctx, run.ID); err != nil {
				return err
			}
			continue
		}
		if errors.Is(err, store.ErrConflict) {
			return errConflict("run %s changed state while cancelling (%v); try again", run.ID, err)
		}
		if err != nil {
			return err
		}
		break
	}
	if updated.State == store.RunCancelling {
		s.addStops(store.RunStop{RunID: updated.ID, Attempt: updated.Attempt})
	}
	return writeJSON(w, 200, s.runView(ctx, updated))
}

// retryRun schedules a new attempt of a finished run. The optional body
// edits its parameters: they are merged over the run's and validated as
// those of a new run are (400 naming the parameter, nothing changed), and
// the edit is recorded with who asked.
func (s *Server) retryRun(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var req apitype.RetryRunRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	if err := store.CheckIdentifier(`field "by"`, req.By); err != nil {
		return errBadRequest("%v", err)
	}
	actor, err := apiActor(r, req.By)
	if err != nil {
		return err
	}
	run, err := s.lookupRun(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if run.ParentRunID != "" {
		return errConflict("run %s is a subflow of run %s: retry the parent, which resumes it", run.ID, run.ParentRunID)
	}
	if run.Queue == "" {
		run.Queue = apitype.DefaultQueue
	}
	p := store.RunTransitionParams{
		ID: run.ID, From: []store.RunState{store.RunFailed, store.RunCancelled, store.RunCrashed}, Attempt: run.Attempt,
		To: store.RunScheduled, NextAttempt: true, Queue: run.Queue, Cause: "user", Message: "retry requested through the API on queue " + run.Queue,
		Actor: actor,
	}
	if given := bytes.TrimSpace(req.Parameters); len(given) > 0 && string(given) != "null" {
		edited, err := s.editParams(ctx, run, given)
		if err != nil {
			return err
		}
		if !params.SameJSON(edited, run.Parameters) {
			p.Parameters, p.EditBy = edited, apiUser(r, req.By)
			p.Message = engine.EditMessage(p.Message, p.EditBy, run.Parameters, edited)
		}
	}
	updated, err := s.st.RunTransition(ctx, p)
	if errors.Is(err, store.ErrConflict) {
		// Say what the run is now: a concurrent retry may have won.
		if cur, gerr := s.st.RunGet(ctx, run.ID); gerr == nil {
			if cur.Attempt > run.Attempt {
				return errConflict("run %s was retried by someone else first: it is %s now (attempt %d)", cur.ID, cur.State, cur.Attempt)
			}
			run = cur
		}
		return errConflict("run %s is %s: only FAILED, CANCELLED or CRASHED runs can be retried", run.ID, run.State)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, 200, s.runView(ctx, updated))
}

// apiUser names who asks through the API in records: the API does not
// authenticate, so it is the name the client gave (by; its CLI sends the
// OS user) and the address the request came from.
func apiUser(r *http.Request, by string) string {
	host := r.RemoteAddr
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if by == "" {
		by = "a user"
	}
	return by + " through the API from " + host
}

func (s *Server) listWorkers(w http.ResponseWriter, r *http.Request) error {
	out, err := s.workersList(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, map[string]any{"workers": out})
}

func (s *Server) retention(w http.ResponseWriter, r *http.Request) error {
	var req apitype.RetentionRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	age, err := api.ParseAge(req.OlderThan)
	if err != nil {
		return errBadRequest("older_than: %v", err)
	}
	res, err := s.RunRetention(r.Context(), age)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, res)
}

// --- worker protocol ---

func (s *Server) registerWorker(w http.ResponseWriter, r *http.Request) error {
	var req api.RegisterWorker
	if err := decode(r, &req); err != nil {
		return err
	}
	if len(req.Queues) == 0 {
		return errBadRequest("field \"queues\" must name at least one queue")
	}
	if req.Capacity < 0 {
		return errBadRequest("field \"capacity\" must not be negative")
	}
	ids := []identifier{{"name", "worker name", req.Name}, {"host", "host", req.Host}}
	for i, q := range req.Queues {
		ids = append(ids, identifier{fmt.Sprintf("queues[%d]", i), "queue", q})
	}
	for i, t := range req.Tasks {
		ids = append(ids, identifier{fmt.Sprintf("tasks[%d]", i), "task name", t})
	}
	for i, f := range req.Flows {
		ids = append(ids, identifier{fmt.Sprintf("flows[%d].name", i), "flow name", f.Name})
	}
	for q := range req.Slots {
		ids = append(ids, identifier{"slots", "queue", q})
	}
	if err := checkIdentifiers(ids...); err != nil {
		return err
	}
	if err := checkResources(req); err != nil {
		return err
	}
	now := s.clk.Now()
	schemas := make(map[string]flowSchema, len(req.Flows))
	var flows store.FlowUpsertParams
	for _, f := range req.Flows {
		rec, err := flowRecord(f, now)
		if err != nil {
			return errBadRequest("flow %s: parameter schema: %v", f.Name, err)
		}
		fs, err := newFlowSchema(rec, now)
		if err != nil {
			return errBadRequest("flow %s: parameter schema: %v", f.Name, err)
		}
		schemas[f.Name] = fs
		flows.Flows = append(flows.Flows, rec)
	}
	wk := store.Worker{ID: uuid.Must(uuid.NewV7()).String(), Name: req.Name, Host: req.Host, PID: req.PID,
		Queues: req.Queues, Tasks: req.Tasks, Capacity: req.Capacity, Slots: req.Slots, StartedAt: now, LastSeen: now,
		TaskSpecs: req.TaskSpecs}
	if req.Resources != nil {
		wk.Resources = *req.Resources
	}
	for _, f := range req.Flows {
		wk.Flows = append(wk.Flows, f.Name)
	}
	// The flows first: once the worker is registered it may claim runs,
	// and every server validates the runs created for them from the store.
	if err := s.st.FlowUpsert(r.Context(), flows); err != nil {
		return err
	}
	if err := s.st.WorkerUpsert(r.Context(), wk); err != nil {
		return err
	}
	s.mu.Lock()
	s.workers[wk.ID] = wk
	s.mu.Unlock()
	s.cacheFlows(schemas)
	return writeJSON(w, http.StatusCreated, api.Registered{ID: wk.ID,
		LeaseTimeoutMS: s.cfg.LeaseTimeout.Milliseconds(), HeartbeatIntervalMS: s.cfg.HeartbeatInterval.Milliseconds()})
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	var req api.HeartbeatRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	if req.WaitMS < 0 || req.WaitMS > 60000 {
		return errBadRequest("wait_ms must be from 0 to 60000")
	}
	if _, err := s.workerCached(r); err != nil {
		return err
	}
	s.mu.Lock()
	s.seen[id] = s.clk.Now()
	s.mu.Unlock()
	if req.WaitMS > 0 {
		// Hold the request while the list the worker has is current.
		timer := s.clk.NewTimer(api.Duration(req.WaitMS))
		defer timer.Stop()
		for {
			changed := s.stopSig.wait()
			s.mu.Lock()
			same := req.Generation == s.stopGen
			s.mu.Unlock()
			if !same || s.isStopping() {
				break
			}
			select {
			case <-changed:
				continue
			case <-timer.Chan():
			case <-r.Context().Done():
				return r.Context().Err()
			}
			break
		}
	}
	s.mu.Lock()
	hb := api.Heartbeat{Cancel: make([]string, 0, len(s.stops)), Attempts: make(map[string]int, len(s.stops)),
		Generation: s.stopGen}
	for runID, attempt := range s.stops {
		hb.Cancel = append(hb.Cancel, runID)
		hb.Attempts[runID] = attempt
	}
	s.mu.Unlock()
	return writeJSON(w, 200, hb)
}

func (s *Server) deregister(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := s.st.WorkerRelease(r.Context(), id); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.seen, id)
	delete(s.workers, id)
	if o, ok := s.wakes[id]; ok {
		close(o.ch)
		delete(s.wakes, id)
	}
	s.mu.Unlock()
	s.runsSig.notify()
	s.tasksSig.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) claim(w http.ResponseWriter, r *http.Request) error {
	var req api.Claim
	if err := decode(r, &req); err != nil {
		return err
	}
	store.UnwireCompletions(req.Completions)
	wk, err := s.workerCached(r)
	if err != nil {
		return err
	}
	if req.Runs < 0 || req.WaitMS < 0 || req.WaitMS > 60000 {
		return errBadRequest("runs must be >= 0 and wait_ms from 0 to 60000")
	}
	if req.Free != nil {
		if err := req.Free.Check(); err != nil {
			return errBadRequest("field \"free\": %v", err)
		}
	}
	if err := checkCompletions(wk.ID, req.Completions); err != nil {
		return err
	}
	ctx := r.Context()
	deadline := s.clk.Now().Add(api.Duration(req.WaitMS))
	s.mu.Lock()
	s.seen[wk.ID] = s.clk.Now()
	s.mu.Unlock()
	askRuns := req.Runs > 0 && len(wk.Flows) > 0
	askTasks := false
	for _, n := range req.Tasks {
		askTasks = askTasks || (n > 0 && len(wk.Tasks) > 0)
	}
	// The completions ride in the first claim: the slots they freed are
	// part of what the worker asks for now, and one transaction applies
	// them and claims.
	completions := req.Completions
	var applied []store.TaskRunRef
	for {
		// Only the notifications of what this claim asks for wake it.
		var runsCh, tasksCh <-chan struct{}
		if askRuns {
			runsCh = s.runsSig.wait()
		}
		if askTasks {
			tasksCh = s.tasksSig.wait()
		}
		mine, superseded := s.claimSeen(wk.ID, req.Seq)
		out, short, err := s.claimNow(ctx, wk, req, completions)
		if err != nil {
			return err
		}
		if completions != nil {
			applied, completions = out.Applied, nil
			if len(applied) > 0 {
				s.doneSig.notify() // see wakeForBatch
			}
		}
		out.Applied = applied
		wait := s.clk.Until(deadline)
		if len(out.Runs) > 0 || len(out.TaskRuns) > 0 {
			s.lastWork.Store(s.clk.Now().UnixNano()) // more may be waiting
		}
		if len(out.Runs) > 0 || len(out.TaskRuns) > 0 || wait <= 0 || superseded || s.isStopping() {
			if short && req.Seq > 0 {
				// The worker has capacity this claim could not fill; its
				// claims computed before this one may not ask for it (the
				// capacity was not free then): they answer, and the worker
				// asks again for all.
				s.supersedeClaims(wk.ID, req.Seq)
			}
			return writeJSON(w, 200, out)
		}
		recheck := s.cfg.PollInterval
		if s.clk.Since(time.Unix(0, s.lastWork.Load())) < 2*time.Second {
			recheck = min(recheck, 50*time.Millisecond)
		}
		t := s.clk.NewTimer(min(wait, recheck))
		select {
		case <-runsCh:
		case <-tasksCh:
		case <-mine: // superseded? Look again.
		case <-t.Chan():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// claimNow applies completions and claims for a worker what req asks,
// without waiting, in one transaction. short reports that it claimed fewer
// than asked. Paused queues hand out nothing; flow runs come from the
// worker's queues of the highest priority first: the queues of the next
// priority are claimed (in a transaction of their own) only for what the
// higher ones left of req.Runs.
func (s *Server) claimNow(ctx context.Context, wk store.Worker, req api.Claim, completions []store.TaskRunCompletion) (out api.Claimed, short bool, err error) {
	lease, at := s.clk.Now().Add(s.cfg.LeaseTimeout), s.clk.Now()
	p := store.ClaimParams{Completions: completions}
	declared := s.queues(ctx)
	groups := store.QueuesByPriority(wk.Queues, declared)
	if req.Free != nil {
		p.Free = *req.Free
	}
	if req.Runs > 0 && len(wk.Flows) > 0 && len(groups) > 0 {
		p.Runs = store.RunClaimParams{WorkerID: wk.ID, Queues: groups[0], Flows: wk.Flows, Limit: req.Runs, LeaseUntil: lease, At: at}
	}
	if len(wk.Tasks) > 0 {
		for queue, n := range req.Tasks {
			if declared[queue].Paused {
				continue
			}
			if n > 0 {
				p.Tasks = append(p.Tasks, taskClaims(wk, queue, n, lease, at)...)
			}
		}
	}
	res, err := s.st.Claim(ctx, p)
	if err != nil {
		return out, false, err
	}
	out = api.Claimed{Runs: append([]store.Run{}, res.Runs...), TaskRuns: []store.TaskRun{}, Applied: res.Applied}
	for _, g := range groups[min(1, len(groups)):] {
		left := p.Runs.Limit - len(out.Runs)
		if left < 1 {
			break
		}
		more, err := s.st.Claim(ctx, store.ClaimParams{Runs: store.RunClaimParams{WorkerID: wk.ID, Queues: g,
			Flows: wk.Flows, Limit: left, LeaseUntil: lease, At: at}})
		if err != nil {
			// What the first claim took is the worker's now: answer it.
			s.log.Warn("claim of lower-priority queues failed", "worker", wk.ID, "err", err)
			break
		}
		out.Runs = append(out.Runs, more.Runs...)
	}
	short = len(out.Runs) < p.Runs.Limit
	for i, trs := range res.TaskRuns {
		out.TaskRuns = append(out.TaskRuns, trs...)
		short = short || len(trs) < p.Tasks[i].Limit
	}
	return out, short, nil
}

// claimOrder orders the claims of one worker: a claim that leaves capacity
// unfilled supersedes the worker's claims computed before it (lower seq),
// which answer at once, so that the worker asks again for all it can take.
type claimOrder struct {
	ch        chan struct{} // closed when supersede rises
	maxSeq    int64         // highest seq of the worker's claims seen
	supersede int64         // claims with a lower seq answer at once
}

// claimSeen records a claim's seq and returns a channel closed when the
// claims below some seq are superseded, and whether this claim already is.
// Claims without a seq (0) are never superseded.
func (s *Server) claimSeen(id string, seq int64) (<-chan struct{}, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.wakes[id]
	if !ok {
		o = &claimOrder{ch: make(chan struct{})}
		s.wakes[id] = o
	}
	o.maxSeq = max(o.maxSeq, seq)
	return o.ch, seq > 0 && seq < o.supersede
}

// supersedeClaims makes the worker's claims with a seq below the given one
// answer at once.
func (s *Server) supersedeClaims(id string, below int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.wakes[id]
	if !ok || below <= o.supersede {
		return
	}
	o.supersede = below
	close(o.ch)
	o.ch = make(chan struct{})
}

// supersedeAll makes every claim of the worker seen so far answer at once.
func (s *Server) supersedeAll(id string) {
	s.mu.Lock()
	o, ok := s.wakes[id]
	below := int64(0)
	if ok {
		below = o.maxSeq + 1
	}
	s.mu.Unlock()
	if ok {
		s.supersedeClaims(id, below)
	}
}

func (s *Server) isStopping() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopping
}

// workerCached returns the registered worker of the request's {id}. Workers
// call often, so registrations are kept in memory; a worker registered
// through another server is read from the store once.
func (s *Server) workerCached(r *http.Request) (store.Worker, error) {
	id := r.PathValue("id")
	s.mu.Lock()
	wk, ok := s.workers[id]
	s.mu.Unlock()
	if ok {
		return wk, nil
	}
	workers, err := s.st.WorkerList(r.Context(), time.Time{})
	if err != nil {
		return store.Worker{}, err
	}
	for _, wk := range workers {
		if wk.ID == id {
			s.mu.Lock()
			s.workers[id] = wk
			s.mu.Unlock()
			return wk, nil
		}
	}
	return store.Worker{}, &httpError{http.StatusNotFound, apitype.CodeUnknownWorker, fmt.Sprintf("unknown worker %q: register again", id)}
}

func (s *Server) holding(w http.ResponseWriter, r *http.Request) error {
	var req api.Holding
	if err := decode(r, &req); err != nil {
		return err
	}
	wk, err := s.workerCached(r)
	if err != nil {
		return err
	}
	if err := s.st.LeasesRelease(r.Context(), store.LeasesReleaseParams{WorkerID: wk.ID, KeepRuns: req.Runs, KeepTaskRuns: req.TaskRuns}); err != nil {
		return err
	}
	s.runsSig.notify()
	s.tasksSig.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// giveBack crashes a run that its worker gives back and reschedules it (up
// to MaxAttempts), after its subflow runs held by the same worker, which
// become CRASHED without a new attempt of their own: the run's next attempt
// reopens them. Children go first so that a request resent after a failure
// in between still finds the run held and finishes the job. A run not held
// by the worker at that attempt (given back already, or taken over) is a 409.
func (s *Server) giveBack(w http.ResponseWriter, r *http.Request) error {
	var req api.GiveBack
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.Attempt < 1 {
		return errBadRequest("field \"attempt\" must be the attempt given back (at least 1)")
	}
	ctx := r.Context()
	workerID, runID := r.PathValue("id"), r.PathValue("run")
	if err := s.giveBackChildren(ctx, workerID, runID, req.Reason, 0); err != nil {
		return err
	}
	exp, err := s.st.LeasesExpire(ctx, store.LeasesExpireParams{At: s.clk.Now(), MaxAttempts: s.cfg.MaxAttempts,
		RunID: runID, WorkerID: workerID, Attempt: req.Attempt, Reason: req.Reason})
	if err != nil {
		return err
	}
	if len(exp.Crashed) == 0 {
		return errConflict("run %s is not held by worker %s at attempt %d: given back already, or taken over", runID, workerID, req.Attempt)
	}
	s.log.Info("worker gave a run back", "run", runID, "worker", workerID, "attempt", req.Attempt,
		"rescheduled", exp.Rescheduled > 0, "reason", req.Reason)
	s.runsSig.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) giveBackChildren(ctx context.Context, workerID, parentID, reason string, depth int) error {
	if depth > 64 {
		return nil
	}
	children, err := s.st.RunList(ctx, store.RunListParams{ParentRunID: parentID, Limit: 10000})
	if err != nil {
		return err
	}
	for _, c := range children {
		if c.WorkerID != workerID || (c.State != store.RunPending && c.State != store.RunRunning && c.State != store.RunCancelling) {
			continue
		}
		if err := s.giveBackChildren(ctx, workerID, c.ID, reason, depth+1); err != nil {
			return err
		}
		if _, err := s.st.LeasesExpire(ctx, store.LeasesExpireParams{At: s.clk.Now(), RunID: c.ID, WorkerID: workerID,
			Reason: "its parent run " + parentID + " was given back: " + reason}); err != nil {
			return err
		}
	}
	return nil
}

func (s *Server) complete(w http.ResponseWriter, r *http.Request) error {
	var req api.Complete
	if err := decode(r, &req); err != nil {
		return err
	}
	store.UnwireCompletions(req.Completions)
	id := r.PathValue("id")
	if err := checkCompletions(id, req.Completions); err != nil {
		return err
	}
	applied, err := s.st.TaskRunComplete(r.Context(), req.Completions)
	if err != nil {
		return err
	}
	if len(applied) > 0 {
		s.doneSig.notify() // see wakeForBatch
	}
	// The worker reports here when it could not claim with the report (a
	// resent report, or one after a claim whose answer was lost): its
	// waiting claims answer, so that it reports what it holds or asks for
	// the freed slots.
	s.supersedeAll(id)
	if applied == nil {
		applied = []store.TaskRunRef{}
	}
	return writeJSON(w, 200, api.Completed{Applied: applied})
}

// checkCompletions checks task-run completions reported by worker id,
// setting their worker when it is missing.
func checkCompletions(id string, cs []store.TaskRunCompletion) error {
	for i := range cs {
		c := &cs[i]
		if c.WorkerID == "" {
			c.WorkerID = id
		}
		if c.WorkerID != id {
			return errBadRequest("completion %d is for worker %q, not %q", i, c.WorkerID, id)
		}
		f := fmt.Sprintf("completions[%d].Ref.", i)
		if err := checkIdentifiers(identifier{f + "run_id", "run id", c.Ref.RunID}, identifier{f + "key", "step key", c.Ref.Key},
			identifier{f + "id", "task run id", c.Ref.ID}); err != nil {
			return err
		}
		switch c.State {
		case store.TaskCompleted, store.TaskFailed, store.TaskTimedOut, store.TaskCancelled:
		default:
			return errBadRequest("completion %d: state %q is not final (COMPLETED, FAILED, TIMED_OUT or CANCELLED)", i, c.State)
		}
	}
	return nil
}

// --- engine protocol ---

func (s *Server) engineBatch(w http.ResponseWriter, r *http.Request) error {
	var b store.Batch
	if err := decode(r, &b); err != nil {
		return err
	}
	store.UnwireBatch(&b)
	if err := checkBatch(&b); err != nil {
		return err
	}
	if err := s.st.BatchWrite(r.Context(), b); err != nil {
		return err
	}
	s.wakeForBatch(&b)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// wakeForBatch wakes this server's waiting claims and finished-step polls
// for what b wrote, without waiting for the store's notification of it to
// come back (a round trip through PostgreSQL; other servers still learn of
// it that way).
func (s *Server) wakeForBatch(b *store.Batch) {
	var tasks, done bool
	for i := range b.TaskRuns {
		tr := &b.TaskRuns[i]
		tasks = tasks || (tr.Queue != "" && tr.State.Waiting())
		done = done || tr.State.Final()
	}
	if tasks {
		s.tasksSig.notify()
	}
	if done {
		s.doneSig.notify()
	}
	for i := range b.Runs {
		if b.Runs[i].State == store.RunScheduled {
			s.runsSig.notify()
			break
		}
	}
}

func (s *Server) engineRunCreate(w http.ResponseWriter, r *http.Request) error {
	var p store.RunCreateParams
	if err := decode(r, &p); err != nil {
		return err
	}
	p.Cause, p.Message = store.DecodeText(p.Cause), store.DecodeText(p.Message)
	if p.Run.ID == "" || p.Run.Flow == "" {
		return errBadRequest("run id and flow are required")
	}
	if err := checkIdentifiers(runIdentifiers("Run", &p.Run)...); err != nil {
		return err
	}
	run, created, err := s.st.RunCreate(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, api.CreatedRun{Run: run, Created: created})
}

func (s *Server) engineRunGet(w http.ResponseWriter, r *http.Request) error {
	run, err := s.lookupRun(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, run)
}

func (s *Server) engineTransition(w http.ResponseWriter, r *http.Request) error {
	var p store.RunTransitionParams
	if err := decode(r, &p); err != nil {
		return err
	}
	store.UnwireTransition(&p)
	p.ID = r.PathValue("id")
	if err := checkIdentifiers(identifier{"Queue", "queue", p.Queue}); err != nil {
		return err
	}
	run, err := s.st.RunTransition(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, run)
}

func (s *Server) engineWaitBegin(w http.ResponseWriter, r *http.Request) error {
	var p store.WaitBeginParams
	if err := decode(r, &p); err != nil {
		return err
	}
	if err := checkIdentifiers(identifier{"TaskRun.Key", "step key", p.TaskRun.Key}, identifier{"Spec.Key", "wait key", p.Spec.Key}); err != nil {
		return err
	}
	if err := p.Spec.Check(); err != nil {
		return errBadRequest("%v", err)
	}
	p.Validate = params.ValidateJSON
	tr, err := s.st.WaitBegin(r.Context(), p)
	if err != nil {
		return err
	}
	if tr.State == store.TaskWaiting && !p.Spec.Deadline(tr.CreatedAt).IsZero() {
		s.kickTimers()
	}
	return writeJSON(w, 200, tr)
}

func (s *Server) engineSlotAcquire(w http.ResponseWriter, r *http.Request) error {
	var p store.SlotAcquireParams
	if err := decode(r, &p); err != nil {
		return err
	}
	if err := checkIdentifiers(identifier{"TaskRun.Key", "step key", p.TaskRun.Key}, identifier{"TaskRun.RunID", "run id", p.TaskRun.RunID},
		identifier{"TaskRun.WorkerID", "holder", p.TaskRun.WorkerID}); err != nil {
		return err
	}
	if err := store.CheckSlotAcquire(p); err != nil {
		return errBadRequest("%v", err)
	}
	if _, err := store.NormalizeTags(p.TaskRun.Tags); err != nil {
		return errBadRequest("%v", err)
	}
	ok, err := s.st.SlotAcquire(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, api.SlotAcquired{Acquired: ok})
}

func (s *Server) engineSlotRenew(w http.ResponseWriter, r *http.Request) error {
	var p store.SlotRenewParams
	if err := decode(r, &p); err != nil {
		return err
	}
	if err := checkIdentifiers(identifier{"Ref.Key", "step key", p.Ref.Key}, identifier{"Holder", "holder", p.Holder}); err != nil {
		return err
	}
	if err := s.st.SlotRenew(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) engineChild(w http.ResponseWriter, r *http.Request) error {
	if err := checkIdentifiers(identifier{"key", "step key", r.URL.Query().Get("key")}); err != nil {
		return err
	}
	run, err := s.st.RunChildGet(r.Context(), r.PathValue("id"), r.URL.Query().Get("key"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, run)
}

func (s *Server) engineJournal(w http.ResponseWriter, r *http.Request) error {
	j, err := s.st.JournalList(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if j == nil {
		j = []store.JournalEntry{}
	}
	return writeJSON(w, 200, j)
}

func (s *Server) engineCache(w http.ResponseWriter, r *http.Request) error {
	if err := checkIdentifiers(identifier{"key", "cache key", r.URL.Query().Get("key")}); err != nil {
		return err
	}
	ce, err := s.st.CacheGet(r.Context(), r.URL.Query().Get("key"), s.clk.Now())
	if err != nil {
		return err
	}
	return writeJSON(w, 200, ce)
}

func (s *Server) engineFinished(w http.ResponseWriter, r *http.Request) error {
	var req api.Finished
	if err := decode(r, &req); err != nil {
		return err
	}
	if req.WaitMS < 0 || req.WaitMS > 60000 {
		return errBadRequest("wait_ms must be from 0 to 60000")
	}
	ctx := r.Context()
	deadline := s.clk.Now().Add(api.Duration(req.WaitMS))
	for {
		ch := s.doneSig.wait()
		done, err := s.st.TaskRunFinished(ctx, req.Refs)
		if err != nil {
			return err
		}
		wait := s.clk.Until(deadline)
		if len(done) > 0 || wait <= 0 || s.isStopping() {
			if done == nil {
				done = []store.TaskRun{}
			}
			for i := range done { // the waiter needs the outcome, not the input or history
				done[i].Input, done[i].InputRef, done[i].History = nil, "", nil
			}
			return writeJSON(w, 200, api.FinishedResult{TaskRuns: done})
		}
		t := s.clk.NewTimer(min(wait, s.cfg.PollInterval))
		select {
		case <-ch:
		case <-t.Chan():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		t.Stop()
	}
}

// putBlob streams the body into the blob store, up to MaxBlobBytes (not
// the JSON body limit: whatever result a task can produce locally, it can
// produce on a worker).
func (s *Server) putBlob(w http.ResponseWriter, r *http.Request) error {
	ref, err := s.cfg.Blobs.PutReader(&progressDeadline{r: r.Body, rc: http.NewResponseController(w)})
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &httpError{http.StatusRequestEntityTooLarge, apitype.CodeTooLarge,
			fmt.Sprintf("blob exceeds the server's blob limit of %d bytes (server.Config.MaxBlobBytes)", mbe.Limit)}
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, api.BlobRef{Ref: ref})
}

func (s *Server) getBlob(w http.ResponseWriter, r *http.Request) error {
	f, size, err := s.cfg.Blobs.Open(r.PathValue("ref"))
	if err != nil {
		return errNotFound("%v", err)
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	_, err = io.Copy(progressWriter{w: w, rc: http.NewResponseController(w)}, f)
	return err
}

// blobIdle is how long a blob transfer may make no progress. A large blob
// may take longer than the HTTP server's read and write timeouts (sized for
// JSON requests and long polls) as long as it keeps moving.
const blobIdle = time.Minute

// progressDeadline reads a request body, moving the connection's read
// deadline blobIdle ahead before each read.
type progressDeadline struct {
	r  io.Reader
	rc *http.ResponseController
}

func (p *progressDeadline) Read(b []byte) (int, error) {
	_ = p.rc.SetReadDeadline(time.Now().Add(blobIdle)) // a network deadline: the system clock; not supported: the server's timeout stays
	return p.r.Read(b)
}

// progressWriter writes a response, moving the write deadline blobIdle
// ahead before each write.
type progressWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (p progressWriter) Write(b []byte) (int, error) {
	_ = p.rc.SetWriteDeadline(time.Now().Add(blobIdle))
	return p.w.Write(b)
}

// runIdentifiers checks the identifiers of a run record sent by a worker.
func runIdentifiers(field string, r *store.Run) []identifier {
	return []identifier{{field + ".ID", "run id", r.ID}, {field + ".Flow", "flow name", r.Flow},
		{field + ".ParentRunID", "run id", r.ParentRunID}, {field + ".ParentStepKey", "step key", r.ParentStepKey},
		{field + ".Queue", "queue", r.Queue}, {field + ".IdempotencyKey", "idempotency key", r.IdempotencyKey}}
}

// checkBatch refuses a batch whose identifiers (IDs, step keys, task and
// flow names, queues) are not valid text with a 400 naming the field, before
// anything is written: PostgreSQL would refuse them with an internal error.
// Free text (messages, errors, logs) is stored as is (see store.EncodeText).
// Field names are only formatted for a refusal: batches are large and hot.
func checkBatch(b *store.Batch) error {
	bad := func(field string, i int, name, what, value string) error {
		if err := store.CheckIdentifier(what, value); err != nil {
			return errBadRequest("field %q: %v", fmt.Sprintf("%s[%d].%s", field, i, name), err)
		}
		return nil
	}
	for i := range b.Runs {
		r := &b.Runs[i]
		for _, id := range []struct{ name, what, value string }{{"ID", "run id", r.ID}, {"Flow", "flow name", r.Flow},
			{"ParentRunID", "run id", r.ParentRunID}, {"ParentStepKey", "step key", r.ParentStepKey},
			{"Queue", "queue", r.Queue}, {"IdempotencyKey", "idempotency key", r.IdempotencyKey}} {
			if err := bad("Runs", i, id.name, id.what, id.value); err != nil {
				return err
			}
		}
	}
	for i := range b.TaskRuns {
		t := &b.TaskRuns[i]
		for _, id := range [...]struct{ name, what, value string }{{"ID", "task run id", t.ID}, {"RunID", "run id", t.RunID},
			{"Key", "step key", t.Key}, {"Task", "task name", t.Task}, {"ChildRunID", "run id", t.ChildRunID},
			{"Queue", "queue", t.Queue}} {
			if err := bad("TaskRuns", i, id.name, id.what, id.value); err != nil {
				return err
			}
		}
	}
	for i := range b.Events {
		if err := bad("Events", i, "RunID", "run id", b.Events[i].RunID); err != nil {
			return err
		}
		if err := bad("Events", i, "TaskKey", "step key", b.Events[i].TaskKey); err != nil {
			return err
		}
	}
	for i := range b.Logs {
		if err := bad("Logs", i, "RunID", "run id", b.Logs[i].RunID); err != nil {
			return err
		}
		if err := bad("Logs", i, "TaskKey", "step key", b.Logs[i].TaskKey); err != nil {
			return err
		}
	}
	for i := range b.Cache {
		if err := bad("Cache", i, "Key", "cache key", b.Cache[i].Key); err != nil {
			return err
		}
		if err := bad("Cache", i, "Task", "task name", b.Cache[i].Task); err != nil {
			return err
		}
	}
	return nil
}

// --- limits ---

func (s *Server) listLimits(w http.ResponseWriter, r *http.Request) error {
	ls, err := s.st.LimitList(r.Context(), nil)
	if err != nil {
		return err
	}
	out := make([]apitype.Limit, len(ls))
	for i, l := range ls {
		out[i] = api.LimitJSON(l)
	}
	return writeJSON(w, 200, map[string]any{"limits": out})
}

func (s *Server) getLimit(w http.ResponseWriter, r *http.Request) error {
	tag := r.PathValue("tag")
	if err := api.CheckTag(tag); err != nil {
		return errBadRequest("%v", err)
	}
	ls, err := s.st.LimitList(r.Context(), []string{tag})
	if err != nil {
		return err
	}
	if len(ls) == 0 {
		return errNotFound("tag %q has no limit", tag)
	}
	return writeJSON(w, 200, api.LimitJSON(ls[0]))
}

func (s *Server) setLimit(w http.ResponseWriter, r *http.Request) error {
	var req apitype.SetLimitRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	who, err := apiActor(r, "")
	if err != nil {
		return err
	}
	l, err := api.SetLimit(r.Context(), s.st, r.PathValue("tag"), req, who)
	if err != nil {
		return inputError("", err)
	}
	s.tasksSig.notify() // freed slots start waiting task runs
	return writeJSON(w, 200, api.LimitJSON(l))
}

func (s *Server) deleteLimit(w http.ResponseWriter, r *http.Request) error {
	tag := r.PathValue("tag")
	if err := api.CheckTag(tag); err != nil {
		return errBadRequest("%v", err)
	}
	if err := s.st.LimitDelete(r.Context(), tag); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return errNotFound("tag %q has no limit", tag)
		}
		return err
	}
	s.tasksSig.notify()
	w.WriteHeader(http.StatusNoContent)
	return nil
}
