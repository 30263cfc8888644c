package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/batonhq/baton/apitype"
	"github.com/batonhq/baton/internal/api"
	"github.com/batonhq/baton/internal/deploy"
	"github.com/batonhq/baton/internal/store"
)

// The deployments API (see package deploy for the logic every surface
// shares). Errors of package deploy carry their status; the messages are
// those of the command line.

// deployErr turns a deploy.Error into the API's error.
func deployErr(err error) error {
	var de *deploy.Error
	if errors.As(err, &de) {
		code := apitype.CodeBadRequest
		switch de.Status {
		case http.StatusNotFound:
			code = apitype.CodeNotFound
		case http.StatusConflict:
			code = apitype.CodeConflict
		}
		return &httpError{de.Status, code, de.Msg}
	}
	var he *httpError
	if errors.As(err, &he) {
		return he
	}
	return err
}

// deployParams validates parameters with the server's cache of flow
// schemas, as POST /runs does.
func (s *Server) deployParams(ctx context.Context, flow string, given json.RawMessage) (json.RawMessage, error) {
	if t := bytes.TrimSpace(given); len(t) == 0 || string(t) == "null" {
		given = nil
	}
	fs, err := s.flowSchema(ctx, flow)
	if err != nil {
		return nil, err
	}
	if !fs.known || fs.v == nil {
		if !fs.known {
			if given == nil {
				return json.RawMessage("null"), nil
			}
			return given, nil
		}
		return deploy.ResolveParams(fs.info, given)
	}
	out, err := fs.v.Resolve(flow, fs.info.Defaults, given)
	if err != nil {
		return nil, deploy.BadInput("%v", err)
	}
	return out, nil
}

func (s *Server) deploymentRoutes() []route {
	p := apitype.Prefix + "/deployments"
	return []route{
		{method: "POST", pattern: p, summary: "Create a deployment (409 when the name exists)", tag: "deployments", request: "DeploymentRequest", response: "Deployment", status: 201, handle: s.createDeployment},
		{method: "GET", pattern: p, summary: "List deployments by name", tag: "deployments", response: "DeploymentList", handle: s.listDeployments},
		{method: "GET", pattern: p + "/{name}", summary: "A deployment with its schedules, history and its flow's parameter schema", tag: "deployments", response: "Deployment", handle: s.getDeployment},
		{method: "PUT", pattern: p + "/{name}", summary: "Register a deployment declared in code (idempotent: the same declaration changes nothing; paused state and notes stay)", tag: "deployments", request: "DeploymentRequest", response: "Deployment", handle: s.registerDeployment},
		{method: "POST", pattern: p + "/{name}/update", summary: "Replace a deployment's declaration (schedules kept by spec keep their id; runs of removed ones not started are cancelled)", tag: "deployments", request: "DeploymentRequest", response: "Deployment", handle: s.updateDeployment},
		{method: "DELETE", pattern: p + "/{name}", summary: "Delete a deployment; its runs not started are cancelled, its history stays", tag: "deployments", status: 204, handle: s.deleteDeployment},
		{method: "POST", pattern: p + "/{name}/pause", summary: "Pause a deployment or one schedule, with a note for the history", tag: "deployments", request: "DeploymentPause", optionalBody: true, response: "Deployment", handle: s.pauseDeployment(true)},
		{method: "POST", pattern: p + "/{name}/resume", summary: "Resume a deployment or one schedule (fire times passed while paused are not caught up)", tag: "deployments", request: "DeploymentPause", optionalBody: true, response: "Deployment", handle: s.pauseDeployment(false)},
		{method: "POST", pattern: p + "/{name}/run", summary: "Start a run of a deployment now, with parameters merged over its own and validated", tag: "deployments", request: "DeploymentRun", optionalBody: true, response: "Run", status: 201, handle: s.runDeployment},
		{method: "GET", pattern: p + "/{name}/next", summary: "Preview the next fire times of a deployment's schedules (count, default 10, at most 1000)", tag: "deployments", query: []string{"count"}, response: "DeploymentNext", handle: s.nextDeployment},
		{method: "POST", pattern: p + "/{name}/backfill", summary: "Create the runs of the fire times of a past range (those that exist are left alone)", tag: "deployments", request: "Backfill", response: "BackfillResult", handle: s.backfillDeployment},
	}
}

func (s *Server) putDeployment(w http.ResponseWriter, r *http.Request, mode, source string, status int) error {
	var req apitype.DeploymentRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	if name := r.PathValue("name"); name != "" {
		if req.Name != "" && req.Name != name {
			return errBadRequest("field \"name\" %q differs from the deployment %q of the path", req.Name, name)
		}
		req.Name = name
	}
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	d, changed, err := s.deploy.Put(r.Context(), mode, req, source, actor)
	if err != nil {
		return deployErr(err)
	}
	if mode == store.PutRegister && changed {
		status = http.StatusCreated
	}
	return writeJSON(w, status, deploy.View(d, nil))
}

func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.putDeployment(w, r, store.PutCreate, store.SourceAPI, http.StatusCreated)
}

func (s *Server) registerDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.putDeployment(w, r, store.PutRegister, store.SourceCode, http.StatusOK)
}

func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.putDeployment(w, r, store.PutUpdate, store.SourceAPI, http.StatusOK)
}

func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.st.DeploymentList(r.Context())
	if err != nil {
		return err
	}
	out := make([]apitype.Deployment, len(ds))
	for i, d := range ds {
		out[i] = deploy.View(d, nil)
	}
	return writeJSON(w, 200, map[string]any{"deployments": out})
}

func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) error {
	v, err := s.deploymentView(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, 200, v)
}

func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request) error {
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	if err := s.deploy.Delete(r.Context(), r.PathValue("name"), actor); err != nil {
		return deployErr(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) pauseDeployment(paused bool) handler {
	return func(w http.ResponseWriter, r *http.Request) error {
		var req apitype.DeploymentPauseRequest
		if r.ContentLength != 0 {
			if err := decode(r, &req); err != nil {
				return err
			}
		}
		actor, err := apiActor(r, "")
		if err != nil {
			return err
		}
		d, err := s.deploy.Pause(r.Context(), r.PathValue("name"), req.Schedule, paused, req.Note, actor)
		if err != nil {
			return deployErr(err)
		}
		s.runsSig.notify()
		return writeJSON(w, 200, deploy.View(d, nil))
	}
}

func (s *Server) runDeployment(w http.ResponseWriter, r *http.Request) error {
	var req apitype.DeploymentRunRequest
	if r.ContentLength != 0 {
		if err := decode(r, &req); err != nil {
			return err
		}
	}
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	run, err := s.deploy.Run(r.Context(), r.PathValue("name"), req.Parameters, actor)
	if err != nil {
		return deployErr(err)
	}
	s.runsSig.notify()
	return writeJSON(w, http.StatusCreated, s.runView(r.Context(), run))
}

func (s *Server) nextDeployment(w http.ResponseWriter, r *http.Request) error {
	count := 10
	if c := r.URL.Query().Get("count"); c != "" {
		n, err := strconv.Atoi(c)
		if err != nil {
			return errBadRequest("query parameter \"count\" must be an integer from 1 to 1000, got %q", c)
		}
		count = n
	}
	name := r.PathValue("name")
	fires, err := s.deploy.Next(r.Context(), name, count)
	if err != nil {
		return deployErr(err)
	}
	return writeJSON(w, 200, deploy.NextView(name, fires))
}

func (s *Server) backfillDeployment(w http.ResponseWriter, r *http.Request) error {
	var req apitype.BackfillRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	actor, err := apiActor(r, "")
	if err != nil {
		return err
	}
	created, existed, err := s.deploy.Backfill(r.Context(), r.PathValue("name"), req.From, req.To, actor)
	if err != nil {
		return deployErr(err)
	}
	s.runsSig.notify()
	out := apitype.BackfillResult{Created: make([]apitype.Run, len(created)), Existed: existed}
	for i, run := range created {
		out.Created[i] = s.runView(r.Context(), run)
	}
	return writeJSON(w, 200, out)
}

// lateView marks a run view late at the server's now.
func (s *Server) lateView(v *apitype.Run) { api.MarkLate(v, s.clk.Now(), s.cfg.LateGrace) }

// lateRuns reads GET /runs?state=LATE: the SCHEDULED and AWAITING_SLOT
// runs past their planned start plus the grace, newest first, matching
// the other filters of p, from p.Offset on, at most p.Limit (100 when 0).
func (s *Server) lateRuns(ctx context.Context, p store.RunListParams) ([]apitype.Run, error) {
	limit, offset := p.Limit, p.Offset
	if limit == 0 {
		limit = 100
	}
	views := []apitype.Run{}
	for _, state := range []store.RunState{store.RunScheduled, store.RunAwaitingSlot} {
		p.State, p.Limit, p.Offset = state, 10000, 0
		runs, err := s.st.RunList(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, run := range runs {
			if v := s.runView(ctx, run); v.Late {
				views = append(views, v)
			}
		}
	}
	slices.SortStableFunc(views, func(a, b apitype.Run) int { return b.CreatedAt.Compare(a.CreatedAt) })
	views = views[min(offset, len(views)):]
	return views[:min(limit, len(views))], nil
}
